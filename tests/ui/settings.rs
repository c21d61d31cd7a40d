//! Settings declared once (issue 29): the same out-of-range values go through the four ways a
//! user can give one — the panel's slider (a typed value: AccessKit's set-value, what typing
//! into the slider's field does), `setConfig`, a share link, the CLI — and all four refuse
//! them with the range of the setting's row (`engine::settings::table`) in the message.

use super::*;
use scorelab::engine::settings::table::{self, Setting};
use scorelab::sim::samplers::SamplerKind;
use scorelab::state::link::{to_hash, EmbedFlags};
use scorelab::state::{State, StateError};

/// A value out of `row`'s range, the slider's label, how it goes into a state, and the CLI
/// flags that set it.
struct Case {
    row: &'static Setting,
    bad: f64,
    set: fn(&mut State, f64),
    cli: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            row: &table::WIDTH,
            bad: 4.0,
            set: |s, v| s.settings.width = v as usize,
            cli: &["train", "--preset", "ncsn", "--steps", "1", "--width"],
        },
        Case {
            row: &table::DEPTH,
            bad: 7.0,
            set: |s, v| s.settings.depth = v as usize,
            cli: &["train", "--preset", "ncsn", "--steps", "1", "--depth"],
        },
        Case {
            row: &table::BATCH,
            bad: 8192.0,
            set: |s, v| s.settings.batch = v as usize,
            cli: &["train", "--preset", "ncsn", "--steps", "1", "--batch"],
        },
        Case {
            row: &table::LR,
            bad: 0.5,
            set: |s, v| s.settings.lr = v as f32,
            cli: &["train", "--preset", "ncsn", "--steps", "1", "--lr"],
        },
        Case {
            row: &table::LEVELS,
            bad: 1.0,
            set: |s, v| s.samplers[0].levels = v as usize,
            cli: &["sample", "--preset", "ncsn", "--n", "10", "--levels"],
        },
        Case {
            row: &table::SNR,
            bad: 12.0,
            set: |s, v| s.samplers[0].snr = v,
            cli: &["sample", "--preset", "ncsn", "--n", "10", "--snr"],
        },
    ]
}

/// Type `value` into the slider labelled `label` and return the message the app shows. An
/// AccessKit action goes to the widget id of the frame it was sent in: if a line above the
/// slider came or went meanwhile (the engine's first status), it reaches nothing — neither a
/// message nor a new value — and is sent again (at most 5 times).
fn refused(h: &mut App, label: &str, value: f64) -> String {
    let before = h.state().state().clone();
    for _ in 0..5 {
        slider(h, label, value);
        let shown = snap(h)["error"].as_str().unwrap_or("").to_string();
        if !shown.is_empty() || h.state().state() != &before {
            return shown;
        }
    }
    String::new()
}

/// The message names the setting and its range.
fn names_range(msg: &str, row: &Setting) -> bool {
    msg.contains(&format!("{} must be in {}", row.name(), row.range_text()))
}

#[test]
fn out_of_range_values_are_refused_alike_by_the_panel_set_config_a_link_and_the_cli() {
    let mut h = app();
    // The menu's entries are numbered (its keyboard shortcuts).
    let item = |kind: SamplerKind| {
        let i = SamplerKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        format!("{} {}", i + 1, kind.name())
    };
    // The PC sampler shows the snr slider; the panel's layout settles before a slider is set
    // (its accessible node must be the widget of the next frame).
    choose(&mut h, "Sampler", &item(SamplerKind::Pc));
    frames(&mut h, 10);
    for c in cases() {
        let row = c.row;
        // 1. The panel: a value typed into the slider (the sampler's levels slider shows for
        //    annealed Langevin, so pick it back for that row).
        if row.key == "levels" {
            choose(&mut h, "Sampler", &item(SamplerKind::AnnealedLangevin));
            frames(&mut h, 10);
        }
        let before = h.state().state().clone();
        let shown = refused(&mut h, row.label, c.bad);
        assert!(
            names_range(&shown, row),
            "panel, {}: the message {shown:?} lacks the range {}",
            row.key,
            row.range_text()
        );
        assert_eq!(
            h.state().state().settings,
            before.settings,
            "panel, {}: the last good settings stay",
            row.key
        );
        assert_eq!(
            h.state().state().samplers,
            before.samplers,
            "panel, {}: the last good samplers stay",
            row.key
        );
        if row.key == "levels" {
            choose(&mut h, "Sampler", &item(SamplerKind::Pc));
        }

        // 2. setConfig (the sampler keys and the network keys at the top level).
        let patch = format!("{{\"{}\": {}}}", row.key, c.bad);
        let e = scorelab::state::patch::parse_config(&patch).expect_err(&patch);
        assert!(
            matches!(e.cause(), StateError::OutOfRange(o) if o.key == row.name()),
            "setConfig {patch}: {e:?} is not the row's range error"
        );
        assert!(names_range(&e.to_string(), row), "setConfig {patch}: {e}");

        // 3. A share link holding the value: the app opens on the default scene and says why.
        let mut st = State::default();
        (c.set)(&mut st, c.bad);
        let hash = to_hash(&st, &EmbedFlags::default());
        let linked = app_with(Some(&hash));
        let s = snap(&linked);
        let said = s["link_error"].as_str().unwrap_or("").to_string();
        assert!(names_range(&said, row), "link, {}: {said:?}", row.key);
        assert_eq!(linked.state().state().settings, State::default().settings);

        // 4. The CLI.
        let bad = format!("{}", c.bad);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorelab"))
            .args(c.cli)
            .arg(&bad)
            .args(["--out", "/dev/null"])
            .output()
            .expect("the CLI runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "CLI {:?} {bad} was accepted", c.cli);
        // The CLI's offline runs may go further (the row's `cli_hi`); the range it names is
        // the row's, up to that.
        assert!(
            err.contains(&format!(
                "{} must be in {}",
                row.name(),
                row.cli_range_text()
            )),
            "CLI {:?} {bad}: {err}",
            c.cli
        );
    }
}

//! The native UI tier (issue 28): the real app (`ScoreLabApp`, the CPU engine on its thread, as
//! the native window runs it) in an egui_kittest `Harness`. Widgets are found by their
//! accessible names and roles through AccessKit and clicked with pointer events; keys are key
//! events; canvas drags are pointer drags at plot coordinates. The checks read the app's own
//! snapshot (`ScoreLabApp::snapshot`, the JSON `window.scorelab.state()` returns in the page)
//! and the labels the user sees.
//!
//! The harness panics on a glyph the fonts lack, so every text these tests bring on screen is
//! also checked to be drawable (the page shows such glyphs as boxes).

mod api;
mod canvas;
mod flow;
mod glyphs;
mod keyboard;
mod lessons;
mod links;
mod presets;
mod qr;
mod record;
mod settings;
mod snapshots;
mod views;

use std::time::Instant;

use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use scorelab::app::{AppOptions, ScoreLabApp};
use scorelab::engine::EngineChoice;
use serde_json::Value;

/// The app under test.
pub type App = Harness<'static, ScoreLabApp>;

/// A window tall enough that the whole control panel is on screen (no scrolling to reach a
/// widget), as wide as a laptop's.
pub const SIZE: [f32; 2] = [1400.0, 2600.0];

/// The app as the native window starts it, on the CPU engine (what a software adapter picks),
/// opened with `hash` as its link when given.
pub fn app_with(hash: Option<&str>) -> App {
    let options = AppOptions {
        engine: Some(EngineChoice::Cpu),
        hash: hash.map(str::to_string),
        page_url: "http://127.0.0.1/".into(),
        ..Default::default()
    };
    // egui's clock advances 1/60 s a frame, as on a screen (the default 1/4 s makes two clicks
    // a frame apart too slow for a double-click).
    let mut h = Harness::builder()
        .with_size(SIZE)
        .with_step_dt(1.0 / 60.0)
        .build_eframe(move |cc| ScoreLabApp::new(cc, None, options));
    // The first frames settle the layout (the engine's first status, the fitted view): a
    // click aimed from one frame's layout must land on the same widget in the next.
    h.run_steps(10);
    h
}

/// The app with its defaults.
pub fn app() -> App {
    app_with(None)
}

/// The app's snapshot (the JSON `state()` returns in the page).
pub fn snap(h: &App) -> Value {
    serde_json::from_str(&h.state().snapshot()).expect("the snapshot is JSON")
}

/// Frames until `pred` holds on the snapshot; panics after `secs` seconds of wall time with
/// the last snapshot's sampler and run.
pub fn wait(h: &mut App, what: &str, secs: f64, pred: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        h.step();
        let s = snap(h);
        if pred(&s) {
            return s;
        }
        if t0.elapsed().as_secs_f64() > secs {
            panic!(
                "timed out after {secs} s waiting for {what}: sampler {} run {} lesson {} step {}",
                s["sampler"], s["runs"][0], s["lesson"], s["step"]
            );
        }
    }
}

/// A few frames (a click lands on the next frame, its command is applied in the one after).
pub fn frames(h: &mut App, n: usize) {
    h.run_steps(n);
}

/// Click the widget with this accessible name and role.
pub fn click(h: &mut App, role: Role, name: &str) {
    h.get_by_role_and_label(role, name).click();
    frames(h, 2);
}

/// Click a button by its accessible name.
pub fn button(h: &mut App, name: &str) {
    click(h, Role::Button, name);
}

/// Open the combo box `combo` and click its entry `item`.
pub fn choose(h: &mut App, combo: &str, item: &str) {
    click(h, Role::ComboBox, combo);
    h.get_by_label(item).click();
    frames(h, 3);
}

/// Set a slider, found by its text, to `value` (AccessKit's set-value action, what a screen
/// reader or typing into the slider's field does).
pub fn slider(h: &mut App, name: &str, value: f64) {
    h.get_by_role_and_label(Role::Slider, name)
        .set_value_accesskit(value);
    frames(h, 3);
}

/// The label that contains `text` is on screen.
pub fn shows(h: &App, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

/// Sampler 1's finished run of `kind` once the panel shows it. A scene change or a new
/// sampler clears the last run's statistics in the frame its command is applied (within
/// [`choose`]), and with the loop off nothing else finishes, so the first statistics that
/// appear afterwards are of a run that started after the change.
pub fn finished(h: &mut App, kind: &str, secs: f64) -> Value {
    let what = format!("a finished {kind} run");
    let s = wait(h, &what, secs, |s| s["runs"][0]["kind"] == kind);
    frames(h, 2);
    let again = snap(h);
    assert_eq!(
        again["runs"][0]["run"], s["runs"][0]["run"],
        "{what}: the run stays"
    );
    again["runs"][0].clone()
}

/// The worst gap between the run's mode fractions and the true samples' under the same
/// classifier, beyond the binomial noise of both (3 standard errors of n particles and of
/// the 4n true samples).
pub fn weight_gap_beyond_noise(run: &Value) -> f64 {
    let n = run["n"].as_f64().unwrap_or(1.0);
    let w = floats(&run["weights"]);
    let t = floats(&run["true_weights"]);
    w.iter()
        .zip(&t)
        .map(|(a, b)| {
            let noise = 3.0 * (b * (1.0 - b) * (1.0 / n + 1.0 / (4.0 * n))).sqrt();
            (a - b).abs() - noise
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

/// A JSON array of numbers.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Every key of `want` (recursively through objects) has the same value in `got`.
pub fn partial_eq(want: &Value, got: &Value, path: &str, diffs: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                partial_eq(v, &g[k], &format!("{path}.{k}"), diffs);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            if (a - b).abs() > 1e-9 * a.abs().max(1.0) {
                diffs.push(format!("{path}: {a} vs {b}"));
            }
        }
        _ if want != got => diffs.push(format!("{path}: {want} vs {got}")),
        _ => {}
    }
}

/// Every widget of the control panel lies inside the panel (a row wider than the panel is cut
/// off: the sampler row's "loop" once sat at x = 313 of a 300-point panel, unseen and
/// unclickable).
pub fn panel_widgets_outside(h: &App) -> Vec<String> {
    let panel_right = 300.0 + 16.0;
    let mut out = Vec::new();
    for role in [Role::Button, Role::CheckBox, Role::Slider, Role::ComboBox] {
        for n in h.query_all_by_role(role) {
            let r = n.rect();
            if r.min.x < panel_right && r.max.x > panel_right {
                out.push(format!(
                    "{role:?} {:?} at {r:?}",
                    n.accesskit_node().label()
                ));
            }
        }
    }
    out
}

use super::*;

#[test]
fn no_control_is_cut_off_by_the_panel_edge() {
    let mut h = app();
    let out = panel_widgets_outside(&h);
    assert!(out.is_empty(), "{}", out.join("\n"));
    h.get_by_role_and_label(Role::CheckBox, "loop").click();
    frames(&mut h, 3);
    assert!(
        !h.state().state().samplers[0].repeat,
        "the loop checkbox can be clicked"
    );
}

/// Split view through its buttons (moved from tests/browser/lessons.mjs): A annealed
/// Langevin, B plain Langevin, both 2000 exact-score particles; A's weights are right
/// (< 0.03), B's wrong (> 0.1).
#[test]
fn split_view_runs_annealed_beside_plain_langevin() {
    let mut h = app();
    crate::keyboard::fast_exact_runs(&mut h);
    h.get_by_label("A | B").click();
    frames(&mut h, 3);
    assert_eq!(snap(&h)["split"], "samplers");
    for (slot, (name, item)) in [("A", "2 annealed-langevin"), ("B", "1 langevin")]
        .into_iter()
        .enumerate()
    {
        h.get_by_label(name).click();
        frames(&mut h, 2);
        choose(&mut h, "Sampler", item);
        fast_slot(&mut h, slot);
    }
    let st = h.state().state();
    assert_eq!(st.samplers[0].kind.name(), "annealed-langevin");
    assert_eq!(st.samplers[1].kind.name(), "langevin");
    let s = wait(&mut h, "both runs", 60.0, |s| {
        s["runs"][0]["kind"] == "annealed-langevin" && s["runs"][1]["kind"] == "langevin"
    });
    let (a, b) = (
        s["runs"][0]["max_weight_error"]
            .as_f64()
            .unwrap_or(f64::NAN),
        s["runs"][1]["max_weight_error"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
    assert!(a < 0.03 && b > 0.1, "A right, B wrong: {a:.3} vs {b:.3}");
    assert_eq!(s["runs"][1]["n"], 2000);
}

/// The slot being edited: 2000 exact-score particles, speed 20, no loop.
fn fast_slot(h: &mut App, slot: usize) {
    h.get_by_label("exact score").click();
    frames(h, 2);
    slider(h, "particles", 2000.0);
    slider(h, "speed", 20.0);
    if h.state().state().samplers[slot].repeat {
        click(h, Role::CheckBox, "loop");
    }
    let live = &h.state().state().samplers[slot];
    assert!(
        live.exact && live.n == 2000 && !live.repeat,
        "slot {slot} set up"
    );
}

/// The projector theme, the UI scale and the palette through their widgets (moved from
/// tests/browser/lessons.mjs): shown at once and kept in the share link.
#[test]
fn projector_theme_scale_and_palette_persist_in_the_link() {
    let mut h = app();
    h.get_by_label("projector").click();
    frames(&mut h, 2);
    h.get_by_label("cividis").click();
    frames(&mut h, 2);
    slider(&mut h, "UI scale", 1.25);
    frames(&mut h, 3);
    let s = snap(&h);
    assert_eq!(s["shown_theme"], "light");
    assert!(
        (s["zoom"].as_f64().unwrap_or(0.0) - 1.25).abs() < 1e-6,
        "zoom {}",
        s["zoom"]
    );
    let link = s["link"].as_str().unwrap_or("");
    let hash = &link[link.find('#').unwrap_or(0)..];
    let parsed = scorelab::state::link::parse_hash(hash).expect("the app's own link");
    let linked = parsed.shared.expect("a state in the link");
    assert_eq!(linked.theme, scorelab::state::Theme::Projector);
    assert_eq!(linked.ui_scale, 1.25);
    assert_eq!(linked.palette, scorelab::state::Palette::Cividis);
}

/// The steps sweep (issue 30's view): its checkbox starts it, it fills in over frames without
/// holding a frame up, and its rows show each sampler's order: the deterministic samplers'
/// distance to the exact PF-ODE solution halves (DDIM) or quarters (Heun on the EDM schedule,
/// DPM-Solver++(2M)) when the evaluations double, and every sampler's spreads are right at
/// 512 evaluations.
#[test]
fn the_steps_sweep_fills_in_and_shows_each_samplers_order() {
    let mut h = app();
    h.get_by_role_and_label(Role::CheckBox, "steps sweep: error vs evaluations")
        .click();
    frames(&mut h, 3);
    assert!(h.state().state().layers.sweep, "the checkbox turns it on");
    let s = wait(&mut h, "the sweep to finish", 120.0, |s| {
        let v = &s["views"]["sweep"];
        v["runs"].as_u64().is_some_and(|n| n > 0) && v["done"] == v["runs"]
    });
    let rows = s["views"]["sweep"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows.len(), 4 * 8, "4 samplers × 8 budgets");
    let row = |name: &str, nfe: u64| {
        rows.iter()
            .find(|r| r["sampler"] == name && r["nfe"].as_u64() == Some(nfe))
            .unwrap_or_else(|| panic!("no {name} row at {nfe}"))
            .clone()
    };
    for (name, lo, hi) in [
        ("ddim", 1.6, 2.6),
        ("edm-heun", 3.0, 5.0),
        ("dpm-solver++2m", 3.0, 5.0),
    ] {
        let a = row(name, 256)["ode_error"].as_f64().unwrap_or(f64::NAN);
        let b = row(name, 512)["ode_error"].as_f64().unwrap_or(f64::NAN);
        let ratio = a / b;
        assert!(
            (lo..=hi).contains(&ratio),
            "{name}: ODE error {a:.2e} at 256 evaluations, {b:.2e} at 512 (ratio {ratio:.2})"
        );
    }
    for name in ["ddim", "edm-heun", "dpm-solver++2m", "ode-euler"] {
        let r = row(name, 512);
        assert_eq!(r["diverged"], 0, "{name}");
        let spread = r["spread_error"].as_f64().unwrap_or(f64::NAN);
        assert!(
            spread < 0.3,
            "{name} at 512 evaluations: spread error {spread}"
        );
    }
    // The page stayed responsive: the sweep's work was spread over frames.
    let frames_taken = s["frame"].as_u64().unwrap_or(0);
    assert!(frames_taken > 20, "the sweep ran in {frames_taken} frames");
    // The table exports as the CLI writes it (natively into the working directory).
    let path = std::env::current_dir().unwrap().join("scorelab-sweep.csv");
    let _ = std::fs::remove_file(&path);
    h.get_by_label("save sweep CSV").click();
    frames(&mut h, 2);
    let csv = std::fs::read_to_string(&path).expect("the sweep CSV was saved");
    let _ = std::fs::remove_file(&path);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], scorelab::sim::samplers::sweep::CSV_HEADER);
    assert_eq!(lines.len(), 1 + rows.len(), "a line per row");
    let first = &rows[0];
    assert!(
        lines[1].starts_with(&format!(
            "{},{},",
            first["sampler"].as_str().unwrap_or("?"),
            first["nfe"]
        )),
        "{} vs {first}",
        lines[1]
    );
}

/// The sweep on the learned score (its "learned model" button), from a link that also holds a
/// few-step live sampler with its η: the link restores both, the sweep takes one snapshot of
/// the network and measures it, and DDIM on the learned score is still first order (its
/// distance to the learned score's own PF-ODE solution halves when the evaluations double).
#[test]
fn the_sweep_follows_a_snapshot_of_the_learned_score() {
    use scorelab::sim::samplers::SamplerKind;
    use scorelab::state::link::{to_hash, EmbedFlags};
    let mut st = scorelab::state::State::default();
    let m = scorelab::sim::mixture::GaussianMixture::from_spec(&st.scene.mixture).unwrap();
    st.samplers[0] = st.samplers[0].with_kind(SamplerKind::Ddim, &m);
    st.samplers[0].eta = 0.5;
    st.layers.sweep = true;
    let mut h = app_with(Some(&to_hash(&st, &EmbedFlags::default())));
    frames(&mut h, 3);
    let got = h.state().state().clone();
    assert_eq!(got.samplers[0].kind, SamplerKind::Ddim);
    assert_eq!(got.samplers[0].eta, 0.5, "η comes back from the link");
    assert!(got.layers.sweep && !got.layers.sweep_learned);
    h.get_by_label("learned model").click();
    frames(&mut h, 3);
    assert!(h.state().state().layers.sweep_learned);
    let s = wait(&mut h, "8 rows of the learned-score sweep", 120.0, |s| {
        let v = &s["views"]["sweep"];
        v["score"] == "learned" && v["rows"].as_array().is_some_and(|r| r.len() >= 8)
    });
    let rows = s["views"]["sweep"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ode = |nfe: u64| {
        rows.iter()
            .find(|r| r["sampler"] == "ddim" && r["nfe"].as_u64() == Some(nfe))
            .and_then(|r| r["ode_error"].as_f64())
            .unwrap_or(f64::NAN)
    };
    let ratio = ode(256) / ode(512);
    assert!(
        (1.6..=2.6).contains(&ratio),
        "DDIM on the learned score: {:.2e} at 256, {:.2e} at 512 (ratio {ratio:.2})",
        ode(256),
        ode(512)
    );
    // The link holds the learned sweep.
    let link = snap(&h)["link"].as_str().unwrap_or("").to_string();
    let mut h2 = app_with(Some(&link[link.find('#').unwrap_or(0)..]));
    frames(&mut h2, 3);
    assert!(
        h2.state().state().layers.sweep_learned,
        "the link keeps the learned sweep"
    );
}

/// The Fullscreen button asks the window to go fullscreen (issue 33; in the browser the same
/// button calls the Fullscreen API).
#[test]
fn the_fullscreen_button_asks_for_fullscreen() {
    use eframe::egui::ViewportCommand;
    let mut h = app();
    h.get_by_label("Fullscreen").click();
    let mut asked = false;
    for _ in 0..3 {
        h.step();
        asked |= h
            .output()
            .viewport_output
            .values()
            .any(|v| v.commands.contains(&ViewportCommand::Fullscreen(true)));
    }
    assert!(asked, "the window was asked to go fullscreen");
}

/// The panel does not move under the pointer when the engine's numbers arrive: every button
/// is where it was on the first frame of a scene opened paused (step 0, no Fisher value) once
/// "Start training" has been clicked and training and the samplers have reported (a Fisher
/// value, a five-digit step count, a finished run); in the default theme and in the projector
/// theme at a large UI scale, with one sampler and with two side by side (A with Metropolis).
/// The sampler's progress bar once appeared with its first report and pushed everything below
/// it down a line, so a click aimed a frame earlier landed above its button (CI's "Show QR"
/// failure); Train/Pause once moved "Step" sideways.
#[test]
fn the_controls_stay_put_when_training_reports() {
    use scorelab::state::{SplitMode, State, Theme};
    for (split, projector) in [(false, false), (true, false), (false, true), (true, true)] {
        let what = format!("split {split}, projector {projector}");
        let mut st = State {
            training: false,
            ..State::default()
        };
        if split {
            st.split = SplitMode::Samplers;
            st.samplers[0].mala = true;
        }
        if projector {
            st.theme = Theme::Projector;
            st.ui_scale = 1.5;
        }
        let hash = scorelab::state::link::to_hash(&st, &Default::default());
        let mut h = app_with(Some(&hash));
        let first = buttons(&h);
        let s0 = snap(&h);
        assert!(
            s0["fisher"].is_null() && s0["step"] == 0,
            "{what}: measured before training ({} {})",
            s0["fisher"],
            s0["step"]
        );
        assert!(first.len() > 10, "{what}: {} buttons", first.len());
        h.get_by_label("Start training").click();
        wait(&mut h, "training's and the samplers' reports", 60.0, |s| {
            s["fisher"].is_number()
                && s["step"].as_u64().unwrap_or(0) >= 10_000
                && s["runs"][0].is_object()
                && (!split || s["runs"][1].is_object())
        });
        h.step();
        let later: Vec<_> = buttons(&h)
            .into_iter()
            .map(|(n, r)| match n.as_str() {
                "Pause training" => ("Start training".to_string(), r),
                _ => (n, r),
            })
            .collect();
        let names =
            |b: &[(String, egui::Rect)]| b.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&later), names(&first), "{what}: the same buttons");
        for ((name, rect), (_, now)) in first.iter().zip(&later) {
            assert!(
                (now.min - rect.min).length() < 0.5,
                "{what}: {name} moved from {:?} to {:?}",
                rect.min,
                now.min
            );
        }
    }
}

/// Every named button on screen with its rectangle, in the panel's order.
fn buttons(h: &App) -> Vec<(String, egui::Rect)> {
    h.query_all_by_role(Role::Button)
        .filter_map(|n| Some((n.accesskit_node().label()?, n.rect())))
        .collect()
}

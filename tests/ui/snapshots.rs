//! Pictures where the picture is the point, rendered by wgpu on lavapipe (the app's own
//! renderer: heatmap textures, the particles' paint callback) and compared with the committed
//! images in tests/snapshots/ with a tolerance (`UPDATE_SNAPSHOTS=1` rewrites them after an
//! intended change; look at the .new.png and .diff.png first). Canvas only (`ui=min`: no
//! status line with its fps), training off from the start, the run finished and not looping,
//! the engine's field (the arrows) arrived: nothing depends on timing.

use super::*;
use scorelab::state::link::{to_hash, EmbedFlags};
use scorelab::state::{ArrowMode, State, Theme};

/// The app rendered with wgpu, opened with `st` as its link, canvas only.
fn rendered(st: &State) -> App {
    let flags = EmbedFlags {
        minimal: true,
        ..EmbedFlags::default()
    };
    let options = AppOptions {
        engine: Some(EngineChoice::Cpu),
        hash: Some(to_hash(st, &flags)),
        ..Default::default()
    };
    let mut h = Harness::builder()
        .with_size([720.0, 560.0])
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| ScoreLabApp::new(cc, None, options));
    h.run_steps(3);
    h
}

/// Up to 0.5% of the pixels may differ by more than the default threshold (lavapipe versions
/// round a few edge pixels differently).
fn compare(h: &mut App, name: &str) {
    let size = h.ctx.content_rect().size();
    let pixels = (size.x * size.y) as usize;
    let options = egui_kittest::SnapshotOptions::new().max_failed_pixels(pixels / 200);
    h.snapshot_options(name, &options);
}

/// ncsn with its true log-density and an annealed-Langevin run of 2000 particles on the exact
/// score: the particles sit on the two modes, about one in five on the light one.
#[test]
fn annealed_langevin_on_ncsn_over_the_true_density() {
    let mut st = State {
        training: false,
        ..State::default()
    };
    st.layers.true_density = true;
    st.layers.trails = false;
    let live = &mut st.samplers[0];
    live.exact = true;
    live.n = 2000;
    live.repeat = false;
    live.speed = 20.0;
    let mut h = rendered(&st);
    let s = wait(&mut h, "the run and the arrows", 60.0, |s| {
        s["runs"][0]["kind"] == "annealed-langevin" && s["field_seq"].as_u64() > Some(0)
    });
    assert!(s["runs"][0]["max_weight_error"].as_f64().unwrap_or(1.0) < 0.03);
    frames(&mut h, 5);
    compare(&mut h, "ncsn-annealed-true-density");
}

/// The projector theme with the responsibilities layer and the denoiser's arrows at t = 0.5
/// (the picture the classroom issue checked under simulated colour blindness).
#[test]
fn projector_theme_responsibilities_and_denoiser() {
    let mut st = State {
        training: false,
        theme: Theme::Projector,
        arrows: ArrowMode::Denoiser,
        ..State::default()
    };
    st.layers.responsibilities = true;
    st.layers.particles = false;
    st.scene.t = 0.5;
    let mut h = rendered(&st);
    wait(&mut h, "the denoiser's field", 60.0, |s| {
        s["field_seq"].as_u64() > Some(0)
    });
    frames(&mut h, 5);
    compare(&mut h, "projector-responsibilities-denoiser");
}

//! The one command path: panel clicks, keys, canvas edits, JS calls, dropped files and
//! links all become [`Command`]s, applied by the app in one place (`app::apply`). The JS
//! embed API queues them through `state::js` (from any thread), which also keeps the typed
//! answers to requests that need a frame (samples, a screenshot) by request id. Imported files are parsed and validated here.
//! No egui or wasm: tested natively.

use crate::engine::EngineChoice;
use crate::sim::mixture::MixtureSpec;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::SamplerKind;
use crate::sim::Vec2;
use crate::state::patch::{parse_scene, ConfigPatch};
use crate::state::{Scene, State, StateError};

/// Largest file `importFile` / a dropped file may be (a width-256, depth-6 model is ≈5 MB).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// A change or a request, from any source.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Replace the whole state (the panel's edited copy, a link, a scene file).
    SetState(Box<State>),
    /// Replace the scene (`setScene`; an undo point, the view refits).
    SetScene(Box<Scene>),
    /// Change settings (`setConfig`).
    SetConfig(Box<ConfigPatch>),
    /// A new mixture: `undo_point` records the old one (once per gesture); `refit` fits the
    /// view to it (a preset).
    SetMixture {
        /// The mixture.
        spec: MixtureSpec,
        /// Record the current mixture for undo first.
        undo_point: bool,
        /// Fit the view to the new mixture.
        refit: bool,
    },
    /// Undo the last mixture edit.
    Undo,
    /// Redo.
    Redo,
    /// Remove the selected component.
    RemoveSelected,
    /// Switch engine (GPU / CPU).
    SetEngine(EngineChoice),
    /// A fresh network.
    ResetNetwork,
    /// Training steps while paused (the Step button).
    TrainSteps(u32),
    /// Play / pause the live samplers.
    TogglePlay,
    /// Select the next (+1) or previous (−1) component (keyboard).
    SelectComponent(i32),
    /// Move the selected component by (dx, dy) of its own standard deviations (keyboard).
    NudgeSelected(f64, f64),
    /// Stop all motion (particles and training), or start both again (WCAG 2.2.2).
    FreezeAll,
    /// One sampler step (pauses first).
    StepSampler,
    /// New runs from fresh noise.
    RestartSampling,
    /// Switch a slot to a sampler with its recommended schedule: (slot, kind).
    PickSampler(usize, SamplerKind),
    /// A click on the canvas at a data point (the click tool decides what it does).
    CanvasClick(Vec2),
    /// Show or hide the keyboard help.
    ToggleHelp,
    /// Open or close the controls drawer (narrow screens).
    ToggleDrawer,
    /// Open lesson N (1-based) with its state, or close the lesson player (`None`).
    OpenLesson(Option<usize>),
    /// The next (+1) or previous (−1) lesson.
    StepLesson(i32),
    /// Answer the lesson's question (predict, then reveal): choice i, or `None` for "just show
    /// me"; the paused run then starts.
    Predict(Option<usize>),
    /// Read the particle positions; the answer is stored under the id.
    Samples(u32),
    /// Particle positions of a live sampler: (id, slot).
    SamplesOf(u32, usize),
    /// Screenshot the plot as a PNG data URL; stored under the id (0: save a file).
    ExportPng(u32),
    /// Start recording a clip of at most this many seconds (`None`: stop and save it).
    Record(Option<f64>),
    /// The drawing network as a model file (JSON); stored under the id (0: save a file).
    ExportModel(u32),
    /// The learned score field at the shown noise level, `[[x, y, sx, sy], …]`.
    Field(u32),
    /// Tweedie's denoiser at the shown noise level on the field's grid,
    /// `[[x, y, Dx, Dy, D*x, D*y, r₁, …, r_K], …]` (learned, exact, responsibilities).
    Denoiser(u32),
    /// The inpainting samples x₂ once the run is complete.
    Inpaint(u32),
    /// Apply an imported (already validated) file.
    Import(Box<Imported>),
    /// Show a message about a file (e.g. a refused drop).
    FileMessage(String),
}

/// A validated imported file.
#[derive(Clone, Debug)]
pub enum Imported {
    /// A model file: config, SDE and weights.
    Model(Box<ScoreNet>),
    /// A scene file (everything a share link holds).
    Scene(Box<State>),
}

impl PartialEq for Imported {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Model(a), Self::Model(b)) => {
                a.mlp.params == b.mlp.params && a.config == b.config
            }
            (Self::Scene(a), Self::Scene(b)) => a == b,
            _ => false,
        }
    }
}

/// Parse and validate an imported file (model JSON or scene JSON). A refused file leaves
/// everything as it was; the message says why.
pub fn parse_import(name: &str, text: &str) -> Result<Imported, StateError> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(format!(
            "{name}: {} bytes; at most {MAX_IMPORT_BYTES} are accepted",
            text.len()
        )
        .into());
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("{name} is not a ScoreLab file (invalid JSON: {e})"))?;
    if value.get("format").is_some() || value.get("params").is_some() {
        let net = ScoreNet::from_json(text).map_err(|e| format!("{name}: model refused: {e}"))?;
        let max_w = crate::gpu::MAX_GPU_WIDTH;
        if net.config.width > max_w || !(1..=6).contains(&net.config.depth) {
            return Err(format!(
                "{name}: model refused: width ≤ {max_w} and depth 1..=6 are supported (got {}×{})",
                net.config.width, net.config.depth
            )
            .into());
        }
        return Ok(Imported::Model(Box::new(net)));
    }
    if value.get("mixture").is_some() {
        let scene = parse_scene(text).map_err(|e| e.within(name))?;
        return Ok(Imported::Scene(Box::new(State {
            scene,
            ..State::default()
        })));
    }
    let mut shared: State = serde_json::from_value(value)
        .map_err(|e| format!("{name} is neither a ScoreLab model nor a scene file: {e}"))?;
    shared.upgrade_legacy();
    shared.validate().map_err(|e| e.within(name))?;
    Ok(Imported::Scene(Box::new(shared)))
}

pub use super::js::{answer, drain, next_id, push, take_answer};

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::sim::model::NetConfig;
    use crate::sim::sde::{Sde, SdeKind};

    #[test]
    fn model_files_round_trip_and_corrupt_ones_are_refused() {
        let net = ScoreNet::new(
            NetConfig {
                width: 16,
                depth: 2,
                ..NetConfig::default()
            },
            Sde::new(SdeKind::Vp, 10.0),
        )
        .expect("valid net");
        let text = serde_json::to_string(&net.to_file(12)).expect("serialises");
        match parse_import("m.json", &text).expect("own model files import") {
            Imported::Model(m) => assert_eq!(m.mlp.params, net.mlp.params),
            Imported::Scene(_) => panic!("a model file imported as a scene"),
        }
        let cut = &text[..text.len() / 2];
        let wrong_count = text.replacen("\"params\":[", "\"params\":[0.5,", 1);
        let nan = text.replacen("\"params\":[", "\"params\":[1e999,", 1);
        let wrong_format = text.replacen("scorelab-model", "other-model", 1);
        for (bad, why) in [
            (cut, "invalid JSON"),
            (wrong_count.as_str(), "model refused"),
            (nan.as_str(), "invalid JSON"),
            (wrong_format.as_str(), "model refused"),
            ("[1,2,3]", "neither"),
            ("{\"hello\":1}", "neither"),
        ] {
            let e = parse_import("m.json", bad)
                .expect_err("corrupt file accepted")
                .to_string();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        }
    }

    #[test]
    fn scene_files_import() {
        let sh = State::default();
        let text = serde_json::to_string_pretty(&sh).expect("serialises");
        match parse_import("s.json", &text).expect("scene imports") {
            Imported::Scene(s) => assert_eq!(*s, sh),
            Imported::Model(_) => panic!("a scene imported as a model"),
        }
    }
}

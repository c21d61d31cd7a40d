//! The egui app (DESIGN §1 "app"): edits a [`Scene`] and asks the science for what to draw.
//! This first shell draws the mixture (1σ/2σ ellipses), samples from it and the exact score
//! field at a chosen noise level, and lets the user drag component means.
//!
//! Data flow per frame: input → `Scene` edits → (if the mixture changed) re-validate and
//! re-sample → paint → publish a JSON snapshot ([`state_json`]) for the JS embed API.

mod canvas;

use std::sync::Mutex;

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::sim::mixture::{presets, GaussianMixture, MixtureSpec};
use crate::sim::rng::StreamRng;
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

/// Everything the user has made: serde-serialisable (URL hash, JS API and CLI speak it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// The data distribution.
    pub mixture: MixtureSpec,
    /// Forward SDE.
    pub sde: SdeKind,
    /// Noise level shown, as SDE time t ∈ [0, 1].
    pub t: f64,
    /// Seed for samples.
    pub seed: u32,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            mixture: presets::by_name("ncsn").unwrap_or(MixtureSpec {
                components: Vec::new(),
            }),
            sde: SdeKind::Ve,
            t: 0.0,
            seed: 0,
        }
    }
}

/// What the renderer runs on, for the status line and `state()`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BackendInfo {
    /// wgpu backend name, e.g. "BrowserWebGpu", "Vulkan", "Gl".
    pub backend: String,
    /// Adapter name.
    pub adapter: String,
    /// Adapter device type, e.g. "Cpu" for lavapipe / SwiftShader.
    pub device_type: String,
}

/// The snapshot published each frame.
#[derive(Clone, Debug, Serialize)]
struct StateSnapshot<'a> {
    backend: &'a str,
    adapter: &'a str,
    device_type: &'a str,
    frame: u64,
    n_samples: usize,
    scene: &'a Scene,
    error: Option<&'a str>,
}

static STATE: Mutex<String> = Mutex::new(String::new());

/// The latest app state as JSON (empty object before the first frame).
pub fn state_json() -> String {
    let s = STATE.lock().map(|s| s.clone()).unwrap_or_default();
    if s.is_empty() {
        "{}".into()
    } else {
        s
    }
}

/// Number of samples drawn from the mixture for display.
const N_SAMPLES: usize = 2000;

/// The application.
pub struct ScoreLabApp {
    scene: Scene,
    mixture: GaussianMixture,
    samples: Vec<Vec2>,
    backend: BackendInfo,
    frame: u64,
    error: Option<String>,
    canvas: canvas::CanvasState,
    on_first_frame: Option<Box<dyn FnOnce()>>,
}

impl ScoreLabApp {
    /// Build from eframe's creation context; `on_first_frame` runs after the first painted frame
    /// (the web shell uses it to signal readiness).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        on_first_frame: Option<Box<dyn FnOnce()>>,
    ) -> Self {
        let backend = cc
            .wgpu_render_state
            .as_ref()
            .map(|rs| {
                let info = rs.adapter.get_info();
                BackendInfo {
                    backend: format!("{:?}", info.backend),
                    adapter: info.name,
                    device_type: format!("{:?}", info.device_type),
                }
            })
            .unwrap_or_default();
        let scene = Scene::default();
        let mixture =
            GaussianMixture::from_spec(&scene.mixture).unwrap_or_else(|_| fallback_mixture());
        let mut app = Self {
            scene,
            mixture,
            samples: Vec::new(),
            backend,
            frame: 0,
            error: None,
            canvas: canvas::CanvasState::default(),
            on_first_frame,
        };
        app.resample();
        app
    }

    fn resample(&mut self) {
        self.samples = self
            .mixture
            .sample(N_SAMPLES, &mut StreamRng::new(self.scene.seed, 0));
    }

    /// Apply an edited mixture: keep it if valid, otherwise keep the last good one and say why.
    fn set_mixture(&mut self, spec: MixtureSpec) {
        match GaussianMixture::from_spec(&spec) {
            Ok(m) => {
                self.scene.mixture = spec;
                self.mixture = m;
                self.error = None;
                self.resample();
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn sde(&self) -> Sde {
        Sde::new(self.scene.sde, self.mixture.max_pairwise_distance())
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("ScoreLab");
        ui.label("Score-based generative models, live.");
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Preset");
            egui::ComboBox::from_id_salt("preset")
                .selected_text("choose…")
                .show_ui(ui, |ui| {
                    for name in presets::NAMES {
                        if ui.selectable_label(false, *name).clicked() {
                            if let Some(spec) = presets::by_name(name) {
                                self.set_mixture(spec);
                                self.canvas.view_box = None;
                            }
                        }
                    }
                });
        });
        ui.horizontal(|ui| {
            ui.label("SDE");
            for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
                ui.selectable_value(&mut self.scene.sde, kind, kind.name().to_uppercase());
            }
        });
        let sde = self.sde();
        ui.add(egui::Slider::new(&mut self.scene.t, 0.0..=1.0).text("noise t"));
        ui.label(format!("σ(t) = {:.3}", sde.effective_sigma(self.scene.t)));
        ui.separator();
        ui.label("Drag a component's centre to move it.");
        ui.label(format!(
            "{} components, {} samples",
            self.mixture.len(),
            self.samples.len()
        ));
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::from_rgb(220, 80, 60), e);
        }
        ui.separator();
        ui.small(format!(
            "Renderer: {} · {} ({})",
            self.backend.backend, self.backend.adapter, self.backend.device_type
        ));
    }

    fn publish_state(&self) {
        let snap = StateSnapshot {
            backend: &self.backend.backend,
            adapter: &self.backend.adapter,
            device_type: &self.backend.device_type,
            frame: self.frame,
            n_samples: self.samples.len(),
            scene: &self.scene,
            error: self.error.as_deref(),
        };
        if let (Ok(text), Ok(mut slot)) = (serde_json::to_string(&snap), STATE.lock()) {
            *slot = text;
        }
    }
}

/// A valid one-component mixture used only if the default preset ever failed validation.
fn fallback_mixture() -> GaussianMixture {
    let spec = MixtureSpec {
        components: vec![crate::sim::mixture::ComponentSpec {
            weight: 1.0,
            mean: [0.0, 0.0],
            cov: [[1.0, 0.0], [0.0, 1.0]],
        }],
    };
    match GaussianMixture::from_spec(&spec) {
        Ok(m) => m,
        Err(e) => unreachable!("the unit Gaussian is valid: {e}"),
    }
}

impl eframe::App for ScoreLabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Panel::left("controls")
            .default_size(260.0)
            .show(ui, |ui| self.controls_ui(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            let sde = self.sde();
            let edit = canvas::canvas_ui(
                ui,
                &mut self.canvas,
                &self.mixture,
                &self.scene.mixture,
                &self.samples,
                &sde,
                self.scene.t,
            );
            if let Some(spec) = edit {
                self.set_mixture(spec);
            }
        });
        self.frame += 1;
        self.publish_state();
        if self.frame == 2 {
            if let Some(f) = self.on_first_frame.take() {
                f();
            }
        }
    }
}

/// Open the native window.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_native() -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1200.0, 800.0])
            .with_title("ScoreLab"),
        ..Default::default()
    };
    eframe::run_native(
        "ScoreLab",
        options,
        Box::new(|cc| Ok(Box::new(ScoreLabApp::new(cc, None)))),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

//! The egui app (DESIGN §1 "app"): edits a [`Scene`] and asks the science for what to draw.
//! This first shell draws the mixture (1σ/2σ ellipses), samples from it and the exact score
//! field at a chosen noise level, and lets the user drag component means.
//!
//! Data flow per frame: input → `Scene` edits → (if the mixture changed) re-validate and
//! re-sample → paint → publish a JSON snapshot ([`state_json`]) for the JS embed API.

mod canvas;
pub mod engine;

use std::sync::Mutex;

use eframe::egui;
use serde::{Deserialize, Serialize};
use web_time::{Duration, Instant};

use crate::app::engine::{CpuEngine, Engine, FieldRequest, GpuEngine, TrainSettings};
use crate::gpu::context::{check_adapter, GpuContext};
use crate::gpu::field::FieldCell;
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

/// The snapshot published each frame (`window.scorelab.state()`).
#[derive(Clone, Debug, Serialize)]
struct StateSnapshot<'a> {
    /// Renderer backend (wgpu's name, e.g. "BrowserWebGpu").
    backend: &'a str,
    adapter: &'a str,
    device_type: &'a str,
    /// Compute engine: "WebGPU", "GPU" or "CPU".
    engine: &'a str,
    /// Why the GPU engine is not used, if it is not.
    fallback_reason: Option<&'a str>,
    frame: u64,
    fps: f64,
    step: u64,
    steps_per_s: f64,
    loss: Option<f64>,
    fisher: Option<f64>,
    /// The training step at which `fisher` was measured.
    fisher_step: Option<u64>,
    n_samples: usize,
    training: bool,
    settings: &'a TrainSettings,
    scene: &'a Scene,
    error: Option<&'a str>,
    warning: Option<&'a str>,
}

/// Which engine to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// WGSL on the GPU.
    Gpu,
    /// `sim` on the CPU.
    Cpu,
}

/// Start-up options from the shell (e.g. the page's `?engine=gpu`).
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Force an engine instead of the automatic choice.
    pub engine: Option<EngineChoice>,
}

/// Which field the arrows show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArrowMode {
    Learned,
    Exact,
    Difference,
}

/// Training history for the charts.
#[derive(Default)]
struct History {
    steps: u64,
    loss: Vec<[f64; 2]>,
    loss_ema: Option<f64>,
    fisher: Vec<[f64; 2]>,
    steps_per_s: f64,
    last_rate_check: Option<(Instant, u64)>,
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
    warning: Option<String>,
    canvas: canvas::CanvasState,
    on_first_frame: Option<Box<dyn FnOnce()>>,
    gpu: Option<(
        eframe::egui_wgpu::wgpu::Device,
        eframe::egui_wgpu::wgpu::Queue,
        eframe::egui_wgpu::wgpu::AdapterInfo,
    )>,
    fallback_reason: Option<String>,
    choice: EngineChoice,
    engine: Option<Box<dyn Engine>>,
    settings: TrainSettings,
    training: bool,
    history: History,
    field: Option<(FieldRequest, Vec<FieldCell>)>,
    arrows: ArrowMode,
    last_frame: Option<Instant>,
    fps: f64,
}

impl ScoreLabApp {
    /// Build from eframe's creation context; `on_first_frame` runs after the first painted frame
    /// (the web shell uses it to signal readiness).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        on_first_frame: Option<Box<dyn FnOnce()>>,
        options: AppOptions,
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
        // The GPU engine needs compute (WebGPU or native); WebGL2 gets the CPU engine + a banner.
        let (gpu, fallback_reason) = match cc.wgpu_render_state.as_ref() {
            Some(rs) => match check_adapter(&rs.adapter) {
                Ok(()) => (
                    Some((rs.device.clone(), rs.queue.clone(), rs.adapter.get_info())),
                    None,
                ),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, Some("no wgpu renderer".to_string())),
        };
        let software = gpu.as_ref().is_none_or(|(_, _, info)| {
            info.device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu
        });
        let settings = if software {
            TrainSettings::small()
        } else {
            TrainSettings::gpu()
        };
        // Measured (see the issue notes): on software WebGPU (SwiftShader) the WGSL trainer runs
        // ~2 steps/s while the wasm CPU engine runs ~80, so software adapters default to the CPU
        // engine; `?engine=gpu` or the panel switch forces the GPU one.
        let choice = options.engine.unwrap_or(if software {
            EngineChoice::Cpu
        } else {
            EngineChoice::Gpu
        });
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
            warning: None,
            canvas: canvas::CanvasState::default(),
            on_first_frame,
            gpu,
            fallback_reason,
            choice,
            engine: None,
            settings,
            training: true,
            history: History::default(),
            field: None,
            arrows: ArrowMode::Learned,
            last_frame: None,
            fps: 0.0,
        };
        app.resample();
        app.rebuild_engine();
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
                if let Some(e) = self.engine.as_mut() {
                    e.set_mixture(&m);
                }
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
        let old_sde = self.scene.sde;
        ui.horizontal(|ui| {
            ui.label("SDE");
            for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
                ui.selectable_value(&mut self.scene.sde, kind, kind.name().to_uppercase());
            }
        });
        if self.scene.sde != old_sde {
            self.rebuild_engine();
        }
        let sde = self.sde();
        ui.add(egui::Slider::new(&mut self.scene.t, 0.0..=1.0).text("noise t"));
        ui.label(format!("σ(t) = {:.3}", sde.effective_sigma(self.scene.t)));
        ui.horizontal(|ui| {
            ui.label("Arrows");
            ui.selectable_value(&mut self.arrows, ArrowMode::Learned, "learned");
            ui.selectable_value(&mut self.arrows, ArrowMode::Exact, "exact");
            ui.selectable_value(&mut self.arrows, ArrowMode::Difference, "difference");
        });
        ui.separator();
        if self.gpu.is_some() {
            let before = self.choice;
            ui.horizontal(|ui| {
                ui.label("Engine");
                ui.selectable_value(&mut self.choice, EngineChoice::Gpu, "GPU (WGSL)");
                ui.selectable_value(&mut self.choice, EngineChoice::Cpu, "CPU");
            });
            if self.choice != before {
                self.rebuild_engine();
            }
        }
        ui.horizontal(|ui| {
            let label = if self.training { "Pause" } else { "Train" };
            if ui.button(label).clicked() {
                self.training = !self.training;
            }
            if ui.button("Reset").clicked() {
                self.rebuild_engine();
            }
        });
        let mut changed = false;
        changed |= ui
            .add(egui::Slider::new(&mut self.settings.width, 8..=256).text("width"))
            .changed();
        changed |= ui
            .add(egui::Slider::new(&mut self.settings.depth, 1..=6).text("depth"))
            .changed();
        changed |= ui
            .add(
                egui::Slider::new(&mut self.settings.batch, 16..=4096)
                    .logarithmic(true)
                    .text("batch"),
            )
            .changed();
        changed |= ui
            .add(
                egui::Slider::new(&mut self.settings.lr, 1e-4..=1e-2)
                    .logarithmic(true)
                    .text("learning rate"),
            )
            .changed();
        if changed {
            self.rebuild_engine();
        }
        ui.label(format!(
            "step {} · {:.0} steps/s",
            self.history.steps, self.history.steps_per_s
        ));
        self.charts_ui(ui);
        ui.separator();
        ui.label("Drag a component's centre to move it; the model keeps training.");
        ui.label(format!(
            "{} components, {} samples",
            self.mixture.len(),
            self.samples.len()
        ));
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::from_rgb(220, 80, 60), e);
        }
        if let Some(w) = &self.warning {
            ui.colored_label(egui::Color32::from_rgb(230, 180, 60), w);
        }
    }

    fn charts_ui(&self, ui: &mut egui::Ui) {
        use egui_plot::{Line, Plot, PlotPoints};
        ui.label("DSM loss");
        Plot::new("loss")
            .height(90.0)
            .allow_scroll(false)
            .allow_drag(false)
            .show(ui, |p| {
                p.line(Line::new(
                    "loss",
                    PlotPoints::from(self.history.loss.clone()),
                ));
            });
        ui.label(format!(
            "Fisher divergence to the exact score{}",
            self.history
                .fisher
                .last()
                .map_or(String::new(), |f| format!(": {:.3}", f[1]))
        ));
        Plot::new("fisher")
            .height(90.0)
            .allow_scroll(false)
            .allow_drag(false)
            .show(ui, |p| {
                p.line(Line::new(
                    "fisher",
                    PlotPoints::from(self.history.fisher.clone()),
                ));
            });
    }

    fn status_line(&self) -> String {
        let engine = self.engine.as_ref().map_or("none", |e| e.label());
        format!(
            "{engine} · {} {} · {:.0} steps/s · {:.0} fps · step {}{}",
            self.backend.backend,
            self.backend.adapter,
            self.history.steps_per_s,
            self.fps,
            self.history.steps,
            self.software_note()
                .map_or(String::new(), |n| format!(" · {n}"))
        )
    }

    /// (Re)create the engine for the current mixture, SDE and settings (fresh network).
    fn rebuild_engine(&mut self) {
        let sde = self.sde();
        let gpu = if self.choice == EngineChoice::Gpu {
            self.gpu.as_ref()
        } else {
            None
        };
        let engine: Result<Box<dyn Engine>, String> = match gpu {
            Some((device, queue, info)) => {
                let ctx = GpuContext::new(device.clone(), queue.clone(), info.clone());
                GpuEngine::new(ctx, &self.mixture, sde, &self.settings)
                    .map(|e| Box::new(e) as Box<dyn Engine>)
            }
            None => CpuEngine::new(&self.mixture, sde, &self.settings)
                .map(|e| Box::new(e) as Box<dyn Engine>),
        };
        match engine {
            Ok(e) => self.engine = Some(e),
            Err(e) => {
                log::error!("cannot start the training engine: {e}");
                self.error = Some(format!("cannot start the training engine: {e}"));
                self.engine = None;
            }
        }
        self.history = History::default();
        self.field = None;
    }

    fn software_note(&self) -> Option<&'static str> {
        match &self.gpu {
            Some((_, _, info)) if info.device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu => {
                Some("software GPU adapter: smaller defaults; the CPU engine is faster here")
            }
            _ => None,
        }
    }

    /// Run the engine for this frame and fold its output into the history.
    fn run_engine(&mut self, view: (Vec2, Vec2)) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let req = FieldRequest {
            lo: view.0,
            hi: view.1,
            n: (canvas::ARROW_GRID, canvas::ARROW_GRID),
            t: self.scene.t,
        };
        let out = engine.frame(Duration::from_millis(8), self.training, Some(req));
        if let Some(steps) = out.steps {
            self.history.steps = steps;
        }
        for (step, loss) in out.losses {
            if loss.is_finite() {
                let ema = self
                    .history
                    .loss_ema
                    .map_or(loss, |e| 0.95 * e + 0.05 * loss);
                self.history.loss_ema = Some(ema);
                if step % 10 == 0 {
                    self.history.loss.push([step as f64, ema]);
                }
            }
        }
        if let Some((step, f)) = out.fisher {
            if f.is_finite() {
                self.history.fisher.push([step as f64, f]);
            }
        }
        if let Some(field) = out.field {
            self.field = Some(field);
        }
        if let Some(w) = out.warning {
            log::warn!("{w}");
            self.warning = Some(w);
        }
        let now = Instant::now();
        match self.history.last_rate_check {
            Some((t0, s0)) if now.duration_since(t0) >= Duration::from_millis(500) => {
                let dt = now.duration_since(t0).as_secs_f64();
                self.history.steps_per_s = (self.history.steps.saturating_sub(s0)) as f64 / dt;
                self.history.last_rate_check = Some((now, self.history.steps));
            }
            None => self.history.last_rate_check = Some((now, self.history.steps)),
            _ => {}
        }
    }

    /// Arrows for the canvas from the latest field, in the chosen mode.
    fn arrows(&self) -> Vec<(Vec2, Vec2)> {
        let Some((req, cells)) = &self.field else {
            return Vec::new();
        };
        let (nx, ny) = req.n;
        cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let (ix, iy) = (c as u32 % nx, c as u32 / nx);
                let f = Vec2::new(
                    (f64::from(ix) + 0.5) / f64::from(nx),
                    (f64::from(iy) + 0.5) / f64::from(ny),
                );
                let p = req.lo + (req.hi - req.lo).component_mul(&f);
                let v = match self.arrows {
                    ArrowMode::Learned => cell.learned,
                    ArrowMode::Exact => cell.exact,
                    ArrowMode::Difference => cell.learned - cell.exact,
                };
                (p, v)
            })
            .collect()
    }

    fn publish_state(&self) {
        let snap = StateSnapshot {
            backend: &self.backend.backend,
            adapter: &self.backend.adapter,
            device_type: &self.backend.device_type,
            engine: self.engine.as_ref().map_or("none", |e| e.label()),
            fallback_reason: self.fallback_reason.as_deref(),
            frame: self.frame,
            fps: self.fps,
            step: self.history.steps,
            steps_per_s: self.history.steps_per_s,
            loss: self.history.loss_ema,
            fisher: self.history.fisher.last().map(|f| f[1]),
            fisher_step: self.history.fisher.last().map(|f| f[0] as u64),
            n_samples: self.samples.len(),
            training: self.training,
            settings: &self.settings,
            scene: &self.scene,
            error: self.error.as_deref(),
            warning: self.warning.as_deref(),
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
        let now = Instant::now();
        if let Some(prev) = self.last_frame {
            let dt = now.duration_since(prev).as_secs_f64().max(1e-6);
            self.fps = if self.fps == 0.0 {
                1.0 / dt
            } else {
                0.9 * self.fps + 0.1 / dt
            };
        }
        self.last_frame = Some(now);
        if let Some(reason) = self.fallback_reason.clone() {
            egui::Panel::top("fallback_banner").show(ui, |ui| {
                ui.colored_label(
                    egui::Color32::from_rgb(240, 190, 80),
                    format!("WebGPU compute is not available here ({reason}); training runs on the CPU engine with smaller defaults."),
                );
            });
        }
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.small(self.status_line());
        });
        egui::Panel::left("controls")
            .default_size(280.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls_ui(ui));
            });
        let arrows = self.arrows();
        let mut view = None;
        egui::CentralPanel::default_margins().show(ui, |ui| {
            let out = canvas::canvas_ui(
                ui,
                &mut self.canvas,
                &self.mixture,
                &self.scene.mixture,
                &self.samples,
                &arrows,
            );
            if let Some(spec) = out.edit {
                self.set_mixture(spec);
            }
            view = Some(out.view);
        });
        if let Some(v) = view {
            self.run_engine(v);
        }
        ui.ctx().request_repaint();
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
        Box::new(|cc| Ok(Box::new(ScoreLabApp::new(cc, None, AppOptions::default())))),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

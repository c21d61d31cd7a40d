//! The egui app (DESIGN §1 "app"): edits a [`Scene`] and asks the science for what to draw.
//! This first shell draws the mixture (1σ/2σ ellipses), samples from it and the exact score
//! field at a chosen noise level, and lets the user drag component means.
//!
//! Data flow per frame: input → `Scene` edits → (if the mixture changed) re-validate and
//! re-sample → paint → publish a JSON snapshot ([`state_json`]) for the JS embed API.

pub mod api;
pub mod canvas;
pub mod engine;
pub mod particles;

use std::sync::{Arc, Mutex};

use eframe::egui;
use eframe::egui_wgpu::wgpu;
use serde::{Deserialize, Serialize};
use web_time::{Duration, Instant};

use crate::app::api::{ArrowMode, Command, ConfigPatch, Layers};
use crate::app::engine::{
    CpuEngine, Engine, FieldRequest, FrameRequest, GpuEngine, LiveSampling, ParticleView,
    SamplerStatus, TrainSettings, TRAIL_SLOTS,
};
use crate::app::particles::ParticleSource;
use crate::gpu::context::{check_adapter, GpuContext};
use crate::gpu::field::FieldCell;
use crate::sim::mixture::{presets, GaussianMixture, MixtureSpec};
use crate::sim::rng::StreamRng;
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

/// Everything the user has made: serde-serialisable (URL hash, JS API and CLI speak it).
/// Missing fields take their defaults; unknown ones are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Live particles (0 when off).
    particles: usize,
    /// The live sampler's run, step, NFE and time.
    sampler: Option<SamplerStatus>,
    sampling: &'a LiveSampling,
    sampling_paused: bool,
    settings: &'a TrainSettings,
    layers: &'a Layers,
    arrows: ArrowMode,
    scene: &'a Scene,
    selected: Option<usize>,
    can_undo: bool,
    can_redo: bool,
    /// The plot's rectangle in CSS pixels [x, y, width, height] (what `exportPng` captures).
    plot_rect: [f32; 4],
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
/// A screenshot waiting to be cut and encoded: (request id, image).
type Shot = (u32, Arc<egui::ColorImage>);
static SHOT: Mutex<Option<Shot>> = Mutex::new(None);

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
/// Columns of the true-density heatmap (rows follow the aspect ratio).
const TRUE_DENSITY_COLS: u32 = 96;
/// Columns of the learned-density heatmap (each cell is a PF-ODE solve).
const LEARNED_DENSITY_COLS_GPU: u32 = 48;
const LEARNED_DENSITY_COLS_CPU: u32 = 24;
/// Nats below the maximum that the heatmap colour ramp spans.
const HEAT_SPAN: f64 = 10.0;
/// Undo history length.
const UNDO_DEPTH: usize = 100;
/// Smallest t the σ slider reaches.
const T_MIN: f64 = 1e-3;

/// A heatmap texture and the grid it shows.
struct Heatmap {
    req: FieldRequest,
    key: u64,
    texture: egui::TextureHandle,
}

/// The CPU engine's particles uploaded into a vertex buffer for the same draw path.
struct CpuParticleUpload {
    buffer: wgpu::Buffer,
    n: u32,
    head: u32,
    filled: u32,
}

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
    gpu: Option<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)>,
    render: Option<(wgpu::Device, wgpu::Queue)>,
    software: bool,
    fallback_reason: Option<String>,
    choice: EngineChoice,
    engine: Option<Box<dyn Engine>>,
    settings: TrainSettings,
    live: LiveSampling,
    sampling_paused: bool,
    training: bool,
    history: History,
    field: Option<(FieldRequest, Vec<FieldCell>)>,
    arrows: ArrowMode,
    layers: Layers,
    sampler: Option<SamplerStatus>,
    cpu_particles: Option<CpuParticleUpload>,
    true_density: Option<Heatmap>,
    learned_density: Option<Heatmap>,
    undo: Vec<MixtureSpec>,
    redo: Vec<MixtureSpec>,
    pending_samples: Vec<u32>,
    plot_rect: egui::Rect,
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
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            particles::install(rs);
        }
        let render = cc
            .wgpu_render_state
            .as_ref()
            .map(|rs| (rs.device.clone(), rs.queue.clone()));
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
        let software = gpu
            .as_ref()
            .is_none_or(|(_, _, info)| info.device_type == wgpu::DeviceType::Cpu);
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
            render,
            software,
            fallback_reason,
            choice,
            engine: None,
            settings,
            live: LiveSampling::small(),
            sampling_paused: false,
            training: true,
            history: History::default(),
            field: None,
            arrows: ArrowMode::Learned,
            layers: Layers::default(),
            sampler: None,
            cpu_particles: None,
            true_density: None,
            learned_density: None,
            undo: Vec::new(),
            redo: Vec::new(),
            pending_samples: Vec::new(),
            plot_rect: egui::Rect::NOTHING,
            last_frame: None,
            fps: 0.0,
        };
        app.live = app.default_sampling();
        app.resample();
        app.rebuild_engine();
        app
    }

    /// Live-sampling defaults for the engine in use (fewer particles on CPU paths).
    fn default_sampling(&self) -> LiveSampling {
        let mut l = if self.choice == EngineChoice::Gpu && self.gpu.is_some() && !self.software {
            LiveSampling::gpu()
        } else {
            LiveSampling::small()
        };
        l.enabled = self.live.enabled;
        l.exact = self.live.exact;
        l
    }

    fn resample(&mut self) {
        self.samples = self
            .mixture
            .sample(N_SAMPLES, &mut StreamRng::new(self.scene.seed, 0));
    }

    /// Apply an edited mixture: keep it if valid, otherwise keep the last good one and say why.
    /// `undo_point` records the current mixture first (one entry per gesture).
    fn set_mixture(&mut self, spec: MixtureSpec, undo_point: bool) {
        match GaussianMixture::from_spec(&spec) {
            Ok(m) => {
                if undo_point && spec != self.scene.mixture {
                    self.undo.push(self.scene.mixture.clone());
                    if self.undo.len() > UNDO_DEPTH {
                        self.undo.remove(0);
                    }
                    self.redo.clear();
                }
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

    fn undo(&mut self) {
        if let Some(prev) = self.undo.pop() {
            self.redo.push(self.scene.mixture.clone());
            self.set_mixture(prev, false);
        }
    }

    fn redo(&mut self) {
        if let Some(next) = self.redo.pop() {
            self.undo.push(self.scene.mixture.clone());
            self.set_mixture(next, false);
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
                                self.set_mixture(spec, true);
                                self.canvas.view_box = None;
                                self.canvas.selected = None;
                            }
                        }
                    }
                });
            let paint = ui
                .selectable_label(self.canvas.paint, "Paint your own")
                .on_hover_text("Brush strokes on the canvas become small Gaussians (the first stroke replaces the mixture). Click again to stop painting.");
            if paint.clicked() {
                self.canvas.paint = !self.canvas.paint;
                self.canvas.paint_fresh = self.canvas.paint;
            }
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.undo.is_empty(), egui::Button::new("Undo"))
                .on_hover_text("Ctrl+Z")
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(!self.redo.is_empty(), egui::Button::new("Redo"))
                .on_hover_text("Ctrl+Shift+Z")
                .clicked()
            {
                self.redo();
            }
        });
        if let Some(k) = self
            .canvas
            .selected
            .filter(|k| *k < self.scene.mixture.components.len())
        {
            let mut w = self.scene.mixture.components[k].weight;
            ui.horizontal(|ui| {
                let r = ui.add(
                    egui::Slider::new(&mut w, 1e-3..=1e3)
                        .logarithmic(true)
                        .text(format!("weight of #{}", k + 1)),
                );
                if r.changed() {
                    let mut s = self.scene.mixture.clone();
                    s.components[k].weight = w;
                    self.set_mixture(s, r.drag_started() || !r.dragged());
                }
                if ui
                    .button("Remove")
                    .on_hover_text("Remove (Delete)")
                    .clicked()
                {
                    self.remove_selected();
                }
            });
        }
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
        let s_lo = sde.effective_sigma(T_MIN).max(1e-6);
        let s_hi = sde.effective_sigma(1.0).max(s_lo * 1.001);
        let mut sigma = sde.effective_sigma(self.scene.t.max(T_MIN));
        if ui
            .add(
                egui::Slider::new(&mut sigma, s_lo..=s_hi)
                    .logarithmic(true)
                    .text("noise σ"),
            )
            .on_hover_text("The noise level every layer is drawn at (log scale). σ is the noise-to-signal ratio s(t)/α(t) of the forward SDE.")
            .changed()
        {
            self.scene.t = t_from_sigma(&sde, sigma);
        }
        ui.label(format!("t = {:.3}", self.scene.t));
        ui.separator();
        ui.label("Layers");
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut self.layers.samples, "data samples");
            ui.checkbox(&mut self.layers.arrows, "score arrows");
        });
        ui.horizontal(|ui| {
            ui.label("Arrows");
            ui.selectable_value(&mut self.arrows, ArrowMode::Learned, "learned");
            ui.selectable_value(&mut self.arrows, ArrowMode::Exact, "exact");
            ui.selectable_value(&mut self.arrows, ArrowMode::Difference, "difference");
        });
        ui.horizontal(|ui| {
            ui.label("Heatmap");
            let mut which = match (self.layers.true_density, self.layers.learned_density) {
                (_, true) => 2,
                (true, false) => 1,
                _ => 0,
            };
            ui.selectable_value(&mut which, 0, "none");
            ui.selectable_value(&mut which, 1, "true log pₜ");
            ui.selectable_value(&mut which, 2, "learned log pₜ")
                .on_hover_text("The model's own log-density at this noise level, from the probability-flow ODE (a few seconds to refresh).");
            self.layers.true_density = which == 1;
            self.layers.learned_density = which == 2;
        });
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.layers.particles, "particles");
            ui.checkbox(&mut self.layers.trails, "trails");
        });
        let mut live = self.live.clone();
        ui.horizontal(|ui| {
            let label = if self.sampling_paused { "Resume" } else { "Freeze" };
            if ui.button(label).on_hover_text("Freeze the particles where they are").clicked() {
                self.sampling_paused = !self.sampling_paused;
                if let Some(e) = self.engine.as_mut() {
                    e.pause_sampling(self.sampling_paused);
                }
            }
            ui.checkbox(&mut live.enabled, "run")
                .on_hover_text("Annealed Langevin (NCSN Alg. 1): L noise levels from large to small, T Langevin steps at each; restarts from noise after each run.");
            ui.selectable_value(&mut live.exact, false, "learned score");
            ui.selectable_value(&mut live.exact, true, "exact");
        });
        let max_n = if self.choice == EngineChoice::Gpu && self.gpu.is_some() {
            engine::MAX_PARTICLES
        } else {
            20_000
        };
        ui.add(
            egui::Slider::new(&mut live.n, 100..=max_n)
                .logarithmic(true)
                .text("particles"),
        );
        if live != self.live {
            self.set_sampling(live);
        }
        ui.separator();
        if self.gpu.is_some() {
            let before = self.choice;
            ui.horizontal(|ui| {
                ui.label("Engine");
                ui.selectable_value(&mut self.choice, EngineChoice::Gpu, "GPU (WGSL)");
                ui.selectable_value(&mut self.choice, EngineChoice::Cpu, "CPU");
            });
            if self.choice != before {
                self.live = self.default_sampling();
                self.rebuild_engine();
            }
        }
        ui.horizontal(|ui| {
            let label = if self.training { "Pause" } else { "Train" };
            if ui.button(label).clicked() {
                self.training = !self.training;
            }
            if ui
                .add_enabled(!self.training, egui::Button::new("Step"))
                .on_hover_text("One training step (while paused)")
                .clicked()
            {
                if let Some(e) = self.engine.as_mut() {
                    e.queue_steps(1);
                }
            }
            if ui
                .button("Reset")
                .on_hover_text("A fresh network")
                .clicked()
            {
                self.rebuild_engine();
            }
        });
        let mut changed = false;
        changed |= ui
            .add(
                egui::Slider::new(&mut self.settings.width, 8..=crate::gpu::MAX_GPU_WIDTH)
                    .text("width"),
            )
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
                egui::Slider::new(&mut self.settings.lr, 1e-5..=1e-1)
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
        ui.label("Drag a centre to move a component, its edge handle to stretch and turn it; scroll over it to change its weight. Double-click adds one, right-click or Delete removes one. Drag the background to pan, scroll to zoom.");
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

    fn set_sampling(&mut self, live: LiveSampling) {
        if let Err(e) = live.validate() {
            self.error = Some(e);
            return;
        }
        self.live = live;
        if let Some(e) = self.engine.as_mut() {
            e.set_sampling(&self.live);
        }
        self.sampler = None;
    }

    fn remove_selected(&mut self) {
        if let Some(k) = self.canvas.selected {
            match canvas::remove_component(&self.scene.mixture, k) {
                Ok(s) => {
                    self.canvas.selected = None;
                    self.set_mixture(s, true);
                }
                Err(m) => self.error = Some(m),
            }
        }
    }

    fn charts_ui(&self, ui: &mut egui::Ui) {
        use egui_plot::{Line, Plot, PlotPoints};
        ui.label("DSM loss");
        Plot::new("loss")
            .height(80.0)
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
            .height(80.0)
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
        let sampler = self.sampler.map_or("particles off".to_string(), |s| {
            format!(
                "{} particles · NFE {} · run {} at t = {:.3}",
                s.n, s.nfe, s.run, s.t
            )
        });
        format!(
            "{engine} engine · {} {} · {:.0} steps/s · {:.0} fps · {sampler} · step {}{}",
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
            Ok(mut e) => {
                e.set_sampling(&self.live);
                e.pause_sampling(self.sampling_paused);
                self.engine = Some(e);
            }
            Err(e) => {
                log::error!("cannot start the training engine: {e}");
                self.error = Some(format!("cannot start the training engine: {e}"));
                self.engine = None;
            }
        }
        self.history = History::default();
        self.field = None;
        self.learned_density = None;
        self.sampler = None;
    }

    fn software_note(&self) -> Option<&'static str> {
        match &self.gpu {
            Some((_, _, info)) if info.device_type == wgpu::DeviceType::Cpu => {
                Some("software GPU adapter: smaller defaults; the CPU engine is faster here")
            }
            None => Some("no WebGPU compute: CPU engine with smaller defaults"),
            _ => None,
        }
    }

    /// A grid over the visible box with `cols` columns and square-ish cells.
    fn grid(view: (Vec2, Vec2), cols: u32, t: f64) -> FieldRequest {
        let span = view.1 - view.0;
        let rows =
            ((f64::from(cols) * span.y / span.x.max(1e-9)).round() as u32).clamp(2, 4 * cols);
        FieldRequest {
            lo: view.0,
            hi: view.1,
            n: (cols, rows),
            t,
        }
    }

    /// Run the engine for this frame and fold its output into the history.
    fn run_engine(&mut self, ctx: &egui::Context, view: (Vec2, Vec2)) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        let t = self.scene.t;
        let field = FieldRequest {
            lo: view.0,
            hi: view.1,
            n: (canvas::ARROW_GRID, canvas::ARROW_GRID),
            t,
        };
        let cols = if engine.label() == "CPU" {
            LEARNED_DENSITY_COLS_CPU
        } else {
            LEARNED_DENSITY_COLS_GPU
        };
        let req = FrameRequest {
            field: self.layers.arrows.then_some(field),
            density: self
                .layers
                .learned_density
                .then(|| Self::grid(view, cols, t)),
        };
        if !self.pending_samples.is_empty() {
            engine.request_samples();
        }
        let out = engine.frame(Duration::from_millis(8), self.training, &req);
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
        if out.sampler.is_some() {
            self.sampler = out.sampler;
        }
        if let Some(samples) = out.samples {
            let json = serde_json::to_string(
                &samples
                    .iter()
                    .map(|p| [p.x as f32, p.y as f32])
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_else(|_| "[]".into());
            for id in self.pending_samples.drain(..) {
                api::answer(id, Ok(json.clone()));
            }
        }
        if let Some((req, lp)) = out.density {
            let key = self.frame;
            self.learned_density = Some(Heatmap {
                req,
                key,
                texture: heat_texture(ctx, "learned_density", &req, &lp),
            });
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

    /// The true perturbed log-density heatmap for the visible box (recomputed on change).
    fn update_true_density(&mut self, ctx: &egui::Context, view: (Vec2, Vec2)) {
        if !self.layers.true_density {
            return;
        }
        let req = Self::grid(view, TRUE_DENSITY_COLS, self.scene.t);
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            serde_json::to_string(&self.scene.mixture)
                .unwrap_or_default()
                .hash(&mut h);
            self.scene.sde.name().hash(&mut h);
            h.finish()
        };
        if self
            .true_density
            .as_ref()
            .is_some_and(|h| h.req == req && h.key == key)
        {
            return;
        }
        let exact = crate::sim::score::ExactScore::new(self.mixture.clone(), self.sde());
        let pt = exact.at(req.t);
        let lp: Vec<f64> = engine::grid_points(&req)
            .iter()
            .map(|x| pt.log_prob(*x))
            .collect();
        self.true_density = Some(Heatmap {
            req,
            key,
            texture: heat_texture(ctx, "true_density", &req, &lp),
        });
    }

    /// Arrows for the canvas from the latest field, in the chosen mode.
    fn arrows(&self) -> Vec<(Vec2, Vec2)> {
        let Some((req, cells)) = &self.field else {
            return Vec::new();
        };
        if !self.layers.arrows {
            return Vec::new();
        }
        engine::grid_points(req)
            .into_iter()
            .zip(cells)
            .map(|(p, cell)| {
                let v = match self.arrows {
                    ArrowMode::Learned => cell.learned,
                    ArrowMode::Exact => cell.exact,
                    ArrowMode::Difference => cell.learned - cell.exact,
                };
                (p, v)
            })
            .collect()
    }

    /// The particles to draw (uploading the CPU engine's into a vertex buffer).
    fn particle_source(&mut self) -> Option<ParticleSource> {
        if !self.layers.particles {
            return None;
        }
        let engine = self.engine.as_ref()?;
        match engine.particles() {
            ParticleView::None => None,
            ParticleView::Gpu(src) => Some(src),
            ParticleView::Cpu(points) => {
                let (device, queue) = self.render.as_ref()?;
                let n = points.len() as u32;
                if self.cpu_particles.as_ref().is_none_or(|u| u.n != n) {
                    self.cpu_particles = Some(CpuParticleUpload {
                        buffer: device.create_buffer(&wgpu::BufferDescriptor {
                            label: Some("cpu_particles"),
                            size: (u64::from(n) * 16 * u64::from(TRAIL_SLOTS)).max(16),
                            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                            mapped_at_creation: false,
                        }),
                        n,
                        head: 0,
                        filled: 0,
                    });
                }
                let up = self.cpu_particles.as_mut()?;
                up.head = (up.head + 1) % TRAIL_SLOTS;
                up.filled = (up.filled + 1).min(TRAIL_SLOTS);
                queue.write_buffer(
                    &up.buffer,
                    u64::from(up.head) * u64::from(n) * 16,
                    bytemuck::cast_slice(points),
                );
                Some(ParticleSource {
                    buffer: up.buffer.clone(),
                    n,
                    slots: TRAIL_SLOTS,
                    head: up.head,
                    filled: up.filled,
                    use_mean: false,
                })
            }
        }
    }

    /// Apply the JS API's queued requests.
    fn apply_commands(&mut self, ctx: &egui::Context) {
        for cmd in api::drain() {
            match cmd {
                Command::SetScene(scene) => {
                    let scene = *scene;
                    let sde_changed = scene.sde != self.scene.sde;
                    self.set_mixture(scene.mixture.clone(), true);
                    self.scene.t = scene.t;
                    self.scene.seed = scene.seed;
                    self.scene.sde = scene.sde;
                    self.canvas.view_box = None;
                    self.canvas.selected = None;
                    self.resample();
                    if sde_changed {
                        self.rebuild_engine();
                    }
                }
                Command::SetConfig(patch) => self.apply_config(&patch),
                Command::Samples(id) => {
                    if self.engine.is_some() && self.live.enabled {
                        self.pending_samples.push(id);
                    } else {
                        api::answer(id, Err("the live particles are off".into()));
                    }
                }
                Command::ExportPng(id) => {
                    ctx.request_screenshot(move |img| {
                        if let Ok(mut s) = SHOT.lock() {
                            *s = Some((id, img));
                        }
                    });
                }
            }
        }
    }

    fn apply_config(&mut self, p: &ConfigPatch) {
        let mut settings = self.settings.clone();
        if let Some(v) = p.width {
            settings.width = v;
        }
        if let Some(v) = p.depth {
            settings.depth = v;
        }
        if let Some(v) = p.batch {
            settings.batch = v;
        }
        if let Some(v) = p.lr {
            settings.lr = v;
        }
        let mut rebuild = settings != self.settings;
        self.settings = settings;
        if let Some(sde) = p.sde {
            rebuild |= sde != self.scene.sde;
            self.scene.sde = sde;
        }
        if let Some(choice) = p.engine {
            if choice != self.choice {
                self.choice = choice;
                self.live = self.default_sampling();
                rebuild = true;
            }
        }
        if let Some(t) = p.t {
            self.scene.t = t;
        }
        if let Some(v) = p.training {
            self.training = v;
        }
        if let Some(v) = p.particles_paused {
            self.sampling_paused = v;
            if let Some(e) = self.engine.as_mut() {
                e.pause_sampling(v);
            }
        }
        if let Some(a) = p.arrows {
            self.arrows = a;
        }
        if let Some(l) = &p.layers {
            l.apply(&mut self.layers);
        }
        let mut live = self.live.clone();
        let live_changed = api::apply_sampling(p, &mut live);
        if rebuild {
            self.live = live;
            self.rebuild_engine();
        } else if live_changed {
            self.set_sampling(live);
        }
    }

    /// Cut a finished screenshot to the plot and answer its export request.
    fn finish_export(&mut self, ppp: f32) {
        let Some((id, img)) = SHOT.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let r = self.plot_rect;
        let [w, h] = img.size;
        let x0 = ((r.min.x * ppp).round().max(0.0) as usize).min(w);
        let y0 = ((r.min.y * ppp).round().max(0.0) as usize).min(h);
        let x1 = ((r.max.x * ppp).round().max(0.0) as usize).min(w);
        let y1 = ((r.max.y * ppp).round().max(0.0) as usize).min(h);
        if x1 <= x0 || y1 <= y0 {
            api::answer(id, Err("the plot is not on screen".into()));
            return;
        }
        let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
        for y in y0..y1 {
            for px in &img.pixels[y * w + x0..y * w + x1] {
                rgba.extend_from_slice(&px.to_array());
            }
        }
        let png = api::encode_png((x1 - x0) as u32, (y1 - y0) as u32, &rgba);
        api::answer(
            id,
            Ok(format!("data:image/png;base64,{}", api::base64(&png))),
        );
    }

    fn publish_state(&self) {
        let r = self.plot_rect;
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
            particles: if self.live.enabled {
                self.sampler.map_or(0, |s| s.n)
            } else {
                0
            },
            sampler: self.sampler,
            sampling: &self.live,
            sampling_paused: self.sampling_paused,
            settings: &self.settings,
            layers: &self.layers,
            arrows: self.arrows,
            scene: &self.scene,
            selected: self.canvas.selected,
            can_undo: !self.undo.is_empty(),
            can_redo: !self.redo.is_empty(),
            plot_rect: if r.is_positive() {
                [r.min.x, r.min.y, r.width(), r.height()]
            } else {
                [0.0; 4]
            },
            error: self.error.as_deref(),
            warning: self.warning.as_deref(),
        };
        if let (Ok(text), Ok(mut slot)) = (serde_json::to_string(&snap), STATE.lock()) {
            *slot = text;
        }
    }

    fn keyboard(&mut self, ctx: &egui::Context) {
        let (undo, redo, delete) = ctx.input_mut(|i| {
            let redo = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            ) || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            let delete = i.consume_key(egui::Modifiers::NONE, egui::Key::Delete)
                || i.consume_key(egui::Modifiers::NONE, egui::Key::Backspace);
            (undo, redo, delete)
        });
        if redo {
            self.redo();
        } else if undo {
            self.undo();
        }
        if delete {
            self.remove_selected();
        }
    }
}

/// t with effective σ(t) = `sigma` (bisection; σ_e is increasing in t for all three SDEs).
pub fn t_from_sigma(sde: &Sde, sigma: f64) -> f64 {
    let (mut lo, mut hi) = (T_MIN, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if sde.effective_sigma(mid) < sigma {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A heatmap texture of log-density values on `req`'s grid (row 0 = lowest y).
fn heat_texture(
    ctx: &egui::Context,
    name: &str,
    req: &FieldRequest,
    lp: &[f64],
) -> egui::TextureHandle {
    let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
    let max = lp
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut pixels = vec![egui::Color32::BLACK; nx * ny];
    for iy in 0..ny {
        for ix in 0..nx {
            let v = lp.get(iy * nx + ix).copied().unwrap_or(f64::NAN);
            let f = if max.is_finite() {
                1.0 + (v - max) / HEAT_SPAN
            } else {
                0.0
            };
            pixels[(ny - 1 - iy) * nx + ix] = canvas::heat_color(f);
        }
    }
    ctx.load_texture(
        name,
        egui::ColorImage::new([nx, ny], pixels),
        egui::TextureOptions::LINEAR,
    )
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
        let ctx = ui.ctx().clone();
        self.finish_export(ctx.pixels_per_point());
        self.apply_commands(&ctx);
        self.keyboard(&ctx);
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
        // A fixed width: the canvas must not shift when the panel's content changes (e.g. the
        // weight row of a selected component), or it would jump under the user's pointer.
        egui::Panel::left("controls")
            .exact_size(300.0)
            .resizable(false)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.controls_ui(ui));
            });
        let arrows = self.arrows();
        let particles = self.particle_source();
        let mut heatmaps = Vec::new();
        if self.layers.true_density {
            if let Some(h) = &self.true_density {
                heatmaps.push((h.texture.id(), h.req.lo, h.req.hi));
            }
        }
        if self.layers.learned_density {
            if let Some(h) = &self.learned_density {
                heatmaps.push((h.texture.id(), h.req.lo, h.req.hi));
            }
        }
        let mut out = None;
        egui::CentralPanel::default_margins().show(ui, |ui| {
            out = Some(canvas::canvas_ui(
                ui,
                &mut self.canvas,
                &self.mixture,
                &self.scene.mixture,
                canvas::CanvasLayers {
                    samples: self.layers.samples.then_some(&self.samples[..]),
                    arrows: &arrows,
                    heatmaps,
                    particles,
                    trails: self.layers.trails,
                },
            ));
        });
        if let Some(out) = out {
            if let Some((spec, gesture)) = out.edit {
                self.set_mixture(spec, gesture);
            }
            if let Some(m) = out.message {
                self.error = Some(m);
            }
            self.plot_rect = out.rect;
            self.update_true_density(&ctx, out.view);
            self.run_engine(&ctx, out.view);
        }
        ctx.request_repaint();
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

//! The egui app (DESIGN §1 "app"): edits a [`Scene`] and asks the science for what to draw.
//! This first shell draws the mixture (1σ/2σ ellipses), samples from it and the exact score
//! field at a chosen noise level, and lets the user drag component means.
//!
//! Data flow per frame: input → `Scene` edits → (if the mixture changed) re-validate and
//! re-sample → paint → publish a JSON snapshot ([`state_json`]) for the JS embed API.

pub mod api;
pub mod canvas;
pub mod explain;
pub mod files;
pub mod lessons;
pub mod particles;
pub mod perf;
pub mod share;

use std::sync::{Arc, Mutex};

use eframe::egui;
use eframe::egui_wgpu::wgpu;
use serde::{Deserialize, Serialize};
use web_time::{Duration, Instant};

use crate::app::api::{ArrowMode, Command, ConfigPatch, Layers};
use crate::app::lessons::{Lessons, RunStats};
use crate::app::particles::ParticleSource;
use crate::app::share::{EmbedFlags, Panels, Shared, SplitMode};
use crate::engine::{
    CpuEngine, Engine, FieldRequest, FrameRequest, GpuEngine, LiveSampling, ParticleView,
    SamplerStatus, TrainSettings, SLOTS, TRAIL_SLOTS,
};
use crate::engine::{EngineChoice, FieldCell};
use crate::gpu::context::{check_adapter, GpuContext};
use crate::sim::mixture::{presets, GaussianMixture, MixtureSpec};
use crate::sim::model::ScoreNet;
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
    /// The frame budget over the last frames (`app::perf`).
    perf: perf::PerfSummary,
    step: u64,
    steps_per_s: f64,
    loss: Option<f64>,
    fisher: Option<f64>,
    /// The training step at which `fisher` was measured.
    fisher_step: Option<u64>,
    n_samples: usize,
    training: bool,
    /// Live particles of sampler 1 (0 when off).
    particles: usize,
    /// Sampler 1's run, step, NFE and time.
    sampler: Option<SamplerStatus>,
    /// Every live sampler's status (the split view shows two).
    samplers: &'a [Option<SamplerStatus>; SLOTS],
    sampling: &'a LiveSampling,
    /// Every live sampler's settings.
    samplings: &'a [LiveSampling; SLOTS],
    /// Mode weights and NLL of each sampler's last finished run.
    runs: [Option<&'a RunStats>; SLOTS],
    split: SplitMode,
    /// The share link of the current state (`#s=…`, with the embed flags).
    link: String,
    /// Why the link the page was opened with was refused, if it was.
    link_error: Option<&'a str>,
    panels: Panels,
    lessons: serde_json::Value,
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

/// Start-up options from the shell (e.g. the page's `?engine=gpu`, its `#s=…` hash).
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Force an engine instead of the automatic choice.
    pub engine: Option<EngineChoice>,
    /// The URL hash the page was opened with (a share link).
    pub hash: Option<String>,
    /// The page's address without the hash (for "Copy link").
    pub page_url: String,
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
    live: [LiveSampling; SLOTS],
    split: SplitMode,
    sampling_paused: bool,
    training: bool,
    history: History,
    field: Option<(FieldRequest, Vec<FieldCell>)>,
    arrows: ArrowMode,
    layers: Layers,
    sampler: [Option<SamplerStatus>; SLOTS],
    runs: [Option<RunStats>; SLOTS],
    cpu_particles: [Option<CpuParticleUpload>; SLOTS],
    lessons: Lessons,
    flags: EmbedFlags,
    link_error: Option<String>,
    page_url: String,
    help_open: bool,
    /// The network to start the next engine from (an imported model).
    import_net: Option<ScoreNet>,
    /// The SDE (data frame) of an imported model, kept until the mixture is edited: a model
    /// is evaluated in the frame it was trained in (files from before frames existed were
    /// trained at the origin with unit scale).
    model_frame: Option<Sde>,
    pending_models: Vec<u32>,
    pending_fields: Vec<(u32, u64)>,
    field_seq: u64,
    /// Messages from the last export / import.
    file_message: Option<String>,
    true_density: Option<Heatmap>,
    learned_density: Option<Heatmap>,
    undo: Vec<MixtureSpec>,
    redo: Vec<MixtureSpec>,
    pending_samples: Vec<(u32, usize)>,
    plot_rect: egui::Rect,
    last_frame: Option<Instant>,
    fps: f64,
    perf: perf::PerfWindow,
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
            live: [LiveSampling::small(), second_sampler()],
            split: SplitMode::Off,
            sampling_paused: false,
            training: true,
            history: History::default(),
            field: None,
            arrows: ArrowMode::Learned,
            layers: Layers::default(),
            sampler: [None; SLOTS],
            runs: [None, None],
            cpu_particles: [None, None],
            lessons: Lessons::default(),
            flags: EmbedFlags::default(),
            link_error: None,
            page_url: options.page_url.clone(),
            help_open: false,
            import_net: None,
            model_frame: None,
            pending_models: Vec::new(),
            pending_fields: Vec::new(),
            field_seq: 0,
            file_message: None,
            true_density: None,
            learned_density: None,
            undo: Vec::new(),
            redo: Vec::new(),
            pending_samples: Vec::new(),
            plot_rect: egui::Rect::NOTHING,
            last_frame: None,
            fps: 0.0,
            perf: perf::PerfWindow::default(),
        };
        app.live[0] = app.default_sampling(0);
        app.live[1] = app.default_sampling(1);
        app.resample();
        if let Some(hash) = options
            .hash
            .as_deref()
            .filter(|h| !h.trim_start_matches('#').is_empty())
        {
            match share::parse_hash(hash) {
                Ok(link) => {
                    app.flags = link.flags;
                    if let Some(shared) = link.shared {
                        app.apply_shared(shared, false);
                    }
                }
                Err(e) => {
                    log::warn!("share link refused: {e}");
                    app.link_error = Some(format!(
                        "This link could not be read ({e}); ScoreLab started with the defaults."
                    ));
                }
            }
        }
        app.rebuild_engine();
        app
    }

    /// The state a share link holds.
    fn shared(&self) -> Shared {
        Shared {
            scene: self.scene.clone(),
            settings: self.settings.clone(),
            samplers: if self.split == SplitMode::Samplers {
                self.live.to_vec()
            } else {
                vec![self.live[0].clone()]
            },
            split: self.split,
            layers: self.layers,
            arrows: self.arrows,
            training: self.training,
            ode_paths: self.lessons.ode_paths,
            probe: self.lessons.probe_at.map(|p| [p.x, p.y]),
            inpaint: self.lessons.inpaint,
            view: self
                .canvas
                .view_box
                .map(|(lo, hi)| [lo.x, lo.y, hi.x, hi.y]),
        }
    }

    /// Restore a shared state (a link or a scene file). `rebuild` restarts the engine.
    fn apply_shared(&mut self, sh: Shared, rebuild: bool) {
        match GaussianMixture::from_spec(&sh.scene.mixture) {
            Ok(m) => self.mixture = m,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        }
        self.scene = sh.scene;
        self.settings = sh.settings;
        for (i, l) in sh.samplers.into_iter().take(SLOTS).enumerate() {
            self.live[i] = l;
        }
        self.split = sh.split;
        self.layers = sh.layers;
        self.arrows = sh.arrows;
        self.training = sh.training;
        self.lessons.ode_paths = sh.ode_paths;
        self.lessons
            .set_probe(sh.probe.map(|p| Vec2::new(p[0], p[1])));
        self.lessons.set_inpaint(sh.inpaint);
        self.canvas.view_box = sh
            .view
            .map(|v| (Vec2::new(v[0], v[1]), Vec2::new(v[2], v[3])));
        self.canvas.selected = None;
        self.runs = [None, None];
        self.resample();
        if rebuild {
            self.rebuild_engine();
        }
    }

    /// The share link of the current state.
    fn link(&self) -> String {
        format!(
            "{}{}",
            self.page_url,
            share::to_hash(&self.shared(), &self.flags)
        )
    }

    /// Whether the GPU engine runs on a real (hardware) adapter.
    fn fast_gpu(&self) -> bool {
        self.choice == EngineChoice::Gpu && self.gpu.is_some() && !self.software
    }

    /// Live-sampling defaults of `slot` for the engine in use (fewer particles on CPU paths).
    fn default_sampling(&self, slot: usize) -> LiveSampling {
        let cur = &self.live[slot];
        let base = if slot == 0 {
            LiveSampling::small()
        } else {
            second_sampler()
        };
        let mut l = base.with_kind(cur.kind, &self.mixture);
        if slot == 0 && cur.kind == base.kind {
            l = base;
        }
        l.n = if self.fast_gpu() {
            LiveSampling::gpu().n
        } else {
            LiveSampling::small().n
        };
        l.enabled = cur.enabled;
        l.exact = cur.exact;
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
                self.mixture = m;
                // The frame follows the data from the first edit on (sim::sde).
                self.model_frame = None;
                let sde = self.sde();
                if let Some(e) = self.engine.as_mut() {
                    e.set_mixture(&self.mixture, &sde);
                }
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

    /// The SDE every engine, picture and exact score uses: the current mixture's frame
    /// (`Sde::for_mixture`), or an imported model's own until the mixture is edited.
    fn sde(&self) -> Sde {
        match self.model_frame {
            Some(s) if s.kind == self.scene.sde => s,
            _ => Sde::for_mixture(self.scene.sde, &self.mixture),
        }
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
        ui.separator();
        self.sampler_ui(ui);
        ui.separator();
        self.paths_ui(ui);
        ui.separator();
        self.conditional_ui(ui);
        ui.separator();
        if self.gpu.is_some() {
            let before = self.choice;
            ui.horizontal(|ui| {
                ui.label("Engine");
                ui.selectable_value(&mut self.choice, EngineChoice::Gpu, "GPU (WGSL)");
                ui.selectable_value(&mut self.choice, EngineChoice::Cpu, "CPU");
            });
            if self.choice != before {
                self.live[0] = self.default_sampling(0);
                self.live[1] = self.default_sampling(1);
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
        if self.flags.panels().charts {
            self.charts_ui(ui);
        }
        ui.separator();
        self.share_ui(ui);
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

    fn set_sampling(&mut self, slot: usize, live: LiveSampling) {
        if let Err(e) = live.validate() {
            self.error = Some(e);
            return;
        }
        self.live[slot] = live;
        if let Some(e) = self.engine.as_mut() {
            e.set_sampling(slot, &self.live[slot]);
        }
        self.sampler[slot] = None;
        self.runs[slot] = None;
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
        let sampler = self.sampler[0].map_or("particles off".to_string(), |s| {
            let diverged = self.runs[0]
                .as_ref()
                .filter(|r| r.run == s.run && r.diverged > 0)
                .map_or(String::new(), |r| {
                    format!(" · {} of {} diverged", r.diverged, r.n)
                });
            format!(
                "{} · {} particles · NFE {} · run {} at t = {:.3}{diverged}",
                s.kind.name(),
                s.n,
                s.nfe,
                s.run,
                s.t
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
        let net = self.import_net.take();
        let engine: Result<Box<dyn Engine>, String> = match gpu {
            Some((device, queue, info)) => {
                let ctx = GpuContext::new(device.clone(), queue.clone(), info.clone());
                GpuEngine::new(ctx, &self.mixture, sde, &self.settings, net)
                    .map(|e| Box::new(e) as Box<dyn Engine>)
            }
            None => CpuEngine::new(&self.mixture, sde, &self.settings, net)
                .map(|e| Box::new(e) as Box<dyn Engine>),
        };
        match engine {
            Ok(mut e) => {
                for slot in 0..SLOTS {
                    let mut live = self.live[slot].clone();
                    live.enabled &= slot == 0 || self.split == SplitMode::Samplers;
                    e.set_sampling(slot, &live);
                }
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
        self.sampler = [None; SLOTS];
        self.runs = [None, None];
        self.lessons.model_changed();
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
        for &(_, slot) in &self.pending_samples {
            engine.request_samples(slot);
        }
        if !self.pending_models.is_empty() || self.lessons.wants_model() {
            engine.request_model();
            self.lessons.model_requested();
        }
        let engine_start = Instant::now();
        let out = engine.frame(Duration::from_millis(8), self.training, &req);
        self.perf.engine(
            engine_start.elapsed().as_secs_f64() * 1e3,
            out.timing,
            engine.gpu_counts(),
        );
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
            self.field_seq += 1;
        }
        for (slot, st) in out.sampler.iter().enumerate() {
            if st.is_some() {
                self.sampler[slot] = *st;
            }
        }
        for got in out.samples {
            if got.done {
                self.runs[got.slot] = Some(RunStats::new(
                    &self.mixture,
                    got.run,
                    self.live[got.slot].kind,
                    &got.points,
                ));
            }
            let json = serde_json::to_string(
                &got.points
                    .iter()
                    .map(|p| [p.x as f32, p.y as f32])
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_else(|_| "[]".into());
            self.pending_samples.retain(|&(id, slot)| {
                if slot == got.slot {
                    api::answer(id, Ok(json.clone()));
                    false
                } else {
                    true
                }
            });
        }
        if let Some(net) = out.model {
            let text = serde_json::to_string(&net.to_file(self.history.steps))
                .map_err(|e| format!("cannot write the model: {e}"));
            for id in self.pending_models.drain(..) {
                if id == 0 {
                    self.file_message = Some(match &text {
                        Ok(t) => {
                            files::save("scorelab-model.json", "application/json", t.as_bytes())
                        }
                        Err(e) => e.clone(),
                    });
                } else {
                    api::answer(id, text.clone());
                }
            }
            self.lessons.set_model(net);
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
        let lp: Vec<f64> = crate::engine::grid_points(&req)
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
        crate::engine::grid_points(req)
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
    fn particle_source(&mut self, slot: usize) -> Option<ParticleSource> {
        if !self.layers.particles {
            return None;
        }
        let engine = self.engine.as_ref()?;
        match engine.particles(slot) {
            ParticleView::None => None,
            ParticleView::Gpu(src) => Some(src),
            ParticleView::Cpu(points) => {
                let (device, queue) = self.render.as_ref()?;
                let n = points.len() as u32;
                if self.cpu_particles[slot].as_ref().is_none_or(|u| u.n != n) {
                    self.cpu_particles[slot] = Some(CpuParticleUpload {
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
                let up = self.cpu_particles[slot].as_mut()?;
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
                Command::Samples(id) => self.ask_samples(id, 0),
                Command::SamplesOf(id, slot) => self.ask_samples(id, slot),
                Command::ExportPng(id) => {
                    ctx.request_screenshot(move |img| {
                        if let Ok(mut s) = SHOT.lock() {
                            *s = Some((id, img));
                        }
                    });
                }
                Command::ExportModel(id) => {
                    if self.engine.is_some() {
                        self.pending_models.push(id);
                    } else {
                        api::answer(id, Err("no training engine is running".into()));
                    }
                }
                Command::Field(id) => self.pending_fields.push((id, self.field_seq)),
                Command::Inpaint(id) => self.lessons.ask_inpaint(id),
                Command::Import(file) => self.apply_import(*file),
                Command::FileMessage(m) => self.file_message = Some(m),
            }
        }
    }

    fn ask_samples(&mut self, id: u32, slot: usize) {
        let on = self.live[slot].enabled && (slot == 0 || self.split == SplitMode::Samplers);
        if self.engine.is_some() && on {
            self.pending_samples.push((id, slot));
        } else {
            api::answer(id, Err(format!("live sampler {} is off", slot + 1)));
        }
    }

    /// Apply a validated imported file: a model replaces the network (its config and SDE
    /// come along); a scene replaces everything a share link holds.
    fn apply_import(&mut self, file: api::Imported) {
        match file {
            api::Imported::Model(net) => {
                self.settings.width = net.config.width;
                self.settings.depth = net.config.depth;
                self.scene.sde = net.sde.kind;
                self.model_frame = Some(net.sde);
                self.import_net = Some(*net);
                self.rebuild_engine();
                self.file_message =
                    Some("Model imported: the network now has the imported weights.".into());
            }
            api::Imported::Scene(sh) => {
                self.apply_shared(*sh, true);
                self.file_message = Some("Scene imported.".into());
            }
        }
    }

    /// Answer `field()` requests from the latest learned field.
    fn answer_fields(&mut self) {
        if self.pending_fields.is_empty() {
            return;
        }
        let Some((req, cells)) = &self.field else {
            return;
        };
        // Only a field computed after the request (and at the shown t) answers it.
        if req.t != self.scene.t {
            return;
        }
        let seq = self.field_seq;
        let ids: Vec<u32> = self
            .pending_fields
            .iter()
            .filter(|(_, asked)| *asked < seq)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return;
        }
        self.pending_fields.retain(|(_, asked)| *asked >= seq);
        let rows: Vec<[f64; 4]> = crate::engine::grid_points(req)
            .iter()
            .zip(cells)
            .map(|(p, c)| [p.x, p.y, c.learned.x, c.learned.y])
            .collect();
        let json = serde_json::to_string(&rows).map_err(|e| e.to_string());
        for id in ids {
            api::answer(id, json.clone());
        }
    }

    fn apply_config(&mut self, p: &ConfigPatch) {
        // A new configuration starts a new frame-budget window (the benchmark reads it).
        self.perf.clear();
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
        let mut rebuild = settings != self.settings || p.reset == Some(true);
        self.settings = settings;
        if let Some(sde) = p.sde {
            rebuild |= sde != self.scene.sde;
            self.scene.sde = sde;
        }
        if let Some(choice) = p.engine {
            if choice != self.choice {
                self.choice = choice;
                self.live[0] = self.default_sampling(0);
                self.live[1] = self.default_sampling(1);
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
        if let Some(split) = p.split {
            self.set_split(split);
        }
        if let Some(v) = p.ode_paths {
            self.lessons.ode_paths = v;
        }
        if let Some(pr) = p.probe {
            self.lessons.set_probe(pr.map(|q| Vec2::new(q[0], q[1])));
        }
        if let Some(i) = p.inpaint {
            self.lessons.set_inpaint(i);
        }
        let slot = p.slot.unwrap_or(0).min(SLOTS - 1);
        let mut live = self.live[slot].clone();
        if let Some(kind) = p.sampler {
            live = live.with_kind(kind, &self.mixture);
        }
        let live_changed = api::apply_sampling(p, &mut live) || p.sampler.is_some();
        if rebuild {
            self.live[slot] = live;
            self.rebuild_engine();
        } else if live_changed {
            self.set_sampling(slot, live);
        }
        if let Some(k) = p.step_sampler {
            if let Some(e) = self.engine.as_mut() {
                e.step_sampling(k);
            }
        }
        if p.restart == Some(true) {
            self.restart_sampling();
        }
    }

    /// New runs from fresh noise.
    fn restart_sampling(&mut self) {
        if let Some(e) = self.engine.as_mut() {
            e.restart_sampling();
        }
        self.runs = [None, None];
    }

    /// Switch the split view (starting or stopping the second sampler).
    fn set_split(&mut self, split: SplitMode) {
        if split == self.split {
            return;
        }
        self.split = split;
        let mut live = self.live[1].clone();
        live.enabled &= split == SplitMode::Samplers;
        if let Some(e) = self.engine.as_mut() {
            e.set_sampling(1, &live);
        }
        self.sampler[1] = None;
        self.runs[1] = None;
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
        if id == 0 {
            self.file_message = Some(files::save("scorelab.png", "image/png", &png));
            return;
        }
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
            perf: self.perf.summary(),
            step: self.history.steps,
            steps_per_s: self.history.steps_per_s,
            loss: self.history.loss_ema,
            fisher: self.history.fisher.last().map(|f| f[1]),
            fisher_step: self.history.fisher.last().map(|f| f[0] as u64),
            n_samples: self.samples.len(),
            training: self.training,
            particles: if self.live[0].enabled {
                self.sampler[0].map_or(0, |s| s.n)
            } else {
                0
            },
            sampler: self.sampler[0],
            samplers: &self.sampler,
            sampling: &self.live[0],
            samplings: &self.live,
            runs: [self.runs[0].as_ref(), self.runs[1].as_ref()],
            split: self.split,
            link: self.link(),
            link_error: self.link_error.as_deref(),
            panels: self.flags.panels(),
            lessons: self.lessons.state_json(),
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
        // Single-key shortcuts (not while a text field has the keyboard).
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let keys = [
            egui::Key::Num1,
            egui::Key::Num2,
            egui::Key::Num3,
            egui::Key::Num4,
            egui::Key::Num5,
            egui::Key::Num6,
            egui::Key::Num7,
            egui::Key::Num8,
            egui::Key::Num9,
        ];
        let (play, step, restart, help, pick) = ctx.input_mut(|i| {
            let none = egui::Modifiers::NONE;
            let pick = keys.iter().position(|k| i.consume_key(none, *k));
            (
                i.consume_key(none, egui::Key::Space),
                i.consume_key(none, egui::Key::S),
                i.consume_key(none, egui::Key::R),
                i.consume_key(none, egui::Key::H)
                    || i.consume_key(egui::Modifiers::SHIFT, egui::Key::Slash)
                    || i.consume_key(none, egui::Key::Questionmark),
                pick,
            )
        });
        if play {
            self.toggle_play();
        }
        if step {
            self.step_once();
        }
        if restart {
            self.restart_sampling();
        }
        if help {
            self.help_open = !self.help_open;
        }
        if let Some(k) = pick.and_then(|k| crate::sim::samplers::SamplerKind::ALL.get(k)) {
            self.pick_sampler(0, *k);
        }
    }

    /// Play / pause the live samplers.
    fn toggle_play(&mut self) {
        self.sampling_paused = !self.sampling_paused;
        if let Some(e) = self.engine.as_mut() {
            e.pause_sampling(self.sampling_paused);
        }
    }

    /// One sampler step (pauses first).
    fn step_once(&mut self) {
        if !self.sampling_paused {
            self.toggle_play();
        }
        if let Some(e) = self.engine.as_mut() {
            e.step_sampling(1);
        }
    }

    /// Switch `slot` to sampler `kind` with its recommended schedule.
    fn pick_sampler(&mut self, slot: usize, kind: crate::sim::samplers::SamplerKind) {
        let mut live = self.live[slot].with_kind(kind, &self.mixture);
        live.enabled = true;
        self.set_sampling(slot, live);
    }
}

/// t in [T_MIN, 1] with effective σ(t) = `sigma` ([`Sde::time_of_sigma`]).
pub fn t_from_sigma(sde: &Sde, sigma: f64) -> f64 {
    sde.time_of_sigma(sigma).max(T_MIN)
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
        self.perf.begin(
            self.last_frame
                .map(|prev| now.duration_since(prev).as_secs_f64() * 1e3),
        );
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
        self.take_dropped_files(&ctx);
        self.keyboard(&ctx);
        let panels = self.flags.panels();
        if let Some(reason) = self.fallback_reason.clone().filter(|_| panels.banner) {
            egui::Panel::top("fallback_banner").show(ui, |ui| {
                ui.colored_label(
                    egui::Color32::from_rgb(240, 190, 80),
                    format!("WebGPU compute is not available here ({reason}); training runs on the CPU engine with smaller defaults."),
                );
            });
        }
        if let Some(e) = self.link_error.clone() {
            egui::Panel::top("link_error").show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.colored_label(egui::Color32::from_rgb(235, 110, 90), e);
                    if ui.small_button("dismiss").clicked() {
                        self.link_error = None;
                    }
                });
            });
        }
        if panels.status {
            egui::Panel::bottom("status").show(ui, |ui| {
                ui.small(self.status_line());
            });
        }
        // A fixed width: the canvas must not shift when the panel's content changes (e.g. the
        // weight row of a selected component), or it would jump under the user's pointer.
        if panels.controls {
            egui::Panel::left("controls")
                .exact_size(300.0)
                .resizable(false)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| self.controls_ui(ui));
                });
        }
        let arrows = self.arrows();
        let split = self.split;
        let n_canvas = if split == SplitMode::Off { 1 } else { 2 };
        let mut sides = Vec::new();
        for side in 0..n_canvas {
            let particle_slot = if split == SplitMode::Samplers {
                side
            } else {
                0
            };
            let particles = self.particle_source(particle_slot);
            let (show_true, show_learned) = match (split, side) {
                (SplitMode::Density, 0) => (true, false),
                (SplitMode::Density, _) => (false, true),
                _ => (self.layers.true_density, self.layers.learned_density),
            };
            let mut heatmaps = Vec::new();
            if show_true {
                if let Some(h) = &self.true_density {
                    heatmaps.push((h.texture.id(), h.req.lo, h.req.hi));
                }
            }
            if show_learned {
                if let Some(h) = &self.learned_density {
                    heatmaps.push((h.texture.id(), h.req.lo, h.req.hi));
                }
            }
            sides.push((particles, heatmaps, self.side_title(side)));
        }
        let extras = self.lessons.overlay();
        let mut outs = Vec::new();
        egui::CentralPanel::default_margins().show(ui, |ui| {
            let mut draw = |ui: &mut egui::Ui, particles, heatmaps, title: Option<String>| {
                canvas::canvas_ui(
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
                        extras: &extras,
                        title,
                    },
                )
            };
            if sides.len() == 1 {
                if let Some((p, h, t)) = sides.pop() {
                    outs.push(draw(ui, p, h, t));
                }
            } else {
                let w = (ui.available_width() - 8.0) / 2.0;
                let h = ui.available_height();
                ui.horizontal(|ui| {
                    for (p, hm, t) in sides.drain(..) {
                        ui.allocate_ui(egui::vec2(w, h), |ui| outs.push(draw(ui, p, hm, t)));
                    }
                });
            }
        });
        if let Some(first) = outs.first() {
            self.plot_rect = outs.iter().fold(first.rect, |r, o| r.union(o.rect));
            let view = first.view;
            for out in outs {
                if let Some((spec, gesture)) = out.edit {
                    self.set_mixture(spec, gesture);
                }
                if let Some(m) = out.message {
                    self.error = Some(m);
                }
                if let Some(p) = out.click {
                    self.lessons.canvas_click(p);
                }
            }
            self.update_true_density(&ctx, view);
            self.run_engine(&ctx, view);
            self.answer_fields();
            let sde = self.sde();
            self.lessons.frame(&self.mixture, &sde, self.live[0].exact);
        }
        if self.help_open {
            self.help_window(&ctx);
        }
        ctx.request_repaint();
        self.frame += 1;
        self.perf.end(now.elapsed().as_secs_f64() * 1e3);
        self.publish_state();
        if self.frame == 2 {
            if let Some(f) = self.on_first_frame.take() {
                f();
            }
        }
    }
}

/// The second live sampler's default (split view): plain Langevin, the failure case beside
/// annealed Langevin (NCSN Fig. 3).
fn second_sampler() -> LiveSampling {
    let mut l = LiveSampling::small();
    l.kind = crate::sim::samplers::SamplerKind::Langevin;
    l.steps = 1000;
    l.eps = 0.05;
    l
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

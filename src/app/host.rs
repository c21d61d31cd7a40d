//! The app's side of the engine layer: starts the engine for the current state, drives it
//! once per frame, folds what it produces into the history, the field, the heatmaps and the
//! run statistics, and answers the JS requests that wait for a frame.

use eframe::egui;
use eframe::egui_wgpu::wgpu;
use web_time::{Duration, Instant};

use crate::app::canvas;
use crate::app::overlays::Lessons;
use crate::app::particles::ParticleSource;
use crate::app::perf::PerfWindow;
use crate::engine::probe::{self, ProbeResult, RateMeter};
use crate::engine::split::SplitEngine;
use crate::engine::{
    self, Engine, EngineChoice, FieldCell, FieldRequest, FrameRequest, LiveSampling, ParticleView,
    SamplerStatus, SLOTS, TRAIL_SLOTS,
};
use crate::gpu::context::{check_adapter, GpuContext};
use crate::sim::denoise;
use crate::sim::metrics::RunStats;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::sde::Sde;
use crate::sim::Vec2;
use crate::state::command as api;
use crate::state::{ArrowMode, Palette, State, Theme};

/// Columns of the true-density heatmap (rows follow the aspect ratio).
const TRUE_DENSITY_COLS: u32 = 96;
/// Columns of the responsibilities layer.
const RESP_COLS: u32 = 96;
/// Opacity of the responsibilities layer over the heatmap.
const RESP_ALPHA: u8 = 150;
/// The denoiser's arrows take every 3rd point of the field grid both ways (8 × 8 of 24 × 24):
/// they are drawn to scale, and a full grid of long arrows hides the picture.
const DENOISER_EVERY: usize = 3;
/// Columns of the learned-density heatmap (each cell is a PF-ODE solve).
const LEARNED_DENSITY_COLS_GPU: u32 = 48;
const LEARNED_DENSITY_COLS_CPU: u32 = 24;
/// Nats below the maximum that the heatmap colour ramp spans.
pub const HEAT_SPAN: f64 = 10.0;

/// What the renderer runs on, for the status line and `state()`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BackendInfo {
    /// wgpu backend name, e.g. "BrowserWebGpu", "Vulkan", "Gl".
    pub backend: String,
    /// Adapter name.
    pub adapter: String,
    /// Adapter device type, e.g. "Cpu" for lavapipe / SwiftShader.
    pub device_type: String,
}

/// The devices the app found at start-up.
#[derive(Default)]
pub struct Platform {
    /// For the status line and `state()`.
    pub backend: BackendInfo,
    /// A device the GPU engine can compute on.
    pub gpu: Option<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)>,
    /// The renderer's device (the CPU engine's particles are uploaded to it).
    pub render: Option<(wgpu::Device, wgpu::Queue)>,
    /// The GPU is a software adapter (or there is none).
    pub software: bool,
    /// Why the GPU engine is not available, if it is not.
    pub fallback_reason: Option<String>,
    /// Run the CPU engine off the UI thread (`engine::remote`).
    pub offload: bool,
    /// Run the engine probe on a software adapter too (`?probe=1`).
    pub probe_software: bool,
}

impl Platform {
    /// From eframe's render state.
    pub fn new(rs: Option<&eframe::egui_wgpu::RenderState>) -> Self {
        let backend = rs
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
        let (gpu, fallback_reason) = match rs {
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
        Self {
            backend,
            gpu,
            render: rs.map(|rs| (rs.device.clone(), rs.queue.clone())),
            software,
            fallback_reason,
            offload: true,
            probe_software: false,
        }
    }

    /// Whether `choice` runs on a real (hardware) GPU.
    pub fn fast_gpu(&self, choice: EngineChoice) -> bool {
        choice == EngineChoice::Gpu && self.gpu.is_some() && !self.software
    }

    /// Why smaller defaults are in use, for the status line.
    pub fn software_note(&self) -> Option<&'static str> {
        match &self.gpu {
            Some((_, _, info)) if info.device_type == wgpu::DeviceType::Cpu => {
                Some("software GPU adapter: smaller defaults")
            }
            None => Some("no WebGPU compute: CPU engine with smaller defaults"),
            _ => None,
        }
    }
}

/// Training history for the charts.
#[derive(Default)]
pub struct History {
    /// Training steps so far.
    pub steps: u64,
    /// (step, EMA of the loss) every 10 steps.
    pub loss: Vec<[f64; 2]>,
    /// EMA of the loss.
    pub loss_ema: Option<f64>,
    /// (step, mean relative Fisher divergence).
    pub fisher: Vec<[f64; 2]>,
    /// Training speed.
    pub steps_per_s: f64,
    last_rate_check: Option<(Instant, u64)>,
}

/// A heatmap texture and the grid it shows.
pub struct Heatmap {
    /// The grid.
    pub req: FieldRequest,
    key: (u64, HeatLook),
    /// The texture.
    pub texture: egui::TextureHandle,
    /// Cells whose log-density is not a finite number (drawn in [`NOT_FINITE_COLORS`]).
    pub non_finite: usize,
}

/// A cell whose log-density is NaN or ±∞ is drawn in a magenta / dark checker, so it can
/// never pass for "very unlikely" (the palette's lowest colour).
pub const NOT_FINITE_COLORS: [egui::Color32; 2] = [
    egui::Color32::from_rgb(230, 0, 200),
    egui::Color32::from_rgb(60, 0, 50),
];

/// The CPU engine's particles uploaded into a vertex buffer for the same draw path.
struct CpuParticleUpload {
    buffer: wgpu::Buffer,
    n: u32,
    head: u32,
    filled: u32,
}

/// Messages from a frame of the engine.
#[derive(Default)]
pub struct Said {
    /// A divergence or engine problem.
    pub warning: Option<String>,
    /// Where an exported model went.
    pub file_message: Option<String>,
}

/// What a request for the latest field is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldAnswer {
    /// `field()`: `[[x, y, sx, sy], …]`, the learned score.
    Score,
    /// `denoiser()`: `[[x, y, Dx, Dy, D*x, D*y, r₁, …, r_K], …]`: Tweedie's denoiser from
    /// the learned score, from the exact score, and the exact responsibilities p(k | x_t).
    Denoiser,
}

/// Requests that wait for the engine.
#[derive(Default)]
pub struct Pending {
    /// Model exports (id 0: save a file).
    pub models: Vec<u32>,
    /// `field()` / `denoiser()` requests and the field sequence number when asked.
    pub fields: Vec<(u32, u64, FieldAnswer)>,
    /// `samples()` requests: (id, slot).
    pub samples: Vec<(u32, usize)>,
}

/// Both engines side by side after a (re)build in automatic mode (`engine::probe`).
struct ProbeRun {
    /// The other engine: trains and samples like the main one, its output only measured.
    challenger: Box<dyn Engine>,
    started: Instant,
    /// Frames drawn since it started.
    frames: u32,
    main: RateMeter,
    other: RateMeter,
}

/// What starting the probe's other engine needs, kept until the first engine has trained.
struct PendingProbe {
    gpu: (wgpu::Device, wgpu::Queue, wgpu::AdapterInfo),
    sde: Sde,
    net: Option<ScoreNet>,
    offload: bool,
}

/// The engine and everything that comes out of it.
pub struct Host {
    /// The running engine (none if it could not start).
    pub engine: Option<Box<dyn Engine>>,
    /// Which engine the user chose (or the automatic choice).
    pub choice: EngineChoice,
    /// No engine was forced (`?engine=`, the panel, `setConfig`): each (re)build measures both
    /// engines and keeps the faster (`engine::probe`).
    pub auto: bool,
    /// Train on the CPU engine and sample on the GPU engine (`?engine=split`).
    pub split: bool,
    probe: Option<ProbeRun>,
    pending_probe: Option<PendingProbe>,
    /// The last probe's measurements and choice.
    pub probe_result: Option<ProbeResult>,
    /// Loss and Fisher history.
    pub history: History,
    /// The latest field and the request it answers.
    pub field: Option<(FieldRequest, Vec<FieldCell>)>,
    /// Fields received so far (the score arrows, the denoiser).
    pub field_seq: u64,
    /// Each live sampler's progress.
    pub sampler: [Option<SamplerStatus>; SLOTS],
    /// Each live sampler's last finished run.
    pub runs: [Option<RunStats>; SLOTS],
    /// Each slot's run that was in flight (or had finished) when the mixture last changed:
    /// part of it followed the old mixture's score, so its statistics are not shown
    /// ([`Host::mixture_changed`]).
    stale: [Option<u32>; SLOTS],
    /// The network to start the next engine from (an imported model).
    pub import_net: Option<ScoreNet>,
    /// The SDE (data frame) of an imported model, kept until the mixture is edited: a model
    /// is evaluated in the frame it was trained in (files from before frames existed were
    /// trained at the origin with unit scale).
    pub model_frame: Option<Sde>,
    /// Requests waiting for the engine.
    pub pending: Pending,
    cpu_particles: [Option<CpuParticleUpload>; SLOTS],
    /// The true log p_t heatmap.
    pub true_density: Option<Heatmap>,
    /// The learned (PF-ODE) log-density heatmap.
    pub learned_density: Option<Heatmap>,
    /// The exact responsibilities p(k | x_t), as component colours.
    pub responsibilities: Option<Heatmap>,
}

impl Host {
    /// No engine yet ([`Host::rebuild`] starts one).
    pub fn new(choice: EngineChoice) -> Self {
        Self {
            engine: None,
            choice,
            auto: false,
            split: false,
            probe: None,
            pending_probe: None,
            probe_result: None,
            history: History::default(),
            field: None,
            field_seq: 0,
            sampler: [None; SLOTS],
            runs: [None, None],
            stale: [None, None],
            import_net: None,
            model_frame: None,
            pending: Pending::default(),
            cpu_particles: [None, None],
            true_density: None,
            learned_density: None,
            responsibilities: None,
        }
    }

    /// The SDE every engine, picture and exact score uses: the mixture's frame
    /// (`Sde::for_mixture`), or an imported model's own until the mixture is edited.
    pub fn sde(&self, st: &State, mixture: &GaussianMixture) -> Sde {
        match self.model_frame {
            Some(s) if s.kind == st.scene.sde => s,
            _ => Sde::for_mixture(st.scene.sde, mixture),
        }
    }

    /// (Re)create the engine for the state (fresh network unless a model was imported).
    pub fn rebuild(
        &mut self,
        platform: &Platform,
        st: &State,
        mixture: &GaussianMixture,
    ) -> Option<String> {
        let gpu = match (&platform.gpu, self.choice) {
            (Some((device, queue, info)), EngineChoice::Gpu) => {
                Some(GpuContext::new(device.clone(), queue.clone(), info.clone()))
            }
            _ => None,
        };
        let sde = self.sde(st, mixture);
        let net = self.import_net.take();
        let mut error = None;
        self.probe = None;
        let challenger_net = net.clone();
        let started = match (&platform.gpu, self.split) {
            (Some((device, queue, info)), true) => {
                let gpu = GpuContext::new(device.clone(), queue.clone(), info.clone());
                let settings = &st.settings;
                engine::start(None, mixture, sde, settings, net.clone(), platform.offload).and_then(
                    |train| {
                        let sample = engine::start(Some(gpu), mixture, sde, settings, net, false)?;
                        Ok(Box::new(SplitEngine::new(train, sample)) as Box<dyn Engine>)
                    },
                )
            }
            _ => engine::start(gpu, mixture, sde, &st.settings, net, platform.offload),
        };
        match started {
            Ok(mut e) => {
                for slot in 0..SLOTS {
                    e.set_sampling(slot, &st.running(slot));
                }
                e.pause_sampling(st.paused);
                self.engine = Some(e);
                // A new engine numbers its runs from 0 again: none of them is stale.
                self.stale = [None; SLOTS];
                self.pending_probe = None;
                if self.auto && platform.software && !platform.probe_software {
                    if let Some((_, _, info)) = &platform.gpu {
                        self.probe_result = Some(ProbeResult::software(&info.name));
                    }
                } else if self.auto && !self.probe_was_decisive() {
                    // Started once the first engine has trained: creating the other engine
                    // (a software adapter compiles its pipelines on the CPU) must not hold
                    // up the page's first frames.
                    self.pending_probe = platform.gpu.clone().map(|gpu| PendingProbe {
                        gpu,
                        sde,
                        net: challenger_net,
                        offload: platform.offload,
                    });
                }
            }
            Err(e) => {
                log::error!("cannot start the training engine: {e}");
                error = Some(format!("cannot start the training engine: {e}"));
                self.engine = None;
            }
        }
        self.history = History::default();
        self.field = None;
        self.learned_density = None;
        self.sampler = [None; SLOTS];
        self.runs = [None, None];
        error
    }

    /// A finished probe measured one engine at least 10× faster at training: later rebuilds
    /// (a network-size change) keep its choice instead of measuring again.
    fn probe_was_decisive(&self) -> bool {
        self.probe_result.as_ref().is_some_and(|r| {
            r.measured && {
                let (a, b) = (r.cpu_steps_per_s, r.gpu_steps_per_s);
                a.max(b) >= 10.0 * a.min(b) && a.max(b) > 0.0
            }
        })
    }

    /// Start the other engine beside the main one.
    fn start_probe(&mut self, st: &State, mixture: &GaussianMixture, pending: PendingProbe) {
        let PendingProbe {
            gpu: (device, queue, info),
            sde,
            net,
            offload,
        } = pending;
        let (other, gpu) = match self.choice {
            EngineChoice::Cpu => (
                EngineChoice::Gpu,
                Some(GpuContext::new(device, queue, info)),
            ),
            EngineChoice::Gpu => (EngineChoice::Cpu, None),
        };
        match engine::start(gpu, mixture, sde, &st.settings, net, offload) {
            Ok(mut e) => {
                for slot in 0..SLOTS {
                    e.set_sampling(slot, &st.running(slot));
                }
                e.pause_sampling(st.paused);
                self.probe = Some(ProbeRun {
                    challenger: e,
                    started: Instant::now(),
                    frames: 0,
                    main: RateMeter::new(),
                    other: RateMeter::new(),
                });
                self.probe_result = None;
                log::info!("engine probe: {:?} beside {:?}", other, self.choice);
            }
            Err(e) => log::warn!("engine probe: the {other:?} engine could not start ({e})"),
        }
    }

    /// The running engine and, while probing, the other one: the app's requests go to both.
    pub fn engines_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Engine>> {
        self.engine
            .iter_mut()
            .chain(self.probe.iter_mut().map(|p| &mut p.challenger))
    }

    /// Whether the engine probe is running or about to start.
    pub fn probing(&self) -> bool {
        self.probe.is_some() || self.pending_probe.is_some()
    }

    /// Stop probing and forget the last probe (an engine was forced).
    pub fn stop_probe(&mut self) {
        self.probe = None;
        self.pending_probe = None;
        self.probe_result = None;
    }

    /// One frame of the challenger; at the end of the window, keep the faster engine.
    fn step_probe(&mut self, st: &State) {
        let Some(p) = self.probe.as_mut() else {
            return;
        };
        let budget = match p.challenger.choice() {
            EngineChoice::Cpu => engine::BASE_BUDGET,
            EngineChoice::Gpu => Duration::from_millis(8),
        };
        let out = p
            .challenger
            .frame(budget, st.training, &FrameRequest::default());
        let now = Instant::now();
        p.other.observe(now, &out);
        p.frames += 1;
        if !probe::finished(p.started, now, p.frames, &p.main, &p.other) {
            return;
        }
        let Some(p) = self.probe.take() else {
            return;
        };
        let (cpu, gpu) = match self.choice {
            EngineChoice::Cpu => (&p.main, &p.other),
            EngineChoice::Gpu => (&p.other, &p.main),
        };
        let result = probe::decide(self.choice, cpu, gpu);
        log::info!("engine probe: {}", result.reason);
        if result.split {
            // Both engines stay: the faster trainer trains, the other samples with its network.
            let Some(main) = self.engine.take() else {
                return;
            };
            let (train, sample) = if result.picked == self.choice {
                (main, p.challenger)
            } else {
                (p.challenger, main)
            };
            self.engine = Some(Box::new(SplitEngine::new(train, sample)));
            if result.picked != self.choice {
                self.history = History::default();
            }
            self.choice = result.picked;
            self.field = None;
            self.learned_density = None;
            self.sampler = [None; SLOTS];
            self.runs = [None, None];
        } else if result.picked != self.choice {
            // The challenger trained through the window too: it continues from where it is.
            self.engine = Some(p.challenger);
            self.choice = result.picked;
            self.history = History::default();
            self.field = None;
            self.learned_density = None;
            self.sampler = [None; SLOTS];
            self.runs = [None, None];
        }
        self.probe_result = Some(result);
    }

    /// Restart live sampler `slot` with `live`.
    pub fn set_sampling(&mut self, slot: usize, live: &LiveSampling) {
        if let Some(e) = self.engine.as_mut() {
            e.set_sampling(slot, live);
        }
        if let Some(p) = self.probe.as_mut() {
            p.challenger.set_sampling(slot, live);
        }
        self.sampler[slot] = None;
        self.runs[slot] = None;
        self.stale[slot] = None;
    }

    /// The mixture changed (a preset, a drag, an undo): the runs in flight go on with the new
    /// score (the particles follow the drag) but their statistics would mix two mixtures, so
    /// the panel shows none until a run that started after the change finishes (the next
    /// loop, or Restart with the loop off).
    pub fn mixture_changed(&mut self) {
        for slot in 0..SLOTS {
            self.runs[slot] = None;
            self.stale[slot] = self.sampler[slot].map(|s| s.run);
        }
    }

    /// Ask for the particles of `slot` (answered when the engine reads them back).
    pub fn ask_samples(&mut self, st: &State, id: u32, slot: usize) {
        if self.engine.is_some() && st.running(slot).enabled {
            self.pending.samples.push((id, slot));
        } else {
            api::answer(id, Err(format!("live sampler {} is off", slot + 1)));
        }
    }

    /// Queue a `field()` request (answered by the next field computed after it).
    pub fn ask_field(&mut self, id: u32, what: FieldAnswer) {
        self.pending.fields.push((id, self.field_seq, what));
    }

    /// Run the engine for this frame and fold its output in.
    pub fn frame(
        &mut self,
        ctx: &egui::Context,
        st: &State,
        mixture: &GaussianMixture,
        view: (Vec2, Vec2),
        lessons: &mut Lessons,
        perf: &mut PerfWindow,
    ) -> Said {
        let mut said = Said::default();
        let Some(engine) = self.engine.as_mut() else {
            return said;
        };
        let t = st.scene.t;
        let field = FieldRequest {
            lo: view.0,
            hi: view.1,
            n: (canvas::ARROW_GRID, canvas::ARROW_GRID),
            t,
        };
        let cols = match engine.sampling_choice() {
            EngineChoice::Cpu => LEARNED_DENSITY_COLS_CPU,
            EngineChoice::Gpu => LEARNED_DENSITY_COLS_GPU,
        };
        let req = FrameRequest {
            // A `field()` / `denoiser()` request is answered with the arrows off too.
            field: (st.layers.arrows || !self.pending.fields.is_empty()).then_some(field),
            density: st
                .layers
                .learned_density
                .then(|| FieldRequest::square_cells(view.0, view.1, cols, t)),
        };
        for &(_, slot) in &self.pending.samples {
            engine.request_samples(slot);
        }
        if !self.pending.models.is_empty() || lessons.wants_model() {
            engine.request_model();
            lessons.model_requested();
        }
        let engine_start = Instant::now();
        let budget = match engine.choice() {
            EngineChoice::Cpu => perf.cpu_budget(),
            EngineChoice::Gpu => Duration::from_millis(8),
        };
        let out = engine.frame(budget, st.training, &req);
        if let Some(p) = self.probe.as_mut() {
            p.main.observe(Instant::now(), &out);
        }
        perf.engine(
            engine_start.elapsed().as_secs_f64() * 1e3,
            out.timing,
            engine.gpu_counts(),
        );
        let h = &mut self.history;
        if let Some(steps) = out.steps {
            h.steps = steps;
        }
        for (step, loss) in out.losses {
            if loss.is_finite() {
                let ema = h.loss_ema.map_or(loss, |e| 0.95 * e + 0.05 * loss);
                h.loss_ema = Some(ema);
                if step % 10 == 0 {
                    h.loss.push([step as f64, ema]);
                }
            }
        }
        if let Some((step, f)) = out.fisher {
            if f.is_finite() {
                h.fisher.push([step as f64, f]);
            }
        }
        if let Some(field) = out.field {
            self.field = Some(field);
            self.field_seq += 1;
        }
        for (slot, s) in out.sampler.iter().enumerate() {
            if s.is_some() {
                self.sampler[slot] = *s;
            }
        }
        for got in out.samples {
            let stale = self.stale.get(got.slot) == Some(&Some(got.run));
            if got.done && !stale {
                let kind = st.samplers[got.slot].kind;
                self.runs[got.slot] = Some(RunStats::new(mixture, got.run, kind, &got.points));
            }
            let pts: Vec<[f32; 2]> = got
                .points
                .iter()
                .map(|p| [p.x as f32, p.y as f32])
                .collect();
            let json = serde_json::to_string(&pts).unwrap_or_else(|_| "[]".into());
            self.pending.samples.retain(|&(id, slot)| {
                let answered = slot == got.slot;
                if answered {
                    api::answer(id, Ok(json.clone()));
                }
                !answered
            });
        }
        if let Some(net) = out.model {
            let text = serde_json::to_string(&net.to_file(self.history.steps))
                .map_err(|e| format!("cannot write the model: {e}"));
            for id in self.pending.models.drain(..) {
                if id == 0 {
                    said.file_message = Some(match &text {
                        Ok(t) => crate::app::files::save(
                            "scorelab-model.json",
                            "application/json",
                            t.as_bytes(),
                        ),
                        Err(e) => e.clone(),
                    });
                } else {
                    api::answer(id, text.clone());
                }
            }
            lessons.set_model(net);
        }
        if let Some((req, lp)) = out.density {
            let (texture, non_finite) =
                heat_texture(ctx, "learned_density", &req, &lp, heat_look(st));
            self.learned_density = Some(Heatmap {
                req,
                key: (0, heat_look(st)),
                texture,
                non_finite,
            });
        }
        self.update_rate();
        if self.history.steps > 0 {
            if let Some(p) = self.pending_probe.take() {
                self.start_probe(st, mixture, p);
            }
        }
        self.step_probe(st);
        if let Some(w) = &out.warning {
            log::warn!("{w}");
        }
        said.warning = out.warning;
        said
    }

    fn update_rate(&mut self) {
        let h = &mut self.history;
        let now = Instant::now();
        match h.last_rate_check {
            Some((t0, s0)) if now.duration_since(t0) >= Duration::from_millis(500) => {
                let dt = now.duration_since(t0).as_secs_f64();
                h.steps_per_s = (h.steps.saturating_sub(s0)) as f64 / dt;
                h.last_rate_check = Some((now, h.steps));
            }
            None => h.last_rate_check = Some((now, h.steps)),
            _ => {}
        }
    }

    /// The grid (`cols` columns over the visible box at the shown t), the cache key (the
    /// mixture's `revision`, the SDE and the palette) and the SDE of a heatmap computed on the
    /// CPU; `None` when `cached` already holds it.
    fn heat_job(
        &self,
        st: &State,
        mixture: &GaussianMixture,
        revision: u64,
        view: (Vec2, Vec2),
        cols: u32,
        cached: &Option<Heatmap>,
    ) -> Option<(FieldRequest, (u64, HeatLook), Sde)> {
        let req = FieldRequest::square_cells(view.0, view.1, cols, st.scene.t);
        let sde = self.sde(st, mixture);
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            revision.hash(&mut h);
            format!("{sde:?}").hash(&mut h);
            (h.finish(), heat_look(st))
        };
        let fresh = cached
            .as_ref()
            .is_some_and(|h| h.req == req && h.key == key);
        (!fresh).then_some((req, key, sde))
    }

    /// The true perturbed log-density heatmap for the visible box (recomputed when the grid,
    /// the mixture's `revision`, the SDE or the palette change).
    pub fn update_true_density(
        &mut self,
        ctx: &egui::Context,
        st: &State,
        mixture: &GaussianMixture,
        revision: u64,
        view: (Vec2, Vec2),
    ) {
        if !st.layers.true_density && st.split != crate::state::SplitMode::Density {
            return;
        }
        let cols = TRUE_DENSITY_COLS;
        let Some((req, key, sde)) =
            self.heat_job(st, mixture, revision, view, cols, &self.true_density)
        else {
            return;
        };
        let exact = crate::sim::score::ExactScore::new(mixture.clone(), sde);
        let pt = exact.at(req.t);
        let lp: Vec<f64> = req.points().iter().map(|x| pt.log_prob(*x)).collect();
        let (texture, non_finite) = heat_texture(ctx, "true_density", &req, &lp, heat_look(st));
        self.true_density = Some(Heatmap {
            req,
            key,
            texture,
            non_finite,
        });
    }

    /// Arrows for the canvas from the latest field, in the chosen mode, with a signed value
    /// for the difference map: the error's component along the exact score (positive: the
    /// network pulls too hard that way; negative: too weakly or the wrong way); NaN otherwise.
    pub fn arrows(&self, st: &State) -> Vec<(Vec2, Vec2, f64)> {
        let Some((req, cells)) = &self.field else {
            return Vec::new();
        };
        if !st.layers.arrows {
            return Vec::new();
        }
        req.points()
            .into_iter()
            .zip(cells)
            .map(|(p, cell)| match st.arrows {
                ArrowMode::Learned => (p, cell.learned, f64::NAN),
                ArrowMode::Exact => (p, cell.exact, f64::NAN),
                ArrowMode::Difference => {
                    let d = cell.learned - cell.exact;
                    let n = cell.exact.norm();
                    let along = if n > 0.0 { d.dot(&cell.exact) / n } else { 0.0 };
                    (p, d, along)
                }
                // Drawn to scale by `denoiser_arrows` instead.
                ArrowMode::Denoiser => (p, Vec2::zeros(), f64::NAN),
            })
            .collect()
    }

    /// Answer `field()` / `denoiser()` requests from the latest learned field computed after
    /// them at the state's `t` (`mixture` gives the exact responsibilities).
    pub fn answer_fields(&mut self, st: &State, mixture: &GaussianMixture) {
        let t = st.scene.t;
        let sde = self.sde(st, mixture);
        let Some((req, cells)) = &self.field else {
            return;
        };
        if self.pending.fields.is_empty() || req.t != t {
            return;
        }
        let seq = self.field_seq;
        let (due, wait): (Vec<_>, Vec<_>) = self
            .pending
            .fields
            .iter()
            .partition(|(_, asked, _)| *asked < seq);
        if due.is_empty() {
            return;
        }
        self.pending.fields = wait;
        let points = req.points();
        let score_rows = || -> Vec<Vec<f64>> {
            points
                .iter()
                .zip(cells)
                .map(|(p, c)| vec![p.x, p.y, c.learned.x, c.learned.y])
                .collect()
        };
        let denoiser_rows = || -> Vec<Vec<f64>> {
            points
                .iter()
                .zip(cells)
                .map(|(p, c)| {
                    let d = denoise::tweedie(&sde, *p, t, c.learned);
                    let e = denoise::tweedie(&sde, *p, t, c.exact);
                    let mut row = vec![p.x, p.y, d.x, d.y, e.x, e.y];
                    row.extend(denoise::responsibilities(mixture, &sde, *p, t));
                    row
                })
                .collect()
        };
        for (id, _, what) in due {
            let rows = match what {
                FieldAnswer::Score => score_rows(),
                FieldAnswer::Denoiser => denoiser_rows(),
            };
            api::answer(id, serde_json::to_string(&rows).map_err(|e| e.to_string()));
        }
    }

    /// The denoiser's arrows (every `DENOISER_EVERY`-th grid point of the latest field, both
    /// ways): (x_t, D(x_t) from the learned score, D(x_t) from the exact score).
    pub fn denoiser_arrows(&self, st: &State, mixture: &GaussianMixture) -> Vec<[Vec2; 3]> {
        let Some((req, cells)) = &self.field else {
            return Vec::new();
        };
        if !st.layers.arrows || st.arrows != ArrowMode::Denoiser {
            return Vec::new();
        }
        let sde = self.sde(st, mixture);
        let nx = req.n.0 as usize;
        req.points()
            .into_iter()
            .zip(cells)
            .enumerate()
            .filter(|(i, _)| (i % nx) % DENOISER_EVERY == 1 && (i / nx) % DENOISER_EVERY == 1)
            .map(|(_, (p, c))| {
                [
                    p,
                    denoise::tweedie(&sde, p, req.t, c.learned),
                    denoise::tweedie(&sde, p, req.t, c.exact),
                ]
            })
            .collect()
    }

    /// The responsibilities layer for the visible box: each pixel the mix of the component
    /// colours weighted by p(k | x_t) (recomputed when the grid, the mixture or the SDE change).
    pub fn update_responsibilities(
        &mut self,
        ctx: &egui::Context,
        st: &State,
        mixture: &GaussianMixture,
        revision: u64,
        view: (Vec2, Vec2),
    ) {
        if !st.layers.responsibilities {
            self.responsibilities = None;
            return;
        }
        let cols = RESP_COLS;
        let Some((req, key, sde)) =
            self.heat_job(st, mixture, revision, view, cols, &self.responsibilities)
        else {
            return;
        };
        let pt = crate::sim::score::ExactScore::new(mixture.clone(), sde).at(req.t);
        let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
        let mut pixels = vec![egui::Color32::TRANSPARENT; nx * ny];
        let mut r = vec![0.0; mixture.len()];
        for (i, p) in req.points().iter().enumerate() {
            pt.responsibilities(*p, &mut r);
            let mut rgb = [0.0f64; 3];
            for (k, rk) in r.iter().enumerate() {
                let c = canvas::component_color(k);
                rgb[0] += rk * f64::from(c.r());
                rgb[1] += rk * f64::from(c.g());
                rgb[2] += rk * f64::from(c.b());
            }
            let (ix, iy) = (i % nx, i / nx);
            pixels[(ny - 1 - iy) * nx + ix] = egui::Color32::from_rgba_unmultiplied(
                rgb[0] as u8,
                rgb[1] as u8,
                rgb[2] as u8,
                RESP_ALPHA,
            );
        }
        self.responsibilities = Some(Heatmap {
            req,
            key,
            texture: ctx.load_texture(
                "responsibilities",
                egui::ColorImage::new([nx, ny], pixels),
                egui::TextureOptions::LINEAR,
            ),
            non_finite: 0,
        });
    }

    /// The particles of `slot` to draw (uploading the CPU engine's into a vertex buffer).
    pub fn particle_source(
        &mut self,
        render: Option<&(wgpu::Device, wgpu::Queue)>,
        slot: usize,
    ) -> Option<ParticleSource> {
        let engine = self.engine.as_ref()?;
        match engine.particles(slot) {
            ParticleView::None => None,
            ParticleView::Gpu(src) => Some(src),
            ParticleView::Cpu(points) => {
                let (device, queue) = render?;
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
}

/// A heatmap's colours: the palette, and whether on the projector's light canvas.
type HeatLook = (Palette, bool);

/// The heatmap colours `st` asks for.
fn heat_look(st: &State) -> HeatLook {
    (st.palette, st.theme == Theme::Projector)
}

/// A heatmap texture of log-density values on `req`'s grid (row 0 = lowest y), and how many
/// cells are not finite (drawn in [`NOT_FINITE_COLORS`], never as a palette colour).
fn heat_texture(
    ctx: &egui::Context,
    name: &str,
    req: &FieldRequest,
    lp: &[f64],
    (palette, light): HeatLook,
) -> (egui::TextureHandle, usize) {
    let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
    let max = lp
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut pixels = vec![egui::Color32::BLACK; nx * ny];
    let mut non_finite = 0;
    for iy in 0..ny {
        for ix in 0..nx {
            let v = lp.get(iy * nx + ix).copied().unwrap_or(f64::NAN);
            if !v.is_finite() {
                non_finite += 1;
                pixels[(ny - 1 - iy) * nx + ix] = NOT_FINITE_COLORS[(ix + iy) % 2];
                continue;
            }
            let f = if max.is_finite() {
                1.0 + (v - max) / HEAT_SPAN
            } else {
                0.0
            };
            pixels[(ny - 1 - iy) * nx + ix] = canvas::heat_color_on(f, palette, light);
        }
    }
    let texture = ctx.load_texture(
        name,
        egui::ColorImage::new([nx, ny], pixels),
        egui::TextureOptions::LINEAR,
    );
    (texture, non_finite)
}

//! The engine layer (no egui): what trains the score network and runs the live samplers,
//! the field, the learned density and the Fisher probe, once per frame, for the app, the
//! CLI and the benchmarks. [`gpu::GpuEngine`] runs the WGSL pipelines on a wgpu device;
//! [`cpu::CpuEngine`] runs `sim` (the fallback where WebGPU compute is missing).
//!
//! Both implement [`Engine`]. What the two share is written once: the slot scheduler
//! ([`Control`]: which live run starts when, how many steps a frame takes, queued steps and
//! readback requests) and the trait's provided methods built on it; an engine supplies only
//! `frame`, `set_mixture`, `particles` and how to start a slot's run.

#[cfg(not(target_arch = "wasm32"))]
pub mod batch;
pub mod cpu;
pub mod flow;
pub mod gpu;
pub mod pool;
pub mod probe;
pub mod remote;
pub mod settings;
pub mod shards;
pub mod split;

use web_time::{Duration, Instant};

pub use crate::sim::field::{FieldCell, FieldRequest};
pub use cpu::CpuEngine;
pub use gpu::GpuEngine;
pub use pool::{Shard, WorkerLoad};
pub use settings::{
    Guide, LiveSampling, TrainSettings, MAX_LIVE_STEPS, MAX_PARTICLES, SLOTS, TRAIL_SLOTS,
};

use crate::gpu::context::{GpuContext, GpuCounts};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::Sde;
use crate::sim::Vec2;
use eframe::egui_wgpu::wgpu;

/// How long a finished run stays on screen before the next one starts from noise.
const HOLD: Duration = Duration::from_millis(1500);
/// The engine's time per frame when the app has no idle time to give it (a 60 Hz frame with
/// room for the UI); the app adds idle time on top (`app::perf::PerfWindow::cpu_budget`).
pub const BASE_BUDGET: Duration = Duration::from_millis(8);
/// Points per noise level of the live Fisher estimate.
const FISHER_POINTS: usize = 256;
/// Steps between Fisher estimates.
const FISHER_EVERY: u64 = 200;
/// Shortest interval between field evaluations (unless the request changes).
const FIELD_EVERY: Duration = Duration::from_millis(250);
/// RK4 steps of the live learned-density heatmap.
const DENSITY_STEPS: u32 = 16;
/// Shortest interval between learned-density evaluations (unless the request changes).
const DENSITY_EVERY: Duration = Duration::from_millis(1500);

/// Why an engine, a live sampler or a batch job could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A setting is out of range (the message names it).
    #[error("{0}")]
    Setting(String),
    /// The network could not be built.
    #[error("{0}")]
    Model(#[from] crate::sim::model::ModelError),
    /// The sampler refused its configuration.
    #[error("{0}")]
    Sampler(#[from] crate::sim::samplers::SamplerError),
    /// The GPU engine failed.
    #[error("GPU engine: {0}")]
    Gpu(#[from] crate::gpu::context::GpuError),
    /// No GPU could be opened (batch work).
    #[error("GPU backend unavailable: {0}")]
    NoGpu(crate::gpu::context::GpuError),
    /// Not available on this engine (the message says where it is).
    #[error("{0}")]
    Unsupported(String),
    /// Training diverged beyond recovery.
    #[error("{0}")]
    Diverged(String),
}

/// Which engine to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// WGSL on the GPU.
    Gpu,
    /// `sim` on the CPU.
    Cpu,
}

/// Start an engine: the GPU one when `gpu` is given, else the CPU one. `net` continues from
/// an existing network (an imported model) instead of a fresh one. With `offload` (the
/// shell's: a Web Worker in the browser, [`remote::THREAD`] natively), the CPU engine runs off
/// the caller's thread ([`remote`]), falling back to the caller's thread where that cannot
/// start.
pub fn start(
    gpu: Option<GpuContext>,
    mixture: &GaussianMixture,
    sde: Sde,
    settings: &TrainSettings,
    net: Option<ScoreNet>,
    offload: Option<remote::Offload>,
) -> Result<Box<dyn Engine>, EngineError> {
    Ok(match (gpu, offload) {
        (Some(ctx), _) => Box::new(GpuEngine::new(ctx, mixture, sde, settings, net)?),
        (None, Some(offload)) if offload.workers > 1 => pool::start(
            (offload.workers, offload.shards),
            || offload.link(),
            mixture,
            sde,
            settings,
            net,
        )?,
        (None, Some(offload)) => {
            let (link, place) = offload.link();
            Box::new(remote::RemoteEngine::new(
                link, place, mixture, sde, settings, net,
            )?)
        }
        (None, None) => Box::new(CpuEngine::new(mixture, sde, settings, net)?),
    })
}

/// Where the live sampler is.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerStatus {
    /// Runs started so far (the seed of run k is k).
    pub run: u32,
    /// Steps taken in this run.
    pub step: usize,
    /// Steps in a run.
    pub total: usize,
    /// Score evaluations per particle in this run.
    pub nfe: u64,
    /// Current SDE time of the schedule.
    pub t: f64,
    /// Particles.
    pub n: usize,
    /// The sampler.
    pub kind: SamplerKind,
    /// The run is complete (samples are the noise-free means).
    pub done: bool,
    /// MALA: the fraction of this run's proposals accepted so far.
    #[serde(default)]
    pub accept: Option<f64>,
}

/// What the engine should compute this frame besides training.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameRequest {
    /// Score arrows.
    pub field: Option<FieldRequest>,
    /// Learned log-density heatmap (PF-ODE likelihood at the request's t).
    pub density: Option<FieldRequest>,
    /// Train a velocity network by flow matching beside the score network ([`flow`]);
    /// `None` drops it.
    #[serde(default)]
    pub flow: Option<flow::FlowJob>,
}

/// Particles the canvas should draw.
pub enum ParticleView<'a> {
    /// None yet.
    None,
    /// On the GPU, with trail snapshots.
    Gpu(ParticleSource),
    /// On the CPU: the current positions as (x, y, x_mean, y_mean).
    Cpu(&'a [[f32; 4]]),
}

/// Particle positions read back for a slot.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SamplesOut {
    /// Which live sampler.
    pub slot: usize,
    /// Read at the end of a run (these are the run's samples).
    pub done: bool,
    /// The run they come from.
    pub run: u32,
    /// Positions (noise-free means once done).
    pub points: Vec<Vec2>,
}

/// Where an engine's frame spent its (CPU-side) time, in ms. On the GPU engine this is the
/// time to encode and submit; the GPU's own time shows in the frame interval.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FrameTiming {
    /// Training steps.
    pub train_ms: f64,
    /// Live samplers (and their trails).
    pub sample_ms: f64,
    /// Score field, learned density, Fisher metric and readbacks.
    pub field_ms: f64,
}

/// What a frame produced (anything may be absent while work is in flight).
#[derive(Default)]
pub struct FrameOutput {
    /// Where the frame's engine time went.
    pub timing: FrameTiming,
    /// Training steps completed so far.
    pub steps: Option<u64>,
    /// New (step, loss) pairs.
    pub losses: Vec<(u64, f64)>,
    /// (step, mean relative Fisher divergence to the exact score).
    pub fisher: Option<(u64, f64)>,
    /// The latest field and the request it answers.
    pub field: Option<(FieldRequest, Vec<FieldCell>)>,
    /// A divergence or engine problem to show (once).
    pub warning: Option<String>,
    /// The live samplers' progress.
    pub sampler: [Option<SamplerStatus>; SLOTS],
    /// Particle positions asked for by [`Engine::request_samples`], and each finished run's.
    pub samples: Vec<SamplesOut>,
    /// The drawing (EMA) network, asked for by [`Engine::request_model`].
    pub model: Option<ScoreNet>,
    /// Learned log-density on a grid (row-major from `lo`), and the request it answers.
    pub density: Option<(FieldRequest, Vec<f64>)>,
    /// Flow matching's latest network, when it trained since the last report.
    pub flow: Option<flow::FlowReport>,
}

pub(crate) fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Particle snapshots to draw: a buffer of `slots × n` particles, newest in `head`.
#[derive(Clone)]
pub struct ParticleSource {
    /// `slots × n` particles of 16 bytes, usable as a vertex buffer.
    pub buffer: wgpu::Buffer,
    /// Particles per snapshot.
    pub n: u32,
    /// Snapshots in the ring.
    pub slots: u32,
    /// Slot of the newest snapshot.
    pub head: u32,
    /// Snapshots written so far (older slots are empty until the ring has filled).
    pub filled: u32,
    /// Draw x_mean (the noise-free prediction) instead of x.
    pub use_mean: bool,
}

/// What both engines keep for the app's requests and their live slots (written once).
#[derive(Default)]
pub struct Control {
    /// Each live sampler's settings and run bookkeeping.
    pub slots: [SlotControl; SLOTS],
    /// The live particles are frozen where they are.
    pub sampling_paused: bool,
    /// Sampler steps to take while frozen (the Step key).
    pub queued_sampler_steps: u32,
    /// Training steps to take while training is paused (the Step button).
    pub queued_steps: u32,
    /// The drawing network was asked for.
    pub model_wanted: bool,
}

/// One live sampler slot's settings and run bookkeeping.
#[derive(Default)]
pub struct SlotControl {
    /// What it runs.
    pub live: LiveSampling,
    /// The current run (its seed).
    pub run: u32,
    /// Fractional steps carried to the next frame (slow motion).
    pub acc: f64,
    /// Its positions were asked for.
    pub samples_wanted: bool,
    /// The end-of-run samples have been sent (or their readback started) for this run.
    pub final_sent: bool,
    /// When the current run finished.
    pub finished_at: Option<Instant>,
}

impl Control {
    /// Whether slot `i` starts a run this frame: its first run, or (with `repeat`) a new
    /// run from fresh noise `HOLD` after the last one finished (then `run` moves on).
    pub fn due(&mut self, i: usize, started: bool) -> bool {
        let paused = self.sampling_paused;
        let s = &mut self.slots[i];
        if !paused && s.live.repeat && s.finished_at.is_some_and(|at| at.elapsed() >= HOLD) {
            s.run = s.run.wrapping_add(1);
            return true;
        }
        !started && s.live.enabled && s.run == 0
    }

    /// Steps slot `i` takes this frame: while frozen, the queued steps (`queued`, taken
    /// by the caller once per frame); else `speed` × (1/150 of a run) per frame, accumulated
    /// so slow motion takes a step every few frames. RK45 has no known length: one adaptive
    /// step per frame at speed 1.
    pub fn steps_this_frame(&mut self, i: usize, queued: u32) -> usize {
        if self.sampling_paused {
            return queued as usize;
        }
        let s = &mut self.slots[i];
        let total = s.live.total_steps().max(150);
        s.acc += total as f64 / 150.0 * s.live.speed;
        let k = s.acc.floor().clamp(0.0, 512.0);
        s.acc -= k;
        k as usize
    }

    /// Reset slot `i`'s per-run bookkeeping before a run starts.
    pub fn begin_run(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.acc = 0.0;
        s.final_sent = false;
        s.finished_at = None;
    }

    /// Training steps to take this frame while paused (at most `max`), taken from the queue.
    pub fn take_queued_steps(&mut self, max: u32) -> u32 {
        let k = self.queued_steps.min(max);
        self.queued_steps -= k;
        k
    }
}

/// Where an engine's CPU work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsOn {
    /// The caller's thread (the page's, natively the UI's).
    Page,
    /// A Web Worker.
    Worker,
    /// A native thread.
    Thread,
}

impl RunsOn {
    /// As `state()` and the status line write it: "page", "worker", "thread".
    pub const fn name(self) -> &'static str {
        match self {
            RunsOn::Page => "page",
            RunsOn::Worker => "worker",
            RunsOn::Thread => "thread",
        }
    }
}

impl std::fmt::Display for RunsOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A training/evaluation engine. The provided methods are the app's requests, kept in
/// [`Control`]; an engine implements the rest.
pub trait Engine {
    /// Short name for the status line ("WebGPU", "GPU", "CPU").
    fn label(&self) -> &'static str;
    /// Which engine this is.
    fn choice(&self) -> EngineChoice;
    /// Replace the data distribution and the SDE's data frame that follows it (`sim::sde`):
    /// training continues in the new frame, live samplers, fields and the exact score follow.
    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde);
    /// One frame of work within about `budget`; `train` false pauses training.
    fn frame(&mut self, budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput;
    /// What to draw for `slot`.
    fn particles(&self, slot: usize) -> ParticleView<'_>;
    /// The requests and slot bookkeeping both engines share.
    fn control(&mut self) -> &mut Control;
    /// (Re)start run `control().slots[i].run` of live sampler `i` (stops it when disabled);
    /// `fresh` drops any readback of an earlier run.
    fn start_slot(&mut self, i: usize, fresh: bool) -> Result<(), EngineError>;
    /// Continue from `net`'s weights (as the trained weights and their EMA, which the live
    /// samplers, the field and the density use); refused for another network shape. A
    /// sampling-only engine follows the training engine's network this way ([`split`]).
    fn load_model(&mut self, net: &ScoreNet) -> Result<(), EngineError>;
    /// The engine that runs the live samplers, the field and the density, if not this one's
    /// training engine ([`split::SplitEngine`]).
    fn sampling_label(&self) -> Option<&'static str> {
        None
    }
    /// Which engine runs the live samplers, the field and the density.
    fn sampling_choice(&self) -> EngineChoice {
        self.choice()
    }
    /// Dispatches, submits and bytes moved so far (GPU engine only).
    fn gpu_counts(&self) -> Option<GpuCounts> {
        None
    }
    /// Where the engine's CPU work runs.
    fn runs_on(&self) -> RunsOn {
        RunsOn::Page
    }
    /// Why an offloaded engine came back to the caller's thread, if it did.
    fn fell_back(&self) -> Option<&str> {
        None
    }
    /// The CPU engine's workers (Web Workers, natively threads) with their roles and loads;
    /// empty when it runs on the caller's thread ([`pool`]).
    fn pool(&self) -> Vec<WorkerLoad> {
        Vec::new()
    }

    /// Run `k` training steps in the next frames even while paused (the Step button).
    fn queue_steps(&mut self, k: u32) {
        let c = self.control();
        c.queued_steps = c.queued_steps.saturating_add(k);
    }
    /// Change live sampler `slot` (restarts it from run 0).
    fn set_sampling(&mut self, slot: usize, sampling: &LiveSampling) {
        let Some(s) = self.control().slots.get_mut(slot) else {
            return;
        };
        s.live = sampling.clone();
        s.run = 0;
        if let Err(e) = self.start_slot(slot, true) {
            log::warn!("live sampler: {e}");
        }
    }
    /// Freeze or resume the live particles where they are.
    fn pause_sampling(&mut self, paused: bool) {
        self.control().sampling_paused = paused;
    }
    /// Advance every live sampler by `k` steps in the next frames even while paused.
    fn step_sampling(&mut self, k: u32) {
        let c = self.control();
        c.queued_sampler_steps = c.queued_sampler_steps.saturating_add(k);
    }
    /// Start new runs from fresh noise.
    fn restart_sampling(&mut self) {
        for i in 0..SLOTS {
            let s = &mut self.control().slots[i];
            s.run = s.run.wrapping_add(1);
            if let Err(e) = self.start_slot(i, true) {
                log::warn!("live sampler: {e}");
            }
        }
    }
    /// Ask for the particle positions of `slot` (answered in a later [`FrameOutput::samples`]).
    fn request_samples(&mut self, slot: usize) {
        if let Some(s) = self.control().slots.get_mut(slot) {
            s.samples_wanted = true;
        }
    }
    /// Ask for the drawing network (answered in a later [`FrameOutput::model`]).
    fn request_model(&mut self) {
        self.control().model_wanted = true;
    }
}

/// Start slot `i`'s run on `engine` if it is due; a refused start turns the slot off and
/// says why in `out`.
fn start_if_due(engine: &mut dyn Engine, i: usize, started: bool, out: &mut FrameOutput) {
    if engine.control().due(i, started) {
        if let Err(e) = engine.start_slot(i, false) {
            out.warning = Some(format!("sampler {}: {e}", i + 1));
            engine.control().slots[i].live.enabled = false;
        }
    }
}

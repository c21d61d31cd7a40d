//! Engines the app drives once per frame (DESIGN §1: the app never does the math itself).
//! [`GpuEngine`] runs the WGSL pipelines on egui's own device; [`CpuEngine`] runs `sim` (the
//! fallback where WebGPU compute is missing). Both train continuously, sized to the frame,
//! and report losses, the Fisher divergence to the exact score, and the score field.
//!
//! GPU data flow per frame: poll the async readbacks of the last submission; if the GPU has
//! caught up, encode k training steps (3 dispatches each), copy the EMA weights into the
//! drawing network, encode the field (and now and then the Fisher probe), submit once, and
//! start small async readbacks (step counter, loss ring, field cells, Fisher sums). k grows
//! while the readback comes back within a frame and shrinks when it lags.

use web_time::{Duration, Instant};

use crate::app::particles::ParticleSource;
use crate::gpu::context::{AsyncReadback, GpuContext, GpuError};
use crate::gpu::field::{FieldCell, FisherProbe, GpuField};
use crate::gpu::likelihood::GpuLikelihood;
use crate::gpu::sampler::{GpuSampler, GpuScore};
use crate::gpu::trainer::{GpuTrainer, LOSS_RING};
use crate::gpu::GpuNet;
use crate::sim::adam::AdamConfig;
use crate::sim::guidance::GuidedScore;
use crate::sim::likelihood::log_likelihood_rk4;
use crate::sim::metrics::{fisher_levels, relative_fisher};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::samplers::{Sampler, SamplerConfig, SamplerKind};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::Sde;
use crate::sim::train::{TrainConfig, Trainer};
use crate::sim::Vec2;
use eframe::egui_wgpu::wgpu;

/// Network/optimiser settings the user can change.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Batch size.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f32,
}

impl TrainSettings {
    /// Defaults for a real GPU.
    pub fn gpu() -> Self {
        Self {
            width: 64,
            depth: 3,
            batch: 512,
            lr: 2e-3,
        }
    }

    /// Range checks (the panel's slider ranges; the URL hash and the JS API go through here).
    pub fn validate(&self) -> Result<(), String> {
        let max_w = crate::gpu::MAX_GPU_WIDTH;
        if !(8..=max_w).contains(&self.width) {
            return Err(format!("width must be in 8..={max_w} (got {})", self.width));
        }
        if !(1..=6).contains(&self.depth) {
            return Err(format!("depth must be in 1..=6 (got {})", self.depth));
        }
        if !(16..=4096).contains(&self.batch) {
            return Err(format!("batch must be in 16..=4096 (got {})", self.batch));
        }
        if !(self.lr.is_finite() && (1e-5..=0.1).contains(&self.lr)) {
            return Err(format!(
                "the learning rate must be in [1e-5, 0.1] (got {})",
                self.lr
            ));
        }
        Ok(())
    }

    /// Smaller defaults for CPU-backed adapters (SwiftShader, lavapipe) and the CPU engine.
    pub fn small() -> Self {
        Self {
            width: 32,
            depth: 3,
            batch: 128,
            lr: 3e-3,
        }
    }
}

/// A grid of the field to evaluate: cell centres over `[lo, hi]` at noise time `t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldRequest {
    /// Lower corner (data units).
    pub lo: Vec2,
    /// Upper corner.
    pub hi: Vec2,
    /// Columns × rows.
    pub n: (u32, u32),
    /// SDE time.
    pub t: f64,
}

/// Guidance toward one component with the exact noisy classifier (score_sde §5).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guide {
    /// Target component (index into the mixture).
    pub component: usize,
    /// Guidance scale γ in s + γ ∇ log p_t(k | x).
    pub gamma: f64,
}

/// A live sampler on the canvas: any sampler of `sim::samplers` on the learned model (or the
/// exact score), animated a few steps per frame; with `repeat` it restarts from fresh noise
/// a moment after each run finishes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSampling {
    /// Run the particles.
    pub enabled: bool,
    /// Follow the exact score instead of the learned one.
    pub exact: bool,
    /// Number of particles.
    pub n: usize,
    /// Which sampler.
    pub kind: SamplerKind,
    /// Annealed Langevin: noise levels L.
    pub levels: usize,
    /// Annealed Langevin: steps per level T; plain Langevin: steps; SDE/ODE samplers: N.
    pub steps: usize,
    /// Langevin: step α; annealed: ε in α_i = ε σ_i²/σ_L².
    pub eps: f64,
    /// Predictor–corrector signal-to-noise ratio.
    pub snr: f64,
    /// Animation speed: 1 = a run in about 150 frames; < 1 slow motion.
    pub speed: f64,
    /// Start a new run from fresh noise after each finished one.
    pub repeat: bool,
    /// Classifier guidance toward a component (CPU engine).
    pub guide: Option<Guide>,
}

impl Default for LiveSampling {
    fn default() -> Self {
        Self::small()
    }
}

impl LiveSampling {
    /// Defaults for a real GPU.
    pub fn gpu() -> Self {
        Self {
            n: 20_000,
            ..Self::small()
        }
    }

    /// Defaults for the CPU engine and software adapters. L = 20, T = 20, ε = 5e-5: a
    /// 400-step run that puts ≈0.225 of the mass in the light mode of `ncsn` with the exact
    /// score (true 0.2; the full L = 50, T = 100 schedule picked in the sampler panel gets 0.205).
    pub fn small() -> Self {
        Self {
            enabled: true,
            exact: false,
            n: 500,
            kind: SamplerKind::AnnealedLangevin,
            levels: 20,
            steps: 20,
            eps: 5e-5,
            snr: 0.16,
            speed: 1.0,
            repeat: true,
            guide: None,
        }
    }

    /// Switch to `kind` with that sampler's recommended schedule (`SamplerConfig::defaults`);
    /// keeps the particle count, score choice, speed, looping and guidance.
    pub fn with_kind(&self, kind: SamplerKind, mixture: &GaussianMixture) -> Self {
        let d = SamplerConfig::defaults(kind, mixture);
        Self {
            kind,
            levels: d.n_levels,
            steps: d.n_steps.max(1),
            eps: if d.step_size > 0.0 {
                d.step_size
            } else {
                self.eps
            },
            snr: d.snr,
            ..self.clone()
        }
    }

    /// The sampler configuration for one run.
    pub fn config(&self, mixture: &GaussianMixture, seed: u32) -> SamplerConfig {
        let mut c = SamplerConfig::defaults(self.kind, mixture);
        c.n_levels = self.levels;
        c.n_steps = self.steps;
        if matches!(
            self.kind,
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin
        ) {
            c.step_size = self.eps;
        }
        c.snr = self.snr;
        c.seed = seed;
        c
    }

    /// Steps of one run (RK45: unknown, 0).
    pub fn total_steps(&self) -> usize {
        match self.kind {
            SamplerKind::AnnealedLangevin => self.levels * self.steps,
            SamplerKind::OdeRk45 => 0,
            _ => self.steps,
        }
    }

    /// Check ranges (the JS API, the URL hash and the panel all go through here).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_PARTICLES).contains(&self.n) {
            return Err(format!("particles must be in 1..={MAX_PARTICLES}"));
        }
        if !(2..=200).contains(&self.levels) || !(1..=MAX_LIVE_STEPS).contains(&self.steps) {
            return Err(format!(
                "live sampling needs 2..=200 levels and 1..={MAX_LIVE_STEPS} steps"
            ));
        }
        if self.total_steps() > MAX_LIVE_STEPS {
            return Err(format!(
                "a live run has at most {MAX_LIVE_STEPS} steps (levels × steps for annealed Langevin)"
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0 && self.eps <= 1.0) {
            return Err("the step size ε must be in (0, 1]".into());
        }
        if !(self.snr.is_finite() && (0.0..=10.0).contains(&self.snr)) {
            return Err("snr must be in [0, 10]".into());
        }
        if !(self.speed.is_finite() && (0.001..=100.0).contains(&self.speed)) {
            return Err("speed must be in [0.001, 100]".into());
        }
        if let Some(g) = self.guide {
            if g.component >= crate::sim::mixture::MAX_COMPONENTS {
                return Err("the guidance component does not exist".into());
            }
            if !(g.gamma.is_finite() && (0.0..=20.0).contains(&g.gamma)) {
                return Err("the guidance scale γ must be in [0, 20]".into());
            }
        }
        Ok(())
    }
}

/// Most steps of one live run.
pub const MAX_LIVE_STEPS: usize = 20_000;
/// Live samplers (the split view shows two).
pub const SLOTS: usize = 2;

/// Most live particles.
pub const MAX_PARTICLES: usize = 1_000_000;
/// Trail snapshots kept.
pub const TRAIL_SLOTS: u32 = 12;
/// Largest particle count whose finished runs are read back automatically (mode-weight bars).
const MAX_AUTO_READBACK: usize = 200_000;
/// How long a finished run stays on screen before the next one starts from noise.
const HOLD: Duration = Duration::from_millis(1500);

/// Where the live sampler is.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
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
}

/// What the engine should compute this frame besides training.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameRequest {
    /// Score arrows.
    pub field: Option<FieldRequest>,
    /// Learned log-density heatmap (PF-ODE likelihood at the request's t).
    pub density: Option<FieldRequest>,
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
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
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
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A training/evaluation engine.
pub trait Engine {
    /// Short name for the status line ("WebGPU", "CPU").
    fn label(&self) -> &'static str;
    /// Replace the data distribution and the SDE's data frame that follows it (`sim::sde`):
    /// training continues in the new frame, live samplers, fields and the exact score follow.
    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde);
    /// One frame of work within about `budget`; `train` false pauses training.
    fn frame(&mut self, budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput;
    /// Run `k` training steps in the next frames even while paused (the Step button).
    fn queue_steps(&mut self, k: u32);
    /// Change live sampler `slot` (restarts it).
    fn set_sampling(&mut self, slot: usize, sampling: &LiveSampling);
    /// Freeze or resume the live particles where they are.
    fn pause_sampling(&mut self, paused: bool);
    /// Advance every live sampler by `k` steps in the next frames even while paused.
    fn step_sampling(&mut self, k: u32);
    /// Start new runs from fresh noise.
    fn restart_sampling(&mut self);
    /// What to draw for `slot`.
    fn particles(&self, slot: usize) -> ParticleView<'_>;
    /// Ask for the particle positions of `slot` (answered in a later [`FrameOutput::samples`]).
    fn request_samples(&mut self, slot: usize);
    /// Ask for the drawing network (answered in a later [`FrameOutput::model`]).
    fn request_model(&mut self);
    /// Dispatches, submits and bytes moved so far (GPU engine only).
    fn gpu_counts(&self) -> Option<crate::gpu::context::GpuCounts> {
        None
    }
}

/// Whether a live slot starts a run this frame: its first run, or (with `repeat`) a new run
/// from fresh noise `HOLD` after the last one finished (then `run` moves to the next seed).
fn slot_due(
    paused: bool,
    started: bool,
    live: &LiveSampling,
    run: &mut u32,
    finished_at: Option<Instant>,
) -> bool {
    if !paused && live.repeat && finished_at.is_some_and(|at| at.elapsed() >= HOLD) {
        *run = run.wrapping_add(1);
        return true;
    }
    !started && live.enabled && *run == 0
}

/// Steps a live sampler takes this frame: `speed` × (1/150 of a run) per frame, accumulated
/// so slow motion (speed < 1) takes a step every few frames. RK45 has no known length: one
/// adaptive step per frame at speed 1.
fn steps_this_frame(live: &LiveSampling, acc: &mut f64) -> usize {
    let total = live.total_steps().max(150);
    *acc += total as f64 / 150.0 * live.speed;
    let k = acc.floor().clamp(0.0, 512.0);
    *acc -= k;
    k as usize
}

/// Cell centres of a grid request, row-major from `lo`.
pub fn grid_points(req: &FieldRequest) -> Vec<Vec2> {
    let (nx, ny) = req.n;
    (0..ny)
        .flat_map(|iy| (0..nx).map(move |ix| (ix, iy)))
        .map(|(ix, iy)| {
            let f = Vec2::new(
                (f64::from(ix) + 0.5) / f64::from(nx),
                (f64::from(iy) + 0.5) / f64::from(ny),
            );
            req.lo + (req.hi - req.lo).component_mul(&f)
        })
        .collect()
}

/// RK4 steps of the live learned-density heatmap.
const DENSITY_STEPS: u32 = 16;
/// Shortest interval between learned-density evaluations (unless the request changes).
const DENSITY_EVERY: Duration = Duration::from_millis(1500);

fn new_net(
    settings: &TrainSettings,
    mixture: &GaussianMixture,
    sde: Sde,
) -> Result<ScoreNet, String> {
    ScoreNet::new(
        NetConfig {
            width: settings.width,
            depth: settings.depth,
            data_std: mixture.data_std(),
            ..NetConfig::default()
        },
        sde,
    )
    .map_err(|e| e.to_string())
}

fn train_config(settings: &TrainSettings) -> TrainConfig {
    TrainConfig {
        batch: settings.batch,
        adam: AdamConfig {
            lr: settings.lr,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    }
}

/// Points per noise level of the live Fisher estimate.
const FISHER_POINTS: usize = 256;
/// Steps between Fisher estimates.
const FISHER_EVERY: u64 = 200;
/// GPU work to aim for per submission.
const GPU_BUDGET: Duration = Duration::from_millis(12);
/// Shortest interval between field evaluations (unless the request changes).
const FIELD_EVERY: Duration = Duration::from_millis(250);

// ------------------------------------------------------------------ GPU

/// The WGSL engine on the app's device.
pub struct GpuEngine {
    ctx: GpuContext,
    trainer: GpuTrainer,
    ema: GpuNet,
    fisher: FisherProbe,
    field: Option<(FieldRequest, GpuField)>,
    mixture: GaussianMixture,
    sde: Sde,
    steps_per_frame: u32,
    submitted: u64,
    losses_read_to: u64,
    last_fisher_step: u64,
    inflight: Option<Inflight>,
    settings: TrainSettings,
    last_field: Option<(Instant, FieldRequest)>,
    queued_steps: u32,
    slots: [GpuSlot; SLOTS],
    sampling_paused: bool,
    queued_sampler_steps: u32,
    model_wanted: bool,
    model_rb: Option<AsyncReadback>,
    density: Option<(FieldRequest, GpuLikelihood)>,
    last_density: Option<(Instant, FieldRequest)>,
    density_rb: Option<(FieldRequest, AsyncReadback)>,
}

/// One live sampler slot of the GPU engine.
#[derive(Default)]
struct GpuSlot {
    live: LiveSampling,
    sampler: Option<LiveGpu>,
    run: u32,
    acc: f64,
    samples_wanted: bool,
    /// (readback, read at the end of a run, run).
    samples_rb: Option<(AsyncReadback, bool, u32)>,
    /// The end-of-run readback has been started for this run.
    final_read: bool,
}

/// The live sampler and its trail ring (`TRAIL_SLOTS` snapshots, also a vertex buffer).
struct LiveGpu {
    sampler: GpuSampler,
    trails: wgpu::Buffer,
    head: u32,
    filled: u32,
    finished_at: Option<Instant>,
}

/// Where a GPU sampler is, for the status line and `state()`.
fn gpu_status(run: u32, kind: SamplerKind, s: &GpuSampler) -> SamplerStatus {
    let (step, total) = s.progress();
    SamplerStatus {
        run,
        step,
        total,
        nfe: s.nfe(),
        t: s.current_t(),
        n: s.n_particles(),
        kind,
        done: s.done(),
    }
}

struct Inflight {
    submitted_at: Instant,
    steps: u32,
    counters: AsyncReadback,
    losses: AsyncReadback,
    field: Option<(FieldRequest, AsyncReadback)>,
    fisher: Option<(u64, AsyncReadback)>,
    got_counters: Option<Vec<u8>>,
    got_losses: Option<Vec<u8>>,
}

impl GpuEngine {
    /// Build on an existing context.
    pub fn new(
        ctx: GpuContext,
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
        net: Option<ScoreNet>,
    ) -> Result<Self, String> {
        let net = match net {
            Some(n) => n,
            None => new_net(settings, mixture, sde)?,
        };
        let sde = net.sde;
        let trainer = GpuTrainer::new(&ctx, &net, mixture, &train_config(settings))
            .map_err(|e| e.to_string())?;
        let ema = GpuNet::upload(&ctx, &net).map_err(|e| e.to_string())?;
        let fisher = FisherProbe::new(&ctx, &ema, mixture, &fisher_levels(), FISHER_POINTS, 1);
        Ok(Self {
            ctx,
            trainer,
            ema,
            fisher,
            field: None,
            mixture: mixture.clone(),
            sde,
            steps_per_frame: 4,
            submitted: 0,
            losses_read_to: 0,
            last_fisher_step: 0,
            inflight: None,
            settings: settings.clone(),
            last_field: None,
            queued_steps: 0,
            slots: Default::default(),
            sampling_paused: false,
            queued_sampler_steps: 0,
            model_wanted: false,
            model_rb: None,
            density: None,
            last_density: None,
            density_rb: None,
        })
    }

    /// Start run `slot.run` of live sampler `i`.
    fn start_sampler(&mut self, i: usize) -> Result<(), String> {
        let slot = &mut self.slots[i];
        slot.sampler = None;
        slot.acc = 0.0;
        slot.final_read = false;
        if !slot.live.enabled {
            return Ok(());
        }
        slot.live.validate()?;
        if slot.live.guide.is_some() {
            return Err("guidance runs on the CPU engine (Engine: CPU); the GPU sampler has no guidance shader yet".into());
        }
        let score = if slot.live.exact {
            GpuScore::Exact
        } else {
            GpuScore::Net(&self.ema)
        };
        let cfg = slot.live.config(&self.mixture, slot.run);
        let sampler = GpuSampler::new(&self.ctx, score, &self.mixture, self.sde, &cfg, slot.live.n)
            .map_err(|e| e.to_string())?;
        let trails = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("GpuEngine::trails"),
            size: (u64::from(TRAIL_SLOTS) * slot.live.n as u64 * 16).max(16),
            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        slot.sampler = Some(LiveGpu {
            sampler,
            trails,
            head: 0,
            filled: 0,
            finished_at: None,
        });
        Ok(())
    }

    /// Advance the live samplers inside this frame's encoder and snapshot them for the trails.
    fn encode_samplers(&mut self, enc: &mut wgpu::CommandEncoder, out: &mut FrameOutput) {
        let queued = self.queued_sampler_steps;
        self.queued_sampler_steps = 0;
        for i in 0..SLOTS {
            let slot = &mut self.slots[i];
            let finished = slot.sampler.as_ref().and_then(|l| l.finished_at);
            let due = slot_due(
                self.sampling_paused,
                slot.sampler.is_some(),
                &slot.live,
                &mut slot.run,
                finished,
            );
            if due {
                if let Err(e) = self.start_sampler(i) {
                    out.warning = Some(format!("sampler {}: {e}", i + 1));
                    self.slots[i].live.enabled = false;
                }
            }
            let paused = self.sampling_paused;
            let slot = &mut self.slots[i];
            let kind = slot.live.kind;
            let Some(live) = slot.sampler.as_mut() else {
                continue;
            };
            let k = if paused {
                queued as usize
            } else {
                steps_this_frame(&slot.live, &mut slot.acc)
            };
            if k > 0 && !live.sampler.done() {
                live.sampler.encode(&self.ctx, enc, k);
            }
            if live.sampler.done() && live.finished_at.is_none() {
                live.finished_at = Some(Instant::now());
            }
            if k > 0 || live.filled == 0 {
                let n = live.sampler.n_particles() as u64 * 16;
                live.head = (live.head + 1) % TRAIL_SLOTS;
                live.filled = (live.filled + 1).min(TRAIL_SLOTS);
                enc.copy_buffer_to_buffer(
                    live.sampler.particles_buffer(),
                    0,
                    &live.trails,
                    u64::from(live.head) * n,
                    n,
                );
            }
            out.sampler[i] = Some(gpu_status(slot.run, kind, &live.sampler));
        }
    }

    /// Record the readbacks asked for (samples, each finished run, the model) into `enc`;
    /// `frame` maps them after its submit.
    fn start_side_readbacks(&mut self, enc: &mut wgpu::CommandEncoder) {
        for slot in &mut self.slots {
            let Some(l) = &slot.sampler else { continue };
            let done = l.sampler.done();
            let want_final =
                done && !slot.final_read && l.sampler.n_particles() <= MAX_AUTO_READBACK;
            if (slot.samples_wanted || want_final) && slot.samples_rb.is_none() {
                slot.samples_wanted = false;
                if done {
                    slot.final_read = true;
                }
                let len = l.sampler.n_particles() as u64 * 16;
                slot.samples_rb = Some((
                    AsyncReadback::record(&self.ctx, enc, l.sampler.particles_buffer(), 0, len),
                    done,
                    slot.run,
                ));
            }
        }
        if self.model_wanted && self.model_rb.is_none() {
            self.model_wanted = false;
            let len = self.ema.template.mlp.params.len() as u64 * 4;
            self.model_rb = Some(AsyncReadback::record(
                &self.ctx,
                enc,
                &self.ema.weights,
                0,
                len,
            ));
        }
    }

    /// Poll the side readbacks (samples, model, learned density), independent of training pacing.
    fn poll_side(&mut self, out: &mut FrameOutput) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some((rb, done, run)) = &slot.samples_rb else {
                continue;
            };
            match rb.try_take(&self.ctx) {
                Some(Ok(b)) => {
                    let v: &[f32] = bytemuck::cast_slice(&b);
                    let done = *done;
                    out.samples.push(SamplesOut {
                        slot: i,
                        done,
                        run: *run,
                        points: v
                            .chunks_exact(4)
                            .map(|c| {
                                let (x, y) = if done { (c[2], c[3]) } else { (c[0], c[1]) };
                                Vec2::new(f64::from(x), f64::from(y))
                            })
                            .collect(),
                    });
                    slot.samples_rb = None;
                }
                Some(Err(e)) => {
                    out.warning = Some(format!("GPU readback failed: {e}"));
                    slot.samples_rb = None;
                }
                None => {}
            }
        }
        if let Some(rb) = &self.model_rb {
            match rb.try_take(&self.ctx) {
                Some(Ok(b)) => {
                    let mut net = self.ema.template.clone();
                    net.mlp.params = bytemuck::cast_slice::<u8, f32>(&b).to_vec();
                    // The frame it is being trained in now (it follows the mixture).
                    net.sde = self.sde;
                    out.model = Some(net);
                    self.model_rb = None;
                }
                Some(Err(e)) => {
                    out.warning = Some(format!("GPU readback failed: {e}"));
                    self.model_rb = None;
                }
                None => {}
            }
        }
        if let Some((req, rb)) = &self.density_rb {
            match rb.try_take(&self.ctx) {
                Some(Ok(b)) => {
                    if let Some((_, job)) = &self.density {
                        out.density = Some((*req, job.decode(&b)));
                    }
                    self.density_rb = None;
                }
                Some(Err(e)) => {
                    out.warning = Some(format!("GPU readback failed: {e}"));
                    self.density_rb = None;
                }
                None => {}
            }
        }
    }

    fn poll(&mut self, out: &mut FrameOutput) -> bool {
        let Some(inf) = self.inflight.as_mut() else {
            return true;
        };
        let mut failed: Option<GpuError> = None;
        if inf.got_counters.is_none() {
            match inf.counters.try_take(&self.ctx) {
                Some(Ok(b)) => inf.got_counters = Some(b),
                Some(Err(e)) => failed = Some(e),
                None => {}
            }
        }
        if inf.got_losses.is_none() {
            match inf.losses.try_take(&self.ctx) {
                Some(Ok(b)) => inf.got_losses = Some(b),
                Some(Err(e)) => failed = Some(e),
                None => {}
            }
        }
        let field_done = match &inf.field {
            Some((req, rb)) => match rb.try_take(&self.ctx) {
                Some(Ok(b)) => {
                    out.field = Some((*req, GpuField::decode(&b)));
                    true
                }
                Some(Err(e)) => {
                    failed = Some(e);
                    true
                }
                None => false,
            },
            None => true,
        };
        if field_done {
            inf.field = None;
        }
        let fisher_done = match &inf.fisher {
            Some((step, rb)) => match rb.try_take(&self.ctx) {
                Some(Ok(b)) => {
                    let f = FisherProbe::decode(&b);
                    out.fisher = Some((*step, f.iter().sum::<f64>() / f.len().max(1) as f64));
                    true
                }
                Some(Err(e)) => {
                    failed = Some(e);
                    true
                }
                None => false,
            },
            None => true,
        };
        if fisher_done {
            inf.fisher = None;
        }
        if let Some(e) = failed {
            out.warning = Some(format!("GPU readback failed: {e}"));
        }
        let (Some(c), Some(l)) = (inf.got_counters.clone(), inf.got_losses.clone()) else {
            return false;
        };
        if inf.field.is_some() || inf.fisher.is_some() {
            return false;
        }
        let elapsed = inf.submitted_at.elapsed().as_secs_f64();
        let steps_sent = inf.steps;
        self.inflight = None;
        let counters: &[u32] = bytemuck::cast_slice(&c);
        let ring: &[f32] = bytemuck::cast_slice(&l);
        let steps = u64::from(counters[0]);
        out.steps = Some(steps);
        let from = self
            .losses_read_to
            .max(steps.saturating_sub(u64::from(LOSS_RING)));
        out.losses = (from..steps)
            .map(|s| (s + 1, f64::from(ring[(s % u64::from(LOSS_RING)) as usize])))
            .collect();
        self.losses_read_to = steps;
        if counters[1] != 0 {
            out.warning = Some(self.recover(counters[1] - 1));
        }
        // Pace by wall clock: aim for about GPU_BUDGET of work per submission, moving halfway
        // (geometrically) towards the estimate each time.
        if steps_sent > 0 {
            let per_step = (elapsed / f64::from(steps_sent)).max(1e-6);
            let target = (GPU_BUDGET.as_secs_f64() / per_step).clamp(1.0, 512.0);
            self.steps_per_frame = (f64::from(self.steps_per_frame) * target)
                .sqrt()
                .round()
                .clamp(1.0, 512.0) as u32;
        }
        true
    }

    /// Divergence guard: `reduce_adam` already refused the non-finite updates, so the weights
    /// are the last good ones; lower the learning rate and clear the flag (no readback).
    fn recover(&mut self, step: u32) -> String {
        self.settings.lr *= 0.5;
        self.trainer.set_lr(&self.ctx, self.settings.lr);
        self.trainer.clear_divergence(&self.ctx);
        format!(
            "Training diverged at step {step} (non-finite loss); kept the last good weights and lowered the learning rate to {:.1e}.",
            self.settings.lr
        )
    }
}

impl Engine for GpuEngine {
    fn label(&self) -> &'static str {
        if cfg!(target_arch = "wasm32") {
            "WebGPU"
        } else {
            "GPU"
        }
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde) {
        self.mixture = mixture.clone();
        self.sde = *sde;
        self.trainer.set_mixture(&self.ctx, mixture, sde);
        self.fisher.set_mixture(&self.ctx, mixture, sde);
        if let Some((_, f)) = &self.field {
            f.set_mixture(&self.ctx, mixture, sde);
        }
        for slot in &self.slots {
            if let Some(l) = &slot.sampler {
                l.sampler.set_mixture(&self.ctx, mixture, sde);
            }
        }
        if let Some((_, d)) = &mut self.density {
            d.set_mixture(&self.ctx, mixture, sde);
        }
    }

    fn queue_steps(&mut self, k: u32) {
        self.queued_steps = self.queued_steps.saturating_add(k);
    }

    fn set_sampling(&mut self, slot: usize, sampling: &LiveSampling) {
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        s.live = sampling.clone();
        s.run = 0;
        s.samples_rb = None;
        if let Err(e) = self.start_sampler(slot) {
            log::warn!("live sampler: {e}");
        }
    }

    fn pause_sampling(&mut self, paused: bool) {
        self.sampling_paused = paused;
    }

    fn step_sampling(&mut self, k: u32) {
        self.queued_sampler_steps = self.queued_sampler_steps.saturating_add(k);
    }

    fn restart_sampling(&mut self) {
        for i in 0..SLOTS {
            self.slots[i].run = self.slots[i].run.wrapping_add(1);
            self.slots[i].samples_rb = None;
            if let Err(e) = self.start_sampler(i) {
                log::warn!("live sampler: {e}");
            }
        }
    }

    fn particles(&self, slot: usize) -> ParticleView<'_> {
        match self.slots.get(slot).and_then(|s| s.sampler.as_ref()) {
            Some(l) if l.filled > 0 => ParticleView::Gpu(ParticleSource {
                buffer: l.trails.clone(),
                n: l.sampler.n_particles() as u32,
                slots: TRAIL_SLOTS,
                head: l.head,
                filled: l.filled,
                use_mean: false,
            }),
            _ => ParticleView::None,
        }
    }

    fn request_samples(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.samples_wanted = true;
        }
    }

    fn request_model(&mut self) {
        self.model_wanted = true;
    }

    fn frame(&mut self, _budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput {
        let mut out = FrameOutput::default();
        let t0 = Instant::now();
        self.poll_side(&mut out);
        if !self.poll(&mut out) {
            out.timing.field_ms = ms_since(t0);
            return out;
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuEngine::frame"),
            });
        let steps = if train {
            self.steps_per_frame
        } else {
            let k = self.queued_steps.min(self.steps_per_frame);
            self.queued_steps -= k;
            k
        };
        if steps > 0 {
            self.trainer.encode(&self.ctx, &mut enc, steps);
            self.submitted += u64::from(steps);
        }
        self.trainer.encode_copy_ema(&mut enc, &self.ema);
        let t1 = Instant::now();
        self.encode_samplers(&mut enc, &mut out);
        let t2 = Instant::now();
        let mut field_rb = None;
        let due = |last: &Option<(Instant, FieldRequest)>, req: &FieldRequest, every: Duration| {
            last.as_ref()
                .is_none_or(|(at, r)| r != req || at.elapsed() >= every)
        };
        let field = req.field.filter(|r| due(&self.last_field, r, FIELD_EVERY));
        if let Some(req) = field {
            self.last_field = Some((Instant::now(), req));
            let rebuild = self
                .field
                .as_ref()
                .is_none_or(|(r, _)| (r.lo, r.hi, r.n) != (req.lo, req.hi, req.n));
            if rebuild {
                match GpuField::new(
                    &self.ctx,
                    GpuScore::Net(&self.ema),
                    &self.mixture,
                    self.sde,
                    req.n,
                    req.lo,
                    req.hi,
                ) {
                    Ok(f) => self.field = Some((req, f)),
                    Err(e) => out.warning = Some(e.to_string()),
                }
            }
            if let Some((_, f)) = &self.field {
                f.encode(&self.ctx, &mut enc, req.t);
                field_rb = Some(req);
            }
        }
        let density = req
            .density
            .filter(|r| self.density_rb.is_none() && due(&self.last_density, r, DENSITY_EVERY));
        let mut density_rb = None;
        if let Some(req) = density {
            self.last_density = Some((Instant::now(), req));
            if self.density.as_ref().is_none_or(|(r, _)| *r != req) {
                match GpuLikelihood::new(
                    &self.ctx,
                    GpuScore::Net(&self.ema),
                    &self.mixture,
                    self.sde,
                    &grid_points(&req),
                    req.t.clamp(1e-3, 0.99),
                    DENSITY_STEPS,
                ) {
                    Ok(j) => self.density = Some((req, j)),
                    Err(e) => out.warning = Some(e.to_string()),
                }
            }
            if let Some((_, j)) = &self.density {
                j.encode(&self.ctx, &mut enc);
                density_rb = Some(req);
            }
        }
        let want_fisher =
            self.submitted >= self.last_fisher_step + FISHER_EVERY || self.last_fisher_step == 0;
        if want_fisher {
            self.fisher.encode(&self.ctx, &mut enc);
            self.last_fisher_step = self.submitted;
        }
        // Every readback of this frame is a copy in the same encoder: one submit per frame.
        let (ring, off, len) = self.trainer.loss_ring_range();
        let ctx = &self.ctx;
        let counters = AsyncReadback::record(ctx, &mut enc, self.trainer.counters_buffer(), 0, 8);
        let losses = AsyncReadback::record(ctx, &mut enc, ring, off, len);
        let field = field_rb.and_then(|req| {
            self.field.as_ref().map(|(_, f)| {
                let (buf, len) = f.result_range();
                (req, AsyncReadback::record(ctx, &mut enc, buf, 0, len))
            })
        });
        if let (Some(req), Some((_, j))) = (density_rb, &self.density) {
            let (buf, len) = j.result_range();
            self.density_rb = Some((req, AsyncReadback::record(ctx, &mut enc, buf, 0, len)));
        }
        self.start_side_readbacks(&mut enc);
        let fisher = want_fisher.then(|| {
            let (buf, off, len) = self.fisher.result_range();
            (
                self.submitted,
                AsyncReadback::record(&self.ctx, &mut enc, buf, off, len),
            )
        });
        self.ctx.submit(enc);
        // Map after the submit that holds the copies (map() is a no-op for older ones).
        counters.map();
        losses.map();
        for (_, rb) in field.iter().chain(&self.density_rb) {
            rb.map();
        }
        if let Some((_, rb)) = &fisher {
            rb.map();
        }
        for slot in &self.slots {
            if let Some((rb, _, _)) = &slot.samples_rb {
                rb.map();
            }
        }
        if let Some(rb) = &self.model_rb {
            rb.map();
        }
        self.inflight = Some(Inflight {
            submitted_at: Instant::now(),
            steps,
            counters,
            losses,
            field,
            fisher,
            got_counters: None,
            got_losses: None,
        });
        out.timing = FrameTiming {
            train_ms: (t1 - t0).as_secs_f64() * 1e3,
            sample_ms: (t2 - t1).as_secs_f64() * 1e3,
            field_ms: ms_since(t2),
        };
        out
    }

    fn gpu_counts(&self) -> Option<crate::gpu::context::GpuCounts> {
        Some(self.ctx.counts())
    }
}

// ------------------------------------------------------------------ CPU

/// The `sim` engine (WebGL2-only browsers, or when the GPU engine cannot start).
pub struct CpuEngine {
    trainer: Trainer,
    steps: u64,
    last_fisher_step: u64,
    queued_steps: u32,
    slots: [CpuSlot; SLOTS],
    sampling_paused: bool,
    queued_sampler_steps: u32,
    model_wanted: bool,
    density: Option<DensityJob>,
    last_density: Option<(Instant, FieldRequest)>,
    last_field: Option<(Instant, FieldRequest)>,
}

/// One live sampler slot of the CPU engine.
#[derive(Default)]
struct CpuSlot {
    live: LiveSampling,
    sampler: Option<Sampler>,
    finished_at: Option<Instant>,
    run: u32,
    acc: f64,
    particles: Vec<[f32; 4]>,
    samples_wanted: bool,
    final_sent: bool,
}

/// A learned-density grid computed a few points per frame.
struct DensityJob {
    req: FieldRequest,
    net: ScoreNet,
    points: Vec<Vec2>,
    out: Vec<f64>,
}

/// CPU time per frame for the live samplers and for the density heatmap.
const CPU_SIDE_BUDGET: Duration = Duration::from_millis(4);
/// CPU time per frame for the live samplers while training is paused.
const CPU_SAMPLER_BUDGET_IDLE: Duration = Duration::from_millis(30);

impl CpuEngine {
    /// A CPU engine.
    pub fn new(
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
        net: Option<ScoreNet>,
    ) -> Result<Self, String> {
        let net = match net {
            Some(n) => n,
            None => new_net(settings, mixture, sde)?,
        };
        Ok(Self {
            trainer: Trainer::new(net, mixture.clone(), train_config(settings)),
            steps: 0,
            last_fisher_step: 0,
            queued_steps: 0,
            slots: Default::default(),
            sampling_paused: false,
            queued_sampler_steps: 0,
            model_wanted: false,
            density: None,
            last_density: None,
            last_field: None,
        })
    }

    fn start_sampler(&mut self, i: usize) -> Result<(), String> {
        let slot = &mut self.slots[i];
        slot.sampler = None;
        slot.finished_at = None;
        slot.acc = 0.0;
        slot.final_sent = false;
        if !slot.live.enabled {
            slot.particles.clear();
            return Ok(());
        }
        slot.live.validate()?;
        if let Some(g) = slot.live.guide {
            if g.component >= self.trainer.mixture.len() {
                return Err(format!(
                    "guidance toward component {} but the mixture has {}",
                    g.component + 1,
                    self.trainer.mixture.len()
                ));
            }
        }
        let cfg = slot.live.config(&self.trainer.mixture, slot.run);
        let s = Sampler::new(cfg, self.trainer.net.sde, slot.live.n).map_err(|e| e.to_string())?;
        slot.sampler = Some(s);
        Ok(())
    }

    fn run_samplers(&mut self, budget: Duration, out: &mut FrameOutput) {
        let start = Instant::now();
        let queued = std::mem::take(&mut self.queued_sampler_steps);
        let mut net: Option<ScoreNet> = None;
        for i in 0..SLOTS {
            let slot = &mut self.slots[i];
            let due = slot_due(
                self.sampling_paused,
                slot.sampler.is_some(),
                &slot.live,
                &mut slot.run,
                slot.finished_at,
            );
            if due {
                if let Err(e) = self.start_sampler(i) {
                    out.warning = Some(format!("sampler {}: {e}", i + 1));
                    self.slots[i].live.enabled = false;
                }
            }
            let paused = self.sampling_paused;
            let slot = &mut self.slots[i];
            let Some(s) = slot.sampler.as_mut() else {
                continue;
            };
            let exact = ExactScore::new(self.trainer.mixture.clone(), self.trainer.net.sde);
            let base: &dyn ScoreModel = if slot.live.exact {
                &exact
            } else {
                net.get_or_insert_with(|| self.trainer.ema_net())
            };
            let guided;
            let score: &dyn ScoreModel = match slot.live.guide {
                Some(g) if g.component < self.trainer.mixture.len() => {
                    guided = GuidedScore {
                        base,
                        exact: ExactScore::new(self.trainer.mixture.clone(), self.trainer.net.sde),
                        component: g.component,
                        gamma: g.gamma,
                    };
                    &guided
                }
                _ => base,
            };
            let k = if paused {
                queued as usize
            } else {
                steps_this_frame(&slot.live, &mut slot.acc)
            };
            for _ in 0..k {
                if s.done() || start.elapsed() >= budget {
                    break;
                }
                s.step(score);
            }
            if s.done() && slot.finished_at.is_none() {
                slot.finished_at = Some(Instant::now());
            }
            slot.particles.clear();
            slot.particles.extend(
                s.x.iter()
                    .zip(&s.x_mean)
                    .map(|(x, m)| [x.x as f32, x.y as f32, m.x as f32, m.y as f32]),
            );
            out.sampler[i] = Some(SamplerStatus {
                run: slot.run,
                step: s.steps_done(),
                total: s.total_steps(),
                nfe: s.nfe(),
                t: s.current_t(),
                n: s.x.len(),
                kind: slot.live.kind,
                done: s.done(),
            });
            let final_now = s.done() && !slot.final_sent;
            if slot.samples_wanted || final_now {
                slot.samples_wanted = false;
                if s.done() {
                    slot.final_sent = true;
                }
                out.samples.push(SamplesOut {
                    slot: i,
                    done: s.done(),
                    run: slot.run,
                    points: s.samples().to_vec(),
                });
            }
        }
    }

    fn run_density(&mut self, req: Option<FieldRequest>, out: &mut FrameOutput) {
        if let Some(r) = req {
            let due = self
                .last_density
                .as_ref()
                .is_none_or(|(at, last)| *last != r || at.elapsed() >= DENSITY_EVERY);
            let busy_same = self.density.as_ref().is_some_and(|j| j.req == r);
            if due && !busy_same {
                self.last_density = Some((Instant::now(), r));
                self.density = Some(DensityJob {
                    req: r,
                    net: self.trainer.ema_net(),
                    points: grid_points(&r),
                    out: Vec::new(),
                });
            }
        }
        let Some(job) = self.density.as_mut() else {
            return;
        };
        let start = Instant::now();
        let t0 = job.req.t.clamp(1e-3, 0.99);
        while job.out.len() < job.points.len() && start.elapsed() < CPU_SIDE_BUDGET {
            let x = job.points[job.out.len()];
            job.out.push(log_likelihood_rk4(
                &job.net,
                &job.net.sde,
                x,
                t0,
                DENSITY_STEPS as usize,
            ));
        }
        if job.out.len() == job.points.len() {
            if let Some(job) = self.density.take() {
                self.last_density = Some((Instant::now(), job.req));
                out.density = Some((job.req, job.out));
            }
        }
    }
}

impl Engine for CpuEngine {
    fn label(&self) -> &'static str {
        "CPU"
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde) {
        self.trainer.mixture = mixture.clone();
        self.trainer.net.sde = *sde;
        for slot in &mut self.slots {
            if let Some(s) = &mut slot.sampler {
                s.sde = *sde;
            }
        }
    }

    fn queue_steps(&mut self, k: u32) {
        self.queued_steps = self.queued_steps.saturating_add(k);
    }

    fn set_sampling(&mut self, slot: usize, sampling: &LiveSampling) {
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        s.live = sampling.clone();
        s.run = 0;
        if let Err(e) = self.start_sampler(slot) {
            log::warn!("live sampler: {e}");
        }
    }

    fn pause_sampling(&mut self, paused: bool) {
        self.sampling_paused = paused;
    }

    fn step_sampling(&mut self, k: u32) {
        self.queued_sampler_steps = self.queued_sampler_steps.saturating_add(k);
    }

    fn restart_sampling(&mut self) {
        for i in 0..SLOTS {
            self.slots[i].run = self.slots[i].run.wrapping_add(1);
            if let Err(e) = self.start_sampler(i) {
                log::warn!("live sampler: {e}");
            }
        }
    }

    fn particles(&self, slot: usize) -> ParticleView<'_> {
        match self.slots.get(slot) {
            Some(s) if !s.particles.is_empty() => ParticleView::Cpu(&s.particles),
            _ => ParticleView::None,
        }
    }

    fn request_samples(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.samples_wanted = true;
        }
    }

    fn request_model(&mut self) {
        self.model_wanted = true;
    }

    fn frame(&mut self, budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput {
        let mut out = FrameOutput::default();
        let start = Instant::now();
        let mut left = if train { u32::MAX } else { self.queued_steps };
        while left > 0 && start.elapsed() < budget {
            left -= 1;
            if !train {
                self.queued_steps -= 1;
            }
            match self.trainer.step() {
                Ok(l) => {
                    self.steps += 1;
                    out.losses.push((self.steps, l));
                }
                Err(e) => {
                    let lr = self.trainer.config.adam.lr * 0.5;
                    self.trainer.config.adam.lr = lr;
                    self.trainer.set_lr(lr);
                    out.warning = Some(format!("{e}; lowered the learning rate to {lr:.1e}"));
                    break;
                }
            }
        }
        out.steps = Some(self.steps);
        out.timing.train_ms = ms_since(start);
        if std::mem::take(&mut self.model_wanted) {
            out.model = Some(self.trainer.ema_net());
        }
        let side = if train {
            CPU_SIDE_BUDGET
        } else {
            CPU_SAMPLER_BUDGET_IDLE
        };
        let t1 = Instant::now();
        self.run_samplers(side, &mut out);
        let t2 = Instant::now();
        out.timing.sample_ms = (t2 - t1).as_secs_f64() * 1e3;
        self.run_density(req.density, &mut out);
        let need_fisher = self.steps >= self.last_fisher_step + FISHER_EVERY
            || (self.last_fisher_step == 0 && self.steps > 0);
        let field = req.field.filter(|r| {
            self.last_field
                .as_ref()
                .is_none_or(|(at, last)| last != r || at.elapsed() >= FIELD_EVERY)
        });
        if let Some(r) = field {
            self.last_field = Some((Instant::now(), r));
        }
        if field.is_some() || need_fisher {
            let net = self.trainer.ema_net();
            if need_fisher {
                let f = relative_fisher(
                    &net,
                    &self.trainer.mixture,
                    &net.sde,
                    &fisher_levels(),
                    FISHER_POINTS,
                    1,
                );
                out.fisher = Some((self.steps, f.iter().sum::<f64>() / f.len() as f64));
                self.last_fisher_step = self.steps;
            }
            if let Some(req) = field {
                let exact = ExactScore::new(self.trainer.mixture.clone(), net.sde);
                let pt = exact.at(req.t);
                let pts = grid_points(&req);
                let mut learned = vec![Vec2::zeros(); pts.len()];
                net.score_batch(&pts, req.t, &mut learned);
                let cells = pts
                    .iter()
                    .zip(learned)
                    .map(|(x, l)| FieldCell {
                        learned: l,
                        exact: pt.score(*x),
                        log_p: pt.log_prob(*x),
                    })
                    .collect();
                out.field = Some((req, cells));
            }
        }
        out.timing.field_ms = ms_since(t2);
        out
    }
}

//! The WGSL engine on the app's device.
//!
//! Data flow per frame: poll the async readbacks of the last submission; if the GPU has
//! caught up, encode k training steps (4 dispatches each), copy the EMA weights into the
//! drawing network, encode the field (and now and then the Fisher probe), submit once, and
//! start small async readbacks (step counter, loss ring, field cells, Fisher sums). k grows
//! while the readback comes back within a frame and shrinks when it lags.

use web_time::{Duration, Instant};

use super::settings::{net_or_new, train_config};
use super::{
    ms_since, start_if_due, Control, Engine, EngineChoice, EngineError, FieldRequest, FrameOutput,
    FrameRequest, FrameTiming, ParticleSource, ParticleView, SamplerStatus, SamplesOut,
    TrainSettings, DENSITY_EVERY, DENSITY_STEPS, FIELD_EVERY, FISHER_EVERY, FISHER_POINTS, SLOTS,
    TRAIL_SLOTS,
};
use crate::gpu::context::{AsyncReadback, GpuContext, GpuError};
use crate::gpu::field::{FisherProbe, GpuField};
use crate::gpu::likelihood::GpuLikelihood;
use crate::gpu::sampler::{GpuSampler, GpuScore};
use crate::gpu::trainer::{GpuTrainer, LOSS_RING};
use crate::gpu::GpuNet;
use crate::sim::metrics::{fisher_levels, mean};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::Sde;
use crate::sim::train::lowered_lr;
use crate::sim::Vec2;
use eframe::egui_wgpu::wgpu;

mod flow;

/// Largest particle count whose finished runs are read back automatically (mode-weight bars).
const MAX_AUTO_READBACK: usize = 200_000;
/// GPU work to aim for per submission.
const GPU_BUDGET: Duration = Duration::from_millis(12);
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
    control: Control,
    slots: [GpuSlot; SLOTS],
    model_rb: Option<AsyncReadback>,
    density: Option<(FieldRequest, GpuLikelihood)>,
    last_density: Option<(Instant, FieldRequest)>,
    density_rb: Option<(FieldRequest, AsyncReadback)>,
    /// Flow matching beside the score network, while the flow view asks for it.
    flow: Option<flow::GpuFlow>,
}

/// One live sampler slot's GPU objects (its settings and bookkeeping are in [`Control`]).
#[derive(Default)]
struct GpuSlot {
    sampler: Option<LiveGpu>,
    /// (readback, read at the end of a run, run).
    samples_rb: Option<(AsyncReadback, bool, u32)>,
    /// MALA: the acceptance rate last read back, and the readback in flight (with the
    /// proposals it covers) and when it started.
    accept: Option<f64>,
    accept_rb: Option<(AsyncReadback, u64, u32)>,
    accept_at: Option<Instant>,
}

/// How often a MALA slot's acceptance counts are read back.
const ACCEPT_EVERY: Duration = Duration::from_millis(400);

/// The live sampler and its trail ring (`TRAIL_SLOTS` snapshots, also a vertex buffer).
struct LiveGpu {
    sampler: GpuSampler,
    trails: wgpu::Buffer,
    head: u32,
    filled: u32,
}

/// Where a GPU sampler is, for the status line and `state()`.
fn gpu_status(run: u32, kind: SamplerKind, s: &GpuSampler, accept: Option<f64>) -> SamplerStatus {
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
        accept: if s.is_mala() { accept } else { None },
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
    ) -> Result<Self, EngineError> {
        let net = net_or_new(net, settings, mixture, sde)?;
        let sde = net.sde;
        let trainer = GpuTrainer::new(&ctx, &net, mixture, &train_config(settings))?;
        let ema = GpuNet::upload(&ctx, &net)?;
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
            control: Control::default(),
            slots: Default::default(),
            model_rb: None,
            density: None,
            last_density: None,
            density_rb: None,
            flow: None,
        })
    }

    /// Start run `run` of live sampler `i` (see [`Engine::start_slot`]).
    fn start_sampler(&mut self, i: usize, fresh: bool) -> Result<(), EngineError> {
        self.control.begin_run(i);
        let slot = &mut self.slots[i];
        slot.sampler = None;
        slot.accept = None;
        slot.accept_rb = None;
        slot.accept_at = None;
        if fresh {
            slot.samples_rb = None;
        }
        let c = &self.control.slots[i];
        if !c.live.enabled {
            return Ok(());
        }
        c.live.validate().map_err(EngineError::Setting)?;
        let score = if c.live.exact {
            GpuScore::Exact
        } else {
            GpuScore::Net(&self.ema)
        };
        let cfg = c.live.config(&self.mixture, c.run);
        let guide = c.live.guide.map(|g| (g.component, g.gamma));
        let mut sampler = GpuSampler::new_guided(
            &self.ctx,
            score,
            guide,
            &self.mixture,
            self.sde,
            &cfg,
            c.live.n,
        )?;
        if c.live.is_mala() {
            sampler = sampler.with_mala();
        }
        let trails = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("GpuEngine::trails"),
            size: (u64::from(TRAIL_SLOTS) * c.live.n as u64 * 16).max(16),
            usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.slots[i].sampler = Some(LiveGpu {
            sampler,
            trails,
            head: 0,
            filled: 0,
        });
        // A readback of the sampler this one replaces would arrive under the new run's number.
        self.slots[i].samples_rb = None;
        self.slots[i].accept_rb = None;
        Ok(())
    }

    /// Advance the live samplers inside this frame's encoder and snapshot them for the trails.
    fn encode_samplers(&mut self, enc: &mut wgpu::CommandEncoder, out: &mut FrameOutput) {
        let queued = std::mem::take(&mut self.control.queued_sampler_steps);
        for i in 0..SLOTS {
            let started = self.slots[i].sampler.is_some();
            start_if_due(self, i, started, out);
            let k = self.control.steps_this_frame(i, queued);
            let c = &mut self.control.slots[i];
            let Some(live) = self.slots[i].sampler.as_mut() else {
                continue;
            };
            if k > 0 && !live.sampler.done() {
                live.sampler.encode(&self.ctx, enc, k);
            }
            if live.sampler.done() && c.finished_at.is_none() {
                c.finished_at = Some(Instant::now());
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
            out.sampler[i] = Some(gpu_status(
                c.run,
                c.live.kind,
                &live.sampler,
                self.slots[i].accept,
            ));
        }
    }

    /// Record the readbacks asked for (samples, each finished run, the model) into `enc`;
    /// `frame` maps them after its submit.
    fn start_side_readbacks(&mut self, enc: &mut wgpu::CommandEncoder) {
        for (slot, c) in self.slots.iter_mut().zip(&mut self.control.slots) {
            let Some(l) = &slot.sampler else { continue };
            let done = l.sampler.done();
            let due = slot.accept_at.is_none_or(|at| at.elapsed() >= ACCEPT_EVERY);
            if l.sampler.is_mala() && slot.accept_rb.is_none() && due {
                let (buf, off, len) = l.sampler.accepted_range();
                slot.accept_at = Some(Instant::now());
                slot.accept_rb = Some((
                    AsyncReadback::record(&self.ctx, enc, buf, off, len),
                    l.sampler.proposed(),
                    c.run,
                ));
            }
            let want_final = done && !c.final_sent && l.sampler.n_particles() <= MAX_AUTO_READBACK;
            if (c.samples_wanted || want_final) && slot.samples_rb.is_none() {
                c.samples_wanted = false;
                if done {
                    c.final_sent = true;
                }
                let len = l.sampler.n_particles() as u64 * 16;
                slot.samples_rb = Some((
                    AsyncReadback::record(&self.ctx, enc, l.sampler.particles_buffer(), 0, len),
                    done,
                    c.run,
                ));
            }
        }
        if self.control.model_wanted && self.model_rb.is_none() {
            self.control.model_wanted = false;
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
        for (slot, c) in self.slots.iter_mut().zip(&self.control.slots) {
            let Some((rb, proposed, run)) = &slot.accept_rb else {
                continue;
            };
            match rb.try_take(&self.ctx) {
                Some(Ok(b)) => {
                    let accepted = crate::gpu::sampler::accepted_of(bytemuck::cast_slice(&b));
                    if *run == c.run && *proposed > 0 {
                        slot.accept = Some(accepted as f64 / *proposed as f64);
                    }
                    slot.accept_rb = None;
                }
                Some(Err(e)) => {
                    out.warning = Some(format!("GPU readback failed: {e}"));
                    slot.accept_rb = None;
                }
                None => {}
            }
        }
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
        let ctx = &self.ctx;
        take_done(ctx, &mut inf.field, &mut failed, |req, b| {
            out.field = Some((*req, GpuField::decode(&b)));
        });
        take_done(ctx, &mut inf.fisher, &mut failed, |step, b| {
            out.fisher = Some((*step, mean(&FisherProbe::decode(&b))));
        });
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
        self.settings.lr = lowered_lr(self.settings.lr);
        self.trainer.set_lr(&self.ctx, self.settings.lr);
        self.trainer.clear_divergence(&self.ctx);
        format!(
            "Training diverged at step {step} (non-finite loss); kept the last good weights and lowered the learning rate to {:.1e}.",
            self.settings.lr
        )
    }
}

impl Engine for GpuEngine {
    fn choice(&self) -> EngineChoice {
        EngineChoice::Gpu
    }

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
        if let Some(f) = &mut self.flow {
            f.set_mixture(&self.ctx, mixture);
        }
        if let Some((_, f)) = &self.field {
            f.set_mixture(&self.ctx, mixture, sde);
        }
        for slot in &mut self.slots {
            if let Some(l) = &mut slot.sampler {
                l.sampler.set_mixture(&self.ctx, mixture, sde);
            }
        }
        if let Some((_, d)) = &mut self.density {
            d.set_mixture(&self.ctx, mixture, sde);
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

    fn control(&mut self) -> &mut Control {
        &mut self.control
    }

    fn start_slot(&mut self, i: usize, fresh: bool) -> Result<(), EngineError> {
        self.start_sampler(i, fresh)
    }

    fn load_model(&mut self, net: &ScoreNet) -> Result<(), EngineError> {
        if net.config != self.trainer.net.template.config {
            return Err(EngineError::Setting(
                "the network to load has another shape than this engine's".into(),
            ));
        }
        self.trainer.load_weights(&self.ctx, &net.mlp.params)?;
        Ok(())
    }

    fn frame(&mut self, _budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput {
        let mut out = FrameOutput::default();
        let t0 = Instant::now();
        self.poll_side(&mut out);
        self.poll_flow(req.flow, &mut out);
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
            self.control.take_queued_steps(self.steps_per_frame)
        };
        if steps > 0 {
            self.trainer.encode(&self.ctx, &mut enc, steps);
            self.submitted += u64::from(steps);
        }
        self.trainer.encode_copy_ema(&mut enc, &self.ema);
        if let Some(f) = &mut self.flow {
            f.encode(&self.ctx, &mut enc, train.then_some(self.steps_per_frame));
        }
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
                    &req.points(),
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
        self.flow.iter().for_each(flow::GpuFlow::map);
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
            if let Some((rb, _, _)) = &slot.accept_rb {
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

/// Poll an optional tagged readback: when it has come back, hand (tag, bytes) to `got` (or
/// the error to `failed`) and clear it; a pending one stays.
fn take_done<T>(
    ctx: &GpuContext,
    slot: &mut Option<(T, AsyncReadback)>,
    failed: &mut Option<GpuError>,
    got: impl FnOnce(&T, Vec<u8>),
) {
    let Some((tag, rb)) = slot.as_ref() else {
        return;
    };
    match rb.try_take(ctx) {
        Some(Ok(b)) => got(tag, b),
        Some(Err(e)) => *failed = Some(e),
        None => return,
    }
    *slot = None;
}

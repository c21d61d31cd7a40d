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

use crate::gpu::context::{AsyncReadback, GpuContext, GpuError};
use crate::gpu::field::{FieldCell, FisherProbe, GpuField};
use crate::gpu::sampler::GpuScore;
use crate::gpu::trainer::{GpuTrainer, LOSS_RING};
use crate::gpu::GpuNet;
use crate::sim::adam::AdamConfig;
use crate::sim::metrics::{fisher_levels, relative_fisher};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::Sde;
use crate::sim::train::{TrainConfig, Trainer};
use crate::sim::Vec2;
use eframe::egui_wgpu::wgpu;

/// Network/optimiser settings the user can change.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// What a frame produced (anything may be absent while work is in flight).
#[derive(Default)]
pub struct FrameOutput {
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
}

/// A training/evaluation engine.
pub trait Engine {
    /// Short name for the status line ("WebGPU", "CPU").
    fn label(&self) -> &'static str;
    /// Replace the data distribution (training continues).
    fn set_mixture(&mut self, mixture: &GaussianMixture);
    /// One frame of work within about `budget`; `train` false pauses training.
    fn frame(&mut self, budget: Duration, train: bool, field: Option<FieldRequest>) -> FrameOutput;
}

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
    ) -> Result<Self, String> {
        let net = new_net(settings, mixture, sde)?;
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
        })
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

    fn set_mixture(&mut self, mixture: &GaussianMixture) {
        self.mixture = mixture.clone();
        self.trainer.set_mixture(&self.ctx, mixture);
        self.fisher.set_mixture(&self.ctx, mixture);
        if let Some((_, f)) = &self.field {
            f.set_mixture(&self.ctx, mixture);
        }
    }

    fn frame(
        &mut self,
        _budget: Duration,
        train: bool,
        field: Option<FieldRequest>,
    ) -> FrameOutput {
        let mut out = FrameOutput::default();
        if !self.poll(&mut out) {
            return out;
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuEngine::frame"),
            });
        if train {
            self.trainer
                .encode(&self.ctx, &mut enc, self.steps_per_frame);
            self.submitted += u64::from(self.steps_per_frame);
        }
        self.trainer.encode_copy_ema(&mut enc, &self.ema);
        let mut field_rb = None;
        let field_due = |last: &Option<(Instant, FieldRequest)>, req: &FieldRequest| {
            last.as_ref()
                .is_none_or(|(at, r)| r != req || at.elapsed() >= FIELD_EVERY)
        };
        let field = field.filter(|req| field_due(&self.last_field, req));
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
        let want_fisher =
            self.submitted >= self.last_fisher_step + FISHER_EVERY || self.last_fisher_step == 0;
        if want_fisher {
            self.fisher.encode(&self.ctx, &mut enc);
            self.last_fisher_step = self.submitted;
        }
        self.ctx.queue.submit([enc.finish()]);
        let (ring, off, len) = self.trainer.loss_ring_range();
        let counters = AsyncReadback::start(&self.ctx, self.trainer.counters_buffer(), 0, 8);
        let losses = AsyncReadback::start(&self.ctx, ring, off, len);
        let field = field_rb.and_then(|req| {
            self.field.as_ref().map(|(_, f)| {
                let (buf, len) = f.result_range();
                (req, AsyncReadback::start(&self.ctx, buf, 0, len))
            })
        });
        let fisher = want_fisher.then(|| {
            let (buf, off, len) = self.fisher.result_range();
            (
                self.submitted,
                AsyncReadback::start(&self.ctx, buf, off, len),
            )
        });
        let steps = if train { self.steps_per_frame } else { 0 };
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
        out
    }
}

// ------------------------------------------------------------------ CPU

/// The `sim` engine (WebGL2-only browsers, or when the GPU engine cannot start).
pub struct CpuEngine {
    trainer: Trainer,
    steps: u64,
    last_fisher_step: u64,
}

impl CpuEngine {
    /// A CPU engine.
    pub fn new(
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
    ) -> Result<Self, String> {
        let net = new_net(settings, mixture, sde)?;
        Ok(Self {
            trainer: Trainer::new(net, mixture.clone(), train_config(settings)),
            steps: 0,
            last_fisher_step: 0,
        })
    }
}

impl Engine for CpuEngine {
    fn label(&self) -> &'static str {
        "CPU"
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture) {
        self.trainer.mixture = mixture.clone();
    }

    fn frame(&mut self, budget: Duration, train: bool, field: Option<FieldRequest>) -> FrameOutput {
        let mut out = FrameOutput::default();
        let start = Instant::now();
        if train {
            while start.elapsed() < budget {
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
        }
        out.steps = Some(self.steps);
        let need_fisher = self.steps >= self.last_fisher_step + FISHER_EVERY
            || (self.last_fisher_step == 0 && self.steps > 0);
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
                let (nx, ny) = req.n;
                let pts: Vec<Vec2> = (0..ny)
                    .flat_map(|iy| (0..nx).map(move |ix| (ix, iy)))
                    .map(|(ix, iy)| {
                        let f = Vec2::new(
                            (f64::from(ix) + 0.5) / f64::from(nx),
                            (f64::from(iy) + 0.5) / f64::from(ny),
                        );
                        req.lo + (req.hi - req.lo).component_mul(&f)
                    })
                    .collect();
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
        out
    }
}

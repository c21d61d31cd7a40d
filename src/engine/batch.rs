//! Batch work for the CLI and the benchmarks: train, sample, log-likelihood and the Fisher
//! divergence on either engine, chosen once ([`Batch::new`]); the calls are the same after
//! that, so the callers never branch on CPU vs GPU themselves.

use crate::engine::{EngineChoice, EngineError};
use crate::gpu::context::GpuContext;
use crate::gpu::sampler::{GpuSampler, GpuScore};
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::GpuNet;
use crate::sim::likelihood::{log_likelihood, LikelihoodConfig};
use crate::sim::metrics;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::{self, SamplerConfig, SamplerKind};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::Sde;
use crate::sim::train::{TrainConfig, Trainer};
use crate::sim::Vec2;

/// Training runs in chunks of this many steps (the GPU reads back only between chunks).
pub const TRAIN_CHUNK: u32 = 500;
/// Consecutive divergences the CPU trainer recovers from before giving up.
const MAX_RECOVERIES: u32 = 20;

/// The score a batch computation follows: the exact one, or a trained network.
pub enum Score {
    /// The exact score of the perturbed mixture.
    Exact(ExactScore),
    /// A network (its SDE is its own).
    Net(Box<ScoreNet>),
}

impl Score {
    /// As a `sim` model.
    pub fn model(&self) -> &dyn ScoreModel {
        match self {
            Self::Exact(e) => e,
            Self::Net(n) => n.as_ref(),
        }
    }

    /// Its SDE.
    pub fn sde(&self) -> Sde {
        match self {
            Self::Exact(e) => e.sde,
            Self::Net(n) => n.sde,
        }
    }
}

/// Where batch work runs.
pub enum Batch {
    /// `sim` on the CPU.
    Cpu,
    /// WGSL on a headless device.
    Gpu(Box<GpuContext>),
}

impl Batch {
    /// Open the engine `choice` (the GPU one on the best native adapter).
    pub fn new(choice: EngineChoice) -> Result<Self, EngineError> {
        Ok(match choice {
            EngineChoice::Cpu => Self::Cpu,
            EngineChoice::Gpu => Self::Gpu(Box::new(
                GpuContext::headless().map_err(EngineError::NoGpu)?,
            )),
        })
    }

    /// Which engine.
    pub fn choice(&self) -> EngineChoice {
        match self {
            Self::Cpu => EngineChoice::Cpu,
            Self::Gpu(_) => EngineChoice::Gpu,
        }
    }

    /// Train `net` for `steps` steps in chunks of [`TRAIN_CHUNK`]; after each chunk `chunk`
    /// gets (its first step, its losses, the EMA network when `with_net`). Returns the EMA
    /// network and the last loss. The CPU recovers from a divergence (`sim::train`); the GPU
    /// trainer reports it as an error.
    pub fn train(
        &self,
        net: ScoreNet,
        mixture: &GaussianMixture,
        tc: TrainConfig,
        steps: u32,
        with_net: bool,
        mut chunk: impl FnMut(u32, &[f64], Option<&ScoreNet>),
    ) -> Result<(ScoreNet, f64), EngineError> {
        let mut last = f64::NAN;
        let mut done = 0u32;
        match self {
            Self::Cpu => {
                let mut trainer = Trainer::new(net, mixture.clone(), tc);
                let mut diverged = 0u32;
                while done < steps {
                    let k = (steps - done).min(TRAIN_CHUNK);
                    let mut losses = Vec::with_capacity(k as usize);
                    for _ in 0..k {
                        match trainer.step() {
                            Ok(l) => last = l,
                            Err(e) => {
                                diverged += 1;
                                if diverged > MAX_RECOVERIES {
                                    return Err(EngineError::Diverged(format!(
                                        "{e}; gave up after {MAX_RECOVERIES} divergences"
                                    )));
                                }
                                eprintln!("warning: {}", trainer.recover(&e));
                            }
                        }
                        losses.push(last);
                    }
                    let ema = with_net.then(|| trainer.ema_net());
                    chunk(done + 1, &losses, ema.as_ref());
                    done += k;
                }
                Ok((trainer.ema_net(), last))
            }
            Self::Gpu(ctx) => {
                let trainer = GpuTrainer::new(ctx, &net, mixture, &tc)?;
                while done < steps {
                    let k = (steps - done).min(TRAIN_CHUNK);
                    trainer.train(ctx, k);
                    if let Some(at) = trainer.diverged_at(ctx)? {
                        return Err(EngineError::Diverged(format!(
                            "training diverged on the GPU at step {at} (non-finite loss); try a smaller --lr"
                        )));
                    }
                    let losses: Vec<f64> = trainer
                        .read_losses(ctx, done, k)?
                        .into_iter()
                        .map(f64::from)
                        .collect();
                    last = losses.last().copied().unwrap_or(f64::NAN);
                    let ema = if with_net {
                        Some(trainer.ema_net(ctx)?)
                    } else {
                        None
                    };
                    chunk(done + 1, &losses, ema.as_ref());
                    done += k;
                }
                Ok((trainer.ema_net(ctx)?, last))
            }
        }
    }

    /// `n` samples and the score evaluations per sample.
    pub fn sample(
        &self,
        score: &Score,
        mixture: &GaussianMixture,
        cfg: SamplerConfig,
        n: usize,
    ) -> Result<(Vec<Vec2>, u64), EngineError> {
        match self {
            Self::Cpu => Ok(samplers::sample(cfg, score.sde(), n, score.model())?),
            Self::Gpu(ctx) => {
                if cfg.kind == SamplerKind::OdeRk45 {
                    return Err(EngineError::Unsupported("ode-rk45 is adaptive and runs on the CPU; on the GPU use ode-rk4 (fixed steps)".into()));
                }
                let net = Self::upload(ctx, score)?;
                let gs = net.as_ref().map_or(GpuScore::Exact, GpuScore::Net);
                let mut s = GpuSampler::new(ctx, gs, mixture, score.sde(), &cfg, n)?;
                s.run(ctx);
                Ok((s.samples(ctx)?, s.nfe()))
            }
        }
    }

    /// The PF-ODE log-likelihood of each point (`None` where it failed); the GPU integrates
    /// with `gpu_steps` fixed RK4 steps, the CPU adaptively.
    pub fn log_likelihood(
        &self,
        score: &Score,
        mixture: &GaussianMixture,
        points: &[Vec2],
        gpu_steps: u32,
    ) -> Result<Vec<Option<f64>>, EngineError> {
        let sde = score.sde();
        let cfg = LikelihoodConfig::default();
        match self {
            // One adaptive solve per point, the points spread over the cores.
            Self::Cpu => Ok(crate::sim::par::map_range(points.len(), |i| {
                log_likelihood(score.model(), &sde, points[i], cfg).map(|l| l.log_prob)
            })),
            Self::Gpu(ctx) => {
                let net = Self::upload(ctx, score)?;
                let gs = net.as_ref().map_or(GpuScore::Exact, GpuScore::Net);
                let lp = crate::gpu::likelihood::log_likelihood(
                    ctx, gs, mixture, sde, points, cfg.t0, gpu_steps,
                )?;
                Ok(lp.into_iter().map(|l| l.is_finite().then_some(l)).collect())
            }
        }
    }

    /// Relative Fisher divergence to the exact score at `levels`, `n` points each (a network
    /// on the GPU runs the WGSL probe; the exact score is exact on either).
    pub fn relative_fisher(
        &self,
        score: &Score,
        mixture: &GaussianMixture,
        levels: &[f64],
        n: usize,
    ) -> Result<Vec<f64>, EngineError> {
        match (self, score) {
            (Self::Gpu(ctx), Score::Net(net)) => {
                let g = GpuNet::upload(ctx, net)?;
                Ok(crate::gpu::field::relative_fisher(
                    ctx, &g, mixture, levels, n, 1,
                )?)
            }
            _ => Ok(metrics::relative_fisher(
                score.model(),
                mixture,
                &score.sde(),
                levels,
                n,
                1,
            )),
        }
    }

    fn upload(ctx: &GpuContext, score: &Score) -> Result<Option<GpuNet>, EngineError> {
        match score {
            Score::Net(n) => Ok(Some(GpuNet::upload(ctx, n)?)),
            Score::Exact(_) => Ok(None),
        }
    }
}

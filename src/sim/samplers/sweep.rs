//! How many steps does a sampler need? Runs a set of samplers at a set of score-evaluation
//! budgets (NFE) on one mixture and measures each run against the exact truth: the mode-weight
//! error and the worst component's spread error against true samples, the energy distance to
//! them, the NLL under the true mixture, and — for the few-step ODE samplers, which all start
//! from the same prior points — the RMS distance to the exact PF-ODE solution from those
//! points (a Dormand–Prince run at tolerance 1e-9), which falls at the method's order.
//! The CLI's `scorelab sweep` writes the table as CSV.

use super::fewstep::{self, FewStep};
use super::{pf_ode_velocity, Rk45, SamplerConfig, SamplerKind};
use crate::sim::metrics;
use crate::sim::mixture::GaussianMixture;
use crate::sim::rng::{CounterRng, StreamRng};
use crate::sim::score::ScoreModel;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// A sampler of the sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SweepSampler {
    /// DDIM, Heun on the EDM schedule or DPM-Solver++(2M).
    Few(FewStep),
    /// One of the live samplers (its own start noise).
    Classic(SamplerKind),
}

impl SweepSampler {
    /// Parse a name: `ddim`, `ddim-eta1` (any η), `edm-heun`, `edm-heun-churn40`,
    /// `dpm-solver++2m`, or a live sampler's name (`ode-euler`, `ancestral`, …).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Some(eta) = s.strip_prefix("ddim-eta") {
            let eta: f64 = eta.parse().ok()?;
            return (0.0..=1.0)
                .contains(&eta)
                .then_some(Self::Few(FewStep::Ddim { eta }));
        }
        if let Some(c) = s.strip_prefix("edm-heun-churn") {
            let churn: f64 = c.parse().ok()?;
            return (churn.is_finite() && churn >= 0.0)
                .then_some(Self::Few(FewStep::EdmHeun { churn }));
        }
        match s {
            "ddim" => Some(Self::Few(FewStep::Ddim { eta: 0.0 })),
            "edm-heun" => Some(Self::Few(FewStep::EdmHeun { churn: 0.0 })),
            "dpm-solver++2m" | "dpm-solver++" => Some(Self::Few(FewStep::DpmSolverPp2M)),
            other => SamplerKind::parse(other)
                .filter(|k| {
                    !matches!(
                        k,
                        SamplerKind::Langevin
                            | SamplerKind::AnnealedLangevin
                            | SamplerKind::OdeRk45
                    )
                })
                .map(Self::Classic),
        }
    }

    /// Its name in the table.
    pub fn name(self) -> String {
        match self {
            Self::Few(f) => f.name(),
            Self::Classic(k) => k.name().to_string(),
        }
    }

    /// Score evaluations per step.
    fn evals_per_step(self) -> usize {
        match self {
            Self::Few(f) => f.nfe(1),
            Self::Classic(SamplerKind::OdeHeun | SamplerKind::Pc) => 2,
            Self::Classic(SamplerKind::OdeRk4) => 4,
            Self::Classic(_) => 1,
        }
    }
}

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepRow {
    /// The sampler.
    pub sampler: String,
    /// Score evaluations per particle actually spent.
    pub nfe: usize,
    /// Largest |mode fraction − true fraction|.
    pub weight_error: f64,
    /// The worst component's relative covariance-eigenvalue error against true samples.
    pub spread_error: f64,
    /// Energy distance to true samples (data units).
    pub energy: f64,
    /// Mean −log p₀ of the samples under the true mixture (nats).
    pub nll: f64,
    /// RMS distance to the PF-ODE solution of the same score from the same start, relative to
    /// the data's spread (the deterministic few-step samplers only).
    pub ode_error: Option<f64>,
    /// Particles that ended not finite.
    pub diverged: usize,
}

/// The CSV header of [`SweepRow`]s.
pub const CSV_HEADER: &str = "sampler,nfe,weight_error,spread_error,energy,nll,ode_error,diverged";

impl SweepRow {
    /// One CSV line (no newline).
    pub fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{}",
            self.sampler,
            self.nfe,
            self.weight_error,
            self.spread_error,
            self.energy,
            self.nll,
            self.ode_error.map_or(String::new(), |e| e.to_string()),
            self.diverged
        )
    }
}

/// The PF-ODE's end points at `t_end` from `xs` at t = 1 (Dormand–Prince, tolerance 1e-9).
pub fn pf_ode_reference(score: &dyn ScoreModel, sde: &Sde, xs: &[Vec2], t_end: f64) -> Vec<Vec2> {
    xs.iter()
        .map(|x| {
            let mut ode = Rk45::new(1.0, vec![x.x, x.y], t_end, 1e-9, 1e-9);
            ode.run(&mut |t, y, dy| {
                let p = Vec2::new(y[0], y[1]);
                let v = pf_ode_velocity(sde, p, score.score(p, t), t);
                dy[0] = v.x;
                dy[1] = v.y;
            });
            if ode.failed {
                Vec2::new(f64::NAN, f64::NAN)
            } else {
                Vec2::new(ode.y[0], ode.y[1])
            }
        })
        .collect()
}

/// Run every sampler at every NFE budget with `n` particles and measure it (`seed` draws the
/// start points, the truth and the samplers' noise).
pub fn sweep(
    score: &dyn ScoreModel,
    sde: &Sde,
    mixture: &GaussianMixture,
    samplers: &[SweepSampler],
    nfes: &[usize],
    n: usize,
    seed: u32,
) -> Vec<SweepRow> {
    let truth = mixture.sample(4 * n, &mut StreamRng::new(seed, 77));
    let rng = CounterRng::new(seed);
    let start: Vec<Vec2> = (0..n as u32)
        .map(|i| sde.prior_sample(rng.normal2(0, i, 1)))
        .collect();
    let t_end = sde.sampling_t_end();
    let few = samplers.iter().any(|s| matches!(s, SweepSampler::Few(_)));
    let reference = few.then(|| pf_ode_reference(score, sde, &start, t_end));
    let scale = mixture.data_std();
    let mut rows = Vec::new();
    for &s in samplers {
        for &nfe in nfes {
            let steps = (nfe / s.evals_per_step()).max(1);
            let (xs, used) = match s {
                SweepSampler::Few(f) => {
                    let mut xs = start.clone();
                    let used = fewstep::run(f, score, sde, &mut xs, 1.0, t_end, steps, seed);
                    (xs, used)
                }
                SweepSampler::Classic(kind) => {
                    let mut cfg = SamplerConfig::defaults(kind, mixture);
                    cfg.n_steps = steps;
                    cfg.seed = seed;
                    match super::sample(cfg, *sde, n, score) {
                        Ok((xs, nfe)) => (xs, nfe as usize),
                        Err(_) => (vec![Vec2::new(f64::NAN, f64::NAN); n], 0),
                    }
                }
            };
            rows.push(measure(
                s,
                mixture,
                &truth,
                &xs,
                used,
                reference.as_deref(),
                scale,
            ));
        }
    }
    rows
}

/// The row of one run.
fn measure(
    s: SweepSampler,
    mixture: &GaussianMixture,
    truth: &[Vec2],
    xs: &[Vec2],
    nfe: usize,
    reference: Option<&[Vec2]>,
    scale: f64,
) -> SweepRow {
    let kept: Vec<Vec2> = xs
        .iter()
        .copied()
        .filter(|x| x.x.is_finite() && x.y.is_finite())
        .collect();
    let true_w = metrics::mode_weights(mixture, truth);
    let weight_error = metrics::mode_weights(mixture, &kept)
        .iter()
        .zip(&true_w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let spread_error = metrics::variance_errors_against(mixture, &kept, truth)
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    let ode_error = match (s, reference) {
        (SweepSampler::Few(f), Some(r)) if f.deterministic() => {
            let sq: f64 = xs.iter().zip(r).map(|(a, b)| (a - b).norm_squared()).sum();
            Some((sq / xs.len().max(1) as f64).sqrt() / scale)
        }
        _ => None,
    };
    SweepRow {
        sampler: s.name(),
        nfe,
        weight_error,
        spread_error,
        energy: metrics::energy_distance(&kept, truth),
        nll: metrics::nll(mixture, &kept),
        ode_error,
        diverged: xs.len() - kept.len(),
    }
}

//! How many steps does a sampler need? Runs a set of samplers at a set of score-evaluation
//! budgets (NFE) on one mixture and measures each run against the exact truth: the mode-weight
//! error and the worst component's spread error against true samples, the energy distance to
//! them, the NLL under the true mixture, and — for the few-step ODE samplers, which all start
//! from the same prior points — the median distance to the PF-ODE solution from those points
//! (a Dormand–Prince run at tolerance 1e-9), which falls at the method's order.
//! The CLI's `scorelab sweep` writes the table as CSV.

use super::fewstep::{FewStep, FewStepRun};
use super::{pf_ode_velocity, Rk45, Sampler, SamplerConfig, SamplerKind};
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
    /// Median distance to the PF-ODE solution of the same score from the same start, relative
    /// to the data's spread (the deterministic few-step samplers only).
    pub ode_error: Option<f64>,
    /// Particles that ended not finite.
    pub diverged: usize,
}

/// The CSV header of [`SweepRow`]s.
pub const CSV_HEADER: &str = "sampler,nfe,weight_error,spread_error,energy,nll,ode_error,diverged";

/// The whole table as CSV ([`CSV_HEADER`] and one line per row).
pub fn csv(rows: &[SweepRow]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        out.push_str(&r.csv());
        out.push('\n');
    }
    out
}

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

/// A run in progress.
enum Running {
    Few(Box<FewStepRun>),
    Classic(Box<Sampler>),
}

/// A sweep done a piece at a time ([`Sweep::advance`]): the page spreads it over frames, the
/// CLI runs it to the end ([`sweep`]).
pub struct Sweep {
    sde: Sde,
    mixture: GaussianMixture,
    samplers: Vec<SweepSampler>,
    nfes: Vec<usize>,
    n: usize,
    seed: u32,
    truth: Vec<Vec2>,
    start: Vec<Vec2>,
    t_end: f64,
    /// The PF-ODE reference, filled particle by particle (deterministic few-step samplers).
    reference: Vec<Vec2>,
    want_reference: bool,
    job: usize,
    running: Option<Running>,
    /// The rows so far, in sampler-major order.
    pub rows: Vec<SweepRow>,
}

impl Sweep {
    /// Every sampler at every NFE budget with `n` particles (`seed` draws the start points,
    /// the truth and the samplers' noise).
    pub fn new(
        sde: &Sde,
        mixture: &GaussianMixture,
        samplers: &[SweepSampler],
        nfes: &[usize],
        n: usize,
        seed: u32,
    ) -> Self {
        let rng = CounterRng::new(seed);
        Self {
            sde: *sde,
            mixture: mixture.clone(),
            samplers: samplers.to_vec(),
            nfes: nfes.to_vec(),
            n,
            seed,
            truth: mixture.sample(4 * n, &mut StreamRng::new(seed, 77)),
            start: (0..n as u32)
                .map(|i| sde.prior_sample(rng.normal2(0, i, crate::sim::rng::stream::INIT)))
                .collect(),
            t_end: sde.sampling_t_end(),
            reference: Vec::new(),
            want_reference: samplers
                .iter()
                .any(|s| matches!(s, SweepSampler::Few(f) if f.deterministic())),
            job: 0,
            running: None,
            rows: Vec::new(),
        }
    }

    /// Runs finished and runs in all.
    pub fn progress(&self) -> (usize, usize) {
        (self.rows.len(), self.samplers.len() * self.nfes.len())
    }

    /// Every run finished.
    pub fn done(&self) -> bool {
        self.job >= self.samplers.len() * self.nfes.len()
    }

    /// Work through about `evals` particle-evaluations of the score (the reference first,
    /// then each run's steps); returns whether the sweep is done.
    pub fn advance(&mut self, score: &dyn ScoreModel, evals: usize) -> bool {
        let mut left = evals as i64;
        while left > 0 && !self.done() {
            if self.want_reference && self.reference.len() < self.n {
                // About 300 evaluations a particle at tolerance 1e-9.
                let k = (left as usize / 300).clamp(1, self.n - self.reference.len());
                let from = self.reference.len();
                let pts =
                    pf_ode_reference(score, &self.sde, &self.start[from..from + k], self.t_end);
                self.reference.extend(pts);
                left -= 300 * k as i64;
                continue;
            }
            let s = self.samplers[self.job / self.nfes.len()];
            let nfe = self.nfes[self.job % self.nfes.len()];
            let steps = (nfe / s.evals_per_step()).max(1);
            let run = self.running.get_or_insert_with(|| match s {
                SweepSampler::Few(f) => Running::Few(Box::new(FewStepRun::new(
                    f,
                    &self.sde,
                    &self.start,
                    1.0,
                    self.t_end,
                    steps,
                    self.seed,
                ))),
                SweepSampler::Classic(kind) => {
                    let mut cfg = SamplerConfig::defaults(kind, &self.mixture);
                    cfg.n_steps = steps;
                    cfg.seed = self.seed;
                    Running::Classic(Box::new(
                        Sampler::new(cfg, self.sde, self.n)
                            .unwrap_or_else(|e| unreachable!("a valid sweep configuration: {e}")),
                    ))
                }
            });
            let finished = match run {
                Running::Few(r) => {
                    r.step(score);
                    r.done().then(|| (r.points(), r.nfe()))
                }
                Running::Classic(r) => {
                    r.step(score);
                    r.done().then(|| (r.samples().to_vec(), r.nfe() as usize))
                }
            };
            left -= (self.n * s.evals_per_step()) as i64;
            if let Some((xs, used)) = finished {
                let reference = self.want_reference.then_some(&self.reference[..]);
                let scale = self.mixture.data_std();
                self.rows.push(measure(
                    s,
                    &self.mixture,
                    &self.truth,
                    &xs,
                    used,
                    reference,
                    scale,
                ));
                self.running = None;
                self.job += 1;
            }
        }
        self.done()
    }
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
    let mut s = Sweep::new(sde, mixture, samplers, nfes, n, seed);
    while !s.advance(score, usize::MAX / 2) {}
    s.rows
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
    let (weight_error, spread_error) = metrics::errors_against(mixture, &kept, truth);
    let ode_error = match (s, reference) {
        (SweepSampler::Few(f), Some(r)) if f.deterministic() => {
            // The median, not the RMS: a particle near the ridge between two components that
            // the discretisation sends to the other one is off by the components' distance, and
            // a single one of 2000 held ncsn's DDIM RMS at 0.04 from 256 to 512 evaluations.
            let mut d: Vec<f64> = xs
                .iter()
                .zip(r)
                .map(|(a, b)| (a - b).norm())
                .filter(|v| !v.is_nan())
                .collect();
            d.sort_by(f64::total_cmp);
            d.get(d.len() / 2).map(|m| m / scale)
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

//! Samplers over a [`ScoreModel`], step by step (so the app can animate them), each
//! counting network evaluations (NFE = batched score calls; every particle is evaluated
//! once per call). Single-particle updates are free functions named after their GPU twins
//! (`langevin_step`, `reverse_sde_step`, `ancestral_step`, `pf_ode_step`), and return
//! `(x, x_mean)`; the last step of every sampler outputs the noise-free `x_mean`.
//!
//! - Langevin: x ← x + (α/2) s(x, t_end) + √α z at one small noise level (Song & Ermon 2019, §3).
//! - Annealed Langevin (NCSN Alg. 1): levels t_1 = 1 > … > t_L = t_min, T steps each with
//!   α_i = ε · s(t_i)² / s(t_L)², where t_min is the time whose VE-equivalent noise s/α is the
//!   SDE's σ_min ([`Sde::t_of_sigma_min`]): the smallest level is a real noise scale relative
//!   to the data on every SDE (sub-VP's s(t) is ≈ 1e-4 d at t = 1e-3, so a t_min of 1e-3 made
//!   the first levels' steps 10⁸ ε and every particle diverged).
//! - Reverse SDE, Euler–Maruyama (score_sde Eq. 6): x ← x + [f − g² s] Δt + g √|Δt| z, Δt < 0.
//! - Ancestral / reverse diffusion (score_sde App. E/F): VE: x + (σ_i² − σ_{i+1}²) s + √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²) z;
//!   VP (in the SDE's frame, `sim::sde`): m + ((x − m) + β_i d² s)/√(1 − β_i) + d √β_i z with
//!   β_i = 1 − (α_i/α_{i+1})²; sub-VP: x − f Δt + g² |Δt| s + g √|Δt| z.
//! - Predictor–corrector (score_sde Alg. 2–4): Langevin corrector with step 2 a (snr ‖z‖/‖s‖)²,
//!   then the ancestral predictor.
//! - Probability-flow ODE (score_sde Eq. 13): dx/dt = f − ½ g² s; Euler, Heun, RK4, adaptive RK45.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::sim::mala::{mala_step, MalaState};
use crate::sim::mixture::GaussianMixture;
use crate::sim::rng::{stream, CounterRng};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

mod rk45;
mod steps;

pub use rk45::{OdeRhs, Rk45};
pub use steps::{
    ancestral_step, corrector_step_size, finite_mean_norm, langevin_step, pf_ode_step,
    pf_ode_velocity, reverse_sde_step,
};

/// Which sampler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// Plain Langevin at a single small noise level (the failure case).
    Langevin,
    /// Annealed Langevin dynamics (NCSN Alg. 1).
    #[default]
    AnnealedLangevin,
    /// Reverse-time SDE, Euler–Maruyama.
    ReverseSde,
    /// Ancestral sampling / reverse diffusion.
    Ancestral,
    /// Predictor–corrector (ancestral predictor + Langevin corrector).
    Pc,
    /// Probability-flow ODE, Euler.
    OdeEuler,
    /// Probability-flow ODE, Heun.
    OdeHeun,
    /// Probability-flow ODE, RK4.
    OdeRk4,
    /// Probability-flow ODE, adaptive Dormand–Prince RK45.
    OdeRk45,
}

impl SamplerKind {
    /// Every sampler.
    pub const ALL: [SamplerKind; 9] = [
        Self::Langevin,
        Self::AnnealedLangevin,
        Self::ReverseSde,
        Self::Ancestral,
        Self::Pc,
        Self::OdeEuler,
        Self::OdeHeun,
        Self::OdeRk4,
        Self::OdeRk45,
    ];

    /// CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Langevin => "langevin",
            Self::AnnealedLangevin => "annealed-langevin",
            Self::ReverseSde => "reverse-sde",
            Self::Ancestral => "ancestral",
            Self::Pc => "pc",
            Self::OdeEuler => "ode-euler",
            Self::OdeHeun => "ode-heun",
            Self::OdeRk4 => "ode-rk4",
            Self::OdeRk45 => "ode-rk45",
        }
    }

    /// Parse a CLI name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Deterministic (probability-flow ODE) samplers.
    pub fn is_ode(self) -> bool {
        matches!(
            self,
            Self::OdeEuler | Self::OdeHeun | Self::OdeRk4 | Self::OdeRk45
        )
    }
}

/// Where particles start.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Init {
    /// The SDE prior N(0, prior_std² I).
    Prior,
    /// Uniform over a box (NCSN Fig. 3 starts Langevin from uniform noise).
    Uniform {
        /// Lower corner.
        lo: [f64; 2],
        /// Upper corner.
        hi: [f64; 2],
    },
}

/// Sampler settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// Which sampler.
    pub kind: SamplerKind,
    /// Langevin: total steps; annealed: steps per level T; SDE/ODE: time steps N.
    pub n_steps: usize,
    /// Annealed Langevin: number of noise levels L.
    pub n_levels: usize,
    /// Langevin: step α; annealed: ε in α_i = ε s_i²/s_L².
    pub step_size: f64,
    /// Predictor–corrector signal-to-noise ratio.
    pub snr: f64,
    /// Final time of SDE/ODE samplers and the noise level of plain Langevin; 0 (the default)
    /// is the SDE's own [`Sde::sampling_t_end`] (leftover noise 1% of the narrowest
    /// component's std, never below the training floor), resolved by [`Sampler::new`].
    pub t_end: f64,
    /// RK45 relative tolerance.
    pub rtol: f64,
    /// RK45 absolute tolerance.
    pub atol: f64,
    /// Seed.
    pub seed: u32,
    /// Starting distribution.
    pub init: Init,
    /// Start time of the run: 1 (the default) starts at the SDE's prior; a smaller t starts
    /// the annealing (its largest noise level) or the reverse process there, with the prior
    /// N(m, s(t_start)² I). Too small is the "σ_max too small" failure: the modes never
    /// connect.
    #[serde(default = "one")]
    pub t_start: f64,
    /// The prior's std relative to the right one (`Init::Prior` only): 1 (the default) is
    /// right; anything else is the "wrong prior" failure.
    #[serde(default = "one")]
    pub prior_scale: f64,
}

fn one() -> f64 {
    1.0
}

/// Why a sampler configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    /// Out-of-range setting.
    #[error("invalid sampler setting: {0}")]
    Bad(String),
}

/// `SamplerConfig::t_end` of "the SDE's own end" ([`Sde::sampling_t_end`]).
pub const AUTO_T_END: f64 = 0.0;

/// Most steps any sampler may be asked for (keeps a typo from running for hours).
pub const MAX_STEPS: usize = 1_000_000;

impl SamplerConfig {
    /// Good defaults for `kind` on `mixture` (uniform start over the data box for the
    /// Langevin family, as in NCSN Fig. 3; the prior otherwise).
    pub fn defaults(kind: SamplerKind, mixture: &GaussianMixture) -> Self {
        let (lo, hi) = mixture.bounding_box();
        let init = match kind {
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin => Init::Uniform {
                lo: [lo.x, lo.y],
                hi: [hi.x, hi.y],
            },
            _ => Init::Prior,
        };
        let (n_steps, step_size) = match kind {
            SamplerKind::Langevin => (1000, langevin_step_size(mixture)),
            SamplerKind::AnnealedLangevin => (100, annealed_step_size(mixture)),
            SamplerKind::Pc => (500, 0.0),
            SamplerKind::OdeRk45 => (0, 0.0),
            SamplerKind::OdeEuler => (1000, 0.0),
            SamplerKind::OdeHeun | SamplerKind::OdeRk4 => (200, 0.0),
            SamplerKind::ReverseSde | SamplerKind::Ancestral => (1000, 0.0),
        };
        Self {
            kind,
            n_steps,
            n_levels: 50,
            step_size,
            snr: 0.16,
            t_end: AUTO_T_END,
            rtol: 1e-5,
            atol: 1e-5,
            seed: 0,
            init,
            t_start: 1.0,
            prior_scale: 1.0,
        }
    }

    /// Check ranges.
    pub fn validate(&self) -> Result<(), SamplerError> {
        let bad = |m: &str| Err(SamplerError::Bad(m.to_string()));
        if self.kind != SamplerKind::OdeRk45 && (self.n_steps == 0 || self.n_steps > MAX_STEPS) {
            return bad(&format!("steps must be in 1..={MAX_STEPS}"));
        }
        if self.kind == SamplerKind::AnnealedLangevin
            && (self.n_levels < 2
                || self.n_levels > 10_000
                || self.n_steps.saturating_mul(self.n_levels) > MAX_STEPS)
        {
            return bad("annealed Langevin needs 2..=10000 levels and levels × steps <= 1e6");
        }
        if matches!(
            self.kind,
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin
        ) && !(self.step_size.is_finite() && self.step_size > 0.0 && self.step_size < 1e3)
        {
            return bad("step size must be a finite number in (0, 1000)");
        }
        if !(self.snr.is_finite() && (0.0..=10.0).contains(&self.snr)) {
            return bad("snr must be in [0, 10]");
        }
        if !(self.t_end.is_finite() && self.t_end >= 0.0 && self.t_end < 1.0) {
            return bad("t_end must be in [0, 1) (0: the SDE's own end)");
        }
        if !(self.t_start.is_finite() && self.t_start > self.t_end && self.t_start <= 1.0) {
            return bad("the start time must be in (t_end, 1]");
        }
        if !(self.prior_scale.is_finite() && self.prior_scale > 0.0 && self.prior_scale <= 100.0) {
            return bad("the prior scale must be in (0, 100]");
        }
        if !(self.rtol > 0.0 && self.atol > 0.0 && self.rtol.is_finite() && self.atol.is_finite()) {
            return bad("rtol and atol must be positive");
        }
        if let Init::Uniform { lo, hi } = self.init {
            if !(lo.iter().chain(&hi).all(|v| v.is_finite()) && lo[0] < hi[0] && lo[1] < hi[1]) {
                return bad("the uniform start box must have finite corners with lo < hi");
            }
        }
        Ok(())
    }
}

/// The smallest variance along any axis of any component (the scale a Langevin step must
/// resolve).
pub fn narrowest_variance(mixture: &GaussianMixture) -> f64 {
    mixture
        .components()
        .iter()
        .map(|g| crate::sim::mixture::sym_eigenvalues(&g.cov).0)
        .fold(f64::INFINITY, f64::min)
        .max(1e-12)
}

/// Plain Langevin's default step: 0.05 × the narrowest component variance (0.05 on unit
/// components, the value NCSN-style demos use). The unadjusted Langevin chain's stationary
/// variance on N(0, v) with step h is v/(1 − h/4v), so this keeps the spread within 1.3% at
/// any data scale (a fixed 0.05 gave +45% on grid25 and diverged for variances below
/// 0.0125), and a particle relaxes in ≈ 2v/h = 40 of the 1000 default steps.
pub fn langevin_step_size(mixture: &GaussianMixture) -> f64 {
    0.05 * narrowest_variance(mixture)
}

/// Annealed Langevin's default ε: NCSN's ε = 2e-5 at σ_L = 0.01 is α_L = 0.2 σ_L², kept
/// relative to the σ_min that [`Sde::for_mixture`] gives this mixture.
pub fn annealed_step_size(mixture: &GaussianMixture) -> f64 {
    let sigma_min = crate::sim::sde::sigma_min_for(mixture);
    0.2 * sigma_min * sigma_min
}

// ---------------------------------------------------------------- the sampler

/// A running sampler: particles plus the schedule position.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// Settings.
    pub config: SamplerConfig,
    /// The SDE whose time axis the schedule uses.
    pub sde: Sde,
    /// Current (noisy) particles.
    pub x: Vec<Vec2>,
    /// Noise-free means from the last step.
    pub x_mean: Vec<Vec2>,
    step: usize,
    nfe: u64,
    rng: CounterRng,
    scores: Vec<Vec2>,
    tmp: Vec<Vec2>,
    k_acc: Vec<Vec2>,
    rk45: Option<Rk45>,
    cursor: Cursor,
    mala: Option<ExactScore>,
    accepted: u64,
    proposed: u64,
    /// SDE / ODE samplers: the N + 1 grid times ([`Sde::sampling_time_grid`]).
    times: Vec<f64>,
    /// Annealed Langevin: the L level times ([`Sde::annealing_levels`]).
    levels: Vec<f64>,
}

/// Where a step split over several calls ([`Sampler::advance`]) stands: the particles
/// `0..next` of the current pass are done; predictor–corrector first evaluates every
/// particle's corrector score (its step size needs the mean score norm), then corrects them
/// all and runs the predictor pass.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    corrected: bool,
    next: usize,
}

impl Sampler {
    /// Particles drawn from the configured start, ready to step.
    pub fn new(
        mut config: SamplerConfig,
        sde: Sde,
        n_particles: usize,
    ) -> Result<Self, SamplerError> {
        config.validate()?;
        if config.t_end == AUTO_T_END {
            config.t_end = sde.sampling_t_end();
            if config.t_end >= config.t_start {
                return Err(SamplerError::Bad(format!(
                    "the start time must be above the SDE's end t = {:.2e}",
                    config.t_end
                )));
            }
        }
        let times = match config.kind {
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin | SamplerKind::OdeRk45 => {
                Vec::new()
            }
            _ => sde.sampling_time_grid(config.t_start, config.t_end, config.n_steps),
        };
        let levels = if config.kind == SamplerKind::AnnealedLangevin {
            sde.annealing_levels(config.t_start, config.n_levels)
        } else {
            Vec::new()
        };
        if n_particles == 0 || n_particles > 10_000_000 {
            return Err(SamplerError::Bad(
                "particle count must be in 1..=10^7".into(),
            ));
        }
        let rng = CounterRng::new(config.seed);
        // The prior at the start time (the SDE's own prior at t = 1), times the prior scale.
        let prior_std = config.prior_scale
            * if config.t_start == 1.0 {
                sde.prior_std()
            } else {
                sde.marginal(config.t_start).1
            };
        let x: Vec<Vec2> = (0..n_particles as u32)
            .map(|i| match config.init {
                Init::Prior => sde.center() + prior_std * rng.normal2(0, i, stream::INIT),
                Init::Uniform { lo, hi } => {
                    let u = rng.uniform4(0, i, stream::INIT);
                    Vec2::new(
                        lo[0] + (hi[0] - lo[0]) * u[0],
                        lo[1] + (hi[1] - lo[1]) * u[1],
                    )
                }
            })
            .collect();
        let rk45 = (config.kind == SamplerKind::OdeRk45).then(|| {
            Rk45::new(
                config.t_start,
                x.iter().flat_map(|p| [p.x, p.y]).collect(),
                config.t_end,
                config.rtol,
                config.atol,
            )
        });
        Ok(Self {
            sde,
            x_mean: x.clone(),
            x,
            step: 0,
            nfe: 0,
            rng,
            scores: vec![Vec2::zeros(); n_particles],
            tmp: vec![Vec2::zeros(); n_particles],
            k_acc: vec![Vec2::zeros(); n_particles],
            rk45,
            cursor: Cursor::default(),
            config,
            mala: None,
            accepted: 0,
            proposed: 0,
            times,
            levels,
        })
    }

    /// Metropolis-adjust the Langevin family (MALA, `sim::mala`) against the exact p_t of
    /// `exact` at each step's noise level: the proposal is the Langevin step with the exact
    /// score (MALA needs the log-density, which the network does not give), accepted with
    /// the Metropolis–Hastings probability; the accept draw is word 2 of the step's noise
    /// hash. Other samplers ignore it.
    pub fn with_mala(mut self, exact: ExactScore) -> Self {
        if matches!(
            self.config.kind,
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin
        ) {
            self.mala = Some(exact);
        }
        self
    }

    /// Move a running sampler to `sde` (the mixture was dragged: a new frame and σ_min): its
    /// remaining grid and levels follow the new SDE, as [`Sampler::new`] would build them.
    pub fn set_sde(&mut self, sde: Sde) {
        self.sde = sde;
        if !self.times.is_empty() {
            self.times =
                sde.sampling_time_grid(self.config.t_start, self.config.t_end, self.config.n_steps);
        }
        if !self.levels.is_empty() {
            self.levels = sde.annealing_levels(self.config.t_start, self.config.n_levels);
        }
    }

    /// Whether the steps are Metropolis-adjusted.
    pub fn is_mala(&self) -> bool {
        self.mala.is_some()
    }

    /// (accepted, proposed) Metropolis moves so far (0, 0 without MALA).
    pub fn acceptance(&self) -> (u64, u64) {
        (self.accepted, self.proposed)
    }

    /// Network evaluations so far (batched calls over all particles).
    pub fn nfe(&self) -> u64 {
        self.nfe
    }

    /// Total number of steps (RK45: unknown in advance, reported as 0).
    pub fn total_steps(&self) -> usize {
        match self.config.kind {
            SamplerKind::AnnealedLangevin => self.config.n_steps * self.config.n_levels,
            SamplerKind::OdeRk45 => 0,
            _ => self.config.n_steps,
        }
    }

    /// Steps taken.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether the schedule is complete.
    pub fn done(&self) -> bool {
        match &self.rk45 {
            Some(r) => r.done(),
            None => self.step >= self.total_steps(),
        }
    }

    /// The time grid point i of the N-step SDE/ODE schedule ([`Sde::sampling_time_grid`]:
    /// from t_start to t_end, geometric in the noise level down to the narrowest
    /// component's scale).
    fn grid(&self, i: usize) -> f64 {
        self.times
            .get(i.min(self.times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(self.config.t_end)
    }

    /// Annealed-Langevin level times ([`Sde::annealing_levels`]): geometric in the
    /// VE-equivalent noise σ_e from s(t_start) down to σ_min on every SDE.
    pub fn level_time(&self, level: usize) -> f64 {
        self.levels
            .get(level.min(self.levels.len().saturating_sub(1)))
            .copied()
            .unwrap_or(self.config.t_end)
    }

    /// The current time (or noise level) of the schedule, for display.
    pub fn current_t(&self) -> f64 {
        match self.config.kind {
            SamplerKind::Langevin => self.config.t_end,
            SamplerKind::AnnealedLangevin => {
                self.level_time((self.step / self.config.n_steps).min(self.config.n_levels - 1))
            }
            SamplerKind::OdeRk45 => self.rk45.as_ref().map_or(self.config.t_start, |r| r.t),
            _ => self.grid(self.step.min(self.config.n_steps)),
        }
    }

    /// The samples: the noise-free means once done (the current particles before that).
    pub fn samples(&self) -> &[Vec2] {
        if self.done() {
            &self.x_mean
        } else {
            &self.x
        }
    }

    /// The score at particles `r` into `scores[r]`.
    fn eval_range(&mut self, score: &dyn ScoreModel, t: f64, r: Range<usize>) {
        score.score_batch(&self.x[r.clone()], t, &mut self.scores[r]);
    }

    /// Apply a stochastic single-particle step `(x, score, z) -> (x, x_mean)` to particles
    /// `r`, with z drawn from the counter RNG at (step, particle, STEP).
    fn update_range(
        &mut self,
        r: Range<usize>,
        step_fn: impl Fn(Vec2, Vec2, Vec2) -> (Vec2, Vec2),
    ) {
        let (rng, i) = (self.rng, self.step as u32);
        let xs = self.x[r.clone()]
            .iter_mut()
            .zip(&mut self.x_mean[r.clone()]);
        let scores = &self.scores[r.clone()];
        for (p, ((x, m), s)) in r.zip(xs.zip(scores)) {
            let (nx, nm) = step_fn(*x, *s, rng.normal2(i, p as u32, stream::STEP));
            *x = nx;
            *m = nm;
        }
    }

    /// The schedule of step `i`: (t, t_next, α). Langevin family: t is the noise level and α the
    /// step size; SDE/ODE samplers: the step goes from t to t_next; for predictor–corrector α
    /// is the corrector's coefficient a (1 for VE, (α(t)/α(t_next))² otherwise). The GPU
    /// sampler uploads exactly these values, so both engines share one schedule.
    pub fn schedule_at(&self, i: usize) -> (f64, f64, f64) {
        let sde = &self.sde;
        match self.config.kind {
            SamplerKind::Langevin => (self.config.t_end, self.config.t_end, self.config.step_size),
            SamplerKind::AnnealedLangevin => {
                let t = self.level_time(i / self.config.n_steps);
                let s_l = sde.marginal(self.level_time(self.config.n_levels - 1)).1;
                let s_i = sde.marginal(t).1;
                (t, t, self.config.step_size * (s_i / s_l).powi(2))
            }
            _ => {
                let (t, tn) = (self.grid(i), self.grid(i + 1));
                let a = match sde.kind {
                    SdeKind::Ve => 1.0,
                    _ => (sde.marginal(t).0 / sde.marginal(tn).0).powi(2),
                };
                (t, tn, a)
            }
        }
    }

    /// Advance one step (RK45: one accepted adaptive step). No-op when done.
    pub fn step(&mut self, score: &dyn ScoreModel) {
        while !self.advance(score, usize::MAX) {}
    }

    /// Advance the current step over at most `max` more particles; true when the step is
    /// complete (or the schedule done). Every particle still takes every step with the same
    /// noise, so a step split into slices gives the same particles as [`Self::step`] (tested);
    /// the app slices big steps over frames so that no frame waits for a whole step. RK45's
    /// adaptive step is shared by all particles and runs whole.
    pub fn advance(&mut self, score: &dyn ScoreModel, max: usize) -> bool {
        if self.done() {
            return true;
        }
        let sde = self.sde;
        let n = self.x.len();
        let kind = self.config.kind;
        let r = self.cursor.next..self.cursor.next.saturating_add(max.max(1)).min(n);
        let (t, tn, a) = self.schedule_at(self.step);
        if kind == SamplerKind::Pc && !self.cursor.corrected {
            self.eval_range(score, t, r.clone());
            self.cursor.next = r.end;
            if r.end == n {
                self.nfe += 1;
                self.correct(a);
                self.cursor = Cursor {
                    corrected: true,
                    next: 0,
                };
            }
            return false;
        }
        let evals = match kind {
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin if self.mala.is_some() => {
                self.mala_range(t, a, r.clone());
                1
            }
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin => {
                self.eval_range(score, t, r.clone());
                self.update_range(r.clone(), |x, s, z| langevin_step(x, s, a, z));
                1
            }
            SamplerKind::ReverseSde => {
                self.eval_range(score, t, r.clone());
                self.update_range(r.clone(), |x, s, z| {
                    reverse_sde_step(&sde, x, s, t, tn - t, z)
                });
                1
            }
            SamplerKind::Ancestral | SamplerKind::Pc => {
                self.eval_range(score, t, r.clone());
                self.update_range(r.clone(), |x, s, z| ancestral_step(&sde, x, s, t, tn, z));
                1
            }
            SamplerKind::OdeEuler | SamplerKind::OdeHeun | SamplerKind::OdeRk4 => {
                self.ode_fixed_range(score, t, tn, r.clone())
            }
            SamplerKind::OdeRk45 => {
                self.rk45_step(score);
                self.step += 1;
                return true;
            }
        };
        self.cursor.next = r.end;
        if r.end < n {
            return false;
        }
        self.nfe += evals;
        self.cursor = Cursor::default();
        self.step += 1;
        true
    }

    /// One MALA step of particles `r` at noise level t with step `h` (x_mean = x: a
    /// Metropolis chain has no noise-free mean).
    fn mala_range(&mut self, t: f64, h: f64, r: Range<usize>) {
        let Some(exact) = &self.mala else {
            return;
        };
        let target = exact.at(t);
        let (rng, i) = (self.rng, self.step as u32);
        for p in r {
            let (z, u) = rng.normal2_uniform(i, p as u32, stream::STEP);
            let cur = MalaState::at(&target, self.x[p]);
            let (next, ok) = mala_step(&target, &cur, h, z, u);
            self.x[p] = next.x;
            self.x_mean[p] = next.x;
            self.proposed += 1;
            self.accepted += u64::from(ok);
        }
    }

    /// Whether a step has been started by [`Self::advance`] and not finished.
    pub fn mid_step(&self) -> bool {
        self.cursor.next > 0 || self.cursor.corrected
    }

    /// One accepted adaptive RK45 step over all particles.
    fn rk45_step(&mut self, score: &dyn ScoreModel) {
        let Some(mut rk) = self.rk45.take() else {
            // Only reachable if a config were changed to RK45 after construction.
            return;
        };
        let sde = self.sde;
        let n = self.x.len();
        let mut xs = vec![Vec2::zeros(); n];
        let mut ss = vec![Vec2::zeros(); n];
        let before = rk.nfev;
        rk.step(&mut |t, y, dy| {
            for (p, v) in xs.iter_mut().enumerate() {
                *v = Vec2::new(y[2 * p], y[2 * p + 1]);
            }
            score.score_batch(&xs, t, &mut ss);
            for p in 0..n {
                let v = pf_ode_velocity(&sde, xs[p], ss[p], t);
                dy[2 * p] = v.x;
                dy[2 * p + 1] = v.y;
            }
        });
        self.nfe += rk.nfev - before;
        for (p, x) in self.x.iter_mut().enumerate() {
            *x = Vec2::new(rk.y[2 * p], rk.y[2 * p + 1]);
        }
        self.x_mean.clone_from(&self.x);
        self.rk45 = Some(rk);
    }

    /// Langevin corrector (score_sde `LangevinCorrector`, one step) over every particle, with
    /// the corrector scores already in `scores`.
    fn correct(&mut self, a: f64) {
        let i = self.step as u32;
        for (p, z) in self.tmp.iter_mut().enumerate() {
            *z = self.rng.normal2(i, p as u32, stream::CORRECTOR);
        }
        let noise_norm = finite_mean_norm(&self.tmp);
        let score_norm = finite_mean_norm(&self.scores);
        let eps = corrector_step_size(self.config.snr, a, noise_norm, score_norm);
        for ((x, s), z) in self.x.iter_mut().zip(&self.scores).zip(&self.tmp) {
            // x + ε s + √(2ε) z is langevin_step with α = 2ε.
            *x = langevin_step(*x, *s, 2.0 * eps, *z).0;
        }
    }

    /// A fixed PF-ODE step (Euler, Heun or RK4) of particles `r`; returns the network
    /// evaluations per particle.
    fn ode_fixed_range(&mut self, score: &dyn ScoreModel, t: f64, tn: f64, r: Range<usize>) -> u64 {
        let sde = self.sde;
        let dt = tn - t;
        let kind = self.config.kind;
        self.eval_range(score, t, r.clone());
        if kind == SamplerKind::OdeEuler {
            for (x, s) in self.x[r.clone()].iter_mut().zip(&self.scores[r.clone()]) {
                *x = pf_ode_step(&sde, *x, *s, t, dt);
            }
            self.x_mean[r.clone()].clone_from_slice(&self.x[r]);
            return 1;
        }
        // k1 into k_acc (weighted sum), stage points into tmp.
        let (stages, weights): (&[(f64, f64)], &[f64]) = if kind == SamplerKind::OdeHeun {
            (&[(1.0, 1.0)], &[0.5, 0.5])
        } else {
            (
                &[(0.5, 0.5), (0.5, 0.5), (1.0, 1.0)],
                &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
            )
        };
        let x0 = self.x[r.clone()].to_vec();
        let mut k_prev: Vec<Vec2> = x0
            .iter()
            .zip(&self.scores[r.clone()])
            .map(|(x, s)| pf_ode_velocity(&sde, *x, *s, t))
            .collect();
        for (acc, k) in self.k_acc[r.clone()].iter_mut().zip(&k_prev) {
            *acc = weights[0] * k;
        }
        for (si, &(c_t, a)) in stages.iter().enumerate() {
            let ts = t + c_t * dt;
            for ((tmp, x), k) in self.tmp[r.clone()].iter_mut().zip(&x0).zip(&k_prev) {
                *tmp = x + a * dt * k;
            }
            score.score_batch(&self.tmp[r.clone()], ts, &mut self.scores[r.clone()]);
            for (j, k) in k_prev.iter_mut().enumerate() {
                let p = r.start + j;
                *k = pf_ode_velocity(&sde, self.tmp[p], self.scores[p], ts);
                self.k_acc[p] += weights[si + 1] * *k;
            }
        }
        for ((x, x0), k) in self.x[r.clone()]
            .iter_mut()
            .zip(&x0)
            .zip(&self.k_acc[r.clone()])
        {
            *x = x0 + dt * k;
        }
        self.x_mean[r.clone()].clone_from_slice(&self.x[r]);
        1 + stages.len() as u64
    }

    /// Run to the end.
    pub fn run(&mut self, score: &dyn ScoreModel) {
        while !self.done() {
            self.step(score);
        }
    }
}

/// An `n × n` grid of start points over ±2 prior standard deviations around the SDE's
/// centre (the PF-ODE paths drawn from noise to data), row-major from the lower left.
pub fn prior_grid(sde: &Sde, n: usize) -> Vec<Vec2> {
    let sd = sde.prior_std();
    let n = n.max(2);
    let f = |j: usize| (j as f64 / (n - 1) as f64 - 0.5) * 4.0 * sd;
    (0..n * n)
        .map(|i| sde.center() + Vec2::new(f(i % n), f(i / n)))
        .collect()
}

/// Probability-flow ODE paths (score_sde Eq. 13) of every start point from time `t0` to `t1`
/// (either direction: t1 > t0 is data → noise, t1 < t0 noise → data), classic RK4 with
/// `n_steps` steps; each path has `n_steps + 1` points. Deterministic: the same start gives
/// the same curve, and integrating back from the end returns (up to the RK4 error) to the start.
pub fn pf_ode_paths(
    score: &dyn ScoreModel,
    sde: &Sde,
    starts: &[Vec2],
    t0: f64,
    t1: f64,
    n_steps: usize,
) -> Vec<Vec<Vec2>> {
    let n = starts.len();
    let n_steps = n_steps.max(1);
    let h = (t1 - t0) / n_steps as f64;
    let mut paths: Vec<Vec<Vec2>> = starts.iter().map(|x| vec![*x]).collect();
    let mut x = starts.to_vec();
    let (mut tmp, mut s) = (vec![Vec2::zeros(); n], vec![Vec2::zeros(); n]);
    let mut acc = vec![Vec2::zeros(); n];
    let mut k = vec![Vec2::zeros(); n];
    for i in 0..n_steps {
        let t = t0 + h * i as f64;
        for (stage, (c, w)) in [
            (0.0, 1.0 / 6.0),
            (0.5, 1.0 / 3.0),
            (0.5, 1.0 / 3.0),
            (1.0, 1.0 / 6.0),
        ]
        .into_iter()
        .enumerate()
        {
            for p in 0..n {
                tmp[p] = if stage == 0 {
                    x[p]
                } else {
                    x[p] + c * h * k[p]
                };
            }
            let ts = t + c * h;
            score.score_batch(&tmp, ts, &mut s);
            for p in 0..n {
                k[p] = pf_ode_velocity(sde, tmp[p], s[p], ts);
                acc[p] = if stage == 0 {
                    w * k[p]
                } else {
                    acc[p] + w * k[p]
                };
            }
        }
        for p in 0..n {
            x[p] += h * acc[p];
            paths[p].push(x[p]);
        }
    }
    paths
}

/// Run a sampler from scratch and return (samples, NFE).
pub fn sample(
    config: SamplerConfig,
    sde: Sde,
    n_particles: usize,
    score: &dyn ScoreModel,
) -> Result<(Vec<Vec2>, u64), SamplerError> {
    let mut s = Sampler::new(config, sde, n_particles)?;
    s.run(score);
    Ok((s.samples().to_vec(), s.nfe()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::mixture::presets;
    use crate::sim::model::{NetConfig, ScoreNet};
    use crate::sim::score::ExactScore;

    /// Runs `steps` steps of every sampler whole and in slices of `slice` particles; the
    /// particles and NFE must be identical (same noise, same per-particle arithmetic).
    fn sliced_equals_whole(score: &dyn ScoreModel, m: &GaussianMixture, sde: Sde, slice: usize) {
        for kind in SamplerKind::ALL {
            let cfg = SamplerConfig {
                n_steps: 6,
                n_levels: 3,
                ..SamplerConfig::defaults(kind, m)
            };
            let n = 1100;
            let mut whole = Sampler::new(cfg.clone(), sde, n).expect("valid sampler");
            let mut sliced = whole.clone();
            for _ in 0..4 {
                whole.step(score);
                let mut calls = 1;
                while !sliced.advance(score, slice) {
                    calls += 1;
                }
                if kind != SamplerKind::OdeRk45 {
                    assert!(calls > 1, "{kind:?}: a step of {n} in slices of {slice}");
                }
                assert_eq!(whole.steps_done(), sliced.steps_done(), "{kind:?}");
            }
            assert_eq!(whole.x, sliced.x, "{kind:?} particles");
            assert_eq!(whole.x_mean, sliced.x_mean, "{kind:?} means");
            assert_eq!(whole.nfe(), sliced.nfe(), "{kind:?} NFE");
            assert!(whole.x.iter().all(|x| x.x.is_finite() && x.y.is_finite()));
        }
    }

    #[test]
    fn a_step_in_slices_equals_the_whole_step() {
        let spec = presets::by_name("ring8").expect("ring8 is a preset");
        let m = GaussianMixture::from_spec(&spec).expect("valid");
        for kind in [SdeKind::Ve, SdeKind::Vp] {
            let sde = Sde::for_mixture(kind, &m);
            let exact = ExactScore::new(m.clone(), sde);
            sliced_equals_whole(&exact, &m, sde, 300);
            // Metropolis-adjusted: the same particles and acceptance in slices.
            for kind in [SamplerKind::Langevin, SamplerKind::AnnealedLangevin] {
                let cfg = SamplerConfig {
                    n_steps: 5,
                    n_levels: 3,
                    ..SamplerConfig::defaults(kind, &m)
                };
                let mut whole = Sampler::new(cfg, sde, 700)
                    .expect("valid sampler")
                    .with_mala(exact.clone());
                let mut sliced = whole.clone();
                assert!(whole.is_mala());
                while !whole.done() {
                    whole.step(&exact);
                    while !sliced.advance(&exact, 256) {}
                }
                assert_eq!(whole.x, sliced.x, "{kind:?} MALA particles");
                assert_eq!(whole.acceptance(), sliced.acceptance());
                let (acc, prop) = whole.acceptance();
                assert_eq!(prop, 700 * whole.total_steps() as u64);
                assert!(acc > 0 && acc < prop, "{kind:?}: accepted {acc} of {prop}");
            }
            let cfg = NetConfig {
                width: 16,
                depth: 2,
                data_std: m.data_std(),
                ..NetConfig::default()
            };
            let net = ScoreNet::new(cfg, sde).expect("valid net");
            // Slices on the network's chunk boundaries (512 points) and off them.
            sliced_equals_whole(&net, &m, sde, 512);
            sliced_equals_whole(&net, &m, sde, 333);
        }
    }

    /// Plain Langevin at a large step (h = the narrowest component variance) on an
    /// off-centre anisotropic mixture, with and without the Metropolis adjustment: per
    /// component, MALA keeps the covariance's eigenvalues, unadjusted Langevin widens them.
    #[test]
    fn mala_in_the_sampler_removes_langevin_step_bias() {
        let m = crate::sim::test_mixtures::off_centre_anisotropic();
        let sde = Sde::for_mixture(SdeKind::Ve, &m);
        let exact = ExactScore::new(m.clone(), sde);
        let cfg = SamplerConfig {
            n_steps: 600,
            step_size: narrowest_variance(&m),
            seed: 3,
            ..SamplerConfig::defaults(SamplerKind::Langevin, &m)
        };
        let n = 6000;
        let mut plain = Sampler::new(cfg.clone(), sde, n).expect("valid");
        let mut mala = Sampler::new(cfg, sde, n)
            .expect("valid")
            .with_mala(exact.clone());
        plain.run(&exact);
        mala.run(&exact);
        let worst = |xs: &[Vec2]| crate::sim::metrics::variance_error(&m, xs);
        let (acc, prop) = mala.acceptance();
        let (e_mala, e_plain) = (worst(mala.samples()), worst(plain.samples()));
        assert!(e_mala < 0.08, "MALA eigenvalue error {e_mala}");
        assert!(
            e_plain > 0.2,
            "unadjusted Langevin eigenvalue error {e_plain}"
        );
        let rate = acc as f64 / prop as f64;
        eprintln!("worst eigenvalue error: MALA {e_mala:.3} (acceptance {rate:.3}), unadjusted {e_plain:.3}");
        assert!((0.5..0.99).contains(&rate), "acceptance {rate}");
    }
}

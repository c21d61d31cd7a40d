//! What a sampler run is asked for: the sampler kind, its schedule and step sizes, where
//! particles start, the range checks, and each sampler's recommended settings for a mixture.

use serde::{Deserialize, Serialize};

use crate::sim::mixture::GaussianMixture;

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
    /// DDIM (η from [`SamplerConfig::eta`]; 0 is deterministic), `fewstep`.
    Ddim,
    /// Heun on the EDM σ schedule (churn from [`SamplerConfig::churn`]), `fewstep`.
    EdmHeun,
    /// DPM-Solver++(2M), `fewstep`.
    #[serde(rename = "dpm-solver++2m")]
    DpmSolver,
}

impl SamplerKind {
    /// Every sampler.
    pub const ALL: [SamplerKind; 12] = [
        Self::Langevin,
        Self::AnnealedLangevin,
        Self::ReverseSde,
        Self::Ancestral,
        Self::Pc,
        Self::OdeEuler,
        Self::OdeHeun,
        Self::OdeRk4,
        Self::OdeRk45,
        Self::Ddim,
        Self::EdmHeun,
        Self::DpmSolver,
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
            Self::Ddim => "ddim",
            Self::EdmHeun => "edm-heun",
            Self::DpmSolver => "dpm-solver++2m",
        }
    }

    /// Parse a CLI name (also the name in links, scene files and `state()`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The few-step samplers on the EDM σ schedule (`fewstep`).
    pub fn is_few_step(self) -> bool {
        matches!(self, Self::Ddim | Self::EdmHeun | Self::DpmSolver)
    }

    /// Whether a step of one particle depends on the others: predictor–corrector's
    /// corrector step size takes the mean score norm over all particles, and RK45's adaptive
    /// step size is shared. These run whole; every other sampler splits into shards
    /// ([`super::Sampler::new_shard`]).
    pub fn couples_particles(self) -> bool {
        matches!(self, Self::Pc | Self::OdeRk45)
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
    /// The Langevin family's step at the last (smallest) noise level, α_L, in data units:
    /// plain Langevin's α (its one level), annealed Langevin's ε (NCSN's name), with
    /// α_i = α_L s_i²/s_L² at level i. One quantity from the panel (`LiveSampling::step`, α_L
    /// relative to the mixture) to the shader (each step's α_i, `schedule_at`).
    pub alpha_last: f64,
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
    /// DDIM's η ∈ [0, 1]: 0 is deterministic (the PF-ODE's Euler step in σ), 1 is ancestral.
    #[serde(default)]
    pub eta: f64,
    /// Heun-EDM's S_churn ≥ 0: each step first raises σ by γ = min(S_churn/N, √2 − 1).
    #[serde(default)]
    pub churn: f64,
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

/// The few-step samplers' recommended steps: enough for the narrowest component's spread on
/// every preset and dragged mixture (the live-defaults test, `tests/cpu_reference/live.rs`).
/// The steps sweep shows why: on grid25 (components 1/20 of the data's spread) the distance to
/// the exact PF-ODE solution must fall to ≈ 0.002 of the data's spread, which DDIM (first
/// order) reaches near 500 evaluations, Heun-EDM near 128 (64 steps) and DPM-Solver++(2M)
/// near 64–100; at 30 steps DDIM's spreads there were 40% too wide.
pub const DDIM_STEPS: usize = 500;
/// Heun-EDM's recommended steps (2 evaluations each); see [`DDIM_STEPS`].
pub const HEUN_EDM_STEPS: usize = 64;
/// DPM-Solver++(2M)'s recommended steps; see [`DDIM_STEPS`].
pub const DPM_SOLVER_STEPS: usize = 100;
/// Largest S_churn (γ saturates at √2 − 1 once S_churn ≥ 0.41 N).
pub const MAX_CHURN: f64 = 100.0;

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
        let (n_steps, alpha_last) = match kind {
            SamplerKind::Langevin => (1000, langevin_step_size(mixture)),
            SamplerKind::AnnealedLangevin => (100, annealed_step_size(mixture)),
            SamplerKind::Pc => (500, 0.0),
            SamplerKind::OdeRk45 => (0, 0.0),
            SamplerKind::OdeEuler => (1000, 0.0),
            SamplerKind::OdeHeun | SamplerKind::OdeRk4 => (200, 0.0),
            SamplerKind::ReverseSde | SamplerKind::Ancestral => (1000, 0.0),
            SamplerKind::Ddim => (DDIM_STEPS, 0.0),
            SamplerKind::EdmHeun => (HEUN_EDM_STEPS, 0.0),
            SamplerKind::DpmSolver => (DPM_SOLVER_STEPS, 0.0),
        };
        Self {
            kind,
            n_steps,
            n_levels: 50,
            alpha_last,
            snr: 0.16,
            t_end: AUTO_T_END,
            rtol: 1e-5,
            atol: 1e-5,
            seed: 0,
            init,
            t_start: 1.0,
            prior_scale: 1.0,
            eta: 0.0,
            churn: 0.0,
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
        ) && !(self.alpha_last.is_finite() && self.alpha_last > 0.0 && self.alpha_last < 1e3)
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
        if !(self.eta.is_finite() && (0.0..=1.0).contains(&self.eta)) {
            return bad("DDIM's eta must be in [0, 1]");
        }
        if !(self.churn.is_finite() && (0.0..=MAX_CHURN).contains(&self.churn)) {
            return bad(&format!("the churn must be in [0, {MAX_CHURN}]"));
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

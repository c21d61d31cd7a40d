//! What the user sets for an engine: the network and optimiser ([`TrainSettings`]) and each
//! live sampler ([`LiveSampling`]), with the range checks the panel, the share link, scene
//! files and the JS API all go through.

pub mod table;

use super::EngineError;
use crate::sim::adam::AdamConfig;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::samplers::{SamplerConfig, SamplerKind};
use crate::sim::sde::Sde;
use crate::sim::train::TrainConfig;

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

    /// Range checks ([`table::TRAIN`]: the panel's edits, links, scene files and the JS API go
    /// through here).
    pub fn validate(&self) -> Result<(), table::OutOfRange> {
        table::WIDTH.check(self.width as f64)?;
        table::DEPTH.check(self.depth as f64)?;
        table::BATCH.check(self.batch as f64)?;
        table::LR.check(f64::from(self.lr))
    }

    /// Smaller defaults for CPU-backed adapters (SwiftShader, lavapipe) and the CPU engine.
    pub fn small() -> Self {
        Self {
            width: table::WIDTH.default as usize,
            depth: table::DEPTH.default as usize,
            batch: table::BATCH.default as usize,
            lr: table::LR.default as f32,
        }
    }
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
    /// The step size, dimensionless (relative to the mixture, so no drag or preset can make
    /// a stored value wrong): annealed Langevin's r = α_i / σ_i², the step at each level
    /// relative to that level's noise variance (NCSN's ε/σ_L²: ε = 2e-5 at σ_L = 0.01 is
    /// r = 0.2; the chain is stable for r < 4 at every level and every data scale); plain
    /// Langevin's α in units of the narrowest component variance (stable below ≈ 4, and the
    /// stationary spread is v / (1 − α/4v): +1.3% at 0.05). [`LiveSampling::absolute_step`]
    /// gives the step in data units.
    pub step: f64,
    /// An absolute ε / α from a link or scene file made before steps were relative;
    /// [`LiveSampling::upgrade_legacy`] converts it with the file's own mixture, so a loaded
    /// state always has None here (written as `"eps": null`: the worker's binary messages
    /// need every field written).
    #[serde(rename = "eps")]
    pub legacy_eps: Option<f64>,
    /// Predictor–corrector signal-to-noise ratio.
    pub snr: f64,
    /// DDIM's η (0: deterministic, 1: ancestral).
    pub eta: f64,
    /// Heun-EDM's S_churn (0: deterministic).
    pub churn: f64,
    /// Animation speed: 1 = a run in about 150 frames; < 1 slow motion.
    pub speed: f64,
    /// Start a new run from fresh noise after each finished one.
    pub repeat: bool,
    /// Classifier guidance toward a component (both engines: `GpuSampler::new_guided` on the
    /// GPU).
    pub guide: Option<Guide>,
    /// Langevin family: Metropolis-adjust each step against the exact p_t (MALA; the
    /// proposal uses the exact score, since MALA needs the log-density).
    pub mala: bool,
    /// Start time of a run: 1 starts at the SDE's prior; smaller starts the annealing or the
    /// reverse process at a lower noise level (this run's σ_max is s(t_start)).
    pub t_start: f64,
    /// The start distribution's std relative to the right prior's (SDE / ODE samplers): 1 is
    /// right; anything else shows what a wrong prior does.
    pub prior_scale: f64,
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

    /// Defaults for the CPU engine and software adapters: annealed Langevin, L = 40, T = 50,
    /// r = [`LIVE_ANNEALED_STEP`]: a 2000-step run (a run is ≈ 150 frames whatever its
    /// steps) whose widths and
    /// weights are right on every preset and dragged mixture (the live-defaults property
    /// test in `tests/cpu_reference/live.rs`).
    pub fn small() -> Self {
        Self {
            enabled: true,
            exact: false,
            n: table::PARTICLES.default as usize,
            kind: SamplerKind::AnnealedLangevin,
            levels: table::LEVELS.default as usize,
            steps: table::STEPS.default as usize,
            step: table::STEP.default,
            legacy_eps: None,
            snr: table::SNR.default,
            eta: table::ETA.default,
            churn: table::CHURN.default,
            speed: table::SPEED.default,
            repeat: true,
            guide: None,
            mala: false,
            t_start: table::T_START.default,
            prior_scale: table::PRIOR_SCALE.default,
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
            step: match kind {
                SamplerKind::AnnealedLangevin => ANNEALED_STEP,
                SamplerKind::Langevin => LANGEVIN_STEP,
                _ => self.step,
            },
            legacy_eps: None,
            snr: d.snr,
            ..self.clone()
        }
    }

    /// The sampler configuration for one run.
    pub fn config(&self, mixture: &GaussianMixture, seed: u32) -> SamplerConfig {
        let mut c = SamplerConfig::defaults(self.kind, mixture);
        c.n_levels = self.levels;
        c.n_steps = self.steps;
        if let Some(a) = self.absolute_step(mixture) {
            c.alpha_last = a;
        }
        c.snr = self.snr;
        c.eta = self.eta;
        c.churn = self.churn;
        c.seed = seed;
        c.t_start = self.t_start;
        c.prior_scale = self.prior_scale;
        c
    }

    /// The Langevin family's step in data units for `mixture`: annealed Langevin's ε = α_L
    /// (the last level's step, r σ_min², with α_i = r σ_i² at level i), plain Langevin's α =
    /// step × the narrowest component variance; None for the other samplers.
    pub fn absolute_step(&self, mixture: &GaussianMixture) -> Option<f64> {
        match self.kind {
            SamplerKind::AnnealedLangevin => {
                Some(self.step * crate::sim::sde::sigma_min_for(mixture).powi(2))
            }
            SamplerKind::Langevin => {
                Some(self.step * crate::sim::samplers::narrowest_variance(mixture))
            }
            _ => None,
        }
    }

    /// The relative step that gives the absolute step `eps` (ε or α, data units) on `mixture`
    /// (the inverse of [`Self::absolute_step`]; the step kept as is for other samplers).
    pub fn relative_step(&self, eps: f64, mixture: &GaussianMixture) -> f64 {
        match self.kind {
            SamplerKind::AnnealedLangevin => eps / crate::sim::sde::sigma_min_for(mixture).powi(2),
            SamplerKind::Langevin => eps / crate::sim::samplers::narrowest_variance(mixture),
            _ => self.step,
        }
    }

    /// Convert an absolute ε / α read from an older link or file with its own mixture (what
    /// that file's sampler ran with), so it loads as it was made.
    pub fn upgrade_legacy(&mut self, mixture: &GaussianMixture) {
        if let Some(eps) = self.legacy_eps.take() {
            self.step = self.relative_step(eps, mixture);
        }
    }

    /// Whether the run is Metropolis-adjusted (MALA applies to the Langevin family only).
    pub fn is_mala(&self) -> bool {
        self.mala
            && matches!(
                self.kind,
                SamplerKind::Langevin | SamplerKind::AnnealedLangevin
            )
    }

    /// Steps of one run (RK45: unknown, 0).
    pub fn total_steps(&self) -> usize {
        match self.kind {
            SamplerKind::AnnealedLangevin => self.levels * self.steps,
            SamplerKind::OdeRk45 => 0,
            _ => self.steps,
        }
    }

    /// Check ranges ([`table::LIVE`]: the JS API, links, scene files and the panel's edits all
    /// go through here).
    pub fn validate(&self) -> Result<(), String> {
        table::PARTICLES.check(self.n as f64)?;
        table::LEVELS.check(self.levels as f64)?;
        table::STEPS.check(self.steps as f64)?;
        if self.total_steps() > MAX_LIVE_STEPS {
            return Err(format!(
                "a live run has at most {MAX_LIVE_STEPS} steps (levels × steps for annealed Langevin)"
            ));
        }
        table::STEP.check(self.step)?;
        table::SNR.check(self.snr)?;
        table::ETA.check(self.eta)?;
        table::CHURN.check(self.churn)?;
        table::T_START.check(self.t_start)?;
        table::PRIOR_SCALE.check(self.prior_scale)?;
        table::SPEED.check(self.speed)?;
        if let Some(g) = self.guide {
            if g.component >= crate::sim::mixture::MAX_COMPONENTS {
                return Err("the guidance component does not exist".into());
            }
            table::GAMMA.check(g.gamma)?;
        }
        Ok(())
    }
}

/// Annealed Langevin's live step r = α_i/σ_i² (L = 40, T = 50). A level's chain relaxes by
/// ≈ r T/2 × σ_i²/(λ + σ_i²) per level, so a component of variance λ freezes at the level
/// where σ² ≈ 2λ/(rT) and keeps that much too much spread: +15% at the old live L = 20,
/// T = 20, r = 0.5, +4% here (a Gaussian recursion of the variance). The mode weights
/// depend on the level spacing more than on the steps per level (exact score, 8 mixtures ×
/// 3 SDEs, 2 seeds of 8000 particles; worst fraction gap): L = 20, T = 50, r = 0.5: 0.033;
/// L = 20, T = 100 (r = 0.5 or 0.2): 0.028–0.031; L = 40, T = 25, r = 0.5: 0.025; L = 40,
/// T = 50, r = 0.3: 0.021. A larger r relaxes faster but flattens the weights (the
/// unadjusted chain samples a tempered p_σ: r = 1.5 at L = 20, T = 20 gave up to 0.08).
/// Stable for r < 4.
pub const LIVE_ANNEALED_STEP: f64 = 0.3;
/// Annealed Langevin's recommended r with the full L = 50, T = 100 schedule: NCSN's ε = 2e-5
/// at σ_L = 0.01.
pub const ANNEALED_STEP: f64 = 0.2;
/// Plain Langevin's recommended α in units of the narrowest component variance.
pub const LANGEVIN_STEP: f64 = 0.05;
/// Largest relative step accepted (plain Langevin diverges above ≈ 4: the failure scene uses 10).
pub const MAX_REL_STEP: f64 = 100.0;

/// Earliest start time of a live run (its σ_max = s(t_start)).
pub const MIN_T_START: f64 = 0.05;

/// Most steps of one live run.
pub const MAX_LIVE_STEPS: usize = 20_000;
/// Live samplers (the split view shows two).
pub const SLOTS: usize = 2;

/// Most live particles.
pub const MAX_PARTICLES: usize = 1_000_000;
/// Trail snapshots kept.
pub const TRAIL_SLOTS: u32 = 12;

/// A fresh network for `settings` in `sde`'s frame.
pub fn new_net(
    settings: &TrainSettings,
    mixture: &GaussianMixture,
    sde: Sde,
) -> Result<ScoreNet, EngineError> {
    Ok(ScoreNet::new(
        NetConfig {
            width: settings.width,
            depth: settings.depth,
            data_std: mixture.data_std(),
            ..NetConfig::default()
        },
        sde,
    )?)
}

/// The network an engine starts from: `net` (an imported model) or a fresh one.
pub fn net_or_new(
    net: Option<ScoreNet>,
    settings: &TrainSettings,
    mixture: &GaussianMixture,
    sde: Sde,
) -> Result<ScoreNet, EngineError> {
    match net {
        Some(n) => Ok(n),
        None => new_net(settings, mixture, sde),
    }
}

/// The trainer's configuration for `settings`.
pub fn train_config(settings: &TrainSettings) -> TrainConfig {
    TrainConfig {
        batch: settings.batch,
        adam: AdamConfig {
            lr: settings.lr,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    }
}

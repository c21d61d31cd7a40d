//! What the user sets for an engine: the network and optimiser ([`TrainSettings`]) and each
//! live sampler ([`LiveSampling`]), with the range checks the panel, the share link, scene
//! files and the JS API all go through.

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
            mala: false,
            t_start: 1.0,
            prior_scale: 1.0,
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
        c.t_start = self.t_start;
        c.prior_scale = self.prior_scale;
        c
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
        if !(self.t_start.is_finite() && (MIN_T_START..=1.0).contains(&self.t_start)) {
            return Err(format!("the start time must be in [{MIN_T_START}, 1]"));
        }
        if !(self.prior_scale.is_finite() && (0.01..=10.0).contains(&self.prior_scale)) {
            return Err("the prior scale must be in [0.01, 10]".into());
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

//! The forward SDEs of score_sde (Song et al. 2021), in their notation:
//! dx = f(x, t) dt + g(t) dw, t ∈ [0, 1], with affine marginals x_t = α(t) x_0 + s(t) z.
//!
//! - VE: σ(t) = σ_min (σ_max/σ_min)^t, f = 0, g = σ(t) √(2 ln(σ_max/σ_min)), α = 1, s = σ(t).
//! - VP: β(t) = β_min + t(β_max − β_min), f = −½ β x, g = √β,
//!   α = exp(−¼ t²(β_max−β_min) − ½ t β_min), s = √(1 − α²).
//! - sub-VP: f = −½ β x, g = √(β (1 − e^{−2∫β})), α as VP, s = 1 − α².

use serde::{Deserialize, Serialize};

use crate::sim::Vec2;

/// Which SDE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SdeKind {
    /// Variance exploding (NCSN's continuous limit).
    #[default]
    Ve,
    /// Variance preserving (DDPM's continuous limit).
    Vp,
    /// sub-VP.
    Subvp,
}

impl SdeKind {
    /// Parse "ve" / "vp" / "subvp" (also "sub-vp").
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ve" => Some(Self::Ve),
            "vp" => Some(Self::Vp),
            "subvp" | "sub-vp" => Some(Self::Subvp),
            _ => None,
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ve => "ve",
            Self::Vp => "vp",
            Self::Subvp => "subvp",
        }
    }
}

/// An SDE with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sde {
    /// Which family.
    pub kind: SdeKind,
    /// VE: smallest noise std.
    pub sigma_min: f64,
    /// VE: largest noise std (≈ max pairwise data distance).
    pub sigma_max: f64,
    /// VP / sub-VP: β(0).
    pub beta_min: f64,
    /// VP / sub-VP: β(1).
    pub beta_max: f64,
}

/// Default training t-floor ε_t (DESIGN §2).
pub const TRAIN_T_EPS: f64 = 1e-5;
/// Default sampling end time (score_sde's `sampling_eps`).
pub const SAMPLE_T_EPS: f64 = 1e-3;

impl Sde {
    /// An SDE with the default parameters; `sigma_max` only matters for VE.
    pub fn new(kind: SdeKind, sigma_max: f64) -> Self {
        Self {
            kind,
            sigma_min: 0.01,
            sigma_max: sigma_max.max(0.1),
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }

    /// VE σ(t).
    #[inline]
    pub fn ve_sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }

    /// β(t).
    #[inline]
    pub fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }

    /// ∫₀ᵗ β(s) ds.
    #[inline]
    pub fn beta_integral(&self, t: f64) -> f64 {
        self.beta_min * t + 0.5 * t * t * (self.beta_max - self.beta_min)
    }

    /// Marginal coefficients (α(t), s(t)): x_t = α x_0 + s z.
    #[inline]
    pub fn marginal(&self, t: f64) -> (f64, f64) {
        match self.kind {
            SdeKind::Ve => (1.0, self.ve_sigma(t)),
            SdeKind::Vp => {
                let a = (-0.5 * self.beta_integral(t)).exp();
                // 1 − α² = −expm1(−∫β), accurate for small t.
                (a, (-(-self.beta_integral(t)).exp_m1()).sqrt())
            }
            SdeKind::Subvp => {
                let a = (-0.5 * self.beta_integral(t)).exp();
                (a, -(-self.beta_integral(t)).exp_m1())
            }
        }
    }

    /// Drift f(x, t).
    #[inline]
    pub fn drift(&self, x: Vec2, t: f64) -> Vec2 {
        match self.kind {
            SdeKind::Ve => Vec2::zeros(),
            SdeKind::Vp | SdeKind::Subvp => -0.5 * self.beta(t) * x,
        }
    }

    /// ∇·f(x, t) (2D).
    #[inline]
    pub fn drift_divergence(&self, t: f64) -> f64 {
        match self.kind {
            SdeKind::Ve => 0.0,
            SdeKind::Vp | SdeKind::Subvp => -self.beta(t),
        }
    }

    /// Diffusion g(t).
    #[inline]
    pub fn diffusion(&self, t: f64) -> f64 {
        match self.kind {
            SdeKind::Ve => self.ve_sigma(t) * (2.0 * (self.sigma_max / self.sigma_min).ln()).sqrt(),
            SdeKind::Vp => self.beta(t).sqrt(),
            SdeKind::Subvp => {
                let disc = -(-2.0 * self.beta_integral(t)).exp_m1();
                (self.beta(t) * disc).sqrt()
            }
        }
    }

    /// Std of the prior p_1 (isotropic, mean 0).
    pub fn prior_std(&self) -> f64 {
        match self.kind {
            SdeKind::Ve => self.sigma_max,
            SdeKind::Vp | SdeKind::Subvp => 1.0,
        }
    }

    /// A prior sample from a standard normal `z`.
    #[inline]
    pub fn prior_sample(&self, z: Vec2) -> Vec2 {
        self.prior_std() * z
    }

    /// log p_1(x) of the prior N(0, prior_std² I).
    pub fn prior_log_prob(&self, x: Vec2) -> f64 {
        let v = self.prior_std() * self.prior_std();
        -(std::f64::consts::TAU * v).ln() - 0.5 * x.norm_squared() / v
    }

    /// Reverse-diffusion discretisation (score_sde `SDE.discretize`) of step `i` of `n`
    /// from time `t` (step size 1/n): returns (f_i(x), G_i) with x_{i+1} = x_i + f_i + G_i z.
    pub fn discretize(&self, x: Vec2, t: f64, n: usize) -> (Vec2, f64) {
        let dt = 1.0 / n as f64;
        match self.kind {
            SdeKind::Ve => {
                let sigma = self.ve_sigma(t);
                let prev = if t - dt <= 0.0 {
                    0.0
                } else {
                    self.ve_sigma(t - dt)
                };
                (Vec2::zeros(), (sigma * sigma - prev * prev).max(0.0).sqrt())
            }
            SdeKind::Vp => {
                let beta = self.beta(t) * dt;
                ((1.0 - beta).max(0.0).sqrt() * x - x, beta.sqrt())
            }
            SdeKind::Subvp => (self.drift(x, t) * dt, self.diffusion(t) * dt.sqrt()),
        }
    }

    /// The noise-to-signal ratio σ_e = s/α (the VE-equivalent noise level at t).
    #[inline]
    pub fn effective_sigma(&self, t: f64) -> f64 {
        let (a, s) = self.marginal(t);
        s / a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d/dt of the marginal variance must match the SDE: for x_t = α x0 + s z,
    /// dα/dt = −½β α (VP/sub-VP) and d(s²)/dt = g² + 2 (dα/dt / α) s² (Itô).
    #[test]
    fn marginals_match_the_sde() {
        for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
            let sde = Sde::new(kind, 20.0);
            for &t in &[0.05, 0.3, 0.7, 0.95] {
                let h = 1e-6;
                let (a0, s0) = sde.marginal(t - h);
                let (a1, s1) = sde.marginal(t + h);
                let (_, s) = sde.marginal(t);
                let dlog_a = (a1.ln() - a0.ln()) / (2.0 * h);
                let dvar = (s1 * s1 - s0 * s0) / (2.0 * h);
                let g = sde.diffusion(t);
                let expected = g * g + 2.0 * dlog_a * s * s;
                assert!(
                    (dvar - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                    "{kind:?} t={t}: {dvar} vs {expected}"
                );
                let f_coef = sde.drift(Vec2::new(1.0, 0.0), t).x;
                assert!(
                    (dlog_a - f_coef).abs() < 1e-5,
                    "{kind:?}: drift {f_coef} vs dlogα {dlog_a}"
                );
            }
        }
    }
}

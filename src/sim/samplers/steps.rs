//! Single-particle updates, named after their WGSL twins (`langevin_step.wgsl`,
//! `reverse_sde_step.wgsl`, `ancestral_step` in `reverse_sde_step.wgsl`, `pf_ode_step.wgsl`);
//! each returns `(x, x_mean)` where it has a noise-free mean.

use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

/// Langevin step: x_mean = x + (α/2) s, x = x_mean + √α z (NCSN Alg. 1 inner loop).
#[inline]
pub fn langevin_step(x: Vec2, score: Vec2, alpha: f64, z: Vec2) -> (Vec2, Vec2) {
    let mean = x + 0.5 * alpha * score;
    (mean + alpha.sqrt() * z, mean)
}

/// Reverse-SDE Euler–Maruyama step from t with dt < 0.
#[inline]
pub fn reverse_sde_step(sde: &Sde, x: Vec2, score: Vec2, t: f64, dt: f64, z: Vec2) -> (Vec2, Vec2) {
    let g = sde.diffusion(t);
    let drift = sde.drift(x, t) - g * g * score;
    let mean = x + drift * dt;
    (mean + g * (-dt).sqrt() * z, mean)
}

/// Ancestral / reverse-diffusion step from t to t_next < t.
#[inline]
pub fn ancestral_step(
    sde: &Sde,
    x: Vec2,
    score: Vec2,
    t: f64,
    t_next: f64,
    z: Vec2,
) -> (Vec2, Vec2) {
    match sde.kind {
        SdeKind::Ve => {
            let s2 = sde.ve_sigma(t).powi(2);
            let n2 = sde.ve_sigma(t_next).powi(2);
            let mean = x + (s2 - n2) * score;
            (mean + (n2 * (s2 - n2) / s2).max(0.0).sqrt() * z, mean)
        }
        SdeKind::Vp => {
            // DDPM's step in the frame y = (x − m)/d (score_y = d·score_x), mapped back.
            let beta = sde.vp_step_beta(t, t_next).clamp(0.0, 0.999);
            let (m, d) = (sde.center(), sde.scale);
            let mean = m + ((x - m) + beta * d * d * score) / (1.0 - beta).sqrt();
            (mean + d * beta.sqrt() * z, mean)
        }
        SdeKind::Subvp => {
            let dt = t - t_next;
            let g = sde.diffusion(t);
            let mean = x - sde.drift(x, t) * dt + g * g * dt * score;
            (mean + g * dt.sqrt() * z, mean)
        }
    }
}

/// The probability-flow ODE velocity f − ½ g² s (score_sde Eq. 13).
#[inline]
pub fn pf_ode_velocity(sde: &Sde, x: Vec2, score: Vec2, t: f64) -> Vec2 {
    let g = sde.diffusion(t);
    sde.drift(x, t) - 0.5 * g * g * score
}

/// Explicit-Euler probability-flow step (the GPU's `pf_ode_step` for Euler).
#[inline]
pub fn pf_ode_step(sde: &Sde, x: Vec2, score: Vec2, t: f64, dt: f64) -> Vec2 {
    x + pf_ode_velocity(sde, x, score, t) * dt
}

/// Langevin-corrector step size 2 a (snr ‖z‖/‖s‖)² from batch-mean norms (score_sde Alg. 4).
/// NaN-safe: the means are taken over the finite scores ([`finite_mean_norm`]), and a mean
/// score norm that is not a positive finite number skips the correction (step 0) instead of
/// `f64::max(NaN, 1e-12)` = 1e-12 making the step ≈ 1e22 for every particle.
pub fn corrector_step_size(snr: f64, a: f64, mean_noise_norm: f64, mean_score_norm: f64) -> f64 {
    if !(mean_score_norm.is_finite() && mean_score_norm > 1e-12) {
        return 0.0;
    }
    let ratio = snr * mean_noise_norm / mean_score_norm;
    let eps = 2.0 * a * ratio * ratio;
    if eps.is_finite() {
        eps
    } else {
        0.0
    }
}

/// Mean ‖v‖ over the vectors with a finite norm (NaN when none is finite), the corrector's
/// batch reduction: one diverged particle must not set every particle's step.
pub fn finite_mean_norm(vs: &[Vec2]) -> f64 {
    let (sum, n) = vs
        .iter()
        .map(|v| v.norm())
        .filter(|n| n.is_finite())
        .fold((0.0, 0usize), |(s, c), n| (s + n, c + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One NaN score must not set every particle's corrector step: the mean skips it, and a
    /// mean that is not a positive finite number gives step 0 (before: f64::max(NaN, 1e-12)
    /// = 1e-12 made the step ≈ 1e22).
    #[test]
    fn corrector_step_is_nan_safe() {
        let scores = [
            Vec2::new(3.0, 4.0),
            Vec2::new(f64::NAN, 0.0),
            Vec2::new(0.0, 5.0),
        ];
        assert_eq!(finite_mean_norm(&scores), 5.0);
        assert!(finite_mean_norm(&[Vec2::new(f64::INFINITY, 0.0)]).is_nan());
        let eps = corrector_step_size(0.16, 1.0, 1.25, finite_mean_norm(&scores));
        assert!((eps - 2.0 * (0.16 * 1.25 / 5.0_f64).powi(2)).abs() < 1e-15);
        for bad in [f64::NAN, 0.0, f64::INFINITY, -1.0] {
            assert_eq!(corrector_step_size(0.16, 1.0, 1.25, bad), 0.0, "{bad}");
        }
    }
}

//! The denoiser's view and conditional paths (issue 16): what the score means at a noise level.
//!
//! In the SDE's data frame (`sim::sde`: centre m), x_t = m + α(t)(x₀ − m) + s(t) z. Tweedie's
//! formula turns any score into the posterior mean of the clean point,
//!
//!   D(x_t) = E[x₀ | x_t] = m + (x_t − m + s² ∇log p_t(x_t)) / α,
//!
//! and for the exact mixture that mean has a closed form (each component is a Gaussian prior
//! observed through a Gaussian channel):
//!
//!   E[x₀ | x_t] = Σ_k r_k(x_t) [μ_k + α Σ_k (α² Σ_k + s² I)⁻¹ (x_t − m − α(μ_k − m))],
//!
//! with r_k(x_t) = p(k | x_t) the responsibilities of the perturbed mixture p_t. As t → 0 the
//! denoiser returns x_t itself; at large noise it collapses to the data mean, and in between
//! towards the mean of whichever component the responsibilities favour.
//!
//! A conditional path is one data point's own noising, x_t = m + α(t)(x₀ − m) + s(t) z for a
//! fixed z: its mean is an affine path from x₀ (the flow-matching view); averaged over the data
//! it reproduces the SDE's marginal p_t, whose probability-flow ODE path through the same x_t
//! is the marginal path.

use crate::sim::mixture::GaussianMixture;
use crate::sim::score::ScoreModel;
use crate::sim::sde::Sde;
use crate::sim::{Mat2, Vec2};

/// Tweedie's denoised estimate E[x₀ | x_t] at `x` (time `t`) from the score value `score`.
pub fn tweedie(sde: &Sde, x: Vec2, t: f64, score: Vec2) -> Vec2 {
    let (alpha, s) = sde.marginal(t);
    let m = sde.center();
    m + (x - m + s * s * score) / alpha
}

/// Tweedie's estimate at every point of `xs` (all at `t`) from `model`'s score.
pub fn denoise_batch(model: &dyn ScoreModel, sde: &Sde, xs: &[Vec2], t: f64) -> Vec<Vec2> {
    let mut scores = vec![Vec2::zeros(); xs.len()];
    model.score_batch(xs, t, &mut scores);
    xs.iter()
        .zip(&scores)
        .map(|(x, s)| tweedie(sde, *x, t, *s))
        .collect()
}

/// The perturbed mixture p_t of `mixture` under `sde`.
fn perturbed_at(mixture: &GaussianMixture, sde: &Sde, t: f64) -> GaussianMixture {
    let (alpha, s) = sde.marginal(t);
    mixture.perturbed(sde.center(), alpha, s)
}

/// p(k | x_t): the posterior probability that the clean point came from component k (the
/// responsibilities of the perturbed mixture at `x`).
pub fn responsibilities(mixture: &GaussianMixture, sde: &Sde, x: Vec2, t: f64) -> Vec<f64> {
    let mut r = vec![0.0; mixture.len()];
    perturbed_at(mixture, sde, t).responsibilities(x, &mut r);
    r
}

/// E[x₀ | x_t] of the exact mixture in closed form (module docs): the responsibility-weighted
/// per-component Gaussian posterior means.
pub fn posterior_mean(mixture: &GaussianMixture, sde: &Sde, x: Vec2, t: f64) -> Vec2 {
    let (alpha, s) = sde.marginal(t);
    let m = sde.center();
    let r = responsibilities(mixture, sde, x, t);
    let mut out = Vec2::zeros();
    for (g, rk) in mixture.components().iter().zip(&r) {
        let c = alpha * alpha * g.cov + Mat2::identity() * (s * s);
        let gain = alpha * g.cov * c.try_inverse().unwrap_or_else(Mat2::zeros);
        out += *rk * (g.mean + gain * (x - m - alpha * (g.mean - m)));
    }
    out
}

/// The mean and standard deviation of the conditional path of the data point `x0` at `t`:
/// x_t = mean + std · z for z ~ N(0, I).
pub fn conditional_mean_std(sde: &Sde, x0: Vec2, t: f64) -> (Vec2, f64) {
    let (alpha, s) = sde.marginal(t);
    (sde.forward_mean(x0, alpha), s)
}

/// One noising path of `x0` with the fixed noise `z`, at each of `ts`.
pub fn conditional_path(sde: &Sde, x0: Vec2, z: Vec2, ts: &[f64]) -> Vec<Vec2> {
    ts.iter()
        .map(|&t| {
            let (mean, s) = conditional_mean_std(sde, x0, t);
            mean + s * z
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::CounterRng;
    use crate::sim::score::ExactScore;
    use crate::sim::sde::SdeKind;

    fn mixture() -> GaussianMixture {
        crate::sim::test_mixtures::off_centre_anisotropic()
    }

    #[test]
    fn tweedie_with_the_exact_score_is_the_closed_form_posterior_mean() {
        let m = mixture();
        for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
            let sde = Sde::for_mixture(kind, &m);
            let exact = ExactScore::new(m.clone(), sde);
            let rng = CounterRng::new(7);
            for &t in &[0.001, 0.05, 0.2, 0.5, 0.9] {
                let (alpha, s) = sde.marginal(t);
                let pt = m.perturbed(sde.center(), alpha, s);
                for i in 0..40 {
                    let u = rng.uniform4(0, i, 0);
                    let x = pt.sample_with(u[0], rng.normal2(0, i, 1));
                    let d = tweedie(&sde, x, t, exact.score(x, t));
                    let closed = posterior_mean(&m, &sde, x, t);
                    assert!(
                        (d - closed).norm() <= 1e-9 * (1.0 + closed.norm()),
                        "{kind:?} t={t}: Tweedie {d:?} vs closed form {closed:?}"
                    );
                    let r = responsibilities(&m, &sde, x, t);
                    assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                    assert!(r.iter().all(|&p| (0.0..=1.0).contains(&p)));
                }
            }
        }
    }

    #[test]
    fn the_denoiser_returns_the_point_at_small_noise_and_the_data_mean_at_large() {
        let m = mixture();
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        let x = Vec2::new(17.5, -13.0);
        let d0 = posterior_mean(&m, &sde, x, 1e-6);
        assert!((d0 - x).norm() < 1e-3, "t -> 0: {d0:?} vs {x:?}");
        let d1 = posterior_mean(&m, &sde, x, 1.0);
        assert!(
            (d1 - m.mean()).norm() < 0.1 * (x - m.mean()).norm(),
            "t = 1: {d1:?} vs the mean {:?}",
            m.mean()
        );
        // In between, a point near a component's mean is explained by that component.
        let mid = posterior_mean(&m, &sde, Vec2::new(23.0, -7.0), 0.1);
        let r = responsibilities(&m, &sde, Vec2::new(23.0, -7.0), 0.1);
        assert!(r[2] > 0.5, "{r:?}");
        assert!((mid - Vec2::new(23.0, -7.0)).norm() < 3.0, "{mid:?}");
    }

    #[test]
    fn conditional_paths_start_at_the_point_and_average_to_the_marginal() {
        let m = mixture();
        let rng = CounterRng::new(3);
        for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
            let sde = Sde::for_mixture(kind, &m);
            let x0 = Vec2::new(20.0, -11.0);
            let z = Vec2::new(0.7, -1.3);
            let ts = [0.0, 0.25, 0.5, 1.0];
            let path = conditional_path(&sde, x0, z, &ts);
            let (mean0, s0) = conditional_mean_std(&sde, x0, 0.0);
            assert_eq!(
                mean0, x0,
                "{kind:?}: the mean path starts at the data point"
            );
            assert!((path[0] - x0).norm() <= s0 * z.norm() + 1e-12);
            // Over data points and noises, x_t has p_t's mean and covariance.
            for &t in &ts[1..] {
                let (alpha, s) = sde.marginal(t);
                let pt = m.perturbed(sde.center(), alpha, s);
                let n = 40_000u32;
                let xs: Vec<Vec2> = (0..n)
                    .map(|i| {
                        let u = rng.uniform4(1, i, 0);
                        let x0 = m.sample_with(u[0], rng.normal2(1, i, 1));
                        conditional_path(&sde, x0, rng.normal2(1, i, 2), &[t])[0]
                    })
                    .collect();
                let mean = xs.iter().sum::<Vec2>() / f64::from(n);
                let cov = xs
                    .iter()
                    .map(|x| (x - mean) * (x - mean).transpose())
                    .sum::<Mat2>()
                    / f64::from(n - 1);
                let (want_mean, want_cov) = (pt.mean(), pt.covariance());
                let sd = want_cov.trace().sqrt();
                assert!(
                    (mean - want_mean).norm() < 4.0 * sd / f64::from(n).sqrt(),
                    "{kind:?} t={t}: mean {mean:?} vs {want_mean:?}"
                );
                assert!(
                    (cov - want_cov).norm() < 0.03 * want_cov.norm(),
                    "{kind:?} t={t}: cov {cov:?} vs {want_cov:?}"
                );
            }
        }
    }
}

//! Log-likelihood through the probability-flow ODE (score_sde App. D.2):
//! log p_0(x) = log p_1(x_1) + ∫_0^1 ∇·f̃(x_t, t) dt, f̃ = f − ½ g² s_θ,
//! integrated with adaptive RK45 on the augmented state (x, Δlogp). In 2D the divergence
//! is the exact trace of the 2×2 Jacobian (no Hutchinson estimator).

use crate::sim::samplers::{pf_ode_velocity, Rk45};
use crate::sim::score::ScoreModel;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// Result of one likelihood evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Likelihood {
    /// log p_0(x) in nats.
    pub log_prob: f64,
    /// log p_1(x_1) under the prior.
    pub prior_log_prob: f64,
    /// The end point x_1 of the ODE path.
    pub x1: Vec2,
    /// Score/divergence evaluations.
    pub nfe: u64,
}

/// Likelihood settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LikelihoodConfig {
    /// Start time (score_sde uses 1e-5; the model is not defined at s = 0 for VP).
    pub t0: f64,
    /// RK45 relative tolerance.
    pub rtol: f64,
    /// RK45 absolute tolerance.
    pub atol: f64,
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            t0: 1e-5,
            rtol: 1e-5,
            atol: 1e-5,
        }
    }
}

/// log p_0(x) of the model `score` (None when the ODE blew up: NaN/inf on the way).
pub fn log_likelihood(
    score: &dyn ScoreModel,
    sde: &Sde,
    x: Vec2,
    cfg: LikelihoodConfig,
) -> Option<Likelihood> {
    let mut rk = Rk45::new(cfg.t0, vec![x.x, x.y, 0.0], 1.0, cfg.rtol, cfg.atol);
    rk.run(&mut |t, y, dy| {
        let p = Vec2::new(y[0], y[1]);
        let (s, div_s) = score.score_and_divergence(p, t);
        let v = pf_ode_velocity(sde, p, s, t);
        let g = sde.diffusion(t);
        dy[0] = v.x;
        dy[1] = v.y;
        dy[2] = sde.drift_divergence(t) - 0.5 * g * g * div_s;
    });
    if rk.failed {
        return None;
    }
    let x1 = Vec2::new(rk.y[0], rk.y[1]);
    let prior = sde.prior_log_prob(x1);
    let lp = prior + rk.y[2];
    lp.is_finite().then_some(Likelihood {
        log_prob: lp,
        prior_log_prob: prior,
        x1,
        nfe: rk.nfev,
    })
}

/// log p_0(x) with fixed-step classical RK4 over `n_steps` of [`Sde::ode_time_grid`] from `t0`
/// to 1:
/// the CPU twin of the GPU `likelihood` kernel (one thread per point cannot adapt its steps
/// in lockstep with its neighbours, so the GPU uses fixed steps; compare with
/// [`log_likelihood`]'s adaptive RK45 for accuracy).
pub fn log_likelihood_rk4(
    score: &dyn ScoreModel,
    sde: &Sde,
    x: Vec2,
    t0: f64,
    n_steps: usize,
) -> f64 {
    let f = |p: Vec2, t: f64| -> (Vec2, f64) {
        let (s, div_s) = score.score_and_divergence(p, t);
        let g = sde.diffusion(t);
        (
            pf_ode_velocity(sde, p, s, t),
            sde.drift_divergence(t) - 0.5 * g * g * div_s,
        )
    };
    let grid = sde.ode_time_grid(t0, n_steps);
    let (mut p, mut delta) = (x, 0.0);
    for w in grid.windows(2) {
        let (t, h) = (w[0], w[1] - w[0]);
        let (k1, d1) = f(p, t);
        let (k2, d2) = f(p + 0.5 * h * k1, t + 0.5 * h);
        let (k3, d3) = f(p + 0.5 * h * k2, t + 0.5 * h);
        let (k4, d4) = f(p + h * k3, t + h);
        p += h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0;
        delta += h * (d1 + 2.0 * d2 + 2.0 * d3 + d4) / 6.0;
    }
    sde.prior_log_prob(p) + delta
}

/// [`log_likelihood_rk4`] for many points at once: the same fixed RK4 steps, every stage one
/// batched [`ScoreModel::score_and_divergence_batch`] (blocked Jacobian-vector products for
/// the network). Equal to the per-point solve up to f32 summation order (tested).
pub fn log_likelihood_rk4_batch(
    score: &dyn ScoreModel,
    sde: &Sde,
    xs: &[Vec2],
    t0: f64,
    n_steps: usize,
) -> Vec<f64> {
    let n = xs.len();
    let mut sd = vec![(Vec2::zeros(), 0.0); n];
    let mut f = |ps: &[Vec2], t: f64, k: &mut [Vec2], d: &mut [f64]| {
        score.score_and_divergence_batch(ps, t, &mut sd);
        let g = sde.diffusion(t);
        for i in 0..n {
            let (s, div_s) = sd[i];
            k[i] = pf_ode_velocity(sde, ps[i], s, t);
            d[i] = sde.drift_divergence(t) - 0.5 * g * g * div_s;
        }
    };
    let grid = sde.ode_time_grid(t0, n_steps);
    let mut p = xs.to_vec();
    let mut delta = vec![0.0; n];
    let (mut k, mut d) = (vec![vec![Vec2::zeros(); n]; 4], vec![vec![0.0; n]; 4]);
    let mut stage = vec![Vec2::zeros(); n];
    for w in grid.windows(2) {
        let (t, h) = (w[0], w[1] - w[0]);
        f(&p, t, &mut k[0], &mut d[0]);
        for (c, prev) in [(0.5, 0), (0.5, 1), (1.0, 2)] {
            for i in 0..n {
                stage[i] = p[i] + c * h * k[prev][i];
            }
            let (ks, ds) = (&mut k[prev + 1], &mut d[prev + 1]);
            f(&stage, t + c * h, ks, ds);
        }
        for i in 0..n {
            p[i] += h * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]) / 6.0;
            delta[i] += h * (d[0][i] + 2.0 * d[1][i] + 2.0 * d[2][i] + d[3][i]) / 6.0;
        }
    }
    p.iter()
        .zip(delta)
        .map(|(p, dl)| sde.prior_log_prob(*p) + dl)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::mixture::{presets, GaussianMixture};
    use crate::sim::model::{NetConfig, ScoreNet};
    use crate::sim::score::ExactScore;
    use crate::sim::sde::SdeKind;

    #[test]
    fn batched_rk4_likelihood_matches_the_per_point_solve() {
        let spec = presets::by_name("ring8").expect("ring8 is a preset");
        let m = GaussianMixture::from_spec(&spec).expect("valid");
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        // Off the origin and ragged: 150 points (a full chunk of 128 and a partial one).
        let xs: Vec<Vec2> = (0..150)
            .map(|i| Vec2::new(-5.0 + 0.07 * i as f64, 3.0 - 0.05 * i as f64))
            .collect();
        let exact = ExactScore::new(m.clone(), sde);
        let batch = log_likelihood_rk4_batch(&exact, &sde, &xs, 1e-3, 12);
        for (x, b) in xs.iter().zip(&batch) {
            assert_eq!(
                *b,
                log_likelihood_rk4(&exact, &sde, *x, 1e-3, 12),
                "exact score"
            );
        }
        let cfg = NetConfig {
            width: 24,
            depth: 2,
            n_x_freqs: 4,
            data_std: m.data_std(),
            ..NetConfig::default()
        };
        let net = ScoreNet::new(cfg, sde).expect("valid net");
        let batch = log_likelihood_rk4_batch(&net, &sde, &xs, 1e-3, 12);
        for (x, b) in xs.iter().zip(&batch) {
            let one = log_likelihood_rk4(&net, &sde, *x, 1e-3, 12);
            // f32 products summed in another order: agree to 1e-4 nats (relative).
            assert!((b - one).abs() <= 1e-4 * (1.0 + one.abs()), "{b} vs {one}");
        }
    }
}

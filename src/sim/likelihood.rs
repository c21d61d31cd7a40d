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

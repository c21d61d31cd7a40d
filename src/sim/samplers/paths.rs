//! Probability-flow ODE paths for drawing: a grid of prior start points and deterministic
//! RK4 paths through them (noise → data or back).

use super::pf_ode_velocity;
use crate::sim::score::ScoreModel;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

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

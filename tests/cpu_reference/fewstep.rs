//! The few-step samplers (issue 30: DDIM, Heun on the EDM schedule, DPM-Solver++(2M)) against
//! the exact probability-flow ODE: each one's error at the end of a run (the median distance
//! over 128 prior points), against a Dormand–Prince solution of the exact score's PF-ODE at tolerance 1e-10,
//! falls with the number of score evaluations at its order (Euler/DDIM 1, Heun 2,
//! DPM-Solver++(2M) 2) on held-out dragged mixtures; DDIM with η = 1 samples what ancestral
//! sampling samples.

use super::*;
use scorelab::sim::samplers::fewstep::{self, FewStep};
use scorelab::sim::samplers::{pf_ode_velocity, Rk45};

/// The exact PF-ODE's end points from `xs` (at t = 1) at `t_end`, RK45 at tolerance 1e-10.
fn reference(score: &ExactScore, sde: &Sde, xs: &[Vec2], t_end: f64) -> Vec<Vec2> {
    xs.iter()
        .map(|x| {
            let mut ode = Rk45::new(1.0, vec![x.x, x.y], t_end, 1e-10, 1e-10);
            ode.run(&mut |t, y, dy| {
                let p = Vec2::new(y[0], y[1]);
                let v = pf_ode_velocity(sde, p, score.score(p, t), t);
                dy[0] = v.x;
                dy[1] = v.y;
            });
            assert!(!ode.failed, "the reference integration failed");
            Vec2::new(ode.y[0], ode.y[1])
        })
        .collect()
}

/// Slope of log(error) against log(NFE), least squares.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + x.ln() / n, b + y.ln() / n)
    });
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        let dx = x.ln() - mx;
        (a + dx * (y.ln() - my), b + dx * dx)
    });
    num / den
}

#[test]
fn few_step_samplers_converge_at_their_order_to_the_exact_pf_ode() {
    let samplers = [
        (FewStep::Ddim { eta: 0.0 }, 1.0),
        (FewStep::EdmHeun { churn: 0.0 }, 2.0),
        (FewStep::DpmSolverPp2M, 2.0),
    ];
    let mut failures = Vec::new();
    for (seed, kind) in [(3, SdeKind::Vp), (4, SdeKind::Ve), (5, SdeKind::Subvp)] {
        let m = common::live_mixture(seed);
        let sde = Sde::for_mixture(kind, &m);
        let exact = ExactScore::new(m.clone(), sde);
        let t_end = sde.sampling_t_end();
        let rng = scorelab::sim::rng::CounterRng::new(seed);
        let start: Vec<Vec2> = (0..128)
            .map(|i| sde.prior_sample(rng.normal2(0, i, 1)))
            .collect();
        let truth = reference(&exact, &sde, &start, t_end);
        let scale = m.data_std();
        for (s, order) in samplers {
            let mut curve = Vec::new();
            for nfe in [64, 128, 256, 512, 1024, 2048] {
                let mut xs = start.clone();
                let n = s.steps_for_nfe(nfe);
                let used = fewstep::run(s, &exact, &sde, &mut xs, 1.0, t_end, n, 1);
                assert_eq!(used, s.nfe(n));
                // The median distance, not the RMS: a particle near the ridge between two
                // components that a coarser run sends to the other one is off by their
                // distance, and one such particle (seed 15, VP) made DDIM's RMS fall 23× from
                // 1024 to 2048 evaluations.
                let mut d: Vec<f64> = xs.iter().zip(&truth).map(|(a, b)| (a - b).norm()).collect();
                d.sort_by(f64::total_cmp);
                curve.push((used as f64, d[d.len() / 2] / scale));
            }
            // The asymptotic range: the three largest NFE.
            let k = slope(&curve[3..]);
            eprintln!(
                "{} {}: median error / data spread by NFE {:?}, slope {k:.2} (order {order})",
                kind.name(),
                s.name(),
                curve
                    .iter()
                    .map(|(n, e)| format!("{n}: {e:.2e}"))
                    .collect::<Vec<_>>()
            );
            if (-k - order).abs() > 0.3 {
                failures.push(format!(
                    "{} {}: slope {k:.2}, expected −{order} ± 0.3 ({curve:?})",
                    kind.name(),
                    s.name()
                ));
            }
            let last = curve[curve.len() - 1].1;
            if last.is_nan() || last >= 1e-2 {
                failures.push(format!(
                    "{} {}: at 2048 evaluations the error is {last:.2e} of the data's spread",
                    kind.name(),
                    s.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// DDIM with η = 1 is ancestral sampling (DDPM's posterior step on VP): both get the
/// mixture's mode weights and every component's spread at the same step count.
#[test]
fn ddim_with_eta_one_samples_what_ancestral_sampling_samples() {
    let m = common::live_mixture(7);
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let exact = ExactScore::new(m.clone(), sde);
    let n = 6000;
    let truth = m.sample(4 * n, &mut StreamRng::new(77, 1));
    let rng = scorelab::sim::rng::CounterRng::new(9);
    let mut ddim: Vec<Vec2> = (0..n as u32)
        .map(|i| sde.prior_sample(rng.normal2(0, i, 1)))
        .collect();
    let t_end = sde.sampling_t_end();
    fewstep::run(
        FewStep::Ddim { eta: 1.0 },
        &exact,
        &sde,
        &mut ddim,
        1.0,
        t_end,
        500,
        3,
    );
    let mut cfg = SamplerConfig::defaults(SamplerKind::Ancestral, &m);
    cfg.n_steps = 500;
    cfg.seed = 5;
    let (ancestral, _) = sample(cfg, sde, n, &exact).expect("ancestral runs");
    let true_w = mode_weights(&m, &truth);
    for (name, xs) in [("ddim η=1", &ddim), ("ancestral", &ancestral)] {
        let w = mode_weights(&m, xs);
        let gap = w
            .iter()
            .zip(&true_w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // Each component's eigenvalue error beyond its sampling noise (3 standard errors of a
        // variance from n_k points, √(2/n_k)) is within 6%.
        let spreads = variance_errors_against(&m, xs, &truth);
        let counts = ModeCensus::of(&m, xs).counts;
        let worst = spreads
            .iter()
            .zip(&counts)
            .filter_map(|(e, &c)| Some(e.as_ref()? - 3.0 * (2.0 / c.max(1) as f64).sqrt()))
            .fold(f64::NEG_INFINITY, f64::max);
        eprintln!("{name}: weight gap {gap:.4}, worst spread error beyond noise {worst:.3}");
        assert!(gap < 0.03, "{name}: weights {w:.3?} vs {true_w:.3?}");
        assert!(
            worst < 0.06,
            "{name}: spread errors {spreads:?} ({counts:?} points)"
        );
    }
}

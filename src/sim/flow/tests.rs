use super::*;
use crate::sim::metrics::{mode_weights, variance_errors_against};
use crate::sim::mixture::{ComponentSpec, MixtureSpec};
use crate::sim::rng::StreamRng;
use crate::sim::test_mixtures::off_centre_anisotropic;

/// Held-out dragged mixtures: the off-centre anisotropic one and random ones far from the
/// origin (2–4 components, rotated, narrow and wide).
fn mixtures() -> Vec<GaussianMixture> {
    let mut v = vec![off_centre_anisotropic()];
    for seed in 0..2u32 {
        let mut r = StreamRng::new(900 + seed, 0);
        let k = 2 + (r.uniform() * 3.0) as usize;
        let centre = Vec2::new(40.0 * r.uniform() - 20.0, 40.0 * r.uniform() - 20.0);
        let components = (0..k)
            .map(|_| {
                let (a, b, th) = (
                    0.05 + 2.0 * r.uniform(),
                    0.05 + 2.0 * r.uniform(),
                    3.0 * r.uniform(),
                );
                let (c, s) = (th.cos(), th.sin());
                let (xx, yy, xy) = (
                    a * c * c + b * s * s,
                    a * s * s + b * c * c,
                    (a - b) * c * s,
                );
                ComponentSpec {
                    weight: 0.2 + r.uniform(),
                    mean: [
                        centre.x + 12.0 * r.uniform() - 6.0,
                        centre.y + 12.0 * r.uniform() - 6.0,
                    ],
                    cov: [[xx, xy], [xy, yy]],
                }
            })
            .collect();
        v.push(GaussianMixture::from_spec(&MixtureSpec { components }).expect("valid"));
    }
    v
}

/// The closed form against a Monte Carlo estimate of E[x₁ − x₀ | x_t = x]: given x_t = x and
/// x₁, x₀ = (x − t x₁)/(1 − t), so E[x₁ − x₀ | x_t = x] = E_{x₁~p}[w (x₁ − x₀)] / E[w] with w =
/// N(x₀; m, d² I) (self-normalised importance sampling; its standard error by the delta
/// method). 72 comparisons (3 mixtures × 3 t × 4 points × 2 coordinates): each within 3.9
/// standard errors (3 per comparison, Bonferroni-corrected to a 1% chance that a right
/// formula fails anywhere; the worst seen is 3.0), and the z-scores' mean square near 1 (the
/// errors are calibrated, not merely wide: a formula off by a few percent fails it).
#[test]
fn the_closed_form_velocity_is_the_monte_carlo_conditional_mean() {
    let n = 200_000;
    let (mut worst, mut zsq, mut count) = (0.0f64, 0.0, 0);
    for (mi, m) in mixtures().into_iter().enumerate() {
        let exact = ExactVelocity::new(m.clone());
        let path = exact.path;
        let mut rng = StreamRng::new(31 + mi as u32, 0);
        let x1s = m.sample(n, &mut rng);
        for t in [0.2, 0.5, 0.8] {
            let points = path.marginal(&m, t).sample(4, &mut rng);
            for x in points {
                let u = exact.velocity(x, t);
                let (mut sw, mut sv, mut terms) = (0.0, Vec2::zeros(), Vec::with_capacity(n));
                for x1 in &x1s {
                    let x0 = (x - t * x1) / (1.0 - t);
                    let w = (-(x0 - path.center()).norm_squared() / (2.0 * path.d * path.d)).exp();
                    sw += w;
                    sv += w * (x1 - x0);
                    terms.push((w, x1 - x0));
                }
                let est = sv / sw;
                for c in 0..2 {
                    let var: f64 = terms
                        .iter()
                        .map(|(w, v)| (w * (v[c] - est[c])).powi(2))
                        .sum::<f64>()
                        / (sw * sw);
                    let z = (u[c] - est[c]) / var.sqrt().max(1e-12);
                    worst = worst.max(z.abs());
                    zsq += z * z;
                    count += 1;
                    assert!(
                        z.abs() < 3.9,
                        "mixture {mi}, t {t}, x {x:?}: closed form {u:?} vs Monte Carlo {est:?} ({z:.2} standard errors)"
                    );
                }
            }
        }
    }
    let msq = zsq / count as f64;
    eprintln!(
        "velocity vs Monte Carlo: worst {worst:.2} standard errors, mean z² {msq:.2} over {count}"
    );
    assert!((0.5..1.6).contains(&msq), "mean z² {msq}");
}

/// u_t = (x − m)/t + ((1 − t) d²/t) ∇log p_t, with the score of the marginal computed by the
/// mixture code (`GaussianMixture::perturbed`), to 1e-9; and back.
#[test]
fn velocity_and_score_are_affine_in_each_other() {
    let mut worst = 0.0f64;
    for m in mixtures() {
        let exact = ExactVelocity::new(m.clone());
        let mut rng = StreamRng::new(5, 0);
        for t in [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99] {
            let pt = exact.path.marginal(&m, t);
            for x in pt.sample(50, &mut rng) {
                let u = exact.velocity(x, t);
                let s = pt.score(x);
                let from_score = velocity_from_score(&exact.path, x, t, s);
                let back = score_from_velocity(&exact.path, x, t, u);
                let e = (u - from_score).norm() / (1.0 + u.norm());
                let f = (s - back).norm() / (1.0 + s.norm()) * (1.0 - t) * t;
                worst = worst.max(e).max(f);
            }
        }
    }
    eprintln!("affine relation: worst relative gap {worst:.1e}");
    assert!(worst < 1e-9, "{worst}");
}

#[test]
fn the_exact_divergence_matches_finite_differences() {
    for m in mixtures() {
        let exact = ExactVelocity::new(m.clone());
        let mut rng = StreamRng::new(6, 0);
        for t in [0.0, 0.3, 0.8, 1.0] {
            for x in exact.path.marginal(&m, t).sample(10, &mut rng) {
                let (_, div) = exact.velocity_and_divergence(x, t);
                let h = 1e-5 * exact.path.d;
                let v = |p: Vec2| exact.velocity(p, t);
                let fd = (v(x + Vec2::new(h, 0.0)).x - v(x - Vec2::new(h, 0.0)).x
                    + v(x + Vec2::new(0.0, h)).y
                    - v(x - Vec2::new(0.0, h)).y)
                    / (2.0 * h);
                assert!(
                    (div - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                    "t {t}: {div} vs {fd}"
                );
            }
        }
    }
}

/// The endpoints: at t = 0 the velocity is E[x₁] − x = m − x, at t = 1 it is x − m.
#[test]
fn the_velocity_at_the_ends_is_the_straight_line_to_the_mean() {
    let m = off_centre_anisotropic();
    let exact = ExactVelocity::new(m);
    let x = Vec2::new(3.0, -7.0);
    let c = exact.path.center();
    assert!((exact.velocity(x, 0.0) - (c - x)).norm() < 1e-9);
    assert!((exact.velocity(x, 1.0) - (x - c)).norm() < 1e-9);
}

/// The exact flow carries the source onto the data: weights and every component's spread as
/// true samples', with every solver at a fine step.
#[test]
fn the_exact_flow_samples_the_mixture() {
    for m in mixtures() {
        let exact = ExactVelocity::new(m.clone());
        let truth = m.sample(8000, &mut StreamRng::new(77, 0));
        for solver in FlowSolver::ALL {
            let steps = match solver {
                FlowSolver::Euler => 400,
                FlowSolver::Heun => 100,
                _ => 50,
            };
            let xs = flow_sample(&exact, &exact.path, 4000, steps, solver, 3);
            let (w, tw) = (mode_weights(&m, &xs), mode_weights(&m, &truth));
            let gap = w
                .iter()
                .zip(&tw)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            let spread = variance_errors_against(&m, &xs, &truth)
                .into_iter()
                .flatten()
                .fold(0.0, f64::max);
            assert!(
                gap < 0.03 && spread < 0.15,
                "{}: weights {w:.3?} vs {tw:.3?}, spread {spread:.3}",
                solver.name()
            );
        }
    }
}

/// log p₁ by the instantaneous change of variables with the exact velocity is the mixture's
/// log density.
#[test]
fn the_flow_likelihood_with_the_exact_velocity_is_the_log_density() {
    for m in mixtures() {
        let exact = ExactVelocity::new(m.clone());
        let points = m.sample(20, &mut StreamRng::new(8, 0));
        let mae = points
            .iter()
            .map(|x| (flow_log_likelihood(&exact, &exact.path, *x, 400).0 - m.log_prob(*x)).abs())
            .sum::<f64>()
            / 20.0;
        assert!(mae < 0.02, "likelihood MAE {mae}");
    }
}

fn small_trainer(m: &GaussianMixture, batch: usize) -> FlowTrainer {
    let path = FlowPath::for_mixture(m);
    let cfg = NetConfig {
        width: 48,
        depth: 2,
        data_std: path.d,
        seed: 2,
        ..NetConfig::default()
    };
    let net = FlowNet::new(cfg, path).expect("valid");
    FlowTrainer::new(
        net,
        m.clone(),
        FlowTrainConfig {
            batch,
            seed: 4,
            ..FlowTrainConfig::default()
        },
    )
}

#[test]
fn the_cfm_gradient_matches_finite_differences() {
    let m = off_centre_anisotropic();
    let tr = small_trainer(&m, 64);
    let net = tr.net.clone();
    let rng = CounterRng::new(1);
    let (mut x0, mut x1, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..64 {
        let (a, s, z) = crate::sim::train::draw_sample(&m, &rng, 0.0, 0, i);
        x1.push(a);
        t.push(s);
        x0.push(net.path.source(z));
    }
    let loss = |n: &FlowNet, g: &mut Vec<f32>| {
        let mut ws = MlpWorkspace::default();
        let (mut inp, mut d) = (Vec::new(), Vec::new());
        n.cfm_part(&x0, &x1, &t, 1.0 / 64.0, g, &mut ws, &mut inp, &mut d)
    };
    let mut grad = vec![0.0f32; net.mlp.params.len()];
    loss(&net, &mut grad);
    for &i in &[0usize, 17, 300, net.mlp.params.len() - 1] {
        let h = 1e-2f32;
        let (mut a, mut b) = (net.clone(), net.clone());
        a.mlp.params[i] += h;
        b.mlp.params[i] -= h;
        let mut scratch = vec![0.0f32; grad.len()];
        let fd = (loss(&a, &mut scratch) - loss(&b, &mut scratch)) / (2.0 * f64::from(h));
        let g = f64::from(grad[i]);
        assert!(
            (g - fd).abs() < 2e-3 * (1.0 + fd.abs()),
            "param {i}: {g} vs {fd}"
        );
    }
}

#[test]
fn flow_training_is_bit_identical_on_any_number_of_threads() {
    let m = off_centre_anisotropic();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| {
                let mut tr = small_trainer(&m, 2 * crate::sim::train::PIECE + 33);
                let l: Vec<f64> = (0..4).map(|_| tr.step().expect("finite")).collect();
                (l, tr.net.mlp.params.clone())
            })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

/// CPU flow matching learns the velocity: its relative error E‖v_θ − u‖² / E‖u‖² falls from the
/// Gaussian fit's to below 0.1 (mean over t).
#[test]
fn flow_matching_learns_the_exact_velocity() {
    let m = off_centre_anisotropic();
    let exact = ExactVelocity::new(m.clone());
    let mut tr = small_trainer(&m, 256);
    let ts = velocity_error_times();
    let before = relative_velocity_error(&tr.ema_net(), &exact, &ts, 2000, 1);
    for _ in 0..1500 {
        tr.step().expect("finite");
    }
    let after = relative_velocity_error(&tr.ema_net(), &exact, &ts, 2000, 1);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    eprintln!("velocity error before {before:.3?} -> after {after:.3?}");
    assert!(
        mean(&after) < 0.1 && mean(&after) < 0.5 * mean(&before),
        "{after:?} vs {before:?}"
    );
}

/// One round of reflow straightens the paths: the gap between one Euler step and the RK4
/// endpoint shrinks, and few-step Euler on the reflowed model gets the weights closer than on
/// the model before reflow (small run; `scorelab flow` reports the full table).
#[test]
fn reflow_straightens_the_paths() {
    let m = off_centre_anisotropic();
    let x = experiment::FlowExperiment {
        net: NetConfig {
            width: 48,
            depth: 2,
            seed: 2,
            ..NetConfig::default()
        },
        steps: 1500,
        reflow_steps: 1500,
        couplings: 4000,
        batch: 256,
        euler_steps: vec![1, 4],
        n: 2000,
        seed: 3,
    };
    let r = experiment::run(&m, &x).expect("runs");
    for row in &r.rows {
        eprintln!(
            "{:>13} {} {:>2}: weights {:.3}, spread {:.3}, diverged {}",
            row.model, row.solver, row.steps, row.weight_error, row.spread_error, row.diverged
        );
    }
    eprintln!(
        "straightness (exact, fm, reflow) {:.3?}; velocity error {:.3?} -> reflow {:.3?}",
        r.straightness, r.velocity_error, r.velocity_error_reflow
    );
    let row = |model: &str, steps| {
        r.rows
            .iter()
            .find(|w| w.model == model && w.steps == steps && w.solver == "euler")
            .expect("row")
            .clone()
    };
    assert!(
        r.straightness[2] < 0.5 * r.straightness[1],
        "{:?}",
        r.straightness
    );
    assert!(row("reflow", 1).weight_error < row("flow matching", 1).weight_error);
}

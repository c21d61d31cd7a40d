//! Tier 1 (ARCHITECTURE.md §6): the CPU reference science against closed forms.
//! Tolerances are relative+absolute; statistical tests use fixed seeds and sample sizes
//! large enough that a wrong implementation fails.

use scorelab::sim::adam::AdamConfig;
use scorelab::sim::guidance::{inpaint_x2, GuidedScore, InpaintMethod};
use scorelab::sim::likelihood::{log_likelihood, LikelihoodConfig};
use scorelab::sim::metrics::*;
use scorelab::sim::mixture::{ComponentSpec, GaussianMixture, MixtureError, MixtureSpec};
use scorelab::sim::mlp::MlpWorkspace;
use scorelab::sim::model::{NetConfig, ScoreNet};
use scorelab::sim::rng::StreamRng;
use scorelab::sim::samplers::{sample, SamplerConfig, SamplerKind};
use scorelab::sim::score::{ExactScore, ScoreModel};
use scorelab::sim::sde::{Sde, SdeKind};
use scorelab::sim::train::{TrainConfig, Trainer};
use scorelab::sim::Vec2;

#[path = "../common/mod.rs"]
mod common;
mod conditional;
mod dragged;
mod fewstep;
mod live;
use common::dragged_mixture;

use common::preset;

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= (rel * (a.abs() + b.abs())).max(abs)
}

/// Anisotropic, rotated components (a rotation of 35° applied to diagonal covariances).
fn rotated_mixture() -> GaussianMixture {
    let rot = |deg: f64, l1: f64, l2: f64| {
        let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
        [
            [l1 * c * c + l2 * s * s, (l1 - l2) * c * s],
            [(l1 - l2) * c * s, l1 * s * s + l2 * c * c],
        ]
    };
    GaussianMixture::from_spec(&MixtureSpec {
        components: vec![
            ComponentSpec {
                weight: 0.6,
                mean: [-1.5, 0.5],
                cov: rot(35.0, 2.0, 0.1),
            },
            ComponentSpec {
                weight: 0.4,
                mean: [1.5, -0.5],
                cov: rot(-60.0, 0.8, 0.05),
            },
        ],
    })
    .unwrap()
}

#[test]
fn exact_perturbed_score_matches_finite_differences_for_every_sde() {
    let m = rotated_mixture();
    let points = [
        Vec2::new(0.3, -0.2),
        Vec2::new(-2.0, 1.0),
        Vec2::new(2.5, 0.1),
        Vec2::new(0.0, 3.0),
    ];
    for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
        let sde = Sde::new(kind, 8.0);
        let exact = ExactScore::new(m.clone(), sde);
        for &t in &[0.0, 0.01, 0.2, 0.5, 0.9] {
            let pt = exact.at(t);
            for &x in &points {
                let (s, div) = exact.score_and_divergence(x, t);
                let h = 1e-5;
                let mut fd_div = 0.0;
                for d in 0..2 {
                    let mut e = Vec2::zeros();
                    e[d] = h;
                    let fd = (pt.log_prob(x + e) - pt.log_prob(x - e)) / (2.0 * h);
                    assert!(
                        close(s[d], fd, 1e-5, 1e-6),
                        "{kind:?} t={t} x={x:?} d={d}: {} vs {fd}",
                        s[d]
                    );
                    fd_div += (exact.score(x + e, t)[d] - exact.score(x - e, t)[d]) / (2.0 * h);
                }
                assert!(
                    close(div, fd_div, 1e-4, 1e-4),
                    "{kind:?} t={t}: div {div} vs {fd_div}"
                );
            }
        }
    }
}

#[test]
fn mixture_validation_gives_clear_errors() {
    let ok = ComponentSpec {
        weight: 1.0,
        mean: [0.0, 0.0],
        cov: [[1.0, 0.0], [0.0, 1.0]],
    };
    let with = |f: &dyn Fn(&mut ComponentSpec)| {
        let mut c = ok.clone();
        f(&mut c);
        GaussianMixture::from_spec(&MixtureSpec {
            components: vec![c],
        })
    };
    assert!(with(&|_| {}).is_ok());
    assert!(matches!(
        GaussianMixture::from_spec(&MixtureSpec { components: vec![] }),
        Err(MixtureError::Empty)
    ));
    assert!(matches!(
        GaussianMixture::from_spec(&MixtureSpec {
            components: vec![ok.clone(); 33]
        }),
        Err(MixtureError::TooMany(33))
    ));
    assert!(matches!(
        with(&|c| c.weight = f64::NAN),
        Err(MixtureError::BadWeight { .. })
    ));
    assert!(matches!(
        with(&|c| c.weight = -1.0),
        Err(MixtureError::BadWeight { .. })
    ));
    assert!(matches!(
        with(&|c| c.weight = 0.0),
        Err(MixtureError::BadWeight { .. })
    ));
    assert!(matches!(
        with(&|c| c.mean[1] = f64::INFINITY),
        Err(MixtureError::NotFinite { .. })
    ));
    assert!(matches!(
        with(&|c| c.cov[0][1] = 0.5),
        Err(MixtureError::NotSymmetric { .. })
    ));
    assert!(matches!(
        with(&|c| c.cov = [[1.0, 2.0], [2.0, 1.0]]),
        Err(MixtureError::NotPositiveDefinite { .. })
    ));
    assert!(matches!(
        with(&|c| c.cov = [[1.0, 1.0], [1.0, 1.0]]),
        Err(MixtureError::NotPositiveDefinite { .. })
    ));
    assert!(matches!(
        with(&|c| c.cov = [[1e-8, 0.0], [0.0, 1.0]]),
        Err(MixtureError::NearlySingular { .. })
    ));
    assert!(matches!(
        with(&|c| c.cov = [[1e-3, 0.0], [0.0, 2e3]]),
        Err(MixtureError::NearlySingular { .. })
    ));
    let msg = with(&|c| c.cov = [[1.0, 2.0], [2.0, 1.0]])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("component 0") && msg.contains("positive definite"),
        "{msg}"
    );
    // Weights are normalised.
    let m = GaussianMixture::from_spec(&MixtureSpec {
        components: vec![
            ComponentSpec {
                weight: 3.0,
                ..ok.clone()
            },
            ComponentSpec {
                weight: 1.0,
                mean: [4.0, 0.0],
                ..ok
            },
        ],
    })
    .unwrap();
    assert!(close(m.weights()[0], 0.75, 0.0, 1e-12));
}

#[test]
fn mixture_sampling_matches_its_moments() {
    let m = rotated_mixture();
    let xs = m.sample(100_000, &mut StreamRng::new(1, 0));
    let mean: Vec2 = xs.iter().sum::<Vec2>() / xs.len() as f64;
    let cov = xs
        .iter()
        .map(|x| (x - mean) * (x - mean).transpose())
        .sum::<scorelab::sim::Mat2>()
        / xs.len() as f64;
    assert!((mean - m.mean()).norm() < 0.02, "{mean:?}");
    assert!(
        (cov - m.covariance()).norm() < 0.03 * m.covariance().norm(),
        "{cov:?}"
    );
}

// ------------------------------------------------------------------ Langevin: the NCSN point

/// Annealed Langevin with the exact score on `ncsn` recovers the weights (NCSN Fig. 3c);
/// settings: VE, σ from σ_max ≈ 18.1 (max pairwise distance) to 0.01 over L = 50 levels,
/// T = 100 steps each, ε = 2e-5, uniform start over [−8, 8]², 10 000 particles.
#[test]
fn annealed_langevin_recovers_ncsn_weights_plain_langevin_does_not() {
    let m = preset("ncsn");
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let exact = ExactScore::new(m.clone(), sde);
    let cfg = SamplerConfig::defaults(SamplerKind::AnnealedLangevin, &m);
    assert_eq!((cfg.n_levels, cfg.n_steps), (50, 100));
    let (xs, nfe) = sample(cfg, sde, 10_000, &exact).unwrap();
    assert_eq!(nfe, 5000);
    let w = mode_weights(&m, &xs);
    assert!(
        (w[0] - 0.2).abs() < 0.02 && (w[1] - 0.8).abs() < 0.02,
        "annealed weights {w:?}"
    );

    // Plain Langevin at σ_min = 0.01 (t = 0), α = 0.05, 1000 steps, same uniform start:
    // each chain stays in the basin it starts in, so the weights follow the start box (≈ ½, ½).
    let mut cfg = SamplerConfig::defaults(SamplerKind::Langevin, &m);
    assert_eq!((cfg.n_steps, cfg.alpha_last), (1000, 0.05));
    cfg.t_end = 1e-9;
    let (xs, _) = sample(cfg, sde, 10_000, &exact).unwrap();
    let w = mode_weights(&m, &xs);
    assert!(
        (w[1] - 0.8).abs() > 0.1,
        "plain Langevin unexpectedly right: {w:?}"
    );
    // ... yet each mode is sampled well (it is the weights that are wrong, not the shapes).
    let stats = component_stats(&m, &xs);
    assert!(
        (Vec2::from(stats[1].mean) - Vec2::new(5.0, 5.0)).norm() < 0.1,
        "{:?}",
        stats[1].mean
    );
}

// ------------------------------------------------------------------ SDE / ODE samplers

/// Sample statistics (per-component weight/mean/cov by true-posterior assignment, and the
/// overall mean/covariance) must match those of i.i.d. true samples.
fn assert_recovers(m: &GaussianMixture, xs: &[Vec2], label: &str) {
    let truth = m.sample(xs.len(), &mut StreamRng::new(99, 0));
    let (a, b) = (component_stats(m, xs), component_stats(m, &truth));
    for (k, (s, t)) in a.iter().zip(&b).enumerate() {
        assert!(
            (s.weight - t.weight).abs() < 0.03,
            "{label} comp {k} weight {} vs {}",
            s.weight,
            t.weight
        );
        let dm = (Vec2::from(s.mean) - Vec2::from(t.mean)).norm();
        assert!(
            dm < 0.12,
            "{label} comp {k} mean {:?} vs {:?}",
            s.mean,
            t.mean
        );
        let (sc, tc) = (
            scorelab::sim::Mat2::from(s.cov).transpose(),
            scorelab::sim::Mat2::from(t.cov).transpose(),
        );
        assert!(
            (sc - tc).norm() < 0.15 * tc.norm(),
            "{label} comp {k} cov {:?} vs {:?}",
            s.cov,
            t.cov
        );
    }
    let mean: Vec2 = xs.iter().sum::<Vec2>() / xs.len() as f64;
    assert!(
        (mean - m.mean()).norm() < 0.1,
        "{label} overall mean {mean:?} vs {:?}",
        m.mean()
    );
    assert!(
        !xs.iter().any(|x| !x.x.is_finite() || !x.y.is_finite()),
        "{label}: non-finite samples"
    );
}

#[test]
fn sde_and_ode_samplers_recover_the_mixture() {
    let m = preset("anisotropic3");
    let n = 4000;
    let cases: &[(SamplerKind, SdeKind)] = &[
        (SamplerKind::ReverseSde, SdeKind::Ve),
        (SamplerKind::ReverseSde, SdeKind::Vp),
        (SamplerKind::ReverseSde, SdeKind::Subvp),
        (SamplerKind::Ancestral, SdeKind::Ve),
        (SamplerKind::Ancestral, SdeKind::Vp),
        (SamplerKind::Pc, SdeKind::Ve),
        (SamplerKind::Pc, SdeKind::Vp),
        (SamplerKind::OdeEuler, SdeKind::Vp),
        (SamplerKind::OdeHeun, SdeKind::Ve),
        (SamplerKind::OdeRk4, SdeKind::Vp),
        (SamplerKind::OdeRk45, SdeKind::Vp),
        (SamplerKind::OdeRk45, SdeKind::Ve),
    ];
    for &(kind, sde_kind) in cases {
        let sde = Sde::at_origin(sde_kind, &m);
        let exact = ExactScore::new(m.clone(), sde);
        let cfg = SamplerConfig {
            seed: 7,
            ..SamplerConfig::defaults(kind, &m)
        };
        let (xs, nfe) = sample(cfg.clone(), sde, n, &exact).unwrap();
        let label = format!("{}/{}", kind.name(), sde_kind.name());
        assert_recovers(&m, &xs, &label);
        let expected_nfe = match kind {
            SamplerKind::Pc | SamplerKind::OdeHeun => 2 * cfg.n_steps as u64,
            SamplerKind::OdeRk4 => 4 * cfg.n_steps as u64,
            SamplerKind::OdeRk45 => nfe,
            _ => cfg.n_steps as u64,
        };
        assert_eq!(nfe, expected_nfe, "{label} NFE");
        eprintln!(
            "{label}: NFE {nfe}, mode-weight TV {:.4}",
            mode_weight_error(&m, &xs)
        );
    }
}

#[test]
fn ode_is_deterministic_and_sde_is_not() {
    let m = preset("ncsn");
    let sde = Sde::new(SdeKind::Vp, 1.0);
    let exact = ExactScore::new(m.clone(), sde);
    let run = |kind, seed| {
        let cfg = SamplerConfig {
            seed,
            n_steps: 50,
            ..SamplerConfig::defaults(kind, &m)
        };
        sample(cfg, sde, 16, &exact).unwrap().0
    };
    // Same start (same seed) → same ODE path; the SDE with the same start draws new noise per seed only.
    assert_eq!(run(SamplerKind::OdeRk4, 3), run(SamplerKind::OdeRk4, 3));
    assert_ne!(
        run(SamplerKind::ReverseSde, 3),
        run(SamplerKind::ReverseSde, 4)
    );
}

// ------------------------------------------------------------------ likelihood

#[test]
fn pf_ode_likelihood_with_exact_score_matches_log_density() {
    let m = preset("anisotropic3");
    let sde = Sde::new(SdeKind::Vp, 1.0);
    let exact = ExactScore::new(m.clone(), sde);
    let points = m.sample(200, &mut StreamRng::new(5, 0));
    let mut abs_err = 0.0;
    let mut nfe = 0;
    for x in &points {
        let l = log_likelihood(&exact, &sde, *x, LikelihoodConfig::default())
            .expect("ODE stays finite");
        abs_err += (l.log_prob - m.log_prob(*x)).abs();
        nfe += l.nfe;
    }
    let mae = abs_err / points.len() as f64;
    eprintln!(
        "PF-ODE likelihood MAE {mae:.5} nats, mean NFE {}",
        nfe / points.len() as u64
    );
    assert!(mae < 0.05, "MAE {mae}");
}

// ------------------------------------------------------------------ network

#[test]
fn dsm_loss_gradient_matches_finite_differences() {
    let m = preset("anisotropic3");
    for kind in [SdeKind::Ve, SdeKind::Vp] {
        let sde = Sde::at_origin(kind, &m);
        let cfg = NetConfig {
            width: 8,
            depth: 2,
            n_x_freqs: 2,
            data_std: m.data_std(),
            seed: 3,
            ..NetConfig::default()
        };
        let net = ScoreNet::new(cfg, sde).unwrap();
        let mut r = StreamRng::new(4, 0);
        let x0 = m.sample(16, &mut r);
        let t: Vec<f64> = (0..16).map(|i| 0.02 + 0.06 * f64::from(i)).collect();
        let z: Vec<Vec2> = (0..16).map(|_| r.normal2()).collect();
        let loss = |n: &ScoreNet, g: &mut Vec<f32>| {
            n.dsm_loss_and_grad(
                &x0,
                &t,
                &z,
                g,
                &mut MlpWorkspace::default(),
                &mut Vec::new(),
                &mut Vec::new(),
            )
        };
        let mut grad = vec![0.0f32; net.mlp.params.len()];
        loss(&net, &mut grad);
        let mut scratch = vec![0.0f32; grad.len()];
        let mut worst: f64 = 0.0;
        for i in (0..grad.len()).step_by(3) {
            let h = 3e-3;
            let mut p = net.clone();
            p.mlp.params[i] += h;
            let lp = loss(&p, &mut scratch);
            p.mlp.params[i] -= 2.0 * h;
            let lm = loss(&p, &mut scratch);
            let fd = (lp - lm) / (2.0 * f64::from(h));
            worst = worst.max((fd - f64::from(grad[i])).abs() / (1e-3 + fd.abs()));
        }
        assert!(worst < 3e-2, "{kind:?}: worst relative error {worst}");
    }
}

/// The stated step budget: VE SDE, width 64, depth 3, batch 256, Adam lr 2e-3, 6000 steps,
/// evaluated with the EMA weights at 10 noise levels (t = 0.05, 0.15, …, 0.95; 2000 points each).
fn train(name: &str) -> (GaussianMixture, Sde, ScoreNet, f64) {
    let m = preset(name);
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let net = ScoreNet::new(
        NetConfig {
            width: 64,
            depth: 3,
            data_std: m.data_std(),
            ..NetConfig::default()
        },
        sde,
    )
    .unwrap();
    let cfg = TrainConfig {
        batch: 256,
        adam: AdamConfig {
            lr: 2e-3,
            ..AdamConfig::default()
        },
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(net, m.clone(), cfg);
    for _ in 0..6000 {
        tr.step().unwrap();
    }
    let net = tr.ema_net();
    let f = relative_fisher(&net, &m, &sde, &fisher_levels(), 2000, 1);
    let mean = f.iter().sum::<f64>() / f.len() as f64;
    eprintln!("{name}: mean relative Fisher {mean:.4}, per level {f:.3?}");
    (m, sde, net, mean)
}

#[test]
fn cpu_training_reaches_the_fisher_bar_and_samples_the_right_weights() {
    for name in ["ncsn", "ring8"] {
        let (m, sde, net, fisher) = train(name);
        assert!(fisher < 0.1, "{name}: mean relative Fisher {fisher}");
        let cfg = SamplerConfig {
            seed: 11,
            ..SamplerConfig::defaults(SamplerKind::AnnealedLangevin, &m)
        };
        let (xs, _) = sample(cfg, sde, 4000, &net).unwrap();
        let w = mode_weights(&m, &xs);
        let worst = w
            .iter()
            .zip(m.weights())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{name}: trained-model annealed Langevin weights {w:.3?}");
        assert!(worst < 0.05, "{name}: weights {w:?} vs {:?}", m.weights());
    }
}

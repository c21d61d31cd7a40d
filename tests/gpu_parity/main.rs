//! Tier 3 (ARCHITECTURE.md §6): the WGSL engine on a real adapter (Mesa lavapipe in CI) against the CPU
//! reference. One-step element-wise parity per kernel (same counter RNG, so the same noise),
//! then long runs. A missing adapter FAILS these tests unless SCORELAB_SKIP_GPU_TESTS=1.

use std::sync::OnceLock;

use scorelab::gpu::context::GpuContext;
use scorelab::gpu::field::{relative_fisher as gpu_fisher, GpuField};
use scorelab::gpu::sampler::{GpuSampler, GpuScore};
use scorelab::gpu::trainer::GpuTrainer;
use scorelab::gpu::GpuNet;
use scorelab::sim::adam::AdamConfig;
use scorelab::sim::metrics::{fisher_levels, mode_weights, relative_fisher, ModeCensus};
use scorelab::sim::mixture::{presets, GaussianMixture};
use scorelab::sim::mlp::MlpWorkspace;
use scorelab::sim::model::{NetConfig, ScoreNet};
use scorelab::sim::rng::CounterRng;
use scorelab::sim::samplers::{Sampler, SamplerConfig, SamplerKind};
use scorelab::sim::score::{ExactScore, ScoreModel};
use scorelab::sim::sde::{Sde, SdeKind};
use scorelab::sim::train::{draw_sample, TrainConfig, Trainer};
use scorelab::sim::Vec2;

#[path = "../common/mod.rs"]
mod common;
mod convergence;
mod dragged;
mod fewstep;
mod flow;
mod runtime;
mod training;

fn ctx() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::headless() {
        Ok(c) => {
            eprintln!(
                "GPU adapter: {} ({:?}, {:?})",
                c.adapter_info.name, c.adapter_info.backend, c.adapter_info.device_type
            );
            Some(c)
        }
        Err(e) if std::env::var("SCORELAB_SKIP_GPU_TESTS").as_deref() == Ok("1") => {
            eprintln!("SCORELAB_SKIP_GPU_TESTS=1: skipping GPU tests ({e})");
            None
        }
        Err(e) => panic!(
            "{e}. GPU tests need an adapter; set SCORELAB_SKIP_GPU_TESTS=1 to skip them explicitly"
        ),
    })
    .as_ref()
}

use common::preset;

/// A small network with weights pushed away from the init, so G is far from zero.
fn test_net(sde: Sde, data_std: f64, n_x_freqs: usize) -> ScoreNet {
    let cfg = NetConfig {
        width: 24,
        depth: 2,
        n_x_freqs,
        data_std,
        seed: 9,
        ..NetConfig::default()
    };
    let mut n = ScoreNet::new(cfg, sde).unwrap();
    for (i, p) in n.mlp.params.iter_mut().enumerate() {
        *p += 0.08 * ((i as f32) * 0.61).sin();
    }
    n
}

/// A GPU trainer of a [`test_net`] on ncsn (VE at the origin) with `batch`; the network too.
fn ncsn_trainer(ctx: &GpuContext, batch: usize) -> (ScoreNet, GpuTrainer) {
    let m = preset("ncsn");
    let net = test_net(Sde::at_origin(SdeKind::Ve, &m), m.data_std(), 0);
    let tc = TrainConfig {
        batch,
        ..TrainConfig::default()
    };
    let tr = GpuTrainer::new(ctx, &net, &m, &tc).unwrap();
    (net, tr)
}

/// The GPU's fixed-step (200 RK4 steps from t = 1e-5) PF-ODE log-likelihood with the exact score.
fn gpu_exact_log_p(ctx: &GpuContext, m: &GaussianMixture, sde: Sde, points: &[Vec2]) -> Vec<f64> {
    scorelab::gpu::likelihood::log_likelihood(ctx, GpuScore::Exact, m, sde, points, 1e-5, 200)
        .unwrap()
}

/// |a − b| ≤ rel·(|a| + |b|) + abs, per component; returns the worst violation ratio.
/// The GPU sampler's (x, x_mean) equal the CPU's element-wise (f32 WGSL vs f64 `sim`: 1e-4
/// relative, 2e-5 of the largest |x| absolute).
fn assert_particles_match(ctx: &GpuContext, gpu: &GpuSampler, cpu: &Sampler, label: &str) {
    let state = gpu.read_state(ctx).unwrap();
    let gx: Vec<Vec2> = state.iter().map(|s| s.0).collect();
    let gm: Vec<Vec2> = state.iter().map(|s| s.1).collect();
    let scale = cpu.x.iter().map(|x| x.norm()).fold(1.0, f64::max);
    let r = worst_ratio(&gx, &cpu.x, 1e-4, 2e-5 * scale);
    assert!(r <= 1.0, "{label}: x parity ratio {r}");
    let r = worst_ratio(&gm, &cpu.x_mean, 1e-4, 2e-5 * scale);
    assert!(r <= 1.0, "{label}: x_mean parity ratio {r}");
}

fn worst_ratio(a: &[Vec2], b: &[Vec2], rel: f64, abs: f64) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let tol = rel * (x.norm() + y.norm()) + abs;
            (x - y).norm() / tol
        })
        .fold(0.0, f64::max)
}

#[test]
fn field_matches_cpu_scores_and_density() {
    let Some(ctx) = ctx() else { return };
    field_parity(ctx, &preset("anisotropic3"), Vec2::zeros(), |k, m| {
        Sde::at_origin(k, m)
    });
}

/// The field parity with anisotropic3 moved to (17, −9) and the SDE in its own frame.
#[test]
fn field_matches_cpu_in_a_moved_frame() {
    let Some(ctx) = ctx() else { return };
    let shift = Vec2::new(17.0, -9.0);
    let mut spec = presets::by_name("anisotropic3").unwrap();
    for c in &mut spec.components {
        c.mean = [c.mean[0] + shift.x, c.mean[1] + shift.y];
    }
    let m = GaussianMixture::from_spec(&spec).unwrap();
    field_parity(ctx, &m, shift, Sde::for_mixture);
}

fn field_parity(
    ctx: &GpuContext,
    m: &GaussianMixture,
    shift: Vec2,
    make_sde: impl Fn(SdeKind, &GaussianMixture) -> Sde,
) {
    let m = m.clone();
    for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
        let sde = make_sde(kind, &m);
        let net = test_net(sde, m.data_std(), 3);
        let gnet = GpuNet::upload(ctx, &net).unwrap();
        let (lo, hi) = (Vec2::new(-5.0, -4.0) + shift, Vec2::new(5.0, 4.0) + shift);
        let field = GpuField::new(ctx, GpuScore::Net(&gnet), &m, sde, (12, 10), lo, hi).unwrap();
        let exact = ExactScore::new(m.clone(), sde);
        for &t in &[0.02, 0.3, 0.9] {
            let cells = field.eval(ctx, t).unwrap();
            let pts: Vec<Vec2> = (0..120)
                .map(|c| {
                    let f = Vec2::new(
                        (f64::from(c % 12) + 0.5) / 12.0,
                        (f64::from(c / 12) + 0.5) / 10.0,
                    );
                    lo + (hi - lo).component_mul(&f)
                })
                .collect();
            let mut cpu_net = vec![Vec2::zeros(); pts.len()];
            net.score_batch(&pts, t, &mut cpu_net);
            let mut cpu_exact = vec![Vec2::zeros(); pts.len()];
            exact.score_batch(&pts, t, &mut cpu_exact);
            let gpu_net: Vec<Vec2> = cells.iter().map(|c| c.learned).collect();
            let gpu_exact: Vec<Vec2> = cells.iter().map(|c| c.exact).collect();
            let scale = cpu_exact.iter().map(|s| s.norm()).fold(0.0, f64::max);
            let r1 = worst_ratio(&gpu_net, &cpu_net, 1e-3, 1e-4 * scale);
            let r2 = worst_ratio(&gpu_exact, &cpu_exact, 1e-4, 1e-5 * scale);
            assert!(r1 <= 1.0, "{kind:?} t={t}: learned score parity ratio {r1}");
            assert!(r2 <= 1.0, "{kind:?} t={t}: exact score parity ratio {r2}");
            let pt = exact.at(t);
            for (c, x) in cells.iter().zip(&pts) {
                let lp = pt.log_prob(*x);
                assert!(
                    (c.log_p - lp).abs() <= 1e-4 * lp.abs() + 1e-3,
                    "{kind:?} t={t}: log p {} vs {lp}",
                    c.log_p
                );
            }
        }
    }
}

#[test]
fn one_training_step_matches_cpu_loss_gradient_and_adam() {
    let Some(ctx) = ctx() else { return };
    let m = preset("ring8");
    for kind in [SdeKind::Ve, SdeKind::Vp] {
        let sde = Sde::at_origin(kind, &m);
        let net = test_net(sde, m.data_std(), 2);
        let cfg = TrainConfig {
            batch: 64,
            seed: 5,
            adam: AdamConfig::default(),
            ..TrainConfig::default()
        };
        let mut cpu = Trainer::new(net.clone(), m.clone(), cfg.clone());
        cpu.step().unwrap();
        let (gpu, grad) = first_step_matches(ctx, &net, &m, &cfg, &format!("{kind:?}"));
        assert_eq!(gpu.steps(ctx).unwrap(), 1);
        let gmax = grad.iter().fold(0.0f32, |a, g| a.max(g.abs()));
        // Adam's first step is ±lr where the gradient is clearly non-zero: weights agree.
        let w = gpu.read_weights(ctx).unwrap();
        for (i, ((wg, wc), gc)) in w.iter().zip(&cpu.net.mlp.params).zip(&grad).enumerate() {
            if gc.abs() > 1e-3 * gmax {
                assert!(
                    (wg - wc).abs() <= 1e-5,
                    "{kind:?}: weight[{i}] GPU {wg} vs CPU {wc}"
                );
            }
        }
    }
}

fn sampler_cases() -> Vec<(SamplerKind, SdeKind)> {
    vec![
        (SamplerKind::Langevin, SdeKind::Ve),
        (SamplerKind::AnnealedLangevin, SdeKind::Ve),
        (SamplerKind::AnnealedLangevin, SdeKind::Vp),
        (SamplerKind::ReverseSde, SdeKind::Ve),
        (SamplerKind::ReverseSde, SdeKind::Vp),
        (SamplerKind::ReverseSde, SdeKind::Subvp),
        (SamplerKind::Ancestral, SdeKind::Ve),
        (SamplerKind::Ancestral, SdeKind::Vp),
        (SamplerKind::Ancestral, SdeKind::Subvp),
        (SamplerKind::Pc, SdeKind::Ve),
        (SamplerKind::Pc, SdeKind::Vp),
        (SamplerKind::OdeEuler, SdeKind::Vp),
        (SamplerKind::OdeHeun, SdeKind::Ve),
        (SamplerKind::OdeRk4, SdeKind::Subvp),
    ]
}

#[test]
fn every_sampler_step_matches_cpu_elementwise() {
    let Some(ctx) = ctx() else { return };
    sampler_parity(ctx, &preset("anisotropic3"), Sde::at_origin);
}

/// The same element-wise parity in a data frame far from the origin with d ≠ 1 (a dragged
/// mixture and `Sde::for_mixture`): the frame's centre and scale enter the drift, the VP
/// ancestral step, the exact perturbed mixture and the network's preconditioning, in WGSL as
/// on the CPU.
#[test]
fn every_sampler_step_matches_cpu_elementwise_in_a_moved_frame() {
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(12);
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    assert!(
        sde.center().norm() > 1.0 && (sde.scale - 1.0).abs() > 0.5,
        "{sde:?}"
    );
    sampler_parity(ctx, &m, Sde::for_mixture);
}

/// Guided sampling (the exact noisy classifier toward one component, `GuidedScore` on the
/// CPU) step by step: exact and learned base score, a VE and a VP sampler, an ODE, in a
/// moved frame. Tolerances as the unguided parity above (f32 WGSL vs f64 `sim`).
#[test]
fn guided_sampler_steps_match_cpu_elementwise() {
    use scorelab::sim::guidance::GuidedScore;
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(5);
    for (kind, sde_kind) in [
        (SamplerKind::AnnealedLangevin, SdeKind::Ve),
        (SamplerKind::ReverseSde, SdeKind::Vp),
        (SamplerKind::OdeRk4, SdeKind::Subvp),
    ] {
        let sde = Sde::for_mixture(sde_kind, &m);
        let net = test_net(sde, m.data_std(), 0);
        let gnet = GpuNet::upload(ctx, &net).unwrap();
        let exact = ExactScore::new(m.clone(), sde);
        for use_net in [false, true] {
            let (component, gamma) = (m.len() - 1, 2.5);
            let cfg = SamplerConfig {
                seed: 4,
                n_steps: 40,
                n_levels: 4,
                ..SamplerConfig::defaults(kind, &m)
            };
            let n = 200;
            let mut cpu = Sampler::new(cfg.clone(), sde, n).unwrap();
            let base: &dyn ScoreModel = if use_net { &net } else { &exact };
            let guided = GuidedScore {
                base,
                exact: exact.clone(),
                component,
                gamma,
            };
            let score = if use_net {
                GpuScore::Net(&gnet)
            } else {
                GpuScore::Exact
            };
            let mut gpu =
                GpuSampler::new_guided(ctx, score, Some((component, gamma)), &m, sde, &cfg, n)
                    .unwrap();
            let plain = GpuSampler::new(ctx, score, &m, sde, &cfg, n).unwrap();
            for step in 0..3 {
                cpu.step(&guided);
                gpu.step_n(ctx, 1);
                let state = gpu.read_state(ctx).unwrap();
                let gx: Vec<Vec2> = state.iter().map(|s| s.0).collect();
                let scale = cpu.x.iter().map(|x| x.norm()).fold(1.0, f64::max);
                let r = worst_ratio(&gx, &cpu.x, 1e-4, 2e-5 * scale);
                let label = format!(
                    "guided {}/{} net={use_net} step {step}",
                    kind.name(),
                    sde_kind.name()
                );
                assert!(r <= 1.0, "{label}: x parity ratio {r}");
            }
            // Guidance changes the particles (the test would pass trivially otherwise).
            let mut plain = plain;
            plain.step_n(ctx, 3);
            let px: Vec<Vec2> = plain.read_state(ctx).unwrap().iter().map(|s| s.0).collect();
            let moved = px
                .iter()
                .zip(&cpu.x)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            assert!(moved > 1e-3, "guidance moved the particles by {moved}");
        }
    }
    let err = GpuSampler::new_guided(
        ctx,
        GpuScore::Exact,
        Some((m.len(), 1.0)),
        &m,
        Sde::for_mixture(SdeKind::Ve, &m),
        &SamplerConfig::defaults(SamplerKind::AnnealedLangevin, &m),
        10,
    );
    assert!(
        err.is_err(),
        "guidance toward a component that does not exist is refused"
    );
}

/// MALA (`mala_step`) against `Sampler::with_mala`: the same proposals (same counter RNG),
/// the same accept decisions except where f32 and f64 round log u ≤ log a differently, and
/// the same acceptance rate over a long run; and MALA is not plain Langevin (control).
#[test]
fn mala_steps_match_cpu() {
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(3);
    for (kind, sde_kind) in [
        (SamplerKind::Langevin, SdeKind::Ve),
        (SamplerKind::AnnealedLangevin, SdeKind::Vp),
    ] {
        let sde = Sde::for_mixture(sde_kind, &m);
        let exact = ExactScore::new(m.clone(), sde);
        let cfg = SamplerConfig {
            seed: 5,
            n_steps: 60,
            n_levels: 4,
            alpha_last: 4.0 * scorelab::sim::samplers::narrowest_variance(&m),
            ..SamplerConfig::defaults(kind, &m)
        };
        let n = 400;
        let mut cpu = Sampler::new(cfg.clone(), sde, n)
            .unwrap()
            .with_mala(exact.clone());
        let mut gpu = GpuSampler::new(ctx, GpuScore::Exact, &m, sde, &cfg, n)
            .unwrap()
            .with_mala();
        let mut plain = GpuSampler::new(ctx, GpuScore::Exact, &m, sde, &cfg, n).unwrap();
        assert!(gpu.is_mala() && !plain.is_mala());
        let label = format!("MALA {}/{}", kind.name(), sde_kind.name());
        for step in 0..3 {
            cpu.step(&exact);
            gpu.step_n(ctx, 1);
            let state = gpu.read_state(ctx).unwrap();
            let scale = cpu.x.iter().map(|x| x.norm()).fold(1.0, f64::max);
            let off = state
                .iter()
                .zip(&cpu.x)
                .filter(|(g, c)| (g.0 - **c).norm() > 1e-4 * scale)
                .count();
            assert!(
                off <= n / 100,
                "{label} step {step}: {off} of {n} particles differ"
            );
            assert!(state.iter().all(|s| s.0 == s.1), "{label}: x_mean = x");
        }
        let (ga, gp) = gpu.acceptance(ctx).unwrap();
        let (ca, cp) = cpu.acceptance();
        assert_eq!(gp, cp, "{label}: proposals");
        assert!(
            ga.abs_diff(ca) <= cp / 100,
            "{label}: accepted {ga} vs {ca} of {cp}"
        );
        gpu.run(ctx);
        cpu.run(&exact);
        let (ga, gp) = gpu.acceptance(ctx).unwrap();
        let (ca, cp) = cpu.acceptance();
        let (rg, rc) = (ga as f64 / gp as f64, ca as f64 / cp as f64);
        eprintln!("{label}: acceptance GPU {rg:.4}, CPU {rc:.4}");
        assert!(
            (rg - rc).abs() < 0.02,
            "{label}: acceptance GPU {rg} vs CPU {rc}"
        );
        assert!(rc > 0.05 && rc < 0.999, "{label}: acceptance {rc}");
        plain.step_n(ctx, 3);
        let moved = plain
            .read_state(ctx)
            .unwrap()
            .iter()
            .zip(&cpu.x)
            .map(|(a, b)| (a.0 - b).norm())
            .fold(0.0, f64::max);
        assert!(
            moved > 1e-3,
            "{label}: MALA is not plain Langevin ({moved})"
        );
    }
}

fn sampler_parity(
    ctx: &GpuContext,
    m: &GaussianMixture,
    make_sde: impl Fn(SdeKind, &GaussianMixture) -> Sde,
) {
    let m = m.clone();
    for (kind, sde_kind) in sampler_cases() {
        let sde = make_sde(sde_kind, &m);
        let net = test_net(sde, m.data_std(), 0);
        let gnet = GpuNet::upload(ctx, &net).unwrap();
        for use_net in [false, true] {
            let cfg = SamplerConfig {
                seed: 3,
                n_steps: 40,
                n_levels: 4,
                ..SamplerConfig::defaults(kind, &m)
            };
            let n = 200;
            let mut cpu = Sampler::new(cfg.clone(), sde, n).unwrap();
            let score: GpuScore = if use_net {
                GpuScore::Net(&gnet)
            } else {
                GpuScore::Exact
            };
            let mut gpu = GpuSampler::new(ctx, score, &m, sde, &cfg, n).unwrap();
            for step in 0..3 {
                if use_net {
                    cpu.step(&net);
                } else {
                    cpu.step(&ExactScore::new(m.clone(), sde));
                }
                gpu.step_n(ctx, 1);
                let label = format!(
                    "{}/{} net={use_net} step {step}",
                    kind.name(),
                    sde_kind.name()
                );
                assert_particles_match(ctx, &gpu, &cpu, &label);
            }
            assert_eq!(gpu.nfe(), cpu.nfe(), "{}: NFE", kind.name());
        }
    }
}

#[test]
fn gpu_fisher_and_mode_histogram_match_cpu() {
    let Some(ctx) = ctx() else { return };
    let m = preset("ncsn");
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let net = test_net(sde, m.data_std(), 0);
    let gnet = GpuNet::upload(ctx, &net).unwrap();
    let levels = fisher_levels();
    let g = gpu_fisher(ctx, &gnet, &m, &levels, 500, 1).unwrap();
    let c = relative_fisher(&net, &m, &sde, &levels, 500, 1);
    for (a, b) in g.iter().zip(&c) {
        assert!(
            (a - b).abs() <= 1e-2 * b.abs() + 1e-6,
            "Fisher GPU {g:?} vs CPU {c:?}"
        );
    }
    let cfg = SamplerConfig {
        seed: 1,
        n_steps: 20,
        n_levels: 5,
        ..SamplerConfig::defaults(SamplerKind::AnnealedLangevin, &m)
    };
    let mut s = GpuSampler::new(ctx, GpuScore::Exact, &m, sde, &cfg, 3000).unwrap();
    s.run(ctx);
    let hist = s.mode_histogram(ctx, m.len()).unwrap();
    let cpu_w = mode_weights(&m, &s.samples(ctx).unwrap());
    for (h, w) in hist.iter().zip(&cpu_w) {
        assert!(
            (f64::from(*h) - w * 3000.0).abs() <= 2.0,
            "histogram {hist:?} vs CPU weights {cpu_w:?}"
        );
    }
}

#[test]
fn gpu_annealed_langevin_recovers_ncsn_weights_with_the_exact_score() {
    let Some(ctx) = ctx() else { return };
    let m = preset("ncsn");
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let cfg = SamplerConfig::defaults(SamplerKind::AnnealedLangevin, &m);
    let mut s = GpuSampler::new(ctx, GpuScore::Exact, &m, sde, &cfg, 10_000).unwrap();
    s.run(ctx);
    let hist = s.mode_histogram(ctx, 2).unwrap();
    let w: Vec<f64> = hist.iter().map(|&h| f64::from(h) / 10_000.0).collect();
    eprintln!("GPU annealed Langevin (exact score) weights {w:?}");
    assert!(
        (w[0] - 0.2).abs() < 0.02 && (w[1] - 0.8).abs() < 0.02,
        "{w:?}"
    );
}

/// Widths past one output per invocation (the cooperative tile's output slots 1–3: width 96
/// is ragged against the 64-invocation workgroup, 256 is the most the GPU engine takes):
/// the field's learned score, one training step's loss and gradient, and the likelihood's
/// network JVP against their CPU twins, with the tolerances of the width-24 tests.
#[test]
fn wide_networks_match_cpu() {
    let Some(ctx) = ctx() else { return };
    let m = preset("anisotropic3");
    for (width, kind) in [(96, SdeKind::Ve), (256, SdeKind::Vp)] {
        let sde = Sde::at_origin(kind, &m);
        let cfg = NetConfig {
            width,
            depth: 2,
            data_std: m.data_std(),
            seed: 4,
            ..NetConfig::default()
        };
        let mut net = ScoreNet::new(cfg, sde).unwrap();
        for (i, p) in net.mlp.params.iter_mut().enumerate() {
            *p += 0.02 * ((i as f32) * 0.61).sin();
        }
        let gnet = GpuNet::upload(ctx, &net).unwrap();
        // Field.
        let (lo, hi) = (Vec2::new(-5.0, -4.0), Vec2::new(5.0, 4.0));
        let field = GpuField::new(ctx, GpuScore::Net(&gnet), &m, sde, (6, 5), lo, hi).unwrap();
        let cells = field.eval(ctx, 0.3).unwrap();
        let pts = scorelab::engine::FieldRequest {
            lo,
            hi,
            n: (6, 5),
            t: 0.3,
        }
        .points();
        let mut cpu = vec![Vec2::zeros(); pts.len()];
        net.score_batch(&pts, 0.3, &mut cpu);
        let gpu: Vec<Vec2> = cells.iter().map(|c| c.learned).collect();
        let scale = cpu.iter().map(|s| s.norm()).fold(0.0, f64::max);
        let r = worst_ratio(&gpu, &cpu, 1e-3, 1e-4 * scale);
        assert!(r <= 1.0, "width {width}: learned score parity ratio {r}");
        // One training step: loss and gradient.
        let tc = TrainConfig {
            batch: 24,
            seed: 3,
            adam: AdamConfig::default(),
            ..TrainConfig::default()
        };
        first_step_matches(ctx, &net, &m, &tc, &format!("width {width}"));
        // The likelihood's network JVP (a few points, fixed-step RK4 on both).
        let what = format!("width {width}");
        net_likelihood_matches(ctx, (&net, &gnet), &m, sde, &pts[..5], 20, &what);
    }
}

/// Training step 0 on the GPU against the CPU's loss and gradient of the same batch (the
/// counter RNG draws it): the loss to 1e-4 relative, each gradient entry (from Adam's first
/// moment) to 2e-3 relative + 2e-5 of the largest. Returns the trainer and the CPU gradient.
fn first_step_matches(
    ctx: &GpuContext,
    net: &ScoreNet,
    m: &GaussianMixture,
    cfg: &TrainConfig,
    what: &str,
) -> (GpuTrainer, Vec<f32>) {
    let rng = CounterRng::new(cfg.seed);
    let (mut x0, mut t, mut z) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..cfg.batch as u32 {
        let (a, b, c) = draw_sample(m, &rng, cfg.t_eps, 0, i);
        x0.push(a);
        t.push(b);
        z.push(c);
    }
    let mut grad = vec![0.0f32; net.mlp.params.len()];
    let loss = net.dsm_loss_and_grad(
        &x0,
        &t,
        &z,
        &mut grad,
        &mut MlpWorkspace::default(),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    let gpu = GpuTrainer::new(ctx, net, m, cfg).unwrap();
    gpu.train(ctx, 1);
    let gl = f64::from(gpu.loss_at(ctx, 0).unwrap());
    assert!(
        (gl - loss).abs() <= 1e-4 * loss.abs(),
        "{what}: loss GPU {gl} vs CPU {loss}"
    );
    gradient_matches(ctx, &gpu, &grad, cfg.adam.beta1, what);
    (gpu, grad)
}

/// The GPU trainer's first step's gradient (from Adam's first moment) against the CPU's:
/// 2e-3 relative + 2e-5 of the largest (f32 sums in another order).
fn gradient_matches(ctx: &GpuContext, gpu: &GpuTrainer, grad: &[f32], beta1: f32, what: &str) {
    let m1 = gpu.read_first_moments(ctx).unwrap();
    let gmax = grad.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    for (i, (&mg, &gc)) in m1.iter().zip(grad).enumerate() {
        let gg = mg / (1.0 - beta1);
        assert!(
            (gg - gc).abs() <= 2e-3 * gc.abs() + 2e-5 * gmax,
            "{what}: grad[{i}] GPU {gg} vs CPU {gc}"
        );
    }
}

/// The network's fixed-step RK4 log-likelihood on the GPU against its CPU twin, point by point
/// (1e-3 relative + 0.01 nats).
fn net_likelihood_matches(
    ctx: &GpuContext,
    (net, gnet): (&ScoreNet, &GpuNet),
    m: &GaussianMixture,
    sde: Sde,
    points: &[Vec2],
    steps: u32,
    what: &str,
) {
    let gpu = scorelab::gpu::likelihood::log_likelihood(
        ctx,
        GpuScore::Net(gnet),
        m,
        sde,
        points,
        1e-5,
        steps,
    )
    .unwrap();
    for (g, x) in gpu.iter().zip(points) {
        let c = scorelab::sim::likelihood::log_likelihood_rk4(net, &sde, *x, 1e-5, steps as usize);
        assert!(
            (g - c).abs() <= 1e-3 * c.abs() + 1e-2,
            "{what}: net log p GPU {g} vs CPU {c} at {x:?}"
        );
    }
}

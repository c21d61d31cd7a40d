//! The short GPU convergence run: GPU training on a small config reaches the Fisher bar, and
//! the GPU sampler with the trained network gets the weights right.

use super::*;
use crate::training::ve_training;

/// One short convergence run on a small config (width 32, depth 2, batch 128, 8000 steps; the
/// old run trained width 64 × depth 3 × batch 256 × 6000 steps on two presets, ≈ 15× the
/// work; measured on lavapipe: mean Fisher 0.19 after 2000 steps, 0.095 after 6000, 0.0725
/// after 8000, 0.0586 after 10 000): the GPU-trained
/// EMA model reaches a Fisher bar and annealed Langevin on the GPU with it samples the right
/// weights (the end-to-end property of the old long run: ≈ 80 s of training and 60 s of sampling
/// on lavapipe).
#[test]
fn gpu_training_converges_on_a_small_config() {
    let Some(ctx) = ctx() else { return };
    let m = preset("ncsn");
    let (sde, net, cfg) = ve_training(&m, 32, 2, 128);
    let steps = SHORT_RUN_STEPS;
    let tr = GpuTrainer::new(ctx, &net, &m, &cfg).unwrap();
    let start = std::time::Instant::now();
    tr.train(ctx, steps);
    assert_eq!(tr.steps(ctx).unwrap(), steps);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(tr.diverged_at(ctx).unwrap(), None);
    let trained = tr.ema_net(ctx).unwrap();
    let f = relative_fisher(&trained, &m, &sde, &fisher_levels(), 2000, 1);
    let mean = f.iter().sum::<f64>() / f.len() as f64;
    eprintln!("ncsn: GPU-trained (small) mean relative Fisher {mean:.4} ({secs:.1} s for {steps} steps), per level {f:.3?}");
    assert!(mean < SHORT_RUN_FISHER_BAR, "mean relative Fisher {mean}");
    let gnet = GpuNet::upload(ctx, &trained).unwrap();
    // The page's own live annealed Langevin (State's default sampler A: L = 40, T = 50), as the
    // GPU engine runs it on the trained network. The recommended L = 50, T = 100 took 110 of
    // this test's 240 s on lavapipe; the WGSL steps on it are checked elementwise elsewhere.
    let scfg = scorelab::state::State::default().samplers[0].config(&m, 11);
    assert_eq!(scfg.kind, SamplerKind::AnnealedLangevin);
    let n = 1000;
    let mut s = GpuSampler::new(ctx, GpuScore::Net(&gnet), &m, sde, &scfg, n).unwrap();
    s.run(ctx);
    let hist = s.mode_histogram(ctx, m.len()).unwrap();
    let w: Vec<f64> = hist.iter().map(|&h| f64::from(h) / n as f64).collect();
    let worst = w
        .iter()
        .zip(m.weights())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("ncsn: GPU annealed Langevin with the GPU-trained model: weights {w:.3?}");
    assert!(worst < 0.05, "{w:?} vs {:?}", m.weights());
}

/// Budget and bar of the short GPU convergence run.
const SHORT_RUN_STEPS: u32 = 8_000;
const SHORT_RUN_FISHER_BAR: f64 = 0.1;

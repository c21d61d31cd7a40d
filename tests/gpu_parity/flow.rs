//! Flow matching on the GPU against `sim::flow` (issue 31): one conditional flow-matching step
//! (loss, gradient, Adam) and the velocity field, in a data frame far from the origin, then 200
//! steps' losses and weights side by side.

use super::*;
use scorelab::sim::flow::{FlowNet, FlowPath, FlowTrainConfig, FlowTrainer, VelocityModel};

fn flow_net(m: &GaussianMixture) -> FlowNet {
    let path = FlowPath::for_mixture(m);
    let cfg = NetConfig {
        width: 32,
        depth: 2,
        data_std: path.d,
        seed: 3,
        ..NetConfig::default()
    };
    FlowNet::new(cfg, path).unwrap()
}

/// The step's batch as the CPU trainer draws it, its loss and gradient.
fn cpu_first_step(net: &FlowNet, m: &GaussianMixture, cfg: &FlowTrainConfig) -> (f64, Vec<f32>) {
    let rng = CounterRng::new(cfg.seed);
    let (mut x0, mut x1, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..cfg.batch as u32 {
        let (a, s, z) = draw_sample(m, &rng, 0.0, 0, i);
        x1.push(a);
        t.push(s);
        x0.push(net.path.source(z));
    }
    let mut grad = vec![0.0f32; net.mlp.params.len()];
    let loss = net.cfm_part(
        &x0,
        &x1,
        &t,
        1.0 / cfg.batch as f64,
        &mut grad,
        &mut MlpWorkspace::default(),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    (loss, grad)
}

#[test]
fn one_flow_matching_step_matches_cpu_loss_gradient_and_adam() {
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(12);
    let net = flow_net(&m);
    assert!(
        net.path.center().norm() > 1.0 && (net.path.d - 1.0).abs() > 0.5,
        "{:?}",
        net.path
    );
    let cfg = FlowTrainConfig {
        batch: 64,
        seed: 5,
        ..FlowTrainConfig::default()
    };
    let (loss, grad) = cpu_first_step(&net, &m, &cfg);
    let gpu = GpuTrainer::new_flow(ctx, &net, &m, &cfg).unwrap();
    gpu.train(ctx, 1);
    let gl = f64::from(gpu.loss_at(ctx, 0).unwrap());
    assert!(
        (gl - loss).abs() <= 1e-4 * loss.abs(),
        "loss GPU {gl} vs CPU {loss}"
    );
    gradient_matches(ctx, &gpu, &grad, cfg.adam.beta1, "flow matching");
    let gmax = grad.iter().fold(0.0f32, |a, g| a.max(g.abs()));
    let mut cpu = FlowTrainer::new(net.clone(), m.clone(), cfg.clone());
    cpu.step().unwrap();
    let w = gpu.read_weights(ctx).unwrap();
    for (i, ((wg, wc), gc)) in w.iter().zip(&cpu.net.mlp.params).zip(&grad).enumerate() {
        if gc.abs() > 1e-3 * gmax {
            assert!((wg - wc).abs() <= 1e-5, "weight[{i}] GPU {wg} vs CPU {wc}");
        }
    }
    eprintln!("flow matching step: loss GPU {gl:.6} vs CPU {loss:.6}");
}

/// `steps` steps of `gpu` against `cpu` from the same start: the worst relative gap of the
/// losses step by step, and of the EMA weights at the end (relative to the largest), with the
/// CPU's losses and the GPU's network.
fn trained_side_by_side(
    ctx: &GpuContext,
    gpu: &GpuTrainer,
    cpu: &mut FlowTrainer,
    steps: u32,
) -> (f64, f32, Vec<f64>, FlowNet) {
    gpu.train(ctx, steps);
    let first = cpu.steps();
    let cpu_losses: Vec<f64> = (0..steps).map(|_| cpu.step().unwrap()).collect();
    let gpu_losses = gpu.read_losses(ctx, first, steps).unwrap();
    let worst_loss = cpu_losses
        .iter()
        .zip(&gpu_losses)
        .map(|(c, g)| (f64::from(*g) - c).abs() / c.abs())
        .fold(0.0, f64::max);
    let trained = gpu.ema_flow_net(ctx, &cpu.net).unwrap();
    let cpu_net = cpu.ema_net();
    let wmax = cpu_net
        .mlp
        .params
        .iter()
        .fold(0.0f32, |a, w| a.max(w.abs()));
    let worst_w = trained
        .mlp
        .params
        .iter()
        .zip(&cpu_net.mlp.params)
        .map(|(a, b)| (a - b).abs() / wmax)
        .fold(0.0f32, f32::max);
    (worst_loss, worst_w, cpu_losses, trained)
}

/// The learned velocity on a grid at several flow times, GPU field against the CPU network,
/// after 200 steps trained on each side from the same start (losses step by step, weights at
/// the end).
#[test]
fn flow_training_and_the_velocity_field_match_cpu() {
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(12);
    let net = flow_net(&m);
    let cfg = FlowTrainConfig {
        batch: 128,
        seed: 9,
        ..FlowTrainConfig::default()
    };
    let gpu = GpuTrainer::new_flow(ctx, &net, &m, &cfg).unwrap();
    let mut cpu = FlowTrainer::new(net.clone(), m.clone(), cfg.clone());
    let (worst_loss, worst_w, _, trained) = trained_side_by_side(ctx, &gpu, &mut cpu, 200);
    eprintln!("200 flow-matching steps: worst relative loss gap {worst_loss:.2e}, weights {worst_w:.2e} of the largest");
    assert!(
        worst_loss < 1e-3 && worst_w < 1e-3,
        "losses {worst_loss:.2e}, weights {worst_w:.2e}"
    );
    // The field of the GPU-trained network, on the GPU, against the same weights on the CPU.
    let gnet = GpuNet::upload_flow(ctx, &trained, &m).unwrap();
    let (lo, hi) = m.bounding_box();
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let field = GpuField::new(ctx, GpuScore::Net(&gnet), &m, sde, (12, 12), lo, hi).unwrap();
    let mut worst = 0.0f64;
    for t in [0.0, 0.3, 0.7, 0.99] {
        let cells = field.eval(ctx, t).unwrap();
        for (k, c) in cells.iter().enumerate() {
            let f = Vec2::new((k % 12) as f64 + 0.5, (k / 12) as f64 + 0.5) / 12.0;
            let x = lo + (hi - lo).component_mul(&f);
            let v = trained.velocity(x, t);
            worst = worst.max((c.learned - v).norm() / (1.0 + v.norm()));
        }
    }
    eprintln!("velocity field GPU vs CPU: worst relative gap {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
    // The samplers refuse a velocity network (no GPU flow sampler yet).
    let cfg = SamplerConfig::defaults(SamplerKind::OdeEuler, &m);
    assert!(GpuSampler::new(ctx, GpuScore::Net(&gnet), &m, sde, &cfg, 16).is_err());
}

/// Reflow on the GPU: the same couplings (x₀, x̂₁) from a partly trained model, picked by the
/// same draw, give the CPU trainer's losses and weights step by step; `None` goes back to
/// independent draws, and a score network refuses couplings.
#[test]
fn reflow_couplings_train_as_on_the_cpu() {
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(7);
    let net = flow_net(&m);
    let cfg = FlowTrainConfig {
        batch: 96,
        seed: 4,
        ..FlowTrainConfig::default()
    };
    let mut first = FlowTrainer::new(net.clone(), m.clone(), cfg.clone());
    for _ in 0..100 {
        first.step().unwrap();
    }
    let couplings = scorelab::sim::flow::reflow_couplings(&first.ema_net(), &net.path, 300, 8, 13);
    let steps = 60;
    let mut gpu = GpuTrainer::new_flow(ctx, &net, &m, &cfg).unwrap();
    gpu.set_couplings(ctx, Some(&couplings)).unwrap();
    let mut cpu = FlowTrainer::new(net.clone(), m.clone(), cfg.clone());
    cpu.set_couplings(Some(couplings.clone()));
    let (worst_loss, worst_w, cpu_losses, _) = trained_side_by_side(ctx, &gpu, &mut cpu, steps);
    // The loss on couplings differs from the loss on independent draws (else the pairs were
    // not read): the first step's, from the same weights.
    let mut plain = FlowTrainer::new(net.clone(), m.clone(), cfg.clone());
    let plain_loss = plain.step().unwrap();
    eprintln!(
        "reflow {steps} steps GPU vs CPU: worst relative loss gap {worst_loss:.2e}, weights {worst_w:.2e}; first loss {:.4} on couplings, {plain_loss:.4} on independent draws",
        cpu_losses[0]
    );
    assert!(
        worst_loss < 1e-3 && worst_w < 1e-3,
        "losses {worst_loss:.2e}, weights {worst_w:.2e}"
    );
    assert!(
        (cpu_losses[0] - plain_loss).abs() > 0.05 * plain_loss,
        "{} vs {plain_loss}",
        cpu_losses[0]
    );
    // Back to independent draws: the next step's loss is the plain trainer's at that step.
    gpu.set_couplings(ctx, None).unwrap();
    gpu.train(ctx, 1);
    cpu.set_couplings(None);
    let c = cpu.step().unwrap();
    let g = f64::from(gpu.loss_at(ctx, steps).unwrap());
    assert!(
        (g - c).abs() <= 1e-3 * c.abs(),
        "after reflow: GPU {g} vs CPU {c}"
    );
    // A score network's trainer refuses couplings.
    let score = ScoreNet::new(
        NetConfig {
            width: 16,
            depth: 1,
            ..NetConfig::default()
        },
        Sde::for_mixture(SdeKind::Vp, &m),
    )
    .unwrap();
    let mut st = GpuTrainer::new(ctx, &score, &m, &Default::default()).unwrap();
    assert!(st.set_couplings(ctx, Some(&couplings)).is_err());
}

/// The app's GPU engine trains flow matching on its WGSL trainer while the frame request asks
/// for it (beside the score network, in the same submit), reports the EMA weights through an
/// async readback, starts reflow once the first round has trained `REFLOW_AFTER` steps (the
/// first round's velocity learned by then), and drops it when the request stops.
#[test]
fn the_gpu_engine_trains_flow_matching_and_starts_reflow() {
    use scorelab::engine::flow::{FlowJob, REFLOW_AFTER};
    use scorelab::engine::{Engine, FrameRequest, GpuEngine, TrainSettings};
    use scorelab::sim::flow::{relative_velocity_error, velocity_error_times, ExactVelocity};
    use std::time::Duration;
    if ctx().is_none() {
        return;
    }
    let m = common::dragged_mixture(5);
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let ctx = GpuContext::headless().unwrap();
    // A small score network beside it: the test is about the flow network's steps.
    let settings = TrainSettings {
        width: 16,
        depth: 1,
        batch: 64,
        ..TrainSettings::small()
    };
    let mut e = GpuEngine::new(ctx, &m, sde, &settings, None).unwrap();
    let ask = FrameRequest {
        flow: Some(FlowJob { reflow: true }),
        ..FrameRequest::default()
    };
    let (mut reports, mut first_round) = (0, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let reflowed = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no reflow after {reports} reports"
        );
        let out = e.frame(Duration::from_millis(8), true, &ask);
        assert!(out.warning.is_none(), "{:?}", out.warning);
        let Some(r) = out.flow else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        reports += 1;
        assert!(
            r.engine == "GPU" && r.loss.is_finite(),
            "{} {}",
            r.engine,
            r.loss
        );
        if r.reflowing {
            break r;
        }
        assert!(
            r.steps < REFLOW_AFTER + 400,
            "reflow did not start: {}",
            r.steps
        );
        first_round = Some(r);
    };
    let first = first_round.expect("reports of the first round");
    let exact = ExactVelocity::new(m.clone());
    let errors = relative_velocity_error(&first.net, &exact, &velocity_error_times(), 400, 1);
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    eprintln!(
        "GPU engine flow matching: {reports} reports, velocity error {mean:.4} at step {}, reflow from step {}",
        first.steps, reflowed.steps
    );
    assert!(mean < 0.1, "{errors:?}");
    assert!(reflowed.steps >= REFLOW_AFTER, "{}", reflowed.steps);
    // Not asked: nothing reported; asked again: a fresh network.
    for _ in 0..5 {
        assert!(e
            .frame(Duration::from_millis(8), true, &FrameRequest::default())
            .flow
            .is_none());
    }
    let ask = FrameRequest {
        flow: Some(FlowJob::default()),
        ..FrameRequest::default()
    };
    let again = loop {
        assert!(std::time::Instant::now() < deadline + Duration::from_secs(30));
        if let Some(r) = e.frame(Duration::from_millis(8), true, &ask).flow {
            break r;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(
        !again.reflowing && again.steps < reflowed.steps,
        "{}",
        again.steps
    );
}

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
    let steps = 200;
    let gpu = GpuTrainer::new_flow(ctx, &net, &m, &cfg).unwrap();
    gpu.train(ctx, steps);
    let mut cpu = FlowTrainer::new(net.clone(), m.clone(), cfg.clone());
    let cpu_losses: Vec<f64> = (0..steps).map(|_| cpu.step().unwrap()).collect();
    let gpu_losses = gpu.read_losses(ctx, 0, steps).unwrap();
    let worst_loss = cpu_losses
        .iter()
        .zip(&gpu_losses)
        .map(|(c, g)| (f64::from(*g) - c).abs() / c.abs())
        .fold(0.0, f64::max);
    let trained = gpu.ema_flow_net(ctx, &net).unwrap();
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

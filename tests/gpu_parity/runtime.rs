//! Likelihood, readbacks, the divergence guard, the reference SGEMM and the app engine's frame.

use super::*;

#[test]
fn gpu_pf_ode_likelihood_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    let m = preset("anisotropic3");
    let points = m.sample(200, &mut scorelab::sim::rng::StreamRng::new(5, 0));
    for kind in [SdeKind::Vp, SdeKind::Ve] {
        let sde = Sde::at_origin(kind, &m);
        let exact = ExactScore::new(m.clone(), sde);
        // Exact score: the fixed-step GPU integral against the true log-density and against
        // the CPU's adaptive RK45 (the acceptance bar of the CPU test: MAE < 0.05 nats).
        let gpu = gpu_exact_log_p(ctx, &m, sde, &points);
        let mut mae_truth = 0.0;
        let mut mae_rk45 = 0.0;
        for (g, x) in gpu.iter().zip(&points) {
            mae_truth += (g - m.log_prob(*x)).abs() / points.len() as f64;
            let l = scorelab::sim::likelihood::log_likelihood(&exact, &sde, *x, Default::default())
                .unwrap();
            mae_rk45 += (g - l.log_prob).abs() / points.len() as f64;
        }
        eprintln!("{kind:?}: GPU likelihood (exact score) MAE vs truth {mae_truth:.4}, vs CPU RK45 {mae_rk45:.4}");
        assert!(
            mae_truth < 0.05 && mae_rk45 < 0.05,
            "{kind:?}: {mae_truth} {mae_rk45}"
        );
        // Network: GPU vs its CPU twin (same fixed-step RK4), point by point.
        let net = test_net(sde, m.data_std(), 2);
        let gnet = GpuNet::upload(ctx, &net).unwrap();
        let what = format!("{kind:?}");
        net_likelihood_matches(ctx, (&net, &gnet), &m, sde, &points[..40], 100, &what);
    }
}

#[test]
fn async_readback_delivers_without_blocking_waits() {
    let Some(ctx) = ctx() else { return };
    let (_, tr) = ncsn_trainer(ctx, 32);
    tr.train(ctx, 3);
    let rb = scorelab::gpu::context::AsyncReadback::start(ctx, &tr.net.weights, 0, 16);
    let mut polls = 0;
    let bytes = loop {
        if let Some(r) = rb.try_take(ctx) {
            break r.unwrap();
        }
        polls += 1;
        assert!(polls < 1_000_000, "readback never completed");
        std::thread::yield_now();
    };
    let w: Vec<f32> = bytemuck::cast_slice(&bytes).to_vec();
    assert_eq!(w, tr.read_weights(ctx).unwrap()[..4].to_vec());
}

#[test]
fn divergence_guard_keeps_the_last_good_weights() {
    let Some(ctx) = ctx() else { return };
    let (net, tr) = ncsn_trainer(ctx, 64);
    let last_bias = net.mlp.params.len() - 1;
    // A NaN output bias makes the loss NaN (only the gradients of output 1 are NaN, so a
    // per-weight check alone would still move output 0's weights: the whole step must be refused).
    ctx.queue.write_buffer(
        &tr.net.weights,
        (last_bias * 4) as u64,
        bytemuck::bytes_of(&f32::NAN),
    );
    tr.train(ctx, 3);
    assert_eq!(
        tr.diverged_at(ctx).unwrap(),
        Some(0),
        "the flag names the first bad step"
    );
    let w = tr.read_weights(ctx).unwrap();
    let ema = tr.read_ema(ctx).unwrap();
    for i in 0..last_bias {
        assert_eq!(w[i], net.mlp.params[i], "weight {i} changed by a NaN step");
        assert_eq!(ema[i], net.mlp.params[i], "EMA {i} changed by a NaN step");
    }
    // Repair, clear the flag: training resumes and stays finite.
    ctx.queue.write_buffer(
        &tr.net.weights,
        (last_bias * 4) as u64,
        bytemuck::bytes_of(&net.mlp.params[last_bias]),
    );
    tr.clear_divergence(ctx);
    tr.train(ctx, 2);
    assert_eq!(tr.diverged_at(ctx).unwrap(), None);
    let w = tr.read_weights(ctx).unwrap();
    assert!(w.iter().all(|v| v.is_finite()));
    assert!(
        w.iter().zip(&net.mlp.params).any(|(a, b)| a != b),
        "training resumed"
    );
}

/// The benchmarks' reference SGEMM equals the CPU product, including ragged edges (sizes that
/// are not multiples of the 64×64 tile or the 16-wide K slice).
#[test]
fn tiled_matmul_matches_cpu() {
    use scorelab::gpu::matmul::{matmul_reference, GpuMatmul};
    let Some(ctx) = ctx() else { return };
    let rng = CounterRng::new(3);
    for &(m, n, k) in &[
        (100u32, 70u32, 37u32),
        (128, 128, 64),
        (1, 1, 1),
        (65, 129, 17),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| rng.normal2(0, i, 0).x as f32).collect();
        let b: Vec<f32> = (0..k * n).map(|i| rng.normal2(1, i, 0).y as f32).collect();
        let mm = GpuMatmul::new(ctx, m, n, k, &a, &b).unwrap();
        mm.run(ctx, 2);
        let got = mm.read(ctx).unwrap();
        let want = matmul_reference(m as usize, n as usize, k as usize, &a, &b);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs() / (1.0 + w.abs()))
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{m}×{k}·{k}×{n}: worst relative error {worst}"
        );
    }
    assert!(GpuMatmul::new(ctx, 0, 4, 4, &[], &[]).is_err());
    assert!(GpuMatmul::new(ctx, 2, 2, 2, &[1.0; 3], &[1.0; 4]).is_err());
}

/// The app's GPU engine gives the GPU one command buffer per frame that does work: training
/// steps, the EMA copy, the live sampler and its trail copy, the field, the learned density,
/// the Fisher probe and all their readbacks ride on a single submit (the frame budget in
/// docs/BENCHMARKS.md reports submits per frame). Training still advances through those
/// readbacks, and field, density and Fisher results come back.
#[test]
fn gpu_engine_frame_is_one_submit() {
    use scorelab::engine::{
        Engine, FieldRequest, FrameRequest, GpuEngine, LiveSampling, TrainSettings,
    };
    use std::time::Duration;
    if ctx().is_none() {
        return;
    }
    let m = preset("ncsn");
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let mut e = GpuEngine::new(
        GpuContext::headless().unwrap(),
        &m,
        sde,
        &TrainSettings::small(),
        None,
    )
    .unwrap();
    e.set_sampling(0, &LiveSampling::small());
    let grid = FieldRequest {
        lo: Vec2::new(-2.0, -2.0),
        hi: Vec2::new(8.0, 8.0),
        n: (6, 6),
        t: 0.2,
    };
    let req = FrameRequest {
        field: Some(grid),
        density: Some(FieldRequest { n: (4, 4), ..grid }),
        flow: None,
    };
    let (mut encoded, mut steps, mut fields, mut densities, mut fishers) = (0, 0, 0, 0, 0);
    // Bounded by wall time, not frame count: with the other GPU tests sharing lavapipe's
    // threads on 2 cores, one frame's readbacks took longer than 2000 × 2 ms here.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while std::time::Instant::now() < deadline {
        let before = e.gpu_counts().unwrap();
        let out = e.frame(Duration::from_millis(8), true, &req);
        let d = e.gpu_counts().unwrap() - before;
        if d.dispatches > 0 {
            encoded += 1;
            assert_eq!(d.submits, 1, "frame {encoded}: {d:?}");
        } else {
            assert_eq!(
                d.submits, 0,
                "a frame that encodes nothing submits nothing: {d:?}"
            );
        }
        steps = steps.max(out.steps.unwrap_or(0));
        fields += usize::from(out.field.is_some());
        densities += usize::from(out.density.is_some());
        fishers += usize::from(out.fisher.is_some());
        if encoded >= 12 && fields > 0 && densities > 0 && fishers > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(encoded >= 12, "only {encoded} frames did GPU work");
    assert!(steps >= 8, "training did not advance: {steps} steps");
    assert!(
        fields > 0 && densities > 0 && fishers > 0,
        "results came back: field {fields}, density {densities}, fisher {fishers}"
    );
}

/// Training on the CPU engine (in its thread) and sampling on the GPU engine (issue 17's split
/// engine, which the probe picks where each is measured faster at its part): the CPU engine
/// trains, the GPU engine runs the live sampler, and the GPU engine's network is the CPU
/// engine's EMA network, bit for bit, after a sync with training paused.
#[test]
fn split_engine_trains_on_the_cpu_and_samples_on_the_gpu() {
    use scorelab::engine::split::SplitEngine;
    use scorelab::engine::{self, Engine, FrameRequest, LiveSampling, TrainSettings};
    use std::time::{Duration, Instant};
    if ctx().is_none() {
        return;
    }
    let m = preset("ncsn");
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let st = TrainSettings::small();
    let cpu = engine::start(None, &m, sde, &st, None, engine::remote::THREAD).unwrap();
    assert_eq!(cpu.runs_on().name(), "thread");
    let gpu = GpuContext::headless().unwrap();
    let gpu = engine::start(Some(gpu), &m, sde, &st, None, None).unwrap();
    let init = engine_model(
        engine::start(None, &m, sde, &st, None, None)
            .unwrap()
            .as_mut(),
    );
    let mut split = SplitEngine::new(cpu, gpu);
    split.set_sampling(
        0,
        &LiveSampling {
            n: 256,
            ..LiveSampling::small()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut steps, mut sampled) = (0, false);
    while Instant::now() < deadline && (steps < 100 || split.syncs < 2 || !sampled) {
        let out = split.frame(Duration::from_millis(8), true, &FrameRequest::default());
        steps = out.steps.unwrap_or(steps);
        sampled |= out.sampler[0].is_some_and(|s| s.step > 0);
        assert!(
            out.model.is_none(),
            "internal syncs are not the app's model"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(steps >= 100, "the CPU engine trains ({steps} steps)");
    assert!(split.syncs >= 2, "{} syncs", split.syncs);
    assert!(sampled, "the GPU engine runs the live sampler");
    assert_eq!(split.sampling_label(), Some("GPU"));
    assert!(split.gpu_counts().is_some_and(|c| c.dispatches > 0));
    split.sync_now();
    let synced = split.syncs;
    while Instant::now() < deadline && split.syncs == synced {
        split.frame(Duration::from_millis(8), false, &FrameRequest::default());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(split.syncs > synced, "a sync while training is paused");
    let (train, sample) = split.parts_mut();
    let trained = engine_model(train);
    let sampling = engine_model(sample);
    assert_ne!(
        trained.mlp.params, init.mlp.params,
        "training moved the network"
    );
    assert_eq!(trained.mlp.params, sampling.mlp.params);
}

/// The network an engine reports (frames with training paused, at most 60 s).
fn engine_model(e: &mut dyn scorelab::engine::Engine) -> scorelab::sim::model::ScoreNet {
    use scorelab::engine::FrameRequest;
    use std::time::{Duration, Instant};
    e.request_model();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(m) = e
            .frame(Duration::from_millis(8), false, &FrameRequest::default())
            .model
        {
            return m;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no network reported");
}

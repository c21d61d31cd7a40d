//! Benchmarks behind `cargo xtask bench`: training steps/s of the GPU engine and the CPU
//! `sim` for the same MLP, sampler network evaluations per second by particle count, the
//! tiled reference SGEMM, and dispatch/submit counts. Wall-clock medians over repeated runs;
//! native GPU timings wait for the queue (a blocking readback) so they cover the work, not
//! just the encoding. The set-up and the CPU timers are shared with the in-browser
//! benchmark (`web_bench.rs`), which waits for the GPU asynchronously instead.

use web_time::Instant;

#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::{
    context::GpuContext,
    matmul::GpuMatmul,
    sampler::{GpuSampler, GpuScore},
    trainer::GpuTrainer,
    GpuNet,
};
use crate::sim::mixture::{presets, GaussianMixture};
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::samplers::{Sampler, SamplerConfig, SamplerKind};
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::train::{TrainConfig, Trainer};
#[cfg(not(target_arch = "wasm32"))]
use serde_json::{json, Value};

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn setup(width: usize) -> (GaussianMixture, Sde, ScoreNet) {
    let spec = presets::by_name("ring8").unwrap_or_else(|| unreachable!("ring8 is a preset"));
    let m =
        GaussianMixture::from_spec(&spec).unwrap_or_else(|e| unreachable!("ring8 is valid: {e}"));
    let sde = Sde::at_origin(SdeKind::Ve, &m);
    let net = ScoreNet::new(
        NetConfig {
            width,
            depth: 3,
            data_std: m.data_std(),
            ..NetConfig::default()
        },
        sde,
    )
    .unwrap_or_else(|e| unreachable!("bench config is valid: {e}"));
    (m, sde, net)
}

#[cfg(not(target_arch = "wasm32"))]
/// Seconds per training step (median of `reps` timings of `steps` steps).
pub fn time_gpu_train(
    ctx: &GpuContext,
    width: usize,
    batch: usize,
    steps: u32,
    reps: usize,
) -> Result<f64, String> {
    let (m, _, net) = setup(width);
    let cfg = TrainConfig {
        batch,
        ..TrainConfig::default()
    };
    let tr = GpuTrainer::new(ctx, &net, &m, &cfg).map_err(|e| e.to_string())?;
    tr.train(ctx, 1);
    tr.steps(ctx).map_err(|e| e.to_string())?; // warm-up and wait
    let mut t = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        tr.train(ctx, steps);
        tr.steps(ctx).map_err(|e| e.to_string())?;
        t.push(start.elapsed().as_secs_f64() / f64::from(steps));
    }
    Ok(median(t))
}

pub fn time_cpu_train(width: usize, batch: usize, steps: u32, reps: usize) -> f64 {
    let (m, _, net) = setup(width);
    let cfg = TrainConfig {
        batch,
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(net, m, cfg);
    let _ = tr.step();
    let mut t = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        for _ in 0..steps {
            let _ = tr.step();
        }
        t.push(start.elapsed().as_secs_f64() / f64::from(steps));
    }
    median(t)
}

pub fn sampler_cfg(m: &GaussianMixture) -> SamplerConfig {
    SamplerConfig {
        n_steps: 1000,
        ..SamplerConfig::defaults(SamplerKind::AnnealedLangevin, m)
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Seconds per annealed-Langevin step with the network.
pub fn time_gpu_sampler(
    ctx: &GpuContext,
    width: usize,
    n: usize,
    steps: usize,
) -> Result<f64, String> {
    let (m, sde, net) = setup(width);
    let gnet = GpuNet::upload(ctx, &net).map_err(|e| e.to_string())?;
    let mut s = GpuSampler::new(ctx, GpuScore::Net(&gnet), &m, sde, &sampler_cfg(&m), n)
        .map_err(|e| e.to_string())?;
    s.step_n(ctx, 1);
    s.mode_histogram(ctx, 1).map_err(|e| e.to_string())?;
    let start = Instant::now();
    s.step_n(ctx, steps);
    s.mode_histogram(ctx, 1).map_err(|e| e.to_string())?; // waits for the steps
    Ok(start.elapsed().as_secs_f64() / steps as f64)
}

/// The benchmark sampler on particles `index`/`count` of a run of `n` (a pool worker's shard,
/// `engine::pool`), one step taken (the first step allocates).
pub fn shard_sampler(width: usize, n: usize, index: usize, count: usize) -> (Sampler, ScoreNet) {
    let (m, sde, net) = setup(width);
    let part = crate::engine::Shard { index, count }.range(n);
    let mut s = Sampler::new_shard(sampler_cfg(&m), sde, n, part)
        .unwrap_or_else(|e| unreachable!("bench sampler config is valid: {e}"));
    s.step(&net);
    (s, net)
}

pub fn time_cpu_sampler(width: usize, n: usize, steps: usize) -> f64 {
    let (m, sde, net) = setup(width);
    let mut s = Sampler::new(sampler_cfg(&m), sde, n)
        .unwrap_or_else(|e| unreachable!("bench sampler config is valid: {e}"));
    s.step(&net);
    let start = Instant::now();
    for _ in 0..steps {
        s.step(&net);
    }
    start.elapsed().as_secs_f64() / steps as f64
}

/// GFLOP/s of the CPU GEMM crate (`sim::gemm`, matrixmultiply) on a square n × n product:
/// on one thread, and with the rows split over `sim::par`'s threads (as the sampler splits
/// its particles). Median of `reps`.
pub fn time_cpu_sgemm(n: usize, all_cores: bool, reps: usize) -> f64 {
    use crate::sim::gemm::{sgemm, View};
    let rng = crate::sim::rng::CounterRng::new(1);
    let a: Vec<f32> = (0..n * n)
        .map(|i| rng.normal2(0, i as u32, 0).x as f32)
        .collect();
    let b: Vec<f32> = (0..n * n)
        .map(|i| rng.normal2(1, i as u32, 0).x as f32)
        .collect();
    let mut c = vec![0.0f32; n * n];
    let parts = if all_cores {
        crate::sim::par::threads()
    } else {
        1
    };
    let rows = n.div_ceil(parts);
    let once = |c: &mut Vec<f32>| {
        let mut blocks: Vec<(usize, &mut [f32])> = c.chunks_mut(rows * n).enumerate().collect();
        crate::sim::par::map(&mut blocks, |(i, cb)| {
            let m = cb.len() / n;
            let ab = &a[*i * rows * n..(*i * rows + m) * n];
            sgemm(m, n, n, View::rows(ab, n), View::rows(&b, n), 0.0, cb, n);
        });
    };
    once(&mut c);
    let mut t = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        once(&mut c);
        t.push(start.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / median(t) / 1e9
}

#[cfg(not(target_arch = "wasm32"))]
/// GFLOP/s of the tiled reference SGEMM, (m×k)·(k×n), median of `reps` timings of `per` multiplies.
pub fn time_gpu_matmul(
    ctx: &GpuContext,
    m: u32,
    n: u32,
    k: u32,
    per: u32,
    reps: usize,
) -> Result<f64, String> {
    let rng = crate::sim::rng::CounterRng::new(1);
    let a: Vec<f32> = (0..m * k).map(|i| rng.normal2(0, i, 0).x as f32).collect();
    let b: Vec<f32> = (0..k * n).map(|i| rng.normal2(1, i, 0).x as f32).collect();
    let mm = GpuMatmul::new(ctx, m, n, k, &a, &b).map_err(|e| e.to_string())?;
    mm.run(ctx, 1);
    ctx.read_f32(mm.output(), 0, 1).map_err(|e| e.to_string())?;
    let mut t = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        mm.run(ctx, per);
        ctx.read_f32(mm.output(), 0, 1).map_err(|e| e.to_string())?; // waits for the queue
        t.push(start.elapsed().as_secs_f64() / f64::from(per));
    }
    Ok(mm.flops() / median(t) / 1e9)
}

#[cfg(not(target_arch = "wasm32"))]
/// The long GPU convergence run that used to be a test (issue 13 moved it here; the tests
/// check GPU training against the CPU trainer step for step, and the CPU trainer's convergence
/// on this budget): VE, width 64, depth 3, batch 256, lr 2e-3, 6000 steps on ncsn and ring8;
/// the EMA model's mean relative Fisher divergence (bar 0.1) and the wall time.
fn gpu_convergence(ctx: &GpuContext) -> Result<Vec<Value>, String> {
    use crate::sim::adam::AdamConfig;
    use crate::sim::metrics::{fisher_levels, relative_fisher};
    let mut out = Vec::new();
    for name in ["ncsn", "ring8"] {
        let spec = presets::by_name(name).ok_or_else(|| format!("no preset {name}"))?;
        let m = GaussianMixture::from_spec(&spec).map_err(|e| e.to_string())?;
        let sde = Sde::for_mixture(SdeKind::Ve, &m);
        let cfg = NetConfig {
            width: 64,
            depth: 3,
            data_std: m.data_std(),
            ..NetConfig::default()
        };
        let net = ScoreNet::new(cfg, sde).map_err(|e| e.to_string())?;
        let tc = TrainConfig {
            batch: 256,
            adam: AdamConfig {
                lr: 2e-3,
                ..AdamConfig::default()
            },
            ..TrainConfig::default()
        };
        let tr = GpuTrainer::new(ctx, &net, &m, &tc).map_err(|e| e.to_string())?;
        let start = Instant::now();
        tr.train(ctx, 6000);
        let steps = tr.steps(ctx).map_err(|e| e.to_string())?;
        let secs = start.elapsed().as_secs_f64();
        let trained = tr.ema_net(ctx).map_err(|e| e.to_string())?;
        let f = relative_fisher(&trained, &m, &sde, &fisher_levels(), 2000, 1);
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        eprintln!("bench: GPU convergence {name}: mean relative Fisher {mean:.4} after {steps} steps ({secs:.1} s)");
        out.push(json!({
            "preset": name, "steps": steps, "seconds": secs,
            "fisher_mean": mean, "fisher_per_level": f, "bar": 0.1, "meets_bar": mean < 0.1,
        }));
    }
    Ok(out)
}

#[cfg(not(target_arch = "wasm32"))]
/// Run the benchmark; `quick` shrinks it to a smoke test (CI).
pub fn run(quick: bool) -> Result<Value, String> {
    let ctx = GpuContext::headless().map_err(|e| e.to_string())?;
    let info = &ctx.adapter_info;
    let mut train = Vec::new();
    let (widths, batches): (&[usize], &[usize]) = if quick {
        (&[64], &[1024])
    } else {
        (&[64, 128], &[1024, 4096])
    };
    for &width in widths {
        for &batch in batches {
            let work = (width * width * batch) as f64;
            let steps = if quick {
                2
            } else {
                ((2e9 / (work * 6.0)) as u32).clamp(3, 50)
            };
            let reps = if quick { 1 } else { 3 };
            let gpu = time_gpu_train(&ctx, width, batch, steps, reps)?;
            let cpu = time_cpu_train(width, batch, steps, reps);
            let (_, _, net) = setup(width);
            let flops = 3.0 * net.mlp.shape.flops_per_forward() as f64 * batch as f64;
            eprintln!(
                "bench: train width {width} batch {batch}: GPU {:.1} steps/s, CPU {:.1} steps/s",
                1.0 / gpu,
                1.0 / cpu
            );
            train.push(json!({
                "width": width, "depth": 3, "batch": batch,
                "gpu_steps_per_s": 1.0 / gpu, "cpu_steps_per_s": 1.0 / cpu,
                "gpu_gflops": flops / gpu / 1e9, "cpu_gflops": flops / cpu / 1e9,
            }));
        }
    }
    let mut sample = Vec::new();
    let counts: &[usize] = if quick {
        &[10_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &width in widths {
        for &n in counts {
            let steps = if quick {
                1
            } else {
                (2_000_000 / (n * width / 64)).clamp(1, 50)
            };
            let gpu = time_gpu_sampler(&ctx, width, n, steps)?;
            let cpu = time_cpu_sampler(width, n, steps.min(5));
            let (_, _, net) = setup(width);
            let flops = net.mlp.shape.flops_per_forward() as f64 * n as f64;
            eprintln!(
                "bench: sampler width {width} n {n}: GPU {:.3} s/step, CPU {:.3} s/step",
                gpu, cpu
            );
            sample.push(json!({
                "width": width, "particles": n,
                "gpu_nfe_per_s": n as f64 / gpu, "cpu_nfe_per_s": n as f64 / cpu,
                "gpu_step_ms": gpu * 1e3, "cpu_step_ms": cpu * 1e3,
                "gpu_gflops": flops / gpu / 1e9, "cpu_gflops": flops / cpu / 1e9,
            }));
        }
    }
    // The reference: the MLP's hidden layer as a dense SGEMM (rows = batch/particles,
    // width × width), on the same adapter.
    let mut matmul = Vec::new();
    for &width in widths {
        let rows = if quick { 4096 } else { 65536 };
        let w = width as u32;
        let per = if quick {
            2
        } else {
            ((4e9 / (2.0 * f64::from(rows) * f64::from(w * w))) as u32).clamp(2, 50)
        };
        let gflops = time_gpu_matmul(&ctx, rows, w, w, per, if quick { 1 } else { 3 })?;
        eprintln!("bench: tiled matmul {rows}×{w}·{w}×{w}: {gflops:.2} GFLOP/s");
        matmul.push(json!({ "m": rows, "n": w, "k": w, "gpu_gflops": gflops }));
    }
    let n = if quick { 256 } else { 1024 };
    let cpu_sgemm = json!({
        "n": n,
        "threads": crate::sim::par::threads(),
        "one_thread_gflops": time_cpu_sgemm(n, false, if quick { 1 } else { 5 }),
        "all_threads_gflops": time_cpu_sgemm(n, true, if quick { 1 } else { 5 }),
    });
    eprintln!("bench: CPU sgemm {n}×{n}: {cpu_sgemm}");
    let convergence = if quick {
        Vec::new()
    } else {
        gpu_convergence(&ctx)?
    };
    Ok(json!({
        "adapter": { "name": info.name, "backend": format!("{:?}", info.backend), "device_type": format!("{:?}", info.device_type), "driver": info.driver, "driver_info": info.driver_info },
        "dispatches": {
            "per_training_step": GpuTrainer::DISPATCHES_PER_STEP,
            "per_sampler_step": 1,
            "per_pc_step": 4,
            "training_steps_per_submit": 64,
            "sampler_steps_per_submit": 64,
            "readbacks_in_step_loops": 0,
        },
        "train": train,
        "sample": sample,
        "matmul": matmul,
        "cpu_sgemm": cpu_sgemm,
        "convergence": convergence,
        "quick": quick,
    }))
}

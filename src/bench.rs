//! Benchmarks behind `cargo xtask bench` (native only): training steps/s of the GPU engine
//! and the CPU `sim` for the same MLP, sampler network evaluations per second by particle
//! count, and dispatch/submit counts. Wall-clock medians over repeated runs; GPU timings
//! wait for the queue (a blocking readback) so they cover the work, not just the encoding.

use serde_json::{json, Value};
use web_time::Instant;

use crate::gpu::context::GpuContext;
use crate::gpu::sampler::{GpuSampler, GpuScore};
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::GpuNet;
use crate::sim::adam::AdamConfig;
use crate::sim::mixture::{presets, GaussianMixture};
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::samplers::{Sampler, SamplerConfig, SamplerKind};
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::train::{TrainConfig, Trainer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn setup(width: usize) -> (GaussianMixture, Sde, ScoreNet) {
    let spec = presets::by_name("ring8").unwrap_or_else(|| unreachable!("ring8 is a preset"));
    let m =
        GaussianMixture::from_spec(&spec).unwrap_or_else(|e| unreachable!("ring8 is valid: {e}"));
    let sde = Sde::new(SdeKind::Ve, m.max_pairwise_distance());
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

/// Seconds per training step (median of `reps` timings of `steps` steps).
fn time_gpu_train(
    ctx: &GpuContext,
    width: usize,
    batch: usize,
    steps: u32,
    reps: usize,
) -> Result<f64, String> {
    let (m, _, net) = setup(width);
    let cfg = TrainConfig {
        batch,
        adam: AdamConfig::default(),
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

fn time_cpu_train(width: usize, batch: usize, steps: u32, reps: usize) -> f64 {
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

fn sampler_cfg(m: &GaussianMixture) -> SamplerConfig {
    SamplerConfig {
        n_steps: 1000,
        ..SamplerConfig::defaults(SamplerKind::AnnealedLangevin, m)
    }
}

/// Seconds per annealed-Langevin step with the network.
fn time_gpu_sampler(ctx: &GpuContext, width: usize, n: usize, steps: usize) -> Result<f64, String> {
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

fn time_cpu_sampler(width: usize, n: usize, steps: usize) -> f64 {
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
        "quick": quick,
    }))
}

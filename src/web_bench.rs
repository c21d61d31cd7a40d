//! The in-browser benchmark API (`web/bench.html`, driven by `cargo xtask bench --browser`).
//!
//! The page loads the same wasm as the app (the app does not start on a page whose `<body>`
//! has `data-scorelab-bench`), opens its own WebGPU device and times the engine's kernels next
//! to TensorFlow.js in the same browser session. Every GPU timing ends with an awaited
//! readback (`map_async` of the last buffer written), so it covers the GPU work, not only the
//! encoding. The CPU timers are the native benchmark's (`crate::bench`), on wasm's one thread.

use std::cell::RefCell;
use std::rc::Rc;

use eframe::egui_wgpu::wgpu;
use wasm_bindgen::prelude::*;
use web_time::Instant;

use crate::bench::{sampler_cfg, setup, shard_sampler, time_cpu_sampler, time_cpu_train};
use crate::gpu::context::{check_adapter, GpuContext};
use crate::gpu::matmul::GpuMatmul;
use crate::gpu::sampler::{GpuSampler, GpuScore};
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::GpuNet;
use crate::sim::train::TrainConfig;

thread_local! {
    static CTX: RefCell<Option<Rc<GpuContext>>> = const { RefCell::new(None) };
    /// A pool worker's shard of the benchmark sampler (`web/worker.js?bench=1`).
    static SHARD: RefCell<Option<(crate::sim::samplers::Sampler, crate::sim::model::ScoreNet)>> =
        const { RefCell::new(None) };
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

fn context() -> Result<Rc<GpuContext>, JsValue> {
    CTX.with(|c| c.borrow().clone())
        .ok_or_else(|| js_err("call bench_gpu_init() first"))
}

/// Wait until the GPU has finished everything submitted so far: copy 4 bytes of `buffer`
/// into a staging buffer and await its mapping.
async fn wait_for(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<(), JsValue> {
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("web_bench::wait"),
        size: 4,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("web_bench::wait"),
        });
    enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, 4);
    ctx.submit(enc);
    let mut resolve = None;
    let promise = js_sys::Promise::new(&mut |res, _rej| resolve = Some(res));
    let resolve = resolve.ok_or_else(|| js_err("Promise did not run its executor"))?;
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = resolve.call1(&JsValue::NULL, &JsValue::from_bool(r.is_ok()));
    });
    let ok = wasm_bindgen_futures::JsFuture::from(promise).await?;
    if ok.as_bool() != Some(true) {
        return Err(js_err("mapping the readback buffer failed"));
    }
    staging.unmap();
    Ok(())
}

/// Open a WebGPU device for the benchmarks; resolves to the adapter description (JSON).
#[wasm_bindgen]
pub async fn bench_gpu_init() -> Result<String, JsValue> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::BROWSER_WEBGPU;
    let instance = wgpu::Instance::new(desc);
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| js_err(format!("no WebGPU adapter: {e}")))?;
    check_adapter(&adapter).map_err(js_err)?;
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("scorelab bench"),
            required_limits: adapter.limits(),
            ..Default::default()
        })
        .await
        .map_err(js_err)?;
    let info = adapter.get_info();
    let description = serde_json::json!({
        "name": info.name, "backend": format!("{:?}", info.backend),
        "device_type": format!("{:?}", info.device_type), "driver": info.driver,
        "driver_info": info.driver_info,
    })
    .to_string();
    let ctx = GpuContext::new(device, queue, info);
    CTX.with(|c| *c.borrow_mut() = Some(Rc::new(ctx)));
    Ok(description)
}

/// Floating-point operations of one forward pass of the benchmark MLP (per sample).
#[wasm_bindgen]
pub fn bench_forward_flops(width: usize) -> f64 {
    setup(width).2.mlp.shape.flops_per_forward() as f64
}

/// Seconds per training step of the WebGPU engine (`steps` steps after one warm-up step).
#[wasm_bindgen]
pub async fn bench_gpu_train(width: usize, batch: usize, steps: u32) -> Result<f64, JsValue> {
    let ctx = context()?;
    let (m, _, net) = setup(width);
    let cfg = TrainConfig {
        batch,
        ..TrainConfig::default()
    };
    let tr = GpuTrainer::new(&ctx, &net, &m, &cfg).map_err(js_err)?;
    tr.train(&ctx, 1);
    wait_for(&ctx, tr.counters_buffer()).await?;
    let start = Instant::now();
    tr.train(&ctx, steps.max(1));
    wait_for(&ctx, tr.counters_buffer()).await?;
    Ok(start.elapsed().as_secs_f64() / f64::from(steps.max(1)))
}

/// Seconds per annealed-Langevin step (with the network) of `n` particles on WebGPU.
#[wasm_bindgen]
pub async fn bench_gpu_sample(width: usize, n: usize, steps: usize) -> Result<f64, JsValue> {
    let ctx = context()?;
    let (m, sde, net) = setup(width);
    let gnet = GpuNet::upload(&ctx, &net).map_err(js_err)?;
    let mut s = GpuSampler::new(&ctx, GpuScore::Net(&gnet), &m, sde, &sampler_cfg(&m), n)
        .map_err(js_err)?;
    s.step_n(&ctx, 1);
    wait_for(&ctx, s.particles_buffer()).await?;
    let start = Instant::now();
    let done = s.step_n(&ctx, steps.max(1));
    wait_for(&ctx, s.particles_buffer()).await?;
    Ok(start.elapsed().as_secs_f64() / done.max(1) as f64)
}

/// GFLOP/s of the tiled reference SGEMM (m×k)·(k×n) on WebGPU, `reps` multiplies timed.
#[wasm_bindgen]
pub async fn bench_gpu_matmul(m: u32, n: u32, k: u32, reps: u32) -> Result<f64, JsValue> {
    let ctx = context()?;
    let rng = crate::sim::rng::CounterRng::new(1);
    let a: Vec<f32> = (0..m * k).map(|i| rng.normal2(0, i, 0).x as f32).collect();
    let b: Vec<f32> = (0..k * n).map(|i| rng.normal2(1, i, 0).x as f32).collect();
    let mm = GpuMatmul::new(&ctx, m, n, k, &a, &b).map_err(js_err)?;
    mm.run(&ctx, 1);
    wait_for(&ctx, mm.output()).await?;
    let start = Instant::now();
    mm.run(&ctx, reps.max(1));
    wait_for(&ctx, mm.output()).await?;
    Ok(mm.flops() * f64::from(reps.max(1)) / start.elapsed().as_secs_f64() / 1e9)
}

/// Seconds per training step of the CPU engine (the `sim` reference compiled to wasm).
#[wasm_bindgen]
pub fn bench_cpu_train(width: usize, batch: usize, steps: u32) -> f64 {
    time_cpu_train(width, batch, steps.max(1), 1)
}

/// Seconds per annealed-Langevin step of `n` particles on the CPU engine.
#[wasm_bindgen]
pub fn bench_cpu_sample(width: usize, n: usize, steps: usize) -> f64 {
    time_cpu_sampler(width, n, steps.max(1))
}

/// This page's compiled `WebAssembly.Module`, for its benchmark workers to instantiate (as the
/// app's pool workers do, `web/worker.js`): they share its compiled, already optimized code.
#[wasm_bindgen]
pub fn bench_module() -> JsValue {
    wasm_bindgen::module()
}

/// In a benchmark worker: build shard `index` of `count` of an `n`-particle run (one step
/// taken), so that [`bench_shard_steps`] times only steps.
#[wasm_bindgen]
pub fn bench_shard_prepare(width: usize, n: usize, index: usize, count: usize) {
    let shard = shard_sampler(width, n, index, count);
    SHARD.with(|s| *s.borrow_mut() = Some(shard));
}

/// In a benchmark worker: `steps` steps of the prepared shard; seconds per step.
#[wasm_bindgen]
pub fn bench_shard_steps(steps: usize) -> Result<f64, JsValue> {
    SHARD.with(|s| {
        let mut s = s.borrow_mut();
        let (sampler, net) = s.as_mut().ok_or_else(|| js_err("no shard prepared"))?;
        let start = Instant::now();
        for _ in 0..steps.max(1) {
            sampler.step(net);
        }
        Ok(start.elapsed().as_secs_f64() / steps.max(1) as f64)
    })
}

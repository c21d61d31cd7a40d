//! PF-ODE log-likelihood on the GPU (twin of `sim::likelihood::log_likelihood_rk4`): one
//! thread per point, fixed-step RK4 on (x, Δlogp) with the exact 2D divergence, one dispatch
//! per step; the prior term log p_1(x_1) is added on the CPU after the readback.

use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError, STEP_STRIDE};
use crate::gpu::layout::{Params, StepParams};
use crate::gpu::sampler::GpuScore;
use crate::gpu::{groups64, mixture_uniform, step_table, Bindings};
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// log p_0 of every point under `score` (blocking): RK4 with `n_steps` from `t0` to 1.
pub fn log_likelihood(
    ctx: &GpuContext,
    score: GpuScore<'_>,
    mixture: &GaussianMixture,
    sde: Sde,
    points: &[Vec2],
    t0: f64,
    n_steps: u32,
) -> Result<Vec<f64>, GpuError> {
    if points.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Params::with_sde(&sde);
    let (weights, consts) = score.bind(&mut p, &sde)?;
    p.n_particles = points.len() as u32;
    let data: Vec<[f32; 4]> = points
        .iter()
        .map(|x| [x.x as f32, x.y as f32, 0.0, 0.0])
        .collect();
    let particles = ctx.storage(
        "likelihood::state",
        (data.len() * 16) as u64,
        wgpu::BufferUsages::empty(),
    );
    ctx.queue
        .write_buffer(&particles, 0, bytemuck::cast_slice(&data));
    let aux = ctx.storage("likelihood::aux", 16, wgpu::BufferUsages::empty());
    let counters = ctx.storage("likelihood::counters", 16, wgpu::BufferUsages::empty());
    let params_buf = ctx.uniform("likelihood::params", bytemuck::bytes_of(&p));
    let mixture_buf = mixture_uniform(ctx, mixture);
    let bind = Bindings {
        params: &params_buf,
        mixture: &mixture_buf,
        weights,
        adam: None,
        scratch: None,
        particles: Some(&particles),
        aux: &aux,
        consts,
        counters: &counters,
    }
    .bind_group(ctx, "likelihood::bind");
    let n = n_steps.max(1) as usize;
    let h = (1.0 - t0) / n as f64;
    let (table, step_bind) = step_table(ctx, "likelihood::schedule", n);
    let mut bytes = vec![0u8; n * STEP_STRIDE as usize];
    for i in 0..n {
        let sp = StepParams {
            step: i as u32,
            t: (t0 + h * i as f64) as f32,
            dt: h as f32,
            ..StepParams::default()
        };
        let at = i * STEP_STRIDE as usize;
        bytes[at..at + std::mem::size_of::<StepParams>()].copy_from_slice(bytemuck::bytes_of(&sp));
    }
    ctx.queue.write_buffer(&table, 0, &bytes);
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("likelihood"),
        });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("likelihood"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &bind, &[]);
        pass.set_pipeline(ctx.pipeline("likelihood_step"));
        for i in 0..n {
            pass.set_bind_group(1, &step_bind, &[(i as u64 * STEP_STRIDE) as u32]);
            pass.dispatch_workgroups(groups64(p.n_particles), 1, 1);
        }
    }
    ctx.queue.submit([enc.finish()]);
    let state = ctx.read_f32(&particles, 0, 4 * points.len() as u64)?;
    Ok(state
        .chunks_exact(4)
        .map(|c| sde.prior_log_prob(Vec2::new(f64::from(c[0]), f64::from(c[1]))) + f64::from(c[2]))
        .collect())
}

//! PF-ODE log-likelihood on the GPU (twin of `sim::likelihood::log_likelihood_rk4`): tiles of
//! `LIK_N` points per workgroup (the network's JVP as tiled GEMMs; one point per thread with
//! the exact score), fixed-step RK4 on (x, Δlogp) with the exact 2D divergence, one dispatch
//! per step; the prior term log p_1(x_1) is added on the CPU after the readback.
//!
//! [`GpuLikelihood`] is the reusable job (the app re-encodes it into its frame and reads the
//! result back asynchronously); [`log_likelihood`] is the blocking one-shot for the CLI/tests.

use crate::gpu::shaders::Entry;
use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError, STEP_STRIDE};
use crate::gpu::layout::{Params, StepParams};
use crate::gpu::sampler::GpuScore;
use crate::gpu::{step_table, tile_groups_of, EvalBind, LIK_N, SCORE_NET, WORKGROUP_SIZE};
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// A likelihood evaluation of fixed points, encodable again and again (the network's
/// weight buffer is bound, so every run uses its current contents).
pub struct GpuLikelihood {
    sde: Sde,
    init: Vec<[f32; 4]>,
    state: wgpu::Buffer,
    mixture: wgpu::Buffer,
    bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    n_steps: usize,
    /// Workgroups (x, y): tiles of `LIK_N` points with a network, else 64 per workgroup.
    groups: (u32, u32),
    _keep: [wgpu::Buffer; 4],
}

impl GpuLikelihood {
    /// log p_{t0}(x) of each of `points` by RK4 with `n_steps` from `t0` to 1.
    pub fn new(
        ctx: &GpuContext,
        score: GpuScore<'_>,
        mixture: &GaussianMixture,
        sde: Sde,
        points: &[Vec2],
        t0: f64,
        n_steps: u32,
    ) -> Result<Self, GpuError> {
        if !(t0.is_finite() && (0.0..1.0).contains(&t0)) {
            return Err(GpuError::Unsupported(format!(
                "the likelihood start time must be in [0, 1) (got {t0})"
            )));
        }
        let mut p = Params::with_sde(&sde);
        let (weights, consts) = score.bind(&mut p, &sde)?;
        p.n_particles = points.len() as u32;
        let init: Vec<[f32; 4]> = points
            .iter()
            .map(|x| [x.x as f32, x.y as f32, 0.0, 0.0])
            .collect();
        let state = ctx.storage(
            "likelihood::state",
            (init.len() * 16) as u64,
            wgpu::BufferUsages::empty(),
        );
        let aux = ctx.storage("likelihood::aux", 16, wgpu::BufferUsages::empty());
        let EvalBind {
            params: params_buf,
            mixture: mixture_buf,
            counters: _,
            bind,
        } = EvalBind::new(
            ctx,
            "likelihood",
            &p,
            (mixture, &sde),
            (weights, consts),
            Some(&state),
            &aux,
            16,
        );
        let n = n_steps.max(1) as usize;
        let grid = sde.ode_time_grid(t0, n);
        let (table, step_bind) = step_table(ctx, "likelihood::schedule", n);
        let mut bytes = vec![0u8; n * STEP_STRIDE as usize];
        for i in 0..n {
            let sp = StepParams {
                step: i as u32,
                t: grid[i] as f32,
                dt: (grid[i + 1] - grid[i]) as f32,
                ..StepParams::default()
            };
            let at = i * STEP_STRIDE as usize;
            bytes[at..at + std::mem::size_of::<StepParams>()]
                .copy_from_slice(bytemuck::bytes_of(&sp));
        }
        ctx.write_buffer(&table, 0, &bytes);
        Ok(Self {
            sde,
            init,
            state,
            mixture: mixture_buf.clone(),
            bind,
            step_bind,
            n_steps: n,
            groups: tile_groups_of(
                p.n_particles,
                if p.score_kind == SCORE_NET {
                    LIK_N
                } else {
                    WORKGROUP_SIZE
                },
            ),
            _keep: [table, params_buf, mixture_buf, aux],
        })
    }

    /// Replace the mixture (only an exact score reads it) and the SDE's data frame (both
    /// scores and the prior term follow it).
    pub fn set_mixture(&mut self, ctx: &GpuContext, m: &GaussianMixture, sde: &Sde) {
        crate::gpu::write_mixture(ctx, &self.mixture, m, sde);
        self.sde = *sde;
    }

    /// Reset the points (a queue write, applied at the next submit) and encode the whole
    /// integration into `encoder`.
    pub fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) {
        if self.init.is_empty() {
            return;
        }
        ctx.write_buffer(&self.state, 0, bytemuck::cast_slice(&self.init));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("likelihood"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_pipeline(ctx.pipeline(Entry::LikelihoodStep));
        for i in 0..self.n_steps {
            pass.set_bind_group(1, &self.step_bind, &[(i as u64 * STEP_STRIDE) as u32]);
            ctx.dispatch(&mut pass, self.groups.0, self.groups.1, 1);
        }
    }

    /// (buffer, bytes) holding the result, for a readback.
    pub fn result_range(&self) -> (&wgpu::Buffer, u64) {
        (&self.state, (self.init.len() * 16) as u64)
    }

    /// log p of each point from the read-back state bytes.
    pub fn decode(&self, bytes: &[u8]) -> Vec<f64> {
        let state: &[f32] = bytemuck::cast_slice(bytes);
        state
            .chunks_exact(4)
            .map(|c| {
                self.sde
                    .prior_log_prob(Vec2::new(f64::from(c[0]), f64::from(c[1])))
                    + f64::from(c[2])
            })
            .collect()
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.init.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.init.is_empty()
    }
}

/// log p_{t0} of every point under `score` (blocking): RK4 with `n_steps` from `t0` to 1.
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
    let job = GpuLikelihood::new(ctx, score, mixture, sde, points, t0, n_steps)?;
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("likelihood"),
        });
    job.encode(ctx, &mut enc);
    ctx.submit(enc);
    let (buf, len) = job.result_range();
    Ok(job.decode(&ctx.read_bytes(buf, 0, len)?))
}

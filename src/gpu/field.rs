//! Grid fields and the Fisher metric on the GPU (twins of the app's CPU field and of
//! `sim::metrics::relative_fisher`).

use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError};
use crate::gpu::layout::{Params, StepParams};
use crate::gpu::sampler::GpuScore;
use crate::gpu::{groups64, mixture_uniform, step_table, Bindings, GpuNet};
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// One grid cell of a field evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldCell {
    /// Learned score (exact when the field has no network).
    pub learned: Vec2,
    /// Exact score.
    pub exact: Vec2,
    /// Exact log p_t.
    pub log_p: f64,
}

/// A grid over a data-space box, evaluated at a chosen noise level.
pub struct GpuField {
    out: wgpu::Buffer,
    table: wgpu::Buffer,
    bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    n_cells: u32,
}

impl GpuField {
    /// An `nx × ny` grid (cell centres) over `[lo, hi]`.
    pub fn new(
        ctx: &GpuContext,
        score: GpuScore<'_>,
        mixture: &GaussianMixture,
        sde: Sde,
        (nx, ny): (u32, u32),
        lo: Vec2,
        hi: Vec2,
    ) -> Result<Self, GpuError> {
        let mut p = Params::with_sde(&sde);
        if let GpuScore::Net(net) = score {
            net.fill_params(&mut p);
        }
        p.grid_nx = nx.max(1);
        p.grid_ny = ny.max(1);
        p.grid_lo = [lo.x as f32, lo.y as f32];
        p.grid_hi = [hi.x as f32, hi.y as f32];
        let n_cells = p.grid_nx * p.grid_ny;
        let out = ctx.storage(
            "GpuField::out",
            u64::from(n_cells) * 5 * 4,
            wgpu::BufferUsages::empty(),
        );
        let counters = ctx.storage("GpuField::counters", 16, wgpu::BufferUsages::empty());
        let params_buf = ctx.uniform("GpuField::params", bytemuck::bytes_of(&p));
        let mixture_buf = mixture_uniform(ctx, mixture);
        let (weights, consts) = match score {
            GpuScore::Net(net) => (Some(&net.weights), Some(&net.consts)),
            GpuScore::Exact => (None, None),
        };
        let bind = Bindings {
            params: &params_buf,
            mixture: &mixture_buf,
            weights,
            adam: None,
            scratch: None,
            particles: None,
            aux: &out,
            consts,
            counters: &counters,
        }
        .bind_group(ctx, "GpuField::bind");
        let (table, step_bind) = step_table(ctx, "GpuField::t", 1);
        Ok(Self {
            out,
            table,
            bind,
            step_bind,
            n_cells,
        })
    }

    /// Dispatch the field at time `t` (one dispatch; does not wait).
    pub fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, t: f64) {
        let sp = StepParams {
            t: t as f32,
            t_next: t as f32,
            ..StepParams::default()
        };
        ctx.queue
            .write_buffer(&self.table, 0, bytemuck::bytes_of(&sp));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("field"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_bind_group(1, &self.step_bind, &[0]);
        pass.set_pipeline(ctx.pipeline("field"));
        pass.dispatch_workgroups(groups64(self.n_cells), 1, 1);
    }

    /// Evaluate at `t` and read back (blocking), row-major from the lower-left cell.
    pub fn eval(&self, ctx: &GpuContext, t: f64) -> Result<Vec<FieldCell>, GpuError> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuField::eval"),
            });
        self.encode(ctx, &mut enc, t);
        ctx.queue.submit([enc.finish()]);
        let v = ctx.read_f32(&self.out, 0, u64::from(self.n_cells) * 5)?;
        Ok(v.chunks_exact(5)
            .map(|c| FieldCell {
                learned: Vec2::new(f64::from(c[0]), f64::from(c[1])),
                exact: Vec2::new(f64::from(c[2]), f64::from(c[3])),
                log_p: f64::from(c[4]),
            })
            .collect())
    }
}

/// Relative Fisher divergence of a GPU network at each `t` (the same draws as
/// `sim::metrics::relative_fisher` with this `seed`): `fisher_terms` per point, `sum_pairs`
/// reduces on the GPU, two floats per level come back.
pub fn relative_fisher(
    ctx: &GpuContext,
    net: &GpuNet,
    mixture: &GaussianMixture,
    ts: &[f64],
    n_per_level: usize,
    seed: u32,
) -> Result<Vec<f64>, GpuError> {
    let mut p = Params::with_sde(&net.template.sde);
    net.fill_params(&mut p);
    p.n_particles = n_per_level as u32;
    let aux = ctx.storage(
        "fisher::aux",
        ((2 * n_per_level + 2) * 4) as u64,
        wgpu::BufferUsages::empty(),
    );
    let counters = ctx.storage("fisher::counters", 16, wgpu::BufferUsages::empty());
    let params_buf = ctx.uniform("fisher::params", bytemuck::bytes_of(&p));
    let mixture_buf = mixture_uniform(ctx, mixture);
    let bind = Bindings {
        params: &params_buf,
        mixture: &mixture_buf,
        weights: Some(&net.weights),
        adam: None,
        scratch: None,
        particles: None,
        aux: &aux,
        consts: Some(&net.consts),
        counters: &counters,
    }
    .bind_group(ctx, "fisher::bind");
    let (table, step_bind) = step_table(ctx, "fisher::levels", 1);
    let mut out = Vec::with_capacity(ts.len());
    for (level, &t) in ts.iter().enumerate() {
        let sp = StepParams {
            step: level as u32,
            seed,
            t: t as f32,
            t_next: t as f32,
            ..StepParams::default()
        };
        ctx.queue.write_buffer(&table, 0, bytemuck::bytes_of(&sp));
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("fisher"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fisher"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &bind, &[]);
            pass.set_bind_group(1, &step_bind, &[0]);
            pass.set_pipeline(ctx.pipeline("fisher_terms"));
            pass.dispatch_workgroups(groups64(p.n_particles), 1, 1);
            pass.set_pipeline(ctx.pipeline("sum_pairs"));
            pass.dispatch_workgroups(1, 1, 1);
        }
        ctx.queue.submit([enc.finish()]);
        let s = ctx.read_f32(&aux, 2 * n_per_level as u64, 2)?;
        out.push(f64::from(s[0]) / f64::from(s[1]).max(1e-30));
    }
    Ok(out)
}

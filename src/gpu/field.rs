//! Grid fields and the Fisher metric on the GPU (twins of the app's CPU field and of
//! `sim::metrics::relative_fisher`).

use crate::gpu::shaders::Entry;
use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError, STEP_STRIDE};
use crate::gpu::layout::{Params, StepParams};
use crate::gpu::sampler::GpuScore;
use crate::gpu::{step_table, tile_groups, EvalBind, GpuNet, SCORE_EXACT};
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

pub use crate::sim::field::FieldCell;

/// A grid over a data-space box, evaluated at a chosen noise level.
pub struct GpuField {
    out: wgpu::Buffer,
    mixture: wgpu::Buffer,
    table: wgpu::Buffer,
    bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    n_cells: u32,
    /// A network is evaluated (tiles of `TILE_N` cells; else one cell per invocation).
    net: bool,
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
        let (weights, consts) = score.bind_field(&mut p, &sde)?;
        p.grid_nx = nx.max(1);
        p.grid_ny = ny.max(1);
        p.grid_lo = [lo.x as f32, lo.y as f32];
        p.grid_hi = [hi.x as f32, hi.y as f32];
        let n_cells = p.grid_nx * p.grid_ny;
        let net = p.score_kind != SCORE_EXACT;
        let out = ctx.storage(
            "GpuField::out",
            u64::from(n_cells) * 5 * 4,
            wgpu::BufferUsages::empty(),
        );
        let EvalBind {
            params: _,
            mixture: mixture_buf,
            counters: _,
            bind,
        } = EvalBind::new(
            ctx,
            "GpuField",
            &p,
            (mixture, &sde),
            (weights, consts),
            None,
            &out,
            16,
        );
        let (table, step_bind) = step_table(ctx, "GpuField::t", 1);
        Ok(Self {
            out,
            mixture: mixture_buf,
            table,
            bind,
            step_bind,
            n_cells,
            net,
        })
    }

    /// Replace the data distribution.
    pub fn set_mixture(&self, ctx: &GpuContext, m: &GaussianMixture, sde: &Sde) {
        crate::gpu::write_mixture(ctx, &self.mixture, m, sde);
    }

    /// (buffer, byte length) of the cells, for an async readback.
    pub fn result_range(&self) -> (&wgpu::Buffer, u64) {
        (&self.out, u64::from(self.n_cells) * 5 * 4)
    }

    /// Cells from the output bytes.
    pub fn decode(bytes: &[u8]) -> Vec<FieldCell> {
        let v: &[f32] = bytemuck::cast_slice(bytes);
        v.chunks_exact(5)
            .map(|c| FieldCell {
                learned: Vec2::new(f64::from(c[0]), f64::from(c[1])),
                exact: Vec2::new(f64::from(c[2]), f64::from(c[3])),
                log_p: f64::from(c[4]),
            })
            .collect()
    }

    /// Dispatch the field at time `t` (one dispatch; does not wait).
    pub fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, t: f64) {
        let sp = StepParams {
            t: t as f32,
            t_next: t as f32,
            ..StepParams::default()
        };
        ctx.write_buffer(&self.table, 0, bytemuck::bytes_of(&sp));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("field"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_bind_group(1, &self.step_bind, &[0]);
        pass.set_pipeline(ctx.pipeline(Entry::Field));
        let (gx, gy) = tile_groups(self.n_cells, self.net);
        ctx.dispatch(&mut pass, gx, gy, 1);
    }

    /// Evaluate at `t` and read back (blocking), row-major from the lower-left cell.
    pub fn eval(&self, ctx: &GpuContext, t: f64) -> Result<Vec<FieldCell>, GpuError> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuField::eval"),
            });
        self.encode(ctx, &mut enc, t);
        ctx.submit(enc);
        let (buf, len) = self.result_range();
        Ok(Self::decode(&ctx.read_bytes(buf, 0, len)?))
    }
}

/// The relative Fisher divergence of a GPU network at fixed levels, encoded in one pass
/// (`fisher_terms` + `sum_pairs` per level, 2 dispatches each) with 2 floats per level to read
/// back: blocking via [`FisherProbe::read`], or asynchronously through [`FisherProbe::result_range`].
pub struct FisherProbe {
    aux: wgpu::Buffer,
    mixture: wgpu::Buffer,
    bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    n: u32,
    levels: usize,
}

impl FisherProbe {
    /// A probe of `net` at times `ts` with `n_per_level` exact samples each (draws as in
    /// `sim::metrics::relative_fisher` with `seed`).
    pub fn new(
        ctx: &GpuContext,
        net: &GpuNet,
        mixture: &GaussianMixture,
        ts: &[f64],
        n_per_level: usize,
        seed: u32,
    ) -> Self {
        let mut p = Params::with_sde(&net.template.sde);
        net.fill_params(&mut p);
        p.n_particles = n_per_level as u32;
        let aux = ctx.storage(
            "fisher::aux",
            ((2 * n_per_level + 2 * ts.len()) * 4) as u64,
            wgpu::BufferUsages::empty(),
        );
        let EvalBind {
            params: _,
            mixture: mixture_buf,
            counters: _,
            bind,
        } = EvalBind::new(
            ctx,
            "fisher",
            &p,
            (mixture, &net.template.sde),
            (Some(&net.weights), Some(&net.consts)),
            None,
            &aux,
            16,
        );
        let (table, step_bind) = step_table(ctx, "fisher::levels", ts.len());
        let mut bytes = vec![0u8; ts.len() * STEP_STRIDE as usize];
        for (level, &t) in ts.iter().enumerate() {
            let sp = StepParams {
                step: level as u32,
                seed,
                t: t as f32,
                t_next: t as f32,
                ..StepParams::default()
            };
            let at = level * STEP_STRIDE as usize;
            bytes[at..at + std::mem::size_of::<StepParams>()]
                .copy_from_slice(bytemuck::bytes_of(&sp));
        }
        ctx.write_buffer(&table, 0, &bytes);
        Self {
            aux,
            mixture: mixture_buf,
            bind,
            step_bind,
            n: p.n_particles,
            levels: ts.len(),
        }
    }

    /// Replace the data distribution.
    pub fn set_mixture(&self, ctx: &GpuContext, m: &GaussianMixture, sde: &Sde) {
        crate::gpu::write_mixture(ctx, &self.mixture, m, sde);
    }

    /// Encode every level.
    pub fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("fisher"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind, &[]);
        for level in 0..self.levels {
            pass.set_bind_group(1, &self.step_bind, &[(level as u64 * STEP_STRIDE) as u32]);
            pass.set_pipeline(ctx.pipeline(Entry::FisherTerms));
            let (gx, gy) = tile_groups(self.n, true);
            ctx.dispatch(&mut pass, gx, gy, 1);
            pass.set_pipeline(ctx.pipeline(Entry::SumPairs));
            ctx.dispatch(&mut pass, 1, 1, 1);
        }
    }

    /// (buffer, byte offset, byte length) of the per-level sums, for an async readback.
    pub fn result_range(&self) -> (&wgpu::Buffer, u64, u64) {
        (
            &self.aux,
            2 * u64::from(self.n) * 4,
            2 * self.levels as u64 * 4,
        )
    }

    /// Per-level relative Fisher divergences from the sums' bytes.
    pub fn decode(bytes: &[u8]) -> Vec<f64> {
        let v: &[f32] = bytemuck::cast_slice(bytes);
        v.chunks_exact(2)
            .map(|c| f64::from(c[0]) / f64::from(c[1]).max(1e-30))
            .collect()
    }

    /// Encode, submit and read back (blocking).
    pub fn read(&self, ctx: &GpuContext) -> Result<Vec<f64>, GpuError> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("fisher"),
            });
        self.encode(ctx, &mut enc);
        ctx.submit(enc);
        let (buf, off, len) = self.result_range();
        Ok(Self::decode(&ctx.read_bytes(buf, off, len)?))
    }
}

/// Relative Fisher divergence of a GPU network at each `t` (blocking; the same draws as
/// `sim::metrics::relative_fisher` with this `seed`).
pub fn relative_fisher(
    ctx: &GpuContext,
    net: &GpuNet,
    mixture: &GaussianMixture,
    ts: &[f64],
    n_per_level: usize,
    seed: u32,
) -> Result<Vec<f64>, GpuError> {
    FisherProbe::new(ctx, net, mixture, ts, n_per_level, seed).read(ctx)
}

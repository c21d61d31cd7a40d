//! The wgpu engine (ARCHITECTURE.md §1 "gpu"): WGSL compute pipelines mirroring `sim` one to one.
//! No egui here; wgpu is the one egui re-exports.
//!
//! Data flow: a [`context::GpuContext`] (injected device/queue) builds every pipeline once.
//! [`trainer::GpuTrainer`] keeps the network, Adam state and batch scratch on the GPU and runs
//! 4 dispatches per training step (`train_step`, `train_grad`, `train_finish`, `reduce_adam`) with no
//! CPU round-trip. [`sampler::GpuSampler`] keeps particles in a storage buffer (also usable
//! as a vertex buffer) and runs one dispatch per sampler step (four for predictor–corrector),
//! reading its schedule from a table written once. [`field::GpuField`] evaluates grids and
//! [`field::relative_fisher`] the truth-gap metric. Readbacks here are blocking and meant for
//! the CLI, tests and benchmarks.

pub mod context;
pub mod field;
pub mod layout;
pub mod likelihood;
pub mod matmul;
pub mod sampler;
pub mod shaders;
pub mod trainer;

use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError, STEP_STRIDE};
use crate::gpu::layout::{MixtureGpu, Params};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::sde::Sde;

/// Largest hidden width / input size on the GPU (`MAX_W` in `mlp.wgsl`).
pub const MAX_GPU_WIDTH: usize = 256;

/// A network's weights and Fourier constants on the GPU.
#[derive(Clone, Debug)]
pub struct GpuNet {
    /// The CPU description (config, SDE, initial weights).
    pub template: ScoreNet,
    /// Flat weights (sim::mlp layout).
    pub weights: wgpu::Buffer,
    /// Fourier frequencies.
    pub consts: wgpu::Buffer,
    /// A velocity network of flow matching ([`GpuNet::upload_flow`]): the trainer and the
    /// field evaluate it as one; the samplers, metrics and likelihood refuse it.
    pub flow: bool,
}

impl GpuNet {
    /// Upload a network.
    pub fn upload(ctx: &GpuContext, net: &ScoreNet) -> Result<Self, GpuError> {
        let n_in = net.config.n_inputs();
        if net.config.width > MAX_GPU_WIDTH || n_in > MAX_GPU_WIDTH {
            return Err(GpuError::Unsupported(format!(
                "the GPU engine supports width and input size up to {MAX_GPU_WIDTH} (got width {}, inputs {n_in})",
                net.config.width
            )));
        }
        let weights = ctx.storage(
            "GpuNet::weights",
            (net.mlp.params.len() * 4) as u64,
            wgpu::BufferUsages::empty(),
        );
        ctx.write_buffer(&weights, 0, bytemuck::cast_slice(&net.mlp.params));
        let c = net.fourier_consts();
        let consts = ctx.storage(
            "GpuNet::consts",
            (c.len() * 4) as u64,
            wgpu::BufferUsages::empty(),
        );
        if !c.is_empty() {
            ctx.write_buffer(&consts, 0, bytemuck::cast_slice(&c));
        }
        Ok(Self {
            template: net.clone(),
            weights,
            consts,
            flow: false,
        })
    }

    /// Upload a velocity network (flow matching) trained on `mixture`'s path. Its MLP and
    /// Fourier frequencies are those of a score network on the same configuration, so it
    /// travels as one (the `template`, with `mixture`'s frame: the path's centre and d ride in
    /// the mixture uniform like every SDE's frame); `flow` makes the shaders read it as a
    /// velocity (`SCORE_FLOW`).
    pub fn upload_flow(
        ctx: &GpuContext,
        net: &crate::sim::flow::FlowNet,
        mixture: &crate::sim::mixture::GaussianMixture,
    ) -> Result<Self, GpuError> {
        if crate::sim::flow::FlowPath::for_mixture(mixture) != net.path {
            return Err(GpuError::Unsupported(
                "the velocity network's path is not this mixture's frame".into(),
            ));
        }
        let sde = Sde::for_mixture(crate::sim::sde::SdeKind::Vp, mixture);
        let carrier = ScoreNet::with_params(net.config.clone(), sde, net.mlp.params.clone())
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let mut g = Self::upload(ctx, &carrier)?;
        g.flow = true;
        Ok(g)
    }

    /// Fill the network fields of `params`.
    pub fn fill_params(&self, p: &mut Params) {
        let c = &self.template.config;
        p.n_in = c.n_inputs() as u32;
        p.width = c.width as u32;
        p.depth = c.depth as u32;
        p.n_time_freqs = c.n_time_freqs as u32;
        p.n_x_freqs = c.n_x_freqs as u32;
        p.n_params = self.template.mlp.params.len() as u32;
        p.data_std = c.data_std as f32;
        p.score_kind = if self.flow { SCORE_FLOW } else { SCORE_NET };
    }
}

/// The main bind group of an evaluation stage (field, Fisher probe, sampler, likelihood):
/// its params and mixture uniforms, a counter block, the score's buffers (network weights
/// and constants, or none for the exact score), `particles` and `aux`; no optimiser slots.
pub(crate) struct EvalBind {
    pub params: wgpu::Buffer,
    pub mixture: wgpu::Buffer,
    pub counters: wgpu::Buffer,
    pub bind: wgpu::BindGroup,
}

impl EvalBind {
    /// Create the buffers and the bind group (labels start with `label`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: &GpuContext,
        label: &str,
        p: &Params,
        (m, sde): (&GaussianMixture, &Sde),
        (weights, consts): (Option<&wgpu::Buffer>, Option<&wgpu::Buffer>),
        particles: Option<&wgpu::Buffer>,
        aux: &wgpu::Buffer,
        counter_bytes: u64,
    ) -> Self {
        let counters = ctx.storage(
            &format!("{label}::counters"),
            counter_bytes,
            wgpu::BufferUsages::empty(),
        );
        let params = ctx.uniform(&format!("{label}::params"), bytemuck::bytes_of(p));
        let mixture = mixture_uniform(ctx, m, sde);
        let bind = Bindings {
            params: &params,
            mixture: &mixture,
            weights,
            adam: None,
            scratch: None,
            particles,
            aux,
            consts,
            counters: &counters,
        }
        .bind_group(ctx, &format!("{label}::bind"));
        Self {
            params,
            mixture,
            counters,
            bind,
        }
    }
}

/// The buffers behind bind group 0 (unused slots get small dummies).
pub(crate) struct Bindings<'a> {
    pub params: &'a wgpu::Buffer,
    pub mixture: &'a wgpu::Buffer,
    pub weights: Option<&'a wgpu::Buffer>,
    pub adam: Option<&'a wgpu::Buffer>,
    pub scratch: Option<&'a wgpu::Buffer>,
    pub particles: Option<&'a wgpu::Buffer>,
    pub aux: &'a wgpu::Buffer,
    pub consts: Option<&'a wgpu::Buffer>,
    pub counters: &'a wgpu::Buffer,
}

impl Bindings<'_> {
    pub(crate) fn bind_group(&self, ctx: &GpuContext, label: &str) -> wgpu::BindGroup {
        // One dummy per unused slot: WebGPU forbids binding the same buffer to two writable
        // storage slots of a bind group (native Vulkan did not complain; Dawn does).
        let dummies: Vec<wgpu::Buffer> = (0..5)
            .map(|_| ctx.storage("dummy", 16, wgpu::BufferUsages::empty()))
            .collect();
        let bufs: [&wgpu::Buffer; 9] = [
            self.params,
            self.mixture,
            self.weights.unwrap_or(&dummies[0]),
            self.adam.unwrap_or(&dummies[1]),
            self.scratch.unwrap_or(&dummies[2]),
            self.particles.unwrap_or(&dummies[3]),
            self.aux,
            self.consts.unwrap_or(&dummies[4]),
            self.counters,
        ];
        let entries: Vec<wgpu::BindGroupEntry> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &ctx.layout_main,
            entries: &entries,
        })
    }
}

/// A schedule table (group 1) of `n` entries of [`STEP_STRIDE`] bytes.
pub(crate) fn step_table(
    ctx: &GpuContext,
    label: &str,
    n: usize,
) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buf = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: STEP_STRIDE * n.max(1) as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &ctx.layout_step,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &buf,
                offset: 0,
                size: std::num::NonZeroU64::new(std::mem::size_of::<layout::StepParams>() as u64),
            }),
        }],
    });
    (buf, bind)
}

/// The mixture uniform for `m` in the frame of `sde`.
pub(crate) fn mixture_uniform(ctx: &GpuContext, m: &GaussianMixture, sde: &Sde) -> wgpu::Buffer {
    ctx.uniform("mixture", bytemuck::bytes_of(&MixtureGpu::new(m, sde)))
}

/// Overwrite a mixture uniform made by [`mixture_uniform`] (applied at the next submit).
pub(crate) fn write_mixture(ctx: &GpuContext, buf: &wgpu::Buffer, m: &GaussianMixture, sde: &Sde) {
    ctx.write_buffer(buf, 0, bytemuck::bytes_of(&MixtureGpu::new(m, sde)));
}

/// Threads per workgroup of the one-thread-per-item stages (`WORKGROUP_SIZE` in
/// `common.wgsl`).
pub const WORKGROUP_SIZE: u32 = 64;

/// Workgroups of [`WORKGROUP_SIZE`] covering `n` threads.
pub(crate) fn groups(n: u32) -> u32 {
    n.div_ceil(WORKGROUP_SIZE).max(1)
}

/// `Params::score_kind` of the exact score (`SCORE_EXACT` in `common.wgsl`).
pub const SCORE_EXACT: u32 = 0;
/// `Params::score_kind` of a network (`SCORE_NET` in `common.wgsl`; 0 is the exact score).
pub const SCORE_NET: u32 = 1;
/// `Params::score_kind` of a velocity network (`SCORE_FLOW` in `common.wgsl`).
pub const SCORE_FLOW: u32 = 2;

/// Samples per workgroup of the cooperative-network stages (`TILE_N` in `mlp.wgsl`).
pub const TILE_N: u32 = 8;

/// Workgroups (x, y) for `n` items in tiles of [`TILE_N`] when a network is evaluated
/// (`net`), else of [`WORKGROUP_SIZE`] (`tile_size` in `mlp.wgsl`): 2-D past WebGPU's 65535
/// per dimension (10⁶ particles are 125 000 tiles); `tile_slot` flattens them.
pub(crate) fn tile_groups(n: u32, net: bool) -> (u32, u32) {
    tile_groups_of(n, if net { TILE_N } else { WORKGROUP_SIZE })
}

/// Points per workgroup of the likelihood's network JVP (`LIK_N` in `likelihood.wgsl`): each
/// takes three of the tile's [`TILE_N`] rows (activations and two tangents).
pub const LIK_N: u32 = 2;

/// Workgroups (x, y) for `n` items, `per` per workgroup (2-D as [`tile_groups`]).
pub(crate) fn tile_groups_of(n: u32, per: u32) -> (u32, u32) {
    let g = n.div_ceil(per).max(1);
    let x = g.min(65_535);
    (x, g.div_ceil(x))
}

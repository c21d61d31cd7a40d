//! DSM training on the GPU (twin of `sim::train::Trainer`): per step, `train_step` (a tile of
//! `TILE_N` samples per workgroup: batch draw, forward, loss and backward as tiled GEMMs, layer
//! inputs and deltas into scratch), `train_grad` (the weight gradient δᵀ·[h | 1] as 16 × 16
//! output tiles per batch chunk, a workgroup tree over its lanes), `train_finish` (the loss by a
//! workgroup tree, step counter, divergence flag) and `reduce_adam` (one thread per parameter:
//! the chunk partials in order, Adam, EMA; skipped for a step whose loss is not finite, as on
//! the CPU). Every reduction has a fixed order. Nothing returns to the CPU between steps.

use crate::gpu::shaders::Entry;
use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError};
use crate::gpu::layout::Params;
use crate::gpu::{groups, mixture_uniform, step_table, tile_groups, Bindings, GpuNet};
use crate::sim::flow::{FlowNet, FlowTrainConfig};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::sde::Sde;
use crate::sim::train::TrainConfig;

/// Losses kept on the GPU, by step modulo this (`LOSS_RING` in `reduce_adam.wgsl`).
pub const LOSS_RING: u32 = 4096;
/// Steps encoded per command buffer.
const STEPS_PER_SUBMIT: u32 = 64;

/// Output tile side of `train_grad` (`GRAD_T` in `train_step.wgsl`).
const GRAD_T: u32 = 16;

/// (samples per chunk, chunks) of `train_grad`'s batch split: chunks of at least 128 samples
/// (a multiple of its 16-sample slices), at most 64 of them (the partials take
/// chunks × n_params floats of scratch).
fn grad_chunks(batch: u32) -> (u32, u32) {
    let chunk = batch.div_ceil(64).max(128).next_multiple_of(16);
    (chunk, batch.div_ceil(chunk))
}

/// `train_grad`'s workgroups along x: per layer, ⌈fan_out / 16⌉ × ⌈(fan_in + 1) / 16⌉ tiles of
/// its gradient (the bias is column fan_in; `grad_tiles` in `train_step.wgsl`).
fn grad_tiles(p: &Params) -> u32 {
    (0..=p.depth)
        .map(|l| {
            let fi = if l == 0 { p.n_in } else { p.width };
            let fo = if l == p.depth { 2 } else { p.width };
            fo.div_ceil(GRAD_T) * (fi + 1).div_ceil(GRAD_T)
        })
        .sum()
}

/// A GPU trainer.
pub struct GpuTrainer {
    /// The network being trained (current weights live in `net.weights`).
    pub net: GpuNet,
    adam: wgpu::Buffer,
    aux: wgpu::Buffer,
    counters: wgpu::Buffer,
    mixture: wgpu::Buffer,
    params_buf: wgpu::Buffer,
    params: Params,
    bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    scratch: wgpu::Buffer,
    /// Reflow's pairs (x₀, x̂₁) as vec4s in the `particles` slot (flow matching only).
    couplings: Option<wgpu::Buffer>,
}

impl GpuTrainer {
    /// Upload `net` (initial weights), Adam state and the mixture.
    pub fn new(
        ctx: &GpuContext,
        net: &ScoreNet,
        mixture: &GaussianMixture,
        cfg: &TrainConfig,
    ) -> Result<Self, GpuError> {
        Self::with_net(ctx, GpuNet::upload(ctx, net)?, mixture, cfg)
    }

    /// Conditional flow matching on the GPU (twin of `sim::flow::FlowTrainer` without reflow's
    /// couplings): the same dispatches, `train_step` drawing and scoring as flow matching.
    pub fn new_flow(
        ctx: &GpuContext,
        net: &FlowNet,
        mixture: &GaussianMixture,
        cfg: &FlowTrainConfig,
    ) -> Result<Self, GpuError> {
        let tc = TrainConfig {
            batch: cfg.batch,
            adam: cfg.adam,
            seed: cfg.seed,
            t_eps: 0.0,
        };
        Self::with_net(ctx, GpuNet::upload_flow(ctx, net, mixture)?, mixture, &tc)
    }

    fn with_net(
        ctx: &GpuContext,
        gnet: GpuNet,
        mixture: &GaussianMixture,
        cfg: &TrainConfig,
    ) -> Result<Self, GpuError> {
        if cfg.batch == 0 || cfg.batch > 1 << 20 {
            return Err(GpuError::Unsupported(format!(
                "batch {} must be in 1..=2^20",
                cfg.batch
            )));
        }
        let net = &gnet.template;
        let mut p = Params::with_sde(&net.sde);
        gnet.fill_params(&mut p);
        p.batch = cfg.batch as u32;
        p.seed = cfg.seed;
        p.t_eps = cfg.t_eps as f32;
        p.lr = cfg.adam.lr;
        p.beta1 = cfg.adam.beta1;
        p.beta2 = cfg.adam.beta2;
        p.adam_eps = cfg.adam.eps;
        p.ema_decay = cfg.adam.ema_decay;
        p.scratch_stride = p.n_in + 2 * p.depth * p.width + 2;
        (p.grad_chunk, p.grad_chunks) = grad_chunks(p.batch);
        let n = net.mlp.params.len();
        let adam = ctx.storage(
            "GpuTrainer::adam",
            (3 * n * 4) as u64,
            wgpu::BufferUsages::empty(),
        );
        ctx.write_buffer(
            &adam,
            (2 * n * 4) as u64,
            bytemuck::cast_slice(&net.mlp.params),
        );
        let scratch = ctx.storage(
            "GpuTrainer::scratch",
            (u64::from(p.batch) * u64::from(p.scratch_stride)
                + u64::from(p.grad_chunks) * u64::from(p.n_params))
                * 4,
            wgpu::BufferUsages::empty(),
        );
        let aux = ctx.storage(
            "GpuTrainer::aux",
            u64::from(p.batch + LOSS_RING) * 4,
            wgpu::BufferUsages::empty(),
        );
        let counters = ctx.storage("GpuTrainer::counters", 64 * 4, wgpu::BufferUsages::empty());
        let params_buf = ctx.uniform("GpuTrainer::params", bytemuck::bytes_of(&p));
        let mixture = mixture_uniform(ctx, mixture, &net.sde);
        let bind = Bindings {
            params: &params_buf,
            mixture: &mixture,
            weights: Some(&gnet.weights),
            adam: Some(&adam),
            scratch: Some(&scratch),
            particles: None,
            aux: &aux,
            consts: Some(&gnet.consts),
            counters: &counters,
        }
        .bind_group(ctx, "GpuTrainer::bind");
        let (_, step_bind) = step_table(ctx, "GpuTrainer::step", 1);
        Ok(Self {
            net: gnet,
            adam,
            aux,
            counters,
            mixture,
            params_buf,
            params: p,
            bind,
            step_bind,
            scratch,
            couplings: None,
        })
    }

    /// Flow matching: train on these pairs (x₀, x̂₁) instead of independent draws (reflow,
    /// `sim::flow::FlowTrainer::set_couplings`, picked by the same draw); `None` goes back.
    /// Refused for a score network.
    pub fn set_couplings(
        &mut self,
        ctx: &GpuContext,
        couplings: Option<&[(crate::sim::Vec2, crate::sim::Vec2)]>,
    ) -> Result<(), GpuError> {
        if !self.net.flow {
            return Err(GpuError::Unsupported(
                "couplings are for a velocity network".into(),
            ));
        }
        let pairs: Vec<[f32; 4]> = couplings
            .unwrap_or_default()
            .iter()
            .map(|(a, b)| [a.x as f32, a.y as f32, b.x as f32, b.y as f32])
            .collect();
        self.couplings = (!pairs.is_empty()).then(|| {
            let b = ctx.storage(
                "GpuTrainer::couplings",
                (pairs.len() * 16) as u64,
                wgpu::BufferUsages::empty(),
            );
            ctx.write_buffer(&b, 0, bytemuck::cast_slice(&pairs));
            b
        });
        self.params.n_particles = pairs.len() as u32;
        ctx.write_buffer(&self.params_buf, 0, bytemuck::bytes_of(&self.params));
        self.bind = Bindings {
            params: &self.params_buf,
            mixture: &self.mixture,
            weights: Some(&self.net.weights),
            adam: Some(&self.adam),
            scratch: Some(&self.scratch),
            particles: self.couplings.as_ref(),
            aux: &self.aux,
            consts: Some(&self.net.consts),
            counters: &self.counters,
        }
        .bind_group(ctx, "GpuTrainer::bind");
        Ok(())
    }

    /// (buffer, byte offset, byte length) of the EMA weights, for async readbacks.
    pub fn ema_range(&self) -> (&wgpu::Buffer, u64, u64) {
        let n = u64::from(self.params.n_params) * 4;
        (&self.adam, 2 * n, n)
    }

    /// Dispatches per training step.
    pub const DISPATCHES_PER_STEP: u32 = 4;

    /// Encode `n` training steps into `encoder` (one compute pass).
    pub fn encode(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, n: u32) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("GpuTrainer::steps"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind, &[]);
        pass.set_bind_group(1, &self.step_bind, &[0]);
        let (sx, sy) = tile_groups(self.params.batch, true);
        let tiles = grad_tiles(&self.params);
        for _ in 0..n {
            pass.set_pipeline(ctx.pipeline(Entry::TrainStep));
            ctx.dispatch(&mut pass, sx, sy, 1);
            pass.set_pipeline(ctx.pipeline(Entry::TrainGrad));
            ctx.dispatch(&mut pass, tiles, self.params.grad_chunks, 1);
            pass.set_pipeline(ctx.pipeline(Entry::TrainFinish));
            ctx.dispatch(&mut pass, 1, 1, 1);
            pass.set_pipeline(ctx.pipeline(Entry::ReduceAdam));
            ctx.dispatch(&mut pass, groups(self.params.n_params), 1, 1);
        }
    }

    /// Run `n` steps (submitted in chunks; returns without waiting for the GPU).
    pub fn train(&self, ctx: &GpuContext, n: u32) {
        let mut left = n;
        while left > 0 {
            let k = left.min(STEPS_PER_SUBMIT);
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("GpuTrainer::train"),
                });
            self.encode(ctx, &mut enc, k);
            ctx.submit(enc);
            left -= k;
        }
    }

    /// Replace the data distribution and the SDE's data frame (e.g. while the user drags a
    /// component: the network is trained in the frame it is given).
    pub fn set_mixture(&self, ctx: &GpuContext, m: &GaussianMixture, sde: &Sde) {
        crate::gpu::write_mixture(ctx, &self.mixture, m, sde);
    }

    /// Encode a copy of the EMA weights into `dst` (a [`GpuNet`] used for drawing/metrics).
    pub fn encode_copy_ema(&self, encoder: &mut wgpu::CommandEncoder, dst: &GpuNet) {
        let n = u64::from(self.params.n_params) * 4;
        encoder.copy_buffer_to_buffer(&self.adam, 2 * n, &dst.weights, 0, n);
    }

    /// The counters buffer ([0] steps, [1] first non-finite step + 1), for async readbacks.
    pub fn counters_buffer(&self) -> &wgpu::Buffer {
        &self.counters
    }

    /// (buffer, byte offset, byte length) of the loss ring, for async readbacks.
    pub fn loss_ring_range(&self) -> (&wgpu::Buffer, u64, u64) {
        (
            &self.aux,
            u64::from(self.params.batch) * 4,
            u64::from(LOSS_RING) * 4,
        )
    }

    /// Continue from `params` as the weights and their EMA (Adam's moments are kept; a queue
    /// write, applied at the next submit). Refused for another parameter count.
    pub fn load_weights(&self, ctx: &GpuContext, params: &[f32]) -> Result<(), GpuError> {
        if params.len() != self.params.n_params as usize {
            return Err(GpuError::Unsupported(format!(
                "a network of {} parameters cannot replace one of {}",
                params.len(),
                self.params.n_params
            )));
        }
        let bytes: &[u8] = bytemuck::cast_slice(params);
        ctx.write_buffer(&self.net.weights, 0, bytes);
        ctx.write_buffer(&self.adam, 2 * bytes.len() as u64, bytes);
        Ok(())
    }

    /// Change the learning rate.
    pub fn set_lr(&mut self, ctx: &GpuContext, lr: f32) {
        self.params.lr = lr;
        ctx.write_buffer(&self.params_buf, 0, bytemuck::bytes_of(&self.params));
    }

    /// Clear the divergence flag (after the caller lowered the learning rate).
    pub fn clear_divergence(&self, ctx: &GpuContext) {
        ctx.write_buffer(&self.counters, 4, bytemuck::bytes_of(&0u32));
    }

    /// Steps taken (blocking readback).
    pub fn steps(&self, ctx: &GpuContext) -> Result<u32, GpuError> {
        Ok(ctx.read_u32(&self.counters, 0, 1)?[0])
    }

    /// The first step whose loss was not finite, if any (blocking readback).
    pub fn diverged_at(&self, ctx: &GpuContext) -> Result<Option<u32>, GpuError> {
        let c = ctx.read_u32(&self.counters, 1, 1)?[0];
        Ok(c.checked_sub(1))
    }

    /// The loss of step `step` (must be among the last [`LOSS_RING`]).
    pub fn loss_at(&self, ctx: &GpuContext, step: u32) -> Result<f32, GpuError> {
        Ok(ctx.read_f32(
            &self.aux,
            u64::from(self.params.batch + step % LOSS_RING),
            1,
        )?[0])
    }

    /// Losses of steps `first .. first + n` (n ≤ [`LOSS_RING`]; blocking).
    pub fn read_losses(&self, ctx: &GpuContext, first: u32, n: u32) -> Result<Vec<f32>, GpuError> {
        let ring = ctx.read_f32(
            &self.aux,
            u64::from(self.params.batch),
            u64::from(LOSS_RING),
        )?;
        Ok((first..first + n.min(LOSS_RING))
            .map(|s| ring[(s % LOSS_RING) as usize])
            .collect())
    }

    /// Current weights (blocking).
    pub fn read_weights(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        ctx.read_f32(&self.net.weights, 0, u64::from(self.params.n_params))
    }

    /// EMA weights (blocking).
    pub fn read_ema(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        let n = u64::from(self.params.n_params);
        ctx.read_f32(&self.adam, 2 * n, n)
    }

    /// First moments (= (1 − β1) · gradient after the first step; used by parity tests).
    pub fn read_first_moments(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        ctx.read_f32(&self.adam, 0, u64::from(self.params.n_params))
    }

    /// A velocity network's EMA weights as a CPU `FlowNet` (`like` gives its configuration
    /// and path).
    pub fn ema_flow_net(&self, ctx: &GpuContext, like: &FlowNet) -> Result<FlowNet, GpuError> {
        FlowNet::with_params(like.config.clone(), like.path, self.read_ema(ctx)?)
            .map_err(|e| GpuError::Unsupported(e.to_string()))
    }

    /// The network with the EMA weights, as a CPU `ScoreNet`.
    pub fn ema_net(&self, ctx: &GpuContext) -> Result<ScoreNet, GpuError> {
        let mut n = self.net.template.clone();
        n.mlp.params = self.read_ema(ctx)?;
        Ok(n)
    }
}

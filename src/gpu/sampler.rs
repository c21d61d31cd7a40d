//! Samplers on the GPU (twin of `sim::samplers::Sampler`). Particles live in a storage buffer
//! of `vec4<f32>` = (x, x_mean) that is also a vertex buffer for drawing. The schedule
//! ((t, t_next, α) per step, from `Sampler::schedule_at`, the same code the CPU uses) is
//! written once; each step binds its entry with a dynamic offset, so one dispatch per step
//! (predictor–corrector: four) and many steps per submit, with no readback in the loop.

use crate::gpu::shaders::Entry;
use eframe::egui_wgpu::wgpu;

use crate::gpu::context::{GpuContext, GpuError, STEP_STRIDE};
use crate::gpu::layout::{Params, StepParams};
use crate::gpu::{groups, step_table, tile_groups, EvalBind, GpuNet, SCORE_NET};
use crate::sim::mixture::GaussianMixture;
use crate::sim::samplers::{Sampler, SamplerConfig, SamplerKind};
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// The score a GPU sampler follows.
#[derive(Clone, Copy)]
pub enum GpuScore<'a> {
    /// The exact perturbed-mixture score.
    Exact,
    /// A network on the GPU.
    Net(&'a GpuNet),
}

impl<'a> GpuScore<'a> {
    /// (weights, consts) buffers to bind, and fill the network fields of `params` (a network
    /// trained for another SDE is refused).
    pub(crate) fn bind(
        self,
        params: &mut Params,
        sde: &Sde,
    ) -> Result<(Option<&'a wgpu::Buffer>, Option<&'a wgpu::Buffer>), GpuError> {
        match self {
            GpuScore::Exact => Ok((None, None)),
            GpuScore::Net(net) => {
                if net.flow {
                    return Err(GpuError::Unsupported(
                        "a velocity network (flow matching) runs in the trainer and the field only"
                            .into(),
                    ));
                }
                // The frame and σ range travel in the mixture uniform; the family must match.
                if !net.template.sde.same_family(sde) {
                    return Err(GpuError::Unsupported(
                        "the network was trained for a different SDE".into(),
                    ));
                }
                net.fill_params(params);
                Ok((Some(&net.weights), Some(&net.consts)))
            }
        }
    }

    /// [`Self::bind`] for the field, which also evaluates a velocity network (its frame is
    /// the mixture's, checked at upload).
    pub(crate) fn bind_field(
        self,
        params: &mut Params,
        sde: &Sde,
    ) -> Result<(Option<&'a wgpu::Buffer>, Option<&'a wgpu::Buffer>), GpuError> {
        match self {
            GpuScore::Net(net) if net.flow => {
                net.fill_params(params);
                Ok((Some(&net.weights), Some(&net.consts)))
            }
            other => other.bind(params, sde),
        }
    }
}

/// Most schedule entries a GPU sampler accepts (the table is 256 bytes per step).
pub const MAX_GPU_STEPS: usize = 65_536;
/// Steps encoded per command buffer.
const STEPS_PER_SUBMIT: usize = 64;

/// A running GPU sampler.
pub struct GpuSampler {
    /// Settings.
    pub config: SamplerConfig,
    particles: wgpu::Buffer,
    counters: wgpu::Buffer,
    mixture: wgpu::Buffer,
    params: Params,
    bind: wgpu::BindGroup,
    step_bind: wgpu::BindGroup,
    table: wgpu::Buffer,
    sde: Sde,
    total: usize,
    cursor: usize,
    nfe: u64,
    times: Vec<f64>,
    aux: wgpu::Buffer,
    mala: bool,
}

impl GpuSampler {
    /// Start `n` particles (the same start as the CPU sampler with this config).
    pub fn new(
        ctx: &GpuContext,
        score: GpuScore<'_>,
        mixture: &GaussianMixture,
        sde: Sde,
        config: &SamplerConfig,
        n: usize,
    ) -> Result<Self, GpuError> {
        Self::new_guided(ctx, score, None, mixture, sde, config, n)
    }

    /// [`Self::new`] with classifier guidance toward component `k` at scale γ (`guide`):
    /// the score is s + γ ∇ log p_t(k | x) with the exact noisy classifier, as
    /// `sim::guidance::GuidedScore` on the CPU (`classifier_grad` in `mixture.wgsl`).
    pub fn new_guided(
        ctx: &GpuContext,
        score: GpuScore<'_>,
        guide: Option<(usize, f64)>,
        mixture: &GaussianMixture,
        sde: Sde,
        config: &SamplerConfig,
        n: usize,
    ) -> Result<Self, GpuError> {
        if let Some((k, gamma)) = guide {
            if k >= mixture.len() || !gamma.is_finite() {
                return Err(GpuError::Unsupported(format!(
                    "guidance toward component {} (γ = {gamma}) but the mixture has {}",
                    k + 1,
                    mixture.len()
                )));
            }
        }
        if config.kind == SamplerKind::OdeRk45 {
            return Err(GpuError::Unsupported(
                "ode-rk45 is adaptive and runs on the CPU; on the GPU use ode-rk4 (fixed steps)"
                    .into(),
            ));
        }
        let cpu = Sampler::new(config.clone(), sde, n)
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let total = cpu.total_steps();
        if total > MAX_GPU_STEPS {
            return Err(GpuError::Unsupported(format!(
                "the GPU sampler runs at most {MAX_GPU_STEPS} steps (asked {total})"
            )));
        }
        let mut p = Params::with_sde(&sde);
        let (weights, consts) = score.bind(&mut p, &sde)?;
        if let Some((k, gamma)) = guide {
            p.guidance_component = k as u32;
            p.guidance_scale = gamma as f32;
        }
        p.n_particles = n as u32;
        p.snr = config.snr as f32;
        p.seed = config.seed;
        let init: Vec<[f32; 4]> = cpu
            .x
            .iter()
            .map(|x| [x.x as f32, x.y as f32, x.x as f32, x.y as f32])
            .collect();
        let particles = ctx.storage(
            "GpuSampler::particles",
            (n * 16) as u64,
            wgpu::BufferUsages::VERTEX,
        );
        ctx.write_buffer(&particles, 0, bytemuck::cast_slice(&init));
        let aux = ctx.storage(
            "GpuSampler::aux",
            ((4 + 4 * n) * 4) as u64,
            wgpu::BufferUsages::empty(),
        );
        let EvalBind {
            params: _,
            mixture: mixture_buf,
            counters,
            bind,
        } = EvalBind::new(
            ctx,
            "GpuSampler",
            &p,
            (mixture, &sde),
            (weights, consts),
            Some(&particles),
            &aux,
            64 * 4,
        );
        let (table, step_bind) = step_table(ctx, "GpuSampler::schedule", total);
        let times = write_schedule(ctx, &table, &cpu);
        Ok(Self {
            // With t_end resolved, as the CPU sampler keeps it through a drag.
            config: cpu.config.clone(),
            particles,
            counters,
            mixture: mixture_buf,
            params: p,
            bind,
            step_bind,
            table,
            sde,
            total,
            cursor: 0,
            nfe: 0,
            times,
            aux,
            mala: false,
        })
    }

    /// Metropolis-adjust the Langevin family against the exact p_t (`mala_step` in
    /// `langevin_step.wgsl`, twin of `sim::samplers::Sampler::with_mala`); other samplers
    /// ignore it.
    pub fn with_mala(mut self) -> Self {
        self.mala = matches!(
            self.config.kind,
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin
        );
        self
    }

    /// Whether the steps are Metropolis-adjusted.
    pub fn is_mala(&self) -> bool {
        self.mala
    }

    /// (buffer, offset, bytes) of the per-particle accepted-move counts (f32) of a MALA run,
    /// for an asynchronous readback ([`accepted_of`]).
    pub fn accepted_range(&self) -> (&wgpu::Buffer, u64, u64) {
        (&self.aux, 16, 4 * u64::from(self.params.n_particles))
    }

    /// (accepted, proposed) moves so far of a MALA run (blocking).
    pub fn acceptance(&self, ctx: &GpuContext) -> Result<(u64, u64), GpuError> {
        let v = ctx.read_f32(&self.aux, 4, u64::from(self.params.n_particles))?;
        Ok((accepted_of(&v), self.proposed()))
    }

    /// Metropolis proposals so far (particles × steps taken).
    pub fn proposed(&self) -> u64 {
        u64::from(self.params.n_particles) * self.cursor as u64
    }

    /// Replace the mixture the exact score (and guidance) uses and the SDE's data frame (both
    /// scores follow it); takes effect at the next submit. The schedule's times are kept; the
    /// few-step samplers' coefficients follow the new SDE, as `Sampler::set_sde` does.
    pub fn set_mixture(&mut self, ctx: &GpuContext, m: &GaussianMixture, sde: &Sde) {
        crate::gpu::write_mixture(ctx, &self.mixture, m, sde);
        if self.config.kind.is_few_step() && *sde != self.sde {
            self.sde = *sde;
            if let Ok(cpu) = Sampler::new(self.config.clone(), self.sde, 1) {
                write_schedule(ctx, &self.table, &cpu);
            }
        }
    }

    /// SDE time (or noise level's time) of the next step; the final time once done.
    pub fn current_t(&self) -> f64 {
        self.times
            .get(self.cursor.min(self.times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    }

    /// Number of particles.
    pub fn n_particles(&self) -> usize {
        self.params.n_particles as usize
    }

    /// Dispatches per step.
    pub fn dispatches_per_step(&self) -> u32 {
        if self.config.kind == SamplerKind::Pc {
            4
        } else {
            1
        }
    }

    /// Network evaluations per particle so far (same convention as the CPU sampler).
    pub fn nfe(&self) -> u64 {
        self.nfe
    }

    /// Steps taken / total.
    pub fn progress(&self) -> (usize, usize) {
        (self.cursor, self.total)
    }

    /// Whether the schedule is complete.
    pub fn done(&self) -> bool {
        self.cursor >= self.total
    }

    /// Encode up to `k` steps into `encoder`; returns how many were encoded.
    pub fn encode(
        &mut self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        k: usize,
    ) -> usize {
        let k = k.min(self.total - self.cursor);
        if k == 0 {
            return 0;
        }
        let groups = groups(self.params.n_particles);
        let (tx, ty) = tile_groups(self.params.n_particles, self.params.score_kind == SCORE_NET);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("GpuSampler::steps"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind, &[]);
        let per_eval = match self.config.kind {
            SamplerKind::OdeHeun | SamplerKind::EdmHeun => 2,
            SamplerKind::OdeRk4 => 4,
            SamplerKind::Pc => 2,
            _ => 1,
        };
        for i in self.cursor..self.cursor + k {
            pass.set_bind_group(1, &self.step_bind, &[(i as u64 * STEP_STRIDE) as u32]);
            match self.config.kind {
                SamplerKind::Langevin | SamplerKind::AnnealedLangevin if self.mala => {
                    pass.set_pipeline(ctx.pipeline(Entry::MalaStep));
                    ctx.dispatch(&mut pass, groups, 1, 1);
                }
                SamplerKind::Langevin | SamplerKind::AnnealedLangevin => {
                    pass.set_pipeline(ctx.pipeline(Entry::LangevinStep));
                    ctx.dispatch(&mut pass, tx, ty, 1);
                }
                SamplerKind::ReverseSde => {
                    pass.set_pipeline(ctx.pipeline(Entry::ReverseSdeStep));
                    ctx.dispatch(&mut pass, tx, ty, 1);
                }
                SamplerKind::Pc | SamplerKind::Ancestral => {
                    if self.config.kind == SamplerKind::Pc {
                        pass.set_pipeline(ctx.pipeline(Entry::PcScore));
                        ctx.dispatch(&mut pass, tx, ty, 1);
                        pass.set_pipeline(ctx.pipeline(Entry::PcNorms));
                        ctx.dispatch(&mut pass, 1, 1, 1);
                        pass.set_pipeline(ctx.pipeline(Entry::PcCorrect));
                        ctx.dispatch(&mut pass, groups, 1, 1);
                    }
                    pass.set_pipeline(ctx.pipeline(Entry::AncestralStep));
                    ctx.dispatch(&mut pass, tx, ty, 1);
                }
                SamplerKind::OdeEuler | SamplerKind::OdeHeun | SamplerKind::OdeRk4 => {
                    pass.set_pipeline(ctx.pipeline(Entry::PfOdeStep));
                    ctx.dispatch(&mut pass, tx, ty, 1);
                }
                SamplerKind::Ddim | SamplerKind::EdmHeun | SamplerKind::DpmSolver => {
                    pass.set_pipeline(ctx.pipeline(Entry::FewStepStep));
                    ctx.dispatch(&mut pass, tx, ty, 1);
                }
                SamplerKind::OdeRk45 => unreachable!("refused in GpuSampler::new"),
            }
        }
        self.cursor += k;
        self.nfe += (per_eval * k) as u64;
        k
    }

    /// Submit up to `k` steps (does not wait).
    pub fn step_n(&mut self, ctx: &GpuContext, k: usize) -> usize {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuSampler::step_n"),
            });
        let done = self.encode(ctx, &mut enc, k);
        ctx.submit(enc);
        done
    }

    /// Run the whole schedule.
    pub fn run(&mut self, ctx: &GpuContext) {
        while !self.done() {
            self.step_n(ctx, STEPS_PER_SUBMIT);
        }
    }

    /// The particle buffer (storage + vertex: `vec4<f32>` = (x, x_mean) per particle).
    pub fn particles_buffer(&self) -> &wgpu::Buffer {
        &self.particles
    }

    /// (x, x_mean) of every particle (blocking).
    pub fn read_state(&self, ctx: &GpuContext) -> Result<Vec<(Vec2, Vec2)>, GpuError> {
        let v = ctx.read_f32(&self.particles, 0, 4 * u64::from(self.params.n_particles))?;
        Ok(v.chunks_exact(4)
            .map(|c| {
                (
                    Vec2::new(f64::from(c[0]), f64::from(c[1])),
                    Vec2::new(f64::from(c[2]), f64::from(c[3])),
                )
            })
            .collect())
    }

    /// The samples: noise-free means once done, current particles before (blocking).
    pub fn samples(&self, ctx: &GpuContext) -> Result<Vec<Vec2>, GpuError> {
        let done = self.done();
        Ok(self
            .read_state(ctx)?
            .into_iter()
            .map(|(x, m)| if done { m } else { x })
            .collect())
    }

    /// Finite particles per mixture component (by x_mean), counted on the GPU
    /// (`mode_histogram`); the diverged ones are n − Σ counts
    /// (`sim::metrics::ModeCensus::from_counts`).
    pub fn mode_histogram(
        &self,
        ctx: &GpuContext,
        n_components: usize,
    ) -> Result<Vec<u32>, GpuError> {
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("GpuSampler::hist"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("mode_histogram"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &self.bind, &[]);
            pass.set_bind_group(1, &self.step_bind, &[0]);
            pass.set_pipeline(ctx.pipeline(Entry::ModeHistogram));
            ctx.dispatch(&mut pass, 1, 1, 1);
        }
        ctx.submit(enc);
        ctx.read_u32(&self.counters, 8, n_components as u64)
    }
}

/// Write `cpu`'s schedule into `table` (one [`StepParams`] per step, [`STEP_STRIDE`] apart:
/// the times and α of `Sampler::schedule_at`, the few-step coefficients of
/// `Sampler::few_coefs`); returns the N + 1 times.
fn write_schedule(ctx: &GpuContext, table: &wgpu::Buffer, cpu: &Sampler) -> Vec<f64> {
    let total = cpu.total_steps();
    let method = match cpu.config.kind {
        SamplerKind::OdeHeun | SamplerKind::EdmHeun => 1,
        SamplerKind::OdeRk4 => 2,
        _ => 0,
    };
    let mut bytes = vec![0u8; total * STEP_STRIDE as usize];
    let mut times = Vec::with_capacity(total + 1);
    for i in 0..total {
        let (t, tn, a) = cpu.schedule_at(i);
        times.push(t);
        if i + 1 == total {
            times.push(tn);
        }
        let c = cpu.few_coefs(i).map_or([[0.0; 4]; 3], |c| {
            [
                [c.a, c.a_hi, c.s2_hi, c.t_hi],
                [c.a_next, c.s2_next, c.sigma_hi, c.sigma_next],
                [c.pre, c.post, c.ratio, c.h],
            ]
            .map(|row| row.map(|v| v as f32))
        });
        let sp = StepParams {
            step: i as u32,
            method,
            seed: cpu.config.seed,
            _pad: 0,
            t: t as f32,
            t_next: tn as f32,
            alpha: a as f32,
            dt: (tn - t) as f32,
            c,
        };
        let at = i * STEP_STRIDE as usize;
        bytes[at..at + std::mem::size_of::<StepParams>()].copy_from_slice(bytemuck::bytes_of(&sp));
    }
    ctx.write_buffer(table, 0, &bytes);
    times
}

/// The total of per-particle accepted-move counts read back from [`GpuSampler::accepted_range`].
pub fn accepted_of(counts: &[f32]) -> u64 {
    counts.iter().map(|&c| c as u64).sum()
}

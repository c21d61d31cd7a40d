//! GPU-visible structs: each mirrors a WGSL struct in `shaders/common.wgsl` of the same role
//! (`Params` ↔ `Params`, `ComponentGpu` ↔ `Component`, `MixtureGpu` ↔ `Mixture`,
//! `StepParams` ↔ `StepParams`). `tests/shader_validation.rs` compares naga's offsets with `offset_of!`.

use bytemuck::{Pod, Zeroable};

use crate::sim::mixture::{GaussianMixture, MAX_COMPONENTS};
use crate::sim::sde::{Sde, SdeKind};

/// Engine-wide parameters (uniform, group 0 binding 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    /// Network input size.
    pub n_in: u32,
    /// Hidden width.
    pub width: u32,
    /// Hidden layers.
    pub depth: u32,
    /// Time Fourier frequencies.
    pub n_time_freqs: u32,
    /// x Fourier frequencies.
    pub n_x_freqs: u32,
    /// Parameter count.
    pub n_params: u32,
    /// Training batch.
    pub batch: u32,
    /// RNG seed.
    pub seed: u32,
    /// 0 VE, 1 VP, 2 sub-VP.
    pub sde_kind: u32,
    /// 0 exact, 1 network.
    pub score_kind: u32,
    /// Particles (samplers) or evaluation points (metrics).
    pub n_particles: u32,
    /// Floats of training scratch per sample.
    pub scratch_stride: u32,
    /// VP β_min.
    pub beta_min: f32,
    /// VP β_max.
    pub beta_max: f32,
    /// Preconditioning data scale.
    pub data_std: f32,
    /// Training t floor.
    pub t_eps: f32,
    /// Adam learning rate.
    pub lr: f32,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε.
    pub adam_eps: f32,
    /// EMA decay.
    pub ema_decay: f32,
    /// Predictor–corrector snr.
    pub snr: f32,
    /// Field grid columns.
    pub grid_nx: u32,
    /// Field grid rows.
    pub grid_ny: u32,
    /// Guidance target component.
    pub guidance_component: u32,
    /// Guidance scale γ (0 = off).
    pub guidance_scale: f32,
    /// Field grid lower corner.
    pub grid_lo: [f32; 2],
    /// Field grid upper corner.
    pub grid_hi: [f32; 2],
    /// Training samples per gradient chunk (`train_grad`'s batch split).
    pub grad_chunk: u32,
    /// Gradient chunks (partials `reduce_adam` sums).
    pub grad_chunks: u32,
}

/// One mixture component (`Component` in WGSL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ComponentGpu {
    /// Mean.
    pub mean: [f32; 2],
    /// Normalised weight.
    pub weight: f32,
    /// ln weight.
    pub log_weight: f32,
    /// Covariance (xx, xy, yy, 0).
    pub cov: [f32; 4],
    /// Cholesky factor (l00, l10, l11, 0).
    pub chol: [f32; 4],
}

/// The mixture uniform (`Mixture` in WGSL, group 0 binding 1): the components and the SDE's
/// data frame (`sim::sde`), which change together when the user drags.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MixtureGpu {
    /// Component count.
    pub n: u32,
    /// The frame's scale d.
    pub scale: f32,
    /// The frame's centre m.
    pub center: [f32; 2],
    /// VE σ_min.
    pub sigma_min: f32,
    /// VE σ_max.
    pub sigma_max: f32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
    /// Components (first `n` used).
    pub comps: [ComponentGpu; MAX_COMPONENTS],
}

impl MixtureGpu {
    /// Pack a validated mixture and the frame of `sde`.
    pub fn new(m: &GaussianMixture, sde: &Sde) -> Self {
        let mut comps = [ComponentGpu::default(); MAX_COMPONENTS];
        for (c, (g, &w)) in comps.iter_mut().zip(m.components().iter().zip(m.weights())) {
            *c = ComponentGpu {
                mean: [g.mean.x as f32, g.mean.y as f32],
                weight: w as f32,
                log_weight: w.ln() as f32,
                cov: [
                    g.cov[(0, 0)] as f32,
                    g.cov[(0, 1)] as f32,
                    g.cov[(1, 1)] as f32,
                    0.0,
                ],
                chol: [
                    g.chol[(0, 0)] as f32,
                    g.chol[(1, 0)] as f32,
                    g.chol[(1, 1)] as f32,
                    0.0,
                ],
            };
        }
        Self {
            n: m.len() as u32,
            scale: sde.scale as f32,
            center: [sde.center[0] as f32, sde.center[1] as f32],
            sigma_min: sde.sigma_min as f32,
            sigma_max: sde.sigma_max as f32,
            _pad: [0; 2],
            comps,
        }
    }
}

/// One step of a sampler schedule (`StepParams`, group 1 binding 0, dynamic offset).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StepParams {
    /// Step index (RNG counter).
    pub step: u32,
    /// PF-ODE method: 0 Euler, 1 Heun, 2 RK4.
    pub method: u32,
    /// Evaluation seed (metrics).
    pub seed: u32,
    /// Padding.
    pub _pad: u32,
    /// Time / noise level of the step.
    pub t: f32,
    /// Time at the end of the step.
    pub t_next: f32,
    /// Langevin step size, or the corrector coefficient a.
    pub alpha: f32,
    /// t_next − t.
    pub dt: f32,
    /// The few-step samplers' coefficients (`fewstep_step.wgsl`): (a, a_hi, s²_hi, t_hi),
    /// (a', s'², σ_hi, σ'), (pre, post, ratio, h) of `sim::samplers::fewstep::FewCoefs`.
    pub c: [[f32; 4]; 3],
}

/// The WGSL `sde_kind` code.
pub fn sde_code(kind: SdeKind) -> u32 {
    match kind {
        SdeKind::Ve => 0,
        SdeKind::Vp => 1,
        SdeKind::Subvp => 2,
    }
}

impl Params {
    /// Parameters with the SDE's family fields filled in (its frame and σ range travel in the
    /// mixture uniform, [`MixtureGpu::new`]).
    pub fn with_sde(sde: &Sde) -> Self {
        Self {
            sde_kind: sde_code(sde.kind),
            beta_min: sde.beta_min as f32,
            beta_max: sde.beta_max as f32,
            data_std: 1.0,
            ..Self::default()
        }
    }
}

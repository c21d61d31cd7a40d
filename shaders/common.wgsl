// common.wgsl — the prelude of every ScoreLab compute module (concatenated by src/gpu/shaders.rs).
// Structs here mirror src/gpu/layout.rs (#[repr(C)] Pod); tests/shader_validation.rs compares
// their offsets.
// RNG and SDE functions mirror src/sim/rng.rs and src/sim/sde.rs line by line.

/// Threads per workgroup of the one-thread-per-item stages (src/gpu/mod.rs WORKGROUP_SIZE).
const WORKGROUP_SIZE: u32 = 64u;

const PI: f32 = 3.14159265358979;
const TAU: f32 = 6.28318530717959;
/// Largest hidden width / input size a GPU network may have.
const MAX_W: u32 = 256u;
/// Most mixture components (src/sim/mixture.rs MAX_COMPONENTS).
const MAX_K: u32 = 32u;

const SDE_VE: u32 = 0u;
const SDE_VP: u32 = 1u;
const SDE_SUBVP: u32 = 2u;

const SCORE_EXACT: u32 = 0u;
const SCORE_NET: u32 = 1u;
/// A velocity network of flow matching (sim::flow::FlowNet): the same MLP and features' layout,
/// its own preconditioning; training and the field only.
const SCORE_FLOW: u32 = 2u;

// RNG streams (src/sim/rng.rs `stream`).
const STREAM_DATA: u32 = 1u;
const STREAM_NOISE: u32 = 2u;
const STREAM_INIT: u32 = 3u;
const STREAM_STEP: u32 = 4u;
const STREAM_CORRECTOR: u32 = 5u;
const STREAM_EVAL: u32 = 8u;
const STREAM_SEQUENTIAL: u32 = 9u;

// Mirrors layout::Params.
struct Params {
    n_in: u32,
    width: u32,
    depth: u32,
    n_time_freqs: u32,
    n_x_freqs: u32,
    n_params: u32,
    batch: u32,
    seed: u32,
    sde_kind: u32,
    score_kind: u32,
    n_particles: u32,
    scratch_stride: u32,
    beta_min: f32,
    beta_max: f32,
    data_std: f32,
    t_eps: f32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    adam_eps: f32,
    ema_decay: f32,
    snr: f32,
    grid_nx: u32,
    grid_ny: u32,
    guidance_component: u32,
    guidance_scale: f32,
    grid_lo: vec2<f32>,
    grid_hi: vec2<f32>,
    grad_chunk: u32,
    grad_chunks: u32,
}

// Mirrors layout::ComponentGpu: cov = (xx, xy, yy, 0), chol = (l00, l10, l11, 0).
struct Component {
    mean: vec2<f32>,
    weight: f32,
    log_weight: f32,
    cov: vec4<f32>,
    chol: vec4<f32>,
}

// Mirrors layout::MixtureGpu: the components and the SDE's data frame (sim::sde), which
// travel together so a drag moves both in one write.
struct Mixture {
    n: u32,
    scale: f32,
    center: vec2<f32>,
    sigma_min: f32,
    sigma_max: f32,
    _pad0: u32,
    _pad1: u32,
    comps: array<Component, 32>,
}

// Mirrors layout::StepParams: one entry of a sampler's schedule (bound with a dynamic offset).
struct StepParams {
    step: u32,
    method: u32,
    seed: u32,
    _pad: u32,
    t: f32,
    t_next: f32,
    alpha: f32,
    dt: f32,
    c: array<vec4<f32>, 3>,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<uniform> MIX: Mixture;
@group(0) @binding(2) var<storage, read_write> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> adam: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(5) var<storage, read_write> particles: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read_write> consts: array<f32>;
@group(0) @binding(8) var<storage, read_write> counters: array<u32>;
@group(1) @binding(0) var<uniform> S: StepParams;

// ------------------------------------------------------------------ RNG (sim::rng)

// Whether v is a finite number (checked on the exponent bits: NaN comparisons may fold).
fn is_finite_f32(v: f32) -> bool {
    return ((bitcast<u32>(v) >> 23u) & 0xffu) != 0xffu;
}

// Escape radius of a particle in frame scales (sim::metrics::ESCAPE_SPREADS).
const ESCAPE_SPREADS: f32 = 1000.0;

fn pcg4d(v_in: vec4<u32>) -> vec4<u32> {
    var v = v_in * 1664525u + 1013904223u;
    v.x += v.y * v.w;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v.w += v.y * v.z;
    v = v ^ (v >> vec4<u32>(16u));
    v.x += v.y * v.w;
    v.y += v.z * v.x;
    v.z += v.x * v.y;
    v.w += v.y * v.z;
    return v;
}

fn unit_closed_open(u: u32) -> f32 {
    return f32(u >> 8u) * (1.0 / 16777216.0);
}

fn unit_open_closed(u: u32) -> f32 {
    return f32((u >> 8u) + 1u) * (1.0 / 16777216.0);
}

fn box_muller(u1: u32, u2: u32) -> vec2<f32> {
    let r = sqrt(-2.0 * log(unit_open_closed(u1)));
    let theta = TAU * unit_closed_open(u2);
    return vec2<f32>(r * cos(theta), r * sin(theta));
}

fn rng_bits(step: u32, index: u32, stream: u32) -> vec4<u32> {
    return pcg4d(vec4<u32>(P.seed, step, index, stream));
}

fn normal2(step: u32, index: u32, stream: u32) -> vec2<f32> {
    let b = rng_bits(step, index, stream);
    return box_muller(b.x, b.y);
}

// ------------------------------------------------------------------ SDE (sim::sde)

fn expm1_(x: f32) -> f32 {
    // exp(x) − 1 without cancellation for small |x| (WGSL has no expm1).
    if (abs(x) < 1e-3) {
        return x + 0.5 * x * x + x * x * x / 6.0;
    }
    return exp(x) - 1.0;
}

fn ve_sigma(t: f32) -> f32 {
    return MIX.sigma_min * exp(t * log(MIX.sigma_max / MIX.sigma_min));
}

fn beta_t(t: f32) -> f32 {
    return P.beta_min + t * (P.beta_max - P.beta_min);
}

fn beta_integral(t: f32) -> f32 {
    return P.beta_min * t + 0.5 * t * t * (P.beta_max - P.beta_min);
}

/// (α(t), s(t)), s in data units (VP / sub-VP: the frame's scale d × the unit-frame s).
fn marginal(t: f32) -> vec2<f32> {
    if (P.sde_kind == SDE_VE) {
        return vec2<f32>(1.0, ve_sigma(t));
    }
    let b = beta_integral(t);
    let a = exp(-0.5 * b);
    if (P.sde_kind == SDE_VP) {
        return vec2<f32>(a, MIX.scale * sqrt(-expm1_(-b)));
    }
    return vec2<f32>(a, MIX.scale * -expm1_(-b));
}

/// The mean of x_t given x_0: m + α (x_0 − m) (sim::sde::Sde::forward_mean).
fn forward_mean(x0: vec2<f32>, a: f32) -> vec2<f32> {
    return MIX.center + a * (x0 - MIX.center);
}

fn drift(x: vec2<f32>, t: f32) -> vec2<f32> {
    if (P.sde_kind == SDE_VE) {
        return vec2<f32>(0.0);
    }
    return -0.5 * beta_t(t) * (x - MIX.center);
}

fn diffusion(t: f32) -> f32 {
    if (P.sde_kind == SDE_VE) {
        return ve_sigma(t) * sqrt(2.0 * log(MIX.sigma_max / MIX.sigma_min));
    }
    if (P.sde_kind == SDE_VP) {
        return MIX.scale * sqrt(beta_t(t));
    }
    return MIX.scale * sqrt(beta_t(t) * -expm1_(-2.0 * beta_integral(t)));
}

/// VP ancestral β_i = 1 − (α(t)/α(t_next))² = −expm1(−Δ∫β) (sim::sde::Sde::vp_step_beta).
fn vp_step_beta(t: f32, t_next: f32) -> f32 {
    let db = (t - t_next) * (P.beta_min + 0.5 * (P.beta_max - P.beta_min) * (t + t_next));
    return -expm1_(-db);
}

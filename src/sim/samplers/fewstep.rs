//! The samplers people use at low step counts, in EDM's variables (Karras et al. 2022, §2),
//! which hold on every SDE here: with the marginal x_t = m + α(t)(x₀ − m) + s(t) z, the
//! scaled state x̂ = m + (x − m)/α follows, in the noise level σ = s/α (the VE-equivalent
//! σ_e of [`Sde::effective_sigma`]), the probability-flow ODE
//!
//!   dx̂/dσ = (x̂ − D(x̂; σ)) / σ,   D = E[x₀ | x_t] = m + (x − m + s² ∇log p_t(x)) / α
//!
//! (Tweedie's denoiser of the score at the t where σ_e(t) = σ). On it:
//!
//! - **DDIM** (Song, Meng & Ermon 2021): x̂' = D + √(σ'² − c²) (x̂ − D)/σ + c z with
//!   c² = η² σ'² (σ² − σ'²)/σ². η = 0 is exactly Euler's method in σ on the ODE above (first
//!   order); η = 1 is ancestral sampling (DDPM's posterior step on VP, the VE reverse step).
//! - **Heun on the EDM schedule** (Karras et al. Alg. 1/2): σ_i = (σ_max^{1/ρ} + i/N (σ_min^{1/ρ}
//!   − σ_max^{1/ρ}))^ρ with ρ = 7, an Euler step and its trapezoidal correction (second
//!   order, 2 evaluations a step); with churn S_churn > 0 each step first raises σ by
//!   γ = min(S_churn/N, √2 − 1) and adds the matching fresh noise.
//! - **DPM-Solver++(2M)** (Lu et al. 2022, Alg. 2): a multistep data-prediction solver in
//!   λ = −log σ: x̂' = (σ'/σ) x̂ + (1 − σ'/σ) D̃ with D̃ = (1 + 1/2r) D_i − (1/2r) D_{i−1},
//!   r = h_{i−1}/h_i (the first step is DDIM's); second order, one evaluation a step.
//!
//! All three run on the same σ schedule from σ_e(t_start) to σ_e(t_end) (the SDE samplers' end,
//! [`Sde::sampling_t_end`]), so their errors against the exact ODE solution compare by NFE.

use super::SamplerKind;
use crate::sim::rng::{stream, CounterRng};
use crate::sim::score::ScoreModel;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// Which few-step sampler.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FewStep {
    /// DDIM with stochasticity η ∈ [0, 1] (0: deterministic).
    Ddim {
        /// η.
        eta: f64,
    },
    /// Heun's method on the EDM σ schedule, with churn S_churn ≥ 0 (0: deterministic).
    EdmHeun {
        /// S_churn.
        churn: f64,
    },
    /// DPM-Solver++(2M).
    DpmSolverPp2M,
}

impl FewStep {
    /// Score evaluations of an `n`-step run.
    pub fn nfe(self, n: usize) -> usize {
        match self {
            FewStep::EdmHeun { .. } => 2 * n,
            _ => n,
        }
    }

    /// Steps that spend at most `nfe` evaluations (at least 1).
    pub fn steps_for_nfe(self, nfe: usize) -> usize {
        match self {
            FewStep::EdmHeun { .. } => (nfe / 2).max(1),
            _ => nfe.max(1),
        }
    }

    /// No noise is drawn (η = 0, no churn): a discretisation of the PF-ODE.
    pub fn deterministic(self) -> bool {
        match self {
            FewStep::Ddim { eta } => eta == 0.0,
            FewStep::EdmHeun { churn } => churn == 0.0,
            FewStep::DpmSolverPp2M => true,
        }
    }

    /// A short name (CLI, tables).
    pub fn name(self) -> String {
        match self {
            FewStep::Ddim { eta: 0.0 } => "ddim".into(),
            FewStep::Ddim { eta } => format!("ddim-eta{eta}"),
            FewStep::EdmHeun { churn: 0.0 } => "edm-heun".into(),
            FewStep::EdmHeun { churn } => format!("edm-heun-churn{churn}"),
            FewStep::DpmSolverPp2M => "dpm-solver++2m".into(),
        }
    }
}

/// EDM's ρ = 7 schedule: `n + 1` noise levels from `sigma_max` down to `sigma_min`.
pub fn edm_sigmas(sigma_max: f64, sigma_min: f64, n: usize, rho: f64) -> Vec<f64> {
    let n = n.max(1);
    let (a, b) = (sigma_max.powf(1.0 / rho), sigma_min.powf(1.0 / rho));
    (0..=n)
        .map(|i| (a + (i as f64 / n as f64) * (b - a)).powf(rho))
        .collect()
}

/// The kind of a few-step sampler run in `sim::samplers::Sampler` (and on the GPU): every
/// step is one denoiser evaluation and a multistep update (DDIM, DPM-Solver++(2M)) or two and
/// Heun's correction (EDM).
impl FewStep {
    /// The few-step sampler of a [`SamplerKind`] with the config's η and churn (None for the
    /// other samplers).
    pub fn of(kind: SamplerKind, eta: f64, churn: f64) -> Option<Self> {
        match kind {
            SamplerKind::Ddim => Some(FewStep::Ddim { eta }),
            SamplerKind::EdmHeun => Some(FewStep::EdmHeun { churn }),
            SamplerKind::DpmSolver => Some(FewStep::DpmSolverPp2M),
            _ => None,
        }
    }
}

/// One step's coefficients, in data space, from x at `t` to `t_next` (the CPU computes them in
/// f64; the GPU sampler uploads the same numbers as f32, so both engines share one schedule).
/// With u = x̂ − m the scaled state relative to the frame's centre:
///
/// - start: u = (x − m)/a + pre z; the denoiser is asked at x₁ = m + a_hi u, time t_hi:
///   D₁ − m = (x₁ − m + s²_hi s(x₁, t_hi)) / a_hi;
/// - multistep (DDIM, DPM-Solver++(2M)): u' = ratio u + (1 − ratio) D̃ + post z with
///   D̃ = (1 + h) (D₁ − m) − h (D_prev − m), h = 1/(2r) (0 on DDIM and on the first step);
/// - Heun: k₁ = (u − (D₁ − m))/σ_hi, e = u + (σ' − σ_hi) k₁, the denoiser at x₂ = m + a' e,
///   time t', k₂ = (e − (D₂ − m))/σ', u' = u + (σ' − σ_hi)(k₁ + k₂)/2;
/// - end: x' = m + a' u'.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FewCoefs {
    /// Time of the step's start.
    pub t: f64,
    /// Time the (first) denoiser is asked at (above t with churn).
    pub t_hi: f64,
    /// Time of the step's end.
    pub t_next: f64,
    /// α(t).
    pub a: f64,
    /// α(t_hi).
    pub a_hi: f64,
    /// s(t_hi)².
    pub s2_hi: f64,
    /// α(t_next).
    pub a_next: f64,
    /// s(t_next)².
    pub s2_next: f64,
    /// σ at t_hi (the churned level).
    pub sigma_hi: f64,
    /// σ at t_next.
    pub sigma_next: f64,
    /// Noise added before the step (churn), in x̂'s units.
    pub pre: f64,
    /// Noise added after the step (DDIM's c), in x̂'s units.
    pub post: f64,
    /// Multistep: the weight kept of u (σ'/σ; DDIM: √(σ'² − c²)/σ).
    pub ratio: f64,
    /// DPM-Solver++(2M)'s 1/(2r) (0 on the first step and on DDIM).
    pub h: f64,
    /// Heun's two-evaluation step (else multistep).
    pub heun: bool,
}

/// The step coefficients of an `n`-step run of `kind` from `t_start` to `t_end` on `sde`.
pub fn few_schedule(kind: FewStep, sde: &Sde, t_start: f64, t_end: f64, n: usize) -> Vec<FewCoefs> {
    let sigmas = edm_sigmas(
        sde.effective_sigma(t_start),
        sde.effective_sigma(t_end),
        n,
        7.0,
    );
    let last = sigmas.len() - 1;
    // The run's ends are exactly its ends; the levels between are asked at their times.
    let time = |i: usize| match i {
        0 => t_start,
        i if i == last => t_end,
        i => sde.time_of_sigma(sigmas[i]).clamp(t_end, t_start),
    };
    let steps = last;
    (0..steps)
        .map(|i| {
            let (sigma, next) = (sigmas[i], sigmas[i + 1]);
            let (t, t_next) = (time(i), time(i + 1));
            let (a, _) = sde.marginal(t);
            let (a_next, s_next) = sde.marginal(t_next);
            let mut c = FewCoefs {
                t,
                t_hi: t,
                t_next,
                a,
                a_hi: a,
                s2_hi: sde.marginal(t).1.powi(2),
                a_next,
                s2_next: s_next * s_next,
                sigma_hi: sigma,
                sigma_next: next,
                ratio: next / sigma,
                ..FewCoefs::default()
            };
            match kind {
                FewStep::Ddim { eta } => {
                    let c2 = (eta * eta * next * next * (sigma * sigma - next * next)
                        / (sigma * sigma))
                        .max(0.0);
                    c.post = c2.sqrt();
                    c.ratio = (next * next - c2).max(0.0).sqrt() / sigma;
                }
                FewStep::EdmHeun { churn } => {
                    c.heun = true;
                    let gamma = (churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0);
                    if gamma > 0.0 {
                        let raised = sigma * (1.0 + gamma);
                        c.pre = (raised * raised - sigma * sigma).max(0.0).sqrt();
                        c.sigma_hi = raised;
                        // A churned level above σ_e(1) is asked at t = 1.
                        c.t_hi = sde.time_of_sigma(raised).max(t);
                        let (a_hi, s_hi) = sde.marginal(c.t_hi);
                        c.a_hi = a_hi;
                        c.s2_hi = s_hi * s_hi;
                    }
                }
                FewStep::DpmSolverPp2M => {
                    if i > 0 {
                        let h = (sigma / next).ln();
                        c.h = h / (2.0 * (sigmas[i - 1] / sigma).ln());
                    }
                }
            }
            c
        })
        .collect()
}

/// Scratch of a few-step step over a range of particles.
pub struct FewScratch<'a> {
    /// Stage points (n).
    pub points: &'a mut [Vec2],
    /// Scores at them (n).
    pub scores: &'a mut [Vec2],
    /// The scaled states u (n).
    pub u: &'a mut [Vec2],
}

/// One step (`c`, step index `step` of the noise counter) of particles `x` (the first of
/// which is particle `offset`), in place: x_mean gets the noise-free end (DDIM's before its
/// fresh noise), d_prev the denoised points (DPM-Solver++(2M)'s memory, read before it is
/// written). Returns the score evaluations per particle. Twin of `fewstep_step` in
/// `fewstep_step.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn fewstep_range(
    c: &FewCoefs,
    sde: &Sde,
    score: &dyn ScoreModel,
    rng: &CounterRng,
    (step, offset): (u32, usize),
    x: &mut [Vec2],
    x_mean: &mut [Vec2],
    d_prev: &mut [Vec2],
    s: FewScratch<'_>,
) -> u64 {
    let m = sde.center();
    let z = |j: usize| rng.normal2(step, (offset + j) as u32, stream::STEP);
    for (j, ((u, p), x)) in
        s.u.iter_mut()
            .zip(s.points.iter_mut())
            .zip(x.iter())
            .enumerate()
    {
        *u = (x - m) / c.a;
        if c.pre > 0.0 {
            *u += c.pre * z(j);
        }
        *p = m + c.a_hi * *u;
    }
    score.score_batch(s.points, c.t_hi, s.scores);
    if !c.heun {
        for (j, (((x, xm), dp), u)) in x
            .iter_mut()
            .zip(x_mean.iter_mut())
            .zip(d_prev.iter_mut())
            .zip(s.u.iter())
            .enumerate()
        {
            let d1 = (s.points[j] - m + c.s2_hi * s.scores[j]) / c.a_hi;
            let blend = if c.h != 0.0 {
                (1.0 + c.h) * d1 - c.h * (*dp - m)
            } else {
                d1
            };
            let mean = m + c.a_next * (c.ratio * u + (1.0 - c.ratio) * blend);
            *dp = m + d1;
            *xm = mean;
            *x = if c.post > 0.0 {
                mean + c.a_next * c.post * z(j)
            } else {
                mean
            };
        }
        return 1;
    }
    let dsig = c.sigma_next - c.sigma_hi;
    // k₁ into x_mean (scratch until the end), the Euler point into points.
    for (j, (k1, u)) in x_mean.iter_mut().zip(s.u.iter()).enumerate() {
        let d1 = (s.points[j] - m + c.s2_hi * s.scores[j]) / c.a_hi;
        *k1 = (u - d1) / c.sigma_hi;
        s.points[j] = m + c.a_next * (u + dsig * *k1);
    }
    score.score_batch(s.points, c.t_next, s.scores);
    for (j, ((x, k1), u)) in x
        .iter_mut()
        .zip(x_mean.iter_mut())
        .zip(s.u.iter())
        .enumerate()
    {
        let e = u + dsig * *k1;
        let d2 = (s.points[j] - m + c.s2_next * s.scores[j]) / c.a_next;
        let k2 = (e - d2) / c.sigma_next;
        *x = m + c.a_next * (u + dsig * 0.5 * (*k1 + k2));
        *k1 = *x;
    }
    2
}

/// One run of a few-step sampler from given points, a step at a time (the sweep spreads its
/// runs over frames); the same steps as the live [`super::Sampler`]'s ([`fewstep_range`]).
pub struct FewStepRun {
    sde: Sde,
    coefs: Vec<FewCoefs>,
    rng: CounterRng,
    x: Vec<Vec2>,
    x_mean: Vec<Vec2>,
    d_prev: Vec<Vec2>,
    scratch: [Vec<Vec2>; 3],
    i: usize,
    nfe: usize,
}

impl FewStepRun {
    /// A run of `kind` for `n` steps from `t_start` to `t_end`, starting at `xs` (points of
    /// x_{t_start}, e.g. the prior's); `seed` draws DDIM's and the churn's noise.
    pub fn new(
        kind: FewStep,
        sde: &Sde,
        xs: &[Vec2],
        t_start: f64,
        t_end: f64,
        n: usize,
        seed: u32,
    ) -> Self {
        let zeros = vec![Vec2::zeros(); xs.len()];
        Self {
            sde: *sde,
            coefs: few_schedule(kind, sde, t_start, t_end, n),
            rng: CounterRng::new(seed),
            x: xs.to_vec(),
            x_mean: xs.to_vec(),
            d_prev: zeros.clone(),
            scratch: [zeros.clone(), zeros.clone(), zeros],
            i: 0,
            nfe: 0,
        }
    }

    /// Every step taken.
    pub fn done(&self) -> bool {
        self.i >= self.coefs.len()
    }

    /// Score evaluations per particle so far.
    pub fn nfe(&self) -> usize {
        self.nfe
    }

    /// One step.
    pub fn step(&mut self, score: &dyn ScoreModel) {
        let Some(c) = self.coefs.get(self.i) else {
            return;
        };
        let [points, scores, u] = &mut self.scratch;
        self.nfe += fewstep_range(
            c,
            &self.sde,
            score,
            &self.rng,
            (self.i as u32, 0),
            &mut self.x,
            &mut self.x_mean,
            &mut self.d_prev,
            FewScratch { points, scores, u },
        ) as usize;
        self.i += 1;
    }

    /// The particles now, in data space (the noise-free ends once [`Self::done`]).
    pub fn points(&self) -> Vec<Vec2> {
        if self.done() {
            self.x_mean.clone()
        } else {
            self.x.clone()
        }
    }
}

/// Run `kind` for `n` steps from `t_start` to `t_end` on `xs` (points of x_{t_start}, e.g. the
/// prior's), in place; returns the score evaluations per particle. `seed` draws DDIM's and the
/// churn's noise.
#[allow(clippy::too_many_arguments)]
pub fn run(
    kind: FewStep,
    score: &dyn ScoreModel,
    sde: &Sde,
    xs: &mut [Vec2],
    t_start: f64,
    t_end: f64,
    n: usize,
    seed: u32,
) -> usize {
    let mut r = FewStepRun::new(kind, sde, xs, t_start, t_end, n, seed);
    while !r.done() {
        r.step(score);
    }
    xs.copy_from_slice(&r.points());
    r.nfe()
}

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

use crate::sim::rng::CounterRng;
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

/// The denoiser D(x̂; σ) at every point, from `score` at the t where σ_e(t) = σ.
struct Denoiser<'a> {
    score: &'a dyn ScoreModel,
    sde: &'a Sde,
    xs: Vec<Vec2>,
    scores: Vec<Vec2>,
    nfe: usize,
}

impl Denoiser<'_> {
    fn eval(&mut self, hat: &[Vec2], t: f64, out: &mut [Vec2]) {
        let (alpha, s) = self.sde.marginal(t);
        let m = self.sde.center();
        for (x, h) in self.xs.iter_mut().zip(hat) {
            *x = m + alpha * (h - m);
        }
        self.score.score_batch(&self.xs, t, &mut self.scores);
        for ((o, x), sc) in out.iter_mut().zip(&self.xs).zip(&self.scores) {
            *o = m + (x - m + s * s * sc) / alpha;
        }
        self.nfe += 1;
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
    let sigmas = edm_sigmas(
        sde.effective_sigma(t_start),
        sde.effective_sigma(t_end),
        n,
        7.0,
    );
    let m = sde.center();
    let to_hat = |x: Vec2, t: f64| m + (x - m) / sde.marginal(t).0;
    let mut hat: Vec<Vec2> = xs.iter().map(|x| to_hat(*x, t_start)).collect();
    let mut den = Denoiser {
        score,
        sde,
        xs: vec![Vec2::zeros(); xs.len()],
        scores: vec![Vec2::zeros(); xs.len()],
        nfe: 0,
    };
    // Counter-based noise (step, particle, stream), as the WGSL samplers draw theirs.
    let rng = CounterRng::new(seed);
    const STREAM: u32 = 0x0F5E;
    let time = |sigma: f64| sde.time_of_sigma(sigma).clamp(t_end, t_start);
    let mut d = vec![Vec2::zeros(); xs.len()];
    let mut d_prev: Option<Vec<Vec2>> = None;
    let steps = sigmas.len() - 1;
    for i in 0..steps {
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        match kind {
            FewStep::Ddim { eta } => {
                den.eval(&hat, if i == 0 { t_start } else { time(sigma) }, &mut d);
                let c2 = (eta * eta * next * next * (sigma * sigma - next * next)
                    / (sigma * sigma))
                    .max(0.0);
                let keep = (next * next - c2).max(0.0).sqrt() / sigma;
                for (k, (h, dn)) in hat.iter_mut().zip(&d).enumerate() {
                    let z = if c2 > 0.0 {
                        rng.normal2(i as u32, k as u32, STREAM)
                    } else {
                        Vec2::zeros()
                    };
                    *h = dn + keep * (*h - dn) + c2.sqrt() * z;
                }
            }
            FewStep::EdmHeun { churn } => {
                let gamma = (churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0);
                let raised = sigma * (1.0 + gamma);
                if gamma > 0.0 {
                    let add = (raised * raised - sigma * sigma).max(0.0).sqrt();
                    for (k, h) in hat.iter_mut().enumerate() {
                        *h += add * rng.normal2(i as u32, k as u32, STREAM);
                    }
                }
                // The churned level can sit above σ_e(t_start): its t is clamped there, and
                // the denoiser is asked at the time whose σ the state now has.
                let t_hi = if gamma == 0.0 && i == 0 {
                    t_start
                } else {
                    sde.time_of_sigma(raised)
                };
                den.eval(&hat, t_hi, &mut d);
                let slope: Vec<Vec2> = hat
                    .iter()
                    .zip(&d)
                    .map(|(h, dn)| (h - dn) / raised)
                    .collect();
                let euler: Vec<Vec2> = hat
                    .iter()
                    .zip(&slope)
                    .map(|(h, k)| h + (next - raised) * k)
                    .collect();
                let t_lo = if i + 1 == steps { t_end } else { time(next) };
                den.eval(&euler, t_lo, &mut d);
                for (((h, e), k), dn) in hat.iter_mut().zip(&euler).zip(&slope).zip(&d) {
                    let k2 = (e - dn) / next;
                    *h += (next - raised) * 0.5 * (k + k2);
                }
            }
            FewStep::DpmSolverPp2M => {
                den.eval(&hat, if i == 0 { t_start } else { time(sigma) }, &mut d);
                let ratio = next / sigma;
                let h = (sigma / next).ln();
                let two_r = match (&d_prev, i) {
                    (Some(_), i) if i > 0 => {
                        let h_prev = (sigmas[i - 1] / sigma).ln();
                        2.0 * h_prev / h
                    }
                    _ => f64::INFINITY,
                };
                for (k, (x, dn)) in hat.iter_mut().zip(&d).enumerate() {
                    let blend = match &d_prev {
                        Some(dp) if two_r.is_finite() => {
                            (1.0 + 1.0 / two_r) * dn - (1.0 / two_r) * dp[k]
                        }
                        _ => *dn,
                    };
                    *x = ratio * *x + (1.0 - ratio) * blend;
                }
                d_prev = Some(d.clone());
            }
        }
    }
    let alpha_end = sde.marginal(t_end).0;
    for (x, h) in xs.iter_mut().zip(&hat) {
        *x = m + alpha_end * (h - m);
    }
    den.nfe
}

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
struct Denoiser {
    xs: Vec<Vec2>,
    scores: Vec<Vec2>,
}

impl Denoiser {
    fn eval(&mut self, score: &dyn ScoreModel, sde: &Sde, hat: &[Vec2], t: f64, out: &mut [Vec2]) {
        let (alpha, s) = sde.marginal(t);
        let m = sde.center();
        for (x, h) in self.xs.iter_mut().zip(hat) {
            *x = m + alpha * (h - m);
        }
        score.score_batch(&self.xs, t, &mut self.scores);
        for ((o, x), sc) in out.iter_mut().zip(&self.xs).zip(&self.scores) {
            *o = m + (x - m + s * s * sc) / alpha;
        }
    }
}

/// Counter-based noise stream of the few-step samplers (step, particle, stream), as the WGSL
/// samplers draw theirs.
const STREAM: u32 = 0x0F5E;

/// One run of a few-step sampler, a step at a time (the page spreads a run over frames).
pub struct FewStepRun {
    kind: FewStep,
    sde: Sde,
    sigmas: Vec<f64>,
    t_start: f64,
    t_end: f64,
    rng: CounterRng,
    hat: Vec<Vec2>,
    d: Vec<Vec2>,
    d_prev: Option<Vec<Vec2>>,
    den: Denoiser,
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
        let sigmas = edm_sigmas(
            sde.effective_sigma(t_start),
            sde.effective_sigma(t_end),
            n,
            7.0,
        );
        let m = sde.center();
        let alpha = sde.marginal(t_start).0;
        Self {
            kind,
            sde: *sde,
            sigmas,
            t_start,
            t_end,
            rng: CounterRng::new(seed),
            hat: xs.iter().map(|x| m + (x - m) / alpha).collect(),
            d: vec![Vec2::zeros(); xs.len()],
            d_prev: None,
            den: Denoiser {
                xs: vec![Vec2::zeros(); xs.len()],
                scores: vec![Vec2::zeros(); xs.len()],
            },
            i: 0,
            nfe: 0,
        }
    }

    /// Every step taken.
    pub fn done(&self) -> bool {
        self.i + 1 >= self.sigmas.len()
    }

    /// Score evaluations per particle so far.
    pub fn nfe(&self) -> usize {
        self.nfe
    }

    /// The time of noise level `sigma` (the run's ends exactly at its ends).
    fn time(&self, sigma: f64) -> f64 {
        if sigma == self.sigmas[0] {
            self.t_start
        } else if sigma == self.sigmas[self.sigmas.len() - 1] {
            self.t_end
        } else {
            self.sde
                .time_of_sigma(sigma)
                .clamp(self.t_end, self.t_start)
        }
    }

    fn denoise(&mut self, score: &dyn ScoreModel, at: Option<&[Vec2]>, t: f64) {
        let hat = at.unwrap_or(&self.hat);
        self.den.eval(score, &self.sde, hat, t, &mut self.d);
        self.nfe += 1;
    }

    /// One step.
    pub fn step(&mut self, score: &dyn ScoreModel) {
        if self.done() {
            return;
        }
        let i = self.i;
        let (sigma, next) = (self.sigmas[i], self.sigmas[i + 1]);
        match self.kind {
            FewStep::Ddim { eta } => {
                self.denoise(score, None, self.time(sigma));
                let c2 = (eta * eta * next * next * (sigma * sigma - next * next)
                    / (sigma * sigma))
                    .max(0.0);
                let keep = (next * next - c2).max(0.0).sqrt() / sigma;
                for (k, (h, dn)) in self.hat.iter_mut().zip(&self.d).enumerate() {
                    let z = if c2 > 0.0 {
                        self.rng.normal2(i as u32, k as u32, STREAM)
                    } else {
                        Vec2::zeros()
                    };
                    *h = dn + keep * (*h - dn) + c2.sqrt() * z;
                }
            }
            FewStep::EdmHeun { churn } => {
                let steps = self.sigmas.len() - 1;
                let gamma = (churn / steps as f64).min(std::f64::consts::SQRT_2 - 1.0);
                let raised = sigma * (1.0 + gamma);
                if gamma > 0.0 {
                    let add = (raised * raised - sigma * sigma).max(0.0).sqrt();
                    for (k, h) in self.hat.iter_mut().enumerate() {
                        *h += add * self.rng.normal2(i as u32, k as u32, STREAM);
                    }
                }
                // A churned level above σ_e(t_start) is asked at t_start's clamp (t ≤ 1).
                let t_hi = if gamma == 0.0 {
                    self.time(sigma)
                } else {
                    self.sde.time_of_sigma(raised)
                };
                self.denoise(score, None, t_hi);
                let slope: Vec<Vec2> = self
                    .hat
                    .iter()
                    .zip(&self.d)
                    .map(|(h, dn)| (h - dn) / raised)
                    .collect();
                let euler: Vec<Vec2> = self
                    .hat
                    .iter()
                    .zip(&slope)
                    .map(|(h, k)| h + (next - raised) * k)
                    .collect();
                let t_lo = self.time(next);
                self.denoise(score, Some(&euler), t_lo);
                for (((h, e), k), dn) in self.hat.iter_mut().zip(&euler).zip(&slope).zip(&self.d) {
                    let k2 = (e - dn) / next;
                    *h += (next - raised) * 0.5 * (k + k2);
                }
            }
            FewStep::DpmSolverPp2M => {
                self.denoise(score, None, self.time(sigma));
                let ratio = next / sigma;
                let h = (sigma / next).ln();
                // 1/(2r) with r = h_{i−1}/h_i; the first step is DDIM's.
                let half_inv_r = match &self.d_prev {
                    Some(_) if i > 0 => h / (2.0 * (self.sigmas[i - 1] / sigma).ln()),
                    _ => 0.0,
                };
                for (k, (x, dn)) in self.hat.iter_mut().zip(&self.d).enumerate() {
                    let blend = match &self.d_prev {
                        Some(dp) if half_inv_r != 0.0 => {
                            (1.0 + half_inv_r) * dn - half_inv_r * dp[k]
                        }
                        _ => *dn,
                    };
                    *x = ratio * *x + (1.0 - ratio) * blend;
                }
                self.d_prev = Some(self.d.clone());
            }
        }
        self.i += 1;
    }

    /// The particles now, in data space (at t_end once [`Self::done`]).
    pub fn points(&self) -> Vec<Vec2> {
        let t = self.time(self.sigmas[self.i]);
        let (alpha, m) = (self.sde.marginal(t).0, self.sde.center());
        self.hat.iter().map(|h| m + alpha * (h - m)).collect()
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

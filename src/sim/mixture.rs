//! 2D Gaussian mixtures: validation, sampling, log-density, exact score and its
//! divergence, and the exact perturbed mixture under an affine SDE (ARCHITECTURE.md §4):
//! p_t(x) = Σ_k w_k N(x; α μ_k, α² Σ_k + s² I).

use serde::{Deserialize, Serialize};

use crate::sim::rng::StreamRng;
use crate::sim::{Mat2, Vec2};

/// Most components a mixture may have (the GPU uniform block has room for this many).
pub const MAX_COMPONENTS: usize = 32;
/// Smallest allowed covariance eigenvalue (variance), in data units².
pub const MIN_VARIANCE: f64 = 1e-6;
/// Largest allowed covariance condition number.
pub const MAX_CONDITION: f64 = 1e6;
/// Largest allowed |coordinate| or variance: keeps every derived quantity finite in f32.
pub const MAX_ABS_VALUE: f64 = 1e4;

/// One component as written in mixture files and scenes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentSpec {
    /// Unnormalised weight (> 0).
    pub weight: f64,
    /// Mean `[x, y]`.
    pub mean: [f64; 2],
    /// Covariance `[[xx, xy], [yx, yy]]` (symmetric positive definite).
    pub cov: [[f64; 2]; 2],
}

/// A mixture as written in files: `{"components": [...]}`. Weights need not sum to 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixtureSpec {
    /// The components.
    pub components: Vec<ComponentSpec>,
}

/// Why a mixture was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MixtureError {
    /// No components.
    #[error("the mixture has no components")]
    Empty,
    /// More than [`MAX_COMPONENTS`].
    #[error("the mixture has {0} components; at most {MAX_COMPONENTS} are allowed")]
    TooMany(usize),
    /// A weight that is NaN, infinite, zero or negative.
    #[error("component {index}: weight {value} must be a finite number > 0")]
    BadWeight {
        /// Component index.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A mean or covariance entry that is NaN, infinite or absurdly large.
    #[error("component {index}: {what} must be finite numbers with |value| <= {MAX_ABS_VALUE}")]
    NotFinite {
        /// Component index.
        index: usize,
        /// "mean" or "covariance".
        what: &'static str,
    },
    /// Covariance not symmetric.
    #[error("component {index}: covariance is not symmetric ({xy} vs {yx})")]
    NotSymmetric {
        /// Component index.
        index: usize,
        /// Entry (0, 1).
        xy: f64,
        /// Entry (1, 0).
        yx: f64,
    },
    /// Covariance not positive definite.
    #[error(
        "component {index}: covariance is not positive definite (eigenvalues {lo:.3e}, {hi:.3e})"
    )]
    NotPositiveDefinite {
        /// Component index.
        index: usize,
        /// Smaller eigenvalue.
        lo: f64,
        /// Larger eigenvalue.
        hi: f64,
    },
    /// Covariance positive definite but too close to singular.
    #[error("component {index}: covariance is nearly singular (eigenvalues {lo:.3e}, {hi:.3e}; need smallest >= {MIN_VARIANCE:e} and ratio <= {MAX_CONDITION:e})")]
    NearlySingular {
        /// Component index.
        index: usize,
        /// Smaller eigenvalue.
        lo: f64,
        /// Larger eigenvalue.
        hi: f64,
    },
}

/// Eigenvalues (ascending) of a symmetric 2×2 matrix.
pub fn sym_eigenvalues(m: &Mat2) -> (f64, f64) {
    let a = m[(0, 0)];
    let d = m[(1, 1)];
    let b = 0.5 * (m[(0, 1)] + m[(1, 0)]);
    let mean = 0.5 * (a + d);
    let r = (0.25 * (a - d) * (a - d) + b * b).sqrt();
    (mean - r, mean + r)
}

/// One validated Gaussian with its cached factorisations. (The serde derives copy it
/// exactly between the page and its engine worker, `engine::remote`; files and links go
/// through [`MixtureSpec`] and validation.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gaussian2 {
    /// Mean.
    pub mean: Vec2,
    /// Covariance.
    pub cov: Mat2,
    /// Inverse covariance.
    pub precision: Mat2,
    /// Lower Cholesky factor `L` with `L Lᵀ = Σ`.
    pub chol: Mat2,
    /// `-log(2π) - ½ log det Σ`.
    pub log_norm: f64,
}

impl Gaussian2 {
    /// Build from a positive definite covariance (not re-validated).
    pub fn new(mean: Vec2, cov: Mat2) -> Self {
        let det = cov[(0, 0)] * cov[(1, 1)] - cov[(0, 1)] * cov[(1, 0)];
        let precision = Mat2::new(cov[(1, 1)], -cov[(0, 1)], -cov[(1, 0)], cov[(0, 0)]) / det;
        let l00 = cov[(0, 0)].sqrt();
        let l10 = cov[(1, 0)] / l00;
        let l11 = (cov[(1, 1)] - l10 * l10).max(0.0).sqrt();
        let chol = Mat2::new(l00, 0.0, l10, l11);
        let log_norm = -(std::f64::consts::TAU).ln() - 0.5 * det.ln();
        Self {
            mean,
            cov,
            precision,
            chol,
            log_norm,
        }
    }

    /// log N(x; μ, Σ).
    #[inline]
    pub fn log_prob(&self, x: Vec2) -> f64 {
        let d = x - self.mean;
        self.log_norm - 0.5 * d.dot(&(self.precision * d))
    }

    /// ∇ log N(x; μ, Σ) = −Σ⁻¹ (x − μ).
    #[inline]
    pub fn score(&self, x: Vec2) -> Vec2 {
        -(self.precision * (x - self.mean))
    }
}

/// A validated 2D Gaussian mixture with normalised weights. (Serde: see [`Gaussian2`].)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianMixture {
    weights: Vec<f64>,
    log_weights: Vec<f64>,
    components: Vec<Gaussian2>,
}

impl GaussianMixture {
    /// Validate a spec and build the mixture (weights are normalised).
    pub fn from_spec(spec: &MixtureSpec) -> Result<Self, MixtureError> {
        let n = spec.components.len();
        if n == 0 {
            return Err(MixtureError::Empty);
        }
        if n > MAX_COMPONENTS {
            return Err(MixtureError::TooMany(n));
        }
        let mut total = 0.0;
        let mut comps = Vec::with_capacity(n);
        for (index, c) in spec.components.iter().enumerate() {
            if !c.weight.is_finite() || c.weight <= 0.0 || c.weight > MAX_ABS_VALUE {
                return Err(MixtureError::BadWeight {
                    index,
                    value: c.weight,
                });
            }
            let ok = |v: f64| v.is_finite() && v.abs() <= MAX_ABS_VALUE;
            if !c.mean.iter().all(|&v| ok(v)) {
                return Err(MixtureError::NotFinite {
                    index,
                    what: "mean",
                });
            }
            if !c.cov.iter().flatten().all(|&v| ok(v)) {
                return Err(MixtureError::NotFinite {
                    index,
                    what: "covariance",
                });
            }
            let [[xx, xy], [yx, yy]] = c.cov;
            if (xy - yx).abs() > 1e-9 * (1.0 + xx.abs() + yy.abs()) {
                return Err(MixtureError::NotSymmetric { index, xy, yx });
            }
            let cov = Mat2::new(xx, 0.5 * (xy + yx), 0.5 * (xy + yx), yy);
            let (lo, hi) = sym_eigenvalues(&cov);
            if lo <= 0.0 {
                return Err(MixtureError::NotPositiveDefinite { index, lo, hi });
            }
            if lo < MIN_VARIANCE || hi / lo > MAX_CONDITION {
                return Err(MixtureError::NearlySingular { index, lo, hi });
            }
            total += c.weight;
            comps.push(Gaussian2::new(Vec2::new(c.mean[0], c.mean[1]), cov));
        }
        let weights: Vec<f64> = spec.components.iter().map(|c| c.weight / total).collect();
        Ok(Self::from_parts(weights, comps))
    }

    fn from_parts(weights: Vec<f64>, components: Vec<Gaussian2>) -> Self {
        let log_weights = weights.iter().map(|w| w.ln()).collect();
        Self {
            weights,
            log_weights,
            components,
        }
    }

    /// The spec this mixture round-trips to (normalised weights).
    pub fn to_spec(&self) -> MixtureSpec {
        MixtureSpec {
            components: self
                .weights
                .iter()
                .zip(&self.components)
                .map(|(&weight, g)| ComponentSpec {
                    weight,
                    mean: [g.mean.x, g.mean.y],
                    cov: [
                        [g.cov[(0, 0)], g.cov[(0, 1)]],
                        [g.cov[(1, 0)], g.cov[(1, 1)]],
                    ],
                })
                .collect(),
        }
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Always false (a mixture has ≥ 1 component); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Normalised weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The components.
    pub fn components(&self) -> &[Gaussian2] {
        &self.components
    }

    /// log w_k + log N_k(x) for every k, written into `out`.
    fn joint_log_probs(&self, x: Vec2, out: &mut [f64]) {
        for ((o, lw), g) in out.iter_mut().zip(&self.log_weights).zip(&self.components) {
            *o = lw + g.log_prob(x);
        }
    }

    /// log p(x).
    pub fn log_prob(&self, x: Vec2) -> f64 {
        let mut buf = [0.0; MAX_COMPONENTS];
        let lp = &mut buf[..self.len()];
        self.joint_log_probs(x, lp);
        log_sum_exp(lp)
    }

    /// Posterior component probabilities p(k | x) (into `out`, length `len()`), returns log p(x).
    pub fn responsibilities(&self, x: Vec2, out: &mut [f64]) -> f64 {
        self.joint_log_probs(x, out);
        self.normalise_responsibilities(out)
    }

    /// Turns joint log-probabilities log w_k + log p_k(x) in place into p(k | x); returns
    /// log p(x).
    fn normalise_responsibilities(&self, out: &mut [f64]) -> f64 {
        let m = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !m.is_finite() {
            // Every term −∞ (or a NaN / +∞ term): the two-pass form's NaNs and infinities.
            let lse = log_sum_exp(out);
            for o in out.iter_mut() {
                *o = (*o - lse).exp();
            }
            return lse;
        }
        // One exp per component (the exact score's hot loop: every particle, every step), none
        // for a component e^50 times less likely than the nearest: its responsibility is below
        // 2·10⁻²² (10⁶ times under f64's resolution of the largest, which is 1 before the
        // normalisation) and is taken as the 0 it rounds to in the sum.
        let mut sum = 0.0;
        for o in out.iter_mut() {
            let d = *o - m;
            *o = if d < -50.0 { 0.0 } else { d.exp() };
            sum += *o;
        }
        let inv = 1.0 / sum;
        for o in out.iter_mut() {
            *o *= inv;
        }
        m + sum.ln()
    }

    /// The component with the highest posterior probability at `x`.
    pub fn classify(&self, x: Vec2) -> usize {
        let mut buf = [0.0; MAX_COMPONENTS];
        let lp = &mut buf[..self.len()];
        self.joint_log_probs(x, lp);
        let mut best = 0;
        for k in 1..lp.len() {
            if lp[k] > lp[best] {
                best = k;
            }
        }
        best
    }

    /// ∇ log p(x) = Σ_k r_k(x) (−Σ_k⁻¹ (x − μ_k)).
    pub fn score(&self, x: Vec2) -> Vec2 {
        // The exact score's hot loop: each component's P_k (x − μ_k) is computed once and
        // serves both its log-density and its score (the same operations as `log_prob` and
        // `Gaussian2::score`, so the result is bit-identical to composing them).
        let mut buf = [0.0; MAX_COMPONENTS];
        let mut pds = [Vec2::zeros(); MAX_COMPONENTS];
        let r = &mut buf[..self.len()];
        for (((o, pd), lw), g) in r
            .iter_mut()
            .zip(pds.iter_mut())
            .zip(&self.log_weights)
            .zip(&self.components)
        {
            let d = x - g.mean;
            *pd = g.precision * d;
            *o = lw + (g.log_norm - 0.5 * d.dot(pd));
        }
        self.normalise_responsibilities(r);
        r.iter()
            .zip(&pds)
            .filter(|(&rk, _)| rk != 0.0)
            .map(|(&rk, pd)| rk * -*pd)
            .sum()
    }

    /// The score and its divergence tr ∇² log p(x):
    /// ∇² log p = Σ_k r_k (−P_k + g_k g_kᵀ) − g gᵀ with g_k = −P_k (x − μ_k), g = Σ r_k g_k.
    pub fn score_and_divergence(&self, x: Vec2) -> (Vec2, f64) {
        let mut buf = [0.0; MAX_COMPONENTS];
        let r = &mut buf[..self.len()];
        self.responsibilities(x, r);
        let mut g = Vec2::zeros();
        let mut tr = 0.0;
        for (&rk, c) in r.iter().zip(&self.components) {
            let gk = c.score(x);
            g += rk * gk;
            tr += rk * (gk.norm_squared() - c.precision.trace());
        }
        (g, tr - g.norm_squared())
    }

    /// ∇ log p_k(x) of one component (for the exact noisy classifier).
    pub fn component_score(&self, k: usize, x: Vec2) -> Vec2 {
        self.components[k].score(x)
    }

    /// The mixture of `m + α (X − m) + s Z`, Z ~ N(0, I) (the SDE's frame centre m, see
    /// `sim::sde`): means m + α (μ_k − m), covariances α² Σ_k + s² I.
    pub fn perturbed(&self, center: Vec2, alpha: f64, std: f64) -> Self {
        let comps = self
            .components
            .iter()
            .map(|g| {
                Gaussian2::new(
                    center + alpha * (g.mean - center),
                    alpha * alpha * g.cov + Mat2::identity() * (std * std),
                )
            })
            .collect();
        Self::from_parts(self.weights.clone(), comps)
    }

    /// Draw one sample from two uniforms-worth of randomness: `u` picks the component,
    /// `z` (standard normal) is mapped through the Cholesky factor.
    #[inline]
    pub fn sample_with(&self, u: f64, z: Vec2) -> Vec2 {
        let k = self.pick_component(u);
        let g = &self.components[k];
        g.mean + g.chol * z
    }

    /// The component index a uniform `u ∈ [0, 1)` selects (inverse CDF of the weights).
    #[inline]
    pub fn pick_component(&self, u: f64) -> usize {
        let mut acc = 0.0;
        for (k, w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return k;
            }
        }
        self.len() - 1
    }

    /// `n` i.i.d. samples.
    pub fn sample(&self, n: usize, rng: &mut StreamRng) -> Vec<Vec2> {
        (0..n)
            .map(|_| {
                let u = rng.uniform();
                let z = rng.normal2();
                self.sample_with(u, z)
            })
            .collect()
    }

    /// Mixture mean.
    pub fn mean(&self) -> Vec2 {
        self.weights
            .iter()
            .zip(&self.components)
            .map(|(w, g)| *w * g.mean)
            .sum()
    }

    /// Mixture covariance.
    pub fn covariance(&self) -> Mat2 {
        let m = self.mean();
        self.weights
            .iter()
            .zip(&self.components)
            .map(|(w, g)| {
                let d = g.mean - m;
                *w * (g.cov + d * d.transpose())
            })
            .sum()
    }

    /// A scalar data scale: √(tr Cov / 2).
    pub fn data_std(&self) -> f64 {
        (0.5 * self.covariance().trace()).sqrt()
    }

    /// Approximate maximum pairwise distance between data points (Song & Ermon 2020,
    /// technique 1): max over component pairs of |μ_i − μ_j| + 2(√λ_i + √λ_j).
    pub fn max_pairwise_distance(&self) -> f64 {
        let spread: Vec<f64> = self
            .components
            .iter()
            .map(|g| sym_eigenvalues(&g.cov).1.sqrt())
            .collect();
        let mut best: f64 = 0.0;
        for i in 0..self.len() {
            for j in i..self.len() {
                let d = (self.components[i].mean - self.components[j].mean).norm()
                    + 2.0 * (spread[i] + spread[j]);
                best = best.max(d);
            }
        }
        best
    }

    /// Axis-aligned box holding ~all mass: component means ± 3 std along each axis.
    pub fn bounding_box(&self) -> (Vec2, Vec2) {
        let mut lo = Vec2::repeat(f64::INFINITY);
        let mut hi = Vec2::repeat(f64::NEG_INFINITY);
        for g in &self.components {
            let r = Vec2::new(3.0 * g.cov[(0, 0)].sqrt(), 3.0 * g.cov[(1, 1)].sqrt());
            lo = lo.inf(&(g.mean - r));
            hi = hi.sup(&(g.mean + r));
        }
        (lo, hi)
    }
}

/// Numerically stable log Σ exp.
pub fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A 1D Gaussian mixture (used for conditionals p(x₂ | x₁ = c)).
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture1d {
    /// Normalised weights.
    pub weights: Vec<f64>,
    /// Means.
    pub means: Vec<f64>,
    /// Variances.
    pub vars: Vec<f64>,
}

impl Mixture1d {
    /// The distribution of `c + α (X − c) + s Z` (c: the frame centre's coordinate).
    pub fn perturbed(&self, center: f64, alpha: f64, std: f64) -> Self {
        Self {
            weights: self.weights.clone(),
            means: self
                .means
                .iter()
                .map(|m| center + alpha * (m - center))
                .collect(),
            vars: self
                .vars
                .iter()
                .map(|v| alpha * alpha * v + std * std)
                .collect(),
        }
    }

    /// d/dx log p(x).
    pub fn score(&self, x: f64) -> f64 {
        let lps: Vec<f64> = self.log_terms(x).collect();
        let lse = log_sum_exp(&lps);
        lps.iter()
            .zip(self.means.iter().zip(&self.vars))
            .map(|(lp, (m, v))| (lp - lse).exp() * (-(x - m) / v))
            .sum()
    }

    fn log_terms(&self, x: f64) -> impl Iterator<Item = f64> + '_ {
        self.weights
            .iter()
            .zip(self.means.iter().zip(&self.vars))
            .map(move |(w, (m, v))| {
                w.ln() - 0.5 * (std::f64::consts::TAU * v).ln() - 0.5 * (x - m) * (x - m) / v
            })
    }

    /// log p(x).
    pub fn log_prob(&self, x: f64) -> f64 {
        let lps: Vec<f64> = self.log_terms(x).collect();
        log_sum_exp(&lps)
    }

    /// The CDF.
    pub fn cdf(&self, x: f64) -> f64 {
        self.weights
            .iter()
            .zip(self.means.iter().zip(&self.vars))
            .map(|(w, (m, v))| w * normal_cdf((x - m) / v.sqrt()))
            .sum()
    }
}

impl GaussianMixture {
    /// The exact conditional p(x₂ | x₁ = c): a 1D mixture with weights ∝ w_k N(c; μ_k1, Σ_k11),
    /// means μ_k2 + Σ_k21/Σ_k11 (c − μ_k1), variances Σ_k22 − Σ_k21²/Σ_k11.
    pub fn conditional_x2_given_x1(&self, c: f64) -> Mixture1d {
        let mut logw = Vec::with_capacity(self.len());
        let mut means = Vec::with_capacity(self.len());
        let mut vars = Vec::with_capacity(self.len());
        for (lw, g) in self.log_weights.iter().zip(&self.components) {
            let s11 = g.cov[(0, 0)];
            let s21 = g.cov[(1, 0)];
            let d = c - g.mean.x;
            logw.push(lw - 0.5 * (std::f64::consts::TAU * s11).ln() - 0.5 * d * d / s11);
            means.push(g.mean.y + s21 / s11 * d);
            vars.push(g.cov[(1, 1)] - s21 * s21 / s11);
        }
        let lse = log_sum_exp(&logw);
        Mixture1d {
            weights: logw.iter().map(|l| (l - lse).exp()).collect(),
            means,
            vars,
        }
    }
}

/// Standard normal CDF through [`erfc`]: absolute error below 1e-7 (the Chebyshev fit's
/// relative 1.2e-7 on erfc), enough for KS tests on ≤ 10⁵ samples (critical values ≥ 6e-3).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes `erfcc`-style Chebyshev, |rel err| < 1.2e-7,
/// plenty for KS tests on ≤ 10⁵ samples).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

pub mod presets;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::StreamRng;

    /// The fused hot loop of `score` is bit-for-bit Σ_k p(k | x) ∇ log p_k(x) composed from
    /// `responsibilities` and `component_score`, near the modes and far out in the tails.
    #[test]
    fn fused_score_is_bit_identical_to_its_composition() {
        let mut rng = StreamRng::new(5, 0);
        for name in presets::NAMES {
            let m = GaussianMixture::from_spec(&presets::by_name(name).unwrap()).unwrap();
            let noisy = m.perturbed(Vec2::new(0.3, -0.2), 0.7, 0.4);
            for mix in [&m, &noisy] {
                for i in 0..400 {
                    let scale = if i % 4 == 0 { 40.0 } else { 4.0 };
                    let x = rng.normal2() * scale;
                    let mut r = [0.0; MAX_COMPONENTS];
                    let r = &mut r[..mix.len()];
                    mix.responsibilities(x, r);
                    let composed: Vec2 = r
                        .iter()
                        .enumerate()
                        .filter(|(_, &rk)| rk != 0.0)
                        .map(|(k, &rk)| rk * mix.component_score(k, x))
                        .sum();
                    assert_eq!(mix.score(x), composed, "{name} at {x:?}");
                }
            }
        }
    }
}

//! Truth-gap metrics (ARCHITECTURE.md §4): relative Fisher divergence per noise level, sample mode
//! weights, energy distance to true samples, NLL under the truth, KS statistic.

use serde::Serialize;

use crate::sim::mixture::GaussianMixture;
use crate::sim::rng::{stream, CounterRng};
use crate::sim::samplers::SamplerKind;
use crate::sim::score::ScoreModel;
use crate::sim::sde::Sde;
use crate::sim::{Mat2, Vec2};

/// The default evaluation times: midpoints of 10 equal bins of [0, 1]
/// The mean of `v` (0 for an empty slice): e.g. the mean relative Fisher divergence over
/// the noise levels, the number every chart, log and test quotes.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// (for VE: geometric noise levels from ≈1.4 σ_min to ≈0.7 σ_max).
pub fn fisher_levels() -> Vec<f64> {
    (0..10).map(|i| (f64::from(i) + 0.5) / 10.0).collect()
}

/// Relative Fisher divergence E‖s_θ − ∇log p_t‖² / E‖∇log p_t‖², x ~ p_t, at each `t`.
pub fn relative_fisher(
    score: &dyn ScoreModel,
    mixture: &GaussianMixture,
    sde: &Sde,
    ts: &[f64],
    n_per_level: usize,
    seed: u32,
) -> Vec<f64> {
    let rng = CounterRng::new(seed);
    ts.iter()
        .enumerate()
        .map(|(level, &t)| {
            let (a, s) = sde.marginal(t);
            let pt = mixture.perturbed(sde.center(), a, s);
            let xs: Vec<Vec2> = (0..n_per_level as u32)
                .map(|i| {
                    let b = rng.bits(level as u32, i, stream::EVAL);
                    pt.sample_with(
                        crate::sim::rng::unit_closed_open(b[0]),
                        crate::sim::rng::box_muller(b[1], b[2]),
                    )
                })
                .collect();
            let mut model = vec![Vec2::zeros(); xs.len()];
            score.score_batch(&xs, t, &mut model);
            let (mut num, mut den) = (0.0, 0.0);
            for (x, m) in xs.iter().zip(&model) {
                let truth = pt.score(*x);
                num += (m - truth).norm_squared();
                den += truth.norm_squared();
            }
            num / den.max(1e-300)
        })
        .collect()
}

/// A particle further than this many frame scales d from the mixture's centre m has left for
/// good (ModeCensus counts it as diverged): a Langevin chain past its stability limit grows
/// geometrically and reaches 1e19 while every coordinate is still finite.
pub const ESCAPE_SPREADS: f64 = 1e3;

/// Whether `x` is a sample that still counts: finite and within [`ESCAPE_SPREADS`] frame
/// scales of the mixture's centre (`mode_histogram` in `metrics.wgsl` applies the same test
/// with the frame of the GPU's mixture uniform).
pub fn is_kept(frame: &crate::sim::sde::Frame, x: Vec2) -> bool {
    x.iter().all(|v| v.is_finite()) && (x - frame.center).norm() <= ESCAPE_SPREADS * frame.scale
}

/// Where the samples went: per-component counts (highest posterior under the true mixture)
/// of the kept samples, and how many diverged: not finite, or further than [`ESCAPE_SPREADS`]
/// frame scales from the data (diverged particles are never a mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModeCensus {
    /// Finite samples assigned to each component.
    pub counts: Vec<usize>,
    /// Samples with a NaN or infinite coordinate, or far outside the data ([`is_kept`]).
    pub diverged: usize,
    /// All samples.
    pub total: usize,
}

impl ModeCensus {
    /// Count `samples` against `mixture`.
    pub fn of(mixture: &GaussianMixture, samples: &[Vec2]) -> Self {
        let mut counts = vec![0usize; mixture.len()];
        let mut diverged = 0;
        let frame = crate::sim::sde::Frame::of(mixture);
        for x in samples {
            if is_kept(&frame, *x) {
                counts[mixture.classify(*x)] += 1;
            } else {
                diverged += 1;
            }
        }
        Self {
            counts,
            diverged,
            total: samples.len(),
        }
    }

    /// From per-component counts of finite particles (e.g. a GPU histogram) and the total.
    pub fn from_counts(counts: Vec<usize>, total: usize) -> Self {
        let finite: usize = counts.iter().sum();
        Self {
            counts,
            diverged: total.saturating_sub(finite),
            total,
        }
    }

    /// Finite samples.
    pub fn finite(&self) -> usize {
        self.total - self.diverged
    }

    /// Fractions of the *finite* samples in each component (all 0 when none is finite).
    pub fn fractions(&self) -> Vec<f64> {
        let n = self.finite();
        self.counts
            .iter()
            .map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
            .collect()
    }

    /// "k of n diverged" with what to do, or None when every sample is finite.
    pub fn message(&self) -> Option<String> {
        (self.diverged > 0).then(|| {
            format!(
                "{} of {} particles diverged (NaN/inf, or more than {} data spreads away) and are \
                 not counted in the mode weights; try a smaller step size or more steps",
                self.diverged, self.total, ESCAPE_SPREADS
            )
        })
    }
}

/// Fraction of the finite samples assigned (by highest posterior under the true mixture) to
/// each component; non-finite samples count nowhere (see [`ModeCensus`]).
pub fn mode_weights(mixture: &GaussianMixture, samples: &[Vec2]) -> Vec<f64> {
    ModeCensus::of(mixture, samples).fractions()
}

/// Total-variation distance ½ Σ |ŵ_k − w_k| between sample mode weights and the true weights.
pub fn mode_weight_error(mixture: &GaussianMixture, samples: &[Vec2]) -> f64 {
    mode_weights(mixture, samples)
        .iter()
        .zip(mixture.weights())
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        * 0.5
}

/// Per-component statistics of samples assigned to each component.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentStats {
    /// Fraction of samples.
    pub weight: f64,
    /// Sample mean.
    pub mean: [f64; 2],
    /// Sample covariance.
    pub cov: [[f64; 2]; 2],
}

/// Weights, means and covariances of the samples, grouped by true-posterior assignment.
pub fn component_stats(mixture: &GaussianMixture, samples: &[Vec2]) -> Vec<ComponentStats> {
    let k = mixture.len();
    let mut groups: Vec<Vec<Vec2>> = vec![Vec::new(); k];
    for x in samples {
        groups[mixture.classify(*x)].push(*x);
    }
    groups
        .iter()
        .map(|g| {
            let n = g.len().max(1) as f64;
            let m: Vec2 = g.iter().sum::<Vec2>() / n;
            let c: Mat2 = g
                .iter()
                .map(|x| (x - m) * (x - m).transpose())
                .sum::<Mat2>()
                / (n - 1.0).max(1.0);
            ComponentStats {
                weight: g.len() as f64 / samples.len().max(1) as f64,
                mean: [m.x, m.y],
                cov: [[c[(0, 0)], c[(0, 1)]], [c[(1, 0)], c[(1, 1)]]],
            }
        })
        .collect()
}

/// Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (uses at most 2000 points of each set).
/// The within-set means skip the zero diagonal (X' ≠ X: U-statistics), so two samples of the
/// same distribution score 0 on average instead of a bias of ≈ E‖X−X'‖ (1/n + 1/m).
pub fn energy_distance(a: &[Vec2], b: &[Vec2]) -> f64 {
    let a = &a[..a.len().min(2000)];
    let b = &b[..b.len().min(2000)];
    let sum_dist = |p: &[Vec2], q: &[Vec2]| -> f64 {
        let mut s = 0.0;
        for x in p {
            for y in q {
                s += (x - y).norm();
            }
        }
        s
    };
    let cross = sum_dist(a, b) / (a.len() * b.len()).max(1) as f64;
    let within = |p: &[Vec2]| sum_dist(p, p) / (p.len() * p.len().saturating_sub(1)).max(1) as f64;
    2.0 * cross - within(a) - within(b)
}

/// Mean negative log-likelihood of samples under the true mixture (nats).
pub fn nll(mixture: &GaussianMixture, samples: &[Vec2]) -> f64 {
    -samples.iter().map(|x| mixture.log_prob(*x)).sum::<f64>() / samples.len().max(1) as f64
}

/// Kolmogorov–Smirnov statistic sup |F_n − F| of 1D samples against a CDF.
pub fn ks_statistic(samples: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// The KS critical value at level 0.001 for n samples (≈ 1.95/√n).
pub fn ks_critical_001(n: usize) -> f64 {
    1.949 / (n as f64).sqrt()
}
/// Mode weights and NLL of one finished run.
#[derive(Clone, Debug, Serialize)]
pub struct RunStats {
    /// The run (its seed).
    pub run: u32,
    /// The sampler.
    pub kind: SamplerKind,
    /// Samples.
    pub n: usize,
    /// Samples that are not finite (diverged particles: counted, never a mode).
    pub diverged: usize,
    /// "k of n particles diverged …" when some did.
    pub diverged_message: Option<String>,
    /// Fraction of the finite samples per component (classified by the true posterior).
    pub weights: Vec<f64>,
    /// The mixture's weights.
    pub true_weights: Vec<f64>,
    /// Largest |weight − true weight|.
    pub max_weight_error: f64,
    /// Worst relative error of a component's covariance eigenvalues against as many true
    /// samples under the same classifier, over the components with at least 20 samples on
    /// both sides ([`variance_errors_against`]): Langevin's step bias shows here. NaN
    /// (`null`) when no sample is left.
    #[serde(default)]
    pub max_variance_error: f64,
    /// Mean −log p(x) of the kept samples under the true density (nats); NaN (`null`) when
    /// no sample is left.
    pub nll: f64,
    /// The same for as many true samples (what a perfect sampler gets, up to noise).
    pub nll_of_true_samples: f64,
    /// The samples (for the CSV export).
    #[serde(skip)]
    pub points: Vec<Vec2>,
}

/// Worst |λ̂ / λ − 1| over the covariance eigenvalues λ of each component, with λ̂ those of
/// the samples classified to it by the true posterior (components with fewer than 20
/// samples are skipped; 0 when none has 20). Classification trims each component's tails
/// where modes overlap, so this is a measure for well-separated modes.
pub fn variance_error(mixture: &GaussianMixture, points: &[Vec2]) -> f64 {
    let mut worst: f64 = 0.0;
    for (k, c) in mixture.components().iter().enumerate() {
        let pts: Vec<Vec2> = points
            .iter()
            .copied()
            .filter(|x| x.iter().all(|v| v.is_finite()) && mixture.classify(*x) == k)
            .collect();
        if pts.len() < 20 {
            continue;
        }
        let n = pts.len() as f64;
        let mean = pts.iter().sum::<Vec2>() / n;
        let cov = pts
            .iter()
            .map(|x| (x - mean) * (x - mean).transpose())
            .sum::<crate::sim::Mat2>()
            / n;
        let (a, b) = crate::sim::mixture::sym_eigenvalues(&cov);
        let (ta, tb) = crate::sim::mixture::sym_eigenvalues(&c.cov);
        worst = worst.max((a / ta - 1.0).abs()).max((b / tb - 1.0).abs());
    }
    worst
}

/// Covariance eigenvalues (λ_min, λ_max) of the points classified to each component by the
/// true posterior (None for a component with fewer than 20 of them).
pub fn classified_eigenvalues(
    mixture: &GaussianMixture,
    points: &[Vec2],
) -> Vec<Option<(f64, f64)>> {
    let k = mixture.len();
    let mut sums = vec![(0usize, Vec2::zeros(), crate::sim::Mat2::zeros()); k];
    let frame = crate::sim::sde::Frame::of(mixture);
    for x in points.iter().filter(|x| is_kept(&frame, **x)) {
        let c = &mut sums[mixture.classify(*x)];
        c.0 += 1;
        c.1 += x;
        c.2 += x * x.transpose();
    }
    sums.into_iter()
        .map(|(n, s, ss)| {
            (n >= 20).then(|| {
                let n = n as f64;
                let mean = s / n;
                let cov = ss / n - mean * mean.transpose();
                crate::sim::mixture::sym_eigenvalues(&cov)
            })
        })
        .collect()
}

/// The largest mode-fraction gap and the largest spread error ([`variance_errors_against`])
/// of `points` against true samples `truth` (non-finite points dropped first): the two
/// numbers every few-step comparison reports.
pub fn errors_against(mixture: &GaussianMixture, points: &[Vec2], truth: &[Vec2]) -> (f64, f64) {
    let kept: Vec<Vec2> = points
        .iter()
        .copied()
        .filter(|x| x.x.is_finite() && x.y.is_finite())
        .collect();
    let weight = mode_weights(mixture, &kept)
        .iter()
        .zip(&mode_weights(mixture, truth))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let spread = variance_errors_against(mixture, &kept, truth)
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    (weight, spread)
}

/// Per component, the worst |λ̂ / λ_ref − 1| of the covariance eigenvalues of `points`
/// against those of `reference` (true samples), both classified by the true posterior: the
/// same classifier trims both alike, so overlapping modes compare fairly (a run as good as
/// true samples scores ≈ 0 up to sampling noise). None where either side has < 20 points.
pub fn variance_errors_against(
    mixture: &GaussianMixture,
    points: &[Vec2],
    reference: &[Vec2],
) -> Vec<Option<f64>> {
    classified_eigenvalues(mixture, points)
        .into_iter()
        .zip(classified_eigenvalues(mixture, reference))
        .map(|(a, b)| match (a, b) {
            (Some((a0, a1)), Some((b0, b1))) => {
                Some((a0 / b0 - 1.0).abs().max((a1 / b1 - 1.0).abs()))
            }
            _ => None,
        })
        .collect()
}

impl RunStats {
    /// Statistics of `points` under `mixture`.
    pub fn new(mixture: &GaussianMixture, run: u32, kind: SamplerKind, points: &[Vec2]) -> Self {
        let census = ModeCensus::of(mixture, points);
        let weights = census.fractions();
        let frame = crate::sim::sde::Frame::of(mixture);
        let finite: Vec<Vec2> = points
            .iter()
            .copied()
            .filter(|x| is_kept(&frame, *x))
            .collect();
        let true_weights = mixture.weights().to_vec();
        let max_weight_error = weights
            .iter()
            .zip(&true_weights)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // True samples: the spreads' reference (4× the run, 4000..=20 000, so its own noise
        // is small against the run's); the NLL's uses as many as the run has.
        let truth = mixture.sample(
            (4 * finite.len()).clamp(4000, 20_000),
            &mut crate::sim::rng::StreamRng::new(99, 5),
        );
        let truth_n = &truth[..finite.len().clamp(1, truth.len())];
        Self {
            run,
            kind,
            n: points.len(),
            diverged: census.diverged,
            diverged_message: census.message(),
            weights,
            true_weights,
            max_weight_error,
            // Nothing left: no number (NaN, `null` in JSON, "—" on the panel), never 0.
            max_variance_error: if finite.is_empty() {
                f64::NAN
            } else {
                variance_errors_against(mixture, &finite, &truth)
                    .into_iter()
                    .flatten()
                    .fold(0.0, f64::max)
            },
            nll: if finite.is_empty() {
                f64::NAN
            } else {
                nll(mixture, &finite)
            },
            nll_of_true_samples: nll(mixture, truth_n),
            points: points.to_vec(),
        }
    }
}

/// How wrong a learned score is where each component's data lies, at time `t`: for component
/// k, `n` points x_t = m + α(x₀ − m) + s z with x₀ ~ N(μ_k, Σ_k), and the relative error
/// √(Σ |ŝ − s*|²) / √(Σ |s*|²) of `learned` against the exact score of the noised mixture.
/// An under-trained network is worst where the data is scarce (the light components): the
/// loss weights every region by how often training sees it. Deterministic (`seed`).
pub fn score_error_by_component(
    learned: &dyn ScoreModel,
    mixture: &GaussianMixture,
    sde: &Sde,
    t: f64,
    n: usize,
    seed: u32,
) -> Vec<f64> {
    let exact = crate::sim::score::ExactScore::new(mixture.clone(), *sde);
    let (alpha, s) = sde.marginal(t);
    let rng = CounterRng::new(seed);
    let n = n.max(1);
    mixture
        .components()
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let xs: Vec<Vec2> = (0..n as u32)
                .map(|i| {
                    let x0 = c.mean + c.chol * rng.normal2(k as u32, i, stream::INIT);
                    sde.forward_mean(x0, alpha) + s * rng.normal2(k as u32, i, stream::STEP)
                })
                .collect();
            let (mut a, mut b) = (vec![Vec2::zeros(); n], vec![Vec2::zeros(); n]);
            learned.score_batch(&xs, t, &mut a);
            exact.score_batch(&xs, t, &mut b);
            let err: f64 = a.iter().zip(&b).map(|(a, b)| (a - b).norm_squared()).sum();
            let norm: f64 = b.iter().map(|b| b.norm_squared()).sum();
            (err / norm.max(f64::MIN_POSITIVE)).sqrt()
        })
        .collect()
}

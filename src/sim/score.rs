//! What samplers, likelihoods and metrics consume: a time-dependent score ∇ₓ log p_t(x),
//! either exact (closed form for a Gaussian mixture, ARCHITECTURE.md §4) or a trained network.

use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// A time-dependent score function (`Sync`: batch work evaluates it on several cores).
pub trait ScoreModel: Sync {
    /// ∇ₓ log p_t at every point of `xs` (all at the same `t`), written into `out`.
    fn score_batch(&self, xs: &[Vec2], t: f64, out: &mut [Vec2]);

    /// The score and its divergence ∇·s at one point (exact 2D trace of the Jacobian).
    fn score_and_divergence(&self, x: Vec2, t: f64) -> (Vec2, f64);

    /// [`Self::score_and_divergence`] at every point of `xs` (all at `t`) into `out`; the
    /// network overrides it with blocked Jacobian-vector products.
    fn score_and_divergence_batch(&self, xs: &[Vec2], t: f64, out: &mut [(Vec2, f64)]) {
        for (o, x) in out.iter_mut().zip(xs) {
            *o = self.score_and_divergence(*x, t);
        }
    }

    /// The score at one point.
    fn score(&self, x: Vec2, t: f64) -> Vec2 {
        let mut out = [Vec2::zeros()];
        self.score_batch(&[x], t, &mut out);
        out[0]
    }
}

/// The exact score of the perturbed data distribution
/// p_t = Σ w_k N(m + α (μ_k − m), α² Σ_k + s² I) (m: the SDE frame's centre).
#[derive(Clone, Debug)]
pub struct ExactScore {
    /// Data distribution p_0.
    pub mixture: GaussianMixture,
    /// The forward SDE.
    pub sde: Sde,
}

impl ExactScore {
    /// Exact score of `mixture` under `sde`.
    pub fn new(mixture: GaussianMixture, sde: Sde) -> Self {
        Self { mixture, sde }
    }

    /// The perturbed mixture p_t.
    pub fn at(&self, t: f64) -> GaussianMixture {
        let (a, s) = self.sde.marginal(t);
        self.mixture.perturbed(self.sde.center(), a, s)
    }
}

impl ScoreModel for ExactScore {
    fn score_batch(&self, xs: &[Vec2], t: f64, out: &mut [Vec2]) {
        let pt = self.at(t);
        for (o, x) in out.iter_mut().zip(xs) {
            *o = pt.score(*x);
        }
    }

    fn score_and_divergence(&self, x: Vec2, t: f64) -> (Vec2, f64) {
        self.at(t).score_and_divergence(x)
    }
}

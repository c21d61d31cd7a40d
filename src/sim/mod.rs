//! The CPU reference science (ARCHITECTURE.md §1): the ground truth every GPU stage is tested
//! against and the fallback engine where WebGPU is missing. No UI toolkit and no GPU API here.
//!
//! Data flow: a [`mixture::GaussianMixture`] (validated from a [`mixture::MixtureSpec`]) and an
//! [`sde::Sde`] define p_t; [`score::ExactScore`] gives its exact score and
//! [`model::ScoreNet`] a learned one ([`train::Trainer`] fits it by DSM); both feed the
//! [`samplers`], [`likelihood`], [`guidance`] and [`metrics`].
//!
//! Every SDE lives in the data's own frame (centre m = the mixture mean, scale d = its scalar
//! std; [`sde::Sde::for_mixture`], defined and justified in [`sde`]'s docs): users drag the
//! mixture anywhere, and no sampler, prior, exact score or likelihood may depend on where the
//! origin is.

pub mod adam;
pub mod denoise;
pub mod ellipse;
pub mod field;
pub mod flow;
pub mod gemm;
pub mod guidance;
pub mod likelihood;
pub mod mala;
pub mod metrics;
pub mod mixture;
pub mod mlp;
pub mod model;
pub mod par;
pub mod rng;
pub mod samplers;
pub mod score;
pub mod sde;
pub mod train;

/// A 2D point or vector in data space.
pub type Vec2 = nalgebra::Vector2<f64>;
/// A 2×2 matrix.
pub type Mat2 = nalgebra::Matrix2<f64>;

/// Mixtures shared by the unit tests.
#[cfg(test)]
pub(crate) mod test_mixtures {
    use super::mixture::{ComponentSpec, GaussianMixture, MixtureSpec};

    /// Off-centre (around (23, −14)), anisotropic, unequal weights, modes far apart: nothing
    /// lines up with the origin or the axes, and classifying a point by its most likely
    /// component recovers the component it was drawn from.
    pub fn off_centre_anisotropic() -> GaussianMixture {
        let c = |weight, x: f64, y: f64, cov: [[f64; 2]; 2]| ComponentSpec {
            weight,
            mean: [x + 23.0, y - 14.0],
            cov,
        };
        GaussianMixture::from_spec(&MixtureSpec {
            components: vec![
                c(0.5, -6.0, 0.0, [[1.0, 0.6], [0.6, 0.5]]),
                c(0.3, 6.0, 1.0, [[0.3, 0.0], [0.0, 2.0]]),
                c(0.2, 0.0, 7.0, [[0.8, -0.3], [-0.3, 0.8]]),
            ],
        })
        .unwrap()
    }
}

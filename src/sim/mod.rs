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
pub mod ellipse;
pub mod field;
pub mod gemm;
pub mod guidance;
pub mod likelihood;
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

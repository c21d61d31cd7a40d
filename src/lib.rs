//! ScoreLab: an interactive teaching tool for score-based generative models.
//!
//! Layers (DESIGN §1): [`sim`] (CPU reference science) ← `app` (egui UI) ← shells
//! (`web.rs` for wasm, `main.rs`/[`cli`] natively).

pub mod app;
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod engine;
pub mod gpu;
pub mod sim;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod web_bench;

//! ScoreLab: an interactive teaching tool for score-based generative models.
//!
//! Layers, each using only the ones below it: [`sim`] (the CPU reference science) ←
//! [`gpu`] (WGSL twins of the `sim` stages) ← [`engine`] (trains and samples once per frame,
//! CPU or GPU) ← [`state`] (the one state schema, share links, commands) ← [`app`] (egui:
//! views that turn input into commands) ← shells (`web.rs` for wasm, `main.rs` / [`cli`]
//! natively). See `docs/ARCHITECTURE.md`.

pub mod app;
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod engine;
pub mod gpu;
pub mod sim;
pub mod state;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod web_bench;

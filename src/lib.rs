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

/// The layers keep their order: no file of a layer names a layer above it (`crate::…` paths
/// outside tests), so there is no import cycle between them (issue 29: the engine once
/// reached up into the web shell). The shells (`web`, `cli`, `bench`) are above every layer.
#[cfg(test)]
mod layering {
    #[test]
    fn no_layer_uses_a_layer_above_it() {
        let order = [
            "sim",
            "gpu",
            "engine",
            "state",
            "app",
            "web",
            "web_bench",
            "cli",
            "bench",
        ];
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut upward = Vec::new();
        let mut files = 0;
        for (rank, layer) in order.iter().enumerate().take(5) {
            let mut stack = vec![src.join(layer), src.join(format!("{layer}.rs"))];
            while let Some(p) = stack.pop() {
                if p.is_dir() {
                    for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                        stack.push(e.path());
                    }
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                files += 1;
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for above in &order[rank + 1..] {
                    if code.contains(&format!("crate::{above}::"))
                        || code.contains(&format!("crate::{above};"))
                        || code.contains(&format!("crate::{above}}}"))
                    {
                        upward.push(format!("{} uses crate::{above}", p.display()));
                    }
                }
            }
        }
        assert!(files > 50, "read only {files} files");
        assert!(upward.is_empty(), "{}", upward.join("\n"));
    }
}

//! Project tasks: `cargo xtask dist | serve [--port P] | test`.
//!
//! - `dist`: adds the wasm32 target when missing, builds the wasm in release, runs
//!   wasm-bindgen in-process (`wasm-bindgen-cli-support`, pinned to the exact
//!   `wasm-bindgen` version), runs `wasm-opt` when installed, and writes a self-contained
//!   static site to `dist/`.
//! - `serve`: `dist`, then serves `dist/` on http://127.0.0.1:8080 (or `--port`).
//! - `bench`: native benchmark vs JAX (`--browser`: in Chromium vs TensorFlow.js; `--device`:
//!   stage the binary for a machine with a real GPU, `--device-report DIR`: its report).
//! - `test`: installs what the tests need when missing (mesa-vulkan-drivers, chromium,
//!   Node packages), runs every test tier (`cargo test`), builds `dist/` and runs the
//!   browser tests in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod bench;
mod device;
mod dist;
mod markdown;
mod serve;
mod test;

pub(crate) use bench::*;
pub(crate) use device::*;
pub(crate) use dist::*;
pub(crate) use markdown::*;
pub(crate) use serve::*;
pub(crate) use test::*;

type Result<T> = std::result::Result<T, String>;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn ensure_wasm_target() -> Result<()> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

pub(crate) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn usage() -> String {
    "usage: cargo xtask <dist | serve [--port P] | test | bench [--quick] [--browser] | bench --markdown | bench --device [--local [--quick]] | bench --device-report DIR [--peak-gflops N]>".into()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dist") => dist().map(|_| ()),
        Some("serve") => {
            let port = match args.iter().position(|a| a == "--port") {
                Some(i) => match args.get(i + 1).and_then(|p| p.parse::<u16>().ok()) {
                    Some(p) => Ok(p),
                    None => Err("--port needs a number in 0..=65535".to_string()),
                },
                None => Ok(8080),
            };
            port.and_then(serve)
        }
        Some("test") if args.iter().any(|a| a == "--quick") => test::quick(),
        Some("test") => test(),
        Some("bench") => {
            let quick = args.iter().any(|a| a == "--quick");
            let value = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1))
            };
            if let Some(dir) = value("--device-report") {
                let peak = match value("--peak-gflops") {
                    Some(p) => match p.parse::<f64>() {
                        Ok(g) if g > 0.0 => Some(g),
                        _ => {
                            return finish(Err(format!(
                                "--peak-gflops needs a positive number (got {p})"
                            )))
                        }
                    },
                    None => None,
                };
                bench_device_report(Path::new(dir), peak)
            } else if args.iter().any(|a| a == "--device") {
                bench_device(args.iter().any(|a| a == "--local"), quick)
            } else if args.iter().any(|a| a == "--markdown") {
                write_markdown() // only regenerate docs/BENCHMARKS.md from the JSON files
            } else if args.iter().any(|a| a == "--browser") {
                bench_browser(quick)
            } else {
                bench(quick)
            }
        }
        _ => Err(usage()),
    };
    finish(result)
}

fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

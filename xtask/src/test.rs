//! `cargo xtask test`: every tier as timed stages (the same tests `cargo test --release
//! --workspace` runs, one package at a time), then `dist/` and the browser tests.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::*;

pub(crate) fn browser_tests(dist: &Path, stages: &mut Stages) -> Result<()> {
    let root = root();
    let browser_dir = root.join("tests/browser");
    if !have("node") || !have("npm") {
        ensure_packages(&["nodejs", "npm"])?;
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        run(Command::new("npm")
            .current_dir(&browser_dir)
            .args(["ci", "--no-audit", "--no-fund"]))?;
    }
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot listen: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let served = dist.to_path_buf();
    std::thread::spawn(move || serve_dir(listener, served));
    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).map_err(|e| e.to_string())?;
    for script in ["smoke.mjs", "lessons.mjs"] {
        stages.time(&format!("browser: tests/browser/{script}"), || {
            run(Command::new("node")
                .current_dir(&browser_dir)
                .arg(script)
                .arg(format!("http://127.0.0.1:{port}/"))
                .arg(&shots))
        })?;
    }
    Ok(())
}

/// Wall times of the stages of a task, printed as a table at the end (issue 13: CI's budget is
/// spent where these say, measured on every run).
#[derive(Default)]
pub(crate) struct Stages(Vec<(String, f64)>);

impl Stages {
    /// Run one stage, recording its wall time whether it passes or fails.
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = std::time::Instant::now();
        eprintln!("xtask: == stage: {name}");
        let r = f();
        let secs = start.elapsed().as_secs_f64();
        let mark = if r.is_ok() { "" } else { " (FAILED)" };
        eprintln!("xtask: == stage {name}: {secs:.1} s{mark}");
        self.0.push((format!("{name}{mark}"), secs));
        r
    }

    fn print(&self) {
        let total: f64 = self.0.iter().map(|(_, s)| s).sum();
        eprintln!("xtask: stage wall times");
        for (name, secs) in &self.0 {
            eprintln!("xtask:   {secs:>8.1} s  {name}");
        }
        eprintln!("xtask:   {total:>8.1} s  total ({:.1} min)", total / 60.0);
    }
}

/// The integration-test targets (tests/*.rs and tests/*/main.rs, as cargo finds them), each
/// its own stage so its time shows.
pub(crate) fn integration_tests(root: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("tests"))
        .map_err(|e| format!("cannot list tests/: {e}"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let target = p.extension().is_some_and(|x| x == "rs") || p.join("main.rs").is_file();
            target.then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    Ok(names)
}

pub(crate) fn test() -> Result<()> {
    let root = root();
    let mut stages = Stages::default();
    let result = test_stages(&root, &mut stages);
    stages.print();
    result
}

/// `cargo xtask test --quick`: the edit–test loop (unit tests, the native UI tier, the CPU
/// reference without its slow live-sampler property tests), no browser, no wasm.
pub(crate) fn quick() -> Result<()> {
    let root = root();
    let mut stages = Stages::default();
    let result = quick_stages(&root, &mut stages);
    stages.print();
    result
}

fn quick_stages(root: &Path, stages: &mut Stages) -> Result<()> {
    let cargo_test = |extra: &[&str]| {
        run(cargo()
            .current_dir(root)
            .args(["test", "--release", "-p", "scorelab"])
            .args(extra))
    };
    stages.time("unit tests (lib)", || cargo_test(&["--lib"]))?;
    stages.time("tests/ui (egui_kittest)", || cargo_test(&["--test", "ui"]))?;
    stages.time(
        "tests/cpu_reference without the live:: property tests",
        || cargo_test(&["--test", "cpu_reference", "--", "--skip", "live::"]),
    )
}

/// `cargo test --release --workspace` split into its parts (same tests, same flags), then the
/// page build and the browser tier. The crate and the xtask are tested one package at a time:
/// `--workspace` unifies their dependencies' features, so its build of the xtask's (walrus,
/// wasm-bindgen's CLI) and of the crate's (indexmap, then naga, wgpu…) differs from the ones
/// `cargo xtask` and `cargo build` make, and a cold CI run compiled both twice (≈ 2 min).
pub(crate) fn test_stages(root: &Path, stages: &mut Stages) -> Result<()> {
    stages.time("system packages", || {
        ensure_packages(&["mesa-vulkan-drivers", "chromium"])
    })?;
    let cargo_test = |extra: &[&str]| {
        run(cargo()
            .current_dir(root)
            .args(["test", "--release", "-p", "scorelab"])
            .args(extra))
    };
    stages.time("build the native tests", || cargo_test(&["--no-run"]))?;
    stages.time("unit tests (lib, bins)", || {
        cargo_test(&["--lib", "--bins"])
    })?;
    stages.time("unit tests (xtask)", || {
        run(cargo()
            .current_dir(root)
            .args(["test", "--release", "-p", "xtask"]))
    })?;
    for name in integration_tests(root)? {
        stages.time(&format!("tests/{name}"), || cargo_test(&["--test", &name]))?;
    }
    stages.time("doc tests", || cargo_test(&["--doc"]))?;
    let dist = stages.time("build dist/ (two wasm builds)", dist)?;
    browser_tests(&dist, stages)
}

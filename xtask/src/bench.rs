//! `cargo xtask bench`: the native benchmarks with peers (JAX) and the browser benchmark
//! (TensorFlow.js backends beside the page's engines).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::*;

pub(crate) fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cpu}, {cores} cores")
}

/// The JAX peer: bench/jax_train.py in bench/.venv (created and filled from PyPI when missing).
pub(crate) fn jax_steps_per_s(
    width: u64,
    batch: u64,
    steps: u64,
    scan: bool,
) -> Result<serde_json::Value> {
    let root = root();
    let py = root.join("bench/.venv/bin/python");
    if !py.exists() {
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(root.join("bench/.venv")))?;
        run(Command::new(&py).args(["-m", "pip", "install", "-q", "jax"]))?;
    }
    let out = Command::new(&py)
        .arg(root.join("bench/jax_train.py"))
        .args([width.to_string(), batch.to_string(), steps.to_string()])
        .args(scan.then_some("scan"))
        .output()
        .map_err(|e| format!("cannot run the JAX peer: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "JAX peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("JAX peer printed no JSON: {e}"))
}

/// Build the native binary (`target/release/scorelab`) in release.
pub(crate) fn build_native_release() -> Result<()> {
    run(cargo().current_dir(root()).args([
        "build",
        "--release",
        "-p",
        "scorelab",
        "--bin",
        "scorelab",
    ]))
}

pub(crate) fn bench(quick: bool) -> Result<()> {
    let root = root();
    build_native_release()?;
    let mut cmd = Command::new(root.join("target/release/scorelab"));
    cmd.arg("bench");
    if quick {
        cmd.arg("--quick");
    }
    eprintln!("xtask: running {cmd:?}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the benchmark: {e}"))?;
    if !out.status.success() {
        return Err("the benchmark failed".into());
    }
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("benchmark printed no JSON: {e}"))?;
    report["machine"] = serde_json::json!(machine_description());
    if quick {
        let path = root.join("target/bench-quick.json");
        std::fs::write(&path, report.to_string()).map_err(|e| e.to_string())?;
        eprintln!("xtask: smoke benchmark OK ({})", path.display());
        return Ok(());
    }
    if let Some(rows) = report["train"].as_array_mut() {
        for row in rows {
            let (w, b) = (
                row["width"].as_u64().unwrap_or(64),
                row["batch"].as_u64().unwrap_or(1024),
            );
            let steps = (2_000_000_000 / (w * w * b * 6)).clamp(10, 200);
            let jax = jax_steps_per_s(w, b, steps, false)?;
            let scan = jax_steps_per_s(w, b, steps, true)?;
            eprintln!(
                "xtask: JAX width {w} batch {b}: {:.1} steps/s, {:.1} with lax.scan",
                jax["steps_per_s"].as_f64().unwrap_or(0.0),
                scan["steps_per_s"].as_f64().unwrap_or(0.0)
            );
            row["jax_cpu_steps_per_s"] = jax["steps_per_s"].clone();
            row["jax_scan_steps_per_s"] = scan["steps_per_s"].clone();
            row["jax_version"] = jax["jax"].clone();
        }
    }
    std::fs::create_dir_all(root.join("docs")).map_err(|e| e.to_string())?;
    std::fs::write(
        root.join("docs/benchmarks.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    write_markdown()?;
    eprintln!("xtask: wrote docs/BENCHMARKS.md and docs/benchmarks.json");
    Ok(())
}

/// TensorFlow.js files the benchmark page loads from `vendor/tfjs/` (package, file).
pub(crate) const TFJS_FILES: &[(&str, &str)] = &[
    ("tfjs", "tf.min.js"),
    ("tfjs-backend-webgpu", "tf-backend-webgpu.min.js"),
    ("tfjs-backend-wasm", "tf-backend-wasm.min.js"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm.wasm"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm-simd.wasm"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm-threaded-simd.wasm"),
];

/// `bench --browser`: web/bench.html and the app page in headless Chromium (WebGPU), with
/// TensorFlow.js from npm as the peer (bench/browser), driven by bench/browser/run.mjs.
pub(crate) fn bench_browser(quick: bool) -> Result<()> {
    let root = root();
    ensure_packages(&["mesa-vulkan-drivers", "chromium"])?;
    if !have("node") || !have("npm") {
        ensure_packages(&["nodejs", "npm"])?;
    }
    let bench_dir = root.join("bench/browser");
    if !bench_dir
        .join("node_modules/@tensorflow/tfjs-backend-webgpu")
        .exists()
        || !bench_dir.join("node_modules/playwright-core").exists()
    {
        run(Command::new("npm")
            .current_dir(&bench_dir)
            .args(["ci", "--no-audit", "--no-fund"]))?;
    }
    let dist = dist()?;
    let vendor = dist.join("vendor/tfjs");
    std::fs::create_dir_all(&vendor).map_err(|e| e.to_string())?;
    for (pkg, file) in TFJS_FILES {
        let from = bench_dir.join(format!("node_modules/@tensorflow/{pkg}/dist/{file}"));
        std::fs::copy(&from, vendor.join(file))
            .map_err(|e| format!("cannot copy {}: {e}", from.display()))?;
    }
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot listen: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let served = dist.clone();
    std::thread::spawn(move || serve_dir(listener, served));
    let out = root.join(if quick {
        "target/browser-bench-quick.json"
    } else {
        "target/browser-bench.json"
    });
    let mut cmd = Command::new("node");
    cmd.current_dir(&bench_dir)
        .arg("run.mjs")
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&out);
    if quick {
        cmd.arg("--quick");
    }
    run(&mut cmd)?;
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", out.display()))?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let build_size = |name: &str| {
        let (wasm, js) = (
            dist.join(format!("{name}_bg.wasm")),
            dist.join(format!("{name}.js")),
        );
        serde_json::json!({
            "wasm_bytes": size(&wasm), "wasm_gzip_bytes": gzip_size(&wasm).unwrap_or(0),
            "js_bytes": size(&js), "js_gzip_bytes": gzip_size(&js).unwrap_or(0),
            "html_gzip_bytes": gzip_size(&dist.join("index.html")).unwrap_or(0),
        })
    };
    report["size"] = build_size("scorelab");
    report["size_webgl"] = build_size("scorelab_webgl");
    report["machine"] = serde_json::json!(machine_description());
    // The smoke check: every part produced numbers for our engines and for at least one peer.
    let engines: Vec<&str> = report["bench"]["train"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["engine"].as_str())
        .collect();
    let mut problems = Vec::new();
    for want in ["scorelab-webgpu", "scorelab-cpu-wasm"] {
        if !engines.contains(&want) {
            problems.push(format!("no training row for {want}"));
        }
    }
    if !engines.iter().any(|e| e.starts_with("tfjs-")) {
        problems.push("no TensorFlow.js training row".into());
    }
    if report["load"]["first_frame_ms"].as_f64().is_none() {
        problems.push("no first-frame time".into());
    }
    if report["frames"].as_array().is_none_or(|f| f.is_empty()) {
        problems.push("no frame-budget rows".into());
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        return Err(format!(
            "browser benchmark incomplete: {}; errors reported by the page: {}",
            problems.join("; "),
            report["bench"]["errors"]
        ));
    }
    if quick {
        eprintln!("xtask: browser benchmark smoke OK ({})", out.display());
        return Ok(());
    }
    std::fs::create_dir_all(root.join("docs")).map_err(|e| e.to_string())?;
    std::fs::write(
        root.join("docs/browser-bench.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    write_markdown()?;
    eprintln!("xtask: wrote docs/BENCHMARKS.md and docs/browser-bench.json");
    Ok(())
}

//! Project tasks: `cargo xtask dist | serve [--port P] | test`.
//!
//! - `dist`: adds the wasm32 target when missing, builds the wasm in release, runs
//!   wasm-bindgen in-process (`wasm-bindgen-cli-support`, pinned to the exact
//!   `wasm-bindgen` version), runs `wasm-opt` when installed, and writes a self-contained
//!   static site to `dist/`.
//! - `serve`: `dist`, then serves `dist/` on http://127.0.0.1:8080 (or `--port`).
//! - `test`: installs what the tests need when missing (mesa-vulkan-drivers, chromium,
//!   Node packages), runs every test tier (`cargo test`), builds `dist/` and runs the
//!   browser tests in headless Chromium.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T> = std::result::Result<T, String>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
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

fn output(cmd: &mut Command) -> Option<String> {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ensure_wasm_target() -> Result<()> {
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

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Install Debian packages that are not installed yet (as root, or through `sudo -n`).
fn ensure_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {missing:?}");
    let is_root = output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0");
    let apt = |args: &[&str]| {
        let mut c = if is_root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !is_root {
            c.args(["-n", "apt-get"]);
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    run(&mut apt(&args))
        .map_err(|e| format!("{e}; install {missing:?} by hand (they are needed by the tests)"))
}

/// Oldest wasm-opt we run (108, Debian 12's, is known broken for this output; see `dist`).
const MIN_WASM_OPT: u32 = 116;

const WASM_OPT_FLAGS: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-reference-types",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-multivalue",
];

fn gzip_size(path: &Path) -> Option<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .ok()?;
    Some(out.stdout.len() as u64)
}

fn web_build(root: &Path, out: &Path, name: &str, flags: &[&str]) -> Result<()> {
    run(cargo()
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--lib",
            "-p",
            "scorelab",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(flags))?;
    let wasm = root.join("target/wasm32-unknown-unknown/release/scorelab.wasm");
    eprintln!("xtask: wasm-bindgen {} -> {name}", wasm.display());
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .map_err(|e| e.to_string())?
        .typescript(false)
        // Function names cost ≈0.3 MB gzipped; panics still print their message.
        .remove_name_section(true)
        .out_name(name)
        .generate(out)
        .map_err(|e| format!("wasm-bindgen failed: {e}"))?;
    let bg = out.join(format!("{name}_bg.wasm"));
    let wasm_opt_version = output(Command::new("wasm-opt").arg("--version"))
        .and_then(|v| v.split_whitespace().find_map(|w| w.parse::<u32>().ok()));
    if std::env::var_os("SCORELAB_NO_WASM_OPT").is_some() {
        eprintln!("xtask: SCORELAB_NO_WASM_OPT is set; skipping wasm-opt");
    } else if wasm_opt_version.is_some_and(|v| v < MIN_WASM_OPT) {
        // Measured here: Debian's binaryen 108 rewrites the externref table that wasm-bindgen
        // adds for rustc's (default) reference-types output, and the page then dies at start-up
        // with "WebAssembly.Table.set(): Argument 1 is invalid for table".
        eprintln!(
            "xtask: skipping wasm-opt {}: versions before {MIN_WASM_OPT} break wasm-bindgen's externref table",
            wasm_opt_version.unwrap_or(0)
        );
    } else if have("wasm-opt") {
        let mut c = Command::new("wasm-opt");
        c.arg("-Oz")
            .args(WASM_OPT_FLAGS)
            .arg(&bg)
            .arg("-o")
            .arg(&bg);
        run(&mut c)?;
    } else {
        eprintln!("xtask: wasm-opt not installed (apt-get install binaryen); the wasm is not size-optimised");
    }
    let js = out.join(format!("{name}.js"));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: {name}: wasm {} bytes ({} gzipped), js {} bytes ({} gzipped)",
        size(&bg),
        gzip_size(&bg).unwrap_or(0),
        size(&js),
        gzip_size(&js).unwrap_or(0)
    );
    Ok(())
}

/// The page's two builds: (output name, extra cargo flags). The first renders with WebGPU
/// only; the second adds the WebGL2 fallback (feature `webgl`); index.html picks one.
const WEB_BUILDS: &[(&str, &[&str])] = &[
    ("scorelab", &["--no-default-features"]),
    ("scorelab_webgl", &[]),
];

fn dist() -> Result<PathBuf> {
    let root = root();
    ensure_wasm_target()?;
    let out = root.join("dist");
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (name, flags) in WEB_BUILDS {
        web_build(&root, &out, name, flags)?;
    }
    for (from, to) in [
        ("index.html", "index.html"),
        ("web/style.css", "style.css"),
        ("web/embed-example.html", "embed-example.html"),
        ("web/bench.html", "bench.html"),
        ("web/bench.js", "bench.js"),
    ] {
        std::fs::copy(root.join(from), out.join(to))
            .map_err(|e| format!("cannot copy {from}: {e}"))?;
    }
    eprintln!("xtask: dist/ ready");
    Ok(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn handle(mut stream: TcpStream, dir: &Path) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Drain headers.
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let rel = if path == "/" {
        "index.html"
    } else {
        path.trim_start_matches('/')
    };
    let file = dir.join(rel);
    let safe = !rel.split('/').any(|c| c == "..");
    let (status, body, ctype) = match (safe, std::fs::read(&file)) {
        (true, Ok(body)) => ("200 OK", body, content_type(&file)),
        _ => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(&body));
}

/// Serve `dir` on `listener` forever (one thread per connection).
fn serve_dir(listener: TcpListener, dir: PathBuf) {
    for stream in listener.incoming().flatten() {
        let dir = dir.clone();
        std::thread::spawn(move || handle(stream, &dir));
    }
}

fn serve(port: u16) -> Result<()> {
    let dir = dist()?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    println!("ScoreLab is served at http://127.0.0.1:{port}/ (Ctrl+C to stop)");
    serve_dir(listener, dir);
    Ok(())
}

fn browser_tests(dist: &Path, stages: &mut Stages) -> Result<()> {
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
struct Stages(Vec<(String, f64)>);

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
fn integration_tests(root: &Path) -> Result<Vec<String>> {
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

fn test() -> Result<()> {
    let root = root();
    let mut stages = Stages::default();
    let result = test_stages(&root, &mut stages);
    stages.print();
    result
}

/// `cargo test --release --workspace` split into its parts (same tests, same flags), then the
/// page build and the browser tier.
fn test_stages(root: &Path, stages: &mut Stages) -> Result<()> {
    stages.time("system packages", || {
        ensure_packages(&["mesa-vulkan-drivers", "chromium"])
    })?;
    let cargo_test = |extra: &[&str]| {
        run(cargo()
            .current_dir(root)
            .args(["test", "--release", "--workspace"])
            .args(extra))
    };
    stages.time("build the native tests", || cargo_test(&["--no-run"]))?;
    stages.time("unit tests (lib, bins, xtask)", || {
        cargo_test(&["--lib", "--bins"])
    })?;
    for name in integration_tests(root)? {
        stages.time(&format!("tests/{name}"), || cargo_test(&["--test", &name]))?;
    }
    stages.time("doc tests", || cargo_test(&["--doc"]))?;
    let dist = stages.time("build dist/ (two wasm builds)", dist)?;
    browser_tests(&dist, stages)
}

fn machine_description() -> String {
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
fn jax_steps_per_s(width: u64, batch: u64, steps: u64) -> Result<serde_json::Value> {
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

fn bench(quick: bool) -> Result<()> {
    let root = root();
    run(cargo().current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "scorelab",
        "--bin",
        "scorelab",
    ]))?;
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
            let jax = jax_steps_per_s(w, b, steps)?;
            eprintln!(
                "xtask: JAX width {w} batch {b}: {:.1} steps/s",
                jax["steps_per_s"].as_f64().unwrap_or(0.0)
            );
            row["jax_cpu_steps_per_s"] = jax["steps_per_s"].clone();
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
const TFJS_FILES: &[(&str, &str)] = &[
    ("tfjs", "tf.min.js"),
    ("tfjs-backend-webgpu", "tf-backend-webgpu.min.js"),
    ("tfjs-backend-wasm", "tf-backend-wasm.min.js"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm.wasm"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm-simd.wasm"),
    ("tfjs-backend-wasm", "tfjs-backend-wasm-threaded-simd.wasm"),
];

/// `bench --browser`: web/bench.html and the app page in headless Chromium (WebGPU), with
/// TensorFlow.js from npm as the peer (bench/browser), driven by bench/browser/run.mjs.
fn bench_browser(quick: bool) -> Result<()> {
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

/// docs/BENCHMARKS.md from docs/benchmarks.json (native) and docs/browser-bench.json.
fn write_markdown() -> Result<()> {
    let root = root();
    let read = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(root.join("docs").join(name)).ok()?).ok()
    };
    let mut md = read("benchmarks.json")
        .map(|r| benchmarks_markdown(&r))
        .unwrap_or_else(|| "# Benchmarks\n\n(no native run yet: `cargo xtask bench`)\n".into());
    if let Some(b) = read("browser-bench.json") {
        md.push_str(&browser_markdown(&b));
    }
    std::fs::write(root.join("docs/BENCHMARKS.md"), md).map_err(|e| e.to_string())
}

fn benchmarks_markdown(r: &serde_json::Value) -> String {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let a = &r["adapter"];
    let mut s = String::new();
    s.push_str("# Benchmarks\n\nGenerated by `cargo xtask bench` (do not edit by hand; raw numbers in `benchmarks.json`).\n\n");
    s.push_str(&format!(
        "- Machine: {}\n- GPU adapter: {} ({}, {}; {} {})\n\n",
        r["machine"].as_str().unwrap_or("?"),
        a["name"].as_str().unwrap_or("?"),
        a["backend"].as_str().unwrap_or("?"),
        a["device_type"].as_str().unwrap_or("?"),
        a["driver"].as_str().unwrap_or(""),
        a["driver_info"].as_str().unwrap_or("")
    ));
    s.push_str("## Training (same MLP: depth 3, SiLU, 8 time-Fourier features; DSM loss; Adam; ring8 data)\n\n");
    s.push_str("| width | batch | WGSL engine steps/s | CPU `sim` steps/s | JAX (CPU) steps/s | WGSL / sim | JAX / sim | WGSL GFLOP/s | sim GFLOP/s |\n|---|---|---|---|---|---|---|---|---|\n");
    for row in r["train"].as_array().into_iter().flatten() {
        let (g, c, j) = (
            f(&row["gpu_steps_per_s"]),
            f(&row["cpu_steps_per_s"]),
            f(&row["jax_cpu_steps_per_s"]),
        );
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2}× | {:.2}× | {:.2} | {:.2} |\n",
            row["width"],
            row["batch"],
            g,
            c,
            j,
            g / c,
            j / c,
            f(&row["gpu_gflops"]),
            f(&row["cpu_gflops"])
        ));
    }
    s.push_str(
        "\n## Sampling (annealed Langevin step with the network; one dispatch per step)\n\n",
    );
    s.push_str("| width | particles | WGSL ms/step | sim ms/step | WGSL NFE/s | sim NFE/s | WGSL / sim | WGSL GFLOP/s |\n|---|---|---|---|---|---|---|---|\n");
    for row in r["sample"].as_array().into_iter().flatten() {
        let (g, c) = (f(&row["gpu_nfe_per_s"]), f(&row["cpu_nfe_per_s"]));
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.3e} | {:.3e} | {:.2}× | {:.2} |\n",
            row["width"],
            row["particles"],
            f(&row["gpu_step_ms"]),
            f(&row["cpu_step_ms"]),
            g,
            c,
            g / c,
            f(&row["gpu_gflops"])
        ));
    }
    if let Some(mm) = r["matmul"].as_array().filter(|m| !m.is_empty()) {
        s.push_str("\n## Tiled matmul reference (`shaders/matmul.wgsl`, same adapter)\n\nThe MLP's hidden layer as a dense SGEMM (rows × width · width × width). Fused kernels as a fraction of it: the best sampler row and the training rows of the same width.\n\n| shape | tiled GFLOP/s | fused sampler GFLOP/s | sampler / tiled | best training GFLOP/s | training / tiled |\n|---|---|---|---|---|---|\n");
        for m in mm {
            let w = &m["n"];
            let tiled = f(&m["gpu_gflops"]);
            let best = |rows: &serde_json::Value| {
                rows.as_array()
                    .into_iter()
                    .flatten()
                    .filter(|x| &x["width"] == w)
                    .map(|x| f(&x["gpu_gflops"]))
                    .fold(f64::NAN, f64::max)
            };
            let (sampler, train) = (best(&r["sample"]), best(&r["train"]));
            s.push_str(&format!(
                "| {}×{}·{}×{} | {:.2} | {:.2} | {:.0}% | {:.2} | {:.0}% |\n",
                m["m"],
                m["k"],
                m["k"],
                m["n"],
                tiled,
                sampler,
                100.0 * sampler / tiled,
                train,
                100.0 * train / tiled
            ));
        }
    }
    if let Some(conv) = r["convergence"].as_array().filter(|c| !c.is_empty()) {
        s.push_str("\n## GPU training convergence (VE, width 64, depth 3, batch 256, lr 2e-3)\n\nThe long run the lavapipe tier used to make (issue 13); the tests now check GPU training against the CPU trainer step for step.\n\n| preset | steps | seconds | mean relative Fisher | bar 0.1 |\n|---|---|---|---|---|\n");
        for c in conv {
            s.push_str(&format!(
                "| {} | {} | {:.1} | {:.4} | {} |\n",
                c["preset"].as_str().unwrap_or("?"),
                c["steps"],
                f(&c["seconds"]),
                f(&c["fisher_mean"]),
                verdict(c["meets_bar"].as_bool().unwrap_or(false))
            ));
        }
    }
    let d = &r["dispatches"];
    s.push_str(&format!(
        "\n## Dispatches\n\n- training step: {} dispatches (`train_step`, `train_finish`, `reduce_adam`), {} steps per submit\n- sampler step: {} dispatch ({} for predictor–corrector), {} steps per submit\n- readbacks inside step loops: {}\n",
        d["per_training_step"], d["training_steps_per_submit"], d["per_sampler_step"], d["per_pc_step"], d["sampler_steps_per_submit"], d["readbacks_in_step_loops"]
    ));
    s
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

fn browser_markdown(r: &serde_json::Value) -> String {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let b = &r["bench"];
    let mut s = String::new();
    let adapter = &b["adapter"];
    let wa = &b["webgpu_adapter"];
    s.push_str(&format!(
        "\n# In the browser\n\nGenerated by `cargo xtask bench --browser` (raw numbers in `browser-bench.json`): `web/bench.html` and the app page in headless Chromium {} with WebGPU.\n\n- Machine: {}\n- WebGPU adapter: {} / {} {} ({}; wgpu sees {:?}, {})\n- TensorFlow.js {}\n\n",
        r["chromium"].as_str().unwrap_or("?"),
        r["machine"].as_str().unwrap_or("?"),
        wa["vendor"].as_str().unwrap_or("?"),
        wa["architecture"].as_str().unwrap_or("?"),
        wa["device"].as_str().unwrap_or(""),
        wa["description"].as_str().unwrap_or(""),
        adapter["name"].as_str().unwrap_or("?"),
        adapter["device_type"].as_str().unwrap_or("?"),
        b["tfjs_version"].as_str().unwrap_or("not loaded"),
    ));
    let train: Vec<&serde_json::Value> = b["train"].as_array().into_iter().flatten().collect();
    let rate = |engine: &str| {
        train
            .iter()
            .find(|t| t["engine"] == engine)
            .map(|t| f(&t["steps_per_s"]))
            .unwrap_or(f64::NAN)
    };
    let cfg = &b["config"];
    s.push_str(&format!(
        "## Training in the browser (same MLP: width {}, depth {}, batch {}; DSM; Adam + EMA)\n\n| engine | steps/s | GFLOP/s | × TF.js webgpu | × TF.js webgl | × TF.js wasm |\n|---|---|---|---|---|---|\n",
        cfg["width"], b["depth"], cfg["batch"]
    ));
    for t in &train {
        let v = f(&t["steps_per_s"]);
        s.push_str(&format!(
            "| {} | {:.1} | {:.2} | {:.2}× | {:.2}× | {:.2}× |\n",
            t["engine"].as_str().unwrap_or("?"),
            v,
            f(&t["gflops"]),
            v / rate("tfjs-webgpu"),
            v / rate("tfjs-webgl"),
            v / rate("tfjs-wasm")
        ));
    }
    s.push_str("\n## Sampler step in the browser (annealed Langevin with the network; TF.js: the same MLP's inference + update)\n\n| engine | particles | ms/step | NFE/s | GFLOP/s | × TF.js webgpu |\n|---|---|---|---|---|---|\n");
    let samples: Vec<&serde_json::Value> = b["sample"].as_array().into_iter().flatten().collect();
    for x in &samples {
        let peer = samples
            .iter()
            .find(|y| y["engine"] == "tfjs-webgpu" && y["particles"] == x["particles"])
            .map(|y| f(&y["step_ms"]))
            .unwrap_or(f64::NAN);
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.3e} | {:.2} | {:.2}× |\n",
            x["engine"].as_str().unwrap_or("?"),
            x["particles"],
            f(&x["step_ms"]),
            f(&x["nfe_per_s"]),
            f(&x["gflops"]),
            peer / f(&x["step_ms"])
        ));
    }
    s.push_str("\n## Dense matmul on the same adapter (the reference)\n\n| kernel | shape | GFLOP/s |\n|---|---|---|\n");
    let (mut tiled, mut best_webgpu) = (f64::NAN, f64::NAN);
    for m in b["matmul"].as_array().into_iter().flatten() {
        let g = f(&m["gflops"]);
        if m["engine"].as_str().is_some_and(|e| e.contains("tiled")) {
            tiled = g;
        }
        if m["engine"].as_str().is_some_and(|e| e.contains("webgpu")) {
            best_webgpu = best_webgpu.max(g);
        }
        s.push_str(&format!(
            "| {} | {}×{}·{}×{} | {:.2} |\n",
            m["engine"].as_str().unwrap_or("?"),
            m["m"],
            m["k"],
            m["k"],
            m["n"],
            g
        ));
    }
    let fused = samples
        .iter()
        .filter(|x| x["engine"] == "scorelab-webgpu")
        .map(|x| f(&x["gflops"]))
        .fold(f64::NAN, f64::max);
    let size = &r["size"];
    let gz = f(&size["wasm_gzip_bytes"]) + f(&size["js_gzip_bytes"]);
    let sw = &r["size_webgl"];
    let gz_webgl_mb = (f(&sw["wasm_gzip_bytes"]) + f(&sw["js_gzip_bytes"])) / 1e6;
    let load = &r["load"];
    let first = f(&load["first_frame_after_files_ms"]);
    let gpu_x = rate("scorelab-webgpu") / rate("tfjs-webgpu");
    let cpu_x = rate("scorelab-cpu-wasm") / rate("tfjs-wasm");
    s.push_str(&format!(
        "\n## Targets (issue 6), from this run\n\n| target | measured | |\n|---|---|---|\n| WebGPU training ≥ 10× TF.js webgpu | {gpu_x:.2}× | {} |\n| CPU engine (wasm) training ≥ TF.js wasm | {cpu_x:.2}× | {} |\n| fused sampler ≥ 25% of the tiled matmul's FLOP/s | {:.0}% ({fused:.2} of {tiled:.2} GFLOP/s); of the best WebGPU matmul here (ours or TF.js's): {:.0}% | {} |\n| wasm + JS ≤ 2 MB gzipped (WebGPU build) | {:.2} MB (wasm {:.2} + JS {:.3}); the WebGL fallback build: {gz_webgl_mb:.2} MB | {} |\n| first frame ≤ 1 s after the files arrive | {:.0} ms (files at {:.0} ms) | {} |\n| Fisher divergence < {} on the default preset | {:.1} s after navigation ({} engine, step {}) | reported |\n",
        verdict(gpu_x >= 10.0),
        verdict(cpu_x >= 1.0),
        100.0 * fused / tiled,
        100.0 * fused / best_webgpu,
        verdict(fused / tiled >= 0.25),
        gz / 1e6,
        f(&size["wasm_gzip_bytes"]) / 1e6,
        f(&size["js_gzip_bytes"]) / 1e6,
        verdict(gz <= 2e6),
        first,
        f(&load["files_arrived_ms"]),
        verdict(first <= 1000.0),
        load["fisher_bar"],
        f(&load["fisher_below_bar_ms"]) / 1e3,
        load["engine"].as_str().unwrap_or("?"),
        load["fisher_step"],
    ));
    s.push_str("\n## Frame budget of the live page (defaults, varying particles and width)\n\nFrame interval median / p95 over the frames after the change; the app's CPU time per frame split into training, sampling, fields (incl. metrics and readbacks) and egui; GPU work per frame (WebGPU engine only; means over all frames, including those where the engine waits for the last frame's readbacks and encodes nothing; a frame that works makes one submit). On the GPU engine the split is encoding time; GPU execution shows in the interval.\n\n| engine | width | particles | frames | median ms | p95 ms | ui ms | train | sample | field | egui | dispatches | submits | bytes up | bytes down | steps/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let opt = |v: &serde_json::Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.0}"));
    let opt1 = |v: &serde_json::Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.1}"));
    for row in r["frames"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.0} |\n",
            row["engine"].as_str().unwrap_or("?"),
            row["width"],
            row["particles"],
            row["frames"],
            f(&row["frame_ms_median"]),
            f(&row["frame_ms_p95"]),
            f(&row["ui_ms"]),
            f(&row["train_ms"]),
            f(&row["sample_ms"]),
            f(&row["field_ms"]),
            f(&row["egui_ms"]),
            opt1(&row["dispatches"]),
            opt1(&row["submits"]),
            opt(&row["bytes_up"]),
            opt(&row["bytes_down"]),
            f(&row["steps_per_s"]),
        ));
    }
    if let Some(errs) = b["errors"].as_array().filter(|e| !e.is_empty()) {
        s.push_str("\n## Errors reported by the page\n\n");
        for e in errs {
            s.push_str(&format!("- {}\n", e.as_str().unwrap_or("?")));
        }
    }
    s
}

fn usage() -> String {
    "usage: cargo xtask <dist | serve [--port P] | test | bench [--quick] [--browser] | bench --markdown>".into()
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
        Some("test") => test(),
        Some("bench") => {
            let quick = args.iter().any(|a| a == "--quick");
            if args.iter().any(|a| a == "--markdown") {
                write_markdown() // only regenerate docs/BENCHMARKS.md from the JSON files
            } else if args.iter().any(|a| a == "--browser") {
                bench_browser(quick)
            } else {
                bench(quick)
            }
        }
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

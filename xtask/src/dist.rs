//! `cargo xtask dist`: the static site (two wasm builds, wasm-bindgen in-process, wasm-opt when
//! installed), and the system packages the tasks need.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::*;

/// Install Debian packages that are not installed yet (as root, or through `sudo -n`).
pub(crate) fn ensure_packages(packages: &[&str]) -> Result<()> {
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
pub(crate) const MIN_WASM_OPT: u32 = 116;

pub(crate) const WASM_OPT_FLAGS: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-reference-types",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-multivalue",
];

pub(crate) fn gzip_size(path: &Path) -> Option<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .ok()?;
    Some(out.stdout.len() as u64)
}

pub(crate) fn web_build(root: &Path, out: &Path, build: &WebBuild) -> Result<()> {
    let WebBuild { name, flags, lto } = *build;
    // A whole-program build has its own target directory: its dependencies are compiled for
    // LTO (bitcode, one codegen unit), and sharing `target/` would rebuild every dependency of
    // both builds on every `dist`.
    let target_dir = if lto {
        root.join("target/web-lto")
    } else {
        root.join("target")
    };
    let mut c = cargo();
    c.current_dir(root)
        // The page is built by rustc itself even where `.ci/run` compiles this workspace
        // through clippy-driver (which turns MIR optimisations off): the browser tier tests
        // the wasm a visitor gets.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env("CARGO_TARGET_DIR", &target_dir)
        // `cargo rustc --crate-type cdylib`: cargo applies a profile's `lto` only to a crate
        // built as a cdylib alone, never to the `["cdylib", "rlib"]` of Cargo.toml.
        .args([
            "rustc",
            "--crate-type",
            "cdylib",
            "--release",
            "--lib",
            "-p",
            "scorelab",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(flags);
    if lto {
        c.env("CARGO_PROFILE_RELEASE_LTO", "fat")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    }
    run(&mut c)?;
    let wasm = target_dir.join("wasm32-unknown-unknown/release/scorelab.wasm");
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

/// One of the page's builds.
pub(crate) struct WebBuild {
    /// The output name (`{name}.js`, `{name}_bg.wasm`).
    pub name: &'static str,
    /// Extra cargo flags.
    pub flags: &'static [&'static str],
    /// Whole-program optimisation (fat LTO, one codegen unit). Measured on the WebGPU build
    /// (2026-12-06): 1.93 MB gzipped wasm against 2.00 MB without, the page's 2 MB budget met,
    /// for about 3 minutes of building instead of 1.5. On the WebGL build fat LTO alone made
    /// the wasm larger (3.05 MB against 3.03: LTO re-optimises the UI crates compiled for
    /// size at the crate's opt-level 3), so it stays off there.
    pub lto: bool,
}

/// The page's two builds. The first renders with WebGPU only; the second adds the WebGL2
/// fallback (feature `webgl`); index.html picks one.
pub(crate) const WEB_BUILDS: &[WebBuild] = &[
    WebBuild {
        name: "scorelab",
        flags: &["--no-default-features"],
        lto: true,
    },
    WebBuild {
        name: "scorelab_webgl",
        flags: &[],
        lto: false,
    },
];

/// A fingerprint of everything the page is built from (path, size and modification time of
/// each file under `src/` and `web/`, the manifests, `index.html`), of the wasm-opt choice and
/// of the builds' settings: `dist()` reuses a `dist/` built from the same inputs (`cargo xtask
/// bench --browser` right after `cargo xtask test` then costs no wasm builds; cargo alone
/// would rebuild the crate twice, once per feature set).
fn dist_inputs(root: &Path) -> String {
    use std::hash::{Hash, Hasher};
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, files);
            } else {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    for d in ["src", "web"] {
        walk(&root.join(d), &mut files);
    }
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        "index.html",
    ] {
        files.push(root.join(f));
    }
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        f.hash(&mut h);
        if let Ok(m) = std::fs::metadata(f) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    std::env::var_os("SCORELAB_NO_WASM_OPT")
        .is_some()
        .hash(&mut h);
    output(Command::new("wasm-opt").arg("--version")).hash(&mut h);
    for b in WEB_BUILDS {
        (b.name, b.flags, b.lto).hash(&mut h);
    }
    format!("{:016x} ({} files)", h.finish(), files.len())
}

pub(crate) fn dist() -> Result<PathBuf> {
    let root = root();
    ensure_wasm_target()?;
    let out = root.join("dist");
    let stamp = out.join(".inputs");
    let inputs = dist_inputs(&root);
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == inputs)
        && WEB_BUILDS
            .iter()
            .all(|b| out.join(format!("{}_bg.wasm", b.name)).exists())
    {
        eprintln!("xtask: dist/ is up to date (built from the same inputs: {inputs}); reusing it");
        return Ok(out);
    }
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .map_err(|e| format!("cannot clear {}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for build in WEB_BUILDS {
        web_build(&root, &out, build)?;
    }
    for (from, to) in [
        ("index.html", "index.html"),
        ("web/style.css", "style.css"),
        ("web/embed-example.html", "embed-example.html"),
        ("web/bench.html", "bench.html"),
        ("web/bench.js", "bench.js"),
        ("web/worker.js", "worker.js"),
    ] {
        std::fs::copy(root.join(from), out.join(to))
            .map_err(|e| format!("cannot copy {from}: {e}"))?;
    }
    std::fs::write(&stamp, &inputs)
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    eprintln!("xtask: dist/ ready");
    Ok(out)
}

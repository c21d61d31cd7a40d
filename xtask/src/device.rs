//! The GPU run (issue 17): `bench --device` stages the release binary for a machine with a
//! real GPU (which reaches no package registry) and prints how to run it there;
//! `bench --device-report DIR` turns what came back into docs/device/<adapter>.{json,md};
//! `bench --device --local [--quick]` runs the same script here (lavapipe) to try the flow.

use std::path::Path;
use std::process::Command;

use crate::{root, run, Result};

/// Where the staged binary goes (git-ignored; the `device` tool carries it).
const STAGED: &str = "bench/device/scorelab";

/// Build the native benchmark binary in release and stage it for the GPU machine.
pub(crate) fn bench_device(local: bool, quick: bool) -> Result<()> {
    let root = root();
    crate::build_native_release()?;
    std::fs::copy(root.join("target/release/scorelab"), root.join(STAGED))
        .map_err(|e| format!("cannot stage the binary: {e}"))?;
    let size = std::fs::metadata(root.join(STAGED)).map_or(0, |m| m.len());
    eprintln!(
        "xtask: staged {STAGED} ({:.1} MB). On the GPU machine (the `device` tool's run), from the repository root:\n\n    bench/device/run.sh   (carry: [\"{STAGED}\"], writes into $OUT; about 3–6 min on a real GPU)\n\nthen bring $OUT back and run: cargo xtask bench --device-report <that folder> [--peak-gflops N]",
        size as f64 / 1e6
    );
    if !local {
        return Ok(());
    }
    let out = root.join("target/device-local");
    let mut cmd = Command::new(root.join("bench/device/run.sh"));
    cmd.env("OUT", &out);
    if quick {
        cmd.env("QUICK", "1");
    }
    run(&mut cmd)?;
    // A try of the flow, not a GPU run: the report stays in target/.
    report_into(&out, None, &out.join("report"))?;
    Ok(())
}

/// FP32 peak GFLOP/s of adapters we know (vendor datasheets, boost clock, non-tensor FP32).
fn known_peak(name: &str) -> Option<(f64, &'static str)> {
    [
        (
            "H200",
            67_000.0,
            "NVIDIA H200 SXM datasheet: 67 TFLOPS FP32",
        ),
        (
            "H100",
            67_000.0,
            "NVIDIA H100 SXM datasheet: 67 TFLOPS FP32",
        ),
        ("A100", 19_500.0, "NVIDIA A100 datasheet: 19.5 TFLOPS FP32"),
        ("L4", 30_300.0, "NVIDIA L4 datasheet: 30.3 TFLOPS FP32"),
    ]
    .into_iter()
    .find(|(k, _, _)| name.contains(k))
    .map(|(_, g, src)| (g, src))
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if s.is_empty() {
        "unknown-adapter".into()
    } else {
        s
    }
}

/// docs/device/<adapter>.{json,md} from a folder with device-bench.json and machine.txt, then
/// docs/BENCHMARKS.md again (it links the GPU runs).
pub(crate) fn bench_device_report(dir: &Path, peak_override: Option<f64>) -> Result<()> {
    report_into(dir, peak_override, &root().join("docs/device"))?;
    crate::write_markdown()
}

fn report_into(dir: &Path, peak_override: Option<f64>, docs: &Path) -> Result<()> {
    let text = std::fs::read_to_string(dir.join("device-bench.json"))
        .map_err(|e| format!("cannot read {}/device-bench.json: {e}", dir.display()))?;
    let r: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("device-bench.json is not the benchmark's JSON: {e}"))?;
    let machine = std::fs::read_to_string(dir.join("machine.txt")).unwrap_or_default();
    let name = r["adapter"]["name"]
        .as_str()
        .unwrap_or("unknown adapter")
        .to_string();
    let peak = match peak_override {
        Some(p) => Some((p, "given with --peak-gflops")),
        None => known_peak(&name),
    };
    let md = device_markdown(&r, &machine, peak);
    std::fs::create_dir_all(docs).map_err(|e| e.to_string())?;
    let base = slug(&name);
    std::fs::write(docs.join(format!("{base}.json")), &text).map_err(|e| e.to_string())?;
    std::fs::write(docs.join(format!("{base}.md")), md).map_err(|e| e.to_string())?;
    eprintln!("xtask: wrote {}/{base}.md and .json", docs.display());
    Ok(())
}

fn device_markdown(r: &serde_json::Value, machine: &str, peak: Option<(f64, &str)>) -> String {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let a = &r["adapter"];
    let matmul = |w: &serde_json::Value| {
        r["matmul"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| &m["n"] == w)
            .map_or(f64::NAN, |m| f(&m["gpu_gflops"]))
    };
    let pct = |x: f64, of: f64| {
        if of.is_finite() && of > 0.0 {
            format!("{:.1}%", 100.0 * x / of)
        } else {
            "–".into()
        }
    };
    let peak_g = peak.map_or(f64::NAN, |p| p.0);
    let mut s = format!(
        "# GPU run: {}\n\nGenerated by `cargo xtask bench --device-report` from `bench/device/run.sh` (the native benchmark, `scorelab bench{}`) on a machine with this adapter. Fractions are of the tiled WGSL matmul on the same adapter (the MLP's hidden layer as one dense product) and of the adapter's FP32 peak.\n\n- Adapter: {} ({}, {}; {} {})\n- FP32 peak: {}\n\n```\n{}\n```\n",
        a["name"].as_str().unwrap_or("?"),
        if r["quick"] == true { " --quick" } else { "" },
        a["name"].as_str().unwrap_or("?"),
        a["backend"].as_str().unwrap_or("?"),
        a["device_type"].as_str().unwrap_or("?"),
        a["driver"].as_str().unwrap_or(""),
        a["driver_info"].as_str().unwrap_or(""),
        peak.map_or("unknown (pass --peak-gflops)".to_string(), |(g, src)| format!("{g:.0} GFLOP/s ({src})")),
        machine.trim()
    );
    s.push_str("\n## Training (DSM, Adam + EMA; depth 3)\n\n| width | batch | WGSL steps/s | WGSL GFLOP/s | of matmul | of peak | CPU `sim` steps/s |\n|---|---|---|---|---|---|---|\n");
    for t in r["train"].as_array().into_iter().flatten() {
        let g = f(&t["gpu_gflops"]);
        s.push_str(&format!(
            "| {} | {} | {:.1} | {g:.1} | {} | {} | {:.1} |\n",
            t["width"],
            t["batch"],
            f(&t["gpu_steps_per_s"]),
            pct(g, matmul(&t["width"])),
            pct(g, peak_g),
            f(&t["cpu_steps_per_s"])
        ));
    }
    s.push_str("\n## Sampler step (annealed Langevin with the network)\n\n| width | particles | WGSL ms/step | NFE/s | WGSL GFLOP/s | of matmul | of peak | CPU ms/step |\n|---|---|---|---|---|---|---|---|\n");
    for x in r["sample"].as_array().into_iter().flatten() {
        let g = f(&x["gpu_gflops"]);
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3e} | {g:.1} | {} | {} | {:.2} |\n",
            x["width"],
            x["particles"],
            f(&x["gpu_step_ms"]),
            f(&x["gpu_nfe_per_s"]),
            pct(g, matmul(&x["width"])),
            pct(g, peak_g),
            f(&x["cpu_step_ms"])
        ));
    }
    s.push_str(
        "\n## Tiled matmul (the reference)\n\n| shape | GFLOP/s | of peak |\n|---|---|---|\n",
    );
    for m in r["matmul"].as_array().into_iter().flatten() {
        let g = f(&m["gpu_gflops"]);
        s.push_str(&format!(
            "| {}×{}·{}×{} | {g:.1} | {} |\n",
            m["m"],
            m["k"],
            m["k"],
            m["n"],
            pct(g, peak_g)
        ));
    }
    if let Some(c) = r["convergence"].as_array().filter(|c| !c.is_empty()) {
        s.push_str("\n## Convergence (VE, width 64, batch 256, 6000 steps)\n\n| preset | mean relative Fisher | seconds |\n|---|---|---|\n");
        for x in c {
            s.push_str(&format!(
                "| {} | {:.4} | {:.1} |\n",
                x["preset"].as_str().unwrap_or("?"),
                f(&x["fisher_mean"]),
                f(&x["seconds"])
            ));
        }
    }
    let million = r["sample"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["particles"] == 1_000_000 && x["width"] == 64);
    s.push_str("\n## Targets for a real GPU (issue 17)\n\n");
    match million {
        Some(x) => {
            let ms = f(&x["gpu_step_ms"]);
            s.push_str(&format!(
                "- 10⁶ particles at ≥ 30 fps at width 64: one sampler step takes {ms:.2} ms, i.e. at most {:.0} steps/s before drawing ({}).\n",
                1e3 / ms,
                if 1e3 / ms >= 30.0 { "the sampler leaves room for 30 fps" } else { "**not met**" }
            ));
        }
        None => s.push_str(
            "- 10⁶ particles at width 64: not in this run (the quick benchmark stops at 10⁴).\n",
        ),
    }
    s.push_str("- ≥ 10× TF.js webgpu training and a 16.7 ms frame at the defaults are browser measurements (`cargo xtask bench --browser` on that machine); not part of this run.\n");
    s
}

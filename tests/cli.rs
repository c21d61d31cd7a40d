//! The headless CLI: happy paths produce files that load back; every bad input is one line
//! on stderr and a non-zero exit, never a panic.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scorelab"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scorelab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run_ok(args: &[&str]) -> serde_json::Value {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e})"))
}

/// Runs a command that must fail; returns its single stderr line.
fn run_err(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} unexpectedly succeeded");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: expected one line, got:\n{err}"
    );
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{args:?}: {err}"
    );
    err
}

#[test]
fn train_sample_likelihood_eval_round_trip() {
    let model = tmp("m.json");
    let log = tmp("train.csv");
    let r = run_ok(&[
        "train",
        "--preset",
        "ncsn",
        "--steps",
        "300",
        "--batch",
        "128",
        "--width",
        "32",
        "--sde",
        "vp",
        "--out",
        model.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    assert!(r["final_loss"].as_f64().unwrap().is_finite());
    assert_eq!(r["fisher_per_level"].as_array().unwrap().len(), 10);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.starts_with("step,loss,fisher_mean\n"));
    assert_eq!(log_text.lines().count(), 301);
    // The model file loads back through the library with the same weights it was written with.
    let net = scorelab::sim::model::ScoreNet::from_json(&std::fs::read_to_string(&model).unwrap())
        .unwrap();
    assert_eq!(net.config.width, 32);
    assert_eq!(net.sde.kind, scorelab::sim::sde::SdeKind::Vp);

    let samples = tmp("s.csv");
    let r = run_ok(&[
        "sample",
        "--preset",
        "ncsn",
        "--score",
        model.to_str().unwrap(),
        "--sampler",
        "ode-rk4",
        "--steps",
        "50",
        "--n",
        "300",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert_eq!(r["n"], 300);
    assert_eq!(r["nfe"], 200);
    let text = std::fs::read_to_string(&samples).unwrap();
    assert!(text.starts_with("x,y\n"));
    assert_eq!(text.lines().count(), 301);

    let lp = tmp("lp.csv");
    let r = run_ok(&[
        "likelihood",
        "--preset",
        "ncsn",
        "--score",
        "exact",
        "--sde",
        "vp",
        "--points",
        samples.to_str().unwrap(),
        "--out",
        lp.to_str().unwrap(),
    ]);
    assert!(r["mean_abs_error_nats"].as_f64().unwrap() < 0.05, "{r}");
    assert!(std::fs::read_to_string(&lp)
        .unwrap()
        .starts_with("x,y,logp_model,logp_true\n"));

    let r = run_ok(&[
        "eval",
        "--preset",
        "ncsn",
        "--score",
        "exact",
        "--samples",
        samples.to_str().unwrap(),
    ]);
    assert_eq!(r["fisher_mean"].as_f64(), Some(0.0));
    assert_eq!(r["samples"]["n"], 300);

    for sampler in [
        "langevin",
        "annealed-langevin",
        "reverse-sde",
        "ancestral",
        "pc",
        "ode-euler",
        "ode-heun",
        "ode-rk4",
        "ode-rk45",
    ] {
        let r = run_ok(&[
            "sample",
            "--preset",
            "ring8",
            "--sampler",
            sampler,
            "--n",
            "50",
            "--steps",
            "20",
            "--levels",
            "4",
            "--out",
            samples.to_str().unwrap(),
        ]);
        assert_eq!(r["non_finite"], 0, "{sampler}");
    }
}

#[test]
fn bad_input_is_one_clear_line() {
    let bad_cov = tmp("bad_cov.json");
    std::fs::write(
        &bad_cov,
        r#"{"components":[{"weight":1,"mean":[0,0],"cov":[[1,2],[2,1]]}]}"#,
    )
    .unwrap();
    let bad_json = tmp("bad.json");
    std::fs::write(&bad_json, "{\"components\": [").unwrap();
    let nan_weight = tmp("nan.json");
    std::fs::write(
        &nan_weight,
        r#"{"components":[{"weight":-1,"mean":[0,0],"cov":[[1,0],[0,1]]}]}"#,
    )
    .unwrap();
    let bad_csv = tmp("bad.csv");
    std::fs::write(&bad_csv, "x,y\n1,2\n3,oops\n").unwrap();
    let no_header = tmp("nohdr.csv");
    std::fs::write(&no_header, "1,2\n").unwrap();
    let model = tmp("not_a_model.json");
    std::fs::write(&model, r#"{"format":"scorelab-model","version":1,"config":{"width":4,"depth":1,"n_time_freqs":0,"time_scale":1,"n_x_freqs":0,"x_scale":1,"data_std":1,"seed":0},"sde":{"kind":"ve","sigma_min":0.01,"sigma_max":10,"beta_min":0.1,"beta_max":20},"params":[1,2,3]}"#).unwrap();
    let p = |p: &PathBuf| p.to_str().unwrap().to_string();

    assert!(run_err(&["sample", "--mixture", "/definitely/missing.json"]).contains("cannot read"));
    assert!(run_err(&["sample", "--mixture", &p(&bad_json)]).contains("not a valid mixture JSON"));
    assert!(run_err(&["sample", "--mixture", &p(&bad_cov)]).contains("positive definite"));
    assert!(run_err(&["train", "--mixture", &p(&nan_weight)]).contains("weight"));
    assert!(run_err(&["sample", "--sampler", "warp-drive"]).contains("warp-drive"));
    assert!(run_err(&["train", "--steps", "0"]).contains("steps"));
    assert!(run_err(&["sample", "--steps", "0"]).contains("steps"));
    assert!(run_err(&["train", "--lr", "NaN"]).contains("lr"));
    assert!(run_err(&["sample", "--preset", "nope"]).contains("unknown preset"));
    assert!(run_err(&["sample", "--score", &p(&model)]).contains("weights"));
    assert!(run_err(&["sample", "--score", &p(&bad_json)]).contains("cannot load model"));
    assert!(run_err(&["eval", "--samples", &p(&bad_csv)]).contains("line 3"));
    assert!(run_err(&["eval", "--samples", &p(&no_header)]).contains("header"));
    assert!(run_err(&["likelihood"]).contains("--points"));
    assert!(
        run_err(&["sample", "--sampler", "langevin", "--step-size", "-1"]).contains("step size")
    );
    assert!(run_err(&["frobnicate"]).contains("frobnicate"));
}

#[test]
fn gpu_backend_round_trip() {
    // Same rule as tests/gpu_parity: no adapter fails unless explicitly skipped.
    if std::env::var("SCORELAB_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("SCORELAB_SKIP_GPU_TESTS=1: skipping");
        return;
    }
    let model = tmp("gpu_m.json");
    let r = run_ok(&[
        "train",
        "--backend",
        "gpu",
        "--preset",
        "ring8",
        "--steps",
        "200",
        "--width",
        "32",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_eq!(r["backend"], "gpu");
    assert!(r["final_loss"].as_f64().unwrap().is_finite());
    let samples = tmp("gpu_s.csv");
    let r = run_ok(&[
        "sample",
        "--backend",
        "gpu",
        "--preset",
        "ring8",
        "--score",
        model.to_str().unwrap(),
        "--sampler",
        "ode-rk4",
        "--steps",
        "20",
        "--n",
        "500",
        "--out",
        samples.to_str().unwrap(),
    ]);
    assert_eq!(
        (
            r["backend"].as_str(),
            r["nfe"].as_u64(),
            r["non_finite"].as_u64()
        ),
        (Some("gpu"), Some(80), Some(0))
    );
    let r = run_ok(&[
        "eval",
        "--backend",
        "gpu",
        "--preset",
        "ring8",
        "--score",
        model.to_str().unwrap(),
    ]);
    assert!(r["fisher_mean"].as_f64().unwrap().is_finite());
    // The GPU likelihood (fixed-step RK4, exact score) against the truth.
    let lp = tmp("gpu_lp.csv");
    let r = run_ok(&[
        "likelihood",
        "--backend",
        "gpu",
        "--preset",
        "ring8",
        "--sde",
        "vp",
        "--points",
        samples.to_str().unwrap(),
        "--out",
        lp.to_str().unwrap(),
    ]);
    assert!(r["mean_abs_error_nats"].as_f64().unwrap() < 0.05, "{r}");
    assert_eq!(r["failed"], 0);
    assert!(run_err(&["sample", "--backend", "gpu", "--sampler", "ode-rk45"]).contains("ode-rk4"));
}

/// `scorelab sweep`: every sampler at every budget, a CSV row each; the deterministic few-step
/// samplers approach the exact PF-ODE solution as their budget grows, and a refused sampler
/// name is one line.
#[test]
fn sweep_writes_a_row_per_sampler_and_budget() {
    let out = tmp("sweep.csv");
    let r = run_ok(&[
        "sweep",
        "--preset",
        "ncsn",
        "--sde",
        "vp",
        "--samplers",
        "ddim,edm-heun,dpm-solver++2m,ode-euler,ddim-eta1",
        "--nfe",
        "8,128",
        "--n",
        "300",
        "--out",
        out.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "sampler,nfe,weight_error,spread_error,energy,nll,ode_error,diverged"
    );
    assert_eq!(lines.len(), 1 + 5 * 2, "{csv}");
    let rows = r["rows"].as_array().expect("rows");
    for pair in rows.chunks(2) {
        let name = pair[0]["sampler"].as_str().unwrap_or("");
        let (lo, hi) = (&pair[0], &pair[1]);
        assert_eq!(hi["diverged"], 0, "{name}");
        if ["ddim", "edm-heun", "dpm-solver++2m"].contains(&name) {
            let (a, b) = (
                lo["ode_error"].as_f64().unwrap(),
                hi["ode_error"].as_f64().unwrap(),
            );
            assert!(
                b < a / 4.0,
                "{name}: ODE error {a} at 8 evaluations, {b} at 128"
            );
            assert!(hi["weight_error"].as_f64().unwrap() < 0.1, "{name}: {hi}");
        } else {
            assert!(hi["ode_error"].is_null(), "{name}: {hi}");
        }
    }
    assert!(run_err(&["sweep", "--samplers", "ddim,warp-drive"]).contains("warp-drive"));
    assert!(
        run_err(&["sweep", "--samplers", "annealed-langevin"]).contains("unknown sweep sampler")
    );
}

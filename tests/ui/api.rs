//! The science behind the JS embed API's calls, through the app as the page runs it (moved from
//! tests/browser/lessons.mjs, issue 28; the browser tier keeps one call of each to check the
//! API's surface). Each request is the command the page's `window.scorelab` queues
//! (`setConfig`, `setScene`, `exportModel`, `importModel`, `field`, `denoiser`,
//! `inpaintSamples`), given to this app alone ([`ScoreLabApp::command`]) and answered in its
//! frames; the truths are computed here from the scene the snapshot shows (closed forms), or
//! by `sim`'s closed-form conditional.

use super::*;
use scorelab::sim::metrics::ks_statistic;
use scorelab::sim::mixture::{GaussianMixture, MixtureSpec};
use scorelab::state::command::{next_id, parse_import, take_answer, Command};
use scorelab::state::patch::{parse_config, parse_scene};

/// `setConfig(json)`: validated as the page validates it, applied at the next frame.
fn config(h: &mut App, json: &str) {
    let patch = parse_config(json).unwrap_or_else(|e| panic!("setConfig({json}): {e}"));
    h.state_mut().command(Command::SetConfig(Box::new(patch)));
    frames(h, 3);
}

/// `setScene(json)`.
fn scene(h: &mut App, json: &str) {
    let scene = parse_scene(json).unwrap_or_else(|e| panic!("setScene({json}): {e}"));
    h.state_mut().command(Command::SetScene(Box::new(scene)));
    frames(h, 3);
}

/// A request that needs frames (`make(id)`), answered within `secs`: the text JS receives.
fn ask(h: &mut App, what: &str, secs: f64, make: impl FnOnce(u32) -> Command) -> String {
    let id = next_id();
    h.state_mut().command(make(id));
    let t0 = Instant::now();
    loop {
        h.step();
        if let Some(a) = take_answer(id) {
            return a.unwrap_or_else(|e| panic!("{what} refused: {e}"));
        }
        assert!(
            t0.elapsed().as_secs_f64() < secs,
            "{what}: no answer in {secs} s"
        );
    }
}

/// Rows of numbers (`field()`, `denoiser()`).
fn rows(text: &str) -> Vec<Vec<f64>> {
    serde_json::from_str(text).expect("rows of numbers")
}

/// The mixture the snapshot shows (its `scene.mixture`), built by `sim`.
fn shown_mixture(s: &Value) -> GaussianMixture {
    let spec: MixtureSpec =
        serde_json::from_value(s["scene"]["mixture"].clone()).expect("the scene's mixture");
    GaussianMixture::from_spec(&spec).expect("a valid mixture")
}

/// Largest relative difference of two fields' score arrows.
fn field_gap(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(r, q)| (r[2] - q[2]).hypot(r[3] - q[3]) / (1e-3 + r[2].hypot(r[3])))
        .fold(0.0, f64::max)
}

/// The inpainting samples x₂ for this `inpaint` setting (the run must complete).
fn inpaint(h: &mut App, spec: &str) -> Vec<f64> {
    config(h, &format!(r#"{{"inpaint": {spec}}}"#));
    let text = ask(h, "inpaintSamples", 120.0, Command::Inpaint);
    serde_json::from_str(&text).expect("the x₂ samples")
}

/// Export a trained model, reset, import it: the field comes back; a corrupted file and one
/// with a parameter missing are refused with a message and the model is kept.
#[test]
fn model_export_reset_import_round_trips_and_bad_files_are_refused() {
    let mut h = app();
    config(&mut h, r#"{"training": true}"#);
    wait(&mut h, "200 training steps", 60.0, |s| {
        s["step"].as_u64().unwrap_or(0) >= 200
    });
    config(&mut h, r#"{"training": false, "t": 0.1}"#);
    let model = ask(&mut h, "exportModel", 30.0, Command::ExportModel);
    let f1 = rows(&ask(&mut h, "field", 30.0, Command::Field));
    let file: Value = serde_json::from_str(&model).expect("a model file is JSON");
    assert!(
        file["format"] == "scorelab-model" && f1.len() > 100,
        "exportModel: format {}, field {} cells",
        file["format"],
        f1.len()
    );
    config(&mut h, r#"{"reset": true, "training": false}"#);
    frames(&mut h, 10);
    let f0 = rows(&ask(&mut h, "field", 30.0, Command::Field));
    let imported = parse_import("model.json", &model).expect("the exported file imports");
    h.state_mut().command(Command::Import(Box::new(imported)));
    frames(&mut h, 5);
    let f2 = rows(&ask(&mut h, "field", 30.0, Command::Field));
    let (d_reset, d_import) = (field_gap(&f1, &f0), field_gap(&f1, &f2));
    eprintln!("field after reset differs by {d_reset:.2e}, after import by {d_import:.2e}");
    assert!(
        d_reset > 1e-2 && d_import < 1e-4,
        "import reproduces the field ({d_import:.2e}); a fresh network differed by {d_reset:.2e}"
    );
    let corrupt = format!("{}garbage{}", &model[..200], &model[260..]);
    let mut missing = file.clone();
    if let Some(p) = missing["params"].as_array_mut() {
        p.remove(0);
    }
    let e1 = parse_import("model.json", &corrupt)
        .err()
        .map(|e| e.to_string());
    let e2 = parse_import("model.json", &missing.to_string())
        .err()
        .map(|e| e.to_string());
    frames(&mut h, 5);
    let f3 = rows(&ask(&mut h, "field", 30.0, Command::Field));
    assert!(
        e1.as_ref().is_some_and(|m| !m.is_empty())
            && e2.as_ref().is_some_and(|m| m.contains("model refused"))
            && field_gap(&f2, &f3) < 1e-6,
        "bad model files are refused with a message, the model kept: {e1:?} / {e2:?}"
    );
}

/// Inpainting x₂ | x₁ = c with the exact conditional score matches the analytic conditional
/// (KS at the 1% level), at two c; the replacement method is measurably biased at c = 0.
#[test]
fn inpainting_matches_the_analytic_conditional_and_replacement_is_biased() {
    let mut h = app();
    config(&mut h, r#"{"training": false}"#);
    let m = shown_mixture(&snap(&h));
    for c in [-1.0, 2.5] {
        let x2 = inpaint(
            &mut h,
            &format!(r#"{{"c": {c}, "method": "exact", "n": 2000, "steps": 500}}"#),
        );
        let cond = m.conditional_x2_given_x1(c);
        let d = ks_statistic(&x2, |x| cond.cdf(x));
        let crit = 1.949 / (x2.len() as f64).sqrt();
        eprintln!("inpainting x₂ | x₁ = {c}: KS {d:.4} (critical {crit:.4})");
        assert!(
            x2.len() == 2000 && d < crit,
            "x₁ = {c}: {} samples, KS {d:.4} ≥ {crit:.4}",
            x2.len()
        );
    }
    let rep = inpaint(
        &mut h,
        r#"{"c": 0.0, "method": "replacement", "n": 2000, "steps": 500, "exact": true}"#,
    );
    let cond = m.conditional_x2_given_x1(0.0);
    let d = ks_statistic(&rep, |x| cond.cdf(x));
    eprintln!("replacement at c = 0: KS {d:.3}");
    assert!(
        d > 1.949 / (rep.len() as f64).sqrt(),
        "the replacement method is visibly biased at c = 0 (KS {d:.3})"
    );
}

/// E[x₀ | x_t] and the responsibilities of a 2D Gaussian mixture under x_t = m + α(x₀ − m) +
/// s z, in closed form (independent of `sim`).
fn posterior(s: &Value, x: [f64; 2]) -> ([f64; 2], Vec<f64>) {
    let mg = &s["shown_marginal"];
    let c = floats(&mg["center"]);
    let (a, sd) = (
        mg["alpha"].as_f64().unwrap_or(f64::NAN),
        mg["s"].as_f64().unwrap_or(f64::NAN),
    );
    let comps = s["scene"]["mixture"]["components"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total: f64 = comps.iter().filter_map(|k| k["weight"].as_f64()).sum();
    let parts: Vec<(f64, [f64; 2])> = comps
        .iter()
        .map(|k| {
            let mu = floats(&k["mean"]);
            let cov: Vec<f64> = k["cov"]
                .as_array()
                .map(|r| r.iter().flat_map(floats).collect())
                .unwrap_or_default();
            let (cxx, cxy, cyy) = (cov[0], cov[1], cov[3]);
            let mt = [c[0] + a * (mu[0] - c[0]), c[1] + a * (mu[1] - c[1])];
            let (p, q, r) = (a * a * cxx + sd * sd, a * a * cxy, a * a * cyy + sd * sd);
            let det = p * r - q * q;
            let inv = [r / det, -q / det, p / det];
            let d = [x[0] - mt[0], x[1] - mt[1]];
            let id = [inv[0] * d[0] + inv[1] * d[1], inv[1] * d[0] + inv[2] * d[1]];
            let w = k["weight"].as_f64().unwrap_or(0.0) / total;
            let logw = w.ln() - 0.5 * det.ln() - 0.5 * (d[0] * id[0] + d[1] * id[1]);
            let mean = [
                mu[0] + a * (cxx * id[0] + cxy * id[1]),
                mu[1] + a * (cxy * id[0] + cyy * id[1]),
            ];
            (logw, mean)
        })
        .collect();
    let top = parts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let ws: Vec<f64> = parts.iter().map(|p| (p.0 - top).exp()).collect();
    let z: f64 = ws.iter().sum();
    let r: Vec<f64> = ws.iter().map(|w| w / z).collect();
    let mean = [0, 1].map(|i| parts.iter().zip(&r).map(|(p, rk)| rk * p.1[i]).sum());
    (mean, r)
}

/// The denoiser view after a pointer drag moved a component off-centre: Tweedie's D(x_t) with
/// the exact score is the closed-form posterior mean, the responsibilities match and sum to
/// 1, the learned column is Tweedie on `field()`'s learned score, and at t = 0 the exact
/// denoiser leaves every point where it is.
#[test]
fn the_denoiser_is_the_posterior_mean_after_a_drag() {
    let mut h = app();
    config(
        &mut h,
        r#"{"training": false, "arrows": "denoiser", "layers": {"responsibilities": true, "true_density": false}, "t": 0.35, "legends": false}"#,
    );
    let s0 = snap(&h);
    let m0 = crate::canvas::means(&s0);
    // The component nearest the bottom-right corner goes most of the way there.
    let k = (0..m0.len())
        .max_by(|&a, &b| (m0[a][0] - m0[a][1]).total_cmp(&(m0[b][0] - m0[b][1])))
        .expect("components");
    let r = floats(&s0["plot_rect"]);
    let target = egui::Pos2::new((r[0] + 0.85 * r[2]) as f32, (r[1] + 0.85 * r[3]) as f32);
    crate::canvas::drag(&mut h, crate::canvas::to_screen(&s0, m0[k]), target, 8);
    let s = snap(&h);
    let m1 = crate::canvas::means(&s);
    let moved = (m1[k][0] - m0[k][0]).hypot(m1[k][1] - m0[k][1]);
    let den = rows(&ask(&mut h, "denoiser", 30.0, Command::Denoiser));
    let fld = rows(&ask(&mut h, "field", 30.0, Command::Field));
    let s = snap(&h);
    let kk = m1.len();
    assert!(
        moved > 2.0 && den.len() == fld.len() && den.len() > 100 && den[0].len() == 6 + kk,
        "denoiser(): {} cells × {} columns after a drag of {moved:.1}",
        den.len(),
        den[0].len()
    );
    let mg = &s["shown_marginal"];
    let c = floats(&mg["center"]);
    let (a, sd) = (
        mg["alpha"].as_f64().unwrap_or(f64::NAN),
        mg["s"].as_f64().unwrap_or(f64::NAN),
    );
    let (mut exact, mut resp, mut sum, mut learned, mut reach) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (row, f) in den.iter().zip(&fld) {
        let (x, y) = (row[0], row[1]);
        let (pm, pr) = posterior(&s, [x, y]);
        let scale = 1.0 + pm[0].hypot(pm[1]);
        exact = exact.max((row[4] - pm[0]).hypot(row[5] - pm[1]) / scale);
        resp = row[6..]
            .iter()
            .zip(&pr)
            .fold(resp, |w, (v, p)| w.max((v - p).abs()));
        sum = sum.max((row[6..].iter().sum::<f64>() - 1.0).abs());
        let tw = [0, 1].map(|j| c[j] + (f[j] - c[j] + sd * sd * f[2 + j]) / a);
        learned = learned.max((row[2] - tw[0]).hypot(row[3] - tw[1]) / (1.0 + tw[0].hypot(tw[1])));
        reach = reach.max((row[4] - x).hypot(row[5] - y));
    }
    eprintln!(
        "denoiser: exact vs closed form {exact:.1e}, responsibilities {resp:.1e}, learned vs Tweedie {learned:.1e}, reach {reach:.2}"
    );
    assert!(
        exact < 1e-5 && resp < 1e-6 && sum < 1e-9,
        "Tweedie with the exact score is the posterior mean ({exact:.1e}), responsibilities ({resp:.1e}, sum {sum:.1e})"
    );
    assert!(
        learned < 1e-4 && reach > 0.1,
        "the learned arrows are Tweedie on the learned score ({learned:.1e}); exact arrows reach {reach:.2}"
    );
    config(&mut h, r#"{"t": 0.0}"#);
    let d0 = rows(&ask(&mut h, "denoiser", 30.0, Command::Denoiser));
    let still = d0
        .iter()
        .map(|r| (r[4] - r[0]).hypot(r[5] - r[1]))
        .fold(0.0, f64::max);
    assert!(
        still < 0.05,
        "at t = 0 the exact denoiser leaves every point where it is (largest move {still:.4})"
    );
}

/// Conditional vs marginal path through the probe: x_t = m + α(x₀ − m) + s z with z = (0.8,
/// 0.6), the conditional path starts at x₀ and the PF-ODE path through the same x_t lands
/// elsewhere.
#[test]
fn the_conditional_path_starts_at_the_probe_and_the_marginal_one_elsewhere() {
    let mut h = app();
    let m = snap(&h)["scene"]["mixture"].clone();
    scene(&mut h, &format!(r#"{{"mixture": {m}, "t": 0.55}}"#));
    config(
        &mut h,
        r#"{"split": "off", "slot": 0, "sampler": "annealed-langevin", "mala": false, "training": false, "exact_particles": true, "probe": [1.0, 3.5], "cond_paths": true, "t": 0.55}"#,
    );
    let s = wait(&mut h, "the conditional paths", 30.0, |s| {
        s["lessons"]["cond_paths"].is_object()
    });
    let cp = &s["lessons"]["cond_paths"];
    let (xt, start, marg) = (
        floats(&cp["x_t"]),
        floats(&cp["conditional_start"]),
        floats(&cp["marginal_start"]),
    );
    let mg = &s["shown_marginal"];
    let c = floats(&mg["center"]);
    let (a, sd) = (
        mg["alpha"].as_f64().unwrap_or(f64::NAN),
        mg["s"].as_f64().unwrap_or(f64::NAN),
    );
    let want = [0, 1].map(|j| c[j] + a * ([1.0, 3.5][j] - c[j]) + sd * [0.8, 0.6][j]);
    assert!(
        (xt[0] - want[0]).hypot(xt[1] - want[1]) < 1e-9
            && (start[0] - 1.0).hypot(start[1] - 3.5) < 0.05,
        "x_t {xt:?} vs {want:?}; the conditional path starts at {start:?}"
    );
    let gap = (marg[0] - 1.0).hypot(marg[1] - 3.5);
    eprintln!("marginal PF-ODE path lands at {marg:?}, {gap:.2} from x₀");
    assert!(gap > 0.2, "the marginal path lands elsewhere: {marg:?}");
}

/// DPS beside the exact conditional at x₁ = 2: exact within the KS bound, DPS pulled toward
/// the conditional (closer than unguided) but biased; the link holds DPS and its ζ.
#[test]
fn dps_is_pulled_toward_the_conditional_but_biased() {
    let mut h = app();
    config(&mut h, r#"{"training": false}"#);
    let s = snap(&h);
    let cond = shown_mixture(&s).conditional_x2_given_x1(2.0);
    let mut ks = |spec: &str| {
        let x = inpaint(
            &mut h,
            &format!(r#"{{"c": 2.0, "n": 1000, "steps": 500, "exact": true, {spec}}}"#),
        );
        ks_statistic(&x, |v| cond.cdf(v))
    };
    let k_exact = ks(r#""method": "exact""#);
    let k_none = ks(r#""method": "dps", "zeta": 0"#);
    let k_dps = ks(r#""method": "dps", "zeta": 0.05"#);
    let crit = 1.949 / 1000f64.sqrt();
    eprintln!(
        "x₁ = 2: KS exact {k_exact:.3}, DPS {k_dps:.3}, unguided {k_none:.3} (critical {crit:.3})"
    );
    assert!(
        k_exact < crit && k_dps < k_none && k_dps > crit,
        "DPS pulled but biased: KS exact {k_exact:.3}, DPS {k_dps:.3}, unguided {k_none:.3}"
    );
    let st = snap(&h);
    assert!(
        st["link"].as_str().is_some_and(|l| l.contains("#s="))
            && st["state"]["inpaint"]["method"] == "dps"
            && st["state"]["inpaint"]["zeta"] == 0.05,
        "the link holds DPS and its ζ: {}",
        st["state"]["inpaint"]
    );
}

/// The probe's PF-ODE log-likelihood with the exact score is the true log density, the ODE
/// takes it back to where it started, and the ODE paths are drawn.
#[test]
fn the_probe_likelihood_is_the_true_density() {
    let mut h = app();
    config(
        &mut h,
        r#"{"sampler": "ode-rk4", "exact_particles": true, "ode_paths": true, "probe": [4.5, 5.5]}"#,
    );
    let s = wait(&mut h, "the probe", 30.0, |s| {
        s["lessons"]["probe"].is_object()
    });
    let p = &s["lessons"]["probe"];
    let (model, truth) = (
        p["log_p_model"].as_f64().unwrap_or(f64::NAN),
        p["log_p_true"].as_f64().unwrap_or(f64::NAN),
    );
    let back = floats(&p["back_to"]);
    eprintln!("probe: log p {model:.3} vs true {truth:.3}, back to {back:?}");
    assert!(
        (model - truth).abs() < 0.1
            && (back[0] - 4.5).hypot(back[1] - 5.5) < 0.05
            && s["lessons"]["ode_paths"] == 49,
        "probe: {p}, {} ODE paths",
        s["lessons"]["ode_paths"]
    );
}

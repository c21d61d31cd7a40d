//! The subcommands: each opens the engine it was asked for once ([`Batch`]) and makes the
//! same calls on either.

use serde_json::json;

use super::args::{Backend, EvalArgs, FlowArgs, LikelihoodArgs, SampleArgs, SweepArgs, TrainArgs};
use super::io::{load_mixture, load_score, parse_points_csv, points_to_csv, read, write};
use super::{msg, open, CliError};
use crate::engine::batch::{Batch, Score};
use crate::sim::adam::AdamConfig;
use crate::sim::metrics;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::samplers::SamplerConfig;
use crate::sim::sde::Sde;
use crate::sim::train::TrainConfig;

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Cpu => "cpu",
        Backend::Gpu => "gpu",
    }
}

/// The Fisher divergence of `score` per noise level, as the JSON every command reports.
fn fisher_report(
    batch: &Batch,
    score: &Score,
    mixture: &GaussianMixture,
    n: usize,
) -> Result<serde_json::Value, CliError> {
    let levels = metrics::fisher_levels();
    let sde = score.sde();
    let f = batch.relative_fisher(score, mixture, &levels, n)?;
    Ok(json!({
        "fisher_mean": metrics::mean(&f),
        "fisher_per_level": f,
        "fisher_t": levels,
        "fisher_sigma": levels.iter().map(|&t| sde.effective_sigma(t)).collect::<Vec<_>>(),
    }))
}

/// `scorelab train`.
pub fn train(a: &TrainArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.data)?;
    let sde = Sde::for_mixture(a.sde, &mixture);
    let cfg = NetConfig {
        width: a.width as usize,
        depth: a.depth as usize,
        data_std: mixture.data_std(),
        seed: a.seed,
        ..NetConfig::default()
    };
    let net = ScoreNet::new(cfg, sde).map_err(|e| msg(e.to_string()))?;
    let tc = TrainConfig {
        batch: a.batch as usize,
        adam: AdamConfig {
            lr: a.lr,
            ..AdamConfig::default()
        },
        seed: a.seed,
        ..TrainConfig::default()
    };
    let batch = open(a.backend)?;
    let start = web_time::Instant::now();
    let mut rows = String::new();
    let log = |first: u32, losses: &[f64], ema: Option<&ScoreNet>| {
        for (j, l) in losses.iter().enumerate() {
            let step = first + j as u32;
            // The training log's Fisher value: the CPU estimate with 500 points per level,
            // at the end of each chunk.
            let fisher = match ema.filter(|_| j + 1 == losses.len()) {
                Some(net) => {
                    let f = metrics::relative_fisher(
                        net,
                        &mixture,
                        &sde,
                        &metrics::fisher_levels(),
                        500,
                        1,
                    );
                    metrics::mean(&f).to_string()
                }
                None => String::new(),
            };
            rows.push_str(&format!("{step},{l},{fisher}\n"));
        }
    };
    let (net, last) = batch.train(net, &mixture, tc, a.steps, a.log.is_some(), log)?;
    let secs = start.elapsed().as_secs_f64();
    let text =
        serde_json::to_string(&net.to_file(u64::from(a.steps))).map_err(|e| msg(e.to_string()))?;
    write(&a.out, &text)?;
    if let Some(path) = &a.log {
        write(path, &format!("step,loss,fisher_mean\n{rows}"))?;
    }
    let mut report = json!({
        "out": a.out.display().to_string(),
        "steps": a.steps,
        "final_loss": last,
        "seconds": secs,
        "steps_per_second": f64::from(a.steps) / secs,
        "backend": backend_name(a.backend),
    });
    let net = Score::Net(Box::new(net));
    if let (Some(o), serde_json::Value::Object(f)) = (
        report.as_object_mut(),
        fisher_report(&Batch::Cpu, &net, &mixture, 2000)?,
    ) {
        o.extend(f);
    }
    Ok(report)
}

/// `scorelab sample`.
pub fn sample(a: &SampleArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let kind = a.sampler;
    let mut cfg = SamplerConfig {
        seed: a.seed,
        snr: a.snr,
        eta: a.eta,
        churn: a.churn,
        ..SamplerConfig::defaults(kind, &mixture)
    };
    if let Some(s) = a.steps {
        cfg.n_steps = s as usize;
    }
    if let Some(l) = a.levels {
        cfg.n_levels = l as usize;
    }
    if let Some(e) = a.alpha_last {
        cfg.alpha_last = e;
    }
    let batch = open(a.score.backend)?;
    let start = web_time::Instant::now();
    let (xs, nfe) = batch.sample(&score, &mixture, cfg, a.n as usize)?;
    let secs = start.elapsed().as_secs_f64();
    write(&a.out, &points_to_csv(&xs))?;
    let census = metrics::ModeCensus::of(&mixture, &xs);
    if let Some(m) = census.message() {
        eprintln!("scorelab: {m}");
    }
    Ok(json!({
        "out": a.out.display().to_string(),
        "sampler": kind.name(),
        "backend": backend_name(a.score.backend),
        "sde": score.sde().kind.name(),
        "n": xs.len(),
        "non_finite": census.diverged,
        "diverged": census.diverged,
        "diverged_message": census.message(),
        "nfe": nfe,
        "seconds": secs,
        "mode_weights": census.fractions(),
        "true_weights": mixture.weights(),
    }))
}

/// `scorelab likelihood`.
pub fn likelihood(a: &LikelihoodArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let what = format!("points file '{}'", a.points.display());
    let points = parse_points_csv(&read(&a.points)?, &what)?;
    let model = open(a.score.backend)?.log_likelihood(&score, &mixture, &points, a.steps)?;
    let mut out = String::from("x,y,logp_model,logp_true\n");
    let mut failed = 0;
    let mut abs_err = 0.0;
    for (p, lp) in points.iter().zip(&model) {
        let truth = mixture.log_prob(*p);
        match lp {
            Some(l) => {
                abs_err += (l - truth).abs();
                out.push_str(&format!("{},{},{},{}\n", p.x, p.y, l, truth));
            }
            None => {
                failed += 1;
                out.push_str(&format!("{},{},NaN,{}\n", p.x, p.y, truth));
            }
        }
    }
    write(&a.out, &out)?;
    let ok = points.len() - failed;
    Ok(json!({
        "out": a.out.display().to_string(),
        "n": points.len(),
        "failed": failed,
        "mean_abs_error_nats": if ok > 0 { abs_err / ok as f64 } else { f64::NAN },
    }))
}

/// `scorelab eval`.
pub fn eval(a: &EvalArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let sde = score.sde();
    let batch = open(a.score.backend)?;
    let mut report = fisher_report(&batch, &score, &mixture, a.fisher_points as usize)?;
    report["sde"] = json!(sde.kind.name());
    report["score"] = json!(a.score.score);
    if let Some(path) = &a.samples {
        let what = format!("samples file '{}'", path.display());
        let all = parse_points_csv(&read(path)?, &what)?;
        let census = metrics::ModeCensus::of(&mixture, &all);
        // Diverged samples are counted, never a mode; the distances are of the finite ones.
        let xs: Vec<_> = all
            .iter()
            .copied()
            .filter(|x| x.iter().all(|v| v.is_finite()))
            .collect();
        let truth = mixture.sample(
            xs.len().clamp(1, 2000),
            &mut crate::sim::rng::StreamRng::new(12_345, 0),
        );
        report["samples"] = json!({
            "n": all.len(),
            "diverged": census.diverged,
            "diverged_message": census.message(),
            "mode_weights": census.fractions(),
            "true_weights": mixture.weights(),
            "mode_weight_tv": metrics::mode_weight_error(&mixture, &xs),
            "energy_distance": metrics::energy_distance(&xs, &truth),
            "nll": metrics::nll(&mixture, &xs),
            "nll_of_true_samples": metrics::nll(&mixture, &truth),
        });
    }
    Ok(report)
}

/// `scorelab sweep`.
pub fn sweep(a: &SweepArgs) -> Result<serde_json::Value, CliError> {
    use crate::sim::samplers::sweep;
    if a.score.backend == Backend::Gpu {
        return Err(msg(
            "sweep runs on the CPU reference (sim) only; `sample --backend gpu --sampler ddim` (or edm-heun, dpm-solver++2m) runs one sampler on the GPU",
        ));
    }
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let sde = score.sde();
    let nfes: Vec<usize> = a.nfe.iter().map(|&n| n as usize).collect();
    let start = web_time::Instant::now();
    let rows = sweep::sweep(
        score.model(),
        &sde,
        &mixture,
        &a.samplers,
        &nfes,
        a.n as usize,
        a.seed,
    );
    let secs = start.elapsed().as_secs_f64();
    write(&a.out, &sweep::csv(&rows))?;
    Ok(json!({
        "out": a.out.display().to_string(),
        "sde": sde.kind.name(),
        "n": a.n,
        "seconds": secs,
        "rows": rows,
    }))
}

/// `scorelab flow`.
pub fn flow(a: &FlowArgs) -> Result<serde_json::Value, CliError> {
    use crate::sim::flow::experiment::{run, FlowExperiment};
    let mixture = load_mixture(&a.data)?;
    let x = FlowExperiment {
        net: crate::sim::model::NetConfig {
            width: a.width as usize,
            depth: a.depth as usize,
            seed: a.seed,
            ..Default::default()
        },
        steps: a.steps,
        reflow_steps: a.reflow_steps,
        couplings: a.couplings as usize,
        batch: a.batch as usize,
        euler_steps: a.euler.iter().map(|&k| k as usize).collect(),
        n: a.n as usize,
        seed: a.seed,
    };
    let start = web_time::Instant::now();
    let report = run(&mixture, &x).map_err(msg)?;
    Ok(json!({
        "seconds": start.elapsed().as_secs_f64(),
        "velocity_error_times": crate::sim::flow::velocity_error_times(),
        "report": report,
    }))
}

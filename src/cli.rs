//! The headless CLI: `scorelab train | sample | likelihood | eval`. With no subcommand the
//! native binary opens the desktop window instead (see `main.rs`).
//!
//! Every failure is one line on stderr (`error: …`) and exit code 2; results are files
//! plus a one-line JSON summary on stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::gpu::context::{GpuContext, GpuError};
use crate::gpu::sampler::{GpuSampler, GpuScore};
use crate::gpu::trainer::GpuTrainer;
use crate::gpu::GpuNet;
use crate::sim::adam::AdamConfig;
use crate::sim::likelihood::{log_likelihood, LikelihoodConfig};
use crate::sim::metrics;
use crate::sim::mixture::{presets, GaussianMixture, MixtureSpec};
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::samplers::{self, SamplerConfig, SamplerKind};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::train::{TrainConfig, Trainer};
use crate::sim::Vec2;

/// ScoreLab: score-based generative models on 2D Gaussian mixtures.
#[derive(Parser, Debug)]
#[command(name = "scorelab", version, about, long_about = None)]
pub struct Cli {
    /// Run a headless command; without one, the desktop window opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a score network by denoising score matching; writes MODEL.json.
    Train(TrainArgs),
    /// Draw samples with a sampler; writes a CSV with header x,y.
    Sample(SampleArgs),
    /// PF-ODE log-likelihood of points; writes x,y,logp_model,logp_true.
    Likelihood(LikelihoodArgs),
    /// Print metrics (Fisher divergence per noise level; with --samples, sample metrics) as JSON.
    Eval(EvalArgs),
    /// Benchmarks as JSON (driven by `cargo xtask bench`).
    #[command(hide = true)]
    Bench {
        /// A seconds-long smoke version.
        #[arg(long)]
        quick: bool,
    },
}

/// Where the data distribution comes from.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Mixture JSON file: {"components":[{"weight":0.2,"mean":[-5,-5],"cov":[[1,0],[0,1]]}, …]}.
    #[arg(long, value_name = "FILE", conflicts_with = "preset")]
    pub mixture: Option<PathBuf>,
    /// A named preset: ncsn, ring8, grid25, spiral, two-moons-ish, anisotropic3 [default: ncsn].
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
}

fn parse_sde(s: &str) -> Result<SdeKind, String> {
    SdeKind::parse(s).ok_or_else(|| format!("unknown SDE '{s}' (known: ve, vp, subvp)"))
}

fn parse_sampler(s: &str) -> Result<SamplerKind, String> {
    SamplerKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown sampler '{s}' (known: {})", names.join(", "))
    })
}

/// Compute backend.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Backend {
    /// The CPU reference engine (`sim`).
    Cpu,
    /// The WGSL engine on the best native adapter (lavapipe on machines without a GPU).
    Gpu,
}

fn gpu_context() -> Result<GpuContext, CliError> {
    ensure_runtime_dir();
    GpuContext::headless().map_err(|e| msg(format!("GPU backend unavailable: {e}")))
}

fn ensure_runtime_dir() {
    // Mesa's Vulkan drivers probe Wayland and print "error: XDG_RUNTIME_DIR is invalid or not
    // set" on headless machines; give them a private runtime dir so the only errors a user
    // sees are ours. (Single-threaded here: nothing else reads the environment concurrently.)
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join(format!("scorelab-runtime-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

fn gpu_err(e: GpuError) -> CliError {
    msg(format!("GPU engine: {e}"))
}

/// `train` flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Training steps.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    steps: u32,
    /// Samples per step.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch: u32,
    /// Forward SDE: ve, vp or subvp.
    #[arg(long, value_parser = parse_sde, default_value = "ve")]
    sde: SdeKind,
    /// Hidden width.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    width: u32,
    /// Hidden layers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    depth: u32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3, allow_negative_numbers = true)]
    lr: f32,
    /// Seed (weights and batches).
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// Output model file.
    #[arg(long, value_name = "MODEL.json", default_value = "model.json")]
    out: PathBuf,
    /// Optional CSV log with columns step,loss (and fisher every 500 steps).
    #[arg(long, value_name = "TRAIN.csv")]
    log: Option<PathBuf>,
}

/// Which score to use.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    data: DataArgs,
    /// `exact` (closed form) or a MODEL.json written by `train`.
    #[arg(long, default_value = "exact", value_name = "exact|MODEL.json")]
    score: String,
    /// SDE for the exact score: ve, vp or subvp (a model file carries its own) [default: ve].
    #[arg(long, value_parser = parse_sde)]
    sde: Option<SdeKind>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

/// `sample` flags.
#[derive(Args, Debug)]
pub struct SampleArgs {
    #[command(flatten)]
    score: ScoreArgs,
    /// Sampler: langevin, annealed-langevin, reverse-sde, ancestral, pc, ode-euler, ode-heun,
    /// ode-rk4, ode-rk45.
    #[arg(long, value_parser = parse_sampler, default_value = "annealed-langevin")]
    sampler: SamplerKind,
    /// Number of samples.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    n: u32,
    /// Steps (Langevin: total; annealed: per level; SDE/ODE: time steps) [default: per sampler].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    steps: Option<u32>,
    /// Noise levels of annealed Langevin [default: 50].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    levels: Option<u32>,
    /// Langevin step α / annealed ε [default: 0.05 / 2e-5].
    #[arg(long, allow_negative_numbers = true)]
    step_size: Option<f64>,
    /// Predictor–corrector signal-to-noise ratio.
    #[arg(long, default_value_t = 0.16, allow_negative_numbers = true)]
    snr: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Output CSV (header x,y).
    #[arg(long, value_name = "SAMPLES.csv", default_value = "samples.csv")]
    out: PathBuf,
}

/// `likelihood` flags.
#[derive(Args, Debug)]
pub struct LikelihoodArgs {
    #[command(flatten)]
    score: ScoreArgs,
    /// Points CSV (header x,y).
    #[arg(long, value_name = "POINTS.csv")]
    points: PathBuf,
    /// Output CSV (x,y,logp_model,logp_true).
    #[arg(long, value_name = "LOGP.csv", default_value = "logp.csv")]
    out: PathBuf,
    /// GPU backend only: fixed RK4 steps of the PF-ODE (the CPU adapts its steps, RK45).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    steps: u32,
}

/// `eval` flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    score: ScoreArgs,
    /// Optional samples CSV to score against the truth.
    #[arg(long, value_name = "SAMPLES.csv")]
    samples: Option<PathBuf>,
    /// Points per noise level for the Fisher divergence.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    fisher_points: u32,
}

/// A CLI failure: printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// File I/O.
    #[error("cannot {action} '{path}': {source}")]
    Io {
        /// "read" / "write".
        action: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else, already phrased.
    #[error("{0}")]
    Msg(String),
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Msg(s.into())
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        action: "write",
        path: path.display().to_string(),
        source,
    })
}

/// Load the mixture from `--mixture` or `--preset` (default `ncsn`).
pub fn load_mixture(d: &DataArgs) -> Result<GaussianMixture, CliError> {
    let (spec, source) = match (&d.mixture, &d.preset) {
        (Some(path), _) => {
            let text = read(path)?;
            let spec: MixtureSpec = serde_json::from_str(&text).map_err(|e| {
                msg(format!(
                    "mixture file '{}' is not a valid mixture JSON: {e}",
                    path.display()
                ))
            })?;
            (spec, format!("'{}'", path.display()))
        }
        (None, name) => {
            let name = name.as_deref().unwrap_or("ncsn");
            let spec = presets::by_name(name).ok_or_else(|| {
                msg(format!(
                    "unknown preset '{name}' (known: {})",
                    presets::NAMES.join(", ")
                ))
            })?;
            (spec, format!("preset '{name}'"))
        }
    };
    GaussianMixture::from_spec(&spec).map_err(|e| msg(format!("invalid mixture in {source}: {e}")))
}

/// Parse a CSV with header `x,y` (extra columns are ignored). Errors name the line.
pub fn parse_points_csv(text: &str, what: &str) -> Result<Vec<Vec2>, CliError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| msg(format!("{what} is empty (expected a header line x,y)")))?;
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let (ix, iy) = match (
        cols.iter().position(|c| c == "x"),
        cols.iter().position(|c| c == "y"),
    ) {
        (Some(ix), Some(iy)) => (ix, iy),
        _ => {
            return Err(msg(format!(
                "{what}: the first line must be a header with columns x,y (found '{}')",
                header.trim()
            )))
        }
    };
    let mut out = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |i: usize| -> Result<f64, CliError> {
            let f = fields.get(i).ok_or_else(|| {
                msg(format!(
                    "{what} line {}: expected {} columns",
                    n + 1,
                    cols.len()
                ))
            })?;
            let v: f64 = f
                .parse()
                .map_err(|_| msg(format!("{what} line {}: '{f}' is not a number", n + 1)))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(msg(format!(
                    "{what} line {}: '{f}' is not a finite number",
                    n + 1
                )))
            }
        };
        out.push(Vec2::new(get(ix)?, get(iy)?));
        if out.len() > 10_000_000 {
            return Err(msg(format!("{what}: more than 10^7 rows")));
        }
    }
    if out.is_empty() {
        return Err(msg(format!("{what} has a header but no rows")));
    }
    Ok(out)
}

fn points_to_csv(points: &[Vec2]) -> String {
    let mut s = String::with_capacity(points.len() * 24 + 4);
    s.push_str("x,y\n");
    for p in points {
        s.push_str(&format!("{},{}\n", p.x, p.y));
    }
    s
}

/// The score a command uses: exact for the given SDE, or a trained network.
enum LoadedScore {
    Exact(ExactScore),
    Net(Box<ScoreNet>),
}

impl LoadedScore {
    fn model(&self) -> &dyn ScoreModel {
        match self {
            Self::Exact(e) => e,
            Self::Net(n) => n.as_ref(),
        }
    }

    fn sde(&self) -> Sde {
        match self {
            Self::Exact(e) => e.sde,
            Self::Net(n) => n.sde,
        }
    }
}

fn load_score(a: &ScoreArgs, mixture: &GaussianMixture) -> Result<LoadedScore, CliError> {
    if a.score == "exact" {
        let kind = a.sde.unwrap_or(SdeKind::Ve);
        return Ok(LoadedScore::Exact(ExactScore::new(
            mixture.clone(),
            Sde::for_mixture(kind, mixture),
        )));
    }
    let path = Path::new(&a.score);
    let text = read(path)?;
    let net = ScoreNet::from_json(&text)
        .map_err(|e| msg(format!("cannot load model '{}': {e}", path.display())))?;
    if let Some(s) = a.sde {
        if s != net.sde.kind {
            return Err(msg(format!(
                "--sde {} conflicts with model '{}', which was trained with --sde {}",
                s.name(),
                path.display(),
                net.sde.kind.name()
            )));
        }
    }
    Ok(LoadedScore::Net(Box::new(net)))
}

fn fisher_report(
    score: &dyn ScoreModel,
    mixture: &GaussianMixture,
    sde: &Sde,
    n: usize,
) -> serde_json::Value {
    let levels = metrics::fisher_levels();
    let f = metrics::relative_fisher(score, mixture, sde, &levels, n, 1);
    json!({
        "fisher_mean": f.iter().sum::<f64>() / f.len() as f64,
        "fisher_per_level": f,
        "fisher_t": levels,
        "fisher_sigma": levels.iter().map(|&t| sde.effective_sigma(t)).collect::<Vec<_>>(),
    })
}

/// Mean relative Fisher divergence with the small sample the training log uses.
fn log_fisher(net: &ScoreNet, mixture: &GaussianMixture, sde: &Sde) -> f64 {
    let f = metrics::relative_fisher(net, mixture, sde, &metrics::fisher_levels(), 500, 1);
    f.iter().sum::<f64>() / f.len() as f64
}

/// CPU training; returns (EMA network, last loss, log rows).
fn train_cpu(
    a: &TrainArgs,
    net: ScoreNet,
    mixture: &GaussianMixture,
    sde: &Sde,
    tc: TrainConfig,
) -> Result<(ScoreNet, f64, String), CliError> {
    let mut trainer = Trainer::new(net, mixture.clone(), tc);
    let mut log = String::new();
    let mut last = f64::NAN;
    let mut diverged = 0u32;
    for step in 1..=a.steps {
        match trainer.step() {
            Ok(l) => last = l,
            Err(e) => {
                // Recovery as in the app: keep the last good weights, halve the learning rate.
                diverged += 1;
                if diverged > 20 {
                    return Err(msg(format!("{e}; gave up after 20 divergences")));
                }
                eprintln!("warning: {}", trainer.recover(&e));
            }
        }
        if a.log.is_some() {
            let fisher = if step % 500 == 0 || step == a.steps {
                log_fisher(&trainer.ema_net(), mixture, sde).to_string()
            } else {
                String::new()
            };
            log.push_str(&format!("{step},{last},{fisher}\n"));
        }
    }
    Ok((trainer.ema_net(), last, log))
}

/// GPU training in chunks of 500 steps (the only readbacks are between chunks, for the log
/// and the divergence flag).
fn train_gpu(
    a: &TrainArgs,
    net: ScoreNet,
    mixture: &GaussianMixture,
    sde: &Sde,
    tc: TrainConfig,
) -> Result<(ScoreNet, f64, String), CliError> {
    let ctx = gpu_context()?;
    let trainer = GpuTrainer::new(&ctx, &net, mixture, &tc).map_err(gpu_err)?;
    let mut log = String::new();
    let mut last = f64::NAN;
    let mut done = 0u32;
    while done < a.steps {
        let k = (a.steps - done).min(500);
        trainer.train(&ctx, k);
        if let Some(at) = trainer.diverged_at(&ctx).map_err(gpu_err)? {
            return Err(msg(format!(
                "training diverged on the GPU at step {at} (non-finite loss); try a smaller --lr"
            )));
        }
        let losses = trainer.read_losses(&ctx, done, k).map_err(gpu_err)?;
        last = losses.last().map_or(f64::NAN, |&l| f64::from(l));
        done += k;
        if a.log.is_some() {
            for (j, l) in losses.iter().enumerate() {
                let step = done - k + j as u32 + 1;
                let fisher = if step == done {
                    log_fisher(&trainer.ema_net(&ctx).map_err(gpu_err)?, mixture, sde).to_string()
                } else {
                    String::new()
                };
                log.push_str(&format!("{step},{l},{fisher}\n"));
            }
        }
    }
    Ok((trainer.ema_net(&ctx).map_err(gpu_err)?, last, log))
}

fn train(a: &TrainArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.data)?;
    if !(a.lr.is_finite() && a.lr > 0.0 && a.lr <= 1.0) {
        return Err(msg(format!("--lr {} must be in (0, 1]", a.lr)));
    }
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
    let start = web_time::Instant::now();
    let (net, last, rows) = match a.backend {
        Backend::Cpu => train_cpu(a, net, &mixture, &sde, tc)?,
        Backend::Gpu => train_gpu(a, net, &mixture, &sde, tc)?,
    };
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
        "backend": match a.backend { Backend::Cpu => "cpu", Backend::Gpu => "gpu" },
    });
    if let (Some(o), serde_json::Value::Object(f)) = (
        report.as_object_mut(),
        fisher_report(&net, &mixture, &sde, 2000),
    ) {
        o.extend(f);
    }
    Ok(report)
}

fn sample(a: &SampleArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let kind = a.sampler;
    let mut cfg = SamplerConfig {
        seed: a.seed,
        snr: a.snr,
        ..SamplerConfig::defaults(kind, &mixture)
    };
    if let Some(s) = a.steps {
        cfg.n_steps = s as usize;
    }
    if let Some(l) = a.levels {
        cfg.n_levels = l as usize;
    }
    if let Some(e) = a.step_size {
        cfg.step_size = e;
    }
    let start = web_time::Instant::now();
    let (xs, nfe) = match a.score.backend {
        Backend::Cpu => samplers::sample(cfg, score.sde(), a.n as usize, score.model())
            .map_err(|e| msg(e.to_string()))?,
        Backend::Gpu => {
            if kind == SamplerKind::OdeRk45 {
                return Err(msg("ode-rk45 is adaptive and runs on the CPU; on the GPU use ode-rk4 (fixed steps)"));
            }
            let ctx = gpu_context()?;
            let gnet = match &score {
                LoadedScore::Net(n) => Some(GpuNet::upload(&ctx, n).map_err(gpu_err)?),
                LoadedScore::Exact(_) => None,
            };
            let gs = gnet.as_ref().map_or(GpuScore::Exact, GpuScore::Net);
            let mut s = GpuSampler::new(&ctx, gs, &mixture, score.sde(), &cfg, a.n as usize)
                .map_err(gpu_err)?;
            s.run(&ctx);
            (s.samples(&ctx).map_err(gpu_err)?, s.nfe())
        }
    };
    let secs = start.elapsed().as_secs_f64();
    write(&a.out, &points_to_csv(&xs))?;
    let census = metrics::ModeCensus::of(&mixture, &xs);
    if let Some(m) = census.message() {
        eprintln!("scorelab: {m}");
    }
    Ok(json!({
        "out": a.out.display().to_string(),
        "sampler": kind.name(),
        "backend": match a.score.backend { Backend::Cpu => "cpu", Backend::Gpu => "gpu" },
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

fn likelihood(a: &LikelihoodArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let what = format!("points file '{}'", a.points.display());
    let points = parse_points_csv(&read(&a.points)?, &what)?;
    let sde = score.sde();
    let model: Vec<Option<f64>> = match a.score.backend {
        Backend::Cpu => points
            .iter()
            .map(|p| {
                log_likelihood(score.model(), &sde, *p, LikelihoodConfig::default())
                    .map(|l| l.log_prob)
            })
            .collect(),
        Backend::Gpu => {
            let ctx = gpu_context()?;
            let gnet = match &score {
                LoadedScore::Net(n) => Some(GpuNet::upload(&ctx, n).map_err(gpu_err)?),
                LoadedScore::Exact(_) => None,
            };
            let gs = gnet.as_ref().map_or(GpuScore::Exact, GpuScore::Net);
            crate::gpu::likelihood::log_likelihood(
                &ctx,
                gs,
                &mixture,
                sde,
                &points,
                LikelihoodConfig::default().t0,
                a.steps,
            )
            .map_err(gpu_err)?
            .into_iter()
            .map(|l| l.is_finite().then_some(l))
            .collect()
        }
    };
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

fn eval(a: &EvalArgs) -> Result<serde_json::Value, CliError> {
    let mixture = load_mixture(&a.score.data)?;
    let score = load_score(&a.score, &mixture)?;
    let sde = score.sde();
    let mut report = match (&score, a.score.backend) {
        (LoadedScore::Net(net), Backend::Gpu) => {
            let ctx = gpu_context()?;
            let gnet = GpuNet::upload(&ctx, net).map_err(gpu_err)?;
            let levels = metrics::fisher_levels();
            let f = crate::gpu::field::relative_fisher(
                &ctx,
                &gnet,
                &mixture,
                &levels,
                a.fisher_points as usize,
                1,
            )
            .map_err(gpu_err)?;
            json!({
                "fisher_mean": f.iter().sum::<f64>() / f.len() as f64,
                "fisher_per_level": f,
                "fisher_t": levels,
                "fisher_sigma": levels.iter().map(|&t| sde.effective_sigma(t)).collect::<Vec<_>>(),
            })
        }
        _ => fisher_report(score.model(), &mixture, &sde, a.fisher_points as usize),
    };
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

/// Run one subcommand; returns its JSON summary.
pub fn run(cmd: &Command) -> Result<serde_json::Value, CliError> {
    match cmd {
        Command::Train(a) => train(a),
        Command::Sample(a) => sample(a),
        Command::Likelihood(a) => likelihood(a),
        Command::Eval(a) => eval(a),
        Command::Bench { quick } => {
            ensure_runtime_dir();
            crate::bench::run(*quick).map_err(|e| msg(format!("benchmark failed: {e}")))
        }
    }
}

/// Parse arguments and run. `open_window` is called when no subcommand is given.
pub fn main_with(open_window: impl FnOnce() -> Result<(), String>) -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("error: internal error: {what}");
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // clap's message spans several lines; join the complaint (everything before the
            // blank line / usage) into one.
            let text = e.render().to_string();
            let complaint: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let line = complaint.join(" ");
            eprintln!("error: {} (see --help)", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match &cli.command {
        None => open_window()
            .map(|_| serde_json::Value::Null)
            .map_err(CliError::Msg),
        Some(cmd) => run(cmd),
    };
    match result {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

//! The command line's flags (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::settings::table::{self, Setting};
use crate::engine::EngineChoice;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::SdeKind;

/// ScoreLab: score-based generative models on 2D Gaussian mixtures.
#[derive(Parser, Debug)]
#[command(name = "scorelab", version, about, long_about = None)]
pub struct Cli {
    /// Run a headless command; without one, the desktop window opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The window's CPU engine as a pool of N threads: one trains, the others run the live
    /// samplers, the field and the density on shards of the particles (1: one thread does
    /// both; either way `sim` spreads its work over every core).
    #[arg(long, default_value_t = 1, value_parser = workers_in_range)]
    pub workers: usize,
}

fn workers_in_range(s: &str) -> Result<usize, String> {
    let max = crate::engine::pool::MAX_WORKERS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "the worker count must be a whole number in 1..={max}"
        )),
    }
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
    /// How many steps does a sampler need: every sampler at every NFE budget, measured against
    /// the exact truth; writes a CSV (sampler,nfe,weight_error,spread_error,energy,nll,
    /// ode_error,diverged).
    Sweep(SweepArgs),
    /// Flow matching beside score matching: train the velocity by conditional flow matching,
    /// one round of reflow, and few-step Euler on the exact, trained and reflowed velocity
    /// against true samples (mode weights and spreads); prints JSON.
    Flow(FlowArgs),
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

/// A flag checked against its settings row (`engine::settings::table`): the same range and
/// message as the panel, links and `setConfig` (offline runs may go to the row's `cli_hi`).
fn in_range<T: std::str::FromStr + Into<f64> + Copy>(
    row: &'static Setting,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: T = s.trim().parse().map_err(|_| {
            format!(
                "{} must be a number in {} (got '{s}')",
                row.key,
                row.range_text()
            )
        })?;
        row.check_cli(v.into())?;
        Ok(v)
    }
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

impl From<Backend> for EngineChoice {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Cpu => EngineChoice::Cpu,
            Backend::Gpu => EngineChoice::Gpu,
        }
    }
}

/// `train` flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub(super) data: DataArgs,
    /// Training steps.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub(super) steps: u32,
    /// Samples per step.
    #[arg(long, default_value_t = 256, value_parser = in_range::<u32>(&table::BATCH))]
    pub(super) batch: u32,
    /// Forward SDE: ve, vp or subvp.
    #[arg(long, value_parser = parse_sde, default_value = "ve")]
    pub(super) sde: SdeKind,
    /// Hidden width.
    #[arg(long, default_value_t = 64, value_parser = in_range::<u32>(&table::WIDTH))]
    pub(super) width: u32,
    /// Hidden layers.
    #[arg(long, default_value_t = 3, value_parser = in_range::<u32>(&table::DEPTH))]
    pub(super) depth: u32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-3, allow_negative_numbers = true, value_parser = in_range::<f32>(&table::LR))]
    pub(super) lr: f32,
    /// Seed (weights and batches).
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u32,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub(super) backend: Backend,
    /// Output model file.
    #[arg(long, value_name = "MODEL.json", default_value = "model.json")]
    pub(super) out: PathBuf,
    /// Optional CSV log with columns step,loss (and fisher every 500 steps).
    #[arg(long, value_name = "TRAIN.csv")]
    pub(super) log: Option<PathBuf>,
}

/// Which score to use.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub(super) data: DataArgs,
    /// `exact` (closed form) or a MODEL.json written by `train`.
    #[arg(long, default_value = "exact", value_name = "exact|MODEL.json")]
    pub(super) score: String,
    /// SDE for the exact score: ve, vp or subvp (a model file carries its own) [default: ve].
    #[arg(long, value_parser = parse_sde)]
    pub(super) sde: Option<SdeKind>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub(super) backend: Backend,
}

/// `sample` flags.
#[derive(Args, Debug)]
pub struct SampleArgs {
    #[command(flatten)]
    pub(super) score: ScoreArgs,
    /// Sampler: langevin, annealed-langevin, reverse-sde, ancestral, pc, ode-euler, ode-heun,
    /// ode-rk4, ode-rk45, ddim, edm-heun, dpm-solver++2m.
    #[arg(long, value_parser = parse_sampler, default_value = "annealed-langevin")]
    pub(super) sampler: SamplerKind,
    /// Number of samples.
    #[arg(long, default_value_t = 1000, value_parser = in_range::<u32>(&table::PARTICLES))]
    pub(super) n: u32,
    /// Steps (Langevin: total; annealed: per level; SDE/ODE: time steps) [default: per sampler].
    #[arg(long, value_parser = in_range::<u32>(&table::STEPS))]
    pub(super) steps: Option<u32>,
    /// Noise levels of annealed Langevin [default: 50].
    #[arg(long, value_parser = in_range::<u32>(&table::LEVELS))]
    pub(super) levels: Option<u32>,
    /// The Langevin family's step at the last noise level, α_L, in data units: plain
    /// Langevin's α, annealed Langevin's ε (level i steps α_L s_i²/s_L²) [default: 0.05 /
    /// 2e-5 for the narrowest component's scale].
    #[arg(
        long = "step-size",
        visible_alias = "alpha-last",
        allow_negative_numbers = true
    )]
    pub(super) alpha_last: Option<f64>,
    /// Predictor–corrector signal-to-noise ratio.
    #[arg(long, default_value_t = 0.16, allow_negative_numbers = true, value_parser = in_range::<f64>(&table::SNR))]
    pub(super) snr: f64,
    /// DDIM's η (0: deterministic, 1: ancestral).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = in_range::<f64>(&table::ETA))]
    pub(super) eta: f64,
    /// Heun-EDM's S_churn (0: deterministic).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = in_range::<f64>(&table::CHURN))]
    pub(super) churn: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u32,
    /// Output CSV (header x,y).
    #[arg(long, value_name = "SAMPLES.csv", default_value = "samples.csv")]
    pub(super) out: PathBuf,
}

/// `likelihood` flags.
#[derive(Args, Debug)]
pub struct LikelihoodArgs {
    #[command(flatten)]
    pub(super) score: ScoreArgs,
    /// Points CSV (header x,y).
    #[arg(long, value_name = "POINTS.csv")]
    pub(super) points: PathBuf,
    /// Output CSV (x,y,logp_model,logp_true).
    #[arg(long, value_name = "LOGP.csv", default_value = "logp.csv")]
    pub(super) out: PathBuf,
    /// GPU backend only: fixed RK4 steps of the PF-ODE (the CPU adapts its steps, RK45).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) steps: u32,
}

/// `eval` flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub(super) score: ScoreArgs,
    /// Optional samples CSV to score against the truth.
    #[arg(long, value_name = "SAMPLES.csv")]
    pub(super) samples: Option<PathBuf>,
    /// Points per noise level for the Fisher divergence.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    pub(super) fisher_points: u32,
}

/// `sweep` flags.
#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub(super) score: ScoreArgs,
    /// Samplers, comma-separated: ddim, ddim-eta<η>, edm-heun, edm-heun-churn<S>,
    /// dpm-solver++2m, and reverse-sde, ancestral, pc, ode-euler, ode-heun, ode-rk4.
    #[arg(long, value_delimiter = ',', value_parser = parse_sweep_sampler, default_value = "ddim,edm-heun,dpm-solver++2m,ode-euler")]
    pub(super) samplers: Vec<crate::sim::samplers::sweep::SweepSampler>,
    /// Score evaluations per particle, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16,32,64,128,256,512", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) nfe: Vec<u32>,
    /// Particles per run.
    #[arg(long, default_value_t = 2000, value_parser = in_range::<u32>(&table::PARTICLES))]
    pub(super) n: u32,
    /// Seed (start points, true samples, the samplers' noise).
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u32,
    /// Output CSV.
    #[arg(long, value_name = "SWEEP.csv", default_value = "sweep.csv")]
    pub(super) out: PathBuf,
}

fn parse_sweep_sampler(s: &str) -> Result<crate::sim::samplers::sweep::SweepSampler, String> {
    crate::sim::samplers::sweep::SweepSampler::parse(s).ok_or_else(|| {
        format!(
            "unknown sweep sampler '{s}' (known: ddim, ddim-eta<η in [0,1]>, edm-heun, edm-heun-churn<S>, dpm-solver++2m, reverse-sde, ancestral, pc, ode-euler, ode-heun, ode-rk4)"
        )
    })
}

/// `flow` flags.
#[derive(Args, Debug)]
pub struct FlowArgs {
    #[command(flatten)]
    pub(super) data: DataArgs,
    /// Flow-matching steps.
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub(super) steps: u32,
    /// Reflow steps (continuing from the trained model on its own couplings).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub(super) reflow_steps: u32,
    /// Couplings (x₀, x̂₁) drawn for reflow.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(super) couplings: u32,
    /// Samples per step.
    #[arg(long, default_value_t = 256, value_parser = in_range::<u32>(&table::BATCH))]
    pub(super) batch: u32,
    /// Hidden width.
    #[arg(long, default_value_t = 64, value_parser = in_range::<u32>(&table::WIDTH))]
    pub(super) width: u32,
    /// Hidden layers.
    #[arg(long, default_value_t = 3, value_parser = in_range::<u32>(&table::DEPTH))]
    pub(super) depth: u32,
    /// Euler step counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) euler: Vec<u32>,
    /// Samples per measured run.
    #[arg(long, default_value_t = 4000, value_parser = in_range::<u32>(&table::PARTICLES))]
    pub(super) n: u32,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u32,
}

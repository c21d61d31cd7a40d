//! The flow-matching experiment the CLI's `scorelab flow` runs (issue 31): train the velocity
//! by conditional flow matching, do one round of reflow from the model's own couplings, and
//! measure few-step Euler on the exact velocity, the trained model and the reflowed one
//! against true samples (mode weights and every component's spread), with how straight each
//! one's paths are.

use serde::Serialize;

use super::*;
use crate::sim::metrics::{errors_against, ModeCensus};
use crate::sim::rng::StreamRng;

/// What to run.
#[derive(Clone, Debug)]
pub struct FlowExperiment {
    /// The network (width, depth, …; `data_std` is set from the mixture).
    pub net: NetConfig,
    /// Flow-matching steps.
    pub steps: u32,
    /// Reflow steps (continuing from the trained model, on its couplings).
    pub reflow_steps: u32,
    /// Couplings drawn for reflow.
    pub couplings: usize,
    /// Samples per training step.
    pub batch: usize,
    /// Euler step counts to measure.
    pub euler_steps: Vec<usize>,
    /// Samples per measured run.
    pub n: usize,
    /// Seed.
    pub seed: u32,
}

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRow {
    /// "exact", "flow matching" or "reflow".
    pub model: &'static str,
    /// Solver name.
    pub solver: &'static str,
    /// Steps.
    pub steps: usize,
    /// Largest |w − w_true| of the mode fractions against true samples'.
    pub weight_error: f64,
    /// Largest |λ̂/λ − 1| of a component's covariance eigenvalues against true samples'.
    pub spread_error: f64,
    /// Non-finite or escaped samples.
    pub diverged: usize,
}

/// The experiment's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct FlowReport {
    /// The relative velocity error at [`velocity_error_times`] after flow matching.
    pub velocity_error: Vec<f64>,
    /// The same for the reflowed model (it learns another, straighter flow: not the marginal
    /// velocity).
    pub velocity_error_reflow: Vec<f64>,
    /// [`straightness_gap`] of the exact flow, the trained model and the reflowed one.
    pub straightness: [f64; 3],
    /// Last training losses (flow matching, reflow).
    pub losses: [f64; 2],
    /// The runs.
    pub rows: Vec<FlowRow>,
}

fn measure(
    model: &'static str,
    v: &dyn VelocityModel,
    mixture: &GaussianMixture,
    truth: &[Vec2],
    solver: FlowSolver,
    steps: usize,
    x: &FlowExperiment,
) -> FlowRow {
    let path = FlowPath::for_mixture(mixture);
    let xs = flow_sample(v, &path, x.n, steps, solver, x.seed + 101);
    let (weight_error, spread_error) = errors_against(mixture, &xs, truth);
    FlowRow {
        model,
        solver: solver.name(),
        steps,
        weight_error,
        spread_error,
        diverged: ModeCensus::of(mixture, &xs).diverged,
    }
}

/// Run it on `mixture`.
pub fn run(mixture: &GaussianMixture, x: &FlowExperiment) -> Result<FlowReport, String> {
    let exact = ExactVelocity::new(mixture.clone());
    let path = exact.path;
    let cfg = NetConfig {
        data_std: path.d,
        ..x.net.clone()
    };
    let net = FlowNet::new(cfg, path).map_err(|e| e.to_string())?;
    let tc = FlowTrainConfig {
        batch: x.batch,
        seed: x.seed,
        ..FlowTrainConfig::default()
    };
    let mut tr = FlowTrainer::new(net, mixture.clone(), tc);
    let mut loss = f64::NAN;
    for _ in 0..x.steps {
        loss = tr.step().map_err(|e| e.to_string())?;
    }
    let fm = tr.ema_net();
    let ts = velocity_error_times();
    let velocity_error = relative_velocity_error(&fm, &exact, &ts, 2000, x.seed);
    let couplings = reflow_couplings(&fm, &path, x.couplings, 64, x.seed + 7);
    // Reflow continues from the trained weights (as rectified flow's second round does).
    let mut re = FlowTrainer::new(fm.clone(), mixture.clone(), tr.config.clone());
    re.set_couplings(Some(couplings));
    let mut loss_re = f64::NAN;
    for _ in 0..x.reflow_steps {
        loss_re = re.step().map_err(|e| e.to_string())?;
    }
    let rf = re.ema_net();
    let velocity_error_reflow = relative_velocity_error(&rf, &exact, &ts, 2000, x.seed);
    let truth = mixture.sample(4 * x.n, &mut StreamRng::new(x.seed + 55, 0));
    let models: [(&'static str, &dyn VelocityModel); 3] =
        [("exact", &exact), ("flow matching", &fm), ("reflow", &rf)];
    let mut rows = Vec::new();
    for (name, v) in models {
        for &k in &x.euler_steps {
            rows.push(measure(name, v, mixture, &truth, FlowSolver::Euler, k, x));
        }
        rows.push(measure(name, v, mixture, &truth, FlowSolver::Rk4, 64, x));
    }
    let straightness = [
        straightness_gap(&exact, &path, 2000, x.seed + 9),
        straightness_gap(&fm, &path, 2000, x.seed + 9),
        straightness_gap(&rf, &path, 2000, x.seed + 9),
    ];
    Ok(FlowReport {
        velocity_error,
        velocity_error_reflow,
        straightness,
        losses: [loss, loss_re],
        rows,
    })
}

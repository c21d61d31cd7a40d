//! Flow matching in the engines (issue 31): the flow view asks for it in its
//! [`super::FrameRequest`] (`flow: Some(FlowJob)`), and whichever engine trains the score
//! network trains a velocity network beside it by conditional flow matching, on the engine's
//! own time (the CPU engine's worker, natively its thread, or the GPU), and reports its EMA
//! weights in [`super::FrameOutput::flow`]. Without the request the engine drops it.
//!
//! [`FlowRun`] is the training's bookkeeping, written once for every engine: the network and
//! its settings, a drag keeping the weights (the network works in the data's frame) but
//! starting a new first round, and one round of reflow (rectified flow) from the model's own
//! couplings once the first round has trained [`REFLOW_AFTER`] steps on the current mixture.

use web_time::{Duration, Instant};

use super::EngineError;
use crate::sim::flow::{self, FlowNet, FlowPath, FlowTrainConfig, FlowTrainer};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::NetConfig;

/// Reflow waits for this many steps of the first round on the current mixture: its couplings
/// come from a trained model.
pub const REFLOW_AFTER: u32 = 1500;
/// Couplings of one round of reflow.
pub const COUPLINGS: usize = 4000;
/// RK4 steps of the model's ODE that make a coupling.
const COUPLING_STEPS: usize = 32;
/// The share of the engine's training time flow matching takes while it is on (its network,
/// width 48 × 2 at batch 128, is far smaller than the score network's defaults).
pub const FLOW_SHARE: f64 = 0.3;

/// What the flow view asks the engine to train.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlowJob {
    /// Train the second round on the model's own couplings (once the first has trained
    /// [`REFLOW_AFTER`] steps on this mixture); off goes back to the first round's pairs.
    pub reflow: bool,
}

/// The velocity network: the score network's MLP, small enough to train beside it.
pub fn net_config(d: f64) -> NetConfig {
    NetConfig {
        width: 48,
        depth: 2,
        data_std: d,
        seed: 2,
        ..NetConfig::default()
    }
}

/// Its optimiser and batch.
pub fn train_config() -> FlowTrainConfig {
    FlowTrainConfig {
        batch: 128,
        ..FlowTrainConfig::default()
    }
}

/// Where flow matching stands, as an engine reports it.
#[derive(Clone, Debug)]
pub struct FlowReport {
    /// Steps trained (both rounds).
    pub steps: u32,
    /// The step the current first round started at (the last mixture change).
    pub round_from: u32,
    /// The second round (reflow's couplings) is training.
    pub reflowing: bool,
    /// The last batch loss.
    pub loss: f64,
    /// Seconds the engine has spent training it.
    pub seconds: f64,
    /// The EMA weights (what the view draws and measures).
    pub net: FlowNet,
    /// Which engine trains it ("CPU", "WebGPU", ...).
    pub engine: &'static str,
}

/// [`FlowReport`] on the wire (a worker's report): the network as its configuration, path and
/// weights.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FlowReportMsg {
    steps: u32,
    round_from: u32,
    reflowing: bool,
    loss: f64,
    seconds: f64,
    config: NetConfig,
    path: FlowPath,
    params: Vec<f32>,
}

impl FlowReport {
    /// For a worker's report.
    pub fn to_msg(&self) -> FlowReportMsg {
        FlowReportMsg {
            steps: self.steps,
            round_from: self.round_from,
            reflowing: self.reflowing,
            loss: self.loss,
            seconds: self.seconds,
            config: self.net.config.clone(),
            path: self.net.path,
            params: self.net.mlp.params.clone(),
        }
    }

    /// From a worker's report.
    pub fn from_msg(m: FlowReportMsg, engine: &'static str) -> Result<Self, String> {
        let net = FlowNet::with_params(m.config, m.path, m.params).map_err(|e| e.to_string())?;
        Ok(Self {
            steps: m.steps,
            round_from: m.round_from,
            reflowing: m.reflowing,
            loss: m.loss,
            seconds: m.seconds,
            net,
            engine,
        })
    }
}

/// Flow matching's training in an engine (the CPU trainer; the GPU engine keeps the same
/// rounds with its WGSL trainer).
pub struct FlowRun {
    trainer: FlowTrainer,
    job: FlowJob,
    round_from: u32,
    reflowing: bool,
    loss: f64,
    seconds: f64,
    /// Steps at the last report.
    reported: Option<u32>,
}

impl FlowRun {
    /// A fresh network for `mixture`.
    pub fn new(mixture: &GaussianMixture) -> Result<Self, EngineError> {
        let path = FlowPath::for_mixture(mixture);
        let net = FlowNet::new(net_config(path.d), path)?;
        Ok(Self {
            trainer: FlowTrainer::new(net, mixture.clone(), train_config()),
            job: FlowJob::default(),
            round_from: 0,
            reflowing: false,
            loss: f64::NAN,
            seconds: 0.0,
            reported: None,
        })
    }

    /// The data changed: the weights stay (the network works in the data's frame), the path
    /// follows, and a new first round starts (reflow's couplings were the old mixture's).
    pub fn set_mixture(&mut self, mixture: &GaussianMixture) {
        let tr = &mut self.trainer;
        tr.mixture = mixture.clone();
        tr.net.path = FlowPath::for_mixture(mixture);
        tr.set_couplings(None);
        self.reflowing = false;
        self.round_from = tr.steps();
    }

    /// Follow the view's request: start reflow once the first round is ready, or stop it.
    pub fn follow(&mut self, job: FlowJob) {
        self.job = job;
        let tr = &mut self.trainer;
        let ready = tr.steps() >= self.round_from + REFLOW_AFTER;
        if job.reflow && !self.reflowing && ready {
            let net = tr.ema_net();
            let couplings =
                flow::reflow_couplings(&net, &tr.net.path, COUPLINGS, COUPLING_STEPS, 13);
            tr.set_couplings(Some(couplings));
            self.reflowing = true;
        } else if !job.reflow && self.reflowing {
            tr.set_couplings(None);
            self.reflowing = false;
        }
    }

    /// Train for about `budget` (at least one step); a refused step lowers the step size and
    /// says so.
    pub fn train_for(&mut self, budget: Duration) -> Option<String> {
        let start = Instant::now();
        let mut warning = None;
        loop {
            match self.trainer.step() {
                Ok(l) => self.loss = l,
                Err(e) => {
                    // A refused step keeps the last good weights; a smaller step size next.
                    let lr = self.trainer.recover();
                    warning = Some(format!("flow matching: {e}; step size lowered to {lr:.2e}"));
                    break;
                }
            }
            // Reflow starts at the step it becomes ready, not at the next frame.
            if self.job.reflow && !self.reflowing {
                self.follow(self.job);
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        self.seconds += start.elapsed().as_secs_f64();
        warning
    }

    /// The report, when there are new steps since the last one.
    pub fn report(&mut self, engine: &'static str) -> Option<FlowReport> {
        let steps = self.trainer.steps();
        if self.reported == Some(steps) {
            return None;
        }
        self.reported = Some(steps);
        Some(FlowReport {
            steps,
            round_from: self.round_from,
            reflowing: self.reflowing,
            loss: self.loss,
            seconds: self.seconds,
            net: self.trainer.ema_net(),
            engine,
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::engine::{CpuEngine, Engine, FrameRequest, TrainSettings};
    use crate::sim::mixture::presets;
    use crate::sim::sde::{Sde, SdeKind};

    fn mixture(name: &str) -> GaussianMixture {
        GaussianMixture::from_spec(&presets::by_name(name).unwrap()).unwrap()
    }

    /// The rounds: reflow waits for [`REFLOW_AFTER`] steps of the first round and starts at
    /// that step; the first round's network has learned the velocity by then; a new mixture
    /// starts a new first round (reflow waits again); turning reflow off stops it.
    #[test]
    fn reflow_waits_for_the_first_round_and_a_new_mixture_starts_one() {
        let m = mixture("ncsn");
        let mut run = FlowRun::new(&m).unwrap();
        run.follow(FlowJob { reflow: true });
        while run.trainer.steps() < REFLOW_AFTER - 1 {
            assert!(run.train_for(Duration::ZERO).is_none());
            assert!(!run.reflowing, "reflow before step {REFLOW_AFTER}");
        }
        let first = run.report("CPU").unwrap();
        let exact = flow::ExactVelocity::new(m.clone());
        let times = flow::velocity_error_times();
        let errors = flow::relative_velocity_error(&first.net, &exact, &times, 400, 1);
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        assert!(mean < 0.1, "first round's velocity error {errors:?}");
        run.train_for(Duration::ZERO);
        let r = run.report("CPU").unwrap();
        assert!(
            r.reflowing && r.steps == REFLOW_AFTER,
            "{} {}",
            r.reflowing,
            r.steps
        );
        assert!(run.report("CPU").is_none(), "no new steps, no report");
        // A drag: the weights stay, a new first round.
        let mut spec = presets::by_name("ncsn").unwrap();
        spec.components[0].mean[0] += 3.0;
        let moved = GaussianMixture::from_spec(&spec).unwrap();
        run.set_mixture(&moved);
        run.train_for(Duration::ZERO);
        let r = run.report("CPU").unwrap();
        assert!(
            !r.reflowing && r.round_from == REFLOW_AFTER,
            "{}",
            r.round_from
        );
        assert_eq!(r.net.path, FlowPath::for_mixture(&moved));
        while run.trainer.steps() < r.round_from + REFLOW_AFTER {
            run.train_for(Duration::ZERO);
        }
        assert!(run.reflowing);
        run.follow(FlowJob { reflow: false });
        assert!(!run.reflowing);
    }

    /// The CPU engine trains flow matching while its frame request asks for it (beside the
    /// score network), reports new weights, and drops it when the request stops.
    #[test]
    fn the_cpu_engine_trains_flow_matching_while_asked() {
        let m = mixture("ncsn");
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        let mut e = CpuEngine::new(&m, sde, &TrainSettings::small(), None).unwrap();
        let ask = FrameRequest {
            flow: Some(FlowJob::default()),
            ..FrameRequest::default()
        };
        let mut last = None;
        for _ in 0..5 {
            let out = e.frame(Duration::from_millis(10), true, &ask);
            assert!(out.steps.is_some_and(|s| s > 0), "the score trains too");
            let r = out.flow.expect("a report every frame it trained");
            assert!(last.is_none_or(|s| r.steps > s) && r.loss.is_finite());
            last = Some(r.steps);
        }
        // Paused: no flow steps, no report.
        assert!(e
            .frame(Duration::from_millis(5), false, &ask)
            .flow
            .is_none());
        let out = e.frame(Duration::from_millis(5), true, &FrameRequest::default());
        assert!(out.flow.is_none());
        // Asked again: a fresh network.
        let out = e.frame(Duration::from_millis(5), true, &ask);
        let r = out.flow.unwrap();
        assert!(Some(r.steps) < last, "{} vs {last:?}", r.steps);
    }
}

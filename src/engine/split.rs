//! Training on one engine, sampling on the other (issue 17): where the engine probe measured
//! one engine faster at training and the other faster at the live samplers (e.g. a small
//! network trains faster on the CPU while 10⁶ particles only keep up on a GPU), the app runs
//! both. The training engine trains and reports losses and the Fisher metric; the sampling
//! engine, which never trains, runs the live samplers, the field and the learned density with
//! the training engine's network, loaded into it every [`SYNC_EVERY`].

use web_time::{Duration, Instant};

use super::{Control, Engine, EngineChoice, EngineError, FrameOutput, FrameRequest, ParticleView};
use crate::gpu::context::GpuCounts;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::sde::Sde;

/// How often the sampling engine takes the training engine's latest (EMA) network.
pub const SYNC_EVERY: Duration = Duration::from_millis(500);

/// Two engines as one: `train` trains, `sample` samples (see the module docs).
pub struct SplitEngine {
    train: Box<dyn Engine>,
    sample: Box<dyn Engine>,
    /// The app asked for the network (answered with the training engine's).
    app_wants_model: bool,
    /// A network is on its way from the training engine.
    sync_pending: bool,
    last_sync: Option<Instant>,
    /// Networks loaded into the sampling engine so far.
    pub syncs: u64,
    /// Both halves are workers of one CPU pool ([`super::pool`]).
    pool: bool,
}

impl SplitEngine {
    /// `train` trains; `sample` runs the samplers, the field and the density with its network.
    pub fn new(train: Box<dyn Engine>, sample: Box<dyn Engine>) -> Self {
        Self {
            train,
            sample,
            app_wants_model: false,
            sync_pending: false,
            last_sync: None,
            syncs: 0,
            pool: false,
        }
    }

    /// The two halves of a CPU worker pool ([`super::pool::start`]): one engine to the app.
    pub fn pool(train: Box<dyn Engine>, sample: Box<dyn Engine>) -> Self {
        Self {
            pool: true,
            ..Self::new(train, sample)
        }
    }

    /// Take the training engine's network at the next frame (not waiting for [`SYNC_EVERY`]).
    pub fn sync_now(&mut self) {
        self.last_sync = None;
    }

    /// (training engine, sampling engine).
    pub fn parts_mut(&mut self) -> (&mut dyn Engine, &mut dyn Engine) {
        (self.train.as_mut(), self.sample.as_mut())
    }

    fn ask_for_model(&mut self) {
        if !self.sync_pending {
            self.train.request_model();
            self.sync_pending = true;
        }
    }
}

impl Engine for SplitEngine {
    fn label(&self) -> &'static str {
        self.train.label()
    }

    fn choice(&self) -> EngineChoice {
        self.train.choice()
    }

    fn sampling_label(&self) -> Option<&'static str> {
        (!self.pool).then(|| self.sample.label())
    }

    fn pool(&self) -> Vec<super::WorkerLoad> {
        let mut all = self.train.pool();
        all.extend(self.sample.pool());
        all
    }

    fn sampling_choice(&self) -> EngineChoice {
        self.sample.choice()
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde) {
        self.train.set_mixture(mixture, sde);
        self.sample.set_mixture(mixture, sde);
    }

    fn frame(&mut self, budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput {
        if self.last_sync.is_none_or(|t| t.elapsed() >= SYNC_EVERY) {
            self.ask_for_model();
        }
        // Flow matching trains where the score network trains.
        let train_req = FrameRequest {
            flow: req.flow,
            ..FrameRequest::default()
        };
        let mut out = self.train.frame(budget, train, &train_req);
        if let Some(net) = out.model.take() {
            self.sync_pending = false;
            self.last_sync = Some(Instant::now());
            match self.sample.load_model(&net) {
                Ok(()) => self.syncs += 1,
                Err(e) => out.warning = Some(format!("the sampling engine: {e}")),
            }
            if std::mem::take(&mut self.app_wants_model) {
                out.model = Some(net);
            }
        }
        let s = self
            .sample
            .frame(budget, false, &FrameRequest { flow: None, ..*req });
        out.timing.sample_ms = s.timing.sample_ms;
        out.timing.field_ms += s.timing.field_ms;
        out.field = s.field;
        out.sampler = s.sampler;
        out.samples = s.samples;
        out.density = s.density;
        out.warning = out.warning.or(s.warning);
        out
    }

    fn particles(&self, slot: usize) -> ParticleView<'_> {
        self.sample.particles(slot)
    }

    fn control(&mut self) -> &mut Control {
        self.sample.control()
    }

    fn start_slot(&mut self, i: usize, fresh: bool) -> Result<(), EngineError> {
        self.sample.start_slot(i, fresh)
    }

    fn load_model(&mut self, net: &ScoreNet) -> Result<(), EngineError> {
        self.train.load_model(net)?;
        self.sample.load_model(net)
    }

    fn gpu_counts(&self) -> Option<GpuCounts> {
        self.sample.gpu_counts().or_else(|| self.train.gpu_counts())
    }

    fn runs_on(&self) -> super::RunsOn {
        self.train.runs_on()
    }

    fn fell_back(&self) -> Option<&str> {
        self.train.fell_back()
    }

    fn queue_steps(&mut self, k: u32) {
        self.train.queue_steps(k);
    }

    fn set_sampling(&mut self, slot: usize, sampling: &super::LiveSampling) {
        self.sample.set_sampling(slot, sampling);
    }

    fn pause_sampling(&mut self, paused: bool) {
        self.sample.pause_sampling(paused);
    }

    fn step_sampling(&mut self, k: u32) {
        self.sample.step_sampling(k);
    }

    fn restart_sampling(&mut self) {
        self.sample.restart_sampling();
    }

    fn request_samples(&mut self, slot: usize) {
        self.sample.request_samples(slot);
    }

    fn request_model(&mut self) {
        self.app_wants_model = true;
        self.ask_for_model();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CpuEngine, LiveSampling, TrainSettings};
    use crate::sim::mixture::presets;
    use crate::sim::sde::SdeKind;

    fn engine(width: usize) -> CpuEngine {
        let m = GaussianMixture::from_spec(&presets::by_name("ncsn").unwrap()).unwrap();
        let sde = Sde::for_mixture(SdeKind::Ve, &m);
        let st = TrainSettings {
            width,
            depth: 2,
            batch: 32,
            lr: 2e-3,
        };
        CpuEngine::new(&m, sde, &st, None).unwrap()
    }

    /// Frames (training paused) until the engine reports a model (at most 200).
    fn model_of(e: &mut dyn Engine) -> ScoreNet {
        e.request_model();
        for _ in 0..200 {
            let out = e.frame(Duration::from_millis(2), false, &FrameRequest::default());
            if let Some(m) = out.model {
                return m;
            }
        }
        panic!("no model reported");
    }

    #[test]
    fn the_sampling_engine_follows_the_training_engines_network() {
        let init = model_of(&mut engine(16));
        let mut split = SplitEngine::new(Box::new(engine(16)), Box::new(engine(16)));
        let live = LiveSampling {
            enabled: true,
            n: 64,
            ..LiveSampling::small()
        };
        split.set_sampling(0, &live);
        let mut steps = 0;
        let mut sampled = false;
        let t0 = Instant::now();
        while (steps < 50 || split.syncs < 2) && t0.elapsed() < Duration::from_secs(30) {
            let out = split.frame(Duration::from_millis(5), true, &FrameRequest::default());
            steps = out.steps.unwrap_or(steps);
            sampled |= out.sampler[0].is_some();
            assert!(
                out.model.is_none(),
                "internal syncs are not the app's model"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(steps >= 50, "the training engine trains ({steps} steps)");
        assert!(
            split.syncs >= 2,
            "the network reached the sampling engine ({} syncs)",
            split.syncs
        );
        assert!(sampled, "the sampling engine runs the live sampler");
        // Training paused, one more sync: the sampling engine (which never trains) then holds
        // the training engine's EMA network bit for bit, and it is not the initial one.
        split.last_sync = None;
        let synced = split.syncs;
        for _ in 0..200 {
            split.frame(Duration::from_millis(2), false, &FrameRequest::default());
            if split.syncs > synced {
                break;
            }
        }
        assert!(split.syncs > synced, "a sync while paused");
        let trained = model_of(split.train.as_mut());
        let sampling = model_of(split.sample.as_mut());
        assert_ne!(
            trained.mlp.params, init.mlp.params,
            "training moved the network"
        );
        assert_eq!(trained.mlp.params, sampling.mlp.params);
        // The app's own request is answered with the training engine's network.
        let asked = model_of(&mut split);
        assert_eq!(asked.mlp.params, trained.mlp.params);
        assert_eq!(split.sampling_label(), Some("CPU"));
    }

    #[test]
    fn a_network_of_another_shape_is_refused() {
        let net = model_of(&mut engine(32));
        assert!(engine(16).load_model(&net).is_err());
        let same = model_of(&mut engine(16));
        assert!(engine(16).load_model(&same).is_ok());
    }
}

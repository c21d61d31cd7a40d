//! The CPU engine off the render thread: a [`CpuEngine`] in a Web Worker (its own wasm
//! instance, `web/worker.js`) or, natively, in a thread of its own, driven by messages.
//!
//! - The page's side is [`RemoteEngine`], an [`Engine`] that forwards the app's requests and
//!   returns, each frame, whatever the worker has reported since the last one. It never
//!   waits for the worker.
//! - The worker's side is [`WorkerCore`]: it trains in chunks of [`CHUNK`] for as long as
//!   training is on, reading the page's messages between chunks; on each frame tick from the
//!   page it runs one frame of the live samplers (sliced by particles), the field, the
//!   learned density and the Fisher metric, and reports back: losses, statuses, particles.
//! - Messages are postcard bytes (f32/f64 exact, NaN included), moved as transferable
//!   `ArrayBuffer`s on the web (no `SharedArrayBuffer`, so any static host works) and over a
//!   channel natively ([`ThreadLink`]); both sides go through the same encoding.
//! - If the worker cannot start or stops (script missing, a panic), the engine carries on
//!   in the page's thread: a local [`CpuEngine`] from the latest network it has, with the
//!   same mixture and samplers, and says so once in a warning.
//!
//! The sampler's animation keeps its meaning (steps per displayed frame): the live samplers
//! advance on the page's ticks, training runs in between at the engine's full rate.

use web_time::{Duration, Instant};

use super::pool::{LoadMeter, Role};
use super::shards::{Helper, Lead, PeerMsg, PeerSend};
use super::{
    settings::net_or_new, CpuEngine, Engine, EngineChoice, EngineError, FrameOutput, FrameRequest,
    LiveSampling, ParticleView, RunsOn, Shard, TrainSettings, WorkerLoad, SLOTS,
};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{ModelFile, ScoreNet};
use crate::sim::sde::Sde;

/// Training time between two looks at the page's messages.
pub const CHUNK: Duration = Duration::from_millis(10);
/// The live samplers' share of the interval between ticks while training (the rest trains).
const SIDE_SHARE_TRAINING: f64 = 0.5;
/// ... and while training is paused.
const SIDE_SHARE_IDLE: f64 = 0.9;
/// Training stops when the page has not ticked for this long (a hidden tab draws no frames;
/// software rasterisers can take seconds per frame, so it is long;
/// as before the worker, training then waits for the page) and resumes at its next tick.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// Bounds of the samplers' time per tick.
const SIDE_MIN: Duration = Duration::from_millis(4);
const SIDE_MAX: Duration = Duration::from_millis(200);

/// A message to the worker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum ToWorker {
    /// Build the engine (always the first message).
    Start(Box<StartMsg>),
    /// [`Engine::set_mixture`].
    SetMixture(GaussianMixture, Sde),
    /// One displayed frame: run the samplers once and report.
    Tick {
        /// Training on.
        train: bool,
        /// Field and density requests.
        req: FrameRequest,
    },
    /// [`Engine::queue_steps`].
    QueueSteps(u32),
    /// [`Engine::set_sampling`].
    SetSampling(usize, LiveSampling),
    /// [`Engine::pause_sampling`].
    PauseSampling(bool),
    /// [`Engine::step_sampling`].
    StepSampling(u32),
    /// [`Engine::restart_sampling`].
    RestartSampling,
    /// [`Engine::request_samples`].
    RequestSamples(usize),
    /// [`Engine::request_model`].
    RequestModel,
    /// [`Engine::load_model`].
    LoadModel(ModelFile),
}

/// [`ToWorker::Start`]'s content.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StartMsg {
    /// Data.
    mixture: GaussianMixture,
    /// SDE in the data's frame.
    sde: Sde,
    /// Network and optimiser.
    settings: TrainSettings,
    /// The network to continue from (built by the page, so start-up errors are its own).
    net: ModelFile,
    /// Its part of a pool's sampling work ([`super::pool`]).
    shard: Shard,
}

fn encode<T: serde::Serialize>(x: &T) -> Vec<u8> {
    // Only plain data: encoding cannot fail.
    postcard::to_allocvec(x).unwrap_or_default()
}

fn net_from(f: ModelFile) -> Result<ScoreNet, String> {
    ScoreNet::with_params(f.config, f.sde, f.params).map_err(|e| e.to_string())
}

/// The worker's side: a [`CpuEngine`] and the page's latest wishes.
pub struct WorkerCore {
    engine: Option<CpuEngine>,
    train: bool,
    req: FrameRequest,
    ticks: u32,
    last_tick: Option<Instant>,
    /// Smoothed interval between the page's ticks (s).
    tick_interval: f64,
    acc: FrameOutput,
    /// Pieces of training steps computed since the last report.
    pieces: u64,
    fatal: Option<String>,
    stale_after: Duration,
    /// Its training steps, split over its helpers if it has any ([`super::shards`]).
    lead: Lead,
    /// This worker helps a lead: its way there and its side.
    to_lead: Option<PeerSend>,
    helper: Helper,
}

impl Default for WorkerCore {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerCore {
    /// Nothing started yet.
    pub fn new() -> Self {
        Self::with_stale_after(STALE_AFTER)
    }

    /// [`Self::new`] with another [`STALE_AFTER`] (tests).
    pub fn with_stale_after(stale_after: Duration) -> Self {
        Self {
            engine: None,
            train: false,
            req: FrameRequest::default(),
            ticks: 0,
            last_tick: None,
            tick_interval: 0.0,
            acc: FrameOutput::default(),
            pieces: 0,
            fatal: None,
            stale_after,
            lead: Lead::default(),
            to_lead: None,
            helper: Helper::default(),
        }
    }

    /// Training is on and the page is still drawing.
    fn training(&self) -> bool {
        self.train
            && self
                .last_tick
                .is_some_and(|t| t.elapsed() < self.stale_after)
    }

    /// A direct way to another worker of the pool, which this one knows as `id`: 0 is the
    /// worker that trains (this one helps it), others are helpers (this one leads them).
    pub fn connect(&mut self, id: usize, send: PeerSend) {
        if id == 0 {
            self.to_lead = Some(send);
        } else {
            self.lead.add_peer(send);
        }
    }

    /// A message from the worker this one knows as `id` ([`Self::connect`]).
    pub fn peer_message(&mut self, id: usize, bytes: &[u8]) {
        if id != 0 {
            self.lead.take(bytes.to_vec());
            return;
        }
        let start = Instant::now();
        match postcard::from_bytes(bytes) {
            Ok(PeerMsg::Job(job)) => {
                if let (Some(reply), Some(send)) = (self.helper.answer(*job), self.to_lead.as_mut())
                {
                    send(reply);
                }
            }
            Ok(_) => {}
            Err(e) => log::warn!("worker: unreadable message from the training worker: {e}"),
        }
        self.acc.timing.train_ms += start.elapsed().as_secs_f64() * 1e3;
    }

    /// Take one message from the page.
    pub fn handle(&mut self, bytes: &[u8]) {
        let msg: ToWorker = match postcard::from_bytes(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.fatal = Some(format!("unreadable message to the worker: {e}"));
                return;
            }
        };
        if let ToWorker::Start(start) = msg {
            let StartMsg {
                mixture,
                sde,
                settings,
                net,
                shard,
            } = *start;
            let made = net_from(net).and_then(|net| {
                CpuEngine::new(&mixture, sde, &settings, Some(net))
                    .map(|e| e.with_shard(shard))
                    .map_err(|e| e.to_string())
            });
            match made {
                Ok(e) => self.engine = Some(e),
                Err(e) => self.fatal = Some(e),
            }
            return;
        }
        let Some(e) = self.engine.as_mut() else {
            return;
        };
        match msg {
            ToWorker::Start(_) => {}
            ToWorker::SetMixture(m, sde) => e.set_mixture(&m, &sde),
            ToWorker::Tick { train, req } => {
                self.train = train;
                self.req = req;
                e.set_flow(req.flow);
                self.ticks += 1;
                let now = Instant::now();
                if let Some(t) = self.last_tick {
                    let dt = now.duration_since(t).as_secs_f64().min(2.0);
                    self.tick_interval = if self.tick_interval == 0.0 {
                        dt
                    } else {
                        0.8 * self.tick_interval + 0.2 * dt
                    };
                }
                self.last_tick = Some(now);
            }
            ToWorker::QueueSteps(k) => e.queue_steps(k),
            ToWorker::SetSampling(i, live) => e.set_sampling(i, &live),
            ToWorker::PauseSampling(p) => e.pause_sampling(p),
            ToWorker::StepSampling(k) => e.step_sampling(k),
            ToWorker::RestartSampling => e.restart_sampling(),
            ToWorker::RequestSamples(i) => e.request_samples(i),
            ToWorker::RequestModel => e.request_model(),
            ToWorker::LoadModel(f) => {
                self.lead.cancel();
                if let Err(why) =
                    net_from(f).and_then(|n| e.load_model(&n).map_err(|x| x.to_string()))
                {
                    log::warn!("worker: cannot load the network: {why}");
                }
            }
        }
    }

    /// Whether there is work without a new message (training, or a tick to answer).
    pub fn busy(&self) -> bool {
        self.fatal.is_none()
            && self.engine.as_ref().is_some_and(|e| {
                let waiting = self.lead.waiting();
                self.ticks > 0 || (e.wants_training(self.training()) && !waiting)
            })
    }

    /// The samplers' time for one tick.
    fn side_budget(&self) -> Duration {
        let share = if self.train {
            SIDE_SHARE_TRAINING
        } else {
            SIDE_SHARE_IDLE
        };
        Duration::from_secs_f64(self.tick_interval * share).clamp(SIDE_MIN, SIDE_MAX)
    }

    /// One chunk of work; returns a report to send when a tick was answered (or the engine
    /// failed).
    pub fn pump(&mut self) -> Option<Vec<u8>> {
        if let Some(f) = self.fatal.take() {
            self.engine = None;
            return Some(encode(&Report {
                fatal: Some(f),
                ..Report::default()
            }));
        }
        let side = self.side_budget();
        let train = self.training();
        let e = self.engine.as_mut()?;
        let mut out = FrameOutput::default();
        if e.wants_training(train) || self.ticks > 0 {
            let lead = (self.lead.helpers() > 0).then_some(&mut self.lead);
            e.train_for_with(CHUNK, train, &mut out, lead);
        }
        self.pieces +=
            std::mem::take(&mut self.helper.pieces) + std::mem::take(&mut self.lead.pieces);
        if let Some(w) = self.lead.warning.take() {
            out.warning = Some(w);
        }
        if self.ticks == 0 {
            merge(&mut self.acc, out);
            return None;
        }
        self.ticks = 0;
        e.side_work(side, &self.req, &mut out);
        merge(&mut self.acc, out);
        let o = std::mem::take(&mut self.acc);
        let particles = std::array::from_fn(|i| match e.particles(i) {
            ParticleView::Cpu(p) => p.to_vec(),
            _ => Vec::new(),
        });
        Some(encode(&Report {
            timing: o.timing,
            steps: o.steps,
            losses: o.losses,
            fisher: o.fisher,
            field: o.field,
            warning: o.warning,
            sampler: o.sampler,
            samples: o.samples,
            model: o.model.map(|n| n.to_file(0)),
            density: o.density,
            flow: o.flow.map(|f| f.to_msg()),
            particles,
            fatal: None,
            pieces: std::mem::take(&mut self.pieces),
        }))
    }
}

/// How the page reaches its worker.
pub trait Link {
    /// Send a message (dropped if the worker is gone).
    fn send(&mut self, msg: Vec<u8>);
    /// The reports that arrived since the last call, oldest first.
    fn receive(&mut self) -> Vec<Vec<u8>>;
    /// Why the worker is gone, if it is.
    fn failed(&mut self) -> Option<String>;
    /// Open a direct link between this worker and `other`'s, in which this one is known as
    /// `me` and the other as `them` ([`WorkerCore::connect`]); false where this platform's
    /// links cannot.
    fn connect(&mut self, me: usize, other: &mut dyn Link, them: usize) -> bool {
        let _ = (me, other, them);
        false
    }
    /// This link as `Any`, for [`Self::connect`] to find its own kind (`None`: cannot connect).
    fn as_any(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}

/// What is needed to start again in the page's thread.
struct Fallback {
    mixture: GaussianMixture,
    sde: Sde,
    settings: TrainSettings,
    net: ScoreNet,
    live: [Option<LiveSampling>; SLOTS],
    paused: bool,
    shard: Shard,
}

enum Inner {
    Remote(Box<dyn Link>),
    Local(Box<CpuEngine>),
}

/// The CPU engine in a worker (page side).
pub struct RemoteEngine {
    inner: Inner,
    /// Where the engine runs ("worker" or "thread").
    place: RunsOn,
    fallback: Fallback,
    /// Why it fell back to the page's thread.
    fell_back: Option<String>,
    particles: [Vec<[f32; 4]>; SLOTS],
    control: super::Control,
    role: Role,
    load: LoadMeter,
    /// Pieces of training steps this worker computed ([`super::shards`]).
    pieces: u64,
}

impl RemoteEngine {
    /// Start the engine behind `link` (`place` names it for the status line). The network is
    /// built here, so a bad setting is refused at once, as with the local engine.
    pub fn new(
        link: Box<dyn Link>,
        place: RunsOn,
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
        net: Option<ScoreNet>,
    ) -> Result<Self, EngineError> {
        let whole = (Role::Both, Shard::WHOLE);
        Self::new_part(link, place, mixture, sde, settings, net, whole)
    }

    /// [`Self::new`] for a worker of a pool that does `role`, on `shard` of the samplers.
    pub fn new_part(
        mut link: Box<dyn Link>,
        place: RunsOn,
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
        net: Option<ScoreNet>,
        (role, shard): (Role, Shard),
    ) -> Result<Self, EngineError> {
        settings
            .validate()
            .map_err(|e| EngineError::Setting(e.to_string()))?;
        let net = net_or_new(net, settings, mixture, sde)?;
        link.send(encode(&ToWorker::Start(Box::new(StartMsg {
            mixture: mixture.clone(),
            sde,
            settings: settings.clone(),
            net: net.to_file(0),
            shard,
        }))));
        Ok(Self {
            inner: Inner::Remote(link),
            place,
            fallback: Fallback {
                mixture: mixture.clone(),
                sde,
                settings: settings.clone(),
                net,
                live: Default::default(),
                paused: false,
                shard,
            },
            fell_back: None,
            particles: Default::default(),
            control: super::Control::default(),
            role,
            load: LoadMeter::default(),
            pieces: 0,
        })
    }

    fn send(&mut self, msg: ToWorker) {
        if let Inner::Remote(link) = &mut self.inner {
            link.send(encode(&msg));
        }
    }

    /// Continue in the page's thread from the latest network known here.
    fn fall_back(&mut self, why: String, out: &mut FrameOutput) {
        log::warn!("CPU engine worker: {why}");
        let f = &self.fallback;
        let made = CpuEngine::new(&f.mixture, f.sde, &f.settings, Some(f.net.clone()))
            .map(|e| e.with_shard(f.shard));
        match made {
            Ok(mut e) => {
                for (i, live) in f.live.iter().enumerate() {
                    if let Some(l) = live {
                        e.set_sampling(i, l);
                    }
                }
                e.pause_sampling(f.paused);
                self.inner = Inner::Local(Box::new(e));
            }
            Err(e) => log::error!("CPU engine: {e}"),
        }
        out.warning = Some(format!(
            "the CPU engine's {} stopped ({why}); it continues in the page's thread",
            self.place
        ));
        self.fell_back = Some(why);
    }

    fn read(&mut self, out: &mut FrameOutput) -> Result<(), String> {
        let Inner::Remote(link) = &mut self.inner else {
            return Ok(());
        };
        for bytes in link.receive() {
            let r: Report = postcard::from_bytes(&bytes)
                .map_err(|e| format!("unreadable report from the worker: {e}"))?;
            if let Some(f) = r.fatal {
                return Err(f);
            }
            let model = match r.model {
                Some(f) => Some(net_from(f)?),
                None => None,
            };
            if let Some(m) = &model {
                self.fallback.net = m.clone();
            }
            let t = &r.timing;
            self.load.add(t.train_ms + t.sample_ms + t.field_ms);
            self.pieces += r.pieces;
            self.particles = r.particles;
            merge(
                out,
                FrameOutput {
                    timing: r.timing,
                    steps: r.steps,
                    losses: r.losses,
                    fisher: r.fisher,
                    field: r.field,
                    warning: r.warning,
                    sampler: r.sampler,
                    samples: r.samples,
                    model,
                    density: r.density,
                    flow: match r.flow {
                        Some(f) => Some(super::flow::FlowReport::from_msg(f, "CPU")?),
                        None => None,
                    },
                },
            );
        }
        match link.failed() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

impl Engine for RemoteEngine {
    fn label(&self) -> &'static str {
        "CPU"
    }

    fn choice(&self) -> EngineChoice {
        EngineChoice::Cpu
    }

    fn runs_on(&self) -> RunsOn {
        match self.inner {
            Inner::Remote(_) => self.place,
            Inner::Local(_) => RunsOn::Page,
        }
    }

    fn fell_back(&self) -> Option<&str> {
        self.fell_back.as_deref()
    }

    fn pool(&self) -> Vec<WorkerLoad> {
        vec![WorkerLoad {
            role: self.role,
            runs_on: self.runs_on(),
            load: self.load.load,
            pieces: self.pieces,
        }]
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde) {
        self.fallback.mixture = mixture.clone();
        self.fallback.sde = *sde;
        match &mut self.inner {
            Inner::Local(e) => e.set_mixture(mixture, sde),
            Inner::Remote(_) => self.send(ToWorker::SetMixture(mixture.clone(), *sde)),
        }
    }

    fn frame(&mut self, budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput {
        if let Inner::Local(e) = &mut self.inner {
            return e.frame(budget, train, req);
        }
        let mut out = FrameOutput::default();
        self.send(ToWorker::Tick { train, req: *req });
        if let Err(why) = self.read(&mut out) {
            self.fall_back(why, &mut out);
        }
        out
    }

    fn particles(&self, slot: usize) -> ParticleView<'_> {
        if let Inner::Local(e) = &self.inner {
            return e.particles(slot);
        }
        match self.particles.get(slot) {
            Some(p) if !p.is_empty() => ParticleView::Cpu(p),
            _ => ParticleView::None,
        }
    }

    fn control(&mut self) -> &mut super::Control {
        match &mut self.inner {
            Inner::Local(e) => e.control(),
            Inner::Remote(_) => &mut self.control,
        }
    }

    fn start_slot(&mut self, i: usize, fresh: bool) -> Result<(), EngineError> {
        match &mut self.inner {
            Inner::Local(e) => e.start_slot(i, fresh),
            Inner::Remote(_) => Ok(()),
        }
    }

    fn queue_steps(&mut self, k: u32) {
        match &mut self.inner {
            Inner::Local(e) => e.queue_steps(k),
            Inner::Remote(_) => self.send(ToWorker::QueueSteps(k)),
        }
    }

    fn set_sampling(&mut self, slot: usize, sampling: &LiveSampling) {
        if let Some(l) = self.fallback.live.get_mut(slot) {
            *l = Some(sampling.clone());
        }
        match &mut self.inner {
            Inner::Local(e) => e.set_sampling(slot, sampling),
            Inner::Remote(_) => self.send(ToWorker::SetSampling(slot, sampling.clone())),
        }
    }

    fn pause_sampling(&mut self, paused: bool) {
        self.fallback.paused = paused;
        match &mut self.inner {
            Inner::Local(e) => e.pause_sampling(paused),
            Inner::Remote(_) => self.send(ToWorker::PauseSampling(paused)),
        }
    }

    fn step_sampling(&mut self, k: u32) {
        match &mut self.inner {
            Inner::Local(e) => e.step_sampling(k),
            Inner::Remote(_) => self.send(ToWorker::StepSampling(k)),
        }
    }

    fn restart_sampling(&mut self) {
        match &mut self.inner {
            Inner::Local(e) => e.restart_sampling(),
            Inner::Remote(_) => self.send(ToWorker::RestartSampling),
        }
    }

    fn request_samples(&mut self, slot: usize) {
        match &mut self.inner {
            Inner::Local(e) => e.request_samples(slot),
            Inner::Remote(_) => self.send(ToWorker::RequestSamples(slot)),
        }
    }

    fn request_model(&mut self) {
        match &mut self.inner {
            Inner::Local(e) => e.request_model(),
            Inner::Remote(_) => self.send(ToWorker::RequestModel),
        }
    }

    fn load_model(&mut self, net: &ScoreNet) -> Result<(), EngineError> {
        if net.config != self.fallback.net.config {
            return Err(EngineError::Setting(
                "the network to load has another shape than this engine's".into(),
            ));
        }
        self.fallback.net = net.clone();
        match &mut self.inner {
            Inner::Local(e) => e.load_model(net),
            Inner::Remote(_) => {
                self.send(ToWorker::LoadModel(net.to_file(0)));
                Ok(())
            }
        }
    }
}

mod link;
mod report;
pub use link::*;
pub use report::*;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

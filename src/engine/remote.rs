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

use super::{
    settings::net_or_new, CpuEngine, Engine, EngineChoice, EngineError, FieldCell, FieldRequest,
    FrameOutput, FrameRequest, FrameTiming, LiveSampling, ParticleView, SamplerStatus, SamplesOut,
    TrainSettings, SLOTS,
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
}

/// What the worker reports after a tick: the [`FrameOutput`]s since the last report,
/// merged, plus the particles.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    timing: FrameTiming,
    steps: Option<u64>,
    losses: Vec<(u64, f64)>,
    fisher: Option<(u64, f64)>,
    field: Option<(FieldRequest, Vec<FieldCell>)>,
    warning: Option<String>,
    sampler: [Option<SamplerStatus>; SLOTS],
    samples: Vec<SamplesOut>,
    model: Option<ModelFile>,
    density: Option<(FieldRequest, Vec<f64>)>,
    /// Each slot's particles as (x, y, x_mean, y_mean).
    particles: [Vec<[f32; 4]>; SLOTS],
    /// The engine could not start or stopped (the page falls back).
    fatal: Option<String>,
}

/// Add `b` (later) to `a`: lists append, latest values win.
pub fn merge(a: &mut FrameOutput, b: FrameOutput) {
    a.timing.train_ms += b.timing.train_ms;
    a.timing.sample_ms += b.timing.sample_ms;
    a.timing.field_ms += b.timing.field_ms;
    a.steps = b.steps.or(a.steps);
    a.losses.extend(b.losses);
    a.fisher = b.fisher.or(a.fisher);
    if b.field.is_some() {
        a.field = b.field;
    }
    a.warning = match (a.warning.take(), b.warning) {
        (Some(x), Some(y)) if x != y => Some(format!("{x}; {y}")),
        (x, y) => y.or(x),
    };
    for (s, n) in a.sampler.iter_mut().zip(b.sampler) {
        if n.is_some() {
            *s = n;
        }
    }
    a.samples.extend(b.samples);
    if b.model.is_some() {
        a.model = b.model;
    }
    if b.density.is_some() {
        a.density = b.density;
    }
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
    fatal: Option<String>,
    stale_after: Duration,
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
            fatal: None,
            stale_after,
        }
    }

    /// Training is on and the page is still drawing.
    fn training(&self) -> bool {
        self.train
            && self
                .last_tick
                .is_some_and(|t| t.elapsed() < self.stale_after)
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
            } = *start;
            let made = net_from(net).and_then(|net| {
                CpuEngine::new(&mixture, sde, &settings, Some(net)).map_err(|e| e.to_string())
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
            && self
                .engine
                .as_ref()
                .is_some_and(|e| self.ticks > 0 || e.wants_training(self.training()))
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
            e.train_for(CHUNK, train, &mut out);
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
            particles,
            fatal: None,
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
}

/// What is needed to start again in the page's thread.
struct Fallback {
    mixture: GaussianMixture,
    sde: Sde,
    settings: TrainSettings,
    net: ScoreNet,
    live: [Option<LiveSampling>; SLOTS],
    paused: bool,
}

enum Inner {
    Remote(Box<dyn Link>),
    Local(Box<CpuEngine>),
}

/// The CPU engine in a worker (page side).
pub struct RemoteEngine {
    inner: Inner,
    /// Where the engine runs ("worker" or "thread").
    place: &'static str,
    fallback: Fallback,
    /// Why it fell back to the page's thread.
    fell_back: Option<String>,
    particles: [Vec<[f32; 4]>; SLOTS],
    control: super::Control,
}

impl RemoteEngine {
    /// Start the engine behind `link` (`place` names it for the status line). The network is
    /// built here, so a bad setting is refused at once, as with the local engine.
    pub fn new(
        mut link: Box<dyn Link>,
        place: &'static str,
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
        net: Option<ScoreNet>,
    ) -> Result<Self, EngineError> {
        settings.validate().map_err(EngineError::Setting)?;
        let net = net_or_new(net, settings, mixture, sde)?;
        link.send(encode(&ToWorker::Start(Box::new(StartMsg {
            mixture: mixture.clone(),
            sde,
            settings: settings.clone(),
            net: net.to_file(0),
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
            },
            fell_back: None,
            particles: Default::default(),
            control: super::Control::default(),
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
        let made = CpuEngine::new(&f.mixture, f.sde, &f.settings, Some(f.net.clone()));
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

    fn runs_on(&self) -> &'static str {
        match self.inner {
            Inner::Remote(_) => self.place,
            Inner::Local(_) => "page",
        }
    }

    fn fell_back(&self) -> Option<&str> {
        self.fell_back.as_deref()
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

/// A worker that could not start: the engine falls back at its first frame and says why.
pub struct FailedLink(pub String);

impl Link for FailedLink {
    fn send(&mut self, _msg: Vec<u8>) {}

    fn receive(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    fn failed(&mut self) -> Option<String> {
        Some(self.0.clone())
    }
}

/// The link to a new worker for this platform and what to call it: a Web Worker in the
/// browser, a thread natively.
pub fn offload_link() -> (Box<dyn Link>, &'static str) {
    #[cfg(target_arch = "wasm32")]
    let (made, place) = (crate::web::WebLink::start(), "worker");
    #[cfg(not(target_arch = "wasm32"))]
    let (made, place) = (ThreadLink::spawn(), "thread");
    match made {
        Ok(l) => (Box::new(l), place),
        Err(e) => (Box::new(FailedLink(e)), place),
    }
}

/// Natively: the worker is a thread, reached over channels.
#[cfg(not(target_arch = "wasm32"))]
pub struct ThreadLink {
    to: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    from: std::sync::mpsc::Receiver<Vec<u8>>,
    gone: bool,
}

#[cfg(not(target_arch = "wasm32"))]
impl ThreadLink {
    /// Start the worker thread.
    pub fn spawn() -> Result<Self, String> {
        use std::sync::mpsc::{channel, RecvError, TryRecvError};
        let (to, rx) = channel::<Vec<u8>>();
        let (tx, from) = channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("scorelab-cpu-engine".into())
            .spawn(move || {
                let mut core = WorkerCore::new();
                loop {
                    // Idle: wait for the page; busy: look at the messages between chunks.
                    let first = if core.busy() {
                        match rx.try_recv() {
                            Ok(m) => Some(m),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Disconnected) => return,
                        }
                    } else {
                        match rx.recv() {
                            Ok(m) => Some(m),
                            Err(RecvError) => return,
                        }
                    };
                    if let Some(m) = first {
                        core.handle(&m);
                        while let Ok(m) = rx.try_recv() {
                            core.handle(&m);
                        }
                    }
                    if let Some(report) = core.pump() {
                        if tx.send(report).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        Ok(Self {
            to: Some(to),
            from,
            gone: false,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Link for ThreadLink {
    fn send(&mut self, msg: Vec<u8>) {
        if let Some(to) = &self.to {
            if to.send(msg).is_err() {
                self.gone = true;
            }
        }
    }

    fn receive(&mut self) -> Vec<Vec<u8>> {
        use std::sync::mpsc::TryRecvError;
        let mut got = Vec::new();
        loop {
            match self.from.try_recv() {
                Ok(m) => got.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.gone = true;
                    break;
                }
            }
        }
        got
    }

    fn failed(&mut self) -> Option<String> {
        self.gone.then(|| "the engine thread stopped".to_string())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for ThreadLink {
    fn drop(&mut self) {
        // Dropping the sender ends the thread's loop at its next look at the channel.
        self.to = None;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::sim::mixture::{ComponentSpec, MixtureSpec};
    use crate::sim::samplers::SamplerKind;
    use crate::sim::sde::SdeKind;

    /// An off-centre, anisotropic two-component mixture.
    fn mixture() -> GaussianMixture {
        GaussianMixture::from_spec(&MixtureSpec {
            components: vec![
                ComponentSpec {
                    weight: 0.3,
                    mean: [6.0, -3.0],
                    cov: [[0.2, 0.05], [0.05, 0.1]],
                },
                ComponentSpec {
                    weight: 0.7,
                    mean: [8.5, -1.0],
                    cov: [[0.3, 0.0], [0.0, 0.6]],
                },
            ],
        })
        .expect("valid")
    }

    fn settings() -> TrainSettings {
        TrainSettings {
            width: 16,
            depth: 2,
            batch: 64,
            lr: 3e-3,
        }
    }

    fn live() -> LiveSampling {
        LiveSampling {
            n: 300,
            levels: 5,
            steps: 4,
            repeat: false,
            kind: SamplerKind::AnnealedLangevin,
            ..LiveSampling::small()
        }
    }

    /// Frames of `e` (5 ms apart, at most 60 s) until `done` says so; the outputs merged.
    fn frames_until(
        e: &mut dyn Engine,
        train: bool,
        mut done: impl FnMut(&FrameOutput) -> bool,
    ) -> FrameOutput {
        let mut all = FrameOutput::default();
        let start = Instant::now();
        loop {
            let out = e.frame(Duration::from_millis(5), train, &FrameRequest::default());
            merge(&mut all, out);
            if done(&all) {
                return all;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no answer from the engine in 60 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// k queued training steps, then the drawing network and slot 0's finished run.
    fn run(e: &mut dyn Engine, k: u32) -> (ScoreNet, Vec<crate::sim::Vec2>, u64) {
        e.queue_steps(k);
        let out = frames_until(e, false, |o| o.steps == Some(u64::from(k)));
        assert_eq!(out.losses.len(), k as usize);
        e.request_model();
        let out = frames_until(e, false, |o| o.model.is_some());
        let net = out.model.expect("asked for");
        e.set_sampling(0, &live());
        let out = frames_until(e, false, |o| o.samples.iter().any(|s| s.done));
        let s = out.samples.into_iter().find(|s| s.done).expect("a run");
        let status = out.sampler[0].expect("status");
        assert!(status.done && status.n == 300);
        (net, s.points, status.nfe)
    }

    #[test]
    fn the_engine_in_a_thread_gives_the_same_network_and_samples() {
        let m = mixture();
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        let mut local = CpuEngine::new(&m, sde, &settings(), None).expect("starts");
        let link = ThreadLink::spawn().expect("a thread");
        let mut remote =
            RemoteEngine::new(Box::new(link), "thread", &m, sde, &settings(), None).expect("ok");
        assert_eq!(remote.runs_on(), "thread");
        let (net_l, pts_l, nfe_l) = run(&mut local, 40);
        let (net_r, pts_r, nfe_r) = run(&mut remote, 40);
        assert_eq!(net_l.mlp.params, net_r.mlp.params, "the same 40 steps");
        assert_eq!(pts_l, pts_r, "the same run of the live sampler");
        assert_eq!(nfe_l, nfe_r);
        assert!(remote.fell_back().is_none());
        assert!(matches!(remote.particles(0), ParticleView::Cpu(p) if p.len() == 300));
    }

    #[test]
    fn the_thread_trains_while_the_page_is_not_looking() {
        let m = mixture();
        let sde = Sde::for_mixture(SdeKind::Ve, &m);
        let link = ThreadLink::spawn().expect("a thread");
        let mut remote =
            RemoteEngine::new(Box::new(link), "thread", &m, sde, &settings(), None).expect("ok");
        // One tick turns training on; the next frame, 300 ms later, finds steps taken in between.
        let first = remote.frame(Duration::ZERO, true, &FrameRequest::default());
        std::thread::sleep(Duration::from_millis(300));
        let out = frames_until(&mut remote, true, |o| o.steps.is_some_and(|s| s > 0));
        let steps = out.steps.unwrap_or(0) + first.steps.unwrap_or(0);
        assert!(steps > 0, "the worker trained between frames");
        // The mixture follows an edit (the engine keeps training in the new frame).
        let moved = GaussianMixture::from_spec(&MixtureSpec {
            components: vec![ComponentSpec {
                weight: 1.0,
                mean: [-4.0, 2.0],
                cov: [[0.5, 0.0], [0.0, 0.5]],
            }],
        })
        .expect("valid");
        remote.set_mixture(&moved, &Sde::for_mixture(SdeKind::Ve, &moved));
        let before = steps;
        let out = frames_until(&mut remote, true, |o| o.steps.is_some_and(|s| s > before));
        assert!(out.losses.iter().all(|(_, l)| l.is_finite()));
    }

    #[test]
    fn training_waits_while_the_page_draws_no_frames() {
        let m = mixture();
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        let net = net_or_new(None, &settings(), &m, sde).expect("net");
        let mut core = WorkerCore::with_stale_after(Duration::from_millis(200));
        core.handle(&encode(&ToWorker::Start(Box::new(StartMsg {
            mixture: m.clone(),
            sde,
            settings: settings(),
            net: net.to_file(0),
        }))));
        core.handle(&encode(&ToWorker::Tick {
            train: true,
            req: FrameRequest::default(),
        }));
        let steps = |core: &mut WorkerCore| {
            let mut last = 0;
            while core.busy() {
                if let Some(r) = core.pump() {
                    let r: Report = postcard::from_bytes(&r).expect("report");
                    last = r.steps.unwrap_or(last);
                }
            }
            last
        };
        // Trains until the page has been silent for 200 ms, then goes idle.
        let t0 = Instant::now();
        let _ = steps(&mut core);
        assert!(t0.elapsed() >= Duration::from_millis(200));
        assert!(!core.busy(), "idle without ticks");
        // The next tick resumes training and reports the steps taken.
        core.handle(&encode(&ToWorker::Tick {
            train: true,
            req: FrameRequest::default(),
        }));
        let r: Report = postcard::from_bytes(&core.pump().expect("a report")).expect("report");
        assert!(r.steps.unwrap_or(0) > 0 && !r.losses.is_empty());
        assert!(core.busy(), "training again");
    }

    #[test]
    fn a_worker_that_cannot_start_falls_back_to_the_page() {
        let m = mixture();
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        let link = FailedLink("no workers here".into());
        let mut e =
            RemoteEngine::new(Box::new(link), "worker", &m, sde, &settings(), None).expect("ok");
        e.set_sampling(0, &live());
        let out = e.frame(Duration::from_millis(5), true, &FrameRequest::default());
        let warning = out.warning.expect("says so");
        assert!(warning.contains("no workers here"), "{warning}");
        assert_eq!(e.runs_on(), "page");
        assert_eq!(e.fell_back(), Some("no workers here"));
        // ... and carries on: it trains and runs the sampler it was given.
        let out = frames_until(&mut e, true, |o| {
            o.steps.is_some_and(|s| s > 3) && o.sampler[0].is_some()
        });
        assert!(out.losses.iter().all(|(_, l)| l.is_finite()));
    }

    #[test]
    fn reports_round_trip_exactly() {
        let r = Report {
            losses: vec![(1, f64::NAN), (2, 0.25)],
            particles: [vec![[1.0, f32::INFINITY, -0.0, 3.5]], Vec::new()],
            warning: Some("w".into()),
            ..Report::default()
        };
        let back: Report = postcard::from_bytes(&encode(&r)).expect("decodes");
        assert!(back.losses[0].1.is_nan());
        assert_eq!(back.losses[1], (2, 0.25));
        assert_eq!(back.particles[0][0][1], f32::INFINITY);
        assert_eq!(back.warning.as_deref(), Some("w"));
        let m = mixture();
        let msg = ToWorker::SetMixture(m.clone(), Sde::for_mixture(SdeKind::Subvp, &m));
        match postcard::from_bytes::<ToWorker>(&encode(&msg)).expect("decodes") {
            ToWorker::SetMixture(back, _) => assert_eq!(back, m),
            other => panic!("{other:?}"),
        }
    }
}

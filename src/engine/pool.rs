//! All the cores (issue 32): the CPU engine as a pool of workers (Web Workers in the page,
//! threads natively), each its own [`super::remote::RemoteEngine`].
//!
//! - One worker trains (and computes the Fisher metric); the others run the live samplers,
//!   the field and the learned density, each on its [`Shard`] of the particles, cells and
//!   points, with the training worker's network loaded every [`super::split::SYNC_EVERY`]
//!   ([`super::split::SplitEngine`] does the training/sampling half; [`ShardEngine`] the
//!   sampling half). With `shards` ([`super::shards`]) the sampling workers also compute
//!   their pieces of each training step for the training worker, over direct links.
//! - Shards split runs by particle; every random draw is keyed by the particle's index in
//!   the whole run (`sim::samplers::Sampler::new_shard`), so a run's samples are bit for
//!   bit the same on 1, 2 or 3 workers (tested). Samplers whose particles meet
//!   (predictor–corrector's mean score norm, RK45's shared step) run whole on the first
//!   sampling worker.
//! - A pool of one is today's single worker, which trains and samples.

use std::ops::Range;

use web_time::{Duration, Instant};

use super::remote::{Link, RemoteEngine};
use super::split::SplitEngine;
use super::{
    Control, Engine, EngineChoice, EngineError, FieldCell, FieldRequest, FrameOutput, FrameRequest,
    LiveSampling, ParticleView, RunsOn, SamplerStatus, SamplesOut, TrainSettings, SLOTS,
};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::Sde;
use crate::sim::Vec2;

/// The most workers a page starts (each is a wasm instance with its own memory).
pub const MAX_WORKERS: usize = 4;

/// A worker's part of the pool's sampling work: `index` of `count` equal, contiguous parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Which part.
    pub index: usize,
    /// Parts in all.
    pub count: usize,
}

impl Shard {
    /// All of it (no pool).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// This part of `0..n`.
    pub fn range(self, n: usize) -> Range<usize> {
        let c = self.count.max(1);
        let i = self.index.min(c);
        (n * i / c)..(n * (i + 1).min(c) / c)
    }

    /// This part of a run of `n` particles of `kind`: samplers whose particles meet run
    /// whole on part 0.
    pub fn particles(self, kind: SamplerKind, n: usize) -> Range<usize> {
        match (kind.couples_particles(), self.index) {
            (true, 0) => 0..n,
            (true, _) => 0..0,
            (false, _) => self.range(n),
        }
    }

    /// This part of `items`.
    pub fn part_of<T>(self, mut items: Vec<T>) -> Vec<T> {
        let r = self.range(items.len());
        items.truncate(r.end);
        items.drain(..r.start);
        items
    }
}

/// What a worker of the pool does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Trains and runs the samplers (a pool of one).
    Both,
    /// Trains.
    Trains,
    /// Runs its shard of the samplers, the field and the density.
    Samples,
    /// Trains, each step's pieces split over the pool ([`super::shards`]).
    Leads,
    /// Runs its shard of the samplers and computes its pieces of each training step.
    Helps,
}

impl Role {
    /// As `state()` and the frame table write it.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Both => "trains and samples",
            Role::Trains => "trains",
            Role::Samples => "samples",
            Role::Leads => "trains, each step split over the pool",
            Role::Helps => "samples and computes its share of each training step",
        }
    }
}

/// One worker's role and how busy it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkerLoad {
    /// What it does.
    pub role: Role,
    /// Where it runs (a worker that stopped continues on the page's thread).
    pub runs_on: RunsOn,
    /// Fraction of the last second it spent working (its own clock).
    pub load: f64,
    /// Pieces of training steps it computed since it started ([`super::shards`]).
    pub pieces: u64,
}

/// Busy time over wall time, renewed every second.
#[derive(Clone, Copy, Debug)]
pub struct LoadMeter {
    busy_ms: f64,
    since: Instant,
    /// The last full second's fraction.
    pub load: f64,
}

impl Default for LoadMeter {
    fn default() -> Self {
        Self {
            busy_ms: 0.0,
            since: Instant::now(),
            load: 0.0,
        }
    }
}

impl LoadMeter {
    /// Count `ms` of work.
    pub fn add(&mut self, ms: f64) {
        self.busy_ms += ms;
        let wall = self.since.elapsed();
        if wall >= Duration::from_secs(1) {
            self.load = (self.busy_ms / (wall.as_secs_f64() * 1e3)).clamp(0.0, 1.0);
            self.busy_ms = 0.0;
            self.since = Instant::now();
        }
    }
}

/// Start a pool of `workers` (≥ 2) behind links from `link`: one trains, the others sample;
/// with `shards`, the others also compute their pieces of each training step, over direct
/// links to the training worker ([`super::shards`]; a link that cannot connect keeps that
/// worker to sampling).
pub fn start(
    (workers, shards): (usize, bool),
    mut link: impl FnMut() -> (Box<dyn Link>, RunsOn),
    mixture: &GaussianMixture,
    sde: Sde,
    settings: &TrainSettings,
    net: Option<ScoreNet>,
) -> Result<Box<dyn Engine>, EngineError> {
    let net = super::settings::net_or_new(net, settings, mixture, sde)?;
    let count = workers.max(2) - 1;
    let mut lead = link();
    let mut helpers: Vec<_> = (0..count).map(|_| link()).collect();
    let (train_role, sample_role) = if shards {
        // The lead knows helper k as k + 1; every helper knows the lead as 0.
        for (k, (h, _)) in helpers.iter_mut().enumerate() {
            lead.0.connect(0, h.as_mut(), k + 1);
        }
        (Role::Leads, Role::Helps)
    } else {
        (Role::Trains, Role::Samples)
    };
    let member = |(l, place): (Box<dyn Link>, RunsOn), role, shard| {
        RemoteEngine::new_part(
            l,
            place,
            mixture,
            sde,
            settings,
            Some(net.clone()),
            (role, shard),
        )
    };
    let train = member(lead, train_role, Shard::WHOLE)?;
    let samplers = helpers
        .into_iter()
        .enumerate()
        .map(|(index, l)| member(l, sample_role, Shard { index, count }))
        .collect::<Result<Vec<_>, _>>()?;
    let sample = ShardEngine::new(
        samplers
            .into_iter()
            .map(|e| Box::new(e) as Box<dyn Engine>)
            .collect(),
    );
    Ok(Box::new(SplitEngine::pool(
        Box::new(train),
        Box::new(sample),
    )))
}

/// A run's samples gathered from the shards.
struct Gather {
    run: u32,
    parts: Vec<Option<Vec<Vec2>>>,
    done: Vec<bool>,
}

impl Gather {
    fn put(&mut self, k: usize, s: &SamplesOut) {
        if s.run < self.run {
            return;
        }
        if s.run > self.run {
            // A later run (repeat) supersedes what was gathered.
            self.run = s.run;
            self.parts.iter_mut().for_each(|p| *p = None);
        }
        if let Some(p) = self.parts.get_mut(k) {
            *p = Some(s.points.clone());
            self.done[k] = s.done;
        }
    }

    /// The concatenated points once every expected shard has given its part.
    fn complete(&self, expected: &[bool]) -> Option<(bool, Vec<Vec2>)> {
        let mut points = Vec::new();
        let mut done = true;
        for (k, want) in expected.iter().enumerate() {
            if !*want {
                continue;
            }
            points.extend_from_slice(self.parts.get(k)?.as_ref()?);
            done &= self.done[k];
        }
        Some((done, points))
    }

    fn new(count: usize) -> Self {
        Self {
            run: 0,
            parts: vec![None; count],
            done: vec![false; count],
        }
    }
}

/// One slot's bookkeeping across the shards.
#[derive(Default)]
struct SlotGather {
    /// Each shard's latest status.
    status: Vec<Option<SamplerStatus>>,
    /// An answer to `request_samples` being gathered.
    request: Option<Gather>,
    /// End-of-run samples being gathered.
    finals: Option<Gather>,
    /// The last run whose end-of-run samples went out.
    final_sent: Option<u32>,
}

/// Several sampling engines as one, each on its [`Shard`] (see the module docs).
pub struct ShardEngine {
    members: Vec<Box<dyn Engine>>,
    control: Control,
    particles: [Vec<[f32; 4]>; SLOTS],
    slots: [SlotGather; SLOTS],
    fields: Vec<Option<(FieldRequest, Vec<FieldCell>)>>,
    densities: Vec<Option<(FieldRequest, Vec<f64>)>>,
}

/// The requests every shard answered, concatenated in shard order (`None` until they agree).
fn gathered<T: Clone>(
    parts: &mut [Option<(FieldRequest, Vec<T>)>],
) -> Option<(FieldRequest, Vec<T>)> {
    let req = parts.first()?.as_ref()?.0;
    if !parts
        .iter()
        .all(|p| p.as_ref().is_some_and(|(r, _)| *r == req))
    {
        return None;
    }
    let mut all = Vec::new();
    for p in parts.iter_mut() {
        all.extend(p.take()?.1);
    }
    Some((req, all))
}

impl ShardEngine {
    /// `members[k]` runs shard k of `members.len()`.
    pub fn new(members: Vec<Box<dyn Engine>>) -> Self {
        let count = members.len();
        let mut e = Self {
            members,
            control: Control::default(),
            particles: Default::default(),
            slots: Default::default(),
            fields: vec![None; count],
            densities: vec![None; count],
        };
        for i in 0..SLOTS {
            e.reset_slot(i);
        }
        e
    }

    fn reset_slot(&mut self, i: usize) {
        let count = self.members.len();
        self.slots[i] = SlotGather {
            status: vec![None; count],
            ..SlotGather::default()
        };
    }

    /// Which shards hold particles of slot `i`'s runs.
    fn expected(&self, i: usize) -> Vec<bool> {
        let live = &self.control.slots[i].live;
        let count = self.members.len();
        (0..count)
            .map(|index| {
                !Shard { index, count }
                    .particles(live.kind, live.n)
                    .is_empty()
            })
            .collect()
    }

    /// The slot's status over the shards of its latest run.
    fn status(&self, i: usize) -> Option<SamplerStatus> {
        let expected = self.expected(i);
        let all: Vec<SamplerStatus> = self.slots[i].status.iter().flatten().copied().collect();
        let run = all.iter().map(|s| s.run).max()?;
        let current: Vec<&SamplerStatus> = all.iter().filter(|s| s.run == run).collect();
        let slowest = **current.iter().min_by_key(|s| s.step)?;
        let n: usize = current.iter().map(|s| s.n).sum();
        let complete = current.len() == expected.iter().filter(|e| **e).count();
        let accept = slowest.accept.map(|_| {
            current
                .iter()
                .map(|s| s.accept.unwrap_or(0.0) * s.n as f64)
                .sum::<f64>()
                / n.max(1) as f64
        });
        Some(SamplerStatus {
            n,
            done: complete && current.iter().all(|s| s.done),
            nfe: current.iter().map(|s| s.nfe).min().unwrap_or(0),
            accept,
            ..slowest
        })
    }

    fn take_samples(&mut self, k: usize, s: SamplesOut) {
        let count = self.members.len();
        let g = &mut self.slots[s.slot];
        if s.done {
            g.finals
                .get_or_insert_with(|| Gather::new(count))
                .put(k, &s);
        }
        if let Some(r) = g.request.as_mut() {
            r.put(k, &s);
        }
    }

    fn emit_samples(&mut self, i: usize, out: &mut FrameOutput) {
        let expected = self.expected(i);
        let g = &mut self.slots[i];
        let finished = g.finals.as_ref().and_then(|f| {
            let (_, points) = f.complete(&expected)?;
            (g.final_sent != Some(f.run)).then_some((f.run, points))
        });
        if let Some((run, points)) = finished {
            g.final_sent = Some(run);
            g.finals = None;
            g.request = None;
            out.samples.push(SamplesOut {
                slot: i,
                done: true,
                run,
                points,
            });
            return;
        }
        if let Some((done, points)) = g.request.as_ref().and_then(|r| r.complete(&expected)) {
            let run = g.request.take().map_or(0, |r| r.run);
            out.samples.push(SamplesOut {
                slot: i,
                done,
                run,
                points,
            });
        }
    }
}

impl Engine for ShardEngine {
    fn label(&self) -> &'static str {
        "CPU"
    }

    fn choice(&self) -> EngineChoice {
        EngineChoice::Cpu
    }

    fn runs_on(&self) -> RunsOn {
        self.members.first().map_or(RunsOn::Page, |m| m.runs_on())
    }

    fn fell_back(&self) -> Option<&str> {
        self.members.iter().find_map(|m| m.fell_back())
    }

    fn pool(&self) -> Vec<WorkerLoad> {
        self.members.iter().flat_map(|m| m.pool()).collect()
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde) {
        for m in &mut self.members {
            m.set_mixture(mixture, sde);
        }
    }

    fn frame(&mut self, budget: Duration, _train: bool, req: &FrameRequest) -> FrameOutput {
        let mut out = FrameOutput::default();
        let mut reported = [false; SLOTS];
        for k in 0..self.members.len() {
            let o = self.members[k].frame(budget, false, req);
            // The shards work side by side: the pool's time is the slowest one's.
            out.timing.sample_ms = out.timing.sample_ms.max(o.timing.sample_ms);
            out.timing.field_ms = out.timing.field_ms.max(o.timing.field_ms);
            for (i, st) in o.sampler.into_iter().enumerate() {
                if st.is_some() {
                    self.slots[i].status[k] = st;
                    reported[i] = true;
                }
            }
            for s in o.samples {
                if s.slot < SLOTS {
                    self.take_samples(k, s);
                }
            }
            if o.field.is_some() {
                self.fields[k] = o.field;
            }
            if o.density.is_some() {
                self.densities[k] = o.density;
            }
            if k == 0 {
                out.model = o.model;
            }
            out.warning = match (out.warning.take(), o.warning) {
                (Some(a), Some(b)) if a != b => Some(format!("{a}; {b}")),
                (a, b) => a.or(b),
            };
        }
        for (i, r) in reported.into_iter().enumerate() {
            if r {
                out.sampler[i] = self.status(i);
            }
            self.emit_samples(i, &mut out);
            let p = &mut self.particles[i];
            p.clear();
            for m in &self.members {
                if let ParticleView::Cpu(part) = m.particles(i) {
                    p.extend_from_slice(part);
                }
            }
        }
        out.field = gathered(&mut self.fields);
        out.density = gathered(&mut self.densities);
        out
    }

    fn particles(&self, slot: usize) -> ParticleView<'_> {
        match self.particles.get(slot) {
            Some(p) if !p.is_empty() => ParticleView::Cpu(p),
            _ => ParticleView::None,
        }
    }

    fn control(&mut self) -> &mut Control {
        &mut self.control
    }

    fn start_slot(&mut self, _i: usize, _fresh: bool) -> Result<(), EngineError> {
        Ok(())
    }

    fn load_model(&mut self, net: &ScoreNet) -> Result<(), EngineError> {
        for m in &mut self.members {
            m.load_model(net)?;
        }
        Ok(())
    }

    fn set_sampling(&mut self, slot: usize, sampling: &LiveSampling) {
        let Some(s) = self.control.slots.get_mut(slot) else {
            return;
        };
        s.live = sampling.clone();
        self.reset_slot(slot);
        for m in &mut self.members {
            m.set_sampling(slot, sampling);
        }
    }

    fn pause_sampling(&mut self, paused: bool) {
        self.control.sampling_paused = paused;
        for m in &mut self.members {
            m.pause_sampling(paused);
        }
    }

    fn step_sampling(&mut self, k: u32) {
        for m in &mut self.members {
            m.step_sampling(k);
        }
    }

    fn restart_sampling(&mut self) {
        for i in 0..SLOTS {
            self.reset_slot(i);
        }
        for m in &mut self.members {
            m.restart_sampling();
        }
    }

    fn request_samples(&mut self, slot: usize) {
        if slot >= SLOTS {
            return;
        }
        let count = self.members.len();
        let g = &mut self.slots[slot];
        g.request = Some(Gather::new(count));
        for m in &mut self.members {
            m.request_samples(slot);
        }
    }

    fn request_model(&mut self) {
        if let Some(m) = self.members.first_mut() {
            m.request_model();
        }
    }

    fn queue_steps(&mut self, _k: u32) {}
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

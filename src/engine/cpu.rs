//! The `sim` engine: WebGL2-only browsers, or when the GPU engine cannot start. Training
//! runs until the frame's budget is spent; the live samplers, the learned density (a few
//! PF-ODE solves per frame) and the field share a small side budget.

use web_time::{Duration, Instant};

use super::flow::{FlowJob, FlowRun, FLOW_SHARE};
use super::settings::{net_or_new, train_config};
use super::{
    ms_since, start_if_due, Control, Engine, EngineChoice, EngineError, FieldRequest, FrameOutput,
    FrameRequest, ParticleView, SamplerStatus, SamplesOut, Shard, TrainSettings, BASE_BUDGET,
    DENSITY_EVERY, DENSITY_STEPS, FIELD_EVERY, FISHER_EVERY, FISHER_POINTS, SLOTS,
};
use crate::sim::field::cpu_field;
use crate::sim::guidance::GuidedScore;
use crate::sim::likelihood::log_likelihood_rk4_batch;
use crate::sim::metrics::{fisher_levels, mean, relative_fisher};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::Sampler;
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::Sde;
use crate::sim::train::Trainer;
use crate::sim::Vec2;

/// The `sim` engine (WebGL2-only browsers, or when the GPU engine cannot start).
pub struct CpuEngine {
    trainer: Trainer,
    steps: u64,
    last_fisher_step: u64,
    control: Control,
    slots: [CpuSlot; SLOTS],
    density: Option<DensityJob>,
    last_density: Option<(Instant, FieldRequest)>,
    last_field: Option<(Instant, FieldRequest)>,
    /// Its part of a worker pool's particles, field cells and density points
    /// ([`super::pool`]); [`Shard::WHOLE`] alone.
    shard: Shard,
    /// Flow matching beside the score network, while the flow view asks for it.
    flow: Option<FlowRun>,
}

/// One live sampler slot's sampler and particles (its settings are in [`Control`]).
#[derive(Default)]
struct CpuSlot {
    sampler: Option<Sampler>,
    particles: Vec<[f32; 4]>,
}

/// A learned-density grid computed a few points per frame.
struct DensityJob {
    req: FieldRequest,
    net: ScoreNet,
    points: Vec<Vec2>,
    out: Vec<f64>,
}

/// CPU time per frame for the live samplers and for the density heatmap.
const CPU_SIDE_BUDGET: Duration = Duration::from_millis(4);
/// Particles per slice of a live sampler step (`Sampler::advance`): ≈ 70 MFLOP at width
/// 128, a few milliseconds in the page.
const SAMPLER_SLICE: usize = 1024;
/// Learned-density points per batched PF-ODE solve (≈ 14 MFLOP each at width 128). Measured
/// natively for 384 points at width 128: one point at a time 0.54 s, batches of 4 0.42 s, of
/// 16 0.19 s; 8 keeps a frame's minimum density work near one old single-point solve.
const DENSITY_BATCH: usize = 8;
/// CPU time per frame for the live samplers while training is paused.
const CPU_SAMPLER_BUDGET_IDLE: Duration = Duration::from_millis(30);

impl CpuEngine {
    /// A CPU engine.
    pub fn new(
        mixture: &GaussianMixture,
        sde: Sde,
        settings: &TrainSettings,
        net: Option<ScoreNet>,
    ) -> Result<Self, EngineError> {
        let net = net_or_new(net, settings, mixture, sde)?;
        Ok(Self {
            trainer: Trainer::new(net, mixture.clone(), train_config(settings)),
            steps: 0,
            last_fisher_step: 0,
            control: Control::default(),
            slots: Default::default(),
            density: None,
            last_density: None,
            last_field: None,
            shard: Shard::WHOLE,
            flow: None,
        })
    }

    /// This engine does part `shard` of a pool's sampling work ([`super::pool`]).
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    fn start_sampler(&mut self, i: usize) -> Result<(), EngineError> {
        self.control.begin_run(i);
        let slot = &mut self.slots[i];
        slot.sampler = None;
        let c = &self.control.slots[i];
        if !c.live.enabled {
            slot.particles.clear();
            return Ok(());
        }
        c.live.validate().map_err(EngineError::Setting)?;
        let mixture = &self.trainer.mixture;
        if let Some(g) = c.live.guide {
            if g.component >= mixture.len() {
                return Err(EngineError::Setting(format!(
                    "guidance toward component {} but the mixture has {}",
                    g.component + 1,
                    mixture.len()
                )));
            }
        }
        let part = self.shard.particles(c.live.kind, c.live.n);
        if part.is_empty() {
            // Another worker of the pool runs all of this run.
            slot.particles.clear();
            return Ok(());
        }
        let cfg = c.live.config(mixture, c.run);
        let mut s = Sampler::new_shard(cfg, self.trainer.net.sde, c.live.n, part)?;
        if c.live.is_mala() {
            s = s.with_mala(ExactScore::new(mixture.clone(), self.trainer.net.sde));
        }
        slot.sampler = Some(s);
        Ok(())
    }

    fn run_samplers(&mut self, budget: Duration, out: &mut FrameOutput) {
        let start = Instant::now();
        let queued = std::mem::take(&mut self.control.queued_sampler_steps);
        let mut net: Option<ScoreNet> = None;
        for i in 0..SLOTS {
            let started = self.slots[i].sampler.is_some();
            start_if_due(self, i, started, out);
            let k = self.control.steps_this_frame(i, queued);
            let c = &mut self.control.slots[i];
            let slot = &mut self.slots[i];
            let Some(s) = slot.sampler.as_mut() else {
                continue;
            };
            let mixture = &self.trainer.mixture;
            let exact = ExactScore::new(mixture.clone(), self.trainer.net.sde);
            let base: &dyn ScoreModel = if c.live.exact {
                &exact
            } else {
                net.get_or_insert_with(|| self.trainer.ema_net())
            };
            let guided;
            let score: &dyn ScoreModel = match c.live.guide {
                Some(g) if g.component < mixture.len() => {
                    guided = GuidedScore {
                        base,
                        exact: exact.clone(),
                        component: g.component,
                        gamma: g.gamma,
                    };
                    &guided
                }
                _ => base,
            };
            // Steps in slices of particles, so that a big step (10⁵ particles) spreads over
            // frames instead of stalling one; a started step is always finished.
            let mut completed = 0;
            while !s.done() && (completed < k || s.mid_step()) {
                if s.advance(score, SAMPLER_SLICE) {
                    completed += 1;
                }
                if start.elapsed() >= budget {
                    break;
                }
            }
            if s.done() && c.finished_at.is_none() {
                c.finished_at = Some(Instant::now());
            }
            slot.particles.clear();
            slot.particles.extend(
                s.x.iter()
                    .zip(&s.x_mean)
                    .map(|(x, m)| [x.x as f32, x.y as f32, m.x as f32, m.y as f32]),
            );
            out.sampler[i] = Some(SamplerStatus {
                run: c.run,
                step: s.steps_done(),
                total: s.total_steps(),
                nfe: s.nfe(),
                t: s.current_t(),
                n: s.x.len(),
                kind: c.live.kind,
                done: s.done(),
                accept: s.is_mala().then(|| {
                    let (a, p) = s.acceptance();
                    a as f64 / p.max(1) as f64
                }),
            });
            let final_now = s.done() && !c.final_sent;
            if c.samples_wanted || final_now {
                c.samples_wanted = false;
                if s.done() {
                    c.final_sent = true;
                }
                out.samples.push(SamplesOut {
                    slot: i,
                    done: s.done(),
                    run: c.run,
                    points: s.samples().to_vec(),
                });
            }
        }
    }

    fn run_density(&mut self, req: Option<FieldRequest>, out: &mut FrameOutput) {
        if let Some(r) = req {
            let due = self
                .last_density
                .as_ref()
                .is_none_or(|(at, last)| *last != r || at.elapsed() >= DENSITY_EVERY);
            let busy_same = self.density.as_ref().is_some_and(|j| j.req == r);
            if due && !busy_same {
                self.last_density = Some((Instant::now(), r));
                self.density = Some(DensityJob {
                    req: r,
                    net: self.trainer.ema_net(),
                    points: self.shard.part_of(r.points()),
                    out: Vec::new(),
                });
            }
        }
        let Some(job) = self.density.as_mut() else {
            return;
        };
        let start = Instant::now();
        let t0 = job.req.t.clamp(1e-3, 0.99);
        // A few points per batched solve (blocked Jacobian-vector products), until the side
        // budget is spent; the first batch always runs.
        while job.out.len() < job.points.len() {
            let from = job.out.len();
            let to = (from + DENSITY_BATCH).min(job.points.len());
            job.out.extend(log_likelihood_rk4_batch(
                &job.net,
                &job.net.sde,
                &job.points[from..to],
                t0,
                DENSITY_STEPS as usize,
            ));
            if start.elapsed() >= CPU_SIDE_BUDGET {
                break;
            }
        }
        if job.out.len() == job.points.len() {
            if let Some(job) = self.density.take() {
                self.last_density = Some((Instant::now(), job.req));
                out.density = Some((job.req, job.out));
            }
        }
    }

    /// Train a velocity network beside the score network (`Some`, the flow view's request),
    /// or drop it (`None`).
    pub fn set_flow(&mut self, job: Option<FlowJob>) {
        match job {
            None => self.flow = None,
            Some(j) => {
                if self.flow.is_none() {
                    match FlowRun::new(&self.trainer.mixture) {
                        Ok(f) => self.flow = Some(f),
                        Err(e) => log::warn!("flow matching: {e}"),
                    }
                }
                if let Some(f) = self.flow.as_mut() {
                    f.follow(j);
                }
            }
        }
    }

    /// Flow matching's share of `budget` (while training is on), and its report.
    fn train_flow(&mut self, budget: Duration, train: bool, out: &mut FrameOutput) {
        let Some(f) = self.flow.as_mut() else {
            return;
        };
        if train {
            let start = Instant::now();
            if let Some(w) = f.train_for(budget.mul_f64(FLOW_SHARE)) {
                out.warning = Some(w);
            }
            out.timing.train_ms += ms_since(start);
        }
        if let Some(r) = f.report("CPU") {
            out.flow = Some(r);
        }
    }

    /// Training for about `budget` (`train` false: only the queued steps); adds the losses,
    /// the step count, the training time and an asked-for model to `out`. Flow matching,
    /// when asked for, takes its share ([`FLOW_SHARE`]) first.
    pub fn train_for(&mut self, budget: Duration, train: bool, out: &mut FrameOutput) {
        self.train_for_with(budget, train, out, None);
    }

    /// [`Self::train_for`], each step split over a pool's workers by `lead` when given
    /// ([`super::shards`]); returns early while the helpers' shares are out.
    pub fn train_for_with(
        &mut self,
        budget: Duration,
        train: bool,
        out: &mut FrameOutput,
        mut lead: Option<&mut super::shards::Lead>,
    ) {
        let flow_start = Instant::now();
        self.train_flow(budget, train, out);
        let budget = budget.saturating_sub(flow_start.elapsed());
        let start = Instant::now();
        let mut left = if train {
            u32::MAX
        } else {
            self.control.queued_steps
        };
        while left > 0 && start.elapsed() < budget {
            let step = match lead.as_deref_mut() {
                Some(l) => match l.step(&mut self.trainer) {
                    std::task::Poll::Ready(r) => r,
                    std::task::Poll::Pending => break,
                },
                None => self.trainer.step(),
            };
            left -= 1;
            if !train {
                self.control.queued_steps -= 1;
            }
            match step {
                Ok(l) => {
                    self.steps += 1;
                    out.losses.push((self.steps, l));
                }
                Err(e) => {
                    out.warning = Some(self.trainer.recover(&e));
                    break;
                }
            }
        }
        out.steps = Some(self.steps);
        out.timing.train_ms += ms_since(start);
        if std::mem::take(&mut self.control.model_wanted) {
            out.model = Some(self.trainer.ema_net());
        }
    }

    /// Whether training has work now (`train`, or queued Step-button steps).
    pub fn wants_training(&self, train: bool) -> bool {
        train || self.control.queued_steps > 0
    }

    /// One frame of everything but training: the live samplers within `side`, a few
    /// learned-density points, the field and the Fisher metric when due.
    pub fn side_work(&mut self, side: Duration, req: &FrameRequest, out: &mut FrameOutput) {
        let t1 = Instant::now();
        self.run_samplers(side, out);
        let t2 = Instant::now();
        out.timing.sample_ms += (t2 - t1).as_secs_f64() * 1e3;
        self.run_density(req.density, out);
        let need_fisher = self.steps >= self.last_fisher_step + FISHER_EVERY
            || (self.last_fisher_step == 0 && self.steps > 0);
        let field = req.field.filter(|r| {
            self.last_field
                .as_ref()
                .is_none_or(|(at, last)| last != r || at.elapsed() >= FIELD_EVERY)
        });
        if let Some(r) = field {
            self.last_field = Some((Instant::now(), r));
        }
        if field.is_some() || need_fisher {
            let net = self.trainer.ema_net();
            if need_fisher {
                let f = relative_fisher(
                    &net,
                    &self.trainer.mixture,
                    &net.sde,
                    &fisher_levels(),
                    FISHER_POINTS,
                    1,
                );
                out.fisher = Some((self.steps, mean(&f)));
                self.last_fisher_step = self.steps;
            }
            if let Some(req) = field {
                let exact = ExactScore::new(self.trainer.mixture.clone(), net.sde);
                let cells = cpu_field(&net, &exact, &req, self.shard.range(req.len()));
                out.field = Some((req, cells));
            }
        }
        out.timing.field_ms += ms_since(t2);
    }
}

impl Engine for CpuEngine {
    fn label(&self) -> &'static str {
        "CPU"
    }

    fn choice(&self) -> EngineChoice {
        EngineChoice::Cpu
    }

    fn set_mixture(&mut self, mixture: &GaussianMixture, sde: &Sde) {
        if let Some(f) = self.flow.as_mut() {
            f.set_mixture(mixture);
        }
        self.trainer.mixture = mixture.clone();
        self.trainer.net.sde = *sde;
        for slot in &mut self.slots {
            if let Some(s) = &mut slot.sampler {
                s.set_sde(*sde);
            }
        }
    }

    fn particles(&self, slot: usize) -> ParticleView<'_> {
        match self.slots.get(slot) {
            Some(s) if !s.particles.is_empty() => ParticleView::Cpu(&s.particles),
            _ => ParticleView::None,
        }
    }

    fn control(&mut self) -> &mut Control {
        &mut self.control
    }

    fn start_slot(&mut self, i: usize, _fresh: bool) -> Result<(), EngineError> {
        self.start_sampler(i)
    }

    fn load_model(&mut self, net: &ScoreNet) -> Result<(), EngineError> {
        if net.config != self.trainer.net.config || !self.trainer.load_weights(&net.mlp.params) {
            return Err(EngineError::Setting(
                "the network to load has another shape than this engine's".into(),
            ));
        }
        // A density grid in progress finishes with the network it started with (its own
        // copy): dropping it here would restart it at every sync of a split engine.
        Ok(())
    }

    fn frame(&mut self, budget: Duration, train: bool, req: &FrameRequest) -> FrameOutput {
        let mut out = FrameOutput::default();
        self.set_flow(req.flow);
        self.train_for(budget, train, &mut out);
        // What the app gives beyond the base budget (idle time between slow frames) goes to
        // the samplers as well as to training: with slices of particles, a side budget of a
        // few ms would take many slow frames per step.
        let extra = budget.saturating_sub(BASE_BUDGET);
        let side = if train {
            CPU_SIDE_BUDGET + extra
        } else {
            CPU_SAMPLER_BUDGET_IDLE.max(budget)
        };
        self.side_work(side, req, &mut out);
        out
    }
}

//! Samplers over a [`ScoreModel`], step by step (so the app can animate them), each
//! counting network evaluations (NFE = batched score calls; every particle is evaluated
//! once per call). Single-particle updates are free functions named after their GPU twins
//! (`langevin_step`, `reverse_sde_step`, `ancestral_step`, `pf_ode_step`), and return
//! `(x, x_mean)`; the last step of every sampler outputs the noise-free `x_mean`.
//!
//! - Langevin: x ← x + (α/2) s(x, t_end) + √α z at one small noise level (Song & Ermon 2019, §3).
//! - Annealed Langevin (NCSN Alg. 1): levels t_1 = 1 > … > t_L = t_min, T steps each with
//!   α_i = ε · s(t_i)² / s(t_L)², where t_min is the time whose VE-equivalent noise s/α is the
//!   SDE's σ_min ([`Sde::t_of_sigma_min`]): the smallest level is a real noise scale relative
//!   to the data on every SDE (sub-VP's s(t) is ≈ 1e-4 d at t = 1e-3, so a t_min of 1e-3 made
//!   the first levels' steps 10⁸ ε and every particle diverged).
//! - Reverse SDE, Euler–Maruyama (score_sde Eq. 6): x ← x + [f − g² s] Δt + g √|Δt| z, Δt < 0.
//! - Ancestral / reverse diffusion (score_sde App. E/F): VE: x + (σ_i² − σ_{i+1}²) s + √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²) z;
//!   VP (in the SDE's frame, `sim::sde`): m + ((x − m) + β_i d² s)/√(1 − β_i) + d √β_i z with
//!   β_i = 1 − (α_i/α_{i+1})²; sub-VP: x − f Δt + g² |Δt| s + g √|Δt| z.
//! - Predictor–corrector (score_sde Alg. 2–4): Langevin corrector with step 2 a (snr ‖z‖/‖s‖)²,
//!   then the ancestral predictor.
//! - Probability-flow ODE (score_sde Eq. 13): dx/dt = f − ½ g² s; Euler, Heun, RK4, adaptive RK45.

use std::ops::Range;

use crate::sim::mala::{mala_step, MalaState};
use crate::sim::rng::{stream, CounterRng};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

mod config;
pub mod fewstep;
mod paths;
mod rk45;
mod steps;
pub mod sweep;

pub use config::*;
pub use paths::{pf_ode_paths, prior_grid};

pub use rk45::{OdeRhs, Rk45};
pub use steps::{
    ancestral_step, corrector_step_size, finite_mean_norm, langevin_step, pf_ode_step,
    pf_ode_velocity, reverse_sde_step,
};

// ---------------------------------------------------------------- the sampler

/// A running sampler: particles plus the schedule position.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// Settings.
    pub config: SamplerConfig,
    /// The SDE whose time axis the schedule uses.
    pub sde: Sde,
    /// Current (noisy) particles.
    pub x: Vec<Vec2>,
    /// Noise-free means from the last step.
    pub x_mean: Vec<Vec2>,
    step: usize,
    nfe: u64,
    rng: CounterRng,
    scores: Vec<Vec2>,
    tmp: Vec<Vec2>,
    k_acc: Vec<Vec2>,
    rk45: Option<Rk45>,
    cursor: Cursor,
    mala: Option<ExactScore>,
    accepted: u64,
    proposed: u64,
    /// SDE / ODE samplers: the N + 1 grid times ([`Sde::sampling_time_grid`]).
    times: Vec<f64>,
    /// Annealed Langevin: the L level times ([`Sde::annealing_levels`]).
    levels: Vec<f64>,
    /// Few-step samplers: each step's coefficients ([`fewstep::few_schedule`]); their scaled
    /// states' scratch is `u` and their denoised memory `k_acc`.
    few: Vec<fewstep::FewCoefs>,
    u: Vec<Vec2>,
    /// The global index of particle 0 ([`Sampler::new_shard`]): every random draw is keyed by
    /// the global index, so shards of a run give the whole run's particles.
    first: u32,
}

/// Where a step split over several calls ([`Sampler::advance`]) stands: the particles
/// `0..next` of the current pass are done; predictor–corrector first evaluates every
/// particle's corrector score (its step size needs the mean score norm), then corrects them
/// all and runs the predictor pass.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    corrected: bool,
    next: usize,
}

impl Sampler {
    /// Particles drawn from the configured start, ready to step.
    pub fn new(config: SamplerConfig, sde: Sde, n_particles: usize) -> Result<Self, SamplerError> {
        Self::new_shard(config, sde, n_particles, 0..n_particles)
    }

    /// Particles `range` of a run of `total` particles: their draws are the whole run's (by
    /// global index), so the shards of a run, concatenated, are bit for bit the run of
    /// [`Self::new`] — for the samplers whose particles never meet
    /// ([`SamplerKind::couples_particles`] is false; the others are refused).
    pub fn new_shard(
        mut config: SamplerConfig,
        sde: Sde,
        total: usize,
        range: Range<usize>,
    ) -> Result<Self, SamplerError> {
        config.validate()?;
        if config.t_end == AUTO_T_END {
            config.t_end = sde.sampling_t_end();
            if config.t_end >= config.t_start {
                return Err(SamplerError::Bad(format!(
                    "the start time must be above the SDE's end t = {:.2e}",
                    config.t_end
                )));
            }
        }
        let few = few_schedule_of(&config, &sde);
        let times = match config.kind {
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin | SamplerKind::OdeRk45 => {
                Vec::new()
            }
            k if k.is_few_step() => few_times(&few),
            _ => sde.sampling_time_grid(config.t_start, config.t_end, config.n_steps),
        };
        let levels = if config.kind == SamplerKind::AnnealedLangevin {
            sde.annealing_levels(config.t_start, config.n_levels)
        } else {
            Vec::new()
        };
        if total == 0 || total > 10_000_000 {
            return Err(SamplerError::Bad(
                "particle count must be in 1..=10^7".into(),
            ));
        }
        if range.is_empty() || range.end > total {
            return Err(SamplerError::Bad(format!(
                "particles {range:?} are not a part of a run of {total}"
            )));
        }
        if range.len() < total && config.kind.couples_particles() {
            return Err(SamplerError::Bad(format!(
                "{} couples its particles: it runs whole, not in shards",
                config.kind.name()
            )));
        }
        let (n_particles, first) = (range.len(), range.start as u32);
        let rng = CounterRng::new(config.seed);
        // The prior at the start time (the SDE's own prior at t = 1), times the prior scale.
        let prior_std = config.prior_scale
            * if config.t_start == 1.0 {
                sde.prior_std()
            } else {
                sde.marginal(config.t_start).1
            };
        let x: Vec<Vec2> = (first..first + n_particles as u32)
            .map(|i| match config.init {
                Init::Prior => sde.center() + prior_std * rng.normal2(0, i, stream::INIT),
                Init::Uniform { lo, hi } => {
                    let u = rng.uniform4(0, i, stream::INIT);
                    Vec2::new(
                        lo[0] + (hi[0] - lo[0]) * u[0],
                        lo[1] + (hi[1] - lo[1]) * u[1],
                    )
                }
            })
            .collect();
        let rk45 = (config.kind == SamplerKind::OdeRk45).then(|| {
            Rk45::new(
                config.t_start,
                x.iter().flat_map(|p| [p.x, p.y]).collect(),
                config.t_end,
                config.rtol,
                config.atol,
            )
        });
        Ok(Self {
            sde,
            x_mean: x.clone(),
            x,
            step: 0,
            nfe: 0,
            rng,
            scores: vec![Vec2::zeros(); n_particles],
            tmp: vec![Vec2::zeros(); n_particles],
            k_acc: vec![Vec2::zeros(); n_particles],
            rk45,
            cursor: Cursor::default(),
            config,
            mala: None,
            accepted: 0,
            proposed: 0,
            times,
            levels,
            u: vec![Vec2::zeros(); if few.is_empty() { 0 } else { n_particles }],
            few,
            first,
        })
    }

    /// Metropolis-adjust the Langevin family (MALA, `sim::mala`) against the exact p_t of
    /// `exact` at each step's noise level: the proposal is the Langevin step with the exact
    /// score (MALA needs the log-density, which the network does not give), accepted with
    /// the Metropolis–Hastings probability; the accept draw is word 2 of the step's noise
    /// hash. Other samplers ignore it.
    pub fn with_mala(mut self, exact: ExactScore) -> Self {
        if matches!(
            self.config.kind,
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin
        ) {
            self.mala = Some(exact);
        }
        self
    }

    /// Move a running sampler to `sde` (the mixture was dragged: a new frame and σ_min): its
    /// remaining grid and levels follow the new SDE, as [`Sampler::new`] would build them.
    pub fn set_sde(&mut self, sde: Sde) {
        self.sde = sde;
        if self.config.kind.is_few_step() {
            self.few = few_schedule_of(&self.config, &sde);
            self.times = few_times(&self.few);
        } else if !self.times.is_empty() {
            self.times =
                sde.sampling_time_grid(self.config.t_start, self.config.t_end, self.config.n_steps);
        }
        if !self.levels.is_empty() {
            self.levels = sde.annealing_levels(self.config.t_start, self.config.n_levels);
        }
    }

    /// Whether the steps are Metropolis-adjusted.
    pub fn is_mala(&self) -> bool {
        self.mala.is_some()
    }

    /// (accepted, proposed) Metropolis moves so far (0, 0 without MALA).
    pub fn acceptance(&self) -> (u64, u64) {
        (self.accepted, self.proposed)
    }

    /// Network evaluations so far (batched calls over all particles).
    pub fn nfe(&self) -> u64 {
        self.nfe
    }

    /// Total number of steps (RK45: unknown in advance, reported as 0).
    pub fn total_steps(&self) -> usize {
        match self.config.kind {
            SamplerKind::AnnealedLangevin => self.config.n_steps * self.config.n_levels,
            SamplerKind::OdeRk45 => 0,
            _ => self.config.n_steps,
        }
    }

    /// Steps taken.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Whether the schedule is complete.
    pub fn done(&self) -> bool {
        match &self.rk45 {
            Some(r) => r.done(),
            None => self.step >= self.total_steps(),
        }
    }

    /// The time grid point i of the N-step SDE/ODE schedule ([`Sde::sampling_time_grid`]:
    /// from t_start to t_end, geometric in the noise level down to the narrowest
    /// component's scale).
    fn grid(&self, i: usize) -> f64 {
        self.times
            .get(i.min(self.times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(self.config.t_end)
    }

    /// Annealed-Langevin level times ([`Sde::annealing_levels`]): geometric in the
    /// VE-equivalent noise σ_e from s(t_start) down to σ_min on every SDE.
    pub fn level_time(&self, level: usize) -> f64 {
        self.levels
            .get(level.min(self.levels.len().saturating_sub(1)))
            .copied()
            .unwrap_or(self.config.t_end)
    }

    /// The current time (or noise level) of the schedule, for display.
    pub fn current_t(&self) -> f64 {
        match self.config.kind {
            SamplerKind::Langevin => self.config.t_end,
            SamplerKind::AnnealedLangevin => {
                self.level_time((self.step / self.config.n_steps).min(self.config.n_levels - 1))
            }
            SamplerKind::OdeRk45 => self.rk45.as_ref().map_or(self.config.t_start, |r| r.t),
            _ => self.grid(self.step.min(self.config.n_steps)),
        }
    }

    /// The samples: the noise-free means once done (the current particles before that).
    pub fn samples(&self) -> &[Vec2] {
        if self.done() {
            &self.x_mean
        } else {
            &self.x
        }
    }

    /// The score at particles `r` into `scores[r]`.
    fn eval_range(&mut self, score: &dyn ScoreModel, t: f64, r: Range<usize>) {
        score.score_batch(&self.x[r.clone()], t, &mut self.scores[r]);
    }

    /// Apply a stochastic single-particle step `(x, score, z) -> (x, x_mean)` to particles
    /// `r`, with z drawn from the counter RNG at (step, particle, STEP).
    fn update_range(
        &mut self,
        r: Range<usize>,
        step_fn: impl Fn(Vec2, Vec2, Vec2) -> (Vec2, Vec2),
    ) {
        let (rng, i, first) = (self.rng, self.step as u32, self.first);
        let xs = self.x[r.clone()]
            .iter_mut()
            .zip(&mut self.x_mean[r.clone()]);
        let scores = &self.scores[r.clone()];
        for (p, ((x, m), s)) in r.zip(xs.zip(scores)) {
            let (nx, nm) = step_fn(*x, *s, rng.normal2(i, first + p as u32, stream::STEP));
            *x = nx;
            *m = nm;
        }
    }

    /// The schedule of step `i`: (t, t_next, α). Langevin family: t is the noise level and α the
    /// step size; SDE/ODE samplers: the step goes from t to t_next; for predictor–corrector α
    /// is the corrector's coefficient a (1 for VE, (α(t)/α(t_next))² otherwise). The GPU
    /// sampler uploads exactly these values, so both engines share one schedule.
    pub fn schedule_at(&self, i: usize) -> (f64, f64, f64) {
        let sde = &self.sde;
        match self.config.kind {
            SamplerKind::Langevin => (self.config.t_end, self.config.t_end, self.config.alpha_last),
            SamplerKind::AnnealedLangevin => {
                let t = self.level_time(i / self.config.n_steps);
                let s_l = sde.marginal(self.level_time(self.config.n_levels - 1)).1;
                let s_i = sde.marginal(t).1;
                (t, t, self.config.alpha_last * (s_i / s_l).powi(2))
            }
            _ => {
                let (t, tn) = (self.grid(i), self.grid(i + 1));
                let a = match sde.kind {
                    SdeKind::Ve => 1.0,
                    _ => (sde.marginal(t).0 / sde.marginal(tn).0).powi(2),
                };
                (t, tn, a)
            }
        }
    }

    /// The few-step samplers' coefficients of step `i` (None for the other samplers), which the
    /// GPU sampler uploads with [`Self::schedule_at`]'s.
    pub fn few_coefs(&self, i: usize) -> Option<fewstep::FewCoefs> {
        self.few.get(i).copied()
    }

    /// Advance one step (RK45: one accepted adaptive step). No-op when done.
    pub fn step(&mut self, score: &dyn ScoreModel) {
        while !self.advance(score, usize::MAX) {}
    }

    /// Advance the current step over at most `max` more particles; true when the step is
    /// complete (or the schedule done). Every particle still takes every step with the same
    /// noise, so a step split into slices gives the same particles as [`Self::step`] (tested);
    /// the app slices big steps over frames so that no frame waits for a whole step. RK45's
    /// adaptive step is shared by all particles and runs whole.
    pub fn advance(&mut self, score: &dyn ScoreModel, max: usize) -> bool {
        if self.done() {
            return true;
        }
        let sde = self.sde;
        let n = self.x.len();
        let kind = self.config.kind;
        let r = self.cursor.next..self.cursor.next.saturating_add(max.max(1)).min(n);
        let (t, tn, a) = self.schedule_at(self.step);
        if kind == SamplerKind::Pc && !self.cursor.corrected {
            self.eval_range(score, t, r.clone());
            self.cursor.next = r.end;
            if r.end == n {
                self.nfe += 1;
                self.correct(a);
                self.cursor = Cursor {
                    corrected: true,
                    next: 0,
                };
            }
            return false;
        }
        let evals = match kind {
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin if self.mala.is_some() => {
                self.mala_range(t, a, r.clone());
                1
            }
            SamplerKind::Langevin | SamplerKind::AnnealedLangevin => {
                self.eval_range(score, t, r.clone());
                self.update_range(r.clone(), |x, s, z| langevin_step(x, s, a, z));
                1
            }
            SamplerKind::ReverseSde => {
                self.eval_range(score, t, r.clone());
                self.update_range(r.clone(), |x, s, z| {
                    reverse_sde_step(&sde, x, s, t, tn - t, z)
                });
                1
            }
            SamplerKind::Ancestral | SamplerKind::Pc => {
                self.eval_range(score, t, r.clone());
                self.update_range(r.clone(), |x, s, z| ancestral_step(&sde, x, s, t, tn, z));
                1
            }
            SamplerKind::OdeEuler | SamplerKind::OdeHeun | SamplerKind::OdeRk4 => {
                self.ode_fixed_range(score, t, tn, r.clone())
            }
            SamplerKind::OdeRk45 => {
                self.rk45_step(score);
                self.step += 1;
                return true;
            }
            SamplerKind::Ddim | SamplerKind::EdmHeun | SamplerKind::DpmSolver => {
                let c = self.few[self.step];
                fewstep::fewstep_range(
                    &c,
                    &sde,
                    score,
                    &self.rng,
                    (self.step as u32, self.first as usize + r.start),
                    &mut self.x[r.clone()],
                    &mut self.x_mean[r.clone()],
                    &mut self.k_acc[r.clone()],
                    fewstep::FewScratch {
                        points: &mut self.tmp[r.clone()],
                        scores: &mut self.scores[r.clone()],
                        u: &mut self.u[r.clone()],
                    },
                )
            }
        };
        self.cursor.next = r.end;
        if r.end < n {
            return false;
        }
        self.nfe += evals;
        self.cursor = Cursor::default();
        self.step += 1;
        true
    }

    /// One MALA step of particles `r` at noise level t with step `h` (x_mean = x: a
    /// Metropolis chain has no noise-free mean).
    fn mala_range(&mut self, t: f64, h: f64, r: Range<usize>) {
        let Some(exact) = &self.mala else {
            return;
        };
        let target = exact.at(t);
        let (rng, i) = (self.rng, self.step as u32);
        for p in r {
            let (z, u) = rng.normal2_uniform(i, self.first + p as u32, stream::STEP);
            let cur = MalaState::at(&target, self.x[p]);
            let (next, ok) = mala_step(&target, &cur, h, z, u);
            self.x[p] = next.x;
            self.x_mean[p] = next.x;
            self.proposed += 1;
            self.accepted += u64::from(ok);
        }
    }

    /// Whether a step has been started by [`Self::advance`] and not finished.
    pub fn mid_step(&self) -> bool {
        self.cursor.next > 0 || self.cursor.corrected
    }

    /// One accepted adaptive RK45 step over all particles.
    fn rk45_step(&mut self, score: &dyn ScoreModel) {
        let Some(mut rk) = self.rk45.take() else {
            // Only reachable if a config were changed to RK45 after construction.
            return;
        };
        let sde = self.sde;
        let n = self.x.len();
        let mut xs = vec![Vec2::zeros(); n];
        let mut ss = vec![Vec2::zeros(); n];
        let before = rk.nfev;
        rk.step(&mut |t, y, dy| {
            for (p, v) in xs.iter_mut().enumerate() {
                *v = Vec2::new(y[2 * p], y[2 * p + 1]);
            }
            score.score_batch(&xs, t, &mut ss);
            for p in 0..n {
                let v = pf_ode_velocity(&sde, xs[p], ss[p], t);
                dy[2 * p] = v.x;
                dy[2 * p + 1] = v.y;
            }
        });
        self.nfe += rk.nfev - before;
        for (p, x) in self.x.iter_mut().enumerate() {
            *x = Vec2::new(rk.y[2 * p], rk.y[2 * p + 1]);
        }
        self.x_mean.clone_from(&self.x);
        self.rk45 = Some(rk);
    }

    /// Langevin corrector (score_sde `LangevinCorrector`, one step) over every particle, with
    /// the corrector scores already in `scores`.
    fn correct(&mut self, a: f64) {
        let i = self.step as u32;
        for (p, z) in self.tmp.iter_mut().enumerate() {
            *z = self
                .rng
                .normal2(i, self.first + p as u32, stream::CORRECTOR);
        }
        let noise_norm = finite_mean_norm(&self.tmp);
        let score_norm = finite_mean_norm(&self.scores);
        let eps = corrector_step_size(self.config.snr, a, noise_norm, score_norm);
        for ((x, s), z) in self.x.iter_mut().zip(&self.scores).zip(&self.tmp) {
            // x + ε s + √(2ε) z is langevin_step with α = 2ε.
            *x = langevin_step(*x, *s, 2.0 * eps, *z).0;
        }
    }

    /// A fixed PF-ODE step (Euler, Heun or RK4) of particles `r`; returns the network
    /// evaluations per particle.
    fn ode_fixed_range(&mut self, score: &dyn ScoreModel, t: f64, tn: f64, r: Range<usize>) -> u64 {
        let sde = self.sde;
        let dt = tn - t;
        let kind = self.config.kind;
        self.eval_range(score, t, r.clone());
        if kind == SamplerKind::OdeEuler {
            for (x, s) in self.x[r.clone()].iter_mut().zip(&self.scores[r.clone()]) {
                *x = pf_ode_step(&sde, *x, *s, t, dt);
            }
            self.x_mean[r.clone()].clone_from_slice(&self.x[r]);
            return 1;
        }
        // k1 into k_acc (weighted sum), stage points into tmp.
        let (stages, weights): (&[(f64, f64)], &[f64]) = if kind == SamplerKind::OdeHeun {
            (&[(1.0, 1.0)], &[0.5, 0.5])
        } else {
            (
                &[(0.5, 0.5), (0.5, 0.5), (1.0, 1.0)],
                &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
            )
        };
        let x0 = self.x[r.clone()].to_vec();
        let mut k_prev: Vec<Vec2> = x0
            .iter()
            .zip(&self.scores[r.clone()])
            .map(|(x, s)| pf_ode_velocity(&sde, *x, *s, t))
            .collect();
        for (acc, k) in self.k_acc[r.clone()].iter_mut().zip(&k_prev) {
            *acc = weights[0] * k;
        }
        for (si, &(c_t, a)) in stages.iter().enumerate() {
            let ts = t + c_t * dt;
            for ((tmp, x), k) in self.tmp[r.clone()].iter_mut().zip(&x0).zip(&k_prev) {
                *tmp = x + a * dt * k;
            }
            score.score_batch(&self.tmp[r.clone()], ts, &mut self.scores[r.clone()]);
            for (j, k) in k_prev.iter_mut().enumerate() {
                let p = r.start + j;
                *k = pf_ode_velocity(&sde, self.tmp[p], self.scores[p], ts);
                self.k_acc[p] += weights[si + 1] * *k;
            }
        }
        for ((x, x0), k) in self.x[r.clone()]
            .iter_mut()
            .zip(&x0)
            .zip(&self.k_acc[r.clone()])
        {
            *x = x0 + dt * k;
        }
        self.x_mean[r.clone()].clone_from_slice(&self.x[r]);
        1 + stages.len() as u64
    }

    /// Run to the end.
    pub fn run(&mut self, score: &dyn ScoreModel) {
        while !self.done() {
            self.step(score);
        }
    }
}

/// The few-step schedule of `config` on `sde` (empty for the other samplers).
fn few_schedule_of(config: &SamplerConfig, sde: &Sde) -> Vec<fewstep::FewCoefs> {
    fewstep::FewStep::of(config.kind, config.eta, config.churn).map_or_else(Vec::new, |f| {
        fewstep::few_schedule(f, sde, config.t_start, config.t_end, config.n_steps)
    })
}

/// The N + 1 times of a few-step schedule.
fn few_times(few: &[fewstep::FewCoefs]) -> Vec<f64> {
    few.iter()
        .map(|c| c.t)
        .chain(few.last().map(|c| c.t_next))
        .collect()
}

/// Run a sampler from scratch and return (samples, NFE).
pub fn sample(
    config: SamplerConfig,
    sde: Sde,
    n_particles: usize,
    score: &dyn ScoreModel,
) -> Result<(Vec<Vec2>, u64), SamplerError> {
    let mut s = Sampler::new(config, sde, n_particles)?;
    s.run(score);
    Ok((s.samples().to_vec(), s.nfe()))
}

#[cfg(test)]
mod tests;

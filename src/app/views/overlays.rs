//! The overlays drawn over the live canvas: probability-flow ODE paths, the probe particle
//! (paths both ways, log-likelihood) and inpainting (with its histogram against the analytic
//! conditional). What is on comes from the [`State`] ([`Overlays::sync`]); the panels that set
//! it are in `app::panels`.
//!
//! Data flow: the engine hands over a CPU snapshot of the drawing network every couple of
//! seconds ([`Overlays::set_model`]); paths, the probe and inpainting run `sim` on that
//! snapshot (or on the exact score), a few milliseconds per frame, and are drawn as overlays.

use eframe::egui::{self, Color32, Pos2, Stroke};
use serde::Serialize;
use web_time::{Duration, Instant};

use super::{Frame, Side, View};
use crate::app::canvas::Plot;
use crate::sim::guidance::{InpaintMethod, Inpainter};
use crate::sim::likelihood::{log_likelihood, LikelihoodConfig};
use crate::sim::metrics::{ks_critical_001, ks_statistic};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::{pf_ode_paths, prior_grid};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::{Sde, SAMPLE_T_EPS};
use crate::sim::Vec2;
use crate::state::command::{self as api, Command};
use crate::state::js::{Answer, Refused};
use crate::state::{InpaintSpec, State};

/// How often the CPU snapshot of the network is refreshed while it is needed.
const MODEL_EVERY: Duration = Duration::from_millis(2000);
/// Least CPU time per frame for inpainting (more where the main thread has idle time).
const INPAINT_BUDGET: Duration = Duration::from_millis(8);
/// Start points per side of the PF-ODE path grid.
const PATH_GRID: usize = 7;
/// RK4 steps of a drawn path.
const PATH_STEPS: usize = 60;
/// The conditional-vs-marginal pivot time is the shown t, kept inside this range (at t → 0
/// both paths start at x₀; at t = 1 the shared point is prior noise).
const COND_T_MIN: f64 = 0.05;
/// Upper end of the pivot's range.
const COND_T_MAX: f64 = 0.95;
/// Points per component of the score-error measure under the difference arrows.
const SCORE_ERROR_POINTS: usize = 500;
/// The fixed noise z of the conditional path (a unit-length draw, so x_t is a typical point).
const COND_Z: [f64; 2] = [0.8, 0.6];

/// Overlays drawn on top of everything but the handles.
#[derive(Clone, Debug, Default)]
pub struct CanvasExtras {
    /// Polylines in data space: (points, colour, width).
    pub curves: Vec<(Vec<Vec2>, Color32, f32)>,
    /// Dots: (position, colour, radius in points).
    pub points: Vec<(Vec2, Color32, f32)>,
    /// A vertical line x₁ = c.
    pub vline: Option<(f64, Color32)>,
    /// Text next to a data point.
    pub labels: Vec<(Vec2, String, Color32)>,
}

impl CanvasExtras {
    /// Draw them onto the plot.
    pub fn paint(&self, p: &Plot) {
        let (style, painter, to) = (&p.style, p.painter, p.to_screen);
        if let Some((c, color)) = self.vline {
            let x = to.screen_from_data(Vec2::new(c, 0.0)).x;
            painter.line_segment(
                [Pos2::new(x, p.rect.top()), Pos2::new(x, p.rect.bottom())],
                Stroke::new(1.5 * style.line, color),
            );
        }
        for (pts, color, width) in &self.curves {
            let line: Vec<Pos2> = pts.iter().map(|x| to.screen_from_data(*x)).collect();
            painter.add(egui::Shape::line(
                line,
                Stroke::new(*width * style.line, style.ink(*color)),
            ));
        }
        for (x, color, r) in &self.points {
            painter.circle_filled(to.screen_from_data(*x), *r * style.dot, style.ink(*color));
        }
        for (x, text, color) in &self.labels {
            painter.text(
                to.screen_from_data(*x) + egui::vec2(8.0, 8.0),
                egui::Align2::LEFT_TOP,
                text,
                egui::FontId::proportional(13.0),
                style.ink(*color),
            );
        }
    }
}

impl View for Overlays {
    fn name(&self) -> &'static str {
        "overlays"
    }

    fn paint(&self, _f: &Frame, _side: &Side, p: &Plot) {
        self.overlay().paint(p);
    }
}

/// What a click on the canvas does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClickTool {
    /// Select components (the default).
    #[default]
    Select,
    /// Drop the probe particle.
    Probe,
    /// Set the inpainting line x₁ = c.
    Inpaint,
}

/// The probe particle's paths and log-likelihood.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    /// Where it was dropped (data, t ≈ 0).
    pub x: [f64; 2],
    /// Forward ODE path, data → noise.
    #[serde(skip)]
    pub forward: Vec<Vec2>,
    /// Reverse ODE path from the forward path's end, noise → data.
    #[serde(skip)]
    pub reverse: Vec<Vec2>,
    /// Where the reverse path ends (≈ x: the ODE is invertible).
    pub back_to: [f64; 2],
    /// PF-ODE log-likelihood under the score used (learned or exact).
    pub log_p_model: Option<f64>,
    /// The true log p₀(x).
    pub log_p_true: f64,
    /// Whether `log_p_model` comes from the exact score.
    pub exact: bool,
}

/// The probe as a data point x₀: its conditional noising path x_t = m + α(x₀ − m) + s z
/// (one fixed z) beside the marginal probability-flow ODE path through the same x_t at the
/// pivot time, followed both ways (`sim::denoise::conditional_path`).
#[derive(Clone, Debug, Serialize)]
pub struct CondPaths {
    /// The data point x₀.
    pub x0: [f64; 2],
    /// The time both paths share a point at.
    pub t: f64,
    /// The shared point x_t.
    pub x_t: [f64; 2],
    /// Where the conditional path starts (t → 0: x₀ itself).
    pub conditional_start: [f64; 2],
    /// Where the marginal PF-ODE path through x_t lands at t → 0.
    pub marginal_start: [f64; 2],
    /// Where the conditional path ends at t = 1.
    pub conditional_end: [f64; 2],
    /// Where the marginal path ends at t = 1.
    pub marginal_end: [f64; 2],
    /// The conditional path, t from t₀ to 1.
    #[serde(skip)]
    pub conditional: Vec<Vec2>,
    /// The marginal path, t from t₀ to 1 (through x_t).
    #[serde(skip)]
    pub marginal: Vec<Vec2>,
}

/// Result of an inpainting run.
#[derive(Clone, Debug, Serialize)]
pub struct InpaintResult {
    /// The observed x₁.
    pub c: f64,
    /// Method.
    pub method: InpaintMethod,
    /// The x₂ samples.
    #[serde(skip)]
    pub x2: Vec<f64>,
    /// KS statistic against the analytic conditional.
    pub ks: f64,
    /// KS critical value at level 0.001.
    pub ks_critical: f64,
    /// Samples.
    pub n: usize,
    /// The analytic conditional p(x₂ | x₁ = c).
    #[serde(skip)]
    pub cond: crate::sim::mixture::Mixture1d,
}

enum OwnedScore {
    Exact(ExactScore),
    Net(ScoreNet),
}

impl OwnedScore {
    fn get(&self) -> &dyn ScoreModel {
        match self {
            Self::Exact(e) => e,
            Self::Net(n) => n,
        }
    }
}

/// Paths, probe and inpainting state.
#[derive(Default)]
pub struct Overlays {
    /// Draw PF-ODE paths from a grid of start points.
    pub ode_paths: bool,
    /// Where the probe is.
    pub probe_at: Option<Vec2>,
    /// Show the probe's conditional path against the marginal one, pivoting at this time.
    pub cond_paths: Option<f64>,
    cond: Option<(u64, CondPaths)>,
    /// Inpainting settings (on when `Some`).
    pub inpaint: Option<InpaintSpec>,
    /// What a canvas click does.
    pub tool: ClickTool,
    /// Which sampler the panel edits (split view).
    pub edit_slot: usize,
    model: Option<ScoreNet>,
    model_version: u64,
    model_asked: Option<Instant>,
    model_at: Option<Instant>,
    paths: Option<(u64, Vec<Vec<Vec2>>)>,
    probe: Option<(u64, ProbeResult)>,
    inpaint_job: Option<(u64, Inpainter, OwnedScore)>,
    inpaint_result: Option<(u64, InpaintResult)>,
    pending_inpaint: Vec<u32>,
    /// The noise level of the difference arrows, when they are shown.
    diff_t: Option<f64>,
    /// The snapshot's relative score error near each component at `diff_t`
    /// (`sim::metrics::score_error_by_component`), with its cache key.
    score_errors: Option<(u64, Vec<f64>)>,
}

impl Overlays {
    /// The network changed (rebuilt or imported): forget the snapshot.
    pub fn model_changed(&mut self) {
        self.model = None;
        self.model_at = None;
        self.model_asked = None;
        self.model_version += 1;
    }

    /// A fresh CPU snapshot of the drawing network.
    pub fn set_model(&mut self, net: ScoreNet) {
        self.model = Some(net);
        self.model_at = Some(Instant::now());
        self.model_version += 1;
    }

    /// Whether a snapshot should be requested now.
    pub fn wants_model(&self) -> bool {
        let needed = self.ode_paths
            || self.probe_at.is_some()
            || self.diff_t.is_some()
            || self
                .inpaint
                .is_some_and(|i| i.method != InpaintMethod::ExactConditional && !i.exact);
        let stale = self.model_at.is_none_or(|t| t.elapsed() >= MODEL_EVERY);
        let asked_recently = self
            .model_asked
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500));
        needed && stale && !asked_recently
    }

    /// The probe's paths and log-likelihood, once computed.
    pub fn probe_result(&self) -> Option<&ProbeResult> {
        self.probe.as_ref().map(|(_, r)| r)
    }

    /// The network's relative score error near each component (difference arrows on).
    pub fn score_errors(&self) -> Option<&[f64]> {
        self.score_errors.as_ref().map(|(_, e)| e.as_slice())
    }

    /// The conditional-vs-marginal paths, once computed.
    pub fn cond_result(&self) -> Option<&CondPaths> {
        self.cond.as_ref().map(|(_, c)| c)
    }

    /// A snapshot has been requested.
    pub fn model_requested(&mut self) {
        self.model_asked = Some(Instant::now());
    }

    /// Follow the state's lesson settings (a moved probe or changed inpainting restarts).
    pub fn sync(&mut self, st: &State) {
        self.ode_paths = st.ode_paths;
        self.diff_t = (st.arrows == crate::state::ArrowMode::Difference).then_some(st.scene.t);
        if self.diff_t.is_none() {
            self.score_errors = None;
        }
        let probe = st.probe.map(|p| Vec2::new(p[0], p[1]));
        if probe != self.probe_at {
            self.probe_at = probe;
            self.probe = None;
            self.cond = None;
        }
        let pivot = st
            .cond_paths
            .then(|| st.scene.t.clamp(COND_T_MIN, COND_T_MAX));
        if pivot != self.cond_paths {
            self.cond_paths = pivot;
            self.cond = None;
        }
        if st.inpaint != self.inpaint {
            self.inpaint = st.inpaint;
            self.inpaint_job = None;
            self.inpaint_result = None;
        }
    }

    /// Answer `id` with the inpainting samples once a run is complete.
    pub fn ask_inpaint(&mut self, id: u32) {
        if self.inpaint.is_none() {
            api::answer(id, Err(Refused::InpaintOff));
        } else {
            self.pending_inpaint.push(id);
        }
    }

    /// What a click on the canvas at data point `p` does with `tool`, as a command.
    pub fn canvas_click(tool: ClickTool, st: &State, p: Vec2) -> Option<Command> {
        let mut next = st.clone();
        match tool {
            ClickTool::Select => return None,
            ClickTool::Probe => next.probe = Some([p.x, p.y]),
            ClickTool::Inpaint => {
                next.inpaint = Some(InpaintSpec {
                    c: p.x,
                    ..st.inpaint.unwrap_or_default()
                })
            }
        }
        Some(Command::SetState(Box::new(next)))
    }

    /// Cache key of what the paths and the probe were computed for: the mixture's revision,
    /// the SDE, the score choice and (for the learned score) the snapshot.
    fn key(revision: u64, sde: &Sde, exact: bool, version: u64) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        revision.hash(&mut h);
        format!("{sde:?}").hash(&mut h);
        exact.hash(&mut h);
        if !exact {
            version.hash(&mut h);
        }
        h.finish()
    }

    /// Recompute what is stale and advance inpainting (a few ms).
    /// `budget` is the main thread's spare time this frame (`app::perf::PerfWindow::cpu_budget`);
    /// inpainting takes at least [`INPAINT_BUDGET`] of it.
    pub fn frame(
        &mut self,
        mixture: &GaussianMixture,
        revision: u64,
        sde: &Sde,
        exact: bool,
        budget: Duration,
    ) {
        let exact_score = ExactScore::new(mixture.clone(), *sde);
        let key = Self::key(revision, sde, exact, self.model_version);
        let score: Option<&dyn ScoreModel> = if exact {
            Some(&exact_score)
        } else {
            self.model.as_ref().map(|m| m as &dyn ScoreModel)
        };
        if let Some(score) = score {
            if self.ode_paths && self.paths.as_ref().is_none_or(|(k, _)| *k != key) {
                let starts = prior_grid(sde, PATH_GRID);
                let paths = pf_ode_paths(score, sde, &starts, 1.0, SAMPLE_T_EPS, PATH_STEPS);
                self.paths = Some((key, paths));
            }
            if let Some(x) = self.probe_at {
                if self.probe.as_ref().is_none_or(|(k, _)| *k != key) {
                    let t0 = 1e-3;
                    let fwd = pf_ode_paths(score, sde, &[x], t0, 1.0, PATH_STEPS)
                        .pop()
                        .unwrap_or_default();
                    let end = fwd.last().copied().unwrap_or(x);
                    let rev = pf_ode_paths(score, sde, &[end], 1.0, t0, PATH_STEPS)
                        .pop()
                        .unwrap_or_default();
                    let back = rev.last().copied().unwrap_or(end);
                    let lp = log_likelihood(
                        score,
                        sde,
                        x,
                        LikelihoodConfig {
                            t0,
                            ..LikelihoodConfig::default()
                        },
                    );
                    self.probe = Some((
                        key,
                        ProbeResult {
                            x: [x.x, x.y],
                            forward: fwd,
                            reverse: rev,
                            back_to: [back.x, back.y],
                            log_p_model: lp.map(|l| l.log_prob),
                            log_p_true: mixture.log_prob(x),
                            exact,
                        },
                    ));
                }
            }
        }
        if let (Some(score), Some(x0), Some(t)) = (score, self.probe_at, self.cond_paths) {
            if self.cond.as_ref().is_none_or(|(k, _)| *k != key) {
                self.cond = Some((key, cond_paths(score, sde, x0, t)));
            }
        }
        if let (Some(t), Some(model)) = (self.diff_t, self.model.as_ref()) {
            let key = Self::key(revision, sde, false, self.model_version) ^ t.to_bits();
            if self.score_errors.as_ref().is_none_or(|(k, _)| *k != key) {
                let errs = crate::sim::metrics::score_error_by_component(
                    model,
                    mixture,
                    sde,
                    t,
                    SCORE_ERROR_POINTS,
                    1,
                );
                self.score_errors = Some((key, errs));
            }
        }
        if !self.ode_paths {
            self.paths = None;
        }
        self.run_inpaint(
            mixture,
            revision,
            sde,
            exact_score,
            budget.max(INPAINT_BUDGET),
        );
    }

    fn run_inpaint(
        &mut self,
        mixture: &GaussianMixture,
        revision: u64,
        sde: &Sde,
        exact_score: ExactScore,
        budget: Duration,
    ) {
        let Some(spec) = self.inpaint else {
            return;
        };
        // Restart on a changed mixture/SDE/setting; the learned score is the snapshot taken at
        // the start of the run.
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            revision.hash(&mut h);
            format!("{sde:?} {spec:?}").hash(&mut h);
            h.finish()
        };
        if self.inpaint_job.as_ref().is_some_and(|(k, _, _)| *k != key) {
            self.inpaint_job = None;
        }
        let finished = self.inpaint_result.as_ref().is_some_and(|(k, _)| *k == key);
        if self.inpaint_job.is_none() && !finished {
            let needs_net = spec.method != InpaintMethod::ExactConditional && !spec.exact;
            let score = if needs_net {
                match &self.model {
                    Some(m) => OwnedScore::Net(m.clone()),
                    None => return, // wait for the first snapshot
                }
            } else {
                OwnedScore::Exact(exact_score)
            };
            let job = Inpainter::new(mixture, sde, spec.c, spec.n, spec.steps, spec.method, 0)
                .with_zeta(spec.zeta);
            self.inpaint_job = Some((key, job, score));
        }
        let start = Instant::now();
        if let Some((k, job, score)) = self.inpaint_job.as_mut() {
            while !job.done() && start.elapsed() < budget {
                job.step(score.get());
            }
            if job.done() {
                let x2 = job.x2();
                let cond = job.conditional().clone();
                let ks = ks_statistic(&x2, |v| cond.cdf(v));
                let res = InpaintResult {
                    c: spec.c,
                    method: spec.method,
                    n: x2.len(),
                    ks,
                    ks_critical: ks_critical_001(x2.len()),
                    x2,
                    cond,
                };
                self.inpaint_result = Some((*k, res));
                self.inpaint_job = None;
            }
        }
        if let Some((_, r)) = &self.inpaint_result {
            for id in self.pending_inpaint.drain(..) {
                api::answer(id, Ok(Answer::Values(r.x2.clone())));
            }
        }
    }

    /// What to draw over the canvas.
    pub fn overlay(&self) -> CanvasExtras {
        let mut ex = CanvasExtras::default();
        if let Some((_, paths)) = &self.paths {
            for p in paths {
                ex.curves.push((
                    p.clone(),
                    Color32::from_rgba_unmultiplied(200, 160, 255, 150),
                    1.2,
                ));
                if let Some(end) = p.last() {
                    ex.points
                        .push((*end, Color32::from_rgb(200, 160, 255), 2.5));
                }
            }
        }
        if let Some(x) = self.probe_at {
            ex.points.push((x, Color32::WHITE, 5.0));
            if let Some((_, r)) = self.probe.as_ref().filter(|_| self.cond_paths.is_none()) {
                ex.curves
                    .push((r.forward.clone(), Color32::from_rgb(255, 170, 60), 2.5));
                ex.curves
                    .push((r.reverse.clone(), Color32::from_rgb(80, 220, 255), 1.2));
                let text = match r.log_p_model {
                    Some(m) => format!(
                        "log p_θ = {m:.2} ({}) · true log p = {:.2}",
                        if r.exact { "exact score" } else { "model" },
                        r.log_p_true
                    ),
                    None => format!("log p_θ failed · true log p = {:.2}", r.log_p_true),
                };
                ex.labels.push((x, text, Color32::WHITE));
            }
        }
        if let Some((_, c)) = &self.cond {
            let cond_color = Color32::from_rgb(255, 230, 90);
            let marg_color = Color32::from_rgb(235, 110, 255);
            ex.curves.push((c.conditional.clone(), cond_color, 2.0));
            ex.curves.push((c.marginal.clone(), marg_color, 2.0));
            let x_t = Vec2::new(c.x_t[0], c.x_t[1]);
            ex.points.push((x_t, Color32::WHITE, 4.0));
            let ms = Vec2::new(c.marginal_start[0], c.marginal_start[1]);
            ex.points.push((ms, marg_color, 4.0));
            ex.labels
                .push((x_t, format!("x_t (t = {:.2})", c.t), Color32::WHITE));
            let x0 = Vec2::new(c.x0[0], c.x0[1]);
            ex.labels.push((x0, "x₀".into(), cond_color));
        }
        if let Some(spec) = self.inpaint {
            ex.vline = Some((spec.c, Color32::from_rgb(255, 170, 60)));
            let pts: Vec<f64> = match (&self.inpaint_job, &self.inpaint_result) {
                (Some((_, job, _)), _) => job.x2(),
                (None, Some((_, r))) => r.x2.clone(),
                _ => Vec::new(),
            };
            for y in pts.into_iter().take(3000) {
                ex.points
                    .push((Vec2::new(spec.c, y), Color32::from_rgb(255, 170, 60), 1.8));
            }
        }
        ex
    }

    /// For `state()`.
    pub fn state_json(&self) -> serde_json::Value {
        let inpaint_progress = self.inpaint_job.as_ref().map(|(_, j, _)| j.progress());
        serde_json::json!({
            "ode_paths": self.paths.as_ref().map_or(0, |(_, p)| p.len()),
            "probe": self.probe.as_ref().map(|(_, r)| r),
            "cond_paths": self.cond.as_ref().map(|(_, c)| c),
            "inpaint": self.inpaint,
            "inpaint_progress": inpaint_progress,
            "inpaint_result": self.inpaint_result.as_ref().map(|(_, r)| r),
            "model_snapshot": self.model.is_some(),
            "score_errors": self.score_errors(),
        })
    }

    /// Histogram of the inpainting samples and the analytic conditional density.
    pub(crate) fn inpaint_plot_ui(&self, ui: &mut egui::Ui) {
        use egui_plot::{Bar, BarChart, Line, Plot, PlotPoints};
        let Some((_, r)) = &self.inpaint_result else {
            if let Some((_, j, _)) = &self.inpaint_job {
                let (a, b) = j.progress();
                ui.add(egui::ProgressBar::new(a as f32 / b.max(1) as f32).text("inpainting…"));
            }
            return;
        };
        let lo = r.x2.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.x2.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !(lo.is_finite() && hi.is_finite() && hi > lo) {
            return;
        }
        let bins = 40usize;
        let w = (hi - lo) / bins as f64;
        let mut counts = vec![0usize; bins];
        for v in &r.x2 {
            counts[(((v - lo) / w) as usize).min(bins - 1)] += 1;
        }
        let bars: Vec<Bar> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Bar::new(
                    lo + (i as f64 + 0.5) * w,
                    *c as f64 / (r.x2.len() as f64 * w),
                )
                .width(w)
            })
            .collect();
        let spec_c = r.c;
        let c = &r.cond;
        ui.label(format!(
            "x₂ | x₁ = {spec_c:.2}: KS = {:.3} (critical {:.3}, n = {})",
            r.ks, r.ks_critical, r.n
        ));
        Plot::new("inpaint_hist")
            .height(90.0)
            .allow_scroll(false)
            .allow_drag(false)
            .show(ui, |p| {
                p.bar_chart(BarChart::new("samples", bars).color(Color32::from_rgb(255, 170, 60)));
                let pts: Vec<[f64; 2]> = (0..=120)
                    .map(|i| {
                        let x = lo + (hi - lo) * i as f64 / 120.0;
                        [x, c.log_prob(x).exp()]
                    })
                    .collect();
                p.line(Line::new("p(x₂ | x₁ = c)", PlotPoints::from(pts)));
            });
    }
}

/// The conditional path of `x0` and the marginal PF-ODE path through its x_t at time `t`.
fn cond_paths(score: &dyn ScoreModel, sde: &Sde, x0: Vec2, t: f64) -> CondPaths {
    let t0 = 1e-3;
    let z = Vec2::new(COND_Z[0], COND_Z[1]);
    let ts: Vec<f64> = (0..=PATH_STEPS)
        .map(|i| t0 + (1.0 - t0) * i as f64 / PATH_STEPS as f64)
        .collect();
    let conditional = crate::sim::denoise::conditional_path(sde, x0, z, &ts);
    let x_t = crate::sim::denoise::conditional_path(sde, x0, z, &[t])[0];
    let mut back = pf_ode_paths(score, sde, &[x_t], t, t0, PATH_STEPS)
        .pop()
        .unwrap_or_default();
    let fwd = pf_ode_paths(score, sde, &[x_t], t, 1.0, PATH_STEPS)
        .pop()
        .unwrap_or_default();
    back.reverse();
    let marginal_start = back.first().copied().unwrap_or(x_t);
    let marginal_end = fwd.last().copied().unwrap_or(x_t);
    back.extend(fwd.into_iter().skip(1));
    let arr = |v: Vec2| [v.x, v.y];
    CondPaths {
        x0: arr(x0),
        t,
        x_t: arr(x_t),
        conditional_start: arr(conditional.first().copied().unwrap_or(x0)),
        marginal_start: arr(marginal_start),
        conditional_end: arr(conditional.last().copied().unwrap_or(x0)),
        marginal_end: arr(marginal_end),
        conditional,
        marginal: back,
    }
}

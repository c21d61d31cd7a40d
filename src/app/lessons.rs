//! The lessons on top of the live canvas: the sampler panel (any sampler, Play / Pause /
//! Step / Slow motion / Restart, progress, mode-weight bars, split view), probability-flow
//! ODE paths and the probe particle (paths both ways, log-likelihood), conditional sampling
//! (guidance, inpainting with its histogram against the analytic conditional), share links
//! and export / import.
//!
//! Data flow: the engine hands over a CPU snapshot of the drawing network every couple of
//! seconds ([`Lessons::set_model`]); paths, the probe and inpainting run `sim` on that
//! snapshot (or on the exact score), a few milliseconds per frame, and are drawn as overlays.

use eframe::egui::{self, Color32};
use serde::Serialize;
use web_time::{Duration, Instant};

use crate::app::canvas::CanvasExtras;
use crate::app::share::{InpaintSpec, SplitMode};
use crate::app::{api, explain, files, EngineChoice, ScoreLabApp};
use crate::engine::SLOTS;
use crate::sim::guidance::{InpaintMethod, Inpainter};
use crate::sim::likelihood::{log_likelihood, LikelihoodConfig};
use crate::sim::metrics::{ks_critical_001, ks_statistic, nll, ModeCensus};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::rng::StreamRng;
use crate::sim::samplers::{pf_ode_paths, SamplerKind};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::sde::{Sde, SAMPLE_T_EPS};
use crate::sim::Vec2;

/// How often the CPU snapshot of the network is refreshed while it is needed.
const MODEL_EVERY: Duration = Duration::from_millis(2000);
/// CPU time per frame for inpainting.
const INPAINT_BUDGET: Duration = Duration::from_millis(8);
/// Start points per side of the PF-ODE path grid.
const PATH_GRID: usize = 7;
/// RK4 steps of a drawn path.
const PATH_STEPS: usize = 60;

/// Mode weights and NLL of one finished run.
#[derive(Clone, Debug, Serialize)]
pub struct RunStats {
    /// The run (its seed).
    pub run: u32,
    /// The sampler.
    pub kind: SamplerKind,
    /// Samples.
    pub n: usize,
    /// Samples that are not finite (diverged particles: counted, never a mode).
    pub diverged: usize,
    /// "k of n particles diverged …" when some did.
    pub diverged_message: Option<String>,
    /// Fraction of the finite samples per component (classified by the true posterior).
    pub weights: Vec<f64>,
    /// The mixture's weights.
    pub true_weights: Vec<f64>,
    /// Largest |weight − true weight|.
    pub max_weight_error: f64,
    /// Mean −log p(x) of the finite samples under the true density (nats).
    pub nll: f64,
    /// The same for as many true samples (what a perfect sampler gets, up to noise).
    pub nll_of_true_samples: f64,
    /// The samples (for the CSV export).
    #[serde(skip)]
    pub points: Vec<Vec2>,
}

impl RunStats {
    /// Statistics of `points` under `mixture`.
    pub fn new(mixture: &GaussianMixture, run: u32, kind: SamplerKind, points: &[Vec2]) -> Self {
        let census = ModeCensus::of(mixture, points);
        let weights = census.fractions();
        let finite: Vec<Vec2> = points
            .iter()
            .copied()
            .filter(|x| x.iter().all(|v| v.is_finite()))
            .collect();
        let true_weights = mixture.weights().to_vec();
        let max_weight_error = weights
            .iter()
            .zip(&true_weights)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let truth = mixture.sample(finite.len().clamp(1, 20_000), &mut StreamRng::new(99, 5));
        Self {
            run,
            kind,
            n: points.len(),
            diverged: census.diverged,
            diverged_message: census.message(),
            weights,
            true_weights,
            max_weight_error,
            nll: nll(mixture, &finite),
            nll_of_true_samples: nll(mixture, &truth),
            points: points.to_vec(),
        }
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
pub struct Lessons {
    /// Draw PF-ODE paths from a grid of start points.
    pub ode_paths: bool,
    /// Where the probe is.
    pub probe_at: Option<Vec2>,
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
}

impl Lessons {
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
            || self
                .inpaint
                .is_some_and(|i| i.method == InpaintMethod::Replacement && !i.exact);
        let stale = self.model_at.is_none_or(|t| t.elapsed() >= MODEL_EVERY);
        let asked_recently = self
            .model_asked
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500));
        needed && stale && !asked_recently
    }

    /// A snapshot has been requested.
    pub fn model_requested(&mut self) {
        self.model_asked = Some(Instant::now());
    }

    /// Move or remove the probe.
    pub fn set_probe(&mut self, at: Option<Vec2>) {
        self.probe_at = at;
        self.probe = None;
    }

    /// Change or remove inpainting (restarts it).
    pub fn set_inpaint(&mut self, spec: Option<InpaintSpec>) {
        self.inpaint = spec;
        self.inpaint_job = None;
        self.inpaint_result = None;
    }

    /// Answer `id` with the inpainting samples once a run is complete.
    pub fn ask_inpaint(&mut self, id: u32) {
        if self.inpaint.is_none() {
            api::answer(
                id,
                Err("inpainting is off (setConfig({inpaint: {...}}))".into()),
            );
        } else {
            self.pending_inpaint.push(id);
        }
    }

    /// A click on the canvas at data point `p` (the tool decides what it does).
    pub fn canvas_click(&mut self, p: Vec2) {
        match self.tool {
            ClickTool::Select => {}
            ClickTool::Probe => self.set_probe(Some(p)),
            ClickTool::Inpaint => {
                let spec = InpaintSpec {
                    c: p.x,
                    ..self.inpaint.unwrap_or_default()
                };
                self.set_inpaint(Some(spec));
            }
        }
    }

    fn key(mixture: &GaussianMixture, sde: &Sde, exact: bool, version: u64) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(&mixture.to_spec())
            .unwrap_or_default()
            .hash(&mut h);
        format!("{sde:?}").hash(&mut h);
        exact.hash(&mut h);
        if !exact {
            version.hash(&mut h);
        }
        h.finish()
    }

    /// Recompute what is stale and advance inpainting (a few ms).
    pub fn frame(&mut self, mixture: &GaussianMixture, sde: &Sde, exact: bool) {
        let exact_score = ExactScore::new(mixture.clone(), *sde);
        let key = Self::key(mixture, sde, exact, self.model_version);
        let score: Option<&dyn ScoreModel> = if exact {
            Some(&exact_score)
        } else {
            self.model.as_ref().map(|m| m as &dyn ScoreModel)
        };
        if let Some(score) = score {
            if self.ode_paths && self.paths.as_ref().is_none_or(|(k, _)| *k != key) {
                let sd = sde.prior_std();
                let starts: Vec<Vec2> = (0..PATH_GRID * PATH_GRID)
                    .map(|i| {
                        let f = |j: usize| (j as f64 / (PATH_GRID - 1) as f64 - 0.5) * 4.0 * sd;
                        sde.center() + Vec2::new(f(i % PATH_GRID), f(i / PATH_GRID))
                    })
                    .collect();
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
        if !self.ode_paths {
            self.paths = None;
        }
        self.run_inpaint(mixture, sde, exact_score);
    }

    fn run_inpaint(&mut self, mixture: &GaussianMixture, sde: &Sde, exact_score: ExactScore) {
        let Some(spec) = self.inpaint else {
            return;
        };
        // Restart on a changed mixture/SDE/setting; the learned score is the snapshot taken at
        // the start of the run.
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            serde_json::to_string(&(mixture.to_spec(), spec))
                .unwrap_or_default()
                .hash(&mut h);
            format!("{sde:?}").hash(&mut h);
            h.finish()
        };
        if self.inpaint_job.as_ref().is_some_and(|(k, _, _)| *k != key) {
            self.inpaint_job = None;
        }
        let finished = self.inpaint_result.as_ref().is_some_and(|(k, _)| *k == key);
        if self.inpaint_job.is_none() && !finished {
            let needs_net = spec.method == InpaintMethod::Replacement && !spec.exact;
            let score = if needs_net {
                match &self.model {
                    Some(m) => OwnedScore::Net(m.clone()),
                    None => return, // wait for the first snapshot
                }
            } else {
                OwnedScore::Exact(exact_score)
            };
            let job = Inpainter::new(mixture, sde, spec.c, spec.n, spec.steps, spec.method, 0);
            self.inpaint_job = Some((key, job, score));
        }
        let start = Instant::now();
        if let Some((k, job, score)) = self.inpaint_job.as_mut() {
            while !job.done() && start.elapsed() < INPAINT_BUDGET {
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
            let json = serde_json::to_string(&r.x2).map_err(|e| e.to_string());
            for id in self.pending_inpaint.drain(..) {
                api::answer(id, json.clone());
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
            if let Some((_, r)) = &self.probe {
                ex.curves
                    .push((r.forward.clone(), Color32::from_rgb(255, 170, 60), 2.5));
                ex.curves
                    .push((r.reverse.clone(), Color32::from_rgb(80, 220, 255), 1.2));
                let text = match r.log_p_model {
                    Some(m) => format!(
                        "log p̂ = {m:.2} ({}) · true log p = {:.2}",
                        if r.exact { "exact score" } else { "model" },
                        r.log_p_true
                    ),
                    None => format!("log p̂ failed · true log p = {:.2}", r.log_p_true),
                };
                ex.labels.push((x, text, Color32::WHITE));
            }
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
            "inpaint": self.inpaint,
            "inpaint_progress": inpaint_progress,
            "inpaint_result": self.inpaint_result.as_ref().map(|(_, r)| r),
            "model_snapshot": self.model.is_some(),
        })
    }

    /// Histogram of the inpainting samples and the analytic conditional density.
    fn inpaint_plot_ui(&self, ui: &mut egui::Ui) {
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

impl ScoreLabApp {
    /// Title drawn on a canvas of the split view.
    pub(crate) fn side_title(&self, side: usize) -> Option<String> {
        match self.split {
            SplitMode::Off => None,
            SplitMode::Samplers => Some(format!(
                "{} {}",
                ["A", "B"][side.min(1)],
                self.live[side.min(SLOTS - 1)].kind.name()
            )),
            SplitMode::Density => Some(
                if side == 0 {
                    "true log pₜ"
                } else {
                    "learned log pₜ (PF-ODE)"
                }
                .into(),
            ),
        }
    }

    /// The sampler panel.
    pub(crate) fn sampler_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong("Sampler");
            let mut split = self.split;
            ui.label("split:");
            ui.selectable_value(&mut split, SplitMode::Off, "off");
            ui.selectable_value(&mut split, SplitMode::Samplers, "A | B")
                .on_hover_text(explain::SPLIT);
            ui.selectable_value(&mut split, SplitMode::Density, "true | learned")
                .on_hover_text(explain::SPLIT);
            if split != self.split {
                self.set_split(split);
            }
        });
        let slot = if self.split == SplitMode::Samplers {
            ui.horizontal(|ui| {
                ui.label("edit");
                ui.selectable_value(&mut self.lessons.edit_slot, 0, "A");
                ui.selectable_value(&mut self.lessons.edit_slot, 1, "B");
            });
            self.lessons.edit_slot.min(SLOTS - 1)
        } else {
            0
        };
        let mut live = self.live[slot].clone();
        let mut picked = None;
        egui::ComboBox::from_id_salt(("sampler_kind", slot))
            .selected_text(live.kind.name())
            .width(170.0)
            .show_ui(ui, |ui| {
                for (i, k) in SamplerKind::ALL.into_iter().enumerate() {
                    if ui
                        .selectable_label(live.kind == k, format!("{} {}", i + 1, k.name()))
                        .on_hover_text(explain::sampler(k))
                        .clicked()
                    {
                        picked = Some(k);
                    }
                }
            })
            .response
            .on_hover_text(explain::sampler(live.kind));
        if let Some(k) = picked {
            live = live.with_kind(k, &self.mixture);
            live.enabled = true;
        }
        match live.kind {
            SamplerKind::AnnealedLangevin => {
                ui.add(egui::Slider::new(&mut live.levels, 2..=200).text("levels L"));
                ui.add(
                    egui::Slider::new(&mut live.steps, 1..=1000)
                        .logarithmic(true)
                        .text("steps per level T"),
                );
                ui.add(
                    egui::Slider::new(&mut live.eps, 1e-7..=1e-2)
                        .logarithmic(true)
                        .text("ε"),
                );
            }
            SamplerKind::Langevin => {
                ui.add(
                    egui::Slider::new(&mut live.steps, 1..=20_000)
                        .logarithmic(true)
                        .text("steps"),
                );
                ui.add(
                    egui::Slider::new(&mut live.eps, 1e-4..=1.0)
                        .logarithmic(true)
                        .text("step α"),
                );
            }
            SamplerKind::OdeRk45 => {
                ui.label("adaptive steps (rtol = atol = 1e-5)");
            }
            k => {
                ui.add(
                    egui::Slider::new(&mut live.steps, 2..=5000)
                        .logarithmic(true)
                        .text("time steps N"),
                );
                if k == SamplerKind::Pc {
                    ui.add(egui::Slider::new(&mut live.snr, 0.0..=1.0).text("snr"));
                }
            }
        }
        let max_n = if self.choice == EngineChoice::Gpu && self.gpu.is_some() {
            crate::engine::MAX_PARTICLES
        } else {
            20_000
        };
        ui.horizontal(|ui| {
            ui.selectable_value(&mut live.exact, false, "learned score");
            ui.selectable_value(&mut live.exact, true, "exact score");
        });
        ui.add(
            egui::Slider::new(&mut live.n, 100..=max_n)
                .logarithmic(true)
                .text("particles"),
        );
        // Guidance (conditional generation) on this sampler.
        ui.horizontal(|ui| {
            let mut on = live.guide.is_some();
            ui.checkbox(&mut on, "guide to #")
                .on_hover_text(explain::GUIDE);
            let n = self.mixture.len();
            let mut g = live.guide.unwrap_or(crate::engine::Guide {
                component: 0,
                gamma: 1.0,
            });
            let mut k = g.component + 1;
            ui.add_enabled(on, egui::DragValue::new(&mut k).range(1..=n.max(1)));
            ui.add_enabled(on, egui::Slider::new(&mut g.gamma, 0.0..=10.0).text("γ"));
            g.component = k.saturating_sub(1).min(n.saturating_sub(1));
            live.guide = on.then_some(g);
        });
        ui.horizontal(|ui| {
            let play = if self.sampling_paused {
                "Play"
            } else {
                "Pause"
            };
            if ui.button(play).on_hover_text("space").clicked() {
                self.toggle_play();
            }
            if ui
                .button("Step")
                .on_hover_text("s: one step (pauses)")
                .clicked()
            {
                self.step_once();
            }
            let mut slow = live.speed < 0.5;
            if ui
                .toggle_value(&mut slow, "Slow")
                .on_hover_text("slow motion")
                .changed()
            {
                live.speed = if slow { 0.05 } else { 1.0 };
            }
            if ui
                .button("Restart")
                .on_hover_text("r: fresh noise from the prior")
                .clicked()
            {
                self.restart_sampling();
            }
            ui.checkbox(&mut live.repeat, "loop");
        });
        if live != self.live[slot] {
            self.set_sampling(slot, live);
        }
        for s in 0..SLOTS {
            if s == 1 && self.split != SplitMode::Samplers {
                break;
            }
            let name = if self.split == SplitMode::Samplers {
                ["A: ", "B: "][s]
            } else {
                ""
            };
            if let Some(st) = self.sampler[s] {
                let sde = self.sde();
                let frac = if st.total > 0 {
                    st.step as f32 / st.total as f32
                } else {
                    0.0
                };
                ui.add(
                    egui::ProgressBar::new(if st.done { 1.0 } else { frac }).text(format!(
                        "{name}t = {:.3} · σ = {:.3} · NFE {}{}",
                        st.t,
                        sde.effective_sigma(st.t.max(1e-5)),
                        st.nfe,
                        if st.done { " · done" } else { "" }
                    )),
                );
            }
            if let Some(r) = &self.runs[s] {
                self.weights_ui(ui, s, r);
            }
        }
    }

    fn weights_ui(&self, ui: &mut egui::Ui, slot: usize, r: &RunStats) {
        use egui_plot::{Bar, BarChart, Plot};
        ui.label(format!(
            "{}mode weights (max error {:.3}) · NLL {:.2} (true samples {:.2})",
            if self.split == SplitMode::Samplers {
                ["A ", "B "][slot]
            } else {
                ""
            },
            r.max_weight_error,
            r.nll,
            r.nll_of_true_samples
        ));
        if let Some(m) = &r.diverged_message {
            ui.colored_label(Color32::from_rgb(255, 150, 90), m);
        }
        if !self.flags.panels().charts {
            return;
        }
        let sampled: Vec<Bar> = r
            .weights
            .iter()
            .enumerate()
            .map(|(k, w)| Bar::new(k as f64 + 1.0 - 0.18, *w).width(0.34))
            .collect();
        let truth: Vec<Bar> = r
            .true_weights
            .iter()
            .enumerate()
            .map(|(k, w)| Bar::new(k as f64 + 1.0 + 0.18, *w).width(0.34))
            .collect();
        Plot::new(("weights", slot))
            .height(70.0)
            .allow_scroll(false)
            .allow_drag(false)
            .show(ui, |p| {
                p.bar_chart(
                    BarChart::new("samples", sampled).color(Color32::from_rgb(110, 240, 130)),
                );
                p.bar_chart(BarChart::new("true", truth).color(Color32::from_rgb(90, 170, 255)));
            });
    }

    /// Probability-flow paths and the probe.
    pub(crate) fn paths_ui(&mut self, ui: &mut egui::Ui) {
        ui.strong("Paths & likelihood");
        ui.checkbox(&mut self.lessons.ode_paths, "probability-flow ODE paths")
            .on_hover_text(explain::ODE_PATHS);
        ui.horizontal(|ui| {
            ui.label("click:");
            ui.selectable_value(&mut self.lessons.tool, ClickTool::Select, "select");
            ui.selectable_value(&mut self.lessons.tool, ClickTool::Probe, "probe")
                .on_hover_text(explain::PROBE);
            ui.selectable_value(&mut self.lessons.tool, ClickTool::Inpaint, "x₁ = c")
                .on_hover_text(explain::INPAINT);
        });
        if let Some((_, r)) = &self.lessons.probe {
            ui.label(format!(
                "probe ({:.2}, {:.2}): log p̂ = {} · true {:.2} · round trip back to ({:.2}, {:.2})",
                r.x[0],
                r.x[1],
                r.log_p_model.map_or("failed".into(), |v| format!("{v:.2}")),
                r.log_p_true,
                r.back_to[0],
                r.back_to[1]
            ));
            if ui.small_button("remove probe").clicked() {
                self.lessons.set_probe(None);
            }
        } else if self.lessons.probe_at.is_some() && !self.live[0].exact {
            ui.label("probe: waiting for the model snapshot…");
        }
    }

    /// Inpainting.
    pub(crate) fn conditional_ui(&mut self, ui: &mut egui::Ui) {
        ui.strong("Conditional: inpainting x₂ | x₁ = c")
            .on_hover_text(explain::INPAINT);
        let mut on = self.lessons.inpaint.is_some();
        let mut spec = self.lessons.inpaint.unwrap_or_default();
        ui.horizontal(|ui| {
            ui.checkbox(&mut on, "on");
            ui.add_enabled(
                on,
                egui::DragValue::new(&mut spec.c).speed(0.05).prefix("c = "),
            );
            ui.selectable_value(&mut spec.method, InpaintMethod::ExactConditional, "exact");
            ui.selectable_value(&mut spec.method, InpaintMethod::Replacement, "replacement");
        });
        if spec.method == InpaintMethod::Replacement {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut spec.exact, false, "learned joint score");
                ui.selectable_value(&mut spec.exact, true, "exact joint score");
            });
        }
        let new = on.then_some(spec);
        if new != self.lessons.inpaint && new.is_none_or(|s| s.validate().is_ok()) {
            self.lessons.set_inpaint(new);
        }
        if on {
            self.lessons.inpaint_plot_ui(ui);
        }
    }

    /// Share link, exports and import.
    pub(crate) fn share_ui(&mut self, ui: &mut egui::Ui) {
        ui.strong("Share & export");
        ui.horizontal_wrapped(|ui| {
            if ui
                .button("Copy link")
                .on_hover_text("The whole scene, model settings, samplers and view, in the URL")
                .clicked()
            {
                ui.ctx().copy_text(self.link());
                self.file_message = Some("Link copied.".into());
            }
            if ui.button("PNG").clicked() {
                api::push(api::Command::ExportPng(0));
            }
            if ui.button("samples CSV").clicked() {
                self.file_message = Some(match self.runs[0].as_ref().map(|r| &r.points) {
                    Some(pts) => {
                        let mut csv = String::from("x,y\n");
                        for p in pts {
                            csv.push_str(&format!("{},{}\n", p.x, p.y));
                        }
                        files::save("scorelab-samples.csv", "text/csv", csv.as_bytes())
                    }
                    None => "No finished run yet: let a sampler finish first.".into(),
                });
            }
            if ui.button("model JSON").clicked() {
                self.pending_models.push(0);
            }
            if ui.button("scene JSON").clicked() {
                let text = serde_json::to_string_pretty(&self.shared()).unwrap_or_default();
                self.file_message = Some(files::save(
                    "scorelab-scene.json",
                    "application/json",
                    text.as_bytes(),
                ));
            }
            if ui
                .button("Import…")
                .on_hover_text("A model or scene JSON file (or drop it onto the canvas)")
                .clicked()
            {
                self.file_message = files::pick_file();
            }
            if ui.button("? help").on_hover_text("h").clicked() {
                self.help_open = !self.help_open;
            }
        });
        if let Some(m) = &self.file_message {
            ui.label(m);
        }
    }

    /// Files dropped onto the window: read, validate and import them (a refused file changes
    /// nothing; the panel says why).
    pub(crate) fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let files = ctx.input(|i| i.raw.dropped_files.clone());
        for f in files {
            let name = f.path().display().to_string();
            #[cfg(target_arch = "wasm32")]
            wasm_bindgen_futures::spawn_local(async move {
                let res = f
                    .bytes_async()
                    .await
                    .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                    .and_then(|t| api::parse_import(&name, &t));
                api::push(match res {
                    Ok(file) => api::Command::Import(Box::new(file)),
                    Err(e) => api::Command::FileMessage(format!("{e} — nothing was changed.")),
                });
            });
            #[cfg(not(target_arch = "wasm32"))]
            {
                let res = f
                    .bytes()
                    .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                    .and_then(|t| api::parse_import(&name, &t));
                match res {
                    Ok(file) => self.apply_import(file),
                    Err(e) => self.file_message = Some(format!("{e} — nothing was changed.")),
                }
            }
        }
    }

    /// The keyboard help overlay.
    pub(crate) fn help_window(&mut self, ctx: &egui::Context) {
        let mut open = self.help_open;
        egui::Window::new("Keyboard & mouse")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                    for (k, what) in explain::SHORTCUTS {
                        ui.strong(*k);
                        ui.label(*what);
                        ui.end_row();
                    }
                });
            });
        self.help_open = open;
    }
}

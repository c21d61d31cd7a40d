//! The steps sweep: how many score evaluations does a sampler need? DDIM, Heun on the EDM
//! schedule, DPM-Solver++(2M) and Euler's PF-ODE run at 4..512 evaluations on the current
//! mixture with the exact score (`sim::samplers::sweep`), within the frame's CPU budget; the
//! chart over the canvas fills in as runs finish: the worst component's spread error against
//! true samples and the distance to the exact ODE solution, log–log, one line per sampler.
//! `state().views.sweep` holds every row.

use eframe::egui::{self, Color32, Pos2, Rect, Stroke};
use web_time::Instant;

use super::{Frame, Side, View};
use crate::app::canvas::Plot;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::sweep::{Sweep as Job, SweepSampler};
use crate::sim::score::{ExactScore, ScoreModel};
use crate::sim::Vec2;
use crate::state::State;

/// The samplers and budgets of the page's sweep.
const SAMPLERS: [&str; 4] = ["ddim", "edm-heun", "dpm-solver++2m", "ode-euler"];
const NFES: [usize; 8] = [4, 8, 16, 32, 64, 128, 256, 512];
/// Particles per run.
const PARTICLES: usize = 2000;
/// Least milliseconds of a frame the sweep takes.
const MIN_FRAME_MS: f64 = 6.0;
/// Most milliseconds of a frame the sweep takes.
const MAX_FRAME_MS: f64 = 300.0;
/// The share of the frame interval (before the sweep's own time) the sweep takes: the frame
/// interval at most doubles while it runs (60 → 30 fps on a fast machine; a software
/// rasteriser's 3 fps → 1.5), so a sweep finishes in about twice its compute time.
const FRAME_SHARE: f64 = 1.0;
/// Line colours, one per sampler.
const COLORS: [Color32; 4] = [
    Color32::from_rgb(0x66, 0xCC, 0xEE),
    Color32::from_rgb(0xEE, 0x66, 0x77),
    Color32::from_rgb(0xCC, 0xBB, 0x44),
    Color32::from_rgb(0xBB, 0xBB, 0xBB),
];

/// The sweep in progress or done, for one mixture and SDE.
#[derive(Default)]
pub struct Sweep {
    job: Option<(u64, Job)>,
    /// Particle-evaluations a millisecond, measured (the next frame's budget).
    evals_per_ms: f64,
    /// The last update's start, and the frame interval without the sweep's own time (a
    /// running mean, ms).
    last: Option<Instant>,
    others_ms: f64,
    /// The sweep's own time in the last update, ms.
    own_ms: f64,
    /// Seconds spent so far.
    seconds: f64,
    /// What the last CSV export did.
    saved: std::cell::RefCell<Option<String>>,
    /// The learned score's snapshot the sweep follows (`layers.sweep_learned`), taken when it
    /// starts so that every run measures the same network while training goes on.
    /// (the sweep's key it was taken for, the network).
    model: Option<(u64, ScoreNet)>,
    /// A learned-score sweep waits for its snapshot: (its key, when it was asked).
    waiting: Option<(u64, Option<Instant>)>,
}

impl Sweep {
    /// Whether a snapshot of the network should be requested this frame.
    pub fn wants_model(&self) -> bool {
        matches!(self.waiting, Some((_, asked)) if asked.is_none_or(|t| t.elapsed().as_secs_f64() > 0.5))
    }

    /// A snapshot was requested this frame.
    pub fn model_requested(&mut self) {
        if let Some((_, asked)) = &mut self.waiting {
            *asked = Some(Instant::now());
        }
    }

    /// A snapshot of the network arrived: a waiting learned-score sweep starts with it.
    pub fn set_model(&mut self, net: &ScoreNet) {
        if let Some((key, _)) = self.waiting.take() {
            self.model = Some((key, net.clone()));
        }
    }
}

impl View for Sweep {
    fn name(&self) -> &'static str {
        "sweep"
    }

    fn panel_order(&self) -> u8 {
        6
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        ui.checkbox(&mut st.layers.sweep, "steps sweep: error vs evaluations")
            .on_hover_text("How many steps does a sampler need? DDIM (Euler in the noise level), Heun on Karras et al.'s σ schedule, DPM-Solver++(2M) and Euler's PF-ODE run at 4 to 512 score evaluations with the exact score, 2000 particles each, from the same prior noise. The chart shows, left, the worst component's spread error against true samples (it stops falling at the sampling noise of 2000 particles) and, right, the median distance to the exact ODE solution from the same noise: a first-order method halves it when the evaluations double, a second-order one quarters it. state().views.sweep has every number (weights, energy distance, NLL too).");
        if !st.layers.sweep {
            return;
        }
        ui.horizontal(|ui| {
            ui.label("sweep the score:");
            ui.selectable_value(&mut st.layers.sweep_learned, false, "exact truth");
            ui.selectable_value(&mut st.layers.sweep_learned, true, "learned model")
                .on_hover_text("Sweep a snapshot of the network as it is now (training goes on; turn the sweep off and on for a newer one). Its errors add the model's own error to each sampler's: where the curves stop falling is how good the model is.");
        });
        let Some((_, job)) = self.job.as_ref() else {
            return;
        };
        ui.horizontal(|ui| {
            let (done, all) = job.progress();
            if ui
                .add_enabled(done > 0, egui::Button::new("save sweep CSV"))
                .on_hover_text(format!(
                    "The table so far ({done} of {all} runs) as scorelab-sweep.csv: sampler, nfe, weight_error, spread_error, energy, nll, ode_error, diverged (as `scorelab sweep` writes it)."
                ))
                .clicked()
            {
                let csv = crate::sim::samplers::sweep::csv(&job.rows);
                *self.saved.borrow_mut() = Some(crate::app::files::save(
                    "scorelab-sweep.csv",
                    "text/csv",
                    csv.as_bytes(),
                ));
            }
            if let Some(m) = self.saved.borrow().as_ref() {
                ui.small(m.as_str());
            }
        });
    }

    fn update(&mut self, _ctx: &egui::Context, f: &Frame, _view: (Vec2, Vec2)) {
        let learned = f.state.layers.sweep_learned;
        if !f.state.layers.sweep {
            self.job = None;
            self.model = None;
            self.waiting = None;
            return;
        }
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            f.data.revision.hash(&mut h);
            format!("{:?}", f.sde).hash(&mut h);
            learned.hash(&mut h);
            h.finish()
        };
        if self.job.as_ref().is_none_or(|(k, _)| *k != key) {
            // A learned-score sweep starts from a fresh snapshot of the network.
            if learned && self.model.as_ref().is_none_or(|(k, _)| *k != key) {
                self.model = None;
                if self.waiting.is_none_or(|(k, _)| k != key) {
                    self.waiting = Some((key, None));
                }
                self.job = None;
                return;
            }
            let samplers: Vec<SweepSampler> = SAMPLERS
                .iter()
                .filter_map(|s| SweepSampler::parse(s))
                .collect();
            let job = Job::new(&f.sde, &f.data.mixture, &samplers, &NFES, PARTICLES, 0);
            self.job = Some((key, job));
            self.seconds = 0.0;
            (self.last, self.others_ms, self.own_ms) = (None, 0.0, 0.0);
            if !learned {
                self.model = None;
            }
        }
        let Some((_, job)) = self.job.as_mut().filter(|(_, j)| !j.done()) else {
            return;
        };
        let exact = ExactScore::new(f.data.mixture.clone(), f.sde);
        let score: &dyn ScoreModel = match &self.model {
            Some((_, net)) if learned => net,
            _ => &exact,
        };
        // What the rest of the frame takes (the interval minus the sweep's own last share):
        // the sweep takes as much again, at least the engine's frame budget.
        let now = Instant::now();
        if let Some(last) = self.last {
            let others = (now.duration_since(last).as_secs_f64() * 1e3 - self.own_ms).max(0.0);
            self.others_ms = if self.others_ms > 0.0 {
                0.8 * self.others_ms + 0.2 * others
            } else {
                others
            };
        }
        self.last = Some(now);
        let ms = (FRAME_SHARE * self.others_ms)
            .max(f.budget.as_secs_f64() * 1e3)
            .clamp(MIN_FRAME_MS, MAX_FRAME_MS);
        let budget = if self.evals_per_ms > 0.0 {
            (self.evals_per_ms * ms) as usize
        } else {
            PARTICLES
        };
        let start = Instant::now();
        job.advance(score, budget.max(PARTICLES));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        self.own_ms = ms;
        self.seconds += ms / 1e3;
        if ms > 0.05 {
            let rate = budget.max(PARTICLES) as f64 / ms;
            self.evals_per_ms = if self.evals_per_ms > 0.0 {
                0.7 * self.evals_per_ms + 0.3 * rate
            } else {
                rate
            };
        }
    }

    fn paint(&self, _f: &Frame, side: &Side, p: &Plot) {
        if side.index != 0 {
            return;
        }
        if let Some((_, job)) = &self.job {
            let score = if self.model.is_some() {
                "learned score (a snapshot)"
            } else {
                "exact score"
            };
            chart(job, score, self.seconds, p);
        }
    }

    fn snapshot(&self) -> Option<serde_json::Value> {
        let (_, job) = self.job.as_ref()?;
        let (done, all) = job.progress();
        Some(serde_json::json!({
            "score": if self.model.is_some() { "learned" } else { "exact" },
            "done": done,
            "runs": all,
            "seconds": self.seconds,
            "rows": job.rows,
        }))
    }
}

/// The inset at the canvas's bottom right: two log–log panels, log₂ NFE across — the worst
/// component's spread error against true samples (every sampler) and the median distance to
/// the exact PF-ODE solution from the same start (the deterministic few-step samplers) — and
/// one legend.
fn chart(job: &Job, score: &str, seconds: f64, p: &Plot) {
    let style = &p.style;
    let size = egui::vec2(520.0, 220.0);
    let outer = Rect::from_min_size(p.rect.right_bottom() - size - egui::vec2(10.0, 10.0), size);
    let bg = if style.light {
        Color32::from_rgba_unmultiplied(255, 255, 255, 235)
    } else {
        Color32::from_rgba_unmultiplied(10, 10, 16, 225)
    };
    p.painter.rect_filled(outer, 4.0, bg);
    let font = egui::FontId::proportional(11.0);
    let (done, all) = job.progress();
    p.painter.text(
        outer.min + egui::vec2(8.0, 5.0),
        egui::Align2::LEFT_TOP,
        format!("error vs score evaluations (NFE), {score}: {done}/{all} runs, {seconds:.1} s"),
        font.clone(),
        style.text,
    );
    let half = (size.x - 60.0) / 2.0;
    let top = outer.top() + 40.0;
    let bottom = outer.bottom() - 36.0;
    let left = Rect::from_min_max(
        Pos2::new(outer.left() + 40.0, top),
        Pos2::new(outer.left() + 40.0 + half - 10.0, bottom),
    );
    let right = Rect::from_min_max(
        Pos2::new(left.right() + 44.0, top),
        Pos2::new(outer.right() - 10.0, bottom),
    );
    panel(job, p, left, "worst spread error", (-2.0, 1.0), |r| {
        Some(r.spread_error)
    });
    panel(
        job,
        p,
        right,
        "distance to the ODE solution",
        (-6.0, 0.0),
        |r| r.ode_error,
    );
    let mut x = outer.left() + 10.0;
    let y = outer.bottom() - 12.0;
    for (i, name) in SAMPLERS.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        p.painter.line_segment(
            [Pos2::new(x, y), Pos2::new(x + 12.0, y)],
            Stroke::new(2.0, color),
        );
        let r = p.painter.text(
            Pos2::new(x + 15.0, y),
            egui::Align2::LEFT_CENTER,
            *name,
            font.clone(),
            style.text,
        );
        x = r.right() + 14.0;
    }
}

/// One panel: `metric` of each sampler's rows against log₂ NFE (4..512), log₁₀ from `ys`.
fn panel(
    job: &Job,
    p: &Plot,
    area: Rect,
    title: &str,
    (y_lo, y_hi): (f64, f64),
    metric: impl Fn(&crate::sim::samplers::sweep::SweepRow) -> Option<f64>,
) {
    let style = &p.style;
    let painter = p.painter;
    let font = egui::FontId::proportional(10.5);
    painter.text(
        Pos2::new(area.left(), area.top() - 4.0),
        egui::Align2::LEFT_BOTTOM,
        title,
        font.clone(),
        style.text,
    );
    let x_of = |nfe: f64| {
        let u = (nfe.log2() - 2.0) / 7.0;
        area.left() + u.clamp(0.0, 1.0) as f32 * area.width()
    };
    let y_of = |e: f64| {
        let v = (e.max(1e-12).log10() - y_lo) / (y_hi - y_lo);
        area.bottom() - v.clamp(0.0, 1.0) as f32 * area.height()
    };
    painter.rect_stroke(
        area,
        0.0,
        Stroke::new(1.0, style.text.gamma_multiply(0.5)),
        egui::StrokeKind::Inside,
    );
    for nfe in [4.0, 16.0, 64.0, 256.0] {
        painter.text(
            Pos2::new(x_of(nfe), area.bottom() + 2.0),
            egui::Align2::CENTER_TOP,
            format!("{nfe}"),
            font.clone(),
            style.text,
        );
    }
    let mut e = y_lo.ceil() as i32;
    while f64::from(e) <= y_hi {
        painter.text(
            Pos2::new(area.left() - 4.0, y_of(10f64.powi(e))),
            egui::Align2::RIGHT_CENTER,
            format!("1e{e}"),
            font.clone(),
            style.text,
        );
        e += if y_hi - y_lo > 4.0 { 2 } else { 1 };
    }
    for (i, name) in SAMPLERS.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<Pos2> = job
            .rows
            .iter()
            .filter(|r| r.sampler == *name)
            .filter_map(|r| Some((r.nfe, metric(r).filter(|v| v.is_finite())?)))
            .map(|(n, v)| Pos2::new(x_of(n as f64), y_of(v)))
            .collect();
        for q in &pts {
            painter.circle_filled(*q, 2.2, color);
        }
        painter.add(egui::Shape::line(pts, Stroke::new(1.6, color)));
    }
}

//! Flow matching beside score matching (issue 31): a velocity network trained live by
//! conditional flow matching in the engine, beside the score network (`engine::flow`: the
//! view asks for it in its frame request, the engine reports the EMA weights), its arrows
//! against the exact marginal velocity
//! (closed form, `sim::flow`), the straight conditional paths x₀ → x₁ beside the curved
//! marginal paths the ODE follows, a few-step Euler run of the model, one round of reflow from
//! the model's own couplings, and the score the velocity implies next to the exact score.
//! Flow time runs the other way from the SDEs': flow t = 1 − (the slider's t), so the slider's
//! noise end is the flow's source. `state().views.flow` holds its numbers.

use eframe::egui::{self, Color32, Stroke};

use super::{Frame, Side, View};
use crate::app::canvas::{Legend, Plot};
use crate::engine::flow::{FlowJob, FlowReport, REFLOW_AFTER};
use crate::engine::FrameRequest;
use crate::sim::flow::{self, ExactVelocity, FlowNet, FlowPath, FlowSolver, VelocityModel};
use crate::sim::metrics::errors_against;
use crate::sim::rng::StreamRng;
use crate::sim::samplers::Rk45;
use crate::sim::Vec2;
use crate::state::State;

/// The learned velocity's arrows (white on the dark canvas, black on the projector's light
/// one: apart from the score arrows' purple–yellow scale).
const LEARNED: Color32 = Color32::from_rgb(245, 245, 245);
const LEARNED_ON_LIGHT: Color32 = Color32::from_rgb(20, 20, 20);
/// The exact velocity's arrows.
const EXACT: Color32 = Color32::from_rgb(90, 210, 255);
/// The straight conditional paths.
const STRAIGHT: Color32 = Color32::from_rgb(170, 170, 170);
/// The marginal ODE paths and the Euler run's end points.
const CURVED: Color32 = Color32::from_rgb(230, 120, 230);
/// The learned minus the exact velocity.
const DIFFERENCE: Color32 = Color32::from_rgb(235, 50, 50);
/// Arrows per side.
const GRID: usize = 16;
/// Paths drawn, and the times each has a point at (more where RK45 steps more).
const PATHS: usize = 24;
const PATH_POINTS: usize = 32;
/// Particles of the few-step Euler run.
const EULER_N: usize = 1000;
/// True samples whose log-likelihood the flow computes (instantaneous change of variables,
/// [`LIKELIHOOD_STEPS`] RK4 steps each, on the page's thread once a measurement).
const LIKELIHOOD_N: usize = 64;
const LIKELIHOOD_STEPS: usize = 16;

/// Measurements, refreshed every [`MEASURE_EVERY`] training steps.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct Numbers {
    /// Relative velocity error E‖v_θ − u‖² / E‖u‖² at the shown flow t.
    error_at_t: f64,
    /// The same at `sim::flow::velocity_error_times()`, and their mean (the velocity's
    /// "Fisher": what `< 0.1` means learned).
    errors: Vec<f64>,
    mean_error: f64,
    /// The few-step run on the model (`solver` with `euler_steps` steps; RK45 adaptive):
    /// largest mode-fraction and spread errors against true samples, and the velocity
    /// evaluations per particle it took. (The keys keep the name of the default solver.)
    solver: FlowSolver,
    euler_steps: usize,
    nfe: f64,
    euler_weight_error: f64,
    euler_spread_error: f64,
    /// The same run (solver, steps, source points) on the exact velocity: what the solver
    /// costs on its own, apart from the model's error.
    exact_nfe: f64,
    exact_weight_error: f64,
    exact_spread_error: f64,
    /// Mean negative log-likelihood of true samples: the model's by the instantaneous change
    /// of variables, the exact velocity's the same way (the ODE solve's own error) and the
    /// true density's.
    nll_model: f64,
    nll_exact_flow: f64,
    nll_true: f64,
    /// How straight the model's paths are (`sim::flow::straightness_gap`).
    straightness: f64,
}

const MEASURE_EVERY: u32 = 400;
/// Training steps between recomputed paths and Euler runs.
const PATHS_EVERY: u32 = 100;

/// The engine's latest network and the view's caches.
#[derive(Default)]
pub struct Flow {
    /// The engine's latest report: the EMA network, its steps, whether reflow's couplings are
    /// in use (the second round starts when `flow_reflow` is on and the first round has trained
    /// [`REFLOW_AFTER`] steps on this mixture) and the step the first round started at.
    report: Option<FlowReport>,
    exact: Option<ExactVelocity>,
    revision: u64,
    numbers: Option<(u32, Numbers)>,
    arrows: Vec<(Vec2, Vec2, Vec2)>,
    scores: Vec<(Vec2, Vec2, Vec2)>,
    paths: Vec<(Vec<Vec2>, Vec2, Vec2)>,
    euler: Vec<Vec2>,
    /// The same run on the exact velocity (drawn with the exact arrows on).
    euler_exact: Vec<Vec2>,
    /// What the paths were computed for: (training step, flow t, mixture revision, reflow,
    /// few-step run, with the exact velocity's run).
    paths_key: Option<(u32, f64, u64, bool, Run, bool)>,
}

/// The few-step run: the state's `layers.flow_solver` with `layers.flow_euler` steps
/// (within 1..=64; RK45 chooses its own).
type Run = (FlowSolver, usize);

/// A solver's name for people.
fn solver_label(s: FlowSolver) -> &'static str {
    match s {
        FlowSolver::Euler => "Euler",
        FlowSolver::Heun => "Heun",
        FlowSolver::Rk4 => "RK4",
        FlowSolver::Rk45 => "RK45",
    }
}

fn few_step_run(st: &State) -> Run {
    (
        st.layers.flow_solver,
        st.layers.flow_euler.clamp(1, 64) as usize,
    )
}

/// The few-step run's end points from the source and its evaluations per particle.
fn run_flow(net: &dyn VelocityModel, path: &FlowPath, (solver, steps): Run) -> (Vec<Vec2>, f64) {
    let mut xs = flow::source_points(path, EULER_N, 5);
    let nfe = flow::flow_integrate(net, &mut xs, steps, solver);
    (xs, nfe as f64 / EULER_N as f64)
}

/// Mean −log p(x) of `xs` by the instantaneous change of variables along `v`.
fn nll(v: &dyn VelocityModel, path: &FlowPath, xs: &[Vec2]) -> f64 {
    let sum: f64 = xs
        .iter()
        .map(|x| -flow::flow_log_likelihood(v, path, *x, LIKELIHOOD_STEPS).0)
        .sum();
    sum / xs.len().max(1) as f64
}

fn measure(net: &FlowNet, exact: &ExactVelocity, t: f64, run: Run) -> Numbers {
    let errors = flow::relative_velocity_error(net, exact, &flow::velocity_error_times(), 400, 1);
    let error_at_t = flow::relative_velocity_error(net, exact, &[t], 400, 2)[0];
    let m = &exact.mixture;
    let (xs, nfe) = run_flow(net, &exact.path, run);
    let truth = m.sample(4 * EULER_N, &mut StreamRng::new(6, 0));
    let (euler_weight_error, euler_spread_error) = errors_against(m, &xs, &truth);
    let (exact_xs, exact_nfe) = run_flow(exact, &exact.path, run);
    let (exact_weight_error, exact_spread_error) = errors_against(m, &exact_xs, &truth);
    let mean_error = errors.iter().sum::<f64>() / errors.len() as f64;
    let data = m.sample(LIKELIHOOD_N, &mut StreamRng::new(8, 0));
    Numbers {
        error_at_t,
        errors,
        mean_error,
        solver: run.0,
        euler_steps: run.1,
        nfe,
        euler_weight_error,
        euler_spread_error,
        exact_nfe,
        exact_weight_error,
        exact_spread_error,
        nll_model: nll(net, &exact.path, &data),
        nll_exact_flow: nll(exact, &exact.path, &data),
        nll_true: -data.iter().map(|x| m.log_prob(*x)).sum::<f64>() / data.len() as f64,
        straightness: flow::straightness_gap(net, &exact.path, 100, 7),
    }
}

impl Flow {
    /// The flow time the canvas shows.
    fn flow_t(st: &State) -> f64 {
        (1.0 - st.scene.t).clamp(0.0, 1.0)
    }

    /// The exact velocity of `mixture` (rebuilt when it changes), and the engine's latest
    /// network.
    fn follow(&mut self, f: &Frame) {
        let (mixture, revision) = (&f.data.mixture, f.data.revision);
        if self.revision != revision || self.exact.is_none() {
            self.exact = Some(ExactVelocity::new(mixture.clone()));
            self.revision = revision;
            self.numbers = None;
        }
        match &f.host.flow {
            None => {
                // No network (the view just turned on, or a new engine): nothing of an old
                // one stays on screen.
                if self.report.take().is_some() {
                    self.numbers = None;
                    self.arrows.clear();
                    self.scores.clear();
                    self.paths.clear();
                    self.euler.clear();
                    self.euler_exact.clear();
                    self.paths_key = None;
                }
            }
            Some(r) if self.report.as_ref().is_none_or(|o| o.steps != r.steps) => {
                if self
                    .report
                    .as_ref()
                    .is_some_and(|o| o.reflowing != r.reflowing || r.steps < o.steps)
                {
                    // Another round, or a fresh network (a new engine): measure it anew.
                    self.numbers = None;
                }
                self.report = Some(r.clone());
            }
            Some(_) => {}
        }
    }

    fn reflowing(&self) -> bool {
        self.report.as_ref().is_some_and(|r| r.reflowing)
    }

    fn refresh(&mut self, f: &Frame, view: (Vec2, Vec2)) {
        let (Some(r), Some(exact)) = (self.report.as_ref(), self.exact.as_ref()) else {
            return;
        };
        let st = f.state;
        let t = Self::flow_t(st);
        let net = &r.net;
        let (lo, hi) = view;
        let points: Vec<Vec2> = (0..GRID * GRID)
            .map(|i| {
                let (a, b) = ((i % GRID) as f64 + 0.5, (i / GRID) as f64 + 0.5);
                Vec2::new(
                    lo.x + (hi.x - lo.x) * a / GRID as f64,
                    lo.y + (hi.y - lo.y) * b / GRID as f64,
                )
            })
            .collect();
        let mut learned = vec![Vec2::zeros(); points.len()];
        let mut truth = vec![Vec2::zeros(); points.len()];
        net.velocity_batch(&points, t, &mut learned);
        exact.velocity_batch(&points, t, &mut truth);
        self.arrows = points
            .iter()
            .zip(learned.iter().zip(&truth))
            .map(|(p, (l, e))| (*p, *l, *e))
            .collect();
        self.scores.clear();
        if st.layers.flow_score && t > 1e-3 && t < 1.0 - 1e-3 {
            let pt = exact.path.marginal(&exact.mixture, t);
            self.scores = points
                .iter()
                .zip(&learned)
                .map(|(p, l)| {
                    (
                        *p,
                        flow::score_from_velocity(&exact.path, *p, t, *l),
                        pt.score(*p),
                    )
                })
                .collect();
        }
        let steps = r.steps;
        let reflowing = r.reflowing;
        let run = few_step_run(st);
        let key = (t, self.revision, reflowing, run, st.layers.flow_exact);
        let fresh = self.paths_key.is_some_and(|(at, kt, rev, re, k, ex)| {
            steps < at + PATHS_EVERY && (kt, rev, re, k, ex) == key
        });
        if !st.layers.flow_paths {
            self.paths.clear();
            self.euler.clear();
            self.euler_exact.clear();
            self.paths_key = None;
        } else if !fresh {
            let x0 = flow::source_points(&exact.path, PATHS, 11);
            let x1 = exact.mixture.sample(PATHS, &mut StreamRng::new(12, 0));
            let curves = x0.iter().map(|x| ode_path(net, *x));
            self.paths = curves
                .into_iter()
                .zip(x0.iter().zip(&x1))
                .map(|(c, (a, b))| (c, *a, *b))
                .collect();
            self.euler = run_flow(net, &exact.path, run).0;
            self.euler_exact = if st.layers.flow_exact {
                run_flow(exact, &exact.path, run).0
            } else {
                Vec::new()
            };
            self.paths_key = Some((
                steps,
                t,
                self.revision,
                reflowing,
                run,
                st.layers.flow_exact,
            ));
        }
        if self
            .numbers
            .as_ref()
            .is_none_or(|(at, n)| steps >= at + MEASURE_EVERY || (n.solver, n.euler_steps) != run)
        {
            self.numbers = Some((steps, measure(net, exact, t, run)));
        }
    }
}

/// The model's ODE path from `x0` to flow t = 1 as drawn: a point at each of [`PATH_POINTS`]
/// times and at every step adaptive RK45 (tolerance 1e-5) takes between them, so the line is
/// dense where the field turns it sharply (the reflowed model's field is steep between modes;
/// fixed RK4 steps drew kinks there).
fn ode_path(net: &FlowNet, x0: Vec2) -> Vec<Vec2> {
    let mut f = |t: f64, y: &[f64], dy: &mut [f64]| {
        let u = net.velocity(Vec2::new(y[0], y[1]), t);
        dy[0] = u.x;
        dy[1] = u.y;
    };
    let mut pts = vec![x0];
    let mut x = x0;
    for k in 0..PATH_POINTS {
        let (a, b) = (
            k as f64 / PATH_POINTS as f64,
            (k + 1) as f64 / PATH_POINTS as f64,
        );
        let mut ode = Rk45::new(a, vec![x.x, x.y], b, 1e-5, 1e-5);
        // (A cap: a non-finite field must not hang the frame.)
        for _ in 0..1000 {
            if ode.done() {
                break;
            }
            let t = ode.t;
            ode.step(&mut f);
            if ode.t > t {
                pts.push(Vec2::new(ode.y[0], ode.y[1]));
            }
        }
        x = Vec2::new(ode.y[0], ode.y[1]);
    }
    pts
}

/// An arrow of `v` on a cell of the grid: its length grows as √(|v| / scale) (the fields span
/// orders of magnitude), or in proportion with `linear` (the difference arrows: a 1% error is
/// 1% of the longest arrow, so a small error looks small).
fn arrow(p: &Plot, at: Vec2, v: Vec2, (scale, linear): (f64, bool), color: Color32, width: f32) {
    let n = v.norm();
    if !(n.is_finite() && n > 0.0) {
        return;
    }
    let cell = (p.rect.width().min(p.rect.height()) / GRID as f32) * 0.9;
    let r = n / scale;
    let len = cell * if linear { r } else { r.sqrt() }.min(1.0) as f32;
    let dir = egui::vec2(v.x as f32, -v.y as f32) / n as f32;
    p.painter.arrow(
        p.to_screen.screen_from_data(at),
        dir * len,
        Stroke::new(width * p.style.line, color),
    );
}

impl View for Flow {
    fn name(&self) -> &'static str {
        "flow"
    }

    fn panel_order(&self) -> u8 {
        2
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        let was = st.layers.flow;
        ui.checkbox(&mut st.layers.flow, "flow matching: velocity arrows")
            .on_hover_text("Train a velocity field v(x, t) by conditional flow matching, live, in the engine that trains the score network (beside it): x_t = (1 − t) x₀ + t x₁ from noise x₀ ~ N(m, d² I) to data x₁, loss |v(x_t, t) − (x₁ − x₀)|². White (black on the projector theme): the learned velocity at flow t = 1 − (the slider's t), replacing the score arrows; cyan: the exact marginal velocity E[x₁ − x₀ | x_t], known in closed form for a Gaussian mixture.");
        if st.layers.flow != was {
            // One field at a time: the velocity's arrows replace the score's (which come back
            // when flow matching is turned off; either can be toggled on its own after).
            st.layers.arrows = !st.layers.flow;
        }
        if !st.layers.flow {
            return;
        }
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut st.layers.flow_exact, "exact velocity");
            ui.checkbox(&mut st.layers.flow_diff, "difference")
                .on_hover_text("Red: the learned minus the exact velocity, on the velocity's scale (so a small error looks small), instead of both fields.");
            ui.checkbox(&mut st.layers.flow_paths, "straight vs curved paths")
                .on_hover_text("Grey: straight conditional paths from a noise point x₀ to a data point x₁ (what training regresses on). Pink: the marginal paths the learned ODE follows from the same x₀ (curved: it averages over every x₁), and the end points of a few-step Euler run of the model (its steps below).");
            ui.checkbox(&mut st.layers.flow_reflow, "reflow")
                .on_hover_text("Rectified flow's second round (it starts once the first has trained 1500 steps on this mixture): pair each noise point with where the model's own ODE takes it, (x₀, the x₁ its ODE reaches), and train on those pairs. The paths straighten, so few Euler steps suffice; the velocity no longer equals the marginal one.");
            ui.checkbox(&mut st.layers.flow_score, "implied score")
                .on_hover_text("The score the velocity implies, (t v − (x − m)) / ((1 − t) d²), white, next to the exact score of p_t, cyan: for this path velocity and score are affine in each other.");
        });
        {
            egui::ComboBox::from_label("solver")
                .selected_text(solver_label(st.layers.flow_solver))
                .show_ui(ui, |ui| {
                    for s in FlowSolver::ALL {
                        ui.selectable_value(&mut st.layers.flow_solver, s, solver_label(s));
                    }
                })
                .response
                .on_hover_text("How the few-step run integrates the learned ODE: Euler (1 velocity evaluation a step), Heun (2), RK4 (4), or adaptive RK45 (Dormand-Prince, tolerance 1e-5: it picks its own steps).");
            let adaptive = st.layers.flow_solver == FlowSolver::Rk45;
            let label = format!("{} steps", solver_label(st.layers.flow_solver));
            ui.add_enabled(
                !adaptive,
                egui::Slider::new(&mut st.layers.flow_euler, 1..=64).logarithmic(true).text(label),
            )
            .on_hover_text("Steps of the few-step run of the model (its end points are the pink dots with the paths on; with the exact velocity on, the cyan dots are the same run on the exact velocity): how few steps does the flow need, before and after reflow?");
        }
        if let Some((_, n)) = &self.numbers {
            let steps = if n.solver == FlowSolver::Rk45 {
                "adaptive".to_string()
            } else {
                format!("{} steps", n.euler_steps)
            };
            ui.add(egui::Label::new(format!(
                "velocity error {:.3} (mean over t), {:.3} at flow t = {:.2} · {} {steps} (NFE {:.0}): weights off by {:.3}, spreads by {:.0}%",
                n.mean_error,
                n.error_at_t,
                Self::flow_t(st),
                solver_label(n.solver),
                n.nfe,
                n.euler_weight_error,
                100.0 * n.euler_spread_error
            )).wrap());
            ui.add(egui::Label::new(format!(
                "the same run on the exact velocity (NFE {:.0}): weights off by {:.3}, spreads by {:.0}%",
                n.exact_nfe,
                n.exact_weight_error,
                100.0 * n.exact_spread_error
            )).wrap());
            ui.add(egui::Label::new(format!(
                "NLL of true samples: model {:.3}, exact flow {:.3}, true {:.3} (instantaneous change of variables, {LIKELIHOOD_STEPS} RK4 steps)",
                n.nll_model, n.nll_exact_flow, n.nll_true
            )).wrap());
        }
    }

    fn request(&self, f: &Frame, _view: (Vec2, Vec2), req: &mut FrameRequest) {
        let l = &f.state.layers;
        if l.flow {
            req.flow = Some(FlowJob {
                reflow: l.flow_reflow,
            });
        }
    }

    fn update(&mut self, _ctx: &egui::Context, f: &Frame, view: (Vec2, Vec2)) {
        let st = f.state;
        if !st.layers.flow {
            *self = Self::default();
            return;
        }
        self.follow(f);
        self.refresh(f, view);
    }

    fn paint(&self, f: &Frame, side: &Side, p: &Plot) {
        let st = f.state;
        if !st.layers.flow || side.index != 0 {
            return;
        }
        for (c, a, b) in &self.paths {
            let s = p.to_screen.screen_from_data(*a);
            let e = p.to_screen.screen_from_data(*b);
            p.painter
                .line_segment([s, e], Stroke::new(0.8 * p.style.line, STRAIGHT));
            let pts: Vec<egui::Pos2> = c.iter().map(|x| p.to_screen.screen_from_data(*x)).collect();
            p.painter.add(egui::Shape::line(
                pts,
                Stroke::new(1.2 * p.style.line, CURVED),
            ));
        }
        for (xs, color) in [(&self.euler_exact, EXACT), (&self.euler, CURVED)] {
            for x in xs {
                p.painter
                    .circle_filled(p.to_screen.screen_from_data(*x), 1.2 * p.style.dot, color);
            }
        }
        let (field, exact_on): (&[(Vec2, Vec2, Vec2)], bool) = if st.layers.flow_score {
            (&self.scores, true)
        } else {
            (&self.arrows, st.layers.flow_exact)
        };
        let scale = field
            .iter()
            .map(|(_, l, e)| l.norm().max(e.norm()))
            .filter(|n| n.is_finite())
            .fold(0.0, f64::max)
            .max(1e-12);
        let learned = if p.style.light {
            LEARNED_ON_LIGHT
        } else {
            LEARNED
        };
        for (x, l, e) in field {
            if st.layers.flow_diff {
                arrow(p, *x, *l - *e, (scale, true), DIFFERENCE, 1.4);
                continue;
            }
            if exact_on {
                arrow(p, *x, *e, (scale, false), EXACT, 1.0);
            }
            arrow(p, *x, *l, (scale, false), learned, 1.4);
        }
    }

    fn legends(&self, f: &Frame, _side: &Side, legends: &mut Vec<Legend>, _: &mut Vec<Legend>) {
        let st = f.state;
        if !st.layers.flow {
            return;
        }
        let what = match (st.layers.flow_score, st.layers.flow_diff) {
            (true, false) => "score from the velocity",
            (true, true) => "score from the velocity minus the exact score",
            (false, false) => "velocity",
            (false, true) => "learned minus exact velocity",
        };
        let (steps, round_from) = self
            .report
            .as_ref()
            .map_or((0, 0), |r| (r.steps, r.round_from));
        let round = if self.reflowing() {
            " (reflow)".to_string()
        } else if st.layers.flow_reflow {
            format!(
                " (reflow after {} steps of the first round)",
                (round_from + REFLOW_AFTER).saturating_sub(steps)
            )
        } else {
            String::new()
        };
        let learned = if st.theme == crate::state::Theme::Projector {
            LEARNED_ON_LIGHT
        } else {
            LEARNED
        };
        // The exact swatch only where exact arrows are drawn.
        let exact_shown = (st.layers.flow_exact || st.layers.flow_score) && !st.layers.flow_diff;
        let colors = if st.layers.flow_diff {
            vec![DIFFERENCE; 40]
        } else if exact_shown {
            [learned; 20].into_iter().chain([EXACT; 20]).collect()
        } else {
            vec![learned; 40]
        };
        legends.push(Legend {
            title: format!(
                "flow matching{round}: {what} at flow t = {:.2}, {steps} steps",
                Self::flow_t(st)
            ),
            colors,
            labels: [
                if st.layers.flow_diff {
                    "difference"
                } else {
                    "learned"
                }
                .into(),
                String::new(),
                if exact_shown { "exact" } else { "" }.into(),
            ],
        });
    }

    fn snapshot(&self) -> Option<serde_json::Value> {
        let r = self.report.as_ref()?;
        Some(serde_json::json!({
            "steps": r.steps,
            "loss": r.loss,
            "seconds": r.seconds,
            "engine": r.engine,
            "reflow": r.reflowing,
            "reflow_after": r.round_from + REFLOW_AFTER,
            "measured_at_step": self.numbers.as_ref().map(|(s, _)| *s),
            "numbers": self.numbers.as_ref().map(|(_, n)| n),
            "arrows": self.arrows.len(),
            // The largest |learned − exact| over the arrows' grid, relative to the largest
            // exact velocity there (what the difference arrows show, on that scale).
            "max_difference": self.arrows.iter().map(|(_, l, e)| (l - e).norm()).fold(0.0, f64::max)
                / self.arrows.iter().map(|(_, _, e)| e.norm()).fold(1e-12, f64::max),
            "paths": self.paths.len(),
        }))
    }
}

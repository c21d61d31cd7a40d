//! The egui app (ARCHITECTURE.md §1 "app"): shows the [`State`] and turns every input into a
//! [`Command`]; the science runs in the engine layer (`crate::engine`) and `sim`.
//!
//! Per frame: JS calls, keys and dropped files become commands → the panel edits a copy of
//! the state (a changed copy is one `Command::SetState`) → the canvas's edits become
//! commands → [`ScoreLabApp::apply`] applies each and decides in one place what the engine
//! must redo → the engine runs its frame ([`host::Host::frame`]) → paint → publish the JSON
//! snapshot ([`state_json`]) for the JS embed API.

mod apply;
pub mod canvas;
pub mod explain;
pub mod files;
pub mod host;
pub mod overlays;
mod panels;
pub mod particles;
pub mod perf;
pub mod png;
mod snapshot;

use std::sync::Arc;

use eframe::egui;
use web_time::Instant;

use crate::app::host::{Host, Platform};
use crate::app::overlays::{ClickTool, Lessons};
use crate::engine::{EngineChoice, LiveSampling, TrainSettings};
use crate::sim::mixture::{GaussianMixture, MixtureSpec};
use crate::sim::rng::StreamRng;
use crate::sim::Vec2;
use crate::state::command::{self as api, Command};
use crate::state::link::{self, EmbedFlags};
use crate::state::{SplitMode, State};

pub use snapshot::state_json;

/// Number of samples drawn from the mixture for display.
const N_SAMPLES: usize = 2000;
/// Undo history length.
const UNDO_DEPTH: usize = 100;

/// Start-up options from the shell (e.g. the page's `?engine=gpu`, its `#s=…` hash).
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Force an engine instead of the automatic choice.
    pub engine: Option<EngineChoice>,
    /// The URL hash the page was opened with (a share link).
    pub hash: Option<String>,
    /// The page's address without the hash (for "Copy link").
    pub page_url: String,
    /// Keep the CPU engine on the UI thread (`?worker=0`) instead of a Web Worker / thread.
    pub no_offload: bool,
    /// Measure both engines even on a software adapter (`?probe=1`).
    pub probe_software: bool,
    /// Train on the CPU engine and sample on the GPU engine (`?engine=split`; the probe
    /// picks this where it measures each engine faster at its part).
    pub split: bool,
}

/// The validated mixture (the state holds its spec), samples from it, and the undo history.
pub struct Data {
    /// The mixture of `state.scene.mixture`.
    pub mixture: GaussianMixture,
    /// Samples for the canvas.
    pub samples: Vec<Vec2>,
    /// Bumped on every mixture change (cache keys of what depends on it).
    pub revision: u64,
    /// Earlier mixtures.
    pub undo: Vec<MixtureSpec>,
    /// Undone mixtures.
    pub redo: Vec<MixtureSpec>,
}

impl Data {
    fn resample(&mut self, seed: u32) {
        self.samples = self.mixture.sample(N_SAMPLES, &mut StreamRng::new(seed, 0));
    }

    fn remember(&mut self, spec: MixtureSpec) {
        self.undo.push(spec);
        if self.undo.len() > UNDO_DEPTH {
            self.undo.remove(0);
        }
        self.redo.clear();
    }
}

/// UI-only state: messages, tools, the embed flags.
pub struct UiState {
    /// The keyboard help is open.
    pub help_open: bool,
    /// The theme and UI scale last applied to egui.
    pub look: Option<(crate::state::Theme, f64)>,
    /// The panels' theme as egui shows it ("dark" / "light"; auto follows the system).
    pub shown_theme: &'static str,
    /// egui's zoom factor as applied.
    pub zoom: f32,
    /// A control has the keyboard focus (Tab moves it).
    pub keyboard_focus: bool,
    /// The screen is narrow (the controls are a drawer).
    pub narrow: bool,
    /// The controls drawer is open (narrow screens).
    pub drawer_open: bool,
    /// What a canvas click does.
    pub tool: ClickTool,
    /// Which sampler the panel edits (split view).
    pub edit_slot: usize,
    /// Messages from the last export / import.
    pub file_message: Option<String>,
    /// The last refused edit.
    pub error: Option<String>,
    /// The engine's last warning.
    pub warning: Option<String>,
    /// Why the link the page was opened with was refused.
    pub link_error: Option<String>,
    /// Embed flags of the link.
    pub flags: EmbedFlags,
    /// The page's address without the hash.
    pub page_url: String,
    /// The plot's rectangle (what `exportPng` captures).
    pub plot_rect: egui::Rect,
}

/// Frame timing.
struct Clock {
    frame: u64,
    last_frame: Option<Instant>,
    fps: f64,
    perf: perf::PerfWindow,
    on_first_frame: Option<Box<dyn FnOnce()>>,
}

/// The application.
pub struct ScoreLabApp {
    state: State,
    data: Data,
    host: Host,
    platform: Platform,
    lessons: Lessons,
    canvas: canvas::CanvasState,
    ui: UiState,
    clock: Clock,
}

/// A screenshot waiting to be cut and encoded: (request id, image).
type Shot = (u32, Arc<egui::ColorImage>);
static SHOT: std::sync::Mutex<Option<Shot>> = std::sync::Mutex::new(None);

impl ScoreLabApp {
    /// Build from eframe's creation context; `on_first_frame` runs after the first painted frame
    /// (the web shell uses it to signal readiness).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        on_first_frame: Option<Box<dyn FnOnce()>>,
        options: AppOptions,
    ) -> Self {
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            particles::install(rs);
        }
        let mut platform = Platform::new(cc.wgpu_render_state.as_ref());
        platform.offload = !options.no_offload;
        platform.probe_software = options.probe_software;
        // Measured (see the issue notes): on software WebGPU (SwiftShader) the WGSL trainer runs
        // ~2 steps/s while the wasm CPU engine runs ~80, so software adapters default to the CPU
        // engine; `?engine=gpu` or the panel switch forces the GPU one.
        let choice = options.engine.unwrap_or(if platform.software {
            EngineChoice::Cpu
        } else {
            EngineChoice::Gpu
        });
        let mut state = State {
            settings: if platform.software {
                TrainSettings::small()
            } else {
                TrainSettings::gpu()
            },
            ..State::default()
        };
        let mixture =
            GaussianMixture::from_spec(&state.scene.mixture).unwrap_or_else(|_| fallback_mixture());
        let fast = platform.fast_gpu(choice);
        for slot in 0..state.samplers.len() {
            state.samplers[slot] = default_sampling(&state.samplers[slot], slot, &mixture, fast);
        }
        let mut data = Data {
            mixture,
            samples: Vec::new(),
            revision: 0,
            undo: Vec::new(),
            redo: Vec::new(),
        };
        data.resample(state.scene.seed);
        let mut host = Host::new(choice);
        host.auto = options.engine.is_none() && !options.split;
        host.split = options.split;
        let mut app = Self {
            state,
            data,
            host,
            platform,
            lessons: Lessons::default(),
            canvas: canvas::CanvasState::default(),
            ui: UiState {
                look: None,
                shown_theme: "dark",
                zoom: 1.0,
                narrow: false,
                keyboard_focus: false,
                drawer_open: false,
                help_open: false,
                tool: ClickTool::default(),
                edit_slot: 0,
                file_message: None,
                error: None,
                warning: None,
                link_error: None,
                flags: EmbedFlags::default(),
                page_url: options.page_url.clone(),
                plot_rect: egui::Rect::NOTHING,
            },
            clock: Clock {
                frame: 0,
                last_frame: None,
                fps: 0.0,
                perf: perf::PerfWindow::default(),
                on_first_frame,
            },
        };
        let mut opened = None;
        if let Some(hash) = options
            .hash
            .as_deref()
            .filter(|h| !h.trim_start_matches('#').is_empty())
        {
            match link::parse_hash(hash) {
                Ok(link) => {
                    // `#lesson=N` without a state opens the lesson's own state.
                    opened = link.shared.or_else(|| {
                        let n = link.flags.lesson?;
                        crate::state::lessons::lesson(n)?.state().ok()
                    });
                    app.ui.flags = link.flags;
                }
                Err(e) => {
                    log::warn!("share link refused: {e}");
                    app.ui.link_error = Some(format!(
                        "This link could not be read ({e}); ScoreLab started with the defaults."
                    ));
                }
            }
        }
        let old = app.state.clone();
        if let Some(st) = opened {
            app.state = st;
        }
        app.sync(&old, apply::Effects::rebuild());
        app
    }

    /// The state as the user has set it (what a share link holds).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The lesson player: a panel beside the canvas with the lesson's text and Back / Next,
    /// or (embedded with the controls hidden) a caption under the canvas. A failure scene
    /// shows why it fails and the number it measures, live.
    fn lesson_ui(&mut self, ui: &mut egui::Ui, n: usize, window: bool, cmds: &mut Vec<Command>) {
        use crate::state::lessons;
        let Some(l) = lessons::lesson(n) else {
            return;
        };
        let count = lessons::count();
        let header = match n.checked_sub(lessons::LESSONS.len() + 1) {
            Some(k) if l.check.is_some() => {
                format!("Failure scene {} of {}", k + 1, lessons::FAILURES.len())
            }
            _ => format!("Lesson {n} of {}", lessons::LESSONS.len()),
        };
        if !window {
            egui::Panel::bottom("lesson_caption").show(ui, |ui| {
                ui.strong(format!("{header}: {}", l.title));
                ui.label(l.look);
            });
            return;
        }
        let measured = l.check.and_then(|c| self.measured(c.metric));
        // A side panel, not a window: egui's windows and menus would add ≈ 20 kB (gzipped) to
        // a WebGPU build at its 2 MB budget. On a narrow screen it goes under the canvas.
        let panel = if self.ui.narrow {
            let h = ui.ctx().content_rect().height();
            egui::Panel::bottom("lesson_player").exact_size((0.36 * h).clamp(160.0, 420.0))
        } else {
            egui::Panel::right("lesson_player").exact_size(330.0)
        };
        panel.resizable(false).show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.strong(header);
                        if ui.small_button("close").clicked() {
                            cmds.push(Command::OpenLesson(None));
                        }
                    });
                    ui.heading(l.title);
                    ui.label(l.look);
                    if let Some(c) = l.check {
                        ui.strong("Why");
                        ui.label(l.why);
                        ui.strong("Measured");
                        ui.label(match measured {
                            Some(v) => format!(
                                "{}: {v:.2} here (the text's {:.2} was measured on the CPU engine's first run)",
                                c.metric.label(),
                                c.value
                            ),
                            None => format!("{}: waiting for the run…", c.metric.label()),
                        });
                    }
                    ui.strong(if l.check.is_some() { "Fix it" } else { "Try this" });
                    for t in l.try_this {
                        ui.label(format!("• {t}"));
                    }
                    ui.strong("Discuss");
                    ui.label(l.ask);
                    ui.horizontal(|ui| {
                        if ui
                            .add_enabled(n > 1, egui::Button::new("< Back"))
                            .on_hover_text("p")
                            .clicked()
                        {
                            cmds.push(Command::StepLesson(-1));
                        }
                        if ui
                            .add_enabled(n < count, egui::Button::new("Next >"))
                            .on_hover_text("n")
                            .clicked()
                        {
                            cmds.push(Command::StepLesson(1));
                        }
                        if ui
                            .button("Start over")
                            .on_hover_text("this lesson's settings again")
                            .clicked()
                        {
                            cmds.push(Command::OpenLesson(Some(n)));
                        }
                    });
                });
            });
    }

    /// Follow the state's theme and UI scale (when they change).
    fn apply_look(&mut self, ctx: &egui::Context) {
        use crate::state::Theme;
        let want = (self.state.theme, self.state.ui_scale);
        self.ui.zoom = ctx.zoom_factor();
        self.ui.keyboard_focus = ctx.memory(|m| m.focused().is_some());
        self.ui.shown_theme = match ctx.theme() {
            egui::Theme::Dark => "dark",
            egui::Theme::Light => "light",
        };
        if self.ui.look == Some(want) {
            return;
        }
        self.ui.look = Some(want);
        ctx.set_visuals_of(egui::Theme::Light, projector_or_light(want.0));
        ctx.set_visuals_of(egui::Theme::Dark, egui::Visuals::dark());
        ctx.set_theme(match want.0 {
            Theme::Auto => egui::ThemePreference::System,
            Theme::Dark => egui::ThemePreference::Dark,
            Theme::Light | Theme::Projector => egui::ThemePreference::Light,
        });
        ctx.set_zoom_factor(want.1 as f32);
    }

    /// A failure scene's number as this page measures it now (sampler 1's last finished run,
    /// or the difference arrows' score errors).
    fn measured(&self, metric: crate::state::lessons::Metric) -> Option<f64> {
        use crate::state::lessons::Metric;
        // Only a run of the sampler as it is now (not one that finished before a change).
        let live = &self.state.samplers[0];
        let now = self.host.sampler[0].map(|s| s.run);
        let run = self.host.runs[0]
            .as_ref()
            .filter(|r| Some(r.run) == now && r.kind == live.kind && r.n == live.n);
        match metric {
            Metric::Diverged => run.map(|r| r.diverged as f64 / r.n.max(1) as f64),
            Metric::WeightError => run.map(|r| r.max_weight_error),
            Metric::ScoreErrorRatio => {
                Metric::error_ratio(self.lessons.score_errors()?, self.data.mixture.weights())
            }
        }
    }

    /// The share link of the current state.
    fn link(&self) -> String {
        format!(
            "{}{}",
            self.ui.page_url,
            link::to_hash(&self.state, &self.ui.flags)
        )
    }

    /// The status line under the canvas.
    fn status_line(&self) -> String {
        let engine = self.host.engine.as_ref().map_or("none".to_string(), |e| {
            let trains = match e.runs_on() {
                "page" => e.label().to_string(),
                place => format!("{} ({place})", e.label()),
            };
            match e.sampling_label() {
                Some(s) => format!("{trains} training, {s} sampling"),
                None => trains,
            }
        });
        let sampler = self.host.sampler[0].map_or("particles off".to_string(), |s| {
            let diverged = self.host.runs[0]
                .as_ref()
                .filter(|r| r.run == s.run && r.diverged > 0)
                .map_or(String::new(), |r| {
                    format!(" · {} of {} diverged", r.diverged, r.n)
                });
            format!(
                "{} · {} particles · NFE {} · run {} at t = {:.3}{diverged}",
                s.kind.name(),
                s.n,
                s.nfe,
                s.run,
                s.t
            )
        });
        let b = &self.platform.backend;
        let probe = if self.host.probing() {
            " · measuring the CPU and GPU engines…".to_string()
        } else {
            self.host
                .probe_result
                .as_ref()
                .filter(|p| p.measured)
                .map_or(String::new(), |p| {
                    let sampling = if p.split {
                        format!(
                            ", CPU {:.2e} vs GPU {:.2e} score evaluations/s",
                            p.cpu_evals_per_s, p.gpu_evals_per_s
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        " · picked by measurement: CPU {:.0} vs GPU {:.1} steps/s{sampling}",
                        p.cpu_steps_per_s, p.gpu_steps_per_s
                    )
                })
        };
        format!(
            "{engine} engine · {} {} · {:.0} steps/s · {:.0} fps · {sampler} · step {}{probe}{}",
            b.backend,
            b.adapter,
            self.host.history.steps_per_s,
            self.clock.fps,
            self.host.history.steps,
            self.platform
                .software_note()
                .map_or(String::new(), |n| format!(" · {n}"))
        )
    }

    /// Cut a finished screenshot to the plot and answer its export request.
    fn finish_export(&mut self, ppp: f32) {
        let Some((id, img)) = SHOT.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let r = self.ui.plot_rect;
        let [w, h] = img.size;
        let px = |v: f32, max: usize| ((v * ppp).round().max(0.0) as usize).min(max);
        let (x0, y0, x1, y1) = (
            px(r.min.x, w),
            px(r.min.y, h),
            px(r.max.x, w),
            px(r.max.y, h),
        );
        if x1 <= x0 || y1 <= y0 {
            api::answer(id, Err("the plot is not on screen".into()));
            return;
        }
        let mut rgba = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
        for y in y0..y1 {
            for p in &img.pixels[y * w + x0..y * w + x1] {
                rgba.extend_from_slice(&p.to_array());
            }
        }
        let png = png::encode_png((x1 - x0) as u32, (y1 - y0) as u32, &rgba);
        if id == 0 {
            self.ui.file_message = Some(files::save("scorelab.png", "image/png", &png));
            return;
        }
        let url = format!(
            "data:image/png;base64,{}",
            crate::state::base64::base64(&png)
        );
        api::answer(id, Ok(url));
    }

    /// The banners, the status line and the control panel.
    fn chrome(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        let panels = self.ui.flags.panels();
        if let Some(reason) = self
            .platform
            .fallback_reason
            .clone()
            .filter(|_| panels.banner)
        {
            egui::Panel::top("fallback_banner").show(ui, |ui| {
                ui.colored_label(
                    egui::Color32::from_rgb(240, 190, 80),
                    format!("WebGPU compute is not available here ({reason}); training runs on the CPU engine with smaller defaults."),
                );
            });
        }
        if let Some(e) = self.ui.link_error.clone() {
            egui::Panel::top("link_error").show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.colored_label(egui::Color32::from_rgb(235, 110, 90), e);
                    if ui.small_button("dismiss").clicked() {
                        self.ui.link_error = None;
                    }
                });
            });
        }
        // A narrow screen (a tablet in portrait): the controls collapse into a drawer opened
        // from a bar above the canvas, and the lesson player sits under the canvas.
        let narrow = ui.ctx().content_rect().width() < NARROW_WIDTH;
        self.ui.narrow = narrow;
        if narrow && panels.controls {
            egui::Panel::top("drawer_bar").show(ui, |ui| {
                ui.horizontal(|ui| {
                    let label = if self.ui.drawer_open {
                        "× Close controls"
                    } else {
                        "Controls"
                    };
                    if ui
                        .add(egui::Button::new(label).min_size(egui::vec2(120.0, 30.0)))
                        .on_hover_text("c")
                        .clicked()
                    {
                        self.ui.drawer_open = !self.ui.drawer_open;
                    }
                    ui.label("ScoreLab");
                });
            });
        }
        if let Some(n) = self.ui.flags.lesson {
            self.lesson_ui(ui, n, panels.controls, cmds);
        }
        if panels.status {
            let line = self.status_line();
            egui::Panel::bottom("status").show(ui, |ui| {
                ui.small(line);
            });
        }
        // A fixed width: the canvas must not shift when the panel's content changes (e.g. the
        // weight row of a selected component), or it would jump under the user's pointer.
        if panels.controls && (!narrow || self.ui.drawer_open) {
            let mut draft = self.state.clone();
            let sde = self.host.sde(&self.state, &self.data.mixture);
            let mut cx = panels::PanelCtx {
                data: &self.data,
                host: &self.host,
                platform: &self.platform,
                lessons: &self.lessons,
                canvas: &mut self.canvas,
                ui: &mut self.ui,
                sde,
            };
            egui::Panel::left("controls")
                .exact_size(300.0)
                .resizable(false)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .show(ui, |ui| panels::controls_ui(ui, &mut draft, &mut cx, cmds));
                });
            if draft != self.state {
                cmds.insert(0, Command::SetState(Box::new(draft)));
            }
        }
    }

    /// The canvas (two side by side in the split view); returns the visible data box.
    fn canvases(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) -> Option<(Vec2, Vec2)> {
        let st = &self.state;
        let arrows = self.host.arrows(st);
        let denoiser = self.host.denoiser_arrows(st, &self.data.mixture);
        let n_canvas = if st.split == SplitMode::Off { 1 } else { 2 };
        let mut sides = Vec::new();
        for side in 0..n_canvas {
            let slot = if st.split == SplitMode::Samplers {
                side
            } else {
                0
            };
            let particles = if st.layers.particles {
                self.host
                    .particle_source(self.platform.render.as_ref(), slot)
            } else {
                None
            };
            let (show_true, show_learned) = match (st.split, side) {
                (SplitMode::Density, 0) => (true, false),
                (SplitMode::Density, _) => (false, true),
                _ => (st.layers.true_density, st.layers.learned_density),
            };
            let heat = [
                (show_true, &self.host.true_density),
                (show_learned, &self.host.learned_density),
            ];
            let heatmaps: Vec<_> = heat
                .into_iter()
                .filter_map(|(on, h)| h.as_ref().filter(|_| on))
                .chain(self.host.responsibilities.as_ref())
                .map(|h| (h.texture.id(), h.req.lo, h.req.hi))
                .collect();
            let mut legends = Vec::new();
            let mut warnings = Vec::new();
            let show_legends = st.legends;
            let light = st.theme == crate::state::Theme::Projector;
            let span = format!("−{}", host::HEAT_SPAN);
            let half = format!("−{}", host::HEAT_SPAN / 2.0);
            for (on, what, h) in [
                (show_true, "true", &self.host.true_density),
                (show_learned, "learned", &self.host.learned_density),
            ] {
                // Not-a-number cells are always explained, legends on or off.
                if let Some(h) = h.as_ref().filter(|h| on && h.non_finite > 0) {
                    warnings.push(canvas::Legend {
                        title: format!(
                            "{what} log p_t is not a number in {} cells (checker): NaN/∞, not 'unlikely'",
                            h.non_finite
                        ),
                        colors: host::NOT_FINITE_COLORS.to_vec(),
                        labels: ["NaN".into(), String::new(), "∞".into()],
                    });
                }
                if on {
                    legends.push(canvas::Legend::gradient(
                        &format!("{what} log p_t, nats below its largest value"),
                        |v| canvas::heat_color_on(v, st.palette, light),
                        [&span, &half, "0"],
                    ));
                }
            }
            if st.layers.responsibilities {
                let k = st.scene.mixture.components.len().max(1);
                legends.push(canvas::Legend {
                    title: "p(k | x_t): colour of component k".into(),
                    colors: (0..k).map(canvas::component_color).collect(),
                    labels: ["1".into(), String::new(), format!("{k}")],
                });
            }
            legends.extend(arrow_legend(st));
            if !show_legends {
                legends.clear();
            }
            legends.extend(warnings);
            sides.push((particles, heatmaps, legends, panels::side_title(st, side)));
        }
        let extras = self.lessons.overlay();
        let noise = self.state.sigma_circle.then(|| {
            let sde = self.host.sde(&self.state, &self.data.mixture);
            let t = self.state.scene.t;
            (sde.marginal(t).1, sde.effective_sigma(t))
        });
        // The view box is the canvas's own (pan and zoom; no engine reacts to it).
        self.canvas.view_box = st
            .view
            .map(|v| (Vec2::new(v[0], v[1]), Vec2::new(v[2], v[3])));
        let mut outs = Vec::new();
        egui::CentralPanel::default_margins().show(ui, |ui| {
            let mut draw =
                |ui: &mut egui::Ui, particles, heatmaps, legends, title: Option<String>| {
                    canvas::canvas_ui(
                        ui,
                        &mut self.canvas,
                        &self.data.mixture,
                        &self.state.scene.mixture,
                        canvas::CanvasLayers {
                            samples: self.state.layers.samples.then_some(&self.data.samples[..]),
                            arrows: &arrows,
                            legends,
                            denoiser: &denoiser,
                            heatmaps,
                            particles,
                            trails: self.state.layers.trails,
                            extras: &extras,
                            title,
                            axes: self.state.axes,
                            noise,
                            style: canvas::CanvasStyle::of(self.state.theme),
                        },
                    )
                };
            if sides.len() == 1 {
                if let Some((p, h, l, t)) = sides.pop() {
                    outs.push(draw(ui, p, h, l, t));
                }
            } else {
                let w = (ui.available_width() - 8.0) / 2.0;
                let h = ui.available_height();
                ui.horizontal(|ui| {
                    for (p, hm, l, t) in sides.drain(..) {
                        ui.allocate_ui(egui::vec2(w, h), |ui| outs.push(draw(ui, p, hm, l, t)));
                    }
                });
            }
        });
        self.state.view = self
            .canvas
            .view_box
            .map(|(lo, hi)| [lo.x, lo.y, hi.x, hi.y]);
        let first = outs.first()?;
        self.ui.plot_rect = outs.iter().fold(first.rect, |r, o| r.union(o.rect));
        let view = first.view;
        for out in outs {
            if let Some((spec, gesture)) = out.edit {
                cmds.push(Command::SetMixture {
                    spec,
                    undo_point: gesture,
                    refit: false,
                });
            }
            if let Some(m) = out.message {
                self.ui.error = Some(m);
            }
            if let Some(p) = out.click {
                cmds.push(Command::CanvasClick(p));
            }
        }
        Some(view)
    }
}

/// Live-sampling defaults of `slot` for the engine in use (fewer particles on CPU paths):
/// keeps the slot's sampler kind, and whether it runs and on which score.
fn default_sampling(
    cur: &LiveSampling,
    slot: usize,
    mixture: &GaussianMixture,
    fast_gpu: bool,
) -> LiveSampling {
    let base = if slot == 0 {
        LiveSampling::small()
    } else {
        crate::state::second_sampler()
    };
    let mut l = base.with_kind(cur.kind, mixture);
    if slot == 0 && cur.kind == base.kind {
        l = base;
    }
    l.n = if fast_gpu {
        LiveSampling::gpu().n
    } else {
        LiveSampling::small().n
    };
    l.enabled = cur.enabled;
    l.exact = cur.exact;
    l
}

/// A valid one-component mixture used only if the default preset ever failed validation.
fn fallback_mixture() -> GaussianMixture {
    let spec = MixtureSpec {
        components: vec![crate::sim::mixture::ComponentSpec {
            weight: 1.0,
            mean: [0.0, 0.0],
            cov: [[1.0, 0.0], [0.0, 1.0]],
        }],
    };
    match GaussianMixture::from_spec(&spec) {
        Ok(m) => m,
        Err(e) => unreachable!("the unit Gaussian is valid: {e}"),
    }
}

/// The legend of the arrows' colours in the state's arrow mode (none when they are off).
fn arrow_legend(st: &State) -> Option<canvas::Legend> {
    use crate::state::ArrowMode;
    if !st.layers.arrows {
        return None;
    }
    let light = st.theme == crate::state::Theme::Projector;
    Some(match st.arrows {
        ArrowMode::Learned | ArrowMode::Exact => canvas::Legend::gradient(
            "score length / the longest (arrow length ~ √)",
            |v| canvas::arrow_color_on(v.sqrt(), light),
            ["0", "0.5", "1"],
        ),
        ArrowMode::Difference => canvas::Legend::gradient(
            "learned − exact, along the exact score",
            |v| canvas::diverging_color(2.0 * v - 1.0, light),
            ["too weak", "0", "too strong"],
        ),
        ArrowMode::Denoiser => canvas::Legend {
            title: "D(x_t) = E[x₀ | x_t]: learned (dot) · exact".into(),
            colors: [canvas::DENOISE_LEARNED; 20]
                .into_iter()
                .chain([canvas::DENOISE_EXACT; 20])
                .collect(),
            labels: ["learned".into(), String::new(), "exact".into()],
        },
    })
}

/// Narrower than this (in points) the controls become a drawer: a 768-px tablet in portrait.
const NARROW_WIDTH: f32 = 900.0;

/// egui's light visuals, or for the projector theme a high-contrast version of them: black
/// text, white panels, thicker outlines and a strong focus ring.
fn projector_or_light(theme: crate::state::Theme) -> egui::Visuals {
    use egui::{Color32, Stroke};
    let mut v = egui::Visuals::light();
    if theme != crate::state::Theme::Projector {
        return v;
    }
    let ink = Color32::BLACK;
    v.override_text_color = Some(ink);
    v.panel_fill = Color32::WHITE;
    v.window_fill = Color32::WHITE;
    v.extreme_bg_color = Color32::WHITE;
    v.faint_bg_color = Color32::from_gray(235);
    v.window_stroke = Stroke::new(2.0, ink);
    v.selection.bg_fill = Color32::from_rgb(120, 170, 255);
    v.selection.stroke = Stroke::new(2.5, ink);
    for w in [
        &mut v.widgets.noninteractive,
        &mut v.widgets.inactive,
        &mut v.widgets.hovered,
        &mut v.widgets.active,
        &mut v.widgets.open,
    ] {
        w.fg_stroke = Stroke::new(2.0, ink);
        w.bg_stroke = Stroke::new(1.5, Color32::from_gray(40));
    }
    v.widgets.inactive.weak_bg_fill = Color32::from_gray(225);
    v.widgets.inactive.bg_fill = Color32::from_gray(215);
    v.widgets.hovered.bg_stroke = Stroke::new(2.5, Color32::from_rgb(0, 70, 200));
    v.widgets.active.bg_stroke = Stroke::new(3.0, Color32::from_rgb(0, 70, 200));
    v
}

impl eframe::App for ScoreLabApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let now = Instant::now();
        let c = &mut self.clock;
        let interval = c
            .last_frame
            .map(|prev| now.duration_since(prev).as_secs_f64());
        c.perf.begin(interval.map(|dt| dt * 1e3));
        if let Some(dt) = interval {
            let dt = dt.max(1e-6);
            c.fps = if c.fps == 0.0 {
                1.0 / dt
            } else {
                0.9 * c.fps + 0.1 / dt
            };
        }
        c.last_frame = Some(now);
        let ctx = ui.ctx().clone();
        self.apply_look(&ctx);
        self.finish_export(ctx.pixels_per_point());
        let mut cmds = api::drain();
        cmds.extend(apply::dropped_files(&ctx));
        cmds.extend(apply::keyboard(&ctx));
        self.apply_all(cmds, &ctx);
        let mut cmds = Vec::new();
        self.chrome(ui, &mut cmds);
        self.apply_all(std::mem::take(&mut cmds), &ctx);
        let view = self.canvases(ui, &mut cmds);
        self.apply_all(cmds, &ctx);
        if let Some(view) = view {
            let (st, data) = (&self.state, &self.data);
            self.host
                .update_true_density(&ctx, st, &data.mixture, data.revision, view);
            self.host
                .update_responsibilities(&ctx, st, &data.mixture, data.revision, view);
            let said = self.host.frame(
                &ctx,
                st,
                &data.mixture,
                view,
                &mut self.lessons,
                &mut self.clock.perf,
            );
            if let Some(w) = said.warning {
                self.ui.warning = Some(w);
            }
            if let Some(m) = said.file_message {
                self.ui.file_message = Some(m);
            }
            self.host.answer_fields(st, &data.mixture);
            let sde = self.host.sde(st, &data.mixture);
            let budget = self.clock.perf.cpu_budget();
            self.lessons.frame(
                &data.mixture,
                data.revision,
                &sde,
                st.samplers[0].exact,
                budget,
            );
        }
        if self.ui.help_open {
            panels::help_window(&ctx, &mut self.ui.help_open);
        }
        ctx.request_repaint();
        self.clock.frame += 1;
        self.clock.perf.end(now.elapsed().as_secs_f64() * 1e3);
        self.publish_state();
        if self.clock.frame == 2 {
            if let Some(f) = self.clock.on_first_frame.take() {
                f();
            }
        }
    }
}

/// Open the native window.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_native() -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1200.0, 800.0])
            .with_title("ScoreLab"),
        ..Default::default()
    };
    eframe::run_native(
        "ScoreLab",
        options,
        Box::new(|cc| Ok(Box::new(ScoreLabApp::new(cc, None, AppOptions::default())))),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

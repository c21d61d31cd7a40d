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
mod chrome;
pub mod explain;
pub mod files;
pub mod host;
mod panels;
pub mod particles;
pub mod perf;
mod player;
pub mod png;
pub mod qr;
pub mod record;
mod snapshot;
pub mod views;

use std::sync::Arc;

use eframe::egui;
use web_time::Instant;

use crate::app::host::{Host, Platform};
use crate::app::views::overlays::ClickTool;
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
    /// The shell's worker for the CPU engine (the web shell's Web Worker); `None`: this
    /// platform's own ([`crate::engine::remote::THREAD`], a thread natively).
    pub worker: Option<crate::engine::remote::Offload>,
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
    /// The QR overlay's code (or why there is none) for the link it was made from.
    pub qr: Option<Result<qr::Qr, String>>,
    /// The open lesson's question (predict, then reveal).
    pub predict: Option<Prediction>,
    /// The plot's rectangle (what `exportPng` captures).
    pub plot_rect: egui::Rect,
    /// The clip being recorded.
    pub recording: Option<record::Recording>,
    /// The last finished clip.
    pub clip: Option<record::Clip>,
    /// Commands given to this app alone ([`ScoreLabApp::command`]), applied with the JS API's.
    pub queued: Vec<Command>,
}

impl UiState {
    /// Nothing open, nothing said, the select tool.
    fn new(page_url: &str) -> Self {
        Self {
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
            page_url: page_url.to_string(),
            qr: None,
            queued: Vec::new(),
            predict: None,
            plot_rect: egui::Rect::NOTHING,
            recording: None,
            clip: None,
        }
    }
}

/// A lesson's question and the choice made (issue 33's predict, then reveal).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// The lesson (1-based).
    pub lesson: usize,
    /// None while the run waits for a choice; `Some(None)` for "just show me".
    pub picked: Option<Option<usize>>,
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
    views: views::Views,
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
        platform.offload = if options.no_offload {
            None
        } else {
            options.worker.or(crate::engine::remote::THREAD)
        };
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
            views: views::Views::default(),
            canvas: canvas::CanvasState::default(),
            ui: UiState::new(&options.page_url),
            clock: Clock {
                frame: 0,
                last_frame: None,
                fps: 0.0,
                perf: perf::PerfWindow::default(),
                on_first_frame,
            },
        };
        let opened = options.hash.as_deref().and_then(|h| app.open_link(h));
        let old = app.state.clone();
        // A lesson's own scene (`#lesson=N` without a state) opens as from the menu.
        let fx = match opened {
            Some((_, Some(n))) => apply::Effects::lesson(n),
            _ => apply::Effects::rebuild(),
        };
        let lesson = opened.as_ref().and_then(|(_, n)| *n);
        if let Some((st, _)) = opened {
            app.state = st;
        }
        if let Some(n) = lesson {
            app.start_prediction(n);
        }
        app.sync(&old, fx);
        app
    }

    /// The state a share link holds (`#s=…`, or a lesson's own for `#lesson=N`, with N) and
    /// its embed flags; a refused link says why and opens nothing.
    fn open_link(&mut self, hash: &str) -> Option<(State, Option<usize>)> {
        if hash.trim_start_matches('#').is_empty() {
            return None;
        }
        match link::parse_hash(hash) {
            Ok(link) => {
                // `#lesson=N` without a state opens the lesson's own state.
                let lesson = link.flags.lesson;
                self.ui.flags = link.flags;
                match link.shared {
                    Some(st) => Some((st, None)),
                    None => {
                        let n = lesson?;
                        Some((crate::state::lessons::lesson(n)?.state().ok()?, Some(n)))
                    }
                }
            }
            Err(e) => {
                log::warn!("share link refused: {e}");
                self.ui.link_error = Some(format!(
                    "This link could not be read ({e}); ScoreLab started with the defaults."
                ));
                None
            }
        }
    }

    /// Run the engine with the views' requests, then let each view refresh its cache and
    /// answer its JS requests, and the overlays compute on their time budget.
    fn engine_frame(&mut self, ctx: &egui::Context, view: (Vec2, Vec2)) {
        let sde = self.host.sde(&self.state, &self.data.mixture);
        let mut req = crate::engine::FrameRequest::default();
        let budget = self.clock.perf.cpu_budget();
        let frame = views::Frame {
            state: &self.state,
            data: &self.data,
            host: &self.host,
            sde,
            budget,
        };
        for v in self.views.list() {
            v.request(&frame, view, &mut req);
        }
        let (st, data) = (&self.state, &self.data);
        let want_model = self.views.overlays.wants_model() || self.views.sweep.wants_model();
        if want_model {
            self.views.overlays.model_requested();
            self.views.sweep.model_requested();
        }
        let said = self
            .host
            .frame(st, &data.mixture, req, want_model, &mut self.clock.perf);
        if let Some(net) = said.model {
            self.views.sweep.set_model(&net);
            self.views.overlays.set_model(net);
        }
        if let Some(w) = said.warning {
            self.ui.warning = Some(w);
        }
        if let Some(m) = said.file_message {
            self.ui.file_message = Some(m);
        }
        let mut pending = std::mem::take(&mut self.host.pending);
        let frame = views::Frame {
            state: st,
            data,
            host: &self.host,
            sde,
            budget,
        };
        for v in self.views.list_mut() {
            v.update(ctx, &frame, view);
            v.answer(&frame, &mut pending);
        }
        self.host.pending = pending;
        self.views.overlays.frame(
            &data.mixture,
            data.revision,
            &sde,
            st.samplers[0].exact,
            budget,
        );
    }

    /// The state as the user has set it (what a share link holds).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Give this app a command, applied at its next frame with the JS API's (whose queue is
    /// shared by every app of the process: the native UI tier runs several apps at once and
    /// calls the embed API's commands through this).
    pub fn command(&mut self, cmd: Command) {
        self.ui.queued.push(cmd);
    }

    /// The canvas (two side by side in the split view), each painted by the views; returns
    /// the visible data box.
    fn canvases(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) -> Option<(Vec2, Vec2)> {
        let st = &self.state;
        let n_canvas = if st.split == SplitMode::Off { 1 } else { 2 };
        let mut sides = Vec::new();
        for index in 0..n_canvas {
            let slot = if st.split == SplitMode::Samplers {
                index
            } else {
                0
            };
            let particles = if st.layers.particles {
                self.host
                    .particle_source(self.platform.render.as_ref(), slot)
            } else {
                None
            };
            let (true_density, learned_density) = match (st.split, index) {
                (SplitMode::Density, 0) => (true, false),
                (SplitMode::Density, _) => (false, true),
                _ => (st.layers.true_density, st.layers.learned_density),
            };
            sides.push(views::Side {
                index,
                true_density,
                learned_density,
                particles,
                title: panels::side_title(st, index),
            });
        }
        // The view box is the canvas's own (pan and zoom; no engine reacts to it).
        self.canvas.view_box = st
            .view
            .map(|v| (Vec2::new(v[0], v[1]), Vec2::new(v[2], v[3])));
        let frame = views::Frame {
            state: &self.state,
            data: &self.data,
            host: &self.host,
            sde: self.host.sde(&self.state, &self.data.mixture),
            budget: self.clock.perf.cpu_budget(),
        };
        let style = canvas::CanvasStyle::of(self.state.theme);
        let (views, canvas) = (&self.views, &mut self.canvas);
        let mut outs = Vec::new();
        egui::CentralPanel::default_margins().show(ui, |ui| {
            let mut draw = |ui: &mut egui::Ui, side: &views::Side| {
                canvas::canvas_ui(
                    ui,
                    canvas,
                    &frame.data.mixture,
                    &frame.state.scene.mixture,
                    style,
                    &mut |p| views.paint(&frame, side, p),
                )
            };
            if let [side] = &sides[..] {
                outs.push(draw(ui, side));
            } else {
                let w = (ui.available_width() - 8.0) / 2.0;
                let h = ui.available_height();
                ui.horizontal(|ui| {
                    for side in &sides {
                        ui.allocate_ui(egui::vec2(w, h), |ui| outs.push(draw(ui, side)));
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
        let mut cmds = std::mem::take(&mut self.ui.queued);
        cmds.extend(api::drain());
        cmds.extend(apply::dropped_files(&ctx));
        cmds.extend(apply::keyboard(&ctx));
        self.apply_all(cmds, &ctx);
        let mut cmds = Vec::new();
        self.chrome(ui, &mut cmds);
        self.apply_all(std::mem::take(&mut cmds), &ctx);
        let view = self.canvases(ui, &mut cmds);
        self.apply_all(cmds, &ctx);
        if let Some(view) = view {
            self.engine_frame(&ctx, view);
        }
        if self.ui.help_open {
            panels::help_window(&ctx, &mut self.ui.help_open);
        }
        self.qr_overlay(&ctx);
        self.record_tick(&ctx);
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
pub fn run_native(workers: usize) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1200.0, 800.0])
            .with_title("ScoreLab"),
        ..Default::default()
    };
    eframe::run_native(
        "ScoreLab",
        options,
        Box::new(move |cc| {
            let worker = crate::engine::remote::THREAD
                .map(|t| crate::engine::remote::Offload { workers, ..t });
            let options = AppOptions {
                worker,
                ..AppOptions::default()
            };
            Ok(Box::new(ScoreLabApp::new(cc, None, options)))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

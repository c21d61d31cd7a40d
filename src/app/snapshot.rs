//! The JSON snapshot published each frame for `window.scorelab.state()` (the browser tests
//! and the benchmark read it). Its keys are a stable API: the state's fields keep the names
//! they had before the state schema was unified, and `state` holds the whole [`State`].

use std::sync::Mutex;

use serde::Serialize;

use crate::app::perf::PerfSummary;
use crate::app::ScoreLabApp;
use crate::engine::{SamplerStatus, SLOTS};
use crate::sim::metrics::RunStats;
use crate::state::link::Panels;
use crate::state::State;

static STATE: Mutex<String> = Mutex::new(String::new());

/// The latest app state as JSON (empty object before the first frame).
pub fn state_json() -> String {
    let s = STATE.lock().map(|s| s.clone()).unwrap_or_default();
    if s.is_empty() {
        "{}".into()
    } else {
        s
    }
}

/// One worker of the CPU engine's pool in the snapshot.
#[derive(Clone, Debug, Serialize)]
struct WorkerSnapshot {
    role: &'static str,
    runs_on: &'static str,
    load: f64,
    /// Pieces of training steps it computed (`engine::shards`).
    pieces: u64,
}

/// The snapshot (`window.scorelab.state()`).
#[derive(Clone, Debug, Serialize)]
struct StateSnapshot<'a> {
    /// Renderer backend (wgpu's name, e.g. "BrowserWebGpu").
    backend: &'a str,
    adapter: &'a str,
    device_type: &'a str,
    /// Compute engine: "WebGPU", "GPU" or "CPU".
    engine: &'a str,
    /// The engine of the live samplers, the field and the density: `engine`, or the other
    /// one where the probe measured it faster at sampling (`engine::split`).
    sampling_engine: &'a str,
    /// Why the GPU engine is not used, if it is not.
    fallback_reason: Option<&'a str>,
    /// Where the engine's CPU work runs: "worker" (a Web Worker), "thread" (natively) or
    /// "page" (the UI thread).
    engine_runs_on: &'a str,
    /// Why the CPU engine left its worker for the UI thread, if it did.
    worker_fallback: Option<&'a str>,
    /// The CPU engine's workers (`engine::pool`): each one's role ("trains and samples",
    /// "trains", "samples"), where it runs and its load (busy fraction of the last second);
    /// empty when the engine runs on the page's thread or on the GPU.
    workers: Vec<WorkerSnapshot>,
    /// Both engines are running side by side to measure which trains faster (`engine::probe`).
    engine_probing: bool,
    /// The last probe: both engines' measured rates, the engine kept and why.
    engine_probe: Option<&'a crate::engine::probe::ProbeResult>,
    frame: u64,
    fps: f64,
    /// The frame budget over the last frames (`app::perf`).
    perf: PerfSummary,
    step: u64,
    steps_per_s: f64,
    loss: Option<f64>,
    fisher: Option<f64>,
    /// The training step at which `fisher` was measured.
    fisher_step: Option<u64>,
    n_samples: usize,
    /// Score fields (the arrows' grid) received from the engine so far.
    field_seq: u64,
    /// Live particles of sampler 1 (0 when off).
    particles: usize,
    /// Sampler 1's run, step, NFE and time.
    sampler: Option<SamplerStatus>,
    /// Every live sampler's status (the split view shows two).
    samplers: &'a [Option<SamplerStatus>; SLOTS],
    /// Mode weights and NLL of each sampler's last finished run.
    runs: [Option<&'a RunStats>; SLOTS],
    /// The share link of the current state (`#s=…`, with the embed flags).
    link: String,
    /// The QR overlay, while it shows: `{link, width, version}` of the code, or `{error}`.
    qr: Option<serde_json::Value>,
    /// The clip: `{active, elapsed_s, max_s, frames, name, webm_note, last}` (`last`: the
    /// finished clip's name, seconds, GIF frames, size and bytes, whether a video was saved).
    recording: serde_json::Value,
    /// The open lesson's question: `{question, choices, picked, waiting, answer, measured}`
    /// (`picked` null while waiting and for "just show me"; `answer` and `measured` once the
    /// runs have finished).
    lesson_predict: Option<serde_json::Value>,
    /// The lesson the lesson player shows (1-based), if it is open.
    lesson: Option<usize>,
    /// The panels' theme as shown: "dark" or "light" (theme auto follows prefers-color-scheme).
    shown_theme: &'a str,
    /// egui's zoom factor (the UI scale as applied).
    zoom: f32,
    /// "narrow" (the controls are a drawer, the lesson player under the canvas) or "wide".
    layout: &'a str,
    /// The controls drawer is open (narrow layout).
    drawer_open: bool,
    /// A control has the keyboard focus.
    keyboard_focus: bool,
    /// A long press's menu is open: `{component, remove: [x, y]}` (its Remove button, CSS px).
    touch_menu: Option<TouchMenu>,
    /// A failure scene's measured number as the player shows it (null before its run ends).
    lesson_measured: Option<f64>,
    /// Why the link the page was opened with was refused, if it was.
    link_error: Option<&'a str>,
    panels: Panels,
    lessons: serde_json::Value,
    /// What the views show that a test or an embedder reads (`app::views`: `sweep`'s rows).
    views: serde_json::Value,
    /// The SDE at the shown noise level, in its data frame: x_t = m + α (x₀ − m) + s z, as
    /// `{center: m, alpha, s}` (what `denoiser()`'s closed form uses).
    shown_marginal: ShownMarginal,
    /// The whole state as links and scene files hold it (every setting, new ones included);
    /// its older top-level names are added by [`old_keys`].
    state: &'a State,
    selected: Option<usize>,
    can_undo: bool,
    can_redo: bool,
    /// The plot's rectangle in CSS pixels [x, y, width, height] (what `exportPng` captures).
    plot_rect: [f32; 4],
    error: Option<&'a str>,
    warning: Option<&'a str>,
}

/// The open touch menu of a component.
#[derive(Clone, Copy, Debug, Serialize)]
struct TouchMenu {
    component: usize,
    remove: [f32; 2],
}

/// The forward SDE's marginal at the shown t.
#[derive(Clone, Copy, Debug, Serialize)]
struct ShownMarginal {
    center: [f64; 2],
    alpha: f64,
    s: f64,
}

impl ScoreLabApp {
    /// The open lesson's question for `state().lesson_predict`.
    fn predict_snapshot(&self) -> Option<serde_json::Value> {
        let p = self.ui.predict?;
        let q = crate::state::lessons::lesson(p.lesson)?.predict?;
        let reveal = p.picked.and_then(|_| self.reveal(&q));
        Some(serde_json::json!({
            "lesson": p.lesson,
            "question": q.question,
            "choices": q.choices,
            "waiting": p.picked.is_none(),
            "picked": p.picked.flatten(),
            "answer": reveal.as_ref().map(|r| r.0),
            "measured": reveal.map(|r| r.1),
        }))
    }

    /// Publish this frame's snapshot.
    pub(crate) fn publish_state(&self) {
        let text = self.snapshot();
        if let Ok(mut slot) = STATE.lock() {
            *slot = text;
        }
    }

    /// This app's snapshot as JSON: what `window.scorelab.state()` returns (the native UI
    /// tests read it from the app they drive).
    pub fn snapshot(&self) -> String {
        let (st, host, ui) = (&self.state, &self.host, &self.ui);
        let r = ui.plot_rect;
        let b = &self.platform.backend;
        let h = &host.history;
        let snap = StateSnapshot {
            backend: &b.backend,
            adapter: &b.adapter,
            device_type: &b.device_type,
            engine: host.engine.as_ref().map_or("none", |e| e.label()),
            sampling_engine: host
                .engine
                .as_ref()
                .map_or("none", |e| e.sampling_label().unwrap_or_else(|| e.label())),
            fallback_reason: self.platform.fallback_reason.as_deref(),
            engine_runs_on: host.engine.as_ref().map_or("none", |e| e.runs_on().name()),
            worker_fallback: host.engine.as_ref().and_then(|e| e.fell_back()),
            workers: host.engine.as_ref().map_or(Vec::new(), |e| {
                e.pool()
                    .into_iter()
                    .map(|w| WorkerSnapshot {
                        role: w.role.name(),
                        runs_on: w.runs_on.name(),
                        load: w.load,
                        pieces: w.pieces,
                    })
                    .collect()
            }),
            engine_probing: host.probing(),
            engine_probe: host.probe_result.as_ref(),
            frame: self.clock.frame,
            fps: self.clock.fps,
            perf: self.clock.perf.summary(),
            step: h.steps,
            steps_per_s: h.steps_per_s,
            loss: h.loss_ema,
            fisher: h.fisher.last().map(|f| f[1]),
            fisher_step: h.fisher.last().map(|f| f[0] as u64),
            n_samples: self.data.samples.len(),
            field_seq: host.field_seq,
            particles: if st.samplers[0].enabled {
                host.sampler[0].map_or(0, |s| s.n)
            } else {
                0
            },
            sampler: host.sampler[0],
            samplers: &host.sampler,
            runs: [host.runs[0].as_ref(), host.runs[1].as_ref()],
            link: self.link(),
            lesson_predict: self.predict_snapshot(),
            qr: ui.qr.as_ref().map(|q| match q {
                Ok(q) => {
                    serde_json::json!({"link": q.link, "width": q.width, "version": q.version})
                }
                Err(e) => serde_json::json!({ "error": e }),
            }),
            recording: serde_json::json!({
                "active": ui.recording.is_some(),
                "elapsed_s": ui.recording.as_ref().map(|r| r.elapsed().min(r.max_s)),
                "max_s": ui.recording.as_ref().map(|r| r.max_s),
                "frames": ui.recording.as_ref().map(super::record::Recording::frames),
                "name": ui.recording.as_ref().map(|r| r.name.clone()),
                "webm_note": ui.recording.as_ref().and_then(|r| r.webm_note.clone()),
                "last": ui.clip,
            }),
            lesson: ui.flags.lesson,
            shown_theme: ui.shown_theme,
            zoom: ui.zoom,
            layout: if ui.narrow { "narrow" } else { "wide" },
            drawer_open: ui.drawer_open,
            keyboard_focus: ui.keyboard_focus,
            touch_menu: self
                .canvas
                .touch_menu_remove
                .map(|(component, p)| TouchMenu {
                    component,
                    remove: [p.x, p.y],
                }),
            lesson_measured: ui
                .flags
                .lesson
                .and_then(crate::state::lessons::lesson)
                .and_then(|l| l.check)
                .and_then(|c| self.measured(c.metric)),
            link_error: ui.link_error.as_deref(),
            panels: ui.flags.panels(),
            lessons: self.views.overlays.state_json(),
            views: self.views.snapshot(),
            shown_marginal: {
                let sde = host.sde(st, &self.data.mixture);
                let (alpha, s) = sde.marginal(st.scene.t);
                let c = sde.center();
                ShownMarginal {
                    center: [c.x, c.y],
                    alpha,
                    s,
                }
            },
            state: st,
            selected: self.canvas.selected,
            can_undo: !self.data.undo.is_empty(),
            can_redo: !self.data.redo.is_empty(),
            plot_rect: if r.is_positive() {
                [r.min.x, r.min.y, r.width(), r.height()]
            } else {
                [0.0; 4]
            },
            error: ui.error.as_deref(),
            warning: ui.warning.as_deref(),
        };
        let json = serde_json::to_value(&snap).map(|mut v| {
            if let (serde_json::Value::Object(m), serde_json::Value::Object(old)) =
                (&mut v, old_keys(st))
            {
                m.extend(old);
            }
            v
        });
        json.and_then(|v| serde_json::to_string(&v))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The parts of the state that `state()` gave at its top level before `state` held the whole
/// [`State`], under their old names (the browser tests, the benchmark page and embedders read
/// them): written from the state here, and nowhere else.
fn old_keys(st: &State) -> serde_json::Value {
    serde_json::json!({
        "training": st.training,
        "sampling": st.samplers[0],
        "samplings": st.samplers,
        "split": st.split,
        "sampling_paused": st.paused,
        "settings": st.settings,
        "layers": st.layers,
        "arrows": st.arrows,
        "scene": st.scene,
    })
}

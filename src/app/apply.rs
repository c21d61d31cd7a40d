//! The one command path: [`ScoreLabApp::apply`] applies a [`Command`] from any source (panel,
//! keys, canvas, JS, files, links) and [`ScoreLabApp::sync`] decides, in one place, what
//! follows from the change by comparing the old state with the new one: the mixture
//! (re-validate, resample, tell the engine), a new engine (SDE, network settings, engine
//! choice, an imported model), a restarted live sampler, the lessons.

use eframe::egui;

use super::{default_sampling, ScoreLabApp};
use crate::app::host::FieldAnswer;
use crate::app::views::overlays::Overlays;
use crate::engine::{EngineChoice, SLOTS};
use crate::sim::ellipse::remove_component;
use crate::state::command::{self as api, Command, Imported};
use crate::state::js::Refused;
use crate::state::State;

/// What a command asks beyond the state change itself.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Effects {
    /// Start a fresh engine even if nothing in the state asks for one.
    rebuild: bool,
    /// A changed mixture records the old one for undo.
    undo_point: bool,
    /// Fit the view to a changed mixture and drop the selection.
    refit: bool,
    /// Sampler steps to take after the change (while frozen).
    step_sampler: u32,
    /// Start new runs from fresh noise after the change.
    restart: bool,
    /// Training steps to queue after the change (a failure scene's under-trained network).
    train_steps: u32,
}

impl Effects {
    /// A fresh engine.
    pub(crate) fn rebuild() -> Self {
        Self {
            rebuild: true,
            ..Self::default()
        }
    }

    /// A fresh engine for lesson `n`'s scene, opened from a `#lesson=N` link: what the menu
    /// does ([`ScoreLabApp::open_lesson`]): a failure scene restarts its samplers and trains
    /// its under-trained network for its steps.
    pub(crate) fn lesson(n: usize) -> Self {
        let check = crate::state::lessons::lesson(n).and_then(|l| l.check);
        Self {
            rebuild: true,
            restart: check.is_some(),
            train_steps: check.map_or(0, |c| c.train_steps),
            ..Self::default()
        }
    }
}

impl ScoreLabApp {
    /// Open lesson `n` (1-based): its state replaces the current one (the link and the undo
    /// history keep what was there before; a lesson that does not exist changes nothing), and
    /// the player shows its text; `None` closes the player and keeps the state.
    /// A failure scene also starts its samplers afresh and, where it shows an under-trained
    /// network, trains a fresh one for its steps (the effects say so).
    fn open_lesson(&mut self, n: Option<usize>, fx: &mut Effects) {
        let Some(n) = n else {
            self.ui.flags.lesson = None;
            return;
        };
        let Some(lesson) = crate::state::lessons::lesson(n) else {
            return;
        };
        match lesson.state() {
            Ok(s) => {
                self.state = s;
                self.ui.flags.lesson = Some(n);
                self.start_prediction(n);
                if let Some(c) = lesson.check {
                    fx.restart = true;
                    if c.train_steps > 0 {
                        fx.rebuild = true;
                        fx.train_steps = c.train_steps;
                    }
                }
            }
            Err(e) => self.ui.error = Some(e.to_string()),
        }
    }

    /// A lesson with a question opens paused, waiting for the choice.
    pub(crate) fn start_prediction(&mut self, n: usize) {
        let asks = crate::state::lessons::lesson(n).is_some_and(|l| l.predict.is_some());
        self.ui.predict = asks.then_some(super::Prediction {
            lesson: n,
            picked: None,
        });
        if asks {
            self.state.paused = true;
        }
    }

    /// Apply commands in order.
    pub(crate) fn apply_all(&mut self, cmds: Vec<Command>, ctx: &egui::Context) {
        for cmd in cmds {
            self.apply(cmd, ctx);
        }
    }

    /// Apply one command.
    pub(crate) fn apply(&mut self, cmd: Command, ctx: &egui::Context) {
        let old = self.state.clone();
        let mut fx = Effects::default();
        if let Command::CanvasClick(p) = cmd {
            // The click tool decides what a click is (a probe, the inpainting line, nothing).
            if let Some(c) = Overlays::canvas_click(self.ui.tool, &self.state, p) {
                return self.apply(c, ctx);
            }
        }
        let rest = self
            .apply_scene(cmd, &mut fx)
            .and_then(|cmd| self.apply_run(cmd, &mut fx))
            .and_then(|cmd| self.apply_request(cmd, ctx));
        if let Some(cmd) = rest.filter(|c| !matches!(c, Command::CanvasClick(_))) {
            log::warn!("a command nobody applies: {cmd:?}");
        }
        self.sync(&old, fx);
    }

    /// The scene, the state and the mixture's edits; other commands come back.
    fn apply_scene(&mut self, cmd: Command, fx: &mut Effects) -> Option<Command> {
        let st = &mut self.state;
        match cmd {
            Command::SetState(s) => *st = *s,
            Command::SetScene(scene) => {
                st.scene = *scene;
                st.view = None;
                fx.undo_point = true;
                fx.refit = true;
            }
            Command::SetConfig(p) => {
                // A new configuration starts a new frame-budget window (the benchmark reads it).
                self.clock.perf.clear();
                if let Some(c) = p.engine.filter(|c| *c != self.host.choice) {
                    self.set_choice(c);
                    fx.rebuild = true;
                }
                if let Some(n) = p.lesson {
                    self.open_lesson(n, fx);
                }
                p.apply_to(&mut self.state, &self.data.mixture);
                fx.rebuild |= p.reset == Some(true);
                fx.step_sampler = p.step_sampler.unwrap_or(0);
                fx.restart |= p.restart == Some(true);
            }
            Command::SetMixture {
                spec,
                undo_point,
                refit,
            } => {
                st.scene.mixture = spec;
                fx.undo_point = undo_point;
                fx.refit = refit;
                if refit {
                    st.view = None;
                }
            }
            Command::Undo => {
                if let Some(prev) = self.data.undo.pop() {
                    self.data
                        .redo
                        .push(std::mem::replace(&mut st.scene.mixture, prev));
                }
            }
            Command::Redo => {
                if let Some(next) = self.data.redo.pop() {
                    self.data
                        .undo
                        .push(std::mem::replace(&mut st.scene.mixture, next));
                }
            }
            Command::RemoveSelected => {
                if let Some(k) = self.canvas.selected {
                    match remove_component(&st.scene.mixture, k) {
                        Ok(s) => {
                            self.canvas.selected = None;
                            st.scene.mixture = s;
                            fx.undo_point = true;
                        }
                        Err(m) => self.ui.error = Some(m),
                    }
                }
            }
            Command::SelectComponent(d) => {
                let n = st.scene.mixture.components.len() as i64;
                if n > 0 {
                    let at = self
                        .canvas
                        .selected
                        .map_or(if d > 0 { -1 } else { 0 }, |k| k as i64);
                    self.canvas.selected = Some((at + i64::from(d)).rem_euclid(n) as usize);
                }
            }
            Command::NudgeSelected(dx, dy) => {
                let n = st.scene.mixture.components.len();
                if let Some(c) = self
                    .canvas
                    .selected
                    .filter(|k| *k < n)
                    .map(|k| &mut st.scene.mixture.components[k])
                {
                    let sd = (0.5 * (c.cov[0][0] + c.cov[1][1])).sqrt();
                    c.mean[0] += dx * sd;
                    c.mean[1] += dy * sd;
                    fx.undo_point = true;
                }
            }
            Command::Import(file) => self.import(*file, fx),
            other => return Some(other),
        }
        None
    }

    /// Training, the live samplers, the engine, lessons and the window; other commands come back.
    fn apply_run(&mut self, cmd: Command, fx: &mut Effects) -> Option<Command> {
        let st = &mut self.state;
        match cmd {
            Command::SetEngine(c) => {
                if c != self.host.choice {
                    self.set_choice(c);
                    fx.rebuild = true;
                }
            }
            Command::ResetNetwork => fx.rebuild = true,
            Command::TrainSteps(k) => {
                for e in self.host.engines_mut() {
                    e.queue_steps(k);
                }
            }
            Command::TogglePlay => st.paused = !st.paused,
            Command::FreezeAll => {
                let moving = !st.paused || st.training;
                st.paused = moving;
                st.training = !moving;
            }
            Command::StepSampler => {
                st.paused = true;
                fx.step_sampler = 1;
            }
            Command::RestartSampling => fx.restart = true,
            Command::PickSampler(slot, kind) => {
                let live = &mut st.samplers[slot.min(SLOTS - 1)];
                *live = live.with_kind(kind, &self.data.mixture);
                live.enabled = true;
            }
            Command::ToggleHelp => self.ui.help_open = !self.ui.help_open,
            Command::ToggleDrawer => self.ui.drawer_open = !self.ui.drawer_open,
            Command::OpenLesson(n) => self.open_lesson(n, fx),
            Command::Predict(choice) => {
                if let Some(p) = self.ui.predict.as_mut().filter(|p| p.picked.is_none()) {
                    p.picked = Some(choice);
                    st.paused = false;
                    fx.restart = true;
                }
            }
            Command::StepLesson(d) => {
                let count = crate::state::lessons::count() as i64;
                let at = self.ui.flags.lesson.map_or(0, |n| n as i64);
                let next = (at + i64::from(d)).clamp(1, count) as usize;
                self.open_lesson(Some(next), fx);
            }
            Command::FileMessage(m) => self.ui.file_message = Some(m),
            Command::Record(r) => self.record(r),
            other => return Some(other),
        }
        None
    }

    /// Requests answered later (JS calls, exports); other commands come back.
    fn apply_request(&mut self, cmd: Command, ctx: &egui::Context) -> Option<Command> {
        let st = &self.state;
        match cmd {
            Command::Samples(id) => self.host.ask_samples(st, id, 0),
            Command::SamplesOf(id, slot) => self.host.ask_samples(st, id, slot),
            Command::ExportPng(id) => {
                ctx.request_screenshot(move |img| {
                    if let Ok(mut s) = super::SHOT.lock() {
                        *s = Some((id, img));
                    }
                });
            }
            Command::ExportModel(id) => {
                if self.host.engine.is_some() {
                    self.host.pending.models.push(id);
                } else {
                    api::answer(id, Err(Refused::NoEngine));
                }
            }
            Command::Field(id) => self.host.ask_field(id, FieldAnswer::Score),
            Command::Denoiser(id) => self.host.ask_field(id, FieldAnswer::Denoiser),
            Command::Inpaint(id) => self.views.overlays.ask_inpaint(id),
            other => return Some(other),
        }
        None
    }

    /// An imported model (its weights, width, depth and SDE) or scene.
    fn import(&mut self, file: Imported, fx: &mut Effects) {
        let st = &mut self.state;
        match file {
            Imported::Model(net) => {
                st.settings.width = net.config.width;
                st.settings.depth = net.config.depth;
                st.scene.sde = net.sde.kind;
                self.host.model_frame = Some(net.sde);
                self.host.import_net = Some(*net);
                fx.rebuild = true;
                self.ui.file_message =
                    Some("Model imported: the network now has the imported weights.".into());
            }
            Imported::Scene(s) => {
                *st = *s;
                self.canvas.selected = None;
                self.host.runs = [None, None];
                fx.rebuild = true;
                self.ui.file_message = Some("Scene imported.".into());
            }
        }
    }

    /// Switch engine: the samplers take that engine's defaults (fewer particles on CPU paths).
    fn set_choice(&mut self, c: EngineChoice) {
        self.host.choice = c;
        // A forced engine: no probe from now on, and one engine does both parts.
        self.host.auto = false;
        self.host.split = false;
        self.host.stop_probe();
        let fast = self.platform.fast_gpu(c);
        for slot in 0..SLOTS {
            let live = &self.state.samplers[slot];
            self.state.samplers[slot] = default_sampling(live, slot, &self.data.mixture, fast);
        }
    }

    /// Everything that follows from `old` → `self.state`, decided here and only here.
    pub(crate) fn sync(&mut self, old: &State, fx: Effects) {
        let mixture = match self.state.validate() {
            Ok(m) => m,
            Err(e) => {
                // Keep the last good state and say why.
                self.state = old.clone();
                self.ui.error = Some(e.to_string());
                return;
            }
        };
        let st = &self.state;
        let mixture_changed = st.scene.mixture != old.scene.mixture;
        if mixture_changed {
            if fx.undo_point {
                self.data.remember(old.scene.mixture.clone());
            }
            self.data.mixture = mixture;
            self.data.revision += 1;
            // The frame follows the data from the first edit on (sim::sde).
            self.host.model_frame = None;
            self.ui.error = None;
            if fx.refit {
                self.canvas.selected = None;
            }
        }
        if mixture_changed || st.scene.seed != old.scene.seed || fx.rebuild {
            self.data.resample(st.scene.seed);
        }
        let rebuild = fx.rebuild || st.scene.sde != old.scene.sde || st.settings != old.settings;
        if rebuild {
            if let Some(e) = self.host.rebuild(&self.platform, st, &self.data.mixture) {
                self.ui.error = Some(e);
            }
            self.views.overlays.model_changed();
        } else {
            if mixture_changed {
                let sde = self.host.sde(st, &self.data.mixture);
                for e in self.host.engines_mut() {
                    e.set_mixture(&self.data.mixture, &sde);
                }
                // The last runs' bars and spreads were of the old mixture: the panel shows
                // none until a run that started on this one finishes (a preset click once
                // kept ncsn's two bars under ring8's eight components).
                self.host.mixture_changed();
            }
            for slot in 0..SLOTS {
                if st.running(slot) != old.running(slot) {
                    self.host.set_sampling(slot, &st.running(slot));
                }
            }
            if st.paused != old.paused {
                for e in self.host.engines_mut() {
                    e.pause_sampling(st.paused);
                }
            }
        }
        for e in self.host.engines_mut() {
            if fx.step_sampler > 0 {
                e.step_sampling(fx.step_sampler);
            }
            if fx.restart {
                e.restart_sampling();
            }
            if fx.train_steps > 0 {
                e.queue_steps(fx.train_steps);
            }
        }
        if fx.restart {
            self.host.runs = [None, None];
        }
        self.views.overlays.sync(st);
    }
}

/// Keys → commands (not while a text field has the keyboard, except undo / redo / delete).
pub(crate) fn keyboard(ctx: &egui::Context) -> Vec<Command> {
    let mut cmds = Vec::new();
    let (undo, redo, delete) = ctx.input_mut(|i| {
        let redo = i.consume_key(
            egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
            egui::Key::Z,
        ) || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
        let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
        let delete = i.consume_key(egui::Modifiers::NONE, egui::Key::Delete)
            || i.consume_key(egui::Modifiers::NONE, egui::Key::Backspace);
        (undo, redo, delete)
    });
    if redo {
        cmds.push(Command::Redo);
    } else if undo {
        cmds.push(Command::Undo);
    }
    if delete {
        cmds.push(Command::RemoveSelected);
    }
    if ctx.egui_wants_keyboard_input() {
        return cmds;
    }
    use egui::Key;
    let digits = [
        Key::Num1,
        Key::Num2,
        Key::Num3,
        Key::Num4,
        Key::Num5,
        Key::Num6,
        Key::Num7,
        Key::Num8,
        Key::Num9,
    ];
    ctx.input_mut(|i| {
        let none = egui::Modifiers::NONE;
        let pick = digits.iter().position(|k| i.consume_key(none, *k));
        if i.consume_key(none, Key::Space) {
            cmds.push(Command::TogglePlay);
        }
        if i.consume_key(none, Key::S) {
            cmds.push(Command::StepSampler);
        }
        if i.consume_key(none, Key::R) {
            cmds.push(Command::RestartSampling);
        }
        if i.consume_key(none, Key::H)
            || i.consume_key(egui::Modifiers::SHIFT, Key::Slash)
            || i.consume_key(none, Key::Questionmark)
        {
            cmds.push(Command::ToggleHelp);
        }
        // The canvas by keyboard: [ / ] select a component, the arrows move it by half its
        // standard deviation (Shift: two).
        if i.consume_key(none, Key::CloseBracket) {
            cmds.push(Command::SelectComponent(1));
        }
        if i.consume_key(none, Key::OpenBracket) {
            cmds.push(Command::SelectComponent(-1));
        }
        for (key, dx, dy) in [
            (Key::ArrowLeft, -1.0, 0.0),
            (Key::ArrowRight, 1.0, 0.0),
            (Key::ArrowUp, 0.0, 1.0),
            (Key::ArrowDown, 0.0, -1.0),
        ] {
            // Shift first: a plain pattern also matches a press with Shift (egui ignores it).
            if i.consume_key(egui::Modifiers::SHIFT, key) {
                cmds.push(Command::NudgeSelected(2.0 * dx, 2.0 * dy));
            }
            if i.consume_key(none, key) {
                cmds.push(Command::NudgeSelected(0.5 * dx, 0.5 * dy));
            }
        }
        if i.consume_key(none, Key::F) {
            cmds.push(Command::FreezeAll);
        }
        if i.consume_key(none, Key::C) {
            cmds.push(Command::ToggleDrawer);
        }
        // Every press counts (two in one frame step two lessons).
        let step = i.count_and_consume_key(none, Key::N) as i32
            - i.count_and_consume_key(none, Key::P) as i32;
        if step != 0 {
            cmds.push(Command::StepLesson(step));
        }
        if let Some(k) = pick.and_then(|k| crate::sim::samplers::SamplerKind::ALL.get(k)) {
            cmds.push(Command::PickSampler(0, *k));
        }
    });
    cmds
}

/// Files dropped onto the window: read and validated into `Import` commands (a refused file
/// changes nothing; the panel says why). On the web the bytes arrive later, through the queue.
pub(crate) fn dropped_files(ctx: &egui::Context) -> Vec<Command> {
    let files = ctx.input(|i| i.raw.dropped_files.clone());
    #[allow(unused_mut)] // on the web the commands arrive through the queue
    let mut cmds = Vec::new();
    for f in files {
        let name = f.path().display().to_string();
        let to_cmd = |res: Result<Imported, String>| match res {
            Ok(file) => Command::Import(Box::new(file)),
            Err(e) => Command::FileMessage(format!("{e} — nothing was changed.")),
        };
        #[cfg(target_arch = "wasm32")]
        wasm_bindgen_futures::spawn_local(async move {
            let res = f
                .bytes_async()
                .await
                .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                .and_then(|t| api::parse_import(&name, &t).map_err(String::from));
            api::push(to_cmd(res));
        });
        #[cfg(not(target_arch = "wasm32"))]
        {
            let res = f
                .bytes()
                .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
                .and_then(|t| api::parse_import(&name, &t).map_err(String::from));
            cmds.push(to_cmd(res));
        }
    }
    cmds
}

//! The control panel: each part is a function that edits a copy of the [`State`] (the app
//! turns a changed copy into one `Command::SetState`) and pushes commands for actions.

mod lessons;
mod sampler;
mod share;

pub use sampler::side_title;
pub use share::help_window;

use eframe::egui;

use crate::app::canvas::CanvasState;
use crate::app::host::{Host, Platform};
use crate::app::views::Views;
use crate::app::{Data, UiState};
use crate::engine::settings::table::{self, Setting};
use crate::engine::EngineChoice;
use crate::sim::mixture::presets;
use crate::sim::sde::{Sde, SdeKind, T_MIN_SHOWN};
use crate::state::command::Command;
use crate::state::State;

/// What the panels read (and the UI-only state they change).
pub struct PanelCtx<'a> {
    /// The mixture, samples and undo history.
    pub data: &'a Data,
    /// The engine's output.
    pub host: &'a Host,
    /// Which devices exist.
    pub platform: &'a Platform,
    /// The views (their toggles; the overlays' results).
    pub views: &'a Views,
    /// Selection and paint mode.
    pub canvas: &'a mut CanvasState,
    /// Messages, tools, help.
    pub ui: &'a mut UiState,
    /// The SDE in use.
    pub sde: Sde,
}

/// The whole left panel.
pub fn controls_ui(ui: &mut egui::Ui, st: &mut State, cx: &mut PanelCtx, cmds: &mut Vec<Command>) {
    ui.horizontal_wrapped(|ui| {
        ui.heading("ScoreLab");
        let mut pick = None;
        let lessons = crate::state::lessons::LESSONS;
        let menus = [
            ("lessons", "Lessons", lessons, 0),
            (
                "failures",
                "Failures",
                crate::state::lessons::FAILURES,
                lessons.len(),
            ),
        ];
        for (id, name, list, first) in menus {
            egui::ComboBox::from_id_salt(id)
                .selected_text(name)
                .width(80.0)
                .show_ui(ui, |ui| {
                    for (i, l) in list.iter().enumerate() {
                        let on = cx.ui.flags.lesson == Some(first + i + 1);
                        if ui
                            .selectable_label(on, format!("{}. {}", i + 1, l.title))
                            .clicked()
                        {
                            pick = Some(first + i + 1);
                        }
                    }
                })
                .response
                .accessible_name(name)
                .on_hover_text(if first == 0 {
                    "the README's lessons, with what to look at and things to try"
                } else {
                    "one click each: a sampler or network set up to fail, with why"
                });
        }
        if let Some(n) = pick {
            cmds.push(Command::OpenLesson(Some(n)));
        }
    });
    ui.label("Score-based generative models, live.");
    ui.separator();
    mixture_ui(ui, st, cx, cmds);
    noise_ui(ui, st, cx);
    ui.separator();
    layers_ui(ui, st, cx.views);
    ui.separator();
    sampler::sampler_ui(ui, st, cx, cmds);
    ui.separator();
    lessons::paths_ui(ui, st, cx);
    ui.separator();
    lessons::conditional_ui(ui, st, cx);
    ui.separator();
    training_ui(ui, st, cx, cmds);
    if cx.ui.flags.panels().charts {
        share::charts_ui(ui, cx.host);
    }
    ui.separator();
    share::share_ui(ui, st, cx, cmds);
    ui.separator();
    ui.label("Drag a centre to move a component, its edge handle to stretch and turn it; scroll over it to change its weight. Double-click adds one, right-click or Delete removes one. Drag the background to pan, scroll to zoom.");
    ui.label(format!(
        "{} components, {} samples",
        cx.data.mixture.len(),
        cx.data.samples.len()
    ));
    if let Some(e) = &cx.ui.error {
        ui.colored_label(egui::Color32::from_rgb(220, 80, 60), e);
    }
    if let Some(w) = &cx.ui.warning {
        ui.colored_label(egui::Color32::from_rgb(230, 180, 60), w);
    }
}

/// Presets, painting, undo / redo and the selected component's weight.
fn mixture_ui(ui: &mut egui::Ui, st: &mut State, cx: &mut PanelCtx, cmds: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.label("Preset");
        egui::ComboBox::from_id_salt("preset")
            .selected_text("choose…")
            .show_ui(ui, |ui| {
                for name in presets::NAMES {
                    if ui.selectable_label(false, *name).clicked() {
                        if let Some(spec) = presets::by_name(name) {
                            cmds.push(Command::SetMixture {
                                spec,
                                undo_point: true,
                                refit: true,
                            });
                        }
                    }
                }
            })
            .response
            .accessible_name("Preset");
        let paint = ui
            .selectable_label(cx.canvas.paint, "Paint your own")
            .on_hover_text("Brush strokes on the canvas become small Gaussians (the first stroke replaces the mixture). Click again to stop painting.");
        if paint.clicked() {
            cx.canvas.paint = !cx.canvas.paint;
            cx.canvas.paint_fresh = cx.canvas.paint;
        }
    });
    ui.horizontal(|ui| {
        let undo = egui::Button::new("Undo");
        if ui
            .add_enabled(!cx.data.undo.is_empty(), undo)
            .on_hover_text("Ctrl+Z")
            .clicked()
        {
            cmds.push(Command::Undo);
        }
        let redo = egui::Button::new("Redo");
        if ui
            .add_enabled(!cx.data.redo.is_empty(), redo)
            .on_hover_text("Ctrl+Shift+Z")
            .clicked()
        {
            cmds.push(Command::Redo);
        }
    });
    let Some(k) = cx
        .canvas
        .selected
        .filter(|k| *k < st.scene.mixture.components.len())
    else {
        return;
    };
    let mut w = st.scene.mixture.components[k].weight;
    ui.horizontal(|ui| {
        let r = ui.add(
            egui::Slider::new(&mut w, 1e-3..=1e3)
                .logarithmic(true)
                .text(format!("weight of #{}", k + 1)),
        );
        if r.changed() {
            let mut spec = st.scene.mixture.clone();
            spec.components[k].weight = w;
            cmds.push(Command::SetMixture {
                spec,
                undo_point: r.drag_started() || !r.dragged(),
                refit: false,
            });
        }
        if ui
            .button("Remove")
            .on_hover_text("Remove (Delete)")
            .clicked()
        {
            cmds.push(Command::RemoveSelected);
        }
    });
}

/// The SDE and the noise level shown.
fn noise_ui(ui: &mut egui::Ui, st: &mut State, cx: &PanelCtx) {
    ui.horizontal(|ui| {
        ui.label("SDE");
        for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
            ui.selectable_value(&mut st.scene.sde, kind, kind.name().to_uppercase());
        }
    });
    let sde = cx.sde;
    let s_lo = sde.effective_sigma(T_MIN_SHOWN).max(1e-6);
    let s_hi = sde.effective_sigma(1.0).max(s_lo * 1.001);
    let mut sigma = sde.effective_sigma(st.scene.t.max(T_MIN_SHOWN));
    if ui
        .add(
            egui::Slider::new(&mut sigma, s_lo..=s_hi)
                .logarithmic(true)
                .text("noise σ"),
        )
        .on_hover_text("The noise level every layer is drawn at (log scale). σ is the noise-to-signal ratio s(t)/α(t) of the forward SDE.")
        .changed()
    {
        st.scene.t = sde.shown_time_of_sigma(sigma);
    }
    ui.label(format!("t = {:.3}", st.scene.t));
}

/// Each view's toggles (`app::views`), the theme and the UI scale.
fn layers_ui(ui: &mut egui::Ui, st: &mut State, views: &Views) {
    ui.label("Layers");
    views.controls(ui, st);
    ui.horizontal_wrapped(|ui| {
        use crate::state::Theme;
        ui.label("Theme");
        ui.selectable_value(&mut st.theme, Theme::Auto, "auto")
            .on_hover_text("follows the system's light / dark setting");
        ui.selectable_value(&mut st.theme, Theme::Dark, "dark");
        ui.selectable_value(&mut st.theme, Theme::Light, "light");
        ui.selectable_value(&mut st.theme, Theme::Projector, "projector")
            .on_hover_text("light and high contrast, thicker lines: for a projector in a bright room (try UI scale 1.25 or more)");
    });
    let (lo, hi) = crate::state::UI_SCALE_RANGE;
    // Applied when the slider is let go (a scale that changes under the pointer jumps).
    let mut scale = st.ui_scale;
    let r = ui.add(
        egui::Slider::new(&mut scale, lo..=hi)
            .step_by(0.05)
            .text("UI scale"),
    );
    if r.drag_stopped() || (r.changed() && !r.dragged()) {
        st.ui_scale = scale;
    }
}

/// Engine, training controls and the network settings.
fn training_ui(ui: &mut egui::Ui, st: &mut State, cx: &PanelCtx, cmds: &mut Vec<Command>) {
    if cx.platform.gpu.is_some() {
        let mut choice = cx.host.choice;
        ui.horizontal(|ui| {
            ui.label("Engine");
            ui.selectable_value(&mut choice, EngineChoice::Gpu, "GPU (WGSL)");
            ui.selectable_value(&mut choice, EngineChoice::Cpu, "CPU");
        });
        if choice != cx.host.choice {
            cmds.push(Command::SetEngine(choice));
        }
    }
    ui.horizontal(|ui| {
        let label = if st.training { "Pause" } else { "Train" };
        let name = if st.training {
            "Pause training"
        } else {
            "Start training"
        };
        if ui
            .add(toggle_button(ui, label, ["Train", "Pause"]))
            .accessible_name(name)
            .clicked()
        {
            st.training = !st.training;
        }
        if ui
            .add_enabled(!st.training, egui::Button::new("Step"))
            .accessible_name("One training step")
            .on_hover_text("One training step (while paused)")
            .clicked()
        {
            cmds.push(Command::TrainSteps(1));
        }
        if ui
            .button("Reset")
            .on_hover_text("A fresh network")
            .clicked()
        {
            cmds.push(Command::ResetNetwork);
        }
    });
    let s = &mut st.settings;
    setting(ui, &mut s.width, &table::WIDTH, None);
    setting(ui, &mut s.depth, &table::DEPTH, None);
    setting(ui, &mut s.batch, &table::BATCH, None);
    setting(ui, &mut s.lr, &table::LR, None);
    let h = &cx.host.history;
    ui.label(format!("step {} · {:.0} steps/s", h.steps, h.steps_per_s));
}

/// A button whose label flips (Train / Pause, Play / Pause, Show QR / Hide QR) as wide as
/// its widest label, so flipping it does not move its neighbours under the pointer.
pub(crate) fn toggle_button(
    ui: &egui::Ui,
    shown: &str,
    labels: [&str; 2],
) -> egui::Button<'static> {
    let font = egui::TextStyle::Button.resolve(ui.style());
    let widest = labels
        .iter()
        .map(|l| {
            ui.painter()
                .layout_no_wrap(l.to_string(), font.clone(), egui::Color32::WHITE)
                .size()
                .x
        })
        .fold(0.0, f32::max);
    egui::Button::new(shown.to_string()).min_size(egui::vec2(
        widest + 2.0 * ui.spacing().button_padding.x,
        0.0,
    ))
}

/// A slider for one of the settings' rows (`engine::settings::table`): its span (or `span`),
/// scale and label, and its meaning and accepted range on hover. A typed value is never
/// clamped: one out of range reaches the state's validation, which keeps the last good state
/// and shows the row's message (the same a link, `setConfig` and the CLI give).
pub(crate) fn setting<T: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    v: &mut T,
    row: &Setting,
    span: Option<(f64, f64)>,
) -> egui::Response {
    let (lo, hi) = span.unwrap_or(row.slider);
    ui.add(
        egui::Slider::new(v, T::from_f64(lo)..=T::from_f64(hi))
            .logarithmic(row.log)
            .clamping(egui::SliderClamping::Never)
            .text(row.label),
    )
    .on_hover_text(format!(
        "{}: {} (accepted: {})",
        row.key,
        row.doc,
        row.range_text()
    ))
}

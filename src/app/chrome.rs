//! The app's chrome around the canvases: the look (theme, projector, UI scale), the top bar
//! and its menus, the status line, the share link, and the PNG export's last step.

use eframe::egui;

use crate::state::command::{self as api, Command};
use crate::state::js::{Answer, Refused};
use crate::state::link::{self};

use super::*;

/// Narrower than this (in points) the controls become a drawer: a 768-px tablet in portrait.
pub(super) const NARROW_WIDTH: f32 = 900.0;

/// egui's light visuals, or for the projector theme a high-contrast version of them: black
/// text, white panels, thicker outlines and a strong focus ring.
pub(super) fn projector_or_light(theme: crate::state::Theme) -> egui::Visuals {
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

impl ScoreLabApp {
    /// Follow the state's theme and UI scale (when they change).
    pub(super) fn apply_look(&mut self, ctx: &egui::Context) {
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

    /// The share link of the current state.
    pub(super) fn link(&self) -> String {
        format!(
            "{}{}",
            self.ui.page_url,
            link::to_hash(&self.state, &self.ui.flags)
        )
    }

    /// The link a QR code shows: the short form of the state, without the `qr` flag itself.
    pub(super) fn qr_link(&self) -> String {
        let flags = link::EmbedFlags {
            qr: false,
            ..self.ui.flags.clone()
        };
        format!(
            "{}{}",
            self.ui.page_url,
            link::to_short_hash(&self.state, &flags)
        )
    }

    /// The QR overlay while `qr` is on (re-encoded when the link changes).
    pub(super) fn qr_overlay(&mut self, ctx: &egui::Context) {
        if !self.ui.flags.qr {
            self.ui.qr = None;
            return;
        }
        let link = self.qr_link();
        let stale = match &self.ui.qr {
            Some(Ok(q)) => q.link != link,
            Some(Err(_)) | None => true,
        };
        if stale {
            self.ui.qr = Some(super::qr::encode(&link));
        }
        if let Some(q) = &self.ui.qr {
            if !super::qr::overlay(ctx, self.ui.plot_rect, q) {
                self.ui.flags.qr = false;
            }
        }
    }

    /// The status line under the canvas.
    pub(super) fn status_line(&self) -> String {
        let engine = self.host.engine.as_ref().map_or("none".to_string(), |e| {
            let workers = e.pool().len();
            let trains = match e.runs_on() {
                crate::engine::RunsOn::Page => e.label().to_string(),
                place if workers > 1 => format!("{} ({workers} {place}s)", e.label()),
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

    /// Start a clip (`Some(max seconds)`) or stop and save the one recording (`None`).
    pub(super) fn record(&mut self, start: Option<f64>) {
        match (start, self.ui.recording.take()) {
            (Some(max_s), None) => {
                let lesson = self
                    .ui
                    .flags
                    .lesson
                    .and_then(crate::state::lessons::lesson)
                    .map(|l| l.title);
                let name = super::record::clip_name(
                    lesson,
                    self.data.mixture.len(),
                    self.host.history.steps,
                );
                self.ui.recording = Some(super::record::Recording::start(name, max_s));
            }
            (_, Some(r)) => {
                let clip = r.finish();
                self.ui.file_message = Some(clip.message.clone());
                self.ui.clip = Some(clip);
            }
            (None, None) => {}
        }
    }

    /// The recording's frame: a capture when due, the end at its time limit.
    pub(super) fn record_tick(&mut self, ctx: &egui::Context) {
        let plot = self.ui.plot_rect;
        if let Some(r) = self.ui.recording.as_mut() {
            if r.tick(ctx, plot) {
                self.record(None);
            }
        }
    }

    /// Cut a finished screenshot to the plot and answer its export request.
    pub(super) fn finish_export(&mut self, ppp: f32) {
        let Some((id, img)) = SHOT.lock().ok().and_then(|mut s| s.take()) else {
            return;
        };
        let w = img.size[0];
        let Some([x0, y0, x1, y1]) = super::record::plot_pixels(self.ui.plot_rect, ppp, img.size)
        else {
            api::answer(id, Err(Refused::PlotOffScreen));
            return;
        };
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
        api::answer(id, Ok(Answer::PngDataUrl(url)));
    }

    /// The banners, the status line and the control panel.
    pub(super) fn chrome(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
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
            let rec = self.ui.recording.as_ref().map(|r| {
                format!(
                    "REC {:.1} s / {:.0} s · {} GIF frames",
                    r.elapsed().min(r.max_s),
                    r.max_s,
                    r.frames()
                )
            });
            egui::Panel::bottom("status").show(ui, |ui| {
                ui.horizontal(|ui| {
                    if let Some(rec) = rec {
                        ui.colored_label(egui::Color32::from_rgb(235, 70, 60), rec);
                    }
                    ui.small(line);
                });
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
                views: &self.views,
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
}

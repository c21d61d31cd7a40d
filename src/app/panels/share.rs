//! Share link, exports, import, the charts and the keyboard help.

use eframe::egui;

use super::PanelCtx;
use crate::app::host::Host;
use crate::app::{explain, files};
use crate::state::command::Command;
use crate::state::State;

/// Share link, exports and import.
pub fn share_ui(ui: &mut egui::Ui, st: &State, cx: &mut PanelCtx, cmds: &mut Vec<Command>) {
    ui.strong("Share & export");
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Copy link")
            .on_hover_text("The whole scene, model settings, samplers and view, in the URL")
            .clicked()
        {
            // The link of the panel's copy is the state's (only made on a click).
            let hash = crate::state::link::to_hash(st, &cx.ui.flags);
            ui.ctx().copy_text(format!("{}{hash}", cx.ui.page_url));
            cx.ui.file_message = Some("Link copied.".into());
        }
        let qr = if cx.ui.flags.qr { "Hide QR" } else { "Show QR" };
        if ui
            .add(super::toggle_button(ui, qr, ["Show QR", "Hide QR"]))
            .on_hover_text("The share link as a large QR code over the canvas, for a room to scan (also the link flag #qr)")
            .clicked()
        {
            cx.ui.flags.qr = !cx.ui.flags.qr;
        }
        if ui
            .button("Fullscreen")
            .on_hover_text("The page fills the screen (again to leave; Esc in the browser)")
            .clicked()
        {
            if let Some(m) = files::toggle_fullscreen(ui.ctx()) {
                cx.ui.file_message = Some(m);
            }
        }
        let rec = cx.ui.recording.as_ref().map(|r| r.elapsed().min(r.max_s));
        let label = match rec {
            Some(t) => format!("Stop recording ({t:.1} s)"),
            None => "Record clip".to_string(),
        };
        if ui
            .button(label)
            .on_hover_text(format!(
                "Records what you do, up to {:.0} s: a GIF of the plot and, in the browser, a WebM video of the page (named after the scene); the scene is not touched",
                crate::app::record::MAX_SECONDS
            ))
            .clicked()
        {
            cmds.push(Command::Record(
                rec.is_none().then_some(crate::app::record::MAX_SECONDS),
            ));
        }
        if ui.button("PNG").clicked() {
            cmds.push(Command::ExportPng(0));
        }
        if ui.button("samples CSV").clicked() {
            cx.ui.file_message = Some(match cx.host.runs[0].as_ref().map(|r| &r.points) {
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
            cmds.push(Command::ExportModel(0));
        }
        if ui.button("scene JSON").clicked() {
            let text = serde_json::to_string_pretty(st).unwrap_or_default();
            cx.ui.file_message = Some(files::save(
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
            cx.ui.file_message = files::pick_file();
        }
        if ui.button("? help").on_hover_text("h").clicked() {
            cmds.push(Command::ToggleHelp);
        }
    });
    if let Some(m) = &cx.ui.file_message {
        ui.label(m);
    }
}

/// Loss and Fisher charts.
pub fn charts_ui(ui: &mut egui::Ui, host: &Host) {
    let h = &host.history;
    ui.label("DSM loss");
    chart(ui, "loss", &h.loss);
    // The value has a line of its own, so the heading's line count never depends on it (a
    // wrap when a number came would move every control below under the pointer).
    ui.label("Fisher divergence to the exact score");
    ui.label(h.fisher.last().map_or("latest: –".to_string(), |f| {
        format!("latest: {:.3}", f[1])
    }));
    chart(ui, "fisher", &h.fisher);
}

fn chart(ui: &mut egui::Ui, name: &str, points: &[[f64; 2]]) {
    use egui_plot::{Line, Plot, PlotPoints};
    Plot::new(name)
        .height(80.0)
        .allow_scroll(false)
        .allow_drag(false)
        .show(ui, |p| {
            p.line(Line::new(name, PlotPoints::from(points.to_vec())));
        });
}

/// The keyboard help overlay.
pub fn help_window(ctx: &egui::Context, open: &mut bool) {
    egui::Window::new("Keyboard & mouse")
        .open(open)
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
}

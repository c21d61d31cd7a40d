//! The frame of the picture: axes with tick labels and a scale bar, the split view's title
//! in each canvas's corner, and the noise circle of radius s(t) at the cursor.

use eframe::egui::{self, Color32, Stroke};

use super::{Frame, Side, View};
use crate::app::canvas::{self, Plot};
use crate::state::State;

/// Axes, titles and the noise circle.
#[derive(Default)]
pub struct Axes;

impl View for Axes {
    fn name(&self) -> &'static str {
        "axes"
    }

    fn panel_order(&self) -> u8 {
        5
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(&mut st.axes, "axes & scale bar");
            ui.checkbox(&mut st.legends, "legends");
            ui.checkbox(&mut st.sigma_circle, "noise circle at the cursor")
                .on_hover_text("A circle of radius s(t), the standard deviation of the noise at the shown t, wherever the pointer is: compare it with the distance between the modes.");
        });
    }

    fn paint(&self, f: &Frame, side: &Side, p: &Plot) {
        let st = f.state;
        if st.axes {
            canvas::draw_axes(p.painter, p.rect, p.to_screen, p.visible, &p.style);
        }
        if let Some(title) = &side.title {
            p.painter.text(
                p.rect.left_top() + egui::vec2(10.0, 8.0),
                egui::Align2::LEFT_TOP,
                title,
                egui::FontId::proportional(15.0),
                p.style.ink(Color32::WHITE),
            );
        }
        let Some(pos) = p.hover.filter(|_| st.sigma_circle) else {
            return;
        };
        let t = st.scene.t;
        let (s, sigma) = (f.sde.marginal(t).1, f.sde.effective_sigma(t));
        let r = (s as f32) * p.to_screen.pixels_per_unit;
        if r.is_finite() && r > 1.0 {
            let ink = p.style.ink(canvas::NOISE_CIRCLE);
            p.painter
                .circle_stroke(pos, r, Stroke::new(1.2 * p.style.line, ink));
            p.painter.text(
                pos + egui::vec2(r.min(400.0) * 0.72 + 4.0, -r.min(400.0) * 0.72 - 4.0),
                egui::Align2::LEFT_BOTTOM,
                format!("noise s(t) = {s:.3} (σ = {sigma:.3})"),
                egui::FontId::proportional(12.0),
                ink,
            );
        }
    }
}

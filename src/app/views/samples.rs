//! Samples of the data distribution (drawn once per mixture and seed, kept in `app::Data`).

use eframe::egui;

use super::{Frame, Side, View};
use crate::app::canvas::Plot;
use crate::state::State;

/// The data samples' dots.
#[derive(Default)]
pub struct Samples;

impl View for Samples {
    fn name(&self) -> &'static str {
        "samples"
    }

    fn panel_order(&self) -> u8 {
        0
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        ui.checkbox(&mut st.layers.samples, "data samples");
    }

    fn paint(&self, f: &Frame, _side: &Side, p: &Plot) {
        if !f.state.layers.samples {
            return;
        }
        for x in &f.data.samples {
            p.painter.circle_filled(
                p.to_screen.screen_from_data(*x),
                1.6 * p.style.dot,
                p.style.sample,
            );
        }
    }
}

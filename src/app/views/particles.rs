//! The live particles and their fading trails, drawn from the engine's buffers by a wgpu
//! paint callback (`app::particles`; the host uploads the CPU engine's points to the
//! renderer's device and hands each canvas its slot's source).

use eframe::egui;
use eframe::egui_wgpu;

use super::{Frame, Side, View};
use crate::app::canvas::Plot;
use crate::app::particles::ParticleCallback;
use crate::state::State;

/// The live particles.
#[derive(Default)]
pub struct Particles;

impl View for Particles {
    fn name(&self) -> &'static str {
        "particles"
    }

    fn panel_order(&self) -> u8 {
        4
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut st.layers.particles, "particles");
            ui.checkbox(&mut st.layers.trails, "trails");
        });
    }

    fn paint(&self, f: &Frame, side: &Side, p: &Plot) {
        let Some(source) = side.particles.clone() else {
            return;
        };
        let c = p.style.particle;
        p.painter.add(egui_wgpu::Callback::new_paint_callback(
            p.rect,
            ParticleCallback {
                source,
                center: p.to_screen.center,
                points_per_unit: p.to_screen.pixels_per_unit,
                rect: p.rect,
                color: [
                    f32::from(c.r()) / 255.0,
                    f32::from(c.g()) / 255.0,
                    f32::from(c.b()) / 255.0,
                    1.0,
                ],
                radius: 2.2 * p.style.dot,
                trails: f.state.layers.trails,
            },
        ));
    }
}

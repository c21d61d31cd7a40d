//! The responsibilities layer: the plane coloured by the exact p(k | x_t), each pixel the mix
//! of the component colours weighted by how likely each component made a point there at the
//! shown noise level (recomputed when the grid, the mixture, the SDE or the colours change).
//! The example of a view in one file: its cache, its paint, its legend, its toggle.

use eframe::egui::{self, Color32};

use super::density::{heat_job, Heatmap};
use super::{Frame, Side, View};
use crate::app::canvas::{Legend, Plot};
use crate::sim::Vec2;
use crate::state::State;

/// Categorical component colours (Paul Tol's "bright" scheme, readable with colour-vision
/// deficiencies), repeated past seven.
pub(super) const COMPONENT_COLORS: [Color32; 7] = [
    Color32::from_rgb(0x44, 0x77, 0xAA),
    Color32::from_rgb(0xEE, 0x66, 0x77),
    Color32::from_rgb(0x22, 0x88, 0x33),
    Color32::from_rgb(0xCC, 0xBB, 0x44),
    Color32::from_rgb(0x66, 0xCC, 0xEE),
    Color32::from_rgb(0xAA, 0x33, 0x77),
    Color32::from_rgb(0xBB, 0xBB, 0xBB),
];

/// Colour of component `k` (responsibilities layer and its legend).
pub fn component_color(k: usize) -> Color32 {
    COMPONENT_COLORS[k % COMPONENT_COLORS.len()]
}

/// The responsibilities layer.
const RESPONSIBILITIES: &str = "The plane coloured by p(k | x_t): the posterior probability that a noisy point came from component k (exact, from the perturbed mixture). Where one colour dominates, the denoiser points at that component; at large σ the colours blur into each other and the denoiser can only guess the mean.";
/// Columns of the layer (rows follow the aspect ratio).
const COLS: u32 = 96;
/// Opacity over the heatmap below.
const ALPHA: u8 = 150;

/// The responsibilities texture.
#[derive(Default)]
pub struct Responsibilities {
    /// The texture and the grid it shows (none while the layer is off).
    pub map: Option<Heatmap>,
}

impl View for Responsibilities {
    fn name(&self) -> &'static str {
        "responsibilities"
    }

    fn panel_order(&self) -> u8 {
        2
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        ui.horizontal_wrapped(|ui| {
            ui.checkbox(
                &mut st.layers.responsibilities,
                "responsibilities p(k | x_t)",
            )
            .on_hover_text(RESPONSIBILITIES);
            if st.layers.responsibilities {
                for k in 0..st.scene.mixture.components.len() {
                    ui.colored_label(component_color(k), format!("•{}", k + 1));
                }
            }
        });
    }

    fn update(&mut self, ctx: &egui::Context, f: &Frame, view: (Vec2, Vec2)) {
        let st = f.state;
        if !st.layers.responsibilities {
            self.map = None;
            return;
        }
        let mixture = &f.data.mixture;
        let Some((req, key)) = heat_job(st, f.data.revision, &f.sde, view, COLS, self.map.as_ref())
        else {
            return;
        };
        let pt = crate::sim::score::ExactScore::new(mixture.clone(), f.sde).at(req.t);
        let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
        let mut pixels = vec![Color32::TRANSPARENT; nx * ny];
        let mut r = vec![0.0; mixture.len()];
        for (i, p) in req.points().iter().enumerate() {
            pt.responsibilities(*p, &mut r);
            let mut rgb = [0.0f64; 3];
            for (k, rk) in r.iter().enumerate() {
                let c = component_color(k);
                rgb[0] += rk * f64::from(c.r());
                rgb[1] += rk * f64::from(c.g());
                rgb[2] += rk * f64::from(c.b());
            }
            let (ix, iy) = (i % nx, i / nx);
            pixels[(ny - 1 - iy) * nx + ix] =
                Color32::from_rgba_unmultiplied(rgb[0] as u8, rgb[1] as u8, rgb[2] as u8, ALPHA);
        }
        self.map = Some(Heatmap {
            req,
            key,
            texture: ctx.load_texture(
                "responsibilities",
                egui::ColorImage::new([nx, ny], pixels),
                egui::TextureOptions::LINEAR,
            ),
            non_finite: 0,
        });
    }

    fn paint(&self, _f: &Frame, _side: &Side, p: &Plot) {
        if let Some(h) = &self.map {
            h.paint(p);
        }
    }

    fn legends(&self, f: &Frame, _side: &Side, legends: &mut Vec<Legend>, _: &mut Vec<Legend>) {
        if f.state.layers.responsibilities {
            let k = f.state.scene.mixture.components.len().max(1);
            legends.push(Legend {
                title: "p(k | x_t): colour of component k".into(),
                colors: (0..k).map(component_color).collect(),
                labels: ["1".into(), String::new(), format!("{k}")],
            });
        }
    }
}

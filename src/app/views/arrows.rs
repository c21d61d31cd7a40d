//! The score field's arrows (learned, exact, or their difference coloured by its component
//! along the exact score) and Tweedie's denoiser drawn to scale, from the field the engine
//! computes on a grid over the visible box; and the `field()` / `denoiser()` JS answers.

use eframe::egui::{self, Color32, Stroke};

use super::{Frame, Side, View};
use crate::app::canvas::{self, Legend, Plot};
use crate::app::host::{FieldAnswer, Pending};
use crate::engine::{FieldRequest, FrameRequest};
use crate::sim::denoise;
use crate::sim::Vec2;
use crate::state::command as api;
use crate::state::js::Answer;
use crate::state::{ArrowMode, State, Theme};

/// The denoiser's arrow from the learned score.
pub const DENOISE_LEARNED: Color32 = Color32::from_rgb(255, 160, 60);
/// The denoiser's arrow from the exact score.
pub const DENOISE_EXACT: Color32 = Color32::from_rgb(90, 210, 255);
/// Arrows per side of the field grid.
pub const ARROW_GRID: u32 = 24;
/// The denoiser's arrows take every 3rd point of the field grid both ways (8 × 8 of 24 × 24):
/// they are drawn to scale, and a full grid of long arrows hides the picture.
const DENOISER_EVERY: usize = 3;

/// The arrows view (it keeps nothing: the field is the host's latest).
#[derive(Default)]
pub struct Arrows;

impl Arrows {
    /// Arrows for the canvas from the latest field, in the chosen mode, with a signed value
    /// for the difference map: the error's component along the exact score (positive: the
    /// network pulls too hard that way; negative: too weakly or the wrong way); NaN otherwise.
    pub fn arrows(f: &Frame) -> Vec<(Vec2, Vec2, f64)> {
        let st = f.state;
        let Some((req, cells)) = &f.host.field else {
            return Vec::new();
        };
        if !st.layers.arrows {
            return Vec::new();
        }
        req.points()
            .into_iter()
            .zip(cells)
            .map(|(p, cell)| match st.arrows {
                ArrowMode::Learned => (p, cell.learned, f64::NAN),
                ArrowMode::Exact => (p, cell.exact, f64::NAN),
                ArrowMode::Difference => {
                    let d = cell.learned - cell.exact;
                    let n = cell.exact.norm();
                    let along = if n > 0.0 { d.dot(&cell.exact) / n } else { 0.0 };
                    (p, d, along)
                }
                // Drawn to scale by `denoiser_arrows` instead.
                ArrowMode::Denoiser => (p, Vec2::zeros(), f64::NAN),
            })
            .collect()
    }

    /// The denoiser's arrows (every `DENOISER_EVERY`-th grid point of the latest field, both
    /// ways): (x_t, D(x_t) from the learned score, D(x_t) from the exact score).
    pub fn denoiser_arrows(f: &Frame) -> Vec<[Vec2; 3]> {
        let st = f.state;
        let Some((req, cells)) = &f.host.field else {
            return Vec::new();
        };
        if !st.layers.arrows || st.arrows != ArrowMode::Denoiser {
            return Vec::new();
        }
        let sde = &f.sde;
        let nx = req.n.0 as usize;
        req.points()
            .into_iter()
            .zip(cells)
            .enumerate()
            .filter(|(i, _)| (i % nx) % DENOISER_EVERY == 1 && (i / nx) % DENOISER_EVERY == 1)
            .map(|(_, (p, c))| {
                [
                    p,
                    denoise::tweedie(sde, p, req.t, c.learned),
                    denoise::tweedie(sde, p, req.t, c.exact),
                ]
            })
            .collect()
    }

    /// Score arrows: length ∝ √(|s| / max) (compresses the huge range near the modes), colour
    /// by the same relative magnitude (or the signed difference).
    fn paint_arrows(arrows: &[(Vec2, Vec2, f64)], p: &Plot) {
        let style = &p.style;
        let cell = (p.rect.width().min(p.rect.height()) / ARROW_GRID as f32) * 0.9;
        let max_norm = arrows
            .iter()
            .map(|(_, v, _)| v.norm())
            .filter(|n| n.is_finite())
            .fold(0.0, f64::max)
            .max(1e-12);
        for (x, v, signed) in arrows {
            let n = v.norm();
            if n <= 0.0 || !n.is_finite() {
                continue;
            }
            let rel = (n / max_norm).sqrt();
            let len = cell * rel as f32;
            let dir = egui::vec2(v.x as f32, -v.y as f32) / n as f32;
            let color = if signed.is_finite() {
                canvas::diverging_color(signed / max_norm, style.light)
            } else {
                canvas::arrow_color_on(rel, style.light)
            };
            p.painter.arrow(
                p.to_screen.screen_from_data(*x),
                dir * len,
                Stroke::new(1.3 * style.line, color),
            );
        }
    }

    /// The denoiser's arrows to scale: learned (orange) with a dot where it lands, exact (cyan).
    fn paint_denoiser(denoiser: &[[Vec2; 3]], p: &Plot) {
        let style = &p.style;
        for [x, d, e] in denoiser {
            let from = p.to_screen.screen_from_data(*x);
            for (to, color, width) in [(e, DENOISE_EXACT, 1.2), (d, DENOISE_LEARNED, 1.6)] {
                if !(to.x.is_finite() && to.y.is_finite()) {
                    continue;
                }
                let to = p.to_screen.screen_from_data(*to);
                p.painter
                    .arrow(from, to - from, Stroke::new(width * style.line, color));
            }
            if d.x.is_finite() && d.y.is_finite() {
                p.painter.circle_filled(
                    p.to_screen.screen_from_data(*d),
                    2.0 * style.dot,
                    DENOISE_LEARNED,
                );
            }
        }
    }
}

/// The legend of the arrows' colours in the state's arrow mode (none when they are off).
fn arrow_legend(st: &State) -> Option<Legend> {
    if !st.layers.arrows {
        return None;
    }
    let light = st.theme == Theme::Projector;
    Some(match st.arrows {
        ArrowMode::Learned | ArrowMode::Exact => Legend::gradient(
            "score length / the longest (arrow length ~ √)",
            |v| canvas::arrow_color_on(v.sqrt(), light),
            ["0", "0.5", "1"],
        ),
        ArrowMode::Difference => Legend::gradient(
            "learned − exact, along the exact score",
            |v| canvas::diverging_color(2.0 * v - 1.0, light),
            ["too weak", "0", "too strong"],
        ),
        ArrowMode::Denoiser => Legend {
            title: "D(x_t) = E[x₀ | x_t]: learned (dot) · exact".into(),
            colors: [DENOISE_LEARNED; 20]
                .into_iter()
                .chain([DENOISE_EXACT; 20])
                .collect(),
            labels: ["learned".into(), String::new(), "exact".into()],
        },
    })
}

impl View for Arrows {
    fn name(&self) -> &'static str {
        "arrows"
    }

    fn panel_order(&self) -> u8 {
        1
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        ui.checkbox(&mut st.layers.arrows, "score arrows");
        ui.horizontal_wrapped(|ui| {
            ui.label("Arrows");
            ui.selectable_value(&mut st.arrows, ArrowMode::Learned, "learned");
            ui.selectable_value(&mut st.arrows, ArrowMode::Exact, "exact");
            ui.selectable_value(&mut st.arrows, ArrowMode::Difference, "difference");
            ui.selectable_value(&mut st.arrows, ArrowMode::Denoiser, "denoiser")
                .on_hover_text(crate::app::explain::DENOISER);
        });
    }

    fn request(&self, f: &Frame, view: (Vec2, Vec2), req: &mut FrameRequest) {
        // A `field()` / `denoiser()` request is answered with the arrows off too.
        if f.state.layers.arrows || !f.host.pending.fields.is_empty() {
            req.field = Some(FieldRequest {
                lo: view.0,
                hi: view.1,
                n: (ARROW_GRID, ARROW_GRID),
                t: f.state.scene.t,
            });
        }
    }

    fn paint(&self, f: &Frame, _side: &Side, p: &Plot) {
        Self::paint_arrows(&Self::arrows(f), p);
        Self::paint_denoiser(&Self::denoiser_arrows(f), p);
    }

    fn legends(&self, f: &Frame, _side: &Side, legends: &mut Vec<Legend>, _: &mut Vec<Legend>) {
        legends.extend(arrow_legend(f.state));
    }

    /// Answer `field()` / `denoiser()` requests from the latest learned field computed after
    /// them at the state's `t`.
    fn answer(&mut self, f: &Frame, pending: &mut Pending) {
        let t = f.state.scene.t;
        let (sde, mixture) = (&f.sde, &f.data.mixture);
        let Some((req, cells)) = &f.host.field else {
            return;
        };
        if pending.fields.is_empty() || req.t != t {
            return;
        }
        let seq = f.host.field_seq;
        let (due, wait): (Vec<_>, Vec<_>) = pending
            .fields
            .iter()
            .partition(|(_, asked, _)| *asked < seq);
        if due.is_empty() {
            return;
        }
        pending.fields = wait;
        let points = req.points();
        let score_rows = || -> Vec<Vec<f64>> {
            points
                .iter()
                .zip(cells)
                .map(|(p, c)| vec![p.x, p.y, c.learned.x, c.learned.y])
                .collect()
        };
        let denoiser_rows = || -> Vec<Vec<f64>> {
            points
                .iter()
                .zip(cells)
                .map(|(p, c)| {
                    let d = denoise::tweedie(sde, *p, t, c.learned);
                    let e = denoise::tweedie(sde, *p, t, c.exact);
                    let mut row = vec![p.x, p.y, d.x, d.y, e.x, e.y];
                    row.extend(denoise::responsibilities(mixture, sde, *p, t));
                    row
                })
                .collect()
        };
        for (id, _, what) in due {
            let rows = match what {
                FieldAnswer::Score => score_rows(),
                FieldAnswer::Denoiser => denoiser_rows(),
            };
            api::answer(id, Ok(Answer::Rows(rows)));
        }
    }
}

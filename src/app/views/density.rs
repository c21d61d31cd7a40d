//! The log-density heatmaps: the true perturbed log p_t (computed here, on the CPU, from the
//! closed form) and the learned one (the engine's PF-ODE likelihood on a coarser grid), with
//! their colour legends and the checker that marks cells whose value is not a number.

use eframe::egui::{self, Color32, Pos2, Rect};

use super::{Frame, Side, View};
use crate::app::canvas::{self, Legend, Plot};
use crate::engine::{EngineChoice, FieldRequest, FrameRequest};
use crate::sim::sde::Sde;
use crate::sim::Vec2;
use crate::state::{Palette, SplitMode, State, Theme};

/// Columns of the true-density heatmap (rows follow the aspect ratio).
const TRUE_DENSITY_COLS: u32 = 96;
/// Columns of the learned-density heatmap (each cell is a PF-ODE solve).
const LEARNED_DENSITY_COLS_GPU: u32 = 48;
const LEARNED_DENSITY_COLS_CPU: u32 = 24;
/// Nats below the maximum that the heatmap colour ramp spans.
pub const HEAT_SPAN: f64 = 10.0;

/// A cell whose log-density is NaN or ±∞ is drawn in a magenta / dark checker, so it can
/// never pass for "very unlikely" (the palette's lowest colour).
pub const NOT_FINITE_COLORS: [Color32; 2] =
    [Color32::from_rgb(230, 0, 200), Color32::from_rgb(60, 0, 50)];

/// A heatmap's colours: the palette, and whether on the projector's light canvas.
pub type HeatLook = (Palette, bool);

/// The heatmap colours `st` asks for.
pub fn heat_look(st: &State) -> HeatLook {
    (st.palette, st.theme == Theme::Projector)
}

/// A texture over a data box, and what it was computed for.
pub struct Heatmap {
    /// The grid.
    pub req: FieldRequest,
    /// What it was computed from (the mixture's revision and the SDE, hashed; the colours).
    pub key: (u64, HeatLook),
    /// The texture.
    pub texture: egui::TextureHandle,
    /// Cells whose log-density is not a finite number (drawn in [`NOT_FINITE_COLORS`]).
    pub non_finite: usize,
}

impl Heatmap {
    /// Draw the texture over its data box.
    pub fn paint(&self, p: &Plot) {
        let (lo, hi) = (self.req.lo, self.req.hi);
        let r = Rect::from_two_pos(
            p.to_screen.screen_from_data(Vec2::new(lo.x, hi.y)),
            p.to_screen.screen_from_data(Vec2::new(hi.x, lo.y)),
        );
        p.painter.image(
            self.texture.id(),
            r,
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
    }
}

/// The grid (`cols` columns over `view` at the shown t) and cache key of a heatmap computed on
/// the CPU from the mixture (`revision`) and `sde`; `None` when `cached` already holds it.
pub fn heat_job(
    st: &State,
    revision: u64,
    sde: &Sde,
    view: (Vec2, Vec2),
    cols: u32,
    cached: Option<&Heatmap>,
) -> Option<(FieldRequest, (u64, HeatLook))> {
    let req = FieldRequest::square_cells(view.0, view.1, cols, st.scene.t);
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        revision.hash(&mut h);
        format!("{sde:?}").hash(&mut h);
        (h.finish(), heat_look(st))
    };
    let fresh = cached.is_some_and(|h| h.req == req && h.key == key);
    (!fresh).then_some((req, key))
}

/// A heatmap texture of log-density values on `req`'s grid (row 0 = lowest y), and how many
/// cells are not finite (drawn in [`NOT_FINITE_COLORS`], never as a palette colour).
pub fn heat_texture(
    ctx: &egui::Context,
    name: &str,
    req: &FieldRequest,
    lp: &[f64],
    (palette, light): HeatLook,
) -> (egui::TextureHandle, usize) {
    let (nx, ny) = (req.n.0 as usize, req.n.1 as usize);
    let max = lp
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut pixels = vec![Color32::BLACK; nx * ny];
    let mut non_finite = 0;
    for iy in 0..ny {
        for ix in 0..nx {
            let v = lp.get(iy * nx + ix).copied().unwrap_or(f64::NAN);
            if !v.is_finite() {
                non_finite += 1;
                pixels[(ny - 1 - iy) * nx + ix] = NOT_FINITE_COLORS[(ix + iy) % 2];
                continue;
            }
            let f = if max.is_finite() {
                1.0 + (v - max) / HEAT_SPAN
            } else {
                0.0
            };
            pixels[(ny - 1 - iy) * nx + ix] = canvas::heat_color_on(f, palette, light);
        }
    }
    let texture = ctx.load_texture(
        name,
        egui::ColorImage::new([nx, ny], pixels),
        egui::TextureOptions::LINEAR,
    );
    (texture, non_finite)
}

/// The true and the learned log p_t heatmaps.
#[derive(Default)]
pub struct Density {
    /// The true log p_t, recomputed when the grid, the mixture, the SDE or the colours change.
    pub truth: Option<Heatmap>,
    /// The learned log p_t, rebuilt from each density the engine sends.
    pub learned: Option<Heatmap>,
    /// The engine's density this texture shows (`Host::density_seq`).
    learned_seq: u64,
}

impl Density {
    fn update_truth(&mut self, ctx: &egui::Context, f: &Frame, view: (Vec2, Vec2)) {
        let st = f.state;
        if !st.layers.true_density && st.split != SplitMode::Density {
            return;
        }
        let data = f.data;
        let Some((req, key)) = heat_job(
            st,
            data.revision,
            &f.sde,
            view,
            TRUE_DENSITY_COLS,
            self.truth.as_ref(),
        ) else {
            return;
        };
        let pt = crate::sim::score::ExactScore::new(data.mixture.clone(), f.sde).at(req.t);
        let lp: Vec<f64> = req.points().iter().map(|x| pt.log_prob(*x)).collect();
        let (texture, non_finite) = heat_texture(ctx, "true_density", &req, &lp, heat_look(st));
        self.truth = Some(Heatmap {
            req,
            key,
            texture,
            non_finite,
        });
    }

    fn update_learned(&mut self, ctx: &egui::Context, f: &Frame) {
        let host = f.host;
        let look = heat_look(f.state);
        let Some((req, lp)) = &host.density else {
            self.learned = None;
            return;
        };
        let same = self.learned_seq == host.density_seq
            && self.learned.as_ref().is_some_and(|h| h.key.1 == look);
        if same {
            return;
        }
        let (texture, non_finite) = heat_texture(ctx, "learned_density", req, lp, look);
        self.learned = Some(Heatmap {
            req: *req,
            key: (0, look),
            texture,
            non_finite,
        });
        self.learned_seq = host.density_seq;
    }

    /// (shown, what, heatmap) for each heatmap on `side`.
    fn shown<'a>(&'a self, side: &Side) -> [(bool, &'static str, Option<&'a Heatmap>); 2] {
        [
            (side.true_density, "true", self.truth.as_ref()),
            (side.learned_density, "learned", self.learned.as_ref()),
        ]
    }
}

impl View for Density {
    fn name(&self) -> &'static str {
        "density"
    }

    fn panel_order(&self) -> u8 {
        3
    }

    fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        let l = &mut st.layers;
        ui.horizontal_wrapped(|ui| {
            ui.label("Heatmap");
            let mut which = match (l.true_density, l.learned_density) {
                (_, true) => 2,
                (true, false) => 1,
                _ => 0,
            };
            ui.selectable_value(&mut which, 0, "none");
            ui.selectable_value(&mut which, 1, "true log p_t");
            ui.selectable_value(&mut which, 2, "learned log p_t")
                .on_hover_text("The model's own log-density at this noise level, from the probability-flow ODE (a few seconds to refresh).");
            l.true_density = which == 1;
            l.learned_density = which == 2;
        });
        ui.horizontal(|ui| {
            ui.label("Colours");
            ui.selectable_value(&mut st.palette, Palette::Classic, "classic");
            ui.selectable_value(&mut st.palette, Palette::Cividis, "cividis")
                .on_hover_text("Perceptually uniform, readable with colour-vision deficiencies");
        });
    }

    fn request(&self, f: &Frame, view: (Vec2, Vec2), req: &mut FrameRequest) {
        if !f.state.layers.learned_density {
            return;
        }
        let cols = match f.host.engine.as_ref().map(|e| e.sampling_choice()) {
            Some(EngineChoice::Gpu) => LEARNED_DENSITY_COLS_GPU,
            _ => LEARNED_DENSITY_COLS_CPU,
        };
        req.density = Some(FieldRequest::square_cells(
            view.0,
            view.1,
            cols,
            f.state.scene.t,
        ));
    }

    fn update(&mut self, ctx: &egui::Context, f: &Frame, view: (Vec2, Vec2)) {
        self.update_truth(ctx, f, view);
        self.update_learned(ctx, f);
    }

    fn paint(&self, _f: &Frame, side: &Side, p: &Plot) {
        for (on, _, h) in self.shown(side) {
            if let Some(h) = h.filter(|_| on) {
                h.paint(p);
            }
        }
    }

    fn legends(
        &self,
        f: &Frame,
        side: &Side,
        legends: &mut Vec<Legend>,
        warnings: &mut Vec<Legend>,
    ) {
        let st = f.state;
        let light = st.theme == Theme::Projector;
        let span = format!("−{HEAT_SPAN}");
        let half = format!("−{}", HEAT_SPAN / 2.0);
        for (on, what, h) in self.shown(side) {
            // Not-a-number cells are always explained, legends on or off.
            if let Some(h) = h.filter(|h| on && h.non_finite > 0) {
                warnings.push(Legend {
                    title: format!(
                        "{what} log p_t is not a number in {} cells (checker): NaN/∞, not 'unlikely'",
                        h.non_finite
                    ),
                    colors: NOT_FINITE_COLORS.to_vec(),
                    labels: ["NaN".into(), String::new(), "∞".into()],
                });
            }
            if on {
                legends.push(Legend::gradient(
                    &format!("{what} log p_t, nats below its largest value"),
                    |v| canvas::heat_color_on(v, st.palette, light),
                    [&span, &half, "0"],
                ));
            }
        }
    }
}

//! The data-space canvas: view (pan, zoom), heatmaps, score arrows, samples, particles (a GPU
//! paint callback), and editing the mixture: drag a centre handle to move a component, drag
//! its edge handle to stretch and rotate the covariance, scroll over it to change its weight,
//! double-click empty space to add one, right-click to remove one, click to select it;
//! in paint mode brush strokes drop small Gaussians. Undo/redo and the Delete key live in the
//! app (they act on the scene, not on the view).

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke};
use eframe::egui_wgpu;

use crate::app::particles::{ParticleCallback, ParticleSource};
use crate::sim::mixture::{GaussianMixture, MixtureSpec};
use crate::sim::Vec2;

mod input;
mod style;

use input::*;
pub use style::*;

/// What a drag is doing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drag {
    Move(usize),
    Axis(usize),
    Pan,
    Paint,
}

/// Canvas interaction state.
#[derive(Default)]
pub struct CanvasState {
    dragging: Option<Drag>,
    /// Data-space box shown; fitted to the mixture when `None` (start, preset change), then
    /// kept fixed so the view does not move under a drag (pan and zoom change it).
    pub view_box: Option<(Vec2, Vec2)>,
    /// The selected component (weight slider, Delete key).
    pub selected: Option<usize>,
    /// Paint mode: drags drop small Gaussians.
    pub paint: bool,
    /// The next stroke replaces the mixture (set when paint mode is switched on).
    pub paint_fresh: bool,
    last_paint: Option<Vec2>,
    last_scroll: Option<f64>,
    /// A long press on a component (touch) opened its action menu here: (component, where).
    touch_menu: Option<(usize, Pos2)>,
    /// Where the touch menu's Remove button is on screen (for the browser tests).
    pub touch_menu_remove: Option<(usize, Pos2)>,
}

/// Maps data coordinates to screen points (y up in data, down on screen).
#[derive(Clone, Copy, Debug)]
pub struct ScreenFromData {
    rect: Rect,
    /// Data point at the centre of the rectangle.
    pub center: Vec2,
    /// Points per data unit.
    pub pixels_per_unit: f32,
}

impl ScreenFromData {
    fn fit(rect: Rect, lo: Vec2, hi: Vec2) -> Self {
        let center = 0.5 * (lo + hi);
        let span = (hi - lo).map(|v| v.max(1e-3));
        let ppu = (rect.width() / span.x as f32).min(rect.height() / span.y as f32);
        Self {
            rect,
            center,
            pixels_per_unit: ppu,
        }
    }

    fn screen_from_data(self, p: Vec2) -> Pos2 {
        let c = self.rect.center();
        Pos2::new(
            c.x + ((p.x - self.center.x) as f32) * self.pixels_per_unit,
            c.y - ((p.y - self.center.y) as f32) * self.pixels_per_unit,
        )
    }

    fn data_from_screen(self, p: Pos2) -> Vec2 {
        let c = self.rect.center();
        Vec2::new(
            self.center.x + f64::from((p.x - c.x) / self.pixels_per_unit),
            self.center.y - f64::from((p.y - c.y) / self.pixels_per_unit),
        )
    }
}

/// Arrows per side of the field grid.
pub const ARROW_GRID: u32 = 24;
/// Centre/edge handle pick radius in points.
const PICK: f32 = 11.0;
/// Brush spacing in points; brush Gaussians have σ = 0.6 × spacing.
const BRUSH_SPACING: f32 = 26.0;

/// What to draw besides the mixture.
pub struct CanvasLayers<'a> {
    /// Data samples.
    pub samples: Option<&'a [Vec2]>,
    /// (position, vector) arrows.
    /// (position, vector, signed value) arrows: the value (in [−1, 1] after scaling by the
    /// largest arrow) picks a diverging colour; NaN colours by magnitude.
    pub arrows: &'a [(Vec2, Vec2, f64)],
    /// Colour legends, drawn bottom left.
    pub legends: Vec<Legend>,
    /// Tweedie's denoiser, to scale: (x_t, D from the learned score, D from the exact score).
    pub denoiser: &'a [[Vec2; 3]],
    /// Heatmap textures over data boxes.
    pub heatmaps: Vec<(egui::TextureId, Vec2, Vec2)>,
    /// Particles to draw through the paint callback.
    pub particles: Option<ParticleSource>,
    /// Draw their trails.
    pub trails: bool,
    /// Lesson overlays (paths, probe, inpainting).
    pub extras: &'a CanvasExtras,
    /// A title in the corner (split view).
    pub title: Option<String>,
    /// Axes with tick labels and a scale bar.
    pub axes: bool,
    /// (s(t), σ(t)) for the noise circle at the cursor, when it is on.
    pub noise: Option<(f64, f64)>,
    /// Colours and line widths.
    pub style: CanvasStyle,
}

/// Overlays drawn on top of everything but the handles.
#[derive(Clone, Debug, Default)]
pub struct CanvasExtras {
    /// Polylines in data space: (points, colour, width).
    pub curves: Vec<(Vec<Vec2>, Color32, f32)>,
    /// Dots: (position, colour, radius in points).
    pub points: Vec<(Vec2, Color32, f32)>,
    /// A vertical line x₁ = c.
    pub vline: Option<(f64, Color32)>,
    /// Text next to a data point.
    pub labels: Vec<(Vec2, String, Color32)>,
}

/// What the canvas produced this frame.
pub struct CanvasOutput {
    /// An edited mixture, and whether it starts a new gesture (an undo point).
    pub edit: Option<(MixtureSpec, bool)>,
    /// The data box visible (the field grid to request).
    pub view: (Vec2, Vec2),
    /// The canvas rectangle on screen (points).
    pub rect: Rect,
    /// A message for the user (e.g. the component limit).
    pub message: Option<String>,
    /// A primary click, in data coordinates (the app's click tool decides what it does).
    pub click: Option<Vec2>,
}

/// Draw the canvas and handle its input.
pub fn canvas_ui(
    ui: &mut egui::Ui,
    state: &mut CanvasState,
    mixture: &GaussianMixture,
    spec: &MixtureSpec,
    layers: CanvasLayers<'_>,
) -> CanvasOutput {
    let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
    let rect = response.rect;
    let style = layers.style;
    painter.rect_filled(rect, 0.0, style.background);
    // A fixed view around the data: the box of ±3σ, padded, and at least 10×10 units.
    let (lo, hi) = *state.view_box.get_or_insert_with(|| {
        let (lo, hi) = mixture.bounding_box();
        let mid = 0.5 * (lo + hi);
        let half = (0.5 * (hi - lo)).map(|v| v.max(5.0)) * 1.15;
        (mid - half, mid + half)
    });
    let view = ScreenFromData::fit(rect.shrink(8.0), lo, hi);
    let half_visible = Vec2::new(
        f64::from(rect.width() / 2.0 / view.pixels_per_unit),
        f64::from(rect.height() / 2.0 / view.pixels_per_unit),
    );
    let visible = (view.center - half_visible, view.center + half_visible);
    let painter = painter.with_clip_rect(rect);

    for (tex, lo, hi) in &layers.heatmaps {
        let r = Rect::from_two_pos(
            view.screen_from_data(Vec2::new(lo.x, hi.y)),
            view.screen_from_data(Vec2::new(hi.x, lo.y)),
        );
        painter.image(
            *tex,
            r,
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
    }

    if layers.axes {
        draw_axes(&painter, rect, view, visible, &style);
    }

    // Score arrows: length ∝ √(|s| / max) (compresses the huge range near the modes), colour
    // by the same relative magnitude.
    let cell = (rect.width().min(rect.height()) / ARROW_GRID as f32) * 0.9;
    let max_norm = layers
        .arrows
        .iter()
        .map(|(_, v, _)| v.norm())
        .filter(|n| n.is_finite())
        .fold(0.0, f64::max)
        .max(1e-12);
    for (p, v, signed) in layers.arrows {
        let n = v.norm();
        if n <= 0.0 || !n.is_finite() {
            continue;
        }
        let rel = (n / max_norm).sqrt();
        let len = cell * rel as f32;
        let dir = egui::vec2(v.x as f32, -v.y as f32) / n as f32;
        let color = if signed.is_finite() {
            diverging_color(signed / max_norm, style.light)
        } else {
            arrow_color_on(rel, style.light)
        };
        painter.arrow(
            view.screen_from_data(*p),
            dir * len,
            Stroke::new(1.3 * style.line, color),
        );
    }

    // The denoiser's arrows to scale: learned (orange) with a dot where it lands, exact (cyan).
    for [p, d, e] in layers.denoiser {
        let from = view.screen_from_data(*p);
        for (to, color, width) in [(e, DENOISE_EXACT, 1.2), (d, DENOISE_LEARNED, 1.6)] {
            if !(to.x.is_finite() && to.y.is_finite()) {
                continue;
            }
            let to = view.screen_from_data(*to);
            painter.arrow(from, to - from, Stroke::new(width * style.line, color));
        }
        if d.x.is_finite() && d.y.is_finite() {
            painter.circle_filled(view.screen_from_data(*d), 2.0 * style.dot, DENOISE_LEARNED);
        }
    }

    if let Some(samples) = layers.samples {
        for x in samples {
            painter.circle_filled(view.screen_from_data(*x), 1.6 * style.dot, style.sample);
        }
    }

    if let Some(source) = layers.particles {
        let c = style.particle;
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            ParticleCallback {
                source,
                center: view.center,
                points_per_unit: view.pixels_per_unit,
                rect,
                color: [
                    f32::from(c.r()) / 255.0,
                    f32::from(c.g()) / 255.0,
                    f32::from(c.b()) / 255.0,
                    1.0,
                ],
                radius: 2.2 * style.dot,
                trails: layers.trails,
            },
        ));
    }

    let ex = layers.extras;
    if let Some((c, color)) = ex.vline {
        let x = view.screen_from_data(Vec2::new(c, 0.0)).x;
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(1.5 * style.line, color),
        );
    }
    for (pts, color, width) in &ex.curves {
        let line: Vec<Pos2> = pts.iter().map(|p| view.screen_from_data(*p)).collect();
        painter.add(egui::Shape::line(
            line,
            Stroke::new(*width * style.line, style.ink(*color)),
        ));
    }
    for (p, color, r) in &ex.points {
        painter.circle_filled(view.screen_from_data(*p), *r * style.dot, style.ink(*color));
    }
    for (p, text, color) in &ex.labels {
        painter.text(
            view.screen_from_data(*p) + egui::vec2(8.0, 8.0),
            egui::Align2::LEFT_TOP,
            text,
            egui::FontId::proportional(13.0),
            style.ink(*color),
        );
    }
    if let Some(title) = &layers.title {
        painter.text(
            rect.left_top() + egui::vec2(10.0, 8.0),
            egui::Align2::LEFT_TOP,
            title,
            egui::FontId::proportional(15.0),
            style.ink(Color32::WHITE),
        );
    }

    draw_legends(&painter, rect, &layers.legends, &style);

    let total_w: f64 = spec.components.iter().map(|c| c.weight).sum();
    for (k, g) in mixture.components().iter().enumerate() {
        let selected = state.selected == Some(k);
        let color = if selected {
            SELECTED_COLOR
        } else {
            style.ellipse
        };
        for s in [1.0, 2.0] {
            let pts: Vec<Pos2> = (0..=64)
                .map(|i| {
                    let a = std::f64::consts::TAU * f64::from(i) / 64.0;
                    view.screen_from_data(g.mean + s * (g.chol * Vec2::new(a.cos(), a.sin())))
                })
                .collect();
            painter.add(egui::Shape::line(
                pts,
                Stroke::new(style.line * if s == 1.0 { 1.6 } else { 0.8 }, color),
            ));
        }
        let c = view.screen_from_data(g.mean);
        let e = view.screen_from_data(edge_point(g.mean, g.cov));
        painter.line_segment([c, e], Stroke::new(style.line, color.gamma_multiply(0.6)));
        painter.circle_stroke(e, 4.5, Stroke::new(1.5 * style.line, color));
        painter.circle_filled(c, 6.0, HANDLE_COLOR);
        // The component's number: what the legends, the weight bars and guidance refer to,
        // so no colour alone carries which component is which.
        painter.text(
            c + egui::vec2(-8.0, 8.0),
            egui::Align2::RIGHT_TOP,
            format!("{}", k + 1),
            egui::FontId::proportional(12.0 * style.dot.sqrt()),
            style.text,
        );
        if selected {
            if let Some(w) = spec.components.get(k).map(|c| c.weight / total_w) {
                painter.text(
                    c + egui::vec2(9.0, -9.0),
                    egui::Align2::LEFT_BOTTOM,
                    format!("w = {w:.2}"),
                    egui::FontId::proportional(13.0),
                    SELECTED_COLOR,
                );
            }
        }
    }

    if let (Some((s, sigma)), Some(pos)) = (layers.noise, response.hover_pos()) {
        let r = (s as f32) * view.pixels_per_unit;
        if r.is_finite() && r > 1.0 {
            painter.circle_stroke(
                pos,
                r,
                Stroke::new(1.2 * style.line, style.ink(NOISE_CIRCLE)),
            );
            painter.text(
                pos + egui::vec2(r.min(400.0) * 0.72 + 4.0, -r.min(400.0) * 0.72 - 4.0),
                egui::Align2::LEFT_BOTTOM,
                format!("noise s(t) = {s:.3} (σ = {sigma:.3})"),
                egui::FontId::proportional(12.0),
                style.ink(NOISE_CIRCLE),
            );
        }
    }

    let mut out = CanvasOutput {
        edit: None,
        view: visible,
        rect,
        message: None,
        click: None,
    };
    handle_input(ui, &response, state, mixture, spec, view, &mut out);
    out
}

//! The data-space canvas: transform, ellipses, samples, score arrows, and dragging means.

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke};

use crate::sim::mixture::{GaussianMixture, MixtureSpec};
use crate::sim::Vec2;

/// Canvas interaction state.
#[derive(Default)]
pub struct CanvasState {
    dragging: Option<usize>,
    /// Data-space box shown; fitted to the mixture when `None` (start, preset change), then
    /// kept fixed so the view does not move under a drag.
    pub view_box: Option<(Vec2, Vec2)>,
}

/// Maps data coordinates to screen points (y up in data, down on screen).
#[derive(Clone, Copy, Debug)]
struct ScreenFromData {
    rect: Rect,
    center: Vec2,
    pixels_per_unit: f32,
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
}

const SAMPLE_COLOR: Color32 = Color32::from_rgb(90, 170, 255);
const ARROW_COLOR: Color32 = Color32::from_rgb(255, 170, 60);
const ELLIPSE_COLOR: Color32 = Color32::from_rgb(240, 240, 240);
const HANDLE_COLOR: Color32 = Color32::from_rgb(255, 80, 120);

/// Arrows per side of the field grid.
pub const ARROW_GRID: u32 = 24;

/// What the canvas produced this frame.
pub struct CanvasOutput {
    /// An edited mixture (the user dragged a mean).
    pub edit: Option<MixtureSpec>,
    /// The data box shown (the field grid to request).
    pub view: (Vec2, Vec2),
}

/// Draw the canvas with `arrows` (position, vector) already chosen by the app.
pub fn canvas_ui(
    ui: &mut egui::Ui,
    state: &mut CanvasState,
    mixture: &GaussianMixture,
    spec: &MixtureSpec,
    samples: &[Vec2],
    arrows: &[(Vec2, Vec2)],
) -> CanvasOutput {
    let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
    let rect = response.rect;
    painter.rect_filled(rect, 0.0, Color32::from_rgb(18, 20, 28));
    // A fixed view around the data: the box of ±3σ, padded, and at least 10×10 units.
    let (lo, hi) = *state.view_box.get_or_insert_with(|| {
        let (lo, hi) = mixture.bounding_box();
        let mid = 0.5 * (lo + hi);
        let half = (0.5 * (hi - lo)).map(|v| v.max(5.0)) * 1.15;
        (mid - half, mid + half)
    });
    let view = ScreenFromData::fit(rect.shrink(8.0), lo, hi);

    // Score arrows (from the engine's latest field) on the grid the canvas asks for: the whole
    // visible data rectangle, not just the fitted box.
    let half_visible = Vec2::new(
        f64::from(rect.width() / 2.0 / view.pixels_per_unit),
        f64::from(rect.height() / 2.0 / view.pixels_per_unit),
    );
    let request_grid = (view.center - half_visible, view.center + half_visible);
    let cell = (rect.width().min(rect.height()) / ARROW_GRID as f32) * 0.9;
    let max_norm = arrows
        .iter()
        .map(|(_, v)| v.norm())
        .filter(|n| n.is_finite())
        .fold(0.0, f64::max)
        .max(1e-12);
    for (p, v) in arrows {
        // Length ∝ √(|s| / max): compresses the huge dynamic range near the modes.
        let n = v.norm();
        if n <= 0.0 || !n.is_finite() {
            continue;
        }
        let len = cell * (n / max_norm).sqrt() as f32;
        let dir = egui::vec2(v.x as f32, -v.y as f32) / n as f32;
        painter.arrow(
            view.screen_from_data(*p),
            dir * len,
            Stroke::new(1.2, ARROW_COLOR.gamma_multiply(0.8)),
        );
    }

    for x in samples {
        painter.circle_filled(view.screen_from_data(*x), 1.6, SAMPLE_COLOR);
    }

    for g in mixture.components() {
        for k in [1.0, 2.0] {
            let pts: Vec<Pos2> = (0..=64)
                .map(|i| {
                    let a = std::f64::consts::TAU * f64::from(i) / 64.0;
                    view.screen_from_data(g.mean + k * (g.chol * Vec2::new(a.cos(), a.sin())))
                })
                .collect();
            painter.add(egui::Shape::line(
                pts,
                Stroke::new(if k == 1.0 { 1.6 } else { 0.8 }, ELLIPSE_COLOR),
            ));
        }
        painter.circle_filled(view.screen_from_data(g.mean), 6.0, HANDLE_COLOR);
    }

    // Dragging a centre handle moves that component's mean.
    let mut edit = None;
    if response.drag_started() {
        if let Some(pos) = response.interact_pointer_pos() {
            state.dragging = mixture
                .components()
                .iter()
                .enumerate()
                .map(|(k, g)| (k, view.screen_from_data(g.mean).distance(pos)))
                .filter(|(_, d)| *d < 14.0)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| k);
        }
    }
    if let (Some(k), true) = (state.dragging, response.dragged()) {
        let d = response.drag_delta();
        if d != egui::Vec2::ZERO && k < spec.components.len() {
            let mut s = spec.clone();
            s.components[k].mean[0] += f64::from(d.x / view.pixels_per_unit);
            s.components[k].mean[1] -= f64::from(d.y / view.pixels_per_unit);
            edit = Some(s);
        }
    }
    if response.drag_stopped() {
        state.dragging = None;
    }
    CanvasOutput {
        edit,
        view: request_grid,
    }
}

//! The data-space canvas: the view (pan, zoom), the plot every view of `app::views` paints
//! onto, and editing the mixture: drag a centre handle to move a component, drag
//! its edge handle to stretch and rotate the covariance, scroll over it to change its weight,
//! double-click empty space to add one, right-click to remove one, click to select it;
//! in paint mode brush strokes drop small Gaussians. Undo/redo and the Delete key live in the
//! app (they act on the scene, not on the view).

use eframe::egui::{self, Pos2, Rect, Sense, Stroke};

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
    /// The map that fits the box `lo`..`hi` into `rect`.
    pub fn fit(rect: Rect, lo: Vec2, hi: Vec2) -> Self {
        let center = 0.5 * (lo + hi);
        let span = (hi - lo).map(|v| v.max(1e-3));
        let ppu = (rect.width() / span.x as f32).min(rect.height() / span.y as f32);
        Self {
            rect,
            center,
            pixels_per_unit: ppu,
        }
    }

    /// The screen point of data point `p`.
    pub fn screen_from_data(self, p: Vec2) -> Pos2 {
        let c = self.rect.center();
        Pos2::new(
            c.x + ((p.x - self.center.x) as f32) * self.pixels_per_unit,
            c.y - ((p.y - self.center.y) as f32) * self.pixels_per_unit,
        )
    }

    /// The data point under screen point `p`.
    pub fn data_from_screen(self, p: Pos2) -> Vec2 {
        let c = self.rect.center();
        Vec2::new(
            self.center.x + f64::from((p.x - c.x) / self.pixels_per_unit),
            self.center.y - f64::from((p.y - c.y) / self.pixels_per_unit),
        )
    }
}

/// Centre/edge handle pick radius in points.
const PICK: f32 = 11.0;
/// Brush spacing in points; brush Gaussians have σ = 0.6 × spacing.
const BRUSH_SPACING: f32 = 26.0;

/// Where the views paint: the canvas's painter (clipped to it) and its data → screen map.
pub struct Plot<'a> {
    /// Paints on the canvas.
    pub painter: &'a egui::Painter,
    /// Data coordinates to screen points.
    pub to_screen: ScreenFromData,
    /// The canvas on screen.
    pub rect: Rect,
    /// The data box visible.
    pub visible: (Vec2, Vec2),
    /// Colours and line widths.
    pub style: CanvasStyle,
    /// The pointer, when it is over the canvas.
    pub hover: Option<Pos2>,
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

/// Draw the canvas: the background, then `layers` (the views, bottom first), then the
/// mixture's ellipses and handles; and handle its input.
pub fn canvas_ui(
    ui: &mut egui::Ui,
    state: &mut CanvasState,
    mixture: &GaussianMixture,
    spec: &MixtureSpec,
    style: CanvasStyle,
    layers: &mut dyn FnMut(&Plot),
) -> CanvasOutput {
    let (response, painter) = ui.allocate_painter(ui.available_size(), Sense::click_and_drag());
    let rect = response.rect;
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
    layers(&Plot {
        painter: &painter,
        to_screen: view,
        rect,
        visible,
        style,
        hover: response.hover_pos(),
    });
    draw_mixture(&painter, state, mixture, spec, view, &style);
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

/// Each component's 1σ and 2σ ellipses, its centre and edge handles and its number; the
/// selected one's weight.
fn draw_mixture(
    painter: &egui::Painter,
    state: &CanvasState,
    mixture: &GaussianMixture,
    spec: &MixtureSpec,
    view: ScreenFromData,
    style: &CanvasStyle,
) {
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
}

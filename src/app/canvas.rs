//! The data-space canvas: view (pan, zoom), heatmaps, score arrows, samples, particles (a GPU
//! paint callback), and editing the mixture: drag a centre handle to move a component, drag
//! its edge handle to stretch and rotate the covariance, scroll over it to change its weight,
//! double-click empty space to add one, right-click to remove one, click to select it;
//! in paint mode brush strokes drop small Gaussians. Undo/redo and the Delete key live in the
//! app (they act on the scene, not on the view).

use eframe::egui::{self, Color32, Pos2, Rect, Sense, Stroke};
use eframe::egui_wgpu;

use crate::app::particles::{ParticleCallback, ParticleSource};
use crate::sim::ellipse::{cov_from_axis, principal_axes, remove_component};
use crate::sim::mixture::{ComponentSpec, GaussianMixture, MixtureSpec, MAX_COMPONENTS};
use crate::sim::Vec2;
use crate::state::Palette;

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

/// Colour of the data samples.
pub const SAMPLE_COLOR: Color32 = Color32::from_rgb(90, 170, 255);
/// Colour of the live particles.
pub const PARTICLE_COLOR: Color32 = Color32::from_rgb(110, 240, 130);
const ELLIPSE_COLOR: Color32 = Color32::from_rgb(240, 240, 240);
const SELECTED_COLOR: Color32 = Color32::from_rgb(255, 220, 90);
const HANDLE_COLOR: Color32 = Color32::from_rgb(255, 80, 120);
const BACKGROUND: Color32 = Color32::from_rgb(18, 20, 28);

/// The denoiser's arrow from the learned score.
pub const DENOISE_LEARNED: Color32 = Color32::from_rgb(255, 160, 60);
/// The denoiser's arrow from the exact score.
pub const DENOISE_EXACT: Color32 = Color32::from_rgb(90, 210, 255);
/// Categorical component colours (Paul Tol's "bright" scheme, readable with colour-vision
/// deficiencies), repeated past seven.
const COMPONENT_COLORS: [Color32; 7] = [
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

/// Axis lines, grid and tick labels.
const AXIS_COLOR: Color32 = Color32::from_rgba_premultiplied(150, 150, 165, 150);
/// Grid lines between ticks.
const GRID_COLOR: Color32 = Color32::from_rgba_premultiplied(40, 40, 48, 40);
/// The noise circle at the cursor.
const NOISE_CIRCLE: Color32 = Color32::from_rgb(255, 255, 255);

/// Colours and line widths of the canvas: dark, or the projector's light, high-contrast look
/// with thicker lines and larger dots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CanvasStyle {
    /// A light canvas (heatmaps and arrows use their light ramps).
    pub light: bool,
    /// Background.
    pub background: Color32,
    /// Data samples.
    pub sample: Color32,
    /// Live particles.
    pub particle: Color32,
    /// Component ellipses.
    pub ellipse: Color32,
    /// Titles, labels, the scale bar and the noise circle.
    pub text: Color32,
    /// Axis lines and tick labels.
    pub axis: Color32,
    /// Grid lines.
    pub grid: Color32,
    /// Line widths are multiplied by this.
    pub line: f32,
    /// Dot radii are multiplied by this.
    pub dot: f32,
}

impl CanvasStyle {
    /// The default dark canvas.
    pub const DARK: Self = Self {
        light: false,
        background: BACKGROUND,
        sample: SAMPLE_COLOR,
        particle: PARTICLE_COLOR,
        ellipse: ELLIPSE_COLOR,
        text: Color32::from_rgb(235, 235, 240),
        axis: AXIS_COLOR,
        grid: GRID_COLOR,
        line: 1.0,
        dot: 1.0,
    };
    /// The projector's light canvas: dark ink on white, lines twice as thick.
    pub const PROJECTOR: Self = Self {
        light: true,
        background: Color32::from_rgb(252, 252, 250),
        sample: Color32::from_rgb(0, 80, 200),
        particle: Color32::from_rgb(0, 130, 40),
        ellipse: Color32::from_rgb(10, 10, 10),
        text: Color32::from_rgb(0, 0, 0),
        axis: Color32::from_rgb(60, 60, 70),
        grid: Color32::from_rgba_premultiplied(40, 40, 50, 60),
        line: 2.0,
        dot: 1.6,
    };

    /// The canvas of `theme`.
    pub fn of(theme: crate::state::Theme) -> Self {
        if theme == crate::state::Theme::Projector {
            Self::PROJECTOR
        } else {
            Self::DARK
        }
    }

    /// An overlay colour made readable here: white (on the dark canvas) becomes the text ink.
    fn ink(&self, c: Color32) -> Color32 {
        if self.light && c == Color32::WHITE {
            self.text
        } else {
            c
        }
    }
}

/// A "nice" step (1, 2 or 5 × 10^k) close to `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * p
}

/// A tick label without float noise (at most 4 significant decimals for the step).
fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// Grid lines at a nice step, the axes x = 0 and y = 0 where visible, tick labels along the
/// bottom and left edges, and a scale bar in the bottom-right corner.
fn draw_axes(
    painter: &egui::Painter,
    rect: Rect,
    view: ScreenFromData,
    visible: (Vec2, Vec2),
    style: &CanvasStyle,
) {
    let (lo, hi) = visible;
    let step = nice_step((hi.x - lo.x).max(hi.y - lo.y) / 8.0);
    let font = egui::FontId::proportional(11.0 * style.dot.sqrt());
    let label_color = style.axis;
    let first = |a: f64| (a / step).ceil() as i64;
    let last = |b: f64| (b / step).floor() as i64;
    for i in first(lo.x)..=last(hi.x) {
        let x = i as f64 * step;
        let sx = view.screen_from_data(Vec2::new(x, 0.0)).x;
        let color = if i == 0 { style.axis } else { style.grid };
        painter.line_segment(
            [Pos2::new(sx, rect.top()), Pos2::new(sx, rect.bottom())],
            Stroke::new(style.line, color),
        );
        painter.text(
            Pos2::new(sx + 2.0, rect.bottom() - 2.0),
            egui::Align2::LEFT_BOTTOM,
            tick_label(x, step),
            font.clone(),
            label_color,
        );
    }
    for i in first(lo.y)..=last(hi.y) {
        let y = i as f64 * step;
        let sy = view.screen_from_data(Vec2::new(0.0, y)).y;
        let color = if i == 0 { style.axis } else { style.grid };
        painter.line_segment(
            [Pos2::new(rect.left(), sy), Pos2::new(rect.right(), sy)],
            Stroke::new(style.line, color),
        );
        painter.text(
            Pos2::new(rect.left() + 3.0, sy - 1.0),
            egui::Align2::LEFT_BOTTOM,
            tick_label(y, step),
            font.clone(),
            label_color,
        );
    }
    // Scale bar: one step long, bottom right, above the tick labels.
    let len = (step as f32) * view.pixels_per_unit;
    let right = rect.right() - 14.0;
    let y = rect.bottom() - 22.0;
    let bar = [Pos2::new(right - len, y), Pos2::new(right, y)];
    let white = style.text;
    painter.line_segment(bar, Stroke::new(2.5 * style.line, white));
    for p in bar {
        painter.line_segment(
            [p - egui::vec2(0.0, 4.0), p + egui::vec2(0.0, 4.0)],
            Stroke::new(1.5 * style.line, white),
        );
    }
    painter.text(
        Pos2::new(right - 0.5 * len, y - 5.0),
        egui::Align2::CENTER_BOTTOM,
        tick_label(step, step),
        egui::FontId::proportional(12.0),
        white,
    );
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

/// A colour map from dark to bright for heatmaps (0 → background, 1 → brightest).
pub fn heat_color(v: f64, palette: Palette) -> Color32 {
    match palette {
        Palette::Classic => ramp(
            &[
                (0.0, [18.0, 20.0, 28.0]),
                (0.35, [52.0, 30.0, 92.0]),
                (0.65, [128.0, 42.0, 96.0]),
                (0.85, [196.0, 86.0, 52.0]),
                (1.0, [232.0, 170.0, 60.0]),
            ],
            v,
        ),
        // Cividis (Nuñez, Anderton & Renslow 2018), sampled at five points.
        Palette::Cividis => ramp(
            &[
                (0.0, [0.0, 34.0, 78.0]),
                (0.25, [61.0, 77.0, 110.0]),
                (0.5, [124.0, 123.0, 120.0]),
                (0.75, [188.0, 175.0, 111.0]),
                (1.0, [255.0, 234.0, 70.0]),
            ],
            v,
        ),
    }
}

/// [`heat_color`] on the dark canvas; on the projector's light canvas a ramp from the
/// background (0) to dark (1), still monotone in brightness.
pub fn heat_color_on(v: f64, palette: Palette, light: bool) -> Color32 {
    if !light {
        return heat_color(v, palette);
    }
    match palette {
        Palette::Classic => ramp(
            &[
                (0.0, [252.0, 252.0, 250.0]),
                (0.4, [250.0, 210.0, 140.0]),
                (0.75, [230.0, 130.0, 100.0]),
                (1.0, [170.0, 70.0, 120.0]),
            ],
            v,
        ),
        // Cividis reversed from near white, stopping at its middle grey-blue so that the dots
        // drawn over the densest part stay visible.
        Palette::Cividis => ramp(
            &[
                (0.0, [252.0, 252.0, 240.0]),
                (0.3, [250.0, 232.0, 120.0]),
                (0.65, [188.0, 175.0, 111.0]),
                (1.0, [124.0, 123.0, 120.0]),
            ],
            v,
        ),
    }
}

/// [`arrow_color`] on the dark canvas; dark blue → red → near black on the light one.
pub fn arrow_color_on(v: f64, light: bool) -> Color32 {
    if !light {
        return arrow_color(v);
    }
    let stops: [(f64, [f32; 3]); 3] = [
        (0.0, [90.0, 90.0, 200.0]),
        (0.5, [200.0, 60.0, 20.0]),
        (1.0, [60.0, 10.0, 10.0]),
    ];
    ramp(&stops, v)
}

/// A diverging colour for v ∈ [−1, 1]: blue (−1) → grey (0) → red (+1) (ColorBrewer RdBu's
/// ends, distinct under the common colour-vision deficiencies).
pub fn diverging_color(v: f64, light: bool) -> Color32 {
    let mid = if light { 150.0 } else { 205.0 };
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    ramp(
        &[
            (0.0, [33.0, 102.0, 172.0]),
            (0.5, [mid, mid, mid]),
            (1.0, [178.0, 24.0, 43.0]),
        ],
        0.5 * (v + 1.0),
    )
}

/// A colour legend: a bar of colours with a title and labels under its ends and middle.
#[derive(Clone, Debug, PartialEq)]
pub struct Legend {
    /// What the colours mean.
    pub title: String,
    /// The bar's colours, left to right (a gradient's samples, or categorical swatches).
    pub colors: Vec<Color32>,
    /// Labels under the left end, the middle and the right end.
    pub labels: [String; 3],
}

impl Legend {
    /// A gradient legend sampling `f` on [0, 1].
    pub fn gradient(title: &str, f: impl Fn(f64) -> Color32, labels: [&str; 3]) -> Self {
        Self {
            title: title.into(),
            colors: (0..=40).map(|i| f(f64::from(i) / 40.0)).collect(),
            labels: labels.map(String::from),
        }
    }
}

/// Legends stacked upwards from the canvas's bottom left corner, above the tick labels.
fn draw_legends(painter: &egui::Painter, rect: Rect, legends: &[Legend], style: &CanvasStyle) {
    let (w, h) = (150.0 * style.dot.sqrt(), 10.0 * style.dot.sqrt());
    let font = egui::FontId::proportional(11.0 * style.dot.sqrt());
    let mut bottom = rect.bottom() - 22.0;
    for l in legends {
        let top = bottom - h - 30.0 * style.dot.sqrt();
        let left = rect.left() + 34.0;
        let frame = Rect::from_min_max(
            Pos2::new(left - 6.0, top - 2.0),
            Pos2::new(left + w + 6.0, bottom),
        );
        painter.rect_filled(frame, 4.0, style.background.gamma_multiply(0.85));
        painter.text(
            Pos2::new(left, top),
            egui::Align2::LEFT_TOP,
            &l.title,
            font.clone(),
            style.text,
        );
        let bar_top = top + 14.0 * style.dot.sqrt();
        let n = l.colors.len().max(1) as f32;
        for (i, c) in l.colors.iter().enumerate() {
            let x0 = left + w * i as f32 / n;
            let x1 = left + w * (i + 1) as f32 / n;
            painter.rect_filled(
                Rect::from_min_max(Pos2::new(x0, bar_top), Pos2::new(x1 + 0.5, bar_top + h)),
                0.0,
                *c,
            );
        }
        for (k, label) in l.labels.iter().enumerate() {
            let (x, align) = match k {
                0 => (left, egui::Align2::LEFT_TOP),
                1 => (left + 0.5 * w, egui::Align2::CENTER_TOP),
                _ => (left + w, egui::Align2::RIGHT_TOP),
            };
            painter.text(
                Pos2::new(x, bar_top + h + 1.0),
                align,
                label,
                font.clone(),
                style.text,
            );
        }
        bottom = top - 6.0;
    }
}

/// Arrow colour by relative magnitude (0 → violet, 1 → yellow).
pub fn arrow_color(v: f64) -> Color32 {
    let stops: [(f64, [f32; 3]); 3] = [
        (0.0, [170.0, 110.0, 230.0]),
        (0.5, [255.0, 150.0, 80.0]),
        (1.0, [255.0, 235.0, 120.0]),
    ];
    ramp(&stops, v)
}

fn ramp(stops: &[(f64, [f32; 3])], v: f64) -> Color32 {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    for w in stops.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if v <= t1 {
            let f = ((v - t0) / (t1 - t0)) as f32;
            let mix = |i: usize| (c0[i] + f * (c1[i] - c0[i])).round() as u8;
            return Color32::from_rgb(mix(0), mix(1), mix(2));
        }
    }
    let c = stops[stops.len() - 1].1;
    Color32::from_rgb(c[0] as u8, c[1] as u8, c[2] as u8)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Hit {
    Center(usize),
    Edge(usize),
    Inside(usize),
}

impl Hit {
    fn component(self) -> usize {
        match self {
            Hit::Center(k) | Hit::Edge(k) | Hit::Inside(k) => k,
        }
    }
}

fn hit_test(mixture: &GaussianMixture, view: ScreenFromData, pos: Pos2) -> Option<Hit> {
    let comps = mixture.components();
    let nearest = |f: &dyn Fn(usize) -> Pos2| {
        (0..comps.len())
            .map(|k| (k, f(k).distance(pos)))
            .filter(|(_, d)| *d < PICK)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    };
    if let Some(k) = nearest(&|k| view.screen_from_data(comps[k].mean)) {
        return Some(Hit::Center(k));
    }
    if let Some(k) = nearest(&|k| view.screen_from_data(edge_point(comps[k].mean, comps[k].cov))) {
        return Some(Hit::Edge(k));
    }
    let x = view.data_from_screen(pos);
    comps
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let d = x - g.mean;
            (k, d.dot(&(g.precision * d)))
        })
        .filter(|(_, m2)| *m2 <= 4.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| Hit::Inside(k))
}

fn cov_array(m: &crate::sim::Mat2) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

/// The edge handle: 1σ along the major axis.
fn edge_point(mean: Vec2, cov: crate::sim::Mat2) -> Vec2 {
    let (s1, v, _) = principal_axes(cov_array(&cov));
    mean + s1 * v
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

fn handle_input(
    ui: &egui::Ui,
    response: &egui::Response,
    state: &mut CanvasState,
    mixture: &GaussianMixture,
    spec: &MixtureSpec,
    view: ScreenFromData,
    out: &mut CanvasOutput,
) {
    let n = spec.components.len().min(mixture.len());
    if state.selected.is_some_and(|k| k >= n) {
        state.selected = None;
    }
    let press = ui.input(|i| i.pointer.press_origin());
    if response.drag_started() {
        let at = press.or(response.interact_pointer_pos());
        state.dragging = if state.paint {
            state.last_paint = None;
            Some(Drag::Paint)
        } else {
            match at.and_then(|p| hit_test(mixture, view, p)) {
                Some(Hit::Center(k)) => Some(Drag::Move(k)),
                Some(Hit::Edge(k)) => Some(Drag::Axis(k)),
                _ => Some(Drag::Pan),
            }
        };
        if let Some(Drag::Move(k) | Drag::Axis(k)) = state.dragging {
            state.selected = Some(k);
        }
    }
    // Two fingers on the canvas pinch-zoom it (below); they never drag a component or pan.
    let pinch = ui.input(|i| i.multi_touch());
    if pinch.is_some() {
        state.dragging = None;
    }
    let first = response.drag_started();
    if response.dragged() {
        let d = response.drag_delta();
        let pointer = response.interact_pointer_pos();
        match state.dragging {
            Some(Drag::Move(k)) if k < n && d != egui::Vec2::ZERO => {
                let mut s = spec.clone();
                s.components[k].mean[0] += f64::from(d.x / view.pixels_per_unit);
                s.components[k].mean[1] -= f64::from(d.y / view.pixels_per_unit);
                out.edit = Some((s, first));
            }
            Some(Drag::Axis(k)) if k < n && d != egui::Vec2::ZERO => {
                if let Some(p) = pointer {
                    let g = &mixture.components()[k];
                    let axis = view.data_from_screen(p) - g.mean;
                    let (_, _, minor) = principal_axes(cov_array(&g.cov));
                    if axis.norm() > 1e-3 {
                        let mut s = spec.clone();
                        s.components[k].cov = cov_from_axis(axis, minor);
                        out.edit = Some((s, first));
                    }
                }
            }
            Some(Drag::Pan) if d != egui::Vec2::ZERO => {
                if let Some((lo, hi)) = state.view_box.as_mut() {
                    let shift = Vec2::new(
                        -f64::from(d.x / view.pixels_per_unit),
                        f64::from(d.y / view.pixels_per_unit),
                    );
                    *lo += shift;
                    *hi += shift;
                }
            }
            Some(Drag::Paint) => {
                if let Some(p) = pointer.map(|p| view.data_from_screen(p)) {
                    let spacing = f64::from(BRUSH_SPACING / view.pixels_per_unit);
                    let far = state.last_paint.is_none_or(|q| (p - q).norm() >= spacing);
                    if far {
                        let mut s = if state.paint_fresh {
                            MixtureSpec {
                                components: Vec::new(),
                            }
                        } else {
                            spec.clone()
                        };
                        if s.components.len() >= MAX_COMPONENTS {
                            out.message = Some(format!(
                                "A mixture has at most {MAX_COMPONENTS} components; the brush stopped."
                            ));
                        } else {
                            let sd = 0.6 * spacing;
                            s.components.push(ComponentSpec {
                                weight: 1.0,
                                mean: [p.x, p.y],
                                cov: [[sd * sd, 0.0], [0.0, sd * sd]],
                            });
                            out.edit = Some((s, state.paint_fresh || state.last_paint.is_none()));
                            state.paint_fresh = false;
                            state.last_paint = Some(p);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if response.drag_stopped() {
        state.dragging = None;
    }
    let hover = response.hover_pos();
    let hit = hover.and_then(|p| hit_test(mixture, view, p));
    if response.clicked() {
        state.selected = hit.map(Hit::component);
        out.click = hover.map(|p| view.data_from_screen(p));
    }
    if response.double_clicked() && hit.is_none() && !state.paint {
        if let Some(p) = hover.map(|p| view.data_from_screen(p)) {
            if n >= MAX_COMPONENTS {
                out.message = Some(format!(
                    "A mixture has at most {MAX_COMPONENTS} components."
                ));
            } else {
                let mut s = spec.clone();
                let w = s.components.iter().map(|c| c.weight).sum::<f64>() / n.max(1) as f64;
                s.components.push(ComponentSpec {
                    weight: w,
                    mean: [p.x, p.y],
                    cov: [[0.5, 0.0], [0.0, 0.5]],
                });
                state.selected = Some(n);
                out.edit = Some((s, true));
            }
        }
    }
    if response.long_touched() {
        // Touch: a long press opens the component's actions instead of removing it at once
        // (a finger resting before a drag must not delete anything); it stops the drag.
        let at = press.or(hover);
        if let Some((k, p)) = at.and_then(|p| Some((hit_test(mixture, view, p)?.component(), p))) {
            state.touch_menu = Some((k, p));
            state.selected = Some(k);
            state.dragging = None;
        }
    } else if response.secondary_clicked() {
        if let Some(k) = hit.map(Hit::component) {
            remove(spec, k, state, out);
        }
    }
    touch_menu_ui(ui, state, spec, n, out);
    if let Some(mt) = pinch.filter(|mt| response.rect.contains(mt.center_pos)) {
        zoom_about(state, view, mt.center_pos, mt.zoom_delta);
    } else if response.hovered() {
        let (scroll, zoom, time) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta(), i.time));
        match hit {
            Some(h) if scroll != 0.0 && zoom == 1.0 => {
                let k = h.component();
                let mut s = spec.clone();
                let w = &mut s.components[k].weight;
                *w = (*w * f64::from(scroll * 0.004).exp()).clamp(1e-3, 1e3);
                let new_gesture = state.last_scroll.is_none_or(|t| time - t > 0.6);
                state.last_scroll = Some(time);
                state.selected = Some(k);
                out.edit = Some((s, new_gesture));
            }
            _ => {
                let factor = if zoom != 1.0 {
                    zoom
                } else {
                    (scroll * 0.002).exp()
                };
                if let Some(p) = hover {
                    zoom_about(state, view, p, factor);
                }
            }
        }
    }
}

/// Remove component `k` (an undo point), or say why not.
fn remove(spec: &MixtureSpec, k: usize, state: &mut CanvasState, out: &mut CanvasOutput) {
    match remove_component(spec, k) {
        Ok(s) => {
            state.selected = None;
            out.edit = Some((s, true));
        }
        Err(m) => out.message = Some(m),
    }
}

/// The touch menu of a long-pressed component: Remove or Cancel, beside the finger.
fn touch_menu_ui(
    ui: &egui::Ui,
    state: &mut CanvasState,
    spec: &MixtureSpec,
    n: usize,
    out: &mut CanvasOutput,
) {
    state.touch_menu_remove = None;
    let Some((k, at)) = state.touch_menu.filter(|(k, _)| *k < n) else {
        state.touch_menu = None;
        return;
    };
    let mut close = false;
    egui::Area::new(egui::Id::unique("touch_menu"))
        .order(egui::Order::Foreground)
        .fixed_pos(at + egui::vec2(16.0, 16.0))
        .show(ui.ctx(), |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.label(format!("Component {}", k + 1));
                let size = egui::vec2(110.0, 34.0);
                let r = ui.add(egui::Button::new("Remove").min_size(size));
                state.touch_menu_remove = Some((k, r.rect.center()));
                if r.clicked() {
                    remove(spec, k, state, out);
                    close = true;
                }
                if ui.add(egui::Button::new("Cancel").min_size(size)).clicked() {
                    close = true;
                }
            });
        });
    if close {
        state.touch_menu = None;
        state.touch_menu_remove = None;
    }
}

/// Zoom the view by `factor` (> 1: in) keeping the data point under `p` in place.
fn zoom_about(state: &mut CanvasState, view: ScreenFromData, p: Pos2, factor: f32) {
    if factor == 1.0 || !factor.is_finite() {
        return;
    }
    if let Some((lo, hi)) = state.view_box.as_mut() {
        let at = view.data_from_screen(p);
        let f = 1.0 / f64::from(factor.clamp(0.2, 5.0));
        let span = (*hi - *lo) * f;
        if span.x > 0.05 && span.x < 2e3 && span.y > 0.05 && span.y < 2e3 {
            *lo = at + (*lo - at) * f;
            *hi = at + (*hi - at) * f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_ramps_are_monotone_in_brightness() {
        let lum = |c: Color32| u32::from(c.r()) + u32::from(c.g()) + u32::from(c.b());
        for p in [Palette::Classic, Palette::Cividis] {
            let mut last = 0;
            for i in 0..=20 {
                let l = lum(heat_color(f64::from(i) / 20.0, p));
                assert!(l >= last);
                last = l;
            }
            assert_eq!(heat_color(f64::NAN, p), heat_color(0.0, p));
            // The projector's light ramps go the other way: from the background to dark.
            let mut last = u32::MAX;
            for i in 0..=20 {
                let l = lum(heat_color_on(f64::from(i) / 20.0, p, true));
                assert!(l <= last, "{p:?} at {i}");
                last = l;
            }
            assert_eq!(
                heat_color_on(0.0, p, true),
                heat_color_on(f64::NAN, p, true)
            );
            assert_eq!(heat_color_on(0.3, p, false), heat_color(0.3, p));
        }
    }

    /// The difference map's diverging colours: blue for negative, red for positive, a grey
    /// in the middle, and the sign flips red and blue.
    #[test]
    fn diverging_colours_are_symmetric() {
        for light in [false, true] {
            let (neg, mid, pos) = (
                diverging_color(-1.0, light),
                diverging_color(0.0, light),
                diverging_color(1.0, light),
            );
            assert!(neg.b() > neg.r() && pos.r() > pos.b());
            assert!(mid.r() == mid.g() && mid.g() == mid.b());
            let (a, b) = (diverging_color(-0.4, light), diverging_color(0.4, light));
            assert!(a.b() > a.r() && b.r() > b.b());
            assert_eq!(diverging_color(5.0, light), pos);
            assert_eq!(diverging_color(f64::NAN, light), mid);
        }
    }
}

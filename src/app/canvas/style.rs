//! The canvas's look: colours and ramps, the dark and projector styles, axes and ticks, legends.

use crate::sim::Vec2;
use crate::state::Palette;
use eframe::egui::{self, Color32, Pos2, Rect, Stroke};

use super::*;

/// Colour of the data samples.
pub const SAMPLE_COLOR: Color32 = Color32::from_rgb(90, 170, 255);
/// Colour of the live particles.
pub const PARTICLE_COLOR: Color32 = Color32::from_rgb(110, 240, 130);
pub(super) const ELLIPSE_COLOR: Color32 = Color32::from_rgb(240, 240, 240);
pub(super) const SELECTED_COLOR: Color32 = Color32::from_rgb(255, 220, 90);
pub(super) const HANDLE_COLOR: Color32 = Color32::from_rgb(255, 80, 120);
pub(super) const BACKGROUND: Color32 = Color32::from_rgb(18, 20, 28);

/// Axis lines, grid and tick labels.
pub(super) const AXIS_COLOR: Color32 = Color32::from_rgba_premultiplied(150, 150, 165, 150);
/// Grid lines between ticks.
pub(super) const GRID_COLOR: Color32 = Color32::from_rgba_premultiplied(40, 40, 48, 40);
/// The noise circle at the cursor.
pub(crate) const NOISE_CIRCLE: Color32 = Color32::from_rgb(255, 255, 255);

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
    pub(crate) fn ink(&self, c: Color32) -> Color32 {
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
pub(super) fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// Grid lines at a nice step, the axes x = 0 and y = 0 where visible, tick labels along the
/// bottom and left edges, and a scale bar in the bottom-right corner.
pub(crate) fn draw_axes(
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
pub(crate) fn draw_legends(
    painter: &egui::Painter,
    rect: Rect,
    legends: &[Legend],
    style: &CanvasStyle,
) {
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

pub(super) fn ramp(stops: &[(f64, [f32; 3])], v: f64) -> Color32 {
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

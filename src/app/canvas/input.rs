//! Editing on the canvas: hit tests on the handles, the mouse and touch gestures (move,
//! stretch, weight, add, remove, paint, pan, zoom) and the touch menu.

use crate::sim::ellipse::{cov_from_axis, principal_axes, remove_component};
use crate::sim::mixture::{ComponentSpec, GaussianMixture, MixtureSpec, MAX_COMPONENTS};
use crate::sim::Vec2;
use eframe::egui::{self, Pos2};

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Hit {
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

pub(super) fn hit_test(mixture: &GaussianMixture, view: ScreenFromData, pos: Pos2) -> Option<Hit> {
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

pub(super) fn cov_array(m: &crate::sim::Mat2) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

/// The edge handle: 1σ along the major axis.
pub(super) fn edge_point(mean: Vec2, cov: crate::sim::Mat2) -> Vec2 {
    let (s1, v, _) = principal_axes(cov_array(&cov));
    mean + s1 * v
}

pub(super) fn handle_input(
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
        drag(response, state, mixture, spec, view, n, first, out);
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
        scroll(ui, state, spec, view, hover, hit, out);
    }
}

/// A drag this frame: move a centre, turn an edge handle, pan, or paint.
#[allow(clippy::too_many_arguments)]
fn drag(
    response: &egui::Response,
    state: &mut CanvasState,
    mixture: &GaussianMixture,
    spec: &MixtureSpec,
    view: ScreenFromData,
    n: usize,
    first: bool,
    out: &mut CanvasOutput,
) {
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
                brush(state, spec, view, p, out);
            }
        }
        _ => {}
    }
}

/// Paint mode: drop a small Gaussian at `p` once the brush is a spacing away from the last.
fn brush(
    state: &mut CanvasState,
    spec: &MixtureSpec,
    view: ScreenFromData,
    p: Vec2,
    out: &mut CanvasOutput,
) {
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

/// Scrolling over a component changes its weight; elsewhere scrolling (or a pinch) zooms.
fn scroll(
    ui: &egui::Ui,
    state: &mut CanvasState,
    spec: &MixtureSpec,
    view: ScreenFromData,
    hover: Option<egui::Pos2>,
    hit: Option<Hit>,
    out: &mut CanvasOutput,
) {
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

/// Remove component `k` (an undo point), or say why not.
pub(super) fn remove(
    spec: &MixtureSpec,
    k: usize,
    state: &mut CanvasState,
    out: &mut CanvasOutput,
) {
    match remove_component(spec, k) {
        Ok(s) => {
            state.selected = None;
            out.edit = Some((s, true));
        }
        Err(m) => out.message = Some(m),
    }
}

/// The touch menu of a long-pressed component: Remove or Cancel, beside the finger.
pub(super) fn touch_menu_ui(
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
pub(super) fn zoom_about(state: &mut CanvasState, view: ScreenFromData, p: Pos2, factor: f32) {
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

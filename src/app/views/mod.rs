//! The canvas's views: each layer of the picture is one [`View`] in one file — it owns its
//! cache, says what it needs from the engine, paints itself onto the plot, adds its legend,
//! shows its toggle in the Layers panel and answers its JS requests — and [`Views::list`] is
//! the one list that registers them. The canvas (`app::canvas`) paints the list in order and
//! keeps only the mixture's editor (ellipses, handles, drags); the host (`app::host`) keeps
//! only the engine's lifecycle, its outputs and the probe.
//!
//! A new view: a file here with a type that implements [`View`], a field and an entry in
//! [`Views`], and its flag in `state::Layers` (so links and `setConfig` carry it).

pub mod arrows;
pub mod axes;
pub mod density;
pub mod flow;
pub mod overlays;
pub mod particles;
pub mod responsibilities;
pub mod samples;
pub mod sweep;

use eframe::egui;

use crate::app::canvas::{Legend, Plot};
use crate::app::host::{Host, Pending};
use crate::app::particles::ParticleSource;
use crate::app::Data;
use crate::engine::FrameRequest;
use crate::sim::sde::Sde;
use crate::sim::Vec2;
use crate::state::State;

/// What every view reads in a frame.
pub struct Frame<'a> {
    /// The state as the user set it.
    pub state: &'a State,
    /// The mixture, its samples and its revision.
    pub data: &'a Data,
    /// The engine's outputs (the field, the learned density, the runs).
    pub host: &'a Host,
    /// The SDE every picture uses.
    pub sde: Sde,
    /// The main thread's time a view may spend computing this frame (`PerfWindow::cpu_budget`:
    /// more where frames are slow for reasons outside it).
    pub budget: web_time::Duration,
}

/// One canvas of the (possibly split) view.
pub struct Side {
    /// 0, or 1 for the right canvas of a split view.
    pub index: usize,
    /// The true log-density heatmap shows here.
    pub true_density: bool,
    /// The learned log-density heatmap shows here.
    pub learned_density: bool,
    /// The live particles drawn here (prepared by the host).
    pub particles: Option<ParticleSource>,
    /// A title in the corner (split view).
    pub title: Option<String>,
}

/// One layer of the canvas. Every method has a default that does nothing.
pub trait View {
    /// A short name (tests, docs).
    fn name(&self) -> &'static str;
    /// Its toggles in the Layers panel.
    fn controls(&self, _ui: &mut egui::Ui, _st: &mut State) {}
    /// Where its toggles sit in the Layers panel (smaller first; the panel reads top-down
    /// from what is drawn on top, the list paints bottom-up).
    fn panel_order(&self) -> u8 {
        u8::MAX
    }
    /// Ask the engine for this frame's work.
    fn request(&self, _f: &Frame, _view: (Vec2, Vec2), _req: &mut FrameRequest) {}
    /// Refresh the cache for the visible box (after the engine's frame).
    fn update(&mut self, _ctx: &egui::Context, _f: &Frame, _view: (Vec2, Vec2)) {}
    /// Paint onto the plot of canvas `side`.
    fn paint(&self, _f: &Frame, _side: &Side, _p: &Plot) {}
    /// Its legends on `side` (`warnings` are shown with the legends off too).
    fn legends(
        &self,
        _f: &Frame,
        _side: &Side,
        _legends: &mut Vec<Legend>,
        _warnings: &mut Vec<Legend>,
    ) {
    }
    /// Answer the JS requests waiting for what this view shows.
    fn answer(&mut self, _f: &Frame, _pending: &mut Pending) {}
    /// What it shows, for `state().views.<name>` (none: not in the snapshot).
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }
}

/// Every view, in the order they paint (bottom first).
#[derive(Default)]
pub struct Views {
    /// True and learned log-density heatmaps.
    pub density: density::Density,
    /// The responsibilities p(k | x_t) as component colours.
    pub responsibilities: responsibilities::Responsibilities,
    /// Axes, scale bar, the split view's titles and the noise circle at the cursor.
    pub axes: axes::Axes,
    /// Score arrows (learned, exact, difference) and the denoiser's arrows.
    pub arrows: arrows::Arrows,
    /// Samples of the data distribution.
    pub samples: samples::Samples,
    /// The live particles and their trails.
    pub particles: particles::Particles,
    /// PF-ODE paths, the probe, conditional paths and inpainting.
    pub overlays: overlays::Overlays,
    /// The steps sweep's chart.
    pub sweep: sweep::Sweep,
    /// Flow matching: the learned and exact velocity, straight and curved paths, reflow.
    pub flow: flow::Flow,
}

impl Views {
    /// The one registry: every view, in painting order.
    pub fn list(&self) -> [&dyn View; 9] {
        [
            &self.density,
            &self.responsibilities,
            &self.axes,
            &self.arrows,
            &self.flow,
            &self.samples,
            &self.particles,
            &self.overlays,
            &self.sweep,
        ]
    }

    /// The same list, to update.
    pub fn list_mut(&mut self) -> [&mut dyn View; 9] {
        [
            &mut self.density,
            &mut self.responsibilities,
            &mut self.axes,
            &mut self.arrows,
            &mut self.flow,
            &mut self.samples,
            &mut self.particles,
            &mut self.overlays,
            &mut self.sweep,
        ]
    }

    /// Every view's snapshot, by name (`state().views`).
    pub fn snapshot(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for v in self.list() {
            if let Some(s) = v.snapshot() {
                m.insert(v.name().to_string(), s);
            }
        }
        serde_json::Value::Object(m)
    }

    /// Every view's toggles, in panel order.
    pub fn controls(&self, ui: &mut egui::Ui, st: &mut State) {
        let mut list = self.list();
        list.sort_by_key(|v| v.panel_order());
        for v in list {
            v.controls(ui, st);
        }
    }

    /// Paint every view onto canvas `side`, then the legends.
    pub fn paint(&self, f: &Frame, side: &Side, p: &Plot) {
        let mut legends = Vec::new();
        let mut warnings = Vec::new();
        for v in self.list() {
            v.paint(f, side, p);
            v.legends(f, side, &mut legends, &mut warnings);
        }
        if !f.state.legends {
            legends.clear();
        }
        legends.extend(warnings);
        crate::app::canvas::draw_legends(p.painter, p.rect, &legends, &p.style);
    }
}

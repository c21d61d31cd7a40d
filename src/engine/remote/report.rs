//! What the CPU engine's worker reports to the page after a tick ([`Report`]), and how the
//! page adds up reports that arrived since its last frame ([`merge`]).

use super::super::{
    FieldCell, FieldRequest, FrameOutput, FrameTiming, SamplerStatus, SamplesOut, SLOTS,
};
use crate::sim::model::ModelFile;

/// What the worker reports after a tick: the [`FrameOutput`]s since the last report,
/// merged, plus the particles.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub(super) timing: FrameTiming,
    pub(super) steps: Option<u64>,
    pub(super) losses: Vec<(u64, f64)>,
    pub(super) fisher: Option<(u64, f64)>,
    pub(super) field: Option<(FieldRequest, Vec<FieldCell>)>,
    pub(super) warning: Option<String>,
    pub(super) sampler: [Option<SamplerStatus>; SLOTS],
    pub(super) samples: Vec<SamplesOut>,
    pub(super) model: Option<ModelFile>,
    pub(super) density: Option<(FieldRequest, Vec<f64>)>,
    /// Flow matching's latest network.
    pub(super) flow: Option<crate::engine::flow::FlowReportMsg>,
    /// Each slot's particles as (x, y, x_mean, y_mean).
    pub(super) particles: [Vec<[f32; 4]>; SLOTS],
    /// The engine could not start or stopped (the page falls back).
    pub(super) fatal: Option<String>,
    /// Pieces of training steps computed since the last report ([`crate::engine::shards`]).
    pub(super) pieces: u64,
}

/// Add `b` (later) to `a`: lists append, latest values win.
pub fn merge(a: &mut FrameOutput, b: FrameOutput) {
    a.timing.train_ms += b.timing.train_ms;
    a.timing.sample_ms += b.timing.sample_ms;
    a.timing.field_ms += b.timing.field_ms;
    a.steps = b.steps.or(a.steps);
    a.losses.extend(b.losses);
    a.fisher = b.fisher.or(a.fisher);
    if b.field.is_some() {
        a.field = b.field;
    }
    a.warning = match (a.warning.take(), b.warning) {
        (Some(x), Some(y)) if x != y => Some(format!("{x}; {y}")),
        (x, y) => y.or(x),
    };
    for (s, n) in a.sampler.iter_mut().zip(b.sampler) {
        if n.is_some() {
            *s = n;
        }
    }
    a.samples.extend(b.samples);
    if b.model.is_some() {
        a.model = b.model;
    }
    if b.density.is_some() {
        a.density = b.density;
    }
    if b.flow.is_some() {
        a.flow = b.flow;
    }
}

//! The frame budget (issue 6): a rolling window of per-frame measurements, summarised in
//! `scorelab.state().perf` and read by `cargo xtask bench --browser`.
//!
//! Per frame: the interval since the previous frame (what the user sees), the CPU time of
//! the app's `ui` (everything we do in a frame, before eframe tessellates and paints), the
//! engine's split into training / sampling / fields, and the GPU work handed over
//! (dispatches, submits, bytes each way; GPU engine only). "egui" is the part of `ui`'s time
//! outside the engine: layout, widgets, canvas shapes, lessons.

use std::collections::VecDeque;

use serde::Serialize;
use web_time::Duration;

use crate::engine::FrameTiming;
use crate::gpu::context::GpuCounts;

/// Frames kept in the window.
pub const WINDOW: usize = 240;
/// Frames [`PerfWindow::cpu_budget`] looks back over.
pub const BUDGET_FRAMES: usize = 30;
/// The CPU engine's training time per frame when the main thread has no idle time, ms.
pub const BASE_BUDGET_MS: f64 = 8.0;
const _: () = assert!(crate::engine::BASE_BUDGET.as_millis() == BASE_BUDGET_MS as u128);
/// The most training time per frame, ms (bounds the input latency it adds), unless frames
/// are slower than 400 ms: then a tenth of the interval, up to [`SLOW_FRAME_MAX_BUDGET_MS`].
pub const MAX_BUDGET_MS: f64 = 40.0;
/// The most training time per frame when frames are very slow, ms.
pub const SLOW_FRAME_MAX_BUDGET_MS: f64 = 200.0;

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    interval_ms: Option<f64>,
    ui_ms: f64,
    engine_ms: f64,
    timing: FrameTiming,
    counts: Option<GpuCounts>,
}

/// The rolling window.
#[derive(Debug, Default)]
pub struct PerfWindow {
    frames: VecDeque<Sample>,
    current: Sample,
    last_counts: Option<GpuCounts>,
}

/// What `state().perf` shows: medians/p95 of the frame interval, means of the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PerfSummary {
    /// Frames in the window.
    pub frames: usize,
    /// Median interval between frames, ms.
    pub frame_ms_median: f64,
    /// 95th percentile of the interval, ms.
    pub frame_ms_p95: f64,
    /// Mean CPU time of the app's `ui` per frame, ms.
    pub ui_ms: f64,
    /// Mean time in the engine per frame, ms (= train + sample + field).
    pub engine_ms: f64,
    /// Mean training time, ms.
    pub train_ms: f64,
    /// Mean sampling time, ms.
    pub sample_ms: f64,
    /// Mean field/density/metric time, ms.
    pub field_ms: f64,
    /// Mean egui (UI outside the engine) time, ms.
    pub egui_ms: f64,
    /// Mean compute dispatches per frame (GPU engine).
    pub dispatches: Option<f64>,
    /// Mean queue submits per frame (GPU engine).
    pub submits: Option<f64>,
    /// Mean bytes written to the GPU per frame (GPU engine).
    pub bytes_up: Option<f64>,
    /// Mean bytes read back per frame (GPU engine).
    pub bytes_down: Option<f64>,
}

/// The q-quantile (nearest rank) of `v`.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

impl PerfWindow {
    /// Start a frame: `interval_ms` since the previous one (None for the first).
    pub fn begin(&mut self, interval_ms: Option<f64>) {
        self.current = Sample {
            interval_ms,
            ..Sample::default()
        };
    }

    /// The engine's part of this frame and its running GPU totals.
    pub fn engine(&mut self, engine_ms: f64, timing: FrameTiming, counts: Option<GpuCounts>) {
        self.current.engine_ms += engine_ms;
        self.current.timing.train_ms += timing.train_ms;
        self.current.timing.sample_ms += timing.sample_ms;
        self.current.timing.field_ms += timing.field_ms;
        if let Some(c) = counts {
            let delta = self.last_counts.map(|l| c - l);
            self.last_counts = Some(c);
            self.current.counts = delta;
        }
    }

    /// End the frame with the total CPU time of `ui`.
    pub fn end(&mut self, ui_ms: f64) {
        self.current.ui_ms = ui_ms;
        if self.frames.len() == WINDOW {
            self.frames.pop_front();
        }
        self.frames.push_back(self.current);
    }

    /// The CPU engine's training time this frame: the [`BASE_BUDGET_MS`] it always has, plus
    /// half of the time the main thread sat idle between recent frames (median interval minus
    /// the app's mean time per frame, over the last [`BUDGET_FRAMES`]), at most
    /// [`MAX_BUDGET_MS`] (more for frames slower than 400 ms). Where frames are slow for reasons outside the main thread (a
    /// software rasteriser in the browser's GPU process: 3–10 fps on SwiftShader) training
    /// uses the idle time instead of 2% of it; where the main thread is the bottleneck there
    /// is no idle time and the budget stays at the base. Self-limiting: a larger budget
    /// raises the app's time, which lowers the idle time it is computed from.
    pub fn cpu_budget(&self) -> Duration {
        let recent: Vec<&Sample> = self.frames.iter().rev().take(BUDGET_FRAMES).collect();
        let mut intervals: Vec<f64> = recent.iter().filter_map(|s| s.interval_ms).collect();
        if intervals.len() < 5 {
            return Duration::from_secs_f64(BASE_BUDGET_MS / 1e3);
        }
        let ui = recent.iter().map(|s| s.ui_ms).sum::<f64>() / recent.len() as f64;
        let interval = quantile(&mut intervals, 0.5);
        let idle = (interval - ui).max(0.0);
        // Frames already slower than 400 ms (20000 particles at width 128 on SwiftShader:
        // 1.4 s) may spend a tenth of their interval, so that sampler steps sliced by
        // particles still progress about a step per frame.
        let cap = (0.1 * interval).clamp(MAX_BUDGET_MS, SLOW_FRAME_MAX_BUDGET_MS);
        Duration::from_secs_f64((BASE_BUDGET_MS + 0.5 * idle).min(cap) / 1e3)
    }

    /// Forget everything (e.g. after the engine is rebuilt).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Summarise the window.
    pub fn summary(&self) -> PerfSummary {
        let n = self.frames.len();
        if n == 0 {
            return PerfSummary::default();
        }
        let mean = |f: &dyn Fn(&Sample) -> f64| self.frames.iter().map(f).sum::<f64>() / n as f64;
        let mut intervals: Vec<f64> = self.frames.iter().filter_map(|s| s.interval_ms).collect();
        let counted: Vec<GpuCounts> = self.frames.iter().filter_map(|s| s.counts).collect();
        let count_mean = |f: &dyn Fn(&GpuCounts) -> u64| {
            (!counted.is_empty())
                .then(|| counted.iter().map(|c| f(c) as f64).sum::<f64>() / counted.len() as f64)
        };
        PerfSummary {
            frames: n,
            frame_ms_median: quantile(&mut intervals, 0.5),
            frame_ms_p95: quantile(&mut intervals, 0.95),
            ui_ms: mean(&|s| s.ui_ms),
            engine_ms: mean(&|s| s.engine_ms),
            train_ms: mean(&|s| s.timing.train_ms),
            sample_ms: mean(&|s| s.timing.sample_ms),
            field_ms: mean(&|s| s.timing.field_ms),
            egui_ms: mean(&|s| (s.ui_ms - s.engine_ms).max(0.0)),
            dispatches: count_mean(&|c| c.dispatches),
            submits: count_mean(&|c| c.submits),
            bytes_up: count_mean(&|c| c.bytes_up),
            bytes_down: count_mean(&|c| c.bytes_down),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.95), 95.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
        assert_eq!(quantile(&mut [7.0], 0.95), 7.0);
    }

    #[test]
    fn window_summarises_per_frame_deltas_and_forgets_old_frames() {
        let mut w = PerfWindow::default();
        let mut total = GpuCounts::default();
        for i in 0..(WINDOW + 10) {
            w.begin((i > 0).then_some(if i % 10 == 0 { 40.0 } else { 10.0 }));
            total.dispatches += 7;
            total.submits += 2;
            total.bytes_down += 100;
            let t = FrameTiming {
                train_ms: 1.0,
                sample_ms: 2.0,
                field_ms: 0.5,
            };
            w.engine(3.5, t, Some(total));
            w.end(5.0);
        }
        let s = w.summary();
        assert_eq!(s.frames, WINDOW);
        assert_eq!(s.frame_ms_median, 10.0);
        assert_eq!(s.frame_ms_p95, 40.0); // 1 frame in 10 is slow: the p95 sees it
        assert!((s.egui_ms - 1.5).abs() < 1e-12);
        assert!((s.train_ms - 1.0).abs() < 1e-12 && (s.sample_ms - 2.0).abs() < 1e-12);
        // Running totals become per-frame differences (the first frame has no previous total).
        assert_eq!(s.dispatches, Some(7.0));
        assert_eq!(s.submits, Some(2.0));
        assert_eq!(s.bytes_down, Some(100.0));
        assert_eq!(s.bytes_up, Some(0.0));
        w.clear();
        assert_eq!(w.summary(), PerfSummary::default());
    }

    #[test]
    fn cpu_budget_takes_half_the_idle_time_within_bounds() {
        let run = |interval: f64, ui: f64, frames: usize| {
            let mut w = PerfWindow::default();
            for i in 0..frames {
                w.begin((i > 0).then_some(interval));
                w.end(ui);
            }
            w.cpu_budget().as_secs_f64() * 1e3
        };
        // Too few frames to judge: the base.
        assert_eq!(run(400.0, 20.0, 3), BASE_BUDGET_MS);
        // A slow rasteriser elsewhere: capped.
        assert_eq!(run(400.0, 20.0, 60), MAX_BUDGET_MS);
        // Very slow frames: a tenth of the interval, within the slow-frame cap.
        assert!((run(1400.0, 70.0, 60) - 140.0).abs() < 1e-9);
        assert_eq!(run(5000.0, 70.0, 60), SLOW_FRAME_MAX_BUDGET_MS);
        // 60 Hz with 12.7 ms of app time: 4 ms idle, 2 ms more.
        assert!((run(16.7, 12.7, 60) - (BASE_BUDGET_MS + 2.0)).abs() < 1e-9);
        // The main thread is the bottleneck: the base.
        assert_eq!(run(30.0, 31.0, 60), BASE_BUDGET_MS);
    }

    #[test]
    fn cpu_engine_has_no_gpu_counts() {
        let mut w = PerfWindow::default();
        w.begin(None);
        w.engine(2.0, FrameTiming::default(), None);
        w.end(3.0);
        let s = w.summary();
        assert_eq!(s.dispatches, None);
        assert_eq!(s.frame_ms_median, 0.0);
    }
}

//! The measured engine choice (issue 17): where both engines can run (a WebGPU or native
//! adapter with compute), the app runs the CPU engine and the GPU engine side by side for
//! [`PROBE_WINDOW`] of reports from each after each (re)build, during the first frames and
//! without blocking them,
//! and keeps the one that trained faster. [`RateMeter`] turns each engine's frame outputs into
//! training steps/s and score evaluations/s; [`decide`] picks and says why. `?engine=` and the
//! panel's choice skip the probe.

use web_time::{Duration, Instant};

use super::{EngineChoice, FrameOutput, SLOTS};

/// How long both engines are measured once both have reported (start-up latencies, a
/// worker's wasm compile or a pipeline compile, are not part of the rates).
pub const PROBE_WINDOW: Duration = Duration::from_millis(1500);
/// Once both engines report, the probe ends this long after the later one's first report
/// even if an engine's reports span less than a window (its rate is what it showed).
pub const PROBE_MAX: Duration = Duration::from_secs(6);
/// The probe gives up this long after the start if an engine never reports (its rate is 0).
/// Long: a GPU engine's pipeline compiles can hold the page's frames for many seconds.
pub const PROBE_GIVE_UP: Duration = Duration::from_secs(40);

/// Training and sampling throughput of one engine from its first report on.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    /// First and latest reported (time, training steps).
    first: Option<(Instant, u64)>,
    last: Option<(Instant, u64)>,
    /// Per slot: (run, score evaluations counted in this run) of the latest status.
    runs: [Option<(u32, f64)>; SLOTS],
    /// Score evaluations (NFE × particles) counted after the first report, and when.
    evals: f64,
    evals_at: Option<Instant>,
}

impl RateMeter {
    /// A meter with nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// When the engine first reported its training steps.
    pub fn first_report(&self) -> Option<Instant> {
        self.first.map(|(t, _)| t)
    }

    /// Time between the engine's first and latest reports.
    pub fn span(&self) -> Duration {
        match (self.first, self.last) {
            (Some((t0, _)), Some((t1, _))) => t1.saturating_duration_since(t0),
            _ => Duration::ZERO,
        }
    }

    /// Count what a frame of the engine reported at `now`.
    pub fn observe(&mut self, now: Instant, out: &FrameOutput) {
        if let Some(s) = out.steps {
            self.first.get_or_insert((now, s));
            self.last = Some((now, s));
        }
        for (slot, status) in self.runs.iter_mut().zip(&out.sampler) {
            let Some(st) = status else { continue };
            let evals = st.nfe as f64 * st.n as f64;
            let before = match *slot {
                Some((run, e)) if run == st.run => Some(e),
                Some(_) => Some(0.0),
                None => None,
            };
            // The first status only sets the baseline.
            if let Some(b) = before {
                if evals > b && self.first.is_some() {
                    self.evals += evals - b;
                    self.evals_at = Some(now);
                }
            }
            *slot = Some((st.run, evals));
        }
    }

    /// Training steps per second between the first and the latest report (0 with fewer
    /// than two reports).
    pub fn steps_per_s(&self) -> f64 {
        match (self.first, self.last) {
            (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => {
                s1.saturating_sub(s0) as f64 / t1.duration_since(t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Score evaluations (NFE × particles) per second since the first report.
    pub fn evals_per_s(&self) -> f64 {
        match (self.first, self.evals_at) {
            (Some((t0, _)), Some(t1)) if t1 > t0 => {
                self.evals / t1.duration_since(t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// Frames that must have passed (besides [`PROBE_MAX`]) before a short window is accepted:
/// while a pipeline compile holds the page's frames, wall time passes with nothing to measure.
pub const PROBE_MIN_FRAMES: u32 = 20;

/// Whether the probe is over at `now`, `frames` frames after it started: both engines' reports
/// span [`PROBE_WINDOW`]; or both report, [`PROBE_MAX`] has passed since the later one's first
/// report and [`PROBE_MIN_FRAMES`] frames were drawn; or [`PROBE_GIVE_UP`] since `started`.
pub fn finished(started: Instant, now: Instant, frames: u32, a: &RateMeter, b: &RateMeter) -> bool {
    if a.span() >= PROBE_WINDOW && b.span() >= PROBE_WINDOW {
        return true;
    }
    if now.saturating_duration_since(started) >= PROBE_GIVE_UP {
        return true;
    }
    match (a.first_report(), b.first_report()) {
        (Some(x), Some(y)) => {
            frames >= PROBE_MIN_FRAMES && now.saturating_duration_since(x.max(y)) >= PROBE_MAX
        }
        _ => false,
    }
}

/// The outcome of a probe, for the status line and `state().engine_probe`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProbeResult {
    /// The engine kept.
    pub picked: EngineChoice,
    /// Measured training steps/s of the CPU engine.
    pub cpu_steps_per_s: f64,
    /// ... of the GPU engine.
    pub gpu_steps_per_s: f64,
    /// Measured score evaluations/s of the CPU engine's live samplers.
    pub cpu_evals_per_s: f64,
    /// ... of the GPU engine's.
    pub gpu_evals_per_s: f64,
    /// The faster engine for sampling alone.
    pub faster_sampling: EngineChoice,
    /// The live samplers, the field and the density run on the other engine than training
    /// (`faster_sampling`, measured at least [`SPLIT_MARGIN`] times faster there;
    /// `engine::split`).
    pub split: bool,
    /// One sentence: what was measured and why this engine.
    pub reason: String,
    /// The rates were measured (false: the choice was made without running both engines).
    pub measured: bool,
}

impl ProbeResult {
    /// The choice on a software adapter, made without a probe: creating the GPU engine there
    /// compiles its pipelines on the CPU, which froze SwiftShader's page for over 10 s, longer
    /// than any probe may take; its WGSL then runs about 1000× slower than the CPU engine
    /// (docs/BENCHMARKS.md). `?probe=1` measures anyway.
    pub fn software(adapter: &str) -> Self {
        Self {
            picked: EngineChoice::Cpu,
            cpu_steps_per_s: 0.0,
            gpu_steps_per_s: 0.0,
            cpu_evals_per_s: 0.0,
            gpu_evals_per_s: 0.0,
            faster_sampling: EngineChoice::Cpu,
            split: false,
            reason: format!(
                "software GPU adapter ({adapter}): not measured (building the GPU engine alone freezes the page for seconds here, and its WGSL runs ~1000× slower than the CPU engine); CPU engine; ?probe=1 measures"
            ),
            measured: false,
        }
    }
}

/// How much faster the other engine must sample before sampling moves there: the live
/// samplers' rate is paced by the frames (both engines take the same steps per frame while
/// they keep up), so a real difference means one engine could not keep up.
pub const SPLIT_MARGIN: f64 = 1.5;

/// Pick the engine that trained faster (ties and no reports keep `current`), and the one that
/// sampled faster if that is another by at least [`SPLIT_MARGIN`]; say so.
pub fn decide(current: EngineChoice, cpu: &RateMeter, gpu: &RateMeter) -> ProbeResult {
    let (c, g) = (cpu.steps_per_s(), gpu.steps_per_s());
    let (ce, ge) = (cpu.evals_per_s(), gpu.evals_per_s());
    let picked = if c > g {
        EngineChoice::Cpu
    } else if g > c {
        EngineChoice::Gpu
    } else {
        current
    };
    let faster_sampling = if ce > ge {
        EngineChoice::Cpu
    } else if ge > ce {
        EngineChoice::Gpu
    } else {
        picked
    };
    let name = |e: EngineChoice| match e {
        EngineChoice::Cpu => "CPU",
        EngineChoice::Gpu => "GPU",
    };
    let mut reason = if c == g {
        format!(
            "no difference measured (CPU {c:.0} vs GPU {g:.1} training steps/s; training paused or no reports): kept the {} engine",
            name(picked)
        )
    } else {
        format!(
            "measured side by side: CPU {c:.0} vs GPU {g:.1} training steps/s; {} trains faster here",
            name(picked)
        )
    };
    let split = faster_sampling != picked && ce.max(ge) >= SPLIT_MARGIN * ce.min(ge);
    if split {
        reason.push_str(&format!(
            "; sampling runs on the {} engine, measured faster there (CPU {ce:.3e} vs GPU {ge:.3e} score evaluations/s), with the trained network",
            name(faster_sampling)
        ));
    } else if faster_sampling != picked {
        reason.push_str(&format!(
            " (sampling: CPU {ce:.3e} vs GPU {ge:.3e} score evaluations/s, within {SPLIT_MARGIN}×; one engine does both)"
        ));
    }
    ProbeResult {
        picked,
        cpu_steps_per_s: c,
        gpu_steps_per_s: g,
        cpu_evals_per_s: ce,
        gpu_evals_per_s: ge,
        faster_sampling,
        split,
        reason,
        measured: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SamplerStatus;

    fn out(steps: Option<u64>, run: u32, nfe: u64, n: usize) -> FrameOutput {
        let mut o = FrameOutput {
            steps,
            ..FrameOutput::default()
        };
        o.sampler[0] = Some(SamplerStatus {
            run,
            nfe,
            n,
            ..SamplerStatus::default()
        });
        o
    }

    #[test]
    fn rates_count_steps_and_evaluations_across_runs_from_the_first_report() {
        let t0 = Instant::now();
        let ms = |k: u64| t0 + Duration::from_millis(k);
        let mut m = RateMeter::new();
        assert_eq!(m.steps_per_s(), 0.0);
        m.observe(ms(500), &out(Some(100), 0, 10, 1000));
        assert_eq!(m.steps_per_s(), 0.0, "one report is no rate");
        m.observe(ms(1000), &out(None, 0, 30, 1000));
        // A new run starts its NFE from 0: its evaluations add to the earlier run's.
        m.observe(ms(2500), &out(Some(400), 1, 5, 1000));
        assert_eq!(m.span(), Duration::from_millis(2000));
        assert!(
            (m.steps_per_s() - 150.0).abs() < 1e-9,
            "{}",
            m.steps_per_s()
        );
        assert!(
            (m.evals_per_s() - 25_000.0 / 2.0).abs() < 1e-6,
            "{}",
            m.evals_per_s()
        );
    }

    #[test]
    fn the_window_is_measured_between_reports_of_both_engines() {
        let t0 = Instant::now();
        let ms = |k: u64| t0 + Duration::from_millis(k);
        let (mut a, mut b) = (RateMeter::new(), RateMeter::new());
        a.observe(ms(100), &out(Some(1), 0, 0, 10));
        a.observe(ms(1700), &out(Some(90), 0, 0, 10));
        // The slow starter (one report, then none for a while) is waited for.
        b.observe(ms(3000), &out(Some(0), 0, 0, 10));
        assert!(!finished(t0, ms(4000), 30, &a, &b));
        b.observe(ms(4200), &out(Some(3), 0, 0, 10));
        assert!(!finished(t0, ms(4200), 30, &a, &b));
        b.observe(ms(4500), &out(Some(4), 0, 0, 10));
        assert!(finished(t0, ms(4500), 30, &a, &b));
        // ... but not forever: PROBE_MAX after both report, PROBE_GIVE_UP if one never does.
        let mut d = RateMeter::new();
        d.observe(ms(3000), &out(Some(0), 0, 0, 10));
        assert!(!finished(t0, ms(8000), 30, &a, &d));
        assert!(finished(t0, ms(3000) + PROBE_MAX, 30, &a, &d));
        // A frozen page (few frames) is waited for.
        assert!(!finished(t0, ms(3000) + PROBE_MAX, 5, &a, &d));
        let c = RateMeter::new();
        assert!(!finished(t0, t0 + PROBE_MAX, 30, &a, &c));
        assert!(finished(t0, t0 + PROBE_GIVE_UP, 0, &a, &c));
    }

    #[test]
    fn the_faster_trainer_is_picked_and_the_reason_says_so() {
        let t0 = Instant::now();
        let at = |k: u64| t0 + Duration::from_millis(k);
        let (mut cpu, mut gpu) = (RateMeter::new(), RateMeter::new());
        cpu.observe(at(0), &out(Some(0), 0, 0, 500));
        cpu.observe(at(1000), &out(Some(3000), 0, 10, 500));
        gpu.observe(at(0), &out(Some(0), 0, 0, 500));
        gpu.observe(at(1000), &out(Some(2), 0, 100, 500));
        let r = decide(EngineChoice::Gpu, &cpu, &gpu);
        assert_eq!(r.picked, EngineChoice::Cpu);
        assert_eq!(r.faster_sampling, EngineChoice::Gpu);
        assert!(
            r.reason.contains("CPU trains faster") && r.reason.contains("sampling"),
            "{}",
            r.reason
        );
        // Nothing measured by either: keep the current engine, and say so.
        let none = decide(EngineChoice::Gpu, &RateMeter::new(), &RateMeter::new());
        assert_eq!(none.picked, EngineChoice::Gpu);
        assert!(
            none.reason.contains("kept the GPU engine"),
            "{}",
            none.reason
        );
        // A GPU that reports nothing loses to a CPU that trains.
        let r = decide(EngineChoice::Gpu, &cpu, &RateMeter::new());
        assert_eq!(r.picked, EngineChoice::Cpu);
    }

    #[test]
    fn sampling_moves_to_the_other_engine_only_when_clearly_faster() {
        let t0 = Instant::now();
        let at = |k: u64| t0 + Duration::from_millis(k);
        let meter = |steps: u64, evals: u64| {
            let mut m = RateMeter::new();
            m.observe(at(0), &out(Some(0), 0, 0, 500));
            m.observe(at(1000), &out(Some(steps), 0, evals, 500));
            m
        };
        // The CPU trains faster, the GPU keeps up with 10× the particles: split.
        let r = decide(EngineChoice::Cpu, &meter(3000, 10), &meter(30, 100));
        assert_eq!(
            (r.picked, r.faster_sampling, r.split),
            (EngineChoice::Cpu, EngineChoice::Gpu, true)
        );
        assert!(
            r.reason.contains("sampling runs on the GPU engine"),
            "{}",
            r.reason
        );
        // Within the margin (both keep up with the frames): one engine does both.
        let r = decide(EngineChoice::Cpu, &meter(3000, 100), &meter(30, 120));
        assert!(
            !r.split && r.faster_sampling == EngineChoice::Gpu,
            "{}",
            r.reason
        );
        assert!(r.reason.contains("one engine does both"), "{}", r.reason);
        // The faster trainer samples faster too: no split.
        let r = decide(EngineChoice::Gpu, &meter(3000, 500), &meter(30, 100));
        assert!(!r.split && r.picked == EngineChoice::Cpu);
        assert!(!ProbeResult::software("x").split);
    }
}

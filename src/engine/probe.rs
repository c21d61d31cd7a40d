//! The measured engine choice (issue 17): where both engines can run (a WebGPU or native
//! adapter with compute), the app runs the CPU engine and the GPU engine side by side for
//! [`PROBE_WINDOW`] after each (re)build, during the first frames and without blocking them,
//! and keeps the one that trained faster. [`RateMeter`] turns each engine's frame outputs into
//! training steps/s and score evaluations/s; [`decide`] picks and says why. `?engine=` and the
//! panel's choice skip the probe.

use web_time::{Duration, Instant};

use super::{EngineChoice, FrameOutput, SLOTS};

/// How long both engines run before the choice.
pub const PROBE_WINDOW: Duration = Duration::from_millis(1500);

/// Training and sampling throughput of one engine since it started.
#[derive(Clone, Debug)]
pub struct RateMeter {
    start: Instant,
    /// Latest reported (time, training steps).
    steps: Option<(Instant, u64)>,
    /// Per slot: (run, score evaluations counted in this run) of the latest status.
    runs: [Option<(u32, f64)>; SLOTS],
    /// Score evaluations (NFE × particles) over all runs seen, and when last counted.
    evals: f64,
    evals_at: Option<Instant>,
}

impl RateMeter {
    /// A meter for an engine started at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            steps: None,
            runs: [None; SLOTS],
            evals: 0.0,
            evals_at: None,
        }
    }

    /// Count what a frame of the engine reported at `now`.
    pub fn observe(&mut self, now: Instant, out: &FrameOutput) {
        if let Some(s) = out.steps {
            self.steps = Some((now, s));
        }
        for (slot, status) in self.runs.iter_mut().zip(&out.sampler) {
            let Some(st) = status else { continue };
            let evals = st.nfe as f64 * st.n as f64;
            let before = match *slot {
                Some((run, e)) if run == st.run => e,
                _ => 0.0,
            };
            if evals > before {
                self.evals += evals - before;
                self.evals_at = Some(now);
            }
            *slot = Some((st.run, evals));
        }
    }

    fn per_s(&self, amount: f64, at: Option<Instant>) -> f64 {
        match at {
            Some(t) if t > self.start => amount / t.duration_since(self.start).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Training steps per second since the start (start-up latency included: a user waits
    /// for it too); 0 before the first report.
    pub fn steps_per_s(&self) -> f64 {
        self.steps
            .map_or(0.0, |(t, s)| self.per_s(s as f64, Some(t)))
    }

    /// Score evaluations (NFE × particles) per second since the start.
    pub fn evals_per_s(&self) -> f64 {
        self.per_s(self.evals, self.evals_at)
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
    /// One sentence: what was measured and why this engine.
    pub reason: String,
}

/// Pick the engine that trained faster (ties and no reports keep `current`); say so.
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
    let mut reason = format!(
        "measured over {:.1} s: CPU {c:.0} vs GPU {g:.1} training steps/s; {} trains faster here",
        PROBE_WINDOW.as_secs_f64(),
        name(picked)
    );
    if faster_sampling != picked {
        reason.push_str(&format!(
            " (sampling: CPU {ce:.3e} vs GPU {ge:.3e} score evaluations/s; one engine does both)"
        ));
    }
    ProbeResult {
        picked,
        cpu_steps_per_s: c,
        gpu_steps_per_s: g,
        cpu_evals_per_s: ce,
        gpu_evals_per_s: ge,
        faster_sampling,
        reason,
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
    fn rates_count_steps_and_evaluations_across_runs() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        assert_eq!(m.steps_per_s(), 0.0);
        m.observe(
            t0 + Duration::from_millis(500),
            &out(Some(100), 0, 10, 1000),
        );
        m.observe(t0 + Duration::from_millis(1000), &out(None, 0, 30, 1000));
        // A new run starts its NFE from 0: its evaluations add to the earlier run's.
        m.observe(
            t0 + Duration::from_millis(2000),
            &out(Some(400), 1, 5, 1000),
        );
        assert!(
            (m.steps_per_s() - 200.0).abs() < 1e-9,
            "{}",
            m.steps_per_s()
        );
        assert!(
            (m.evals_per_s() - 35_000.0 / 2.0).abs() < 1e-6,
            "{}",
            m.evals_per_s()
        );
    }

    #[test]
    fn the_faster_trainer_is_picked_and_the_reason_says_so() {
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(1);
        let (mut cpu, mut gpu) = (RateMeter::new(t0), RateMeter::new(t0));
        cpu.observe(at, &out(Some(3000), 0, 10, 500));
        gpu.observe(at, &out(Some(2), 0, 100, 500));
        let r = decide(EngineChoice::Gpu, &cpu, &gpu);
        assert_eq!(r.picked, EngineChoice::Cpu);
        assert_eq!(r.faster_sampling, EngineChoice::Gpu);
        assert!(
            r.reason.contains("CPU trains faster") && r.reason.contains("sampling"),
            "{}",
            r.reason
        );
        // Nothing reported by either: keep the current engine.
        let none = decide(EngineChoice::Gpu, &RateMeter::new(t0), &RateMeter::new(t0));
        assert_eq!(none.picked, EngineChoice::Gpu);
        // A GPU that reports nothing in the window loses to a CPU that trains.
        let r = decide(EngineChoice::Gpu, &cpu, &RateMeter::new(t0));
        assert_eq!(r.picked, EngineChoice::Cpu);
    }
}

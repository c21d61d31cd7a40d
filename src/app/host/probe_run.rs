//! The engine probe's run inside the host: both engines side by side after a (re)build in
//! automatic mode, measured, and the faster kept (`engine::probe`).

use eframe::egui_wgpu::wgpu;
use web_time::{Duration, Instant};

use crate::engine::probe::{self, RateMeter};
use crate::engine::split::SplitEngine;
use crate::engine::{self, Engine, EngineChoice, FrameRequest, SLOTS};
use crate::gpu::context::GpuContext;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::sde::Sde;
use crate::state::State;

use super::*;

/// Both engines side by side after a (re)build in automatic mode (`engine::probe`).
pub(super) struct ProbeRun {
    /// The other engine: trains and samples like the main one, its output only measured.
    pub(super) challenger: Box<dyn Engine>,
    pub(super) started: Instant,
    /// Frames drawn since it started.
    pub(super) frames: u32,
    pub(super) main: RateMeter,
    pub(super) other: RateMeter,
}

/// What starting the probe's other engine needs, kept until the first engine has trained.
pub(super) struct PendingProbe {
    pub(super) gpu: (wgpu::Device, wgpu::Queue, wgpu::AdapterInfo),
    pub(super) sde: Sde,
    pub(super) net: Option<ScoreNet>,
    pub(super) offload: Option<engine::remote::Offload>,
}

impl Host {
    /// A finished probe measured one engine at least 10× faster at training: later rebuilds
    /// (a network-size change) keep its choice instead of measuring again.
    pub(super) fn probe_was_decisive(&self) -> bool {
        self.probe_result.as_ref().is_some_and(|r| {
            r.measured && {
                let (a, b) = (r.cpu_steps_per_s, r.gpu_steps_per_s);
                a.max(b) >= 10.0 * a.min(b) && a.max(b) > 0.0
            }
        })
    }

    /// Start the other engine beside the main one.
    pub(super) fn start_probe(
        &mut self,
        st: &State,
        mixture: &GaussianMixture,
        pending: PendingProbe,
    ) {
        let PendingProbe {
            gpu: (device, queue, info),
            sde,
            net,
            offload,
        } = pending;
        let (other, gpu) = match self.choice {
            EngineChoice::Cpu => (
                EngineChoice::Gpu,
                Some(GpuContext::new(device, queue, info)),
            ),
            EngineChoice::Gpu => (EngineChoice::Cpu, None),
        };
        match engine::start(gpu, mixture, sde, &st.settings, net, offload) {
            Ok(mut e) => {
                for slot in 0..SLOTS {
                    e.set_sampling(slot, &st.running(slot));
                }
                e.pause_sampling(st.paused);
                self.probe = Some(ProbeRun {
                    challenger: e,
                    started: Instant::now(),
                    frames: 0,
                    main: RateMeter::new(),
                    other: RateMeter::new(),
                });
                self.probe_result = None;
                log::info!("engine probe: {:?} beside {:?}", other, self.choice);
            }
            Err(e) => log::warn!("engine probe: the {other:?} engine could not start ({e})"),
        }
    }

    /// The running engine and, while probing, the other one: the app's requests go to both.
    pub fn engines_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Engine>> {
        self.engine
            .iter_mut()
            .chain(self.probe.iter_mut().map(|p| &mut p.challenger))
    }

    /// Whether the engine probe is running or about to start.
    pub fn probing(&self) -> bool {
        self.probe.is_some() || self.pending_probe.is_some()
    }

    /// Stop probing and forget the last probe (an engine was forced).
    pub fn stop_probe(&mut self) {
        self.probe = None;
        self.pending_probe = None;
        self.probe_result = None;
    }

    /// One frame of the challenger; at the end of the window, keep the faster engine.
    pub(super) fn step_probe(&mut self, st: &State) {
        let Some(p) = self.probe.as_mut() else {
            return;
        };
        let budget = match p.challenger.choice() {
            EngineChoice::Cpu => engine::BASE_BUDGET,
            EngineChoice::Gpu => Duration::from_millis(8),
        };
        let out = p
            .challenger
            .frame(budget, st.training, &FrameRequest::default());
        let now = Instant::now();
        p.other.observe(now, &out);
        p.frames += 1;
        if !probe::finished(p.started, now, p.frames, &p.main, &p.other) {
            return;
        }
        let Some(p) = self.probe.take() else {
            return;
        };
        let (cpu, gpu) = match self.choice {
            EngineChoice::Cpu => (&p.main, &p.other),
            EngineChoice::Gpu => (&p.other, &p.main),
        };
        let result = probe::decide(self.choice, cpu, gpu);
        log::info!("engine probe: {}", result.reason);
        if result.split {
            // Both engines stay: the faster trainer trains, the other samples with its network.
            let Some(main) = self.engine.take() else {
                return;
            };
            let (train, sample) = if result.picked == self.choice {
                (main, p.challenger)
            } else {
                (p.challenger, main)
            };
            self.engine = Some(Box::new(SplitEngine::new(train, sample)));
            if result.picked != self.choice {
                self.history = History::default();
            }
            self.choice = result.picked;
            self.field = None;
            self.density = None;
            self.sampler = [None; SLOTS];
            self.runs = [None, None];
        } else if result.picked != self.choice {
            // The challenger trained through the window too: it continues from where it is.
            self.engine = Some(p.challenger);
            self.choice = result.picked;
            self.history = History::default();
            self.field = None;
            self.density = None;
            self.sampler = [None; SLOTS];
            self.runs = [None, None];
        }
        self.probe_result = Some(result);
    }
}

//! The app's side of the engine layer: starts the engine for the current state (and the probe
//! that measures the other one), drives it once per frame with the views' requests, folds what
//! it produces into the history, the latest field and density and the run statistics, and
//! answers the JS requests that wait for the engine (the views draw and answer the rest).

use eframe::egui_wgpu::wgpu;
use web_time::{Duration, Instant};

use crate::app::perf::PerfWindow;
use crate::engine::probe::ProbeResult;
use crate::engine::split::SplitEngine;
use crate::engine::{
    self, Engine, EngineChoice, FieldCell, FieldRequest, FrameRequest, LiveSampling, SamplerStatus,
    SLOTS,
};
use crate::gpu::context::{check_adapter, GpuContext};
use crate::sim::metrics::RunStats;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::sde::Sde;
use crate::state::command as api;
use crate::state::js::{Answer, Refused};
use crate::state::State;

mod probe_run;
mod upload;

use probe_run::*;
use upload::*;

/// What the renderer runs on, for the status line and `state()`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BackendInfo {
    /// wgpu backend name, e.g. "BrowserWebGpu", "Vulkan", "Gl".
    pub backend: String,
    /// Adapter name.
    pub adapter: String,
    /// Adapter device type, e.g. "Cpu" for lavapipe / SwiftShader.
    pub device_type: String,
}

/// The devices the app found at start-up.
#[derive(Default)]
pub struct Platform {
    /// For the status line and `state()`.
    pub backend: BackendInfo,
    /// A device the GPU engine can compute on.
    pub gpu: Option<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)>,
    /// The renderer's device (the CPU engine's particles are uploaded to it).
    pub render: Option<(wgpu::Device, wgpu::Queue)>,
    /// The GPU is a software adapter (or there is none).
    pub software: bool,
    /// Why the GPU engine is not available, if it is not.
    pub fallback_reason: Option<String>,
    /// How the CPU engine runs off the UI thread (`engine::remote`; the shell's worker, or a
    /// thread natively); `None` keeps it on the UI thread.
    pub offload: Option<engine::remote::Offload>,
    /// Run the engine probe on a software adapter too (`?probe=1`).
    pub probe_software: bool,
}

impl Platform {
    /// From eframe's render state.
    pub fn new(rs: Option<&eframe::egui_wgpu::RenderState>) -> Self {
        let backend = rs
            .map(|rs| {
                let info = rs.adapter.get_info();
                BackendInfo {
                    backend: format!("{:?}", info.backend),
                    adapter: info.name,
                    device_type: format!("{:?}", info.device_type),
                }
            })
            .unwrap_or_default();
        // The GPU engine needs compute (WebGPU or native); WebGL2 gets the CPU engine + a banner.
        let (gpu, fallback_reason) = match rs {
            Some(rs) => match check_adapter(&rs.adapter) {
                Ok(()) => (
                    Some((rs.device.clone(), rs.queue.clone(), rs.adapter.get_info())),
                    None,
                ),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, Some("no wgpu renderer".to_string())),
        };
        let software = gpu
            .as_ref()
            .is_none_or(|(_, _, info)| info.device_type == wgpu::DeviceType::Cpu);
        Self {
            backend,
            gpu,
            render: rs.map(|rs| (rs.device.clone(), rs.queue.clone())),
            software,
            fallback_reason,
            offload: engine::remote::THREAD,
            probe_software: false,
        }
    }

    /// Whether `choice` runs on a real (hardware) GPU.
    pub fn fast_gpu(&self, choice: EngineChoice) -> bool {
        choice == EngineChoice::Gpu && self.gpu.is_some() && !self.software
    }

    /// Why smaller defaults are in use, for the status line.
    pub fn software_note(&self) -> Option<&'static str> {
        match &self.gpu {
            Some((_, _, info)) if info.device_type == wgpu::DeviceType::Cpu => {
                Some("software GPU adapter: smaller defaults")
            }
            None => Some("no WebGPU compute: CPU engine with smaller defaults"),
            _ => None,
        }
    }
}

/// Training history for the charts.
#[derive(Default)]
pub struct History {
    /// Training steps so far.
    pub steps: u64,
    /// (step, EMA of the loss) every 10 steps.
    pub loss: Vec<[f64; 2]>,
    /// EMA of the loss.
    pub loss_ema: Option<f64>,
    /// (step, mean relative Fisher divergence).
    pub fisher: Vec<[f64; 2]>,
    /// Training speed.
    pub steps_per_s: f64,
    last_rate_check: Option<(Instant, u64)>,
}

impl History {
    /// Fold a frame's training output in: the step count, the losses' moving average (every
    /// 10th step kept for the chart) and a Fisher measurement.
    fn fold(&mut self, steps: Option<u64>, losses: &[(u64, f64)], fisher: Option<(u64, f64)>) {
        let h = self;
        if let Some(steps) = steps {
            h.steps = steps;
        }
        for &(step, loss) in losses {
            if loss.is_finite() {
                let ema = h.loss_ema.map_or(loss, |e| 0.95 * e + 0.05 * loss);
                h.loss_ema = Some(ema);
                if step % 10 == 0 {
                    h.loss.push([step as f64, ema]);
                }
            }
        }
        if let Some((step, f)) = fisher {
            if f.is_finite() {
                h.fisher.push([step as f64, f]);
            }
        }
    }
}

/// Messages from a frame of the engine.
#[derive(Default)]
pub struct Said {
    /// A divergence or engine problem.
    pub warning: Option<String>,
    /// Where an exported model went.
    pub file_message: Option<String>,
    /// The drawing network, when this frame read it back (for whoever asked, e.g. the
    /// overlays' CPU snapshot).
    pub model: Option<ScoreNet>,
}

/// What a request for the latest field is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldAnswer {
    /// `field()`: `[[x, y, sx, sy], …]`, the learned score.
    Score,
    /// `denoiser()`: `[[x, y, Dx, Dy, D*x, D*y, r₁, …, r_K], …]`: Tweedie's denoiser from
    /// the learned score, from the exact score, and the exact responsibilities p(k | x_t).
    Denoiser,
}

/// Requests that wait for the engine.
#[derive(Default)]
pub struct Pending {
    /// Model exports (id 0: save a file).
    pub models: Vec<u32>,
    /// `field()` / `denoiser()` requests and the field sequence number when asked.
    pub fields: Vec<(u32, u64, FieldAnswer)>,
    /// `samples()` requests: (id, slot).
    pub samples: Vec<(u32, usize)>,
}

/// The engine and everything that comes out of it.
pub struct Host {
    /// The running engine (none if it could not start).
    pub engine: Option<Box<dyn Engine>>,
    /// Which engine the user chose (or the automatic choice).
    pub choice: EngineChoice,
    /// No engine was forced (`?engine=`, the panel, `setConfig`): each (re)build measures both
    /// engines and keeps the faster (`engine::probe`).
    pub auto: bool,
    /// Train on the CPU engine and sample on the GPU engine (`?engine=split`).
    pub split: bool,
    probe: Option<ProbeRun>,
    pending_probe: Option<PendingProbe>,
    /// The last probe's measurements and choice.
    pub probe_result: Option<ProbeResult>,
    /// Loss and Fisher history.
    pub history: History,
    /// The latest field and the request it answers.
    pub field: Option<(FieldRequest, Vec<FieldCell>)>,
    /// Fields received so far (the score arrows, the denoiser).
    pub field_seq: u64,
    /// Each live sampler's progress.
    pub sampler: [Option<SamplerStatus>; SLOTS],
    /// Each live sampler's last finished run.
    pub runs: [Option<RunStats>; SLOTS],
    /// Each slot's run that was in flight (or had finished) when the mixture last changed:
    /// part of it followed the old mixture's score, so its statistics are not shown
    /// ([`Host::mixture_changed`]).
    stale: [Option<u32>; SLOTS],
    /// The network to start the next engine from (an imported model).
    pub import_net: Option<ScoreNet>,
    /// The SDE (data frame) of an imported model, kept until the mixture is edited: a model
    /// is evaluated in the frame it was trained in (files from before frames existed were
    /// trained at the origin with unit scale).
    pub model_frame: Option<Sde>,
    /// Requests waiting for the engine.
    pub pending: Pending,
    cpu_particles: [Option<CpuParticleUpload>; SLOTS],
    /// The latest learned log-density (PF-ODE) and the grid it is on.
    pub density: Option<(FieldRequest, Vec<f64>)>,
    /// Densities received so far (the learned-density view rebuilds its texture on a new one).
    pub density_seq: u64,
    /// Flow matching's latest network from the engine (while the flow view asks for it).
    pub flow: Option<engine::flow::FlowReport>,
}

impl Host {
    /// No engine yet ([`Host::rebuild`] starts one).
    pub fn new(choice: EngineChoice) -> Self {
        Self {
            engine: None,
            choice,
            auto: false,
            split: false,
            probe: None,
            pending_probe: None,
            probe_result: None,
            history: History::default(),
            field: None,
            field_seq: 0,
            sampler: [None; SLOTS],
            runs: [None, None],
            stale: [None, None],
            import_net: None,
            model_frame: None,
            pending: Pending::default(),
            cpu_particles: [None, None],
            density: None,
            density_seq: 0,
            flow: None,
        }
    }

    /// The SDE every engine, picture and exact score uses: the mixture's frame
    /// (`Sde::for_mixture`), or an imported model's own until the mixture is edited.
    pub fn sde(&self, st: &State, mixture: &GaussianMixture) -> Sde {
        match self.model_frame {
            Some(s) if s.kind == st.scene.sde => s,
            _ => Sde::for_mixture(st.scene.sde, mixture),
        }
    }

    /// (Re)create the engine for the state (fresh network unless a model was imported).
    pub fn rebuild(
        &mut self,
        platform: &Platform,
        st: &State,
        mixture: &GaussianMixture,
    ) -> Option<String> {
        let gpu = match (&platform.gpu, self.choice) {
            (Some((device, queue, info)), EngineChoice::Gpu) => {
                Some(GpuContext::new(device.clone(), queue.clone(), info.clone()))
            }
            _ => None,
        };
        let sde = self.sde(st, mixture);
        let net = self.import_net.take();
        let mut error = None;
        self.probe = None;
        let challenger_net = net.clone();
        let started = match (&platform.gpu, self.split) {
            (Some((device, queue, info)), true) => {
                let gpu = GpuContext::new(device.clone(), queue.clone(), info.clone());
                let settings = &st.settings;
                let offload = platform.offload.map(engine::remote::Offload::single);
                engine::start(None, mixture, sde, settings, net.clone(), offload).and_then(
                    |train| {
                        let sample = engine::start(Some(gpu), mixture, sde, settings, net, None)?;
                        Ok(Box::new(SplitEngine::new(train, sample)) as Box<dyn Engine>)
                    },
                )
            }
            _ => engine::start(gpu, mixture, sde, &st.settings, net, platform.offload),
        };
        match started {
            Ok(mut e) => {
                for slot in 0..SLOTS {
                    e.set_sampling(slot, &st.running(slot));
                }
                e.pause_sampling(st.paused);
                self.engine = Some(e);
                // A new engine numbers its runs from 0 again: none of them is stale.
                self.stale = [None; SLOTS];
                self.pending_probe = None;
                if self.auto && platform.software && !platform.probe_software {
                    if let Some((_, _, info)) = &platform.gpu {
                        self.probe_result = Some(ProbeResult::software(&info.name));
                    }
                } else if self.auto && !self.probe_was_decisive() {
                    // Started once the first engine has trained: creating the other engine
                    // (a software adapter compiles its pipelines on the CPU) must not hold
                    // up the page's first frames.
                    self.pending_probe = platform.gpu.clone().map(|gpu| PendingProbe {
                        gpu,
                        sde,
                        net: challenger_net,
                        offload: platform.offload,
                    });
                }
            }
            Err(e) => {
                log::error!("cannot start the training engine: {e}");
                error = Some(format!("cannot start the training engine: {e}"));
                self.engine = None;
            }
        }
        self.history = History::default();
        self.field = None;
        self.density = None;
        self.flow = None;
        self.sampler = [None; SLOTS];
        self.runs = [None, None];
        error
    }

    /// Restart live sampler `slot` with `live`.
    pub fn set_sampling(&mut self, slot: usize, live: &LiveSampling) {
        if let Some(e) = self.engine.as_mut() {
            e.set_sampling(slot, live);
        }
        if let Some(p) = self.probe.as_mut() {
            p.challenger.set_sampling(slot, live);
        }
        self.sampler[slot] = None;
        self.runs[slot] = None;
        self.stale[slot] = None;
    }

    /// The mixture changed (a preset, a drag, an undo): the runs in flight go on with the new
    /// score (the particles follow the drag) but their statistics would mix two mixtures, so
    /// the panel shows none until a run that started after the change finishes (the next
    /// loop, or Restart with the loop off).
    pub fn mixture_changed(&mut self) {
        for slot in 0..SLOTS {
            self.runs[slot] = None;
            self.stale[slot] = self.sampler[slot].map(|s| s.run);
        }
    }

    /// Ask for the particles of `slot` (answered when the engine reads them back).
    pub fn ask_samples(&mut self, st: &State, id: u32, slot: usize) {
        if self.engine.is_some() && st.running(slot).enabled {
            self.pending.samples.push((id, slot));
        } else {
            api::answer(id, Err(Refused::SamplerOff(slot + 1)));
        }
    }

    /// Queue a `field()` request (answered by the next field computed after it).
    pub fn ask_field(&mut self, id: u32, what: FieldAnswer) {
        self.pending.fields.push((id, self.field_seq, what));
    }

    /// Run the engine for this frame with the views' requests `req` (and a model readback when
    /// `want_model`) and fold its output in.
    pub fn frame(
        &mut self,
        st: &State,
        mixture: &GaussianMixture,
        req: FrameRequest,
        want_model: bool,
        perf: &mut PerfWindow,
    ) -> Said {
        let mut said = Said::default();
        let Some(engine) = self.engine.as_mut() else {
            return said;
        };
        for &(_, slot) in &self.pending.samples {
            engine.request_samples(slot);
        }
        if !self.pending.models.is_empty() || want_model {
            engine.request_model();
        }
        let engine_start = Instant::now();
        let budget = match engine.choice() {
            EngineChoice::Cpu => perf.cpu_budget(),
            EngineChoice::Gpu => Duration::from_millis(8),
        };
        let mut out = engine.frame(budget, st.training, &req);
        if req.flow.is_none() {
            self.flow = None;
        } else if let Some(f) = out.flow.take() {
            self.flow = Some(f);
        }
        if let Some(p) = self.probe.as_mut() {
            p.main.observe(Instant::now(), &out);
        }
        perf.engine(
            engine_start.elapsed().as_secs_f64() * 1e3,
            out.timing,
            engine.gpu_counts(),
        );
        self.history.fold(out.steps, &out.losses, out.fisher);
        if let Some(field) = out.field {
            self.field = Some(field);
            self.field_seq += 1;
        }
        for (slot, s) in out.sampler.iter().enumerate() {
            if s.is_some() {
                self.sampler[slot] = *s;
            }
        }
        self.fold_samples(st, mixture, out.samples);
        if let Some(net) = out.model {
            said.file_message = self.answer_models(&net);
            said.model = Some(net);
        }
        if let Some(density) = out.density {
            self.density = Some(density);
            self.density_seq += 1;
        }
        self.update_rate();
        if self.history.steps > 0 {
            if let Some(p) = self.pending_probe.take() {
                self.start_probe(st, mixture, p);
            }
        }
        self.step_probe(st);
        if let Some(w) = &out.warning {
            log::warn!("{w}");
        }
        said.warning = out.warning;
        said
    }

    /// Answer the `samples()` requests a readback satisfies, and keep a finished run's
    /// statistics (unless it started before the last mixture change).
    fn fold_samples(
        &mut self,
        st: &State,
        mixture: &GaussianMixture,
        samples: Vec<engine::SamplesOut>,
    ) {
        for got in samples {
            let stale = self.stale.get(got.slot) == Some(&Some(got.run));
            if got.done && !stale {
                let kind = st.samplers[got.slot].kind;
                self.runs[got.slot] = Some(RunStats::new(mixture, got.run, kind, &got.points));
            }
            let pts: Vec<[f32; 2]> = got
                .points
                .iter()
                .map(|p| [p.x as f32, p.y as f32])
                .collect();
            self.pending.samples.retain(|&(id, slot)| {
                let answered = slot == got.slot;
                if answered {
                    api::answer(id, Ok(Answer::Points(pts.clone())));
                }
                !answered
            });
        }
    }

    /// Hand a model snapshot to whoever asked: a file to save (id 0; the message to show) or
    /// `exportModel()` calls.
    fn answer_models(&mut self, net: &ScoreNet) -> Option<String> {
        let mut file_message = None;
        let text = serde_json::to_string(&net.to_file(self.history.steps))
            .map_err(|e| Refused::Encode(format!("the model: {e}")));
        for id in self.pending.models.drain(..) {
            if id == 0 {
                file_message = Some(match &text {
                    Ok(t) => crate::app::files::save(
                        "scorelab-model.json",
                        "application/json",
                        t.as_bytes(),
                    ),
                    Err(e) => e.to_string(),
                });
            } else {
                api::answer(id, text.clone().map(Answer::ModelFile));
            }
        }
        file_message
    }

    fn update_rate(&mut self) {
        let h = &mut self.history;
        let now = Instant::now();
        match h.last_rate_check {
            Some((t0, s0)) if now.duration_since(t0) >= Duration::from_millis(500) => {
                let dt = now.duration_since(t0).as_secs_f64();
                h.steps_per_s = (h.steps.saturating_sub(s0)) as f64 / dt;
                h.last_rate_check = Some((now, h.steps));
            }
            None => h.last_rate_check = Some((now, h.steps)),
            _ => {}
        }
    }
}

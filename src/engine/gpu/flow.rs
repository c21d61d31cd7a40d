//! Flow matching on the GPU engine ([`super::flow`]'s twin): a WGSL trainer
//! (`GpuTrainer::new_flow`, step-for-step parity with `sim::flow::FlowTrainer` in
//! `tests/gpu_parity/flow.rs`) encodes [`STEPS_A_FRAME`] steps into each frame's command
//! encoder beside the score network's (while training is on), and an async readback of its EMA weights every
//! [`READ_EVERY`] becomes the report. Reflow's couplings come from the network read back (its
//! RK4 paths run on the CPU once per round), then train on the GPU from the `particles` slot.

use web_time::{Duration, Instant};

use super::GpuEngine;
use crate::engine::flow::{self as eflow, FlowJob, FlowReport, COUPLINGS, REFLOW_AFTER};
use crate::engine::{Engine, FrameOutput};
use crate::gpu::context::{AsyncReadback, GpuContext, GpuError};
use crate::gpu::trainer::{GpuTrainer, LOSS_RING};
use crate::sim::flow::{reflow_couplings, FlowNet, FlowPath};
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::{Sde, SdeKind};

/// Flow-matching steps a frame: as many as the score network's (the velocity network, width
/// 48 × 2 at batch 128, is far smaller than the score network's defaults), within these
/// bounds.
const STEPS_A_FRAME: (u32, u32) = (8, 32);
/// Shortest interval between readbacks of the EMA weights.
const READ_EVERY: Duration = Duration::from_millis(250);

/// A readback of the EMA weights and the last loss at `steps` (either may come back first).
struct Inflight {
    steps: u32,
    weights: AsyncReadback,
    loss: AsyncReadback,
    got_weights: Option<Vec<u8>>,
    got_loss: Option<Vec<u8>>,
}

/// The GPU engine's flow matching.
pub struct GpuFlow {
    trainer: GpuTrainer,
    /// The network's configuration and the current path (the weights are on the GPU).
    like: FlowNet,
    job: FlowJob,
    /// Steps encoded.
    steps: u32,
    round_from: u32,
    reflowing: bool,
    /// Wall time while training was on.
    seconds: f64,
    last_encode: Option<Instant>,
    /// (steps, EMA weights, the last step's loss) in flight.
    readback: Option<Inflight>,
    last_read: Option<Instant>,
    /// The latest network read back and its step.
    latest: Option<(u32, FlowNet, f64)>,
    label: &'static str,
}

impl GpuFlow {
    /// A fresh network for `mixture` (the CPU engine's configuration, [`eflow::net_config`]).
    pub fn new(
        ctx: &GpuContext,
        mixture: &GaussianMixture,
        label: &'static str,
    ) -> Result<Self, GpuError> {
        let path = FlowPath::for_mixture(mixture);
        let net = FlowNet::new(eflow::net_config(path.d), path)
            .map_err(|e| GpuError::Unsupported(e.to_string()))?;
        let trainer = GpuTrainer::new_flow(ctx, &net, mixture, &eflow::train_config())?;
        Ok(Self {
            trainer,
            like: net,
            job: FlowJob::default(),
            steps: 0,
            round_from: 0,
            reflowing: false,
            seconds: 0.0,
            last_encode: None,
            readback: None,
            last_read: None,
            latest: None,
            label,
        })
    }

    /// The data changed: the weights stay, the path follows, a new first round starts.
    pub fn set_mixture(&mut self, ctx: &GpuContext, mixture: &GaussianMixture) {
        self.trainer
            .set_mixture(ctx, mixture, &Sde::for_mixture(SdeKind::Vp, mixture));
        self.like.path = FlowPath::for_mixture(mixture);
        self.stop_reflow(ctx);
        self.round_from = self.steps;
    }

    fn stop_reflow(&mut self, ctx: &GpuContext) {
        if self.reflowing {
            if let Err(e) = self.trainer.set_couplings(ctx, None) {
                log::warn!("flow matching: {e}");
            }
            self.reflowing = false;
        }
    }

    /// Follow the view's request; poll the readback (a report into `out`, and reflow's start
    /// once a network of the first round's [`REFLOW_AFTER`]th step has come back).
    pub fn poll(&mut self, ctx: &GpuContext, job: FlowJob, out: &mut FrameOutput) {
        self.job = job;
        if !job.reflow {
            self.stop_reflow(ctx);
        }
        if let Some(r) = self.readback.as_mut() {
            let mut failed = None;
            for (rb, got) in [(&r.weights, &mut r.got_weights), (&r.loss, &mut r.got_loss)] {
                if got.is_none() {
                    match rb.try_take(ctx) {
                        Some(Ok(bytes)) => *got = Some(bytes),
                        Some(Err(e)) => failed = Some(e),
                        None => {}
                    }
                }
            }
            if let Some(e) = failed {
                out.warning = Some(format!("GPU readback failed: {e}"));
                self.readback = None;
            } else if let (Some(w), Some(l)) = (&r.got_weights, &r.got_loss) {
                let params: Vec<f32> = bytemuck::pod_collect_to_vec(w);
                let loss = bytemuck::pod_collect_to_vec::<u8, f32>(l)[0];
                let made = FlowNet::with_params(self.like.config.clone(), self.like.path, params);
                match made {
                    Ok(net) => self.latest = Some((r.steps, net, f64::from(loss))),
                    Err(e) => out.warning = Some(format!("flow matching: {e}")),
                }
                self.readback = None;
            }
        }
        let Some((steps, net, loss)) = &self.latest else {
            return;
        };
        let ready = *steps >= self.round_from + REFLOW_AFTER;
        if self.job.reflow && !self.reflowing && ready {
            let c = reflow_couplings(net, &self.like.path, COUPLINGS, 32, 13);
            match self.trainer.set_couplings(ctx, Some(&c)) {
                Ok(()) => self.reflowing = true,
                Err(e) => out.warning = Some(format!("flow matching: {e}")),
            }
        }
        out.flow = Some(FlowReport {
            steps: *steps,
            round_from: self.round_from,
            reflowing: self.reflowing,
            loss: *loss,
            seconds: self.seconds,
            net: net.clone(),
            engine: self.label,
        });
        self.latest = None;
    }

    /// Encode this frame's steps (while training is on: `score_steps`, the score network's
    /// steps this frame) and, when due, the readback.
    pub fn encode(
        &mut self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        score_steps: Option<u32>,
    ) {
        let now = Instant::now();
        if let Some(k) = score_steps {
            let k = k.clamp(STEPS_A_FRAME.0, STEPS_A_FRAME.1);
            self.trainer.encode(ctx, enc, k);
            self.steps += k;
            if let Some(t) = self.last_encode {
                self.seconds += now.duration_since(t).as_secs_f64().min(0.5);
            }
            self.last_encode = Some(now);
        } else {
            self.last_encode = None;
        }
        let due = self.last_read.is_none_or(|t| t.elapsed() >= READ_EVERY);
        if self.readback.is_none() && due && self.steps > 0 {
            self.last_read = Some(now);
            let (buf, off, len) = self.trainer.ema_range();
            let w = AsyncReadback::record(ctx, enc, buf, off, len);
            let (ring, roff, _) = self.trainer.loss_ring_range();
            let at = roff + u64::from((self.steps - 1) % LOSS_RING) * 4;
            let l = AsyncReadback::record(ctx, enc, ring, at, 4);
            self.readback = Some(Inflight {
                steps: self.steps,
                weights: w,
                loss: l,
                got_weights: None,
                got_loss: None,
            });
        }
    }

    /// Ask for the readback's mapping (after the submit that holds its copies).
    pub fn map(&self) {
        if let Some(r) = &self.readback {
            r.weights.map();
            r.loss.map();
        }
    }
}

impl GpuEngine {
    /// Start, follow or drop flow matching as the frame's request says, and poll it.
    pub(super) fn poll_flow(&mut self, job: Option<FlowJob>, out: &mut FrameOutput) {
        let Some(job) = job else {
            self.flow = None;
            return;
        };
        if self.flow.is_none() {
            match GpuFlow::new(&self.ctx, &self.mixture, self.label()) {
                Ok(f) => self.flow = Some(f),
                Err(e) => {
                    out.warning = Some(format!("flow matching: {e}"));
                    return;
                }
            }
        }
        if let Some(f) = self.flow.as_mut() {
            f.poll(&self.ctx, job, out);
        }
    }
}

use eframe::egui_wgpu::wgpu;

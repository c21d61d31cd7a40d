//! DSM training: every step draws a fresh batch from the mixture with the counter RNG
//! (x_0 ~ p_data, t ~ U(ε_t, 1), z ~ N(0, I)), takes the loss E‖ε_θ(α x_0 + s z, t) − z‖²
//! and its gradient, and applies Adam. Batch draw i of step n uses only
//! `(seed, n, i)`, so the GPU trainer can draw the same batch in-shader.

use serde::{Deserialize, Serialize};

use crate::sim::adam::{Adam, AdamConfig};
use crate::sim::mixture::GaussianMixture;
use crate::sim::mlp::MlpWorkspace;
use crate::sim::model::ScoreNet;
use crate::sim::rng::{box_muller, stream, CounterRng};
use crate::sim::sde::TRAIN_T_EPS;
use crate::sim::Vec2;

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Samples per step.
    pub batch: usize,
    /// Optimiser.
    pub adam: AdamConfig,
    /// Seed of the batch stream.
    pub seed: u32,
    /// Smallest training time ε_t.
    pub t_eps: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            adam: AdamConfig::default(),
            seed: 0,
            t_eps: TRAIN_T_EPS,
        }
    }
}

/// Why a training step was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// Non-finite loss or gradient: the step was not applied.
    #[error("training diverged at step {step}: the loss is {loss} (the update was not applied)")]
    Diverged {
        /// Step index.
        step: u32,
        /// The loss value.
        loss: f64,
    },
}

/// One training sample: (x_0, t, z) for batch index `i` of step `step` (ARCHITECTURE.md §5: drawn
/// from the mixture parameters only, so a shader can reproduce it).
pub fn draw_sample(
    mixture: &GaussianMixture,
    rng: &CounterRng,
    t_eps: f64,
    step: u32,
    i: u32,
) -> (Vec2, f64, Vec2) {
    let b = rng.bits(step, i, stream::DATA);
    let u_comp = crate::sim::rng::unit_closed_open(b[0]);
    let u_t = crate::sim::rng::unit_closed_open(b[1]);
    let x0 = mixture.sample_with(u_comp, box_muller(b[2], b[3]));
    let t = t_eps + (1.0 - t_eps) * u_t;
    let z = rng.normal2(step, i, stream::NOISE);
    (x0, t, z)
}

/// A CPU trainer.
#[derive(Clone, Debug)]
pub struct Trainer {
    /// The network being trained (current weights).
    pub net: ScoreNet,
    /// The data distribution (may be replaced between steps, e.g. while dragging).
    pub mixture: GaussianMixture,
    /// Settings.
    pub config: TrainConfig,
    adam: Adam,
    rng: CounterRng,
    step: u32,
    ws: MlpWorkspace,
    grad: Vec<f32>,
    input: Vec<f32>,
    d_out: Vec<f32>,
    x0: Vec<Vec2>,
    t: Vec<f64>,
    z: Vec<Vec2>,
}

impl Trainer {
    /// A trainer for `net` on `mixture`.
    pub fn new(net: ScoreNet, mixture: GaussianMixture, config: TrainConfig) -> Self {
        let adam = Adam::new(config.adam, &net.mlp.params);
        let n = net.mlp.params.len();
        Self {
            rng: CounterRng::new(config.seed),
            net,
            mixture,
            config,
            adam,
            step: 0,
            ws: MlpWorkspace::default(),
            grad: vec![0.0; n],
            input: Vec::new(),
            d_out: Vec::new(),
            x0: Vec::new(),
            t: Vec::new(),
            z: Vec::new(),
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// One step; returns the batch loss. A non-finite loss or gradient is refused and the
    /// weights are left untouched.
    pub fn step(&mut self) -> Result<f64, TrainError> {
        let b = self.config.batch;
        self.x0.clear();
        self.t.clear();
        self.z.clear();
        for i in 0..b as u32 {
            let (x0, t, z) = draw_sample(&self.mixture, &self.rng, self.config.t_eps, self.step, i);
            self.x0.push(x0);
            self.t.push(t);
            self.z.push(z);
        }
        self.grad.iter_mut().for_each(|g| *g = 0.0);
        let loss = self.net.dsm_loss_and_grad(
            &self.x0,
            &self.t,
            &self.z,
            &mut self.grad,
            &mut self.ws,
            &mut self.input,
            &mut self.d_out,
        );
        let step = self.step;
        self.step += 1;
        if !loss.is_finite() || self.grad.iter().any(|g| !g.is_finite()) {
            return Err(TrainError::Diverged { step, loss });
        }
        self.adam.step(&mut self.net.mlp.params, &self.grad);
        Ok(loss)
    }

    /// The network with the EMA weights (what sampling and evaluation use).
    pub fn ema_net(&self) -> ScoreNet {
        let mut n = self.net.clone();
        n.mlp.params.clone_from(&self.adam.ema);
        n
    }

    /// Change the learning rate (e.g. after a divergence).
    pub fn set_lr(&mut self, lr: f32) {
        self.config.adam.lr = lr;
        self.adam.config.lr = lr;
    }

    /// Divergence recovery (the refused step left the last good weights): lower the learning
    /// rate ([`lowered_lr`]) and say so.
    pub fn recover(&mut self, e: &TrainError) -> String {
        let lr = lowered_lr(self.config.adam.lr);
        self.set_lr(lr);
        format!("{e}; lowered the learning rate to {lr:.1e}")
    }
}

/// The learning rate after a divergence: halved. Every trainer (CPU, GPU, CLI) recovers
/// this way, keeping the last good weights.
pub fn lowered_lr(lr: f32) -> f32 {
    lr * 0.5
}

//! DSM training: every step draws a fresh batch from the mixture with the counter RNG
//! (x_0 ~ p_data, t ~ U(ε_t, 1), z ~ N(0, I)), takes the loss E‖ε_θ(α x_0 + s z, t) − z‖²
//! and its gradient, and applies Adam. Batch draw i of step n uses only
//! `(seed, n, i)`, so the GPU trainer can draw the same batch in-shader.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::sim::adam::{Adam, AdamConfig};
use crate::sim::mixture::GaussianMixture;
use crate::sim::mlp::MlpWorkspace;
use crate::sim::model::ScoreNet;
use crate::sim::par;
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

/// Samples per piece of a training batch. A batch of `b` samples is split into
/// ⌈b / PIECE⌉ pieces that run on separate cores ([`crate::sim::par`]); each piece draws its
/// own samples and computes its share of the loss and gradient, and the shares are added in
/// piece order. The split depends on the batch size only, so a seed trains to bit-identical
/// weights on any number of threads.
pub const PIECE: usize = 256;

/// One piece's scratch (kept between steps).
#[derive(Clone, Debug, Default)]
pub(crate) struct Piece {
    /// First batch index of the piece.
    pub(crate) start: u32,
    /// Samples in the piece.
    pub(crate) len: u32,
    pub(crate) ws: MlpWorkspace,
    pub(crate) grad: Vec<f32>,
    pub(crate) input: Vec<f32>,
    pub(crate) d_out: Vec<f32>,
    pub(crate) x0: Vec<Vec2>,
    pub(crate) t: Vec<f64>,
    pub(crate) z: Vec<Vec2>,
}

impl Piece {
    /// Empty the piece's draws (its scratch is kept).
    pub(crate) fn clear_draws(&mut self) {
        self.x0.clear();
        self.t.clear();
        self.z.clear();
    }

    /// The draws and the scratch, borrowed apart: (x0, t, z, grad, workspace, input, d_out).
    #[allow(clippy::type_complexity)]
    pub(crate) fn parts(
        &mut self,
    ) -> (
        &[Vec2],
        &[f64],
        &[Vec2],
        &mut [f32],
        &mut MlpWorkspace,
        &mut Vec<f32>,
        &mut Vec<f32>,
    ) {
        (
            &self.x0,
            &self.t,
            &self.z,
            &mut self.grad,
            &mut self.ws,
            &mut self.input,
            &mut self.d_out,
        )
    }
}

/// One step's batch of `batch` samples in pieces of [`PIECE`] on separate cores: `loss` fills
/// a piece (its `grad` zeroed to `grad`'s length; it adds its share, scaled by `inv_b` = 1 /
/// batch) and returns its share of the loss; the shares are added into `grad` and the loss in
/// piece order, whatever thread finished first. Every trainer (score and flow matching) steps
/// through this.
pub(crate) fn batch_step(
    pieces: &mut Vec<Piece>,
    batch: usize,
    grad: &mut [f32],
    loss: impl Fn(&mut Piece, f64) -> f64 + Sync,
) -> f64 {
    let n_pieces = batch.div_ceil(PIECE).max(1);
    pieces.resize_with(n_pieces, Piece::default);
    for (k, p) in pieces.iter_mut().enumerate() {
        p.start = (k * PIECE) as u32;
        p.len = (batch - k * PIECE).min(PIECE) as u32;
    }
    let n = grad.len();
    let inv_b = 1.0 / batch as f64;
    let losses = par::map(pieces, |p| {
        p.grad.clear();
        p.grad.resize(n, 0.0);
        loss(p, inv_b)
    });
    let total: f64 = losses.iter().sum();
    grad.copy_from_slice(&pieces[0].grad);
    for p in &pieces[1..] {
        for (g, d) in grad.iter_mut().zip(&p.grad) {
            *g += d;
        }
    }
    total
}

/// The pieces of a batch of `batch` samples.
pub fn piece_count(batch: usize) -> usize {
    batch.div_ceil(PIECE).max(1)
}

/// Pieces `range` of a batch of `batch` into `pieces` (one per piece of the range, each with
/// its gradient of length `n`), on separate cores; their losses.
fn run_pieces(
    pieces: &mut Vec<Piece>,
    batch: usize,
    range: Range<usize>,
    n: usize,
    loss: impl Fn(&mut Piece, f64) -> f64 + Sync,
) -> Vec<f64> {
    pieces.resize_with(range.len(), Piece::default);
    for (p, k) in pieces.iter_mut().zip(range) {
        p.start = (k * PIECE) as u32;
        p.len = (batch - k * PIECE).min(PIECE) as u32;
    }
    let inv_b = 1.0 / batch as f64;
    par::map(pieces, |p| {
        p.grad.clear();
        p.grad.resize(n, 0.0);
        loss(p, inv_b)
    })
}

/// The batch's loss and gradient from its pieces' shares, added in piece order (the one
/// order every trainer uses, so the result does not depend on where each piece ran).
fn add_in_order<'a>(
    losses: impl Iterator<Item = f64>,
    mut grads: impl Iterator<Item = &'a [f32]>,
    grad: &mut [f32],
) -> f64 {
    let total: f64 = losses.sum();
    match grads.next() {
        Some(first) => grad.copy_from_slice(first),
        None => grad.fill(0.0),
    }
    for d in grads {
        for (g, x) in grad.iter_mut().zip(d) {
            *g += x;
        }
    }
    total
}

/// One piece's share of a training step: its loss and its gradient (both already scaled by
/// 1 / batch). How a helper worker hands its pieces to the worker that trains
/// (`engine::shards`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PieceGrad {
    /// The piece's share of the batch loss.
    pub loss: f64,
    /// Its share of the gradient.
    pub grad: Vec<f32>,
}

/// Pieces `range` of step `step` of DSM training of `net` on `mixture` with `config`'s batch,
/// seed and ε_t: exactly the shares [`Trainer::step`] computes for them. `scratch` is kept
/// between calls.
pub(crate) fn dsm_pieces(
    net: &ScoreNet,
    mixture: &GaussianMixture,
    config: &TrainConfig,
    step: u32,
    range: Range<usize>,
    scratch: &mut Vec<Piece>,
) -> Vec<PieceGrad> {
    let rng = CounterRng::new(config.seed);
    let n = net.mlp.params.len();
    let losses = run_pieces(scratch, config.batch, range, n, |p, inv_b| {
        dsm_piece(net, mixture, &rng, config.t_eps, step, p, inv_b)
    });
    losses
        .into_iter()
        .zip(scratch.iter())
        .map(|(loss, p)| PieceGrad {
            loss,
            grad: p.grad.clone(),
        })
        .collect()
}

/// One piece of a DSM step: draw its samples, add its share of the gradient.
fn dsm_piece(
    net: &ScoreNet,
    mixture: &GaussianMixture,
    rng: &CounterRng,
    t_eps: f64,
    step: u32,
    p: &mut Piece,
    inv_b: f64,
) -> f64 {
    p.clear_draws();
    for i in p.start..p.start + p.len {
        let (x0, t, z) = draw_sample(mixture, rng, t_eps, step, i);
        p.x0.push(x0);
        p.t.push(t);
        p.z.push(z);
    }
    let (x0, t, z, grad, ws, input, d_out) = p.parts();
    net.dsm_part(x0, t, z, inv_b, grad, ws, input, d_out)
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
    grad: Vec<f32>,
    pieces: Vec<Piece>,
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
            grad: vec![0.0; n],
            pieces: Vec::new(),
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// One step; returns the batch loss. A non-finite loss or gradient is refused and the
    /// weights are left untouched.
    pub fn step(&mut self) -> Result<f64, TrainError> {
        let (net, mixture, rng) = (&self.net, &self.mixture, &self.rng);
        let (t_eps, step) = (self.config.t_eps, self.step);
        let loss = batch_step(
            &mut self.pieces,
            self.config.batch,
            &mut self.grad,
            // The piece's body written out here rather than a call of `dsm_piece` (same
            // arithmetic): measured in the page's Web Worker (Chromium 156, 2 cores), the call
            // gave 50–56 steps/s after the first minute against 64 for this form, which V8
            // tiers up better; the helpers' `dsm_pieces` path showed no such loss.
            |p, inv_b| {
                p.clear_draws();
                for i in p.start..p.start + p.len {
                    let (x0, t, z) = draw_sample(mixture, rng, t_eps, step, i);
                    p.x0.push(x0);
                    p.t.push(t);
                    p.z.push(z);
                }
                let (x0, t, z, grad, ws, input, d_out) = p.parts();
                net.dsm_part(x0, t, z, inv_b, grad, ws, input, d_out)
            },
        );
        let step = self.step;
        self.step += 1;
        if !loss.is_finite() || self.grad.iter().any(|g| !g.is_finite()) {
            return Err(TrainError::Diverged { step, loss });
        }
        self.adam.step(&mut self.net.mlp.params, &self.grad);
        Ok(loss)
    }

    /// Step [`Self::steps`] from every piece's share, computed anywhere ([`dsm_pieces`]), in
    /// piece order: the same weights as [`Self::step`], bit for bit. `None` (nothing changed)
    /// unless there is one share per piece of the batch.
    pub fn step_from(&mut self, shares: &[PieceGrad]) -> Option<Result<f64, TrainError>> {
        let n = self.grad.len();
        if shares.len() != piece_count(self.config.batch)
            || shares.iter().any(|s| s.grad.len() != n)
        {
            return None;
        }
        let loss = add_in_order(
            shares.iter().map(|s| s.loss),
            shares.iter().map(|s| s.grad.as_slice()),
            &mut self.grad,
        );
        Some(self.apply(loss))
    }

    /// Pieces `range` of the next step, computed here (a worker's own share of a step split
    /// over a pool).
    pub fn own_pieces(&mut self, range: Range<usize>) -> Vec<PieceGrad> {
        let (net, mixture, config) = (&self.net, &self.mixture, &self.config);
        dsm_pieces(net, mixture, config, self.step, range, &mut self.pieces)
    }

    /// Count the step and apply Adam to the gradient in `self.grad` (refused if not finite).
    fn apply(&mut self, loss: f64) -> Result<f64, TrainError> {
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

    /// Continue from `params` as the weights and their EMA (Adam's moments are kept): how an
    /// engine that only samples follows another engine's network (`engine::split`). False
    /// (nothing changed) if `params` has another length than the network.
    pub fn load_weights(&mut self, params: &[f32]) -> bool {
        if params.len() != self.net.mlp.params.len() {
            return false;
        }
        self.net.mlp.params.copy_from_slice(params);
        self.adam.ema.copy_from_slice(params);
        true
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

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::sim::mixture::{presets, GaussianMixture};
    use crate::sim::model::NetConfig;
    use crate::sim::sde::{Sde, SdeKind};

    /// A trainer on the ring preset; width 24 and a ragged batch (two full pieces and a
    /// partial one).
    fn trainer(batch: usize) -> Trainer {
        let spec = presets::by_name("ring8").expect("ring8 is a preset");
        let m = GaussianMixture::from_spec(&spec).expect("ring8 is valid");
        let sde = Sde::for_mixture(SdeKind::Vp, &m);
        let cfg = NetConfig {
            width: 24,
            depth: 2,
            data_std: m.data_std(),
            ..NetConfig::default()
        };
        let net = ScoreNet::new(cfg, sde).expect("valid net");
        let tc = TrainConfig {
            batch,
            seed: 7,
            ..TrainConfig::default()
        };
        Trainer::new(net, m, tc)
    }

    fn train_on(threads: usize, steps: usize) -> (Vec<f64>, Vec<f32>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            let mut tr = trainer(2 * PIECE + 77);
            let losses = (0..steps).map(|_| tr.step().expect("finite")).collect();
            (losses, tr.net.mlp.params.clone())
        })
    }

    #[test]
    fn pieces_give_the_same_weights_on_any_number_of_threads() {
        let one = train_on(1, 5);
        assert_eq!(one, train_on(2, 5), "1 vs 2 threads");
        assert_eq!(one, train_on(5, 5), "1 vs 5 threads");
    }

    #[test]
    fn shares_computed_apart_give_the_same_weights() {
        // A step from its pieces' shares computed in any grouping (as workers of a pool
        // would) is the plain step, bit for bit.
        let b = 2 * PIECE + 77;
        let mut plain = trainer(b);
        let mut apart = trainer(b);
        let mut scratch = Vec::new();
        for step in 0..4 {
            let want = plain.step().expect("finite");
            let own = apart.own_pieces(0..1);
            let (net, m, c) = (&apart.net, &apart.mixture, &apart.config);
            let rest = dsm_pieces(net, m, c, step, 1..3, &mut scratch);
            let shares: Vec<PieceGrad> = own.into_iter().chain(rest).collect();
            assert!(
                apart.step_from(&shares[..2]).is_none(),
                "a missing piece is refused"
            );
            let got = apart
                .step_from(&shares)
                .expect("every piece")
                .expect("finite");
            assert_eq!(got.to_bits(), want.to_bits(), "step {step}: loss");
            assert_eq!(apart.net.mlp.params, plain.net.mlp.params, "step {step}");
        }
        assert_eq!(apart.ema_net().mlp.params, plain.ema_net().mlp.params);
    }

    #[test]
    fn pieces_add_up_to_the_whole_batch() {
        // The pieces' loss and gradient against one whole-batch pass on the same draw: equal
        // up to f32 summation order (relative 1e-5 of the gradient's scale).
        let b = 2 * PIECE + 77;
        let mut tr = trainer(b);
        let whole = tr.clone();
        let loss = tr.step().expect("finite");
        let (mut x0, mut t, mut z) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..b as u32 {
            let (a, s, n) = draw_sample(&whole.mixture, &whole.rng, whole.config.t_eps, 0, i);
            x0.push(a);
            t.push(s);
            z.push(n);
        }
        let mut grad = vec![0.0f32; tr.grad.len()];
        let mut ws = MlpWorkspace::default();
        let (mut input, mut d_out) = (Vec::new(), Vec::new());
        let loss_whole = whole
            .net
            .dsm_loss_and_grad(&x0, &t, &z, &mut grad, &mut ws, &mut input, &mut d_out);
        assert!(
            (loss - loss_whole).abs() <= 1e-6 * loss_whole,
            "{loss} vs {loss_whole}"
        );
        let scale = grad.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        for (a, b) in tr.grad.iter().zip(&grad) {
            assert!((a - b).abs() <= 1e-5 * scale, "gradient {a} vs {b}");
        }
    }
}

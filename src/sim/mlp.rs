//! A plain SiLU MLP in f32 with batched forward/backward and a forward-mode Jacobian.
//!
//! Parameter layout (shared with the GPU engine): for each layer ℓ in order,
//! the weights `W_ℓ` (out × in, row-major) followed by the biases `b_ℓ` (out).
//! Hidden layers apply SiLU(u) = u·sigmoid(u); the output layer is linear.

use serde::{Deserialize, Serialize};

use crate::sim::gemm::{sgemm, View};

/// Layer sizes of an MLP: `n_in → width (× depth hidden layers) → n_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpShape {
    /// Input features.
    pub n_in: usize,
    /// Hidden width.
    pub width: usize,
    /// Number of hidden layers (≥ 1).
    pub depth: usize,
    /// Outputs.
    pub n_out: usize,
}

impl MlpShape {
    /// (fan_in, fan_out) of every linear layer, input to output.
    pub fn layers(&self) -> Vec<(usize, usize)> {
        let mut v = Vec::with_capacity(self.depth + 1);
        v.push((self.n_in, self.width));
        for _ in 1..self.depth {
            v.push((self.width, self.width));
        }
        v.push((self.width, self.n_out));
        v
    }

    /// Total parameter count.
    pub fn n_params(&self) -> usize {
        self.layers().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Offset of each layer's weights in the flat parameter vector.
    pub fn offsets(&self) -> Vec<usize> {
        let mut off = 0;
        self.layers()
            .iter()
            .map(|(i, o)| {
                let here = off;
                off += i * o + o;
                here
            })
            .collect()
    }

    /// Multiply–adds of one forward pass of one sample.
    pub fn flops_per_forward(&self) -> usize {
        2 * self.layers().iter().map(|(i, o)| i * o).sum::<usize>()
    }
}

/// e^x in f32 without a libm call, so that the activation loops vectorise (SSE/AVX natively,
/// simd128 on wasm): Cephes' `expf` (round x·log₂e to n, reduce r = x − n·ln 2 in two parts,
/// degree-6 polynomial, scale by 2ⁿ through the exponent bits). Relative error ≤ 2e-7 on
/// [−87, 88] (tested against `f32::exp`); the argument is clamped there, NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // The low bits of `shifted` hold n + 2²² (no float → int conversion: it would not
    // vectorise): 2ⁿ has the exponent bits n + 127.
    let two_n = (shifted
        .to_bits()
        .wrapping_sub(0x4B40_0000)
        .wrapping_add(127))
        << 23;
    y * f32::from_bits(two_n)
}

/// The logistic sigmoid σ(u) = 1 / (1 + e^−u).
#[inline(always)]
pub fn sigmoid(u: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-u))
}

/// SiLU.
#[inline]
pub fn silu(u: f32) -> f32 {
    u * sigmoid(u)
}

/// d SiLU / du = σ(u) (1 + u (1 − σ(u))).
#[inline]
pub fn silu_grad(u: f32) -> f32 {
    silu_grad_from(u, sigmoid(u))
}

/// d SiLU / du from u and σ(u) (the forward pass keeps σ for the backward pass).
#[inline(always)]
fn silu_grad_from(u: f32, s: f32) -> f32 {
    s * (1.0 + u * (1.0 - s))
}

/// Dot product with 8 independent accumulators (lets LLVM vectorise; the GPU engine sums in
/// the same lane order when it mirrors this).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[inline]
fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Scratch buffers of a batched forward/backward pass (reused between steps).
#[derive(Clone, Debug, Default)]
pub struct MlpWorkspace {
    batch: usize,
    /// Per layer: layer input (activations), batch × fan_in.
    inputs: Vec<Vec<f32>>,
    /// Per hidden layer: pre-activations, batch × width.
    pre: Vec<Vec<f32>>,
    /// Per hidden layer: σ(pre-activation), batch × width (reused by the backward pass).
    sig: Vec<Vec<f32>>,
    /// Output, batch × n_out.
    out: Vec<f32>,
    /// Backward scratch.
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
}

/// The two products of a layer's backward pass, over the batch: the weight gradient
/// `gW += δᵀ X` and the input gradient `δ_prev = δ W` (before the SiLU derivative).
trait LayerGrads {
    fn weight_grad(&self, delta: &[f32], x: &[f32], gw: &mut [f32], fan_in: usize, fan_out: usize);
    fn input_grad(&self, delta: &[f32], w: &[f32], dp: &mut [f32], fan_in: usize, fan_out: usize);
}

/// Per-sample scalar loops (the reference).
struct Reference;

impl LayerGrads for Reference {
    fn weight_grad(&self, delta: &[f32], x: &[f32], gw: &mut [f32], fan_in: usize, fan_out: usize) {
        for (xs, ds) in x.chunks_exact(fan_in).zip(delta.chunks_exact(fan_out)) {
            for (o, &d) in ds.iter().enumerate() {
                axpy(d, xs, &mut gw[o * fan_in..(o + 1) * fan_in]);
            }
        }
    }

    fn input_grad(&self, delta: &[f32], w: &[f32], dp: &mut [f32], fan_in: usize, fan_out: usize) {
        for (ds, dps) in delta.chunks_exact(fan_out).zip(dp.chunks_exact_mut(fan_in)) {
            for (o, &d) in ds.iter().enumerate() {
                axpy(d, &w[o * fan_in..(o + 1) * fan_in], dps);
            }
        }
    }
}

/// Batch-major blocked products (`sim::gemm`).
struct Blocked;

impl LayerGrads for Blocked {
    fn weight_grad(&self, delta: &[f32], x: &[f32], gw: &mut [f32], fan_in: usize, fan_out: usize) {
        let batch = delta.len() / fan_out;
        let dt = View::transposed(delta, fan_out);
        sgemm(
            fan_out,
            batch,
            fan_in,
            dt,
            View::rows(x, fan_in),
            1.0,
            gw,
            fan_in,
        );
    }

    fn input_grad(&self, delta: &[f32], w: &[f32], dp: &mut [f32], fan_in: usize, fan_out: usize) {
        let batch = delta.len() / fan_out;
        let (d, wv) = (View::rows(delta, fan_out), View::rows(w, fan_in));
        sgemm(batch, fan_out, fan_in, d, wv, 0.0, dp, fan_in);
    }
}

/// An MLP: its shape and flat parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    /// Layer sizes.
    pub shape: MlpShape,
    /// Flat parameters (see module docs for the layout).
    pub params: Vec<f32>,
}

impl Mlp {
    /// Batched forward pass; `input` is batch × n_in row-major. Returns batch × n_out.
    /// The blocked kernels ([`Self::forward_blocked`]; wasm simd128 micro-kernels in the page).
    pub fn forward<'w>(&self, input: &[f32], batch: usize, ws: &'w mut MlpWorkspace) -> &'w [f32] {
        self.forward_blocked(input, batch, ws)
    }

    /// Backward pass after [`Self::forward`]: given dL/d(output) (batch × n_out),
    /// accumulates dL/dθ into `grad` (same layout as `params`), with the blocked kernels.
    pub fn backward(&self, d_out: &[f32], ws: &mut MlpWorkspace, grad: &mut [f32]) {
        self.backward_blocked(d_out, ws, grad);
    }

    /// The forward pass as batch-major matrix products (`sim::gemm`): each layer is one
    /// `X Wᵀ` on top of the broadcast bias, then SiLU.
    pub fn forward_blocked<'w>(
        &self,
        input: &[f32],
        batch: usize,
        ws: &'w mut MlpWorkspace,
    ) -> &'w [f32] {
        self.forward_with(input, batch, ws, |x, w, b, dst, fan_in, fan_out| {
            for row in dst.chunks_exact_mut(fan_out) {
                row.copy_from_slice(b);
            }
            let batch = dst.len() / fan_out;
            let wt = View::transposed(w, fan_in);
            sgemm(
                batch,
                fan_in,
                fan_out,
                View::rows(x, fan_in),
                wt,
                1.0,
                dst,
                fan_out,
            );
        })
    }

    /// The backward pass as batch-major matrix products: the weight gradient δᵀX and the
    /// input gradient δW per layer.
    pub fn backward_blocked(&self, d_out: &[f32], ws: &mut MlpWorkspace, grad: &mut [f32]) {
        self.backward_with(d_out, ws, grad, &Blocked);
    }

    /// The scalar reference forward pass (per-sample dot products): what the blocked path is
    /// tested against.
    pub fn forward_reference<'w>(
        &self,
        input: &[f32],
        batch: usize,
        ws: &'w mut MlpWorkspace,
    ) -> &'w [f32] {
        self.forward_with(input, batch, ws, |x, w, b, dst, fan_in, fan_out| {
            for (xs, out) in x.chunks_exact(fan_in).zip(dst.chunks_exact_mut(fan_out)) {
                for o in 0..fan_out {
                    out[o] = b[o] + dot(&w[o * fan_in..(o + 1) * fan_in], xs);
                }
            }
        })
    }

    /// The scalar reference backward pass (after [`Self::forward_reference`]).
    pub fn backward_reference(&self, d_out: &[f32], ws: &mut MlpWorkspace, grad: &mut [f32]) {
        self.backward_with(d_out, ws, grad, &Reference);
    }

    /// The forward pass with `linear(x, W, b, out, fan_in, fan_out)` computing one layer's
    /// `out = x Wᵀ + b` over the batch.
    fn forward_with<'w>(
        &self,
        input: &[f32],
        batch: usize,
        ws: &'w mut MlpWorkspace,
        linear: impl Fn(&[f32], &[f32], &[f32], &mut [f32], usize, usize),
    ) -> &'w [f32] {
        let layers = self.shape.layers();
        let offsets = self.shape.offsets();
        ws.batch = batch;
        ws.inputs.resize(layers.len(), Vec::new());
        ws.pre.resize(layers.len() - 1, Vec::new());
        ws.sig.resize(layers.len() - 1, Vec::new());
        ws.inputs[0].clear();
        ws.inputs[0].extend_from_slice(&input[..batch * self.shape.n_in]);
        for (l, (&(fan_in, fan_out), &off)) in layers.iter().zip(&offsets).enumerate() {
            let w = &self.params[off..off + fan_in * fan_out];
            let b = &self.params[off + fan_in * fan_out..off + fan_in * fan_out + fan_out];
            let last = l + 1 == layers.len();
            let (head, tail) = ws.inputs.split_at_mut(l + 1);
            let dst: &mut Vec<f32> = if last { &mut ws.out } else { &mut ws.pre[l] };
            dst.resize(batch * fan_out, 0.0);
            linear(&head[l], w, b, dst, fan_in, fan_out);
            if !last {
                let next = &mut tail[0];
                next.resize(batch * fan_out, 0.0);
                let sig = &mut ws.sig[l];
                sig.resize(batch * fan_out, 0.0);
                for ((n, s), &p) in next.iter_mut().zip(sig.iter_mut()).zip(&ws.pre[l]) {
                    *s = sigmoid(p);
                    *n = p * *s;
                }
            }
        }
        &ws.out
    }

    /// The backward pass with `k` computing each layer's products.
    fn backward_with(
        &self,
        d_out: &[f32],
        ws: &mut MlpWorkspace,
        grad: &mut [f32],
        k: &dyn LayerGrads,
    ) {
        let layers = self.shape.layers();
        let offsets = self.shape.offsets();
        let batch = ws.batch;
        ws.delta.clear();
        ws.delta
            .extend_from_slice(&d_out[..batch * self.shape.n_out]);
        for l in (0..layers.len()).rev() {
            let (fan_in, fan_out) = layers[l];
            let off = offsets[l];
            let (gw, gb) =
                grad[off..off + fan_in * fan_out + fan_out].split_at_mut(fan_in * fan_out);
            for row in ws.delta.chunks_exact(fan_out) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            k.weight_grad(&ws.delta, &ws.inputs[l], gw, fan_in, fan_out);
            if l == 0 {
                break;
            }
            // δ_{ℓ−1} = (δ_ℓ W_ℓ) ⊙ SiLU'(pre_{ℓ−1})
            let w = &self.params[off..off + fan_in * fan_out];
            ws.delta_prev.clear();
            ws.delta_prev.resize(batch * fan_in, 0.0);
            k.input_grad(&ws.delta, w, &mut ws.delta_prev, fan_in, fan_out);
            let (pre, sig) = (&ws.pre[l - 1], &ws.sig[l - 1]);
            for ((d, &p), &s) in ws.delta_prev.iter_mut().zip(pre).zip(sig) {
                *d *= silu_grad_from(p, s);
            }
            std::mem::swap(&mut ws.delta, &mut ws.delta_prev);
        }
    }

    /// [`Self::forward_jvp`] for a batch, as blocked products: per layer U = H Wᵀ + b over the
    /// batch and dU = dH Wᵀ over the batch's `k` tangents each, then SiLU and its derivative.
    /// `input` is batch × n_in; `tangents` is (batch · k) × n_in, sample i's tangent j in row
    /// i·k + j. Returns (batch × n_out outputs, (batch · k) × n_out Jacobian-vector products).
    pub fn forward_jvp_batch(
        &self,
        input: &[f32],
        tangents: &[f32],
        batch: usize,
        k: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let layers = self.shape.layers();
        let offsets = self.shape.offsets();
        let mut h = input[..batch * self.shape.n_in].to_vec();
        let mut dh = tangents[..batch * k * self.shape.n_in].to_vec();
        for (l, (&(fan_in, fan_out), &off)) in layers.iter().zip(&offsets).enumerate() {
            let w = &self.params[off..off + fan_in * fan_out];
            let b = &self.params[off + fan_in * fan_out..off + fan_in * fan_out + fan_out];
            let wt = View::transposed(w, fan_in);
            let mut u: Vec<f32> = b.iter().copied().cycle().take(batch * fan_out).collect();
            sgemm(
                batch,
                fan_in,
                fan_out,
                View::rows(&h, fan_in),
                wt,
                1.0,
                &mut u,
                fan_out,
            );
            let mut du = vec![0.0f32; batch * k * fan_out];
            let rows = batch * k;
            sgemm(
                rows,
                fan_in,
                fan_out,
                View::rows(&dh, fan_in),
                wt,
                0.0,
                &mut du,
                fan_out,
            );
            if l + 1 < layers.len() {
                for (ui, dui) in u
                    .chunks_exact_mut(fan_out)
                    .zip(du.chunks_exact_mut(k * fan_out))
                {
                    for (o, uo) in ui.iter_mut().enumerate() {
                        let s = sigmoid(*uo);
                        let gr = silu_grad_from(*uo, s);
                        for j in 0..k {
                            dui[j * fan_out + o] *= gr;
                        }
                        *uo *= s;
                    }
                }
            }
            h = u;
            dh = du;
        }
        (h, dh)
    }

    /// One sample's output and its Jacobian with respect to the input along `k` tangent
    /// directions (`tangents` is k × n_in). Returns (output, k × n_out Jacobian-vector products).
    pub fn forward_jvp(&self, input: &[f32], tangents: &[f32], k: usize) -> (Vec<f32>, Vec<f32>) {
        let layers = self.shape.layers();
        let offsets = self.shape.offsets();
        let mut h = input.to_vec();
        let mut dh = tangents.to_vec();
        for (l, (&(fan_in, fan_out), &off)) in layers.iter().zip(&offsets).enumerate() {
            let w = &self.params[off..off + fan_in * fan_out];
            let b = &self.params[off + fan_in * fan_out..off + fan_in * fan_out + fan_out];
            let mut u = vec![0.0f32; fan_out];
            let mut du = vec![0.0f32; k * fan_out];
            for o in 0..fan_out {
                let row = &w[o * fan_in..(o + 1) * fan_in];
                u[o] = b[o] + dot(row, &h);
                for j in 0..k {
                    du[j * fan_out + o] = dot(row, &dh[j * fan_in..(j + 1) * fan_in]);
                }
            }
            if l + 1 < layers.len() {
                for o in 0..fan_out {
                    let gr = silu_grad(u[o]);
                    for j in 0..k {
                        du[j * fan_out + o] *= gr;
                    }
                    u[o] = silu(u[o]);
                }
            }
            h = u;
            dh = du;
        }
        (h, dh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::StreamRng;

    fn random_mlp(shape: MlpShape, seed: u32) -> Mlp {
        let mut r = StreamRng::new(seed, 0);
        let params = (0..shape.n_params())
            .map(|_| (r.normal2().x * 0.5) as f32)
            .collect();
        Mlp { shape, params }
    }

    #[test]
    fn exp_f32_matches_libm() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (a, b) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 2e-7, "exp_f32 relative error {worst:e}");
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(-1000.0), exp_f32(-87.0));
        assert!(silu(-1000.0).abs() < 1e-30 && silu(1000.0) == 1000.0);
        assert!(silu(f32::NAN).is_nan() && silu_grad(f32::NAN).is_nan());
    }

    /// Loss L = Σ c ⊙ out for fixed random c: dL/dθ by backprop vs central differences in f64-ish.
    #[test]
    fn backward_matches_finite_differences() {
        let shape = MlpShape {
            n_in: 5,
            width: 7,
            depth: 3,
            n_out: 2,
        };
        let mlp = random_mlp(shape, 1);
        let batch = 3;
        let mut r = StreamRng::new(9, 0);
        let input: Vec<f32> = (0..batch * shape.n_in)
            .map(|_| r.normal2().x as f32)
            .collect();
        let c: Vec<f32> = (0..batch * 2).map(|_| r.normal2().x as f32).collect();
        let loss = |m: &Mlp| -> f64 {
            let mut ws = MlpWorkspace::default();
            let out = m.forward(&input, batch, &mut ws);
            out.iter()
                .zip(&c)
                .map(|(o, c)| f64::from(*o) * f64::from(*c))
                .sum()
        };
        let mut ws = MlpWorkspace::default();
        mlp.forward(&input, batch, &mut ws);
        let mut grad = vec![0.0f32; shape.n_params()];
        mlp.backward(&c, &mut ws, &mut grad);
        let mut worst: f64 = 0.0;
        for (i, &g) in grad.iter().enumerate() {
            let h = 1e-2f32;
            let mut p = mlp.clone();
            p.params[i] += h;
            let lp = loss(&p);
            p.params[i] -= 2.0 * h;
            let lm = loss(&p);
            let fd = (lp - lm) / (2.0 * f64::from(h));
            let err = (fd - f64::from(g)).abs() / (1e-2 + fd.abs());
            worst = worst.max(err);
        }
        assert!(worst < 2e-2, "worst relative gradient error {worst}");
    }

    /// The blocked kernels against the scalar reference on ragged shapes (batch and width not
    /// multiples of any tile, one-wide layers): outputs and every gradient entry within 1e-5
    /// of the largest magnitude of their vector (f32 summed in another order, with FMA).
    #[test]
    fn blocked_kernels_match_the_scalar_reference() {
        for (n_in, width, depth, batch, seed) in [
            (5, 7, 3, 3, 1),
            (23, 29, 2, 37, 2),
            (2, 64, 4, 130, 3),
            (1, 1, 1, 1, 4),
        ] {
            let shape = MlpShape {
                n_in,
                width,
                depth,
                n_out: 2,
            };
            let mlp = random_mlp(shape, seed);
            let mut r = StreamRng::new(seed + 10, 0);
            let input: Vec<f32> = (0..batch * n_in).map(|_| r.normal2().x as f32).collect();
            let d_out: Vec<f32> = (0..batch * 2).map(|_| r.normal2().x as f32).collect();
            let (mut wr, mut wb) = (MlpWorkspace::default(), MlpWorkspace::default());
            let out_r = mlp.forward_reference(&input, batch, &mut wr).to_vec();
            let out_b = mlp.forward_blocked(&input, batch, &mut wb).to_vec();
            // Worst |difference| relative to the largest magnitude of the vector: the sums
            // cancel (outputs are O(1) differences of O(10) terms), so the rounding of a
            // different summation order and of fused multiply-adds shows relative to the
            // terms, not to each result.
            let worst = |x: &[f32], y: &[f32]| {
                let scale = x.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-30);
                x.iter()
                    .zip(y)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
                    / scale
            };
            let e_out = worst(&out_r, &out_b);
            let mut gr = vec![0.25f32; shape.n_params()];
            let mut gb = gr.clone();
            mlp.backward_reference(&d_out, &mut wr, &mut gr);
            mlp.backward_blocked(&d_out, &mut wb, &mut gb);
            let e_grad = worst(&gr, &gb);
            eprintln!(
                "({n_in}, {width}, {depth}, {batch}): output {e_out:.1e}, gradient {e_grad:.1e}"
            );
            assert!(
                e_out < 1e-5 && e_grad < 1e-5,
                "({n_in}, {width}, {depth}, {batch}): {e_out:.1e} / {e_grad:.1e}"
            );
        }
    }

    #[test]
    fn blocked_jvp_matches_the_per_sample_jvp() {
        // Ragged: 37 samples, width 19 (not multiples of the GEMM tiles), 2 tangents each.
        let shape = MlpShape {
            n_in: 5,
            width: 19,
            depth: 3,
            n_out: 2,
        };
        let mlp = random_mlp(shape, 11);
        let (batch, k) = (37, 2);
        let rng = crate::sim::rng::CounterRng::new(3);
        let input: Vec<f32> = (0..batch * 5)
            .map(|i| rng.normal2(0, i as u32, 0).x as f32)
            .collect();
        let tangents: Vec<f32> = (0..batch * k * 5)
            .map(|i| rng.normal2(1, i as u32, 0).x as f32)
            .collect();
        let (out, jvp) = mlp.forward_jvp_batch(&input, &tangents, batch, k);
        for i in 0..batch {
            let (o, j) = mlp.forward_jvp(
                &input[i * 5..(i + 1) * 5],
                &tangents[i * k * 5..(i + 1) * k * 5],
                k,
            );
            for (a, b) in out[i * 2..(i + 1) * 2].iter().zip(&o) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "output {a} vs {b}");
            }
            for (a, b) in jvp[i * k * 2..(i + 1) * k * 2].iter().zip(&j) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "jvp {a} vs {b}");
            }
        }
    }

    #[test]
    fn jvp_matches_finite_differences() {
        let shape = MlpShape {
            n_in: 4,
            width: 9,
            depth: 2,
            n_out: 2,
        };
        let mlp = random_mlp(shape, 2);
        let input = [0.3f32, -0.7, 1.1, 0.2];
        let tangents = [1.0f32, 0.0, 0.0, 0.0, 0.0, 0.5, -1.0, 0.25];
        let (out, jvp) = mlp.forward_jvp(&input, &tangents, 2);
        for j in 0..2 {
            let h = 1e-3f32;
            let plus: Vec<f32> = input
                .iter()
                .zip(&tangents[j * 4..])
                .map(|(x, d)| x + h * d)
                .collect();
            let minus: Vec<f32> = input
                .iter()
                .zip(&tangents[j * 4..])
                .map(|(x, d)| x - h * d)
                .collect();
            let (op, _) = mlp.forward_jvp(&plus, &tangents, 2);
            let (om, _) = mlp.forward_jvp(&minus, &tangents, 2);
            for o in 0..2 {
                let fd = (op[o] - om[o]) / (2.0 * h);
                assert!(
                    (fd - jvp[j * 2 + o]).abs() < 2e-2 * (1.0 + fd.abs()),
                    "{fd} vs {}",
                    jvp[j * 2 + o]
                );
            }
        }
        let mut ws = MlpWorkspace::default();
        let batched = mlp.forward(&input, 1, &mut ws);
        assert!((batched[0] - out[0]).abs() < 1e-5 && (batched[1] - out[1]).abs() < 1e-5);
    }
}

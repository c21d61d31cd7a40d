//! The noise-conditional score network s_θ(x, t) and its file format.
//!
//! Parameterisation (ARCHITECTURE.md §4: "predict the noise; score = −ε/std"): with
//! x_t = m + α (x_0 − m) + s z (m: the SDE frame's centre, `sim::sde`), let σ = s/α (the noise
//! level in data units), x̂ − m = (x − m)/α, c = √(σ² + d²) (d = data std) and
//! G = MLP(features). Then
//!
//!   s_θ(x, t) = (1/α) (−(x̂ − m)/c² + G/c),     ε_θ(x, t) = −s · s_θ(x, t).
//!
//! With G = 0 this is the exact score of a Gaussian N(m, d² I) fit to the data, so the
//! network only learns the residual, at unit scale at every noise level (the input is (x̂ − m)/c,
//! the "c_in" of Karras et al. 2022). Features: (x̂ − m)/c, the noise embedding
//! c_noise = ln(σ)/4, Gaussian Fourier features sin/cos(2π w_j c_noise) with fixed
//! w_j ~ N(0, time_scale²), and optionally Fourier features of (x̂ − m)/c.

use serde::{Deserialize, Serialize};

use crate::sim::mlp::{Mlp, MlpShape, MlpWorkspace};
use crate::sim::rng::{stream, CounterRng};
use crate::sim::score::ScoreModel;
use crate::sim::sde::{Sde, SdeKind};
use crate::sim::Vec2;

/// Network hyper-parameters (everything needed to rebuild it, bar the weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Hidden width.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Number of Fourier frequencies of the noise level (features = 2×).
    pub n_time_freqs: usize,
    /// Std of those frequencies.
    pub time_scale: f64,
    /// Number of Fourier frequencies of x (0 = off).
    pub n_x_freqs: usize,
    /// Std of the x frequencies.
    pub x_scale: f64,
    /// Data scale d used by the preconditioning.
    pub data_std: f64,
    /// Seed for the weight initialisation and the frequencies.
    pub seed: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            width: 128,
            depth: 3,
            n_time_freqs: 8,
            time_scale: 1.0,
            n_x_freqs: 0,
            x_scale: 1.0,
            data_std: 1.0,
            seed: 0,
        }
    }
}

/// Limits on loaded/requested configurations.
pub mod limits {
    /// Widest hidden layer.
    pub const MAX_WIDTH: usize = 1024;
    /// Most hidden layers.
    pub const MAX_DEPTH: usize = 8;
    /// Most Fourier frequencies (each).
    pub const MAX_FREQS: usize = 64;
}

/// Why a network or model file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value out of range.
    #[error("invalid network configuration: {0}")]
    BadConfig(String),
    /// The file is not a ScoreLab model or has the wrong version.
    #[error("not a ScoreLab model file (format {format:?}, version {version})")]
    WrongFormat {
        /// The `format` field found.
        format: String,
        /// The `version` field found.
        version: u32,
    },
    /// Weight count mismatch.
    #[error("model has {found} weights but its configuration needs {expected}")]
    WrongParamCount {
        /// Needed by the config.
        expected: usize,
        /// Present.
        found: usize,
    },
    /// NaN/inf weights.
    #[error("model weight {0} is not a finite number")]
    NonFinite(usize),
    /// JSON syntax/shape.
    #[error("model file is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl NetConfig {
    /// Check ranges.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::BadConfig(m));
        if self.width == 0 || self.width > limits::MAX_WIDTH {
            return bad(format!(
                "width {} must be in 1..={}",
                self.width,
                limits::MAX_WIDTH
            ));
        }
        if self.depth == 0 || self.depth > limits::MAX_DEPTH {
            return bad(format!(
                "depth {} must be in 1..={}",
                self.depth,
                limits::MAX_DEPTH
            ));
        }
        if self.n_time_freqs > limits::MAX_FREQS || self.n_x_freqs > limits::MAX_FREQS {
            return bad(format!("at most {} Fourier frequencies", limits::MAX_FREQS));
        }
        for (name, v) in [
            ("time_scale", self.time_scale),
            ("x_scale", self.x_scale),
            ("data_std", self.data_std),
        ] {
            if !v.is_finite() || v <= 0.0 || v > 1e4 {
                return bad(format!("{name} {v} must be a finite number in (0, 1e4]"));
            }
        }
        Ok(())
    }

    /// Network input size: (x̂ − m)/c (2), c_noise (1), time features, x features.
    pub fn n_inputs(&self) -> usize {
        3 + 2 * self.n_time_freqs + 2 * self.n_x_freqs
    }

    /// The MLP's shape.
    pub fn shape(&self) -> MlpShape {
        MlpShape {
            n_in: self.n_inputs(),
            width: self.width,
            depth: self.depth,
            n_out: 2,
        }
    }
}

impl NetConfig {
    /// The MLP with `params` (checked: their count and that each is finite) and the fixed
    /// Fourier frequencies of the noise level and of x, drawn from `seed`: what every network
    /// on this configuration (score or velocity) is built from.
    pub fn build(&self, params: Vec<f32>) -> Result<(Mlp, Vec<f64>, Vec<Vec2>), ModelError> {
        self.validate()?;
        let shape = self.shape();
        if params.len() != shape.n_params() {
            return Err(ModelError::WrongParamCount {
                expected: shape.n_params(),
                found: params.len(),
            });
        }
        if let Some(i) = params.iter().position(|p| !p.is_finite()) {
            return Err(ModelError::NonFinite(i));
        }
        let rng = CounterRng::new(self.seed);
        let time_freqs = (0..self.n_time_freqs as u32)
            .map(|j| rng.normal2(j, 0, stream::FOURIER).x * self.time_scale)
            .collect();
        let x_freqs = (0..self.n_x_freqs as u32)
            .map(|j| rng.normal2(j, 1, stream::FOURIER) * self.x_scale)
            .collect();
        Ok((Mlp { shape, params }, time_freqs, x_freqs))
    }
}

/// Fourier features sin/cos(2π w_j c) into `out[..nt]` and `out[nt..2 nt]` (nt = the number
/// of frequencies).
pub fn time_fourier(freqs: &[f64], c: f64, out: &mut [f32]) {
    let nt = freqs.len();
    for (j, w) in freqs.iter().enumerate() {
        let a = std::f64::consts::TAU * w * c;
        out[j] = a.sin() as f32;
        out[nt + j] = a.cos() as f32;
    }
}

/// Fourier features sin/cos(2π b_j·u) into `out[..nx]` and `out[nx..2 nx]`.
pub fn space_fourier(freqs: &[Vec2], u: Vec2, out: &mut [f32]) {
    let nx = freqs.len();
    for (j, b) in freqs.iter().enumerate() {
        let a = std::f64::consts::TAU * b.dot(&u);
        out[j] = a.sin() as f32;
        out[nx + j] = a.cos() as f32;
    }
}

/// Validate an SDE read from a file.
pub fn validate_sde(sde: &Sde) -> Result<(), ModelError> {
    let ok = |v: f64| v.is_finite() && v > 0.0 && v <= 1e4;
    if !(ok(sde.sigma_min) && ok(sde.sigma_max) && ok(sde.beta_min) && ok(sde.beta_max)) {
        return Err(ModelError::BadConfig(
            "SDE parameters must be finite positive numbers <= 1e4".into(),
        ));
    }
    if sde.sigma_min >= sde.sigma_max || sde.beta_min >= sde.beta_max {
        return Err(ModelError::BadConfig(
            "need sigma_min < sigma_max and beta_min < beta_max".into(),
        ));
    }
    if !(ok(sde.scale) && sde.center.iter().all(|c| c.is_finite() && c.abs() <= 1e6)) {
        return Err(ModelError::BadConfig(
            "the SDE's data frame needs a finite centre (|c| <= 1e6) and a scale in (0, 1e4]"
                .into(),
        ));
    }
    Ok(())
}

/// Per-(t) preconditioning coefficients.
#[derive(Clone, Copy, Debug)]
pub struct Precond {
    /// α(t).
    pub alpha: f64,
    /// s(t).
    pub std: f64,
    /// σ = s/α.
    pub sigma: f64,
    /// c = √(σ² + d²).
    pub c: f64,
}

/// The score network.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreNet {
    /// Hyper-parameters.
    pub config: NetConfig,
    /// The SDE it was trained for.
    pub sde: Sde,
    /// The MLP G.
    pub mlp: Mlp,
    time_freqs: Vec<f64>,
    x_freqs: Vec<Vec2>,
}

/// The model file: `{"format": "scorelab-model", "version": 1, "config": …, "sde": …, "params": […]}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always "scorelab-model".
    pub format: String,
    /// File version (1).
    pub version: u32,
    /// Network hyper-parameters.
    pub config: NetConfig,
    /// The SDE.
    pub sde: Sde,
    /// Training steps taken.
    #[serde(default)]
    pub train_steps: u64,
    /// Flat weights.
    pub params: Vec<f32>,
}

/// The `format` string of model files.
pub const MODEL_FORMAT: &str = "scorelab-model";

impl ScoreNet {
    /// A freshly initialised network (LeCun-normal hidden weights, a 0.1-scaled output
    /// layer, so G ≈ 0 and the initial field is the Gaussian fit).
    pub fn new(config: NetConfig, sde: Sde) -> Result<Self, ModelError> {
        config.validate()?;
        let shape = config.shape();
        let rng = CounterRng::new(config.seed);
        let mut params = vec![0.0f32; shape.n_params()];
        let layers = shape.layers();
        let n_layers = layers.len();
        for (l, ((fan_in, fan_out), off)) in layers.into_iter().zip(shape.offsets()).enumerate() {
            let scale = (1.0 / fan_in as f64).sqrt() * if l + 1 == n_layers { 0.1 } else { 1.0 };
            for i in 0..fan_in * fan_out {
                let idx = (off + i) as u32;
                params[off + i] = (rng.normal2(idx / 2, l as u32, stream::WEIGHTS)
                    [(idx % 2) as usize]
                    * scale) as f32;
            }
        }
        Self::with_params(config, sde, params)
    }

    /// A network with given weights (validated).
    pub fn with_params(config: NetConfig, sde: Sde, params: Vec<f32>) -> Result<Self, ModelError> {
        config.validate()?;
        validate_sde(&sde)?;
        let (mlp, time_freqs, x_freqs) = config.build(params)?;
        Ok(Self {
            config,
            sde,
            mlp,
            time_freqs,
            x_freqs,
        })
    }

    /// The fixed Fourier frequencies as the GPU reads them: [time (n_time_freqs) | x (2 × n_x_freqs)].
    pub fn fourier_consts(&self) -> Vec<f32> {
        let mut v: Vec<f32> = self.time_freqs.iter().map(|&w| w as f32).collect();
        v.extend(self.x_freqs.iter().flat_map(|b| [b.x as f32, b.y as f32]));
        v
    }

    /// Preconditioning at time t.
    pub fn precond(&self, t: f64) -> Precond {
        let (alpha, std) = self.sde.marginal(t);
        let sigma = std / alpha;
        let c = (sigma * sigma + self.config.data_std * self.config.data_std).sqrt();
        Precond {
            alpha,
            std,
            sigma,
            c,
        }
    }

    /// Write the input features for (x, t) into `out` (length `n_inputs`).
    pub fn features(&self, x: Vec2, p: &Precond, out: &mut [f32]) {
        self.time_features(p, out);
        self.space_features(x, p, out);
    }

    /// The features that depend on t only: c_noise and its Fourier features (`out[2..]`).
    fn time_features(&self, p: &Precond, out: &mut [f32]) {
        let c_noise = 0.25 * p.sigma.ln();
        out[2] = c_noise as f32;
        time_fourier(&self.time_freqs, c_noise, &mut out[3..]);
    }

    /// The features that depend on x: u = (x − m)/(α c) and its Fourier features.
    fn space_features(&self, x: Vec2, p: &Precond, out: &mut [f32]) {
        let u = (x - self.sde.center()) / (p.alpha * p.c);
        out[0] = u.x as f32;
        out[1] = u.y as f32;
        let base = 3 + 2 * self.time_freqs.len();
        space_fourier(&self.x_freqs, u, &mut out[base..]);
    }

    /// Score from the MLP output G: (1/α)(−(x̂ − m)/c² + G/c), x̂ − m = (x − m)/α.
    #[inline]
    pub fn score_from_output(&self, x: Vec2, g: Vec2, p: &Precond) -> Vec2 {
        (-(x - self.sde.center()) / (p.alpha * p.c * p.c) + g / p.c) / p.alpha
    }

    /// Mean DSM loss E‖ε_θ(x_t, t) − z‖² over a batch and its gradient (added to `grad`).
    /// `x0`, `t`, `z` are the batch; `ws`/`input`/`d_out` are scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn dsm_loss_and_grad(
        &self,
        x0: &[Vec2],
        t: &[f64],
        z: &[Vec2],
        grad: &mut [f32],
        ws: &mut MlpWorkspace,
        input: &mut Vec<f32>,
        d_out: &mut Vec<f32>,
    ) -> f64 {
        let inv_b = 1.0 / x0.len() as f64;
        self.dsm_part(x0, t, z, inv_b, grad, ws, input, d_out)
    }

    /// One piece of a batch: Σ_i inv_b·‖ε_θ − z‖² over the piece and its gradient (added to
    /// `grad`), with `inv_b` = 1 / (the whole batch's size), so that the pieces' losses and
    /// gradients add up to the batch mean ([`crate::sim::train::Trainer`] splits a batch into
    /// pieces that run on separate cores).
    #[allow(clippy::too_many_arguments)]
    pub fn dsm_part(
        &self,
        x0: &[Vec2],
        t: &[f64],
        z: &[Vec2],
        inv_b: f64,
        grad: &mut [f32],
        ws: &mut MlpWorkspace,
        input: &mut Vec<f32>,
        d_out: &mut Vec<f32>,
    ) -> f64 {
        let batch = x0.len();
        let n_in = self.config.n_inputs();
        input.resize(batch * n_in, 0.0);
        let mut pre = Vec::with_capacity(batch);
        let mut xt = Vec::with_capacity(batch);
        for i in 0..batch {
            let p = self.precond(t[i]);
            let x = self.sde.forward_mean(x0[i], p.alpha) + p.std * z[i];
            self.features(x, &p, &mut input[i * n_in..(i + 1) * n_in]);
            pre.push(p);
            xt.push(x);
        }
        let out = self.mlp.forward(input, batch, ws).to_vec();
        d_out.resize(batch * 2, 0.0);
        let mut loss = 0.0;
        for i in 0..batch {
            let p = &pre[i];
            let g = Vec2::new(f64::from(out[2 * i]), f64::from(out[2 * i + 1]));
            let eps = -p.std * self.score_from_output(xt[i], g, p);
            let r = eps - z[i];
            loss += r.norm_squared() * inv_b;
            // dε/dG = −s/(α c) = −σ/c.
            let k = -2.0 * inv_b * p.sigma / p.c;
            d_out[2 * i] = (k * r.x) as f32;
            d_out[2 * i + 1] = (k * r.y) as f32;
        }
        self.mlp.backward(d_out, ws, grad);
        loss
    }

    /// Serialise with the given weights.
    pub fn to_file(&self, train_steps: u64) -> ModelFile {
        ModelFile {
            format: MODEL_FORMAT.into(),
            version: 1,
            config: self.config.clone(),
            sde: self.sde,
            train_steps,
            params: self.mlp.params.clone(),
        }
    }

    /// Load and validate a model file's JSON text.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let f: ModelFile = serde_json::from_str(text)?;
        if f.format != MODEL_FORMAT || f.version != 1 {
            return Err(ModelError::WrongFormat {
                format: f.format,
                version: f.version,
            });
        }
        Self::with_params(f.config, f.sde, f.params)
    }

    /// The SDE family.
    pub fn sde_kind(&self) -> SdeKind {
        self.sde.kind
    }
}

/// Points per forward chunk: chunks run on separate cores ([`crate::sim::par`]) and bound
/// the scratch memory; every point's score is independent of the chunking.
const CHUNK: usize = 512;

thread_local! {
    /// Each thread's forward scratch for [`ScoreNet::score_batch`] (kept between calls:
    /// allocating and zeroing it per chunk cost more than the features).
    pub(crate) static SCRATCH: std::cell::RefCell<(MlpWorkspace, Vec<f32>)> = Default::default();
}

impl ScoreModel for ScoreNet {
    fn score_batch(&self, xs: &[Vec2], t: f64, out: &mut [Vec2]) {
        let p = self.precond(t);
        let n_in = self.config.n_inputs();
        // Every point has the same t: its features are computed once and copied.
        let mut time = vec![0.0f32; n_in];
        self.time_features(&p, &mut time);
        crate::sim::par::zip_chunks(xs, out, CHUNK, |xc, oc| {
            SCRATCH.with_borrow_mut(|(ws, input)| {
                input.resize(xc.len() * n_in, 0.0);
                for (row, x) in input.chunks_exact_mut(n_in).zip(xc) {
                    row.copy_from_slice(&time);
                    self.space_features(*x, &p, row);
                }
                let g = self.mlp.forward(input, xc.len(), ws);
                for (i, (o, x)) in oc.iter_mut().zip(xc).enumerate() {
                    let gv = Vec2::new(f64::from(g[2 * i]), f64::from(g[2 * i + 1]));
                    *o = self.score_from_output(*x, gv, &p);
                }
            });
        });
    }

    fn score_and_divergence(&self, x: Vec2, t: f64) -> (Vec2, f64) {
        let p = self.precond(t);
        let n_in = self.config.n_inputs();
        let mut input = vec![0.0f32; n_in];
        let mut tangents = vec![0.0f32; 2 * n_in];
        self.jvp_inputs(x, &p, &mut input, &mut tangents);
        let (g, jg) = self.mlp.forward_jvp(&input, &tangents, 2);
        self.score_and_div_from(x, &g, &jg, &p)
    }

    fn score_and_divergence_batch(&self, xs: &[Vec2], t: f64, out: &mut [(Vec2, f64)]) {
        let p = self.precond(t);
        let n_in = self.config.n_inputs();
        crate::sim::par::zip_chunks(xs, out, JVP_CHUNK, |xc, oc| {
            let mut input = vec![0.0f32; xc.len() * n_in];
            let mut tangents = vec![0.0f32; xc.len() * 2 * n_in];
            for ((x, row), tan) in xc
                .iter()
                .zip(input.chunks_exact_mut(n_in))
                .zip(tangents.chunks_exact_mut(2 * n_in))
            {
                self.jvp_inputs(*x, &p, row, tan);
            }
            let (g, jg) = self.mlp.forward_jvp_batch(&input, &tangents, xc.len(), 2);
            for (i, (o, x)) in oc.iter_mut().zip(xc).enumerate() {
                *o = self.score_and_div_from(*x, &g[2 * i..2 * i + 2], &jg[4 * i..4 * i + 4], &p);
            }
        });
    }
}

/// Points per chunk of [`ScoreNet::score_and_divergence_batch`] (3 GEMM rows per point).
const JVP_CHUNK: usize = 128;

impl ScoreNet {
    /// The features of x into `input` (n_in) and their tangents along e_x and e_y into
    /// `tangents` (2 × n_in): du/dx = I/(α c), and the x-Fourier features' chain rule.
    fn jvp_inputs(&self, x: Vec2, p: &Precond, input: &mut [f32], tangents: &mut [f32]) {
        let n_in = input.len();
        self.features(x, p, input);
        let k_u = 1.0 / (p.alpha * p.c);
        let u = (x - self.sde.center()) * k_u;
        tangents.fill(0.0);
        tangents[0] = k_u as f32;
        tangents[n_in + 1] = k_u as f32;
        let base = 3 + 2 * self.time_freqs.len();
        let nx = self.x_freqs.len();
        for (j, b) in self.x_freqs.iter().enumerate() {
            let a = std::f64::consts::TAU * b.dot(&u);
            for d in 0..2 {
                let da = std::f64::consts::TAU * b[d] * k_u;
                tangents[d * n_in + base + j] = (a.cos() * da) as f32;
                tangents[d * n_in + base + nx + j] = (-a.sin() * da) as f32;
            }
        }
    }

    /// The score and its divergence from the MLP output G (2) and its Jacobian-vector products
    /// along e_x and e_y (2 × 2).
    fn score_and_div_from(&self, x: Vec2, g: &[f32], jg: &[f32], p: &Precond) -> (Vec2, f64) {
        let gv = Vec2::new(f64::from(g[0]), f64::from(g[1]));
        let score = self.score_from_output(x, gv, p);
        // ∂s_d/∂x_d = (1/α)(−1/(α c²) + ∂G_d/∂x_d / c).
        let tr_jg = f64::from(jg[0]) + f64::from(jg[3]);
        let div = (2.0 * (-1.0 / (p.alpha * p.c * p.c)) + tr_jg / p.c) / p.alpha;
        (score, div)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(n_x_freqs: usize) -> ScoreNet {
        let cfg = NetConfig {
            width: 16,
            depth: 2,
            n_x_freqs,
            data_std: 2.0,
            seed: 5,
            ..NetConfig::default()
        };
        let mut n = ScoreNet::new(cfg, Sde::new(SdeKind::Vp, 10.0)).unwrap();
        // Make G far from zero so the test exercises the network part.
        for (i, p) in n.mlp.params.iter_mut().enumerate() {
            *p += 0.05 * ((i as f32) * 0.37).sin();
        }
        n
    }

    #[test]
    fn divergence_matches_finite_differences_of_the_score() {
        for nx in [0, 4] {
            let n = net(nx);
            for &t in &[0.01, 0.3, 0.9] {
                let x = Vec2::new(0.7, -1.3);
                let (_, div) = n.score_and_divergence(x, t);
                let h = 1e-3;
                let mut fd = 0.0;
                for d in 0..2 {
                    let mut e = Vec2::zeros();
                    e[d] = h;
                    fd += (n.score(x + e, t)[d] - n.score(x - e, t)[d]) / (2.0 * h);
                }
                assert!(
                    (div - fd).abs() < 2e-2 * (1.0 + fd.abs()),
                    "nx={nx} t={t}: {div} vs {fd}"
                );
            }
        }
    }

    /// A model file from before the SDE carried its data frame (no `center` / `scale`) loads
    /// in the frame it was trained in: the origin with unit scale.
    #[test]
    fn model_files_without_a_frame_load_at_the_origin() {
        let n = net(0);
        let mut v = serde_json::to_value(n.to_file(3)).unwrap();
        let sde = v["sde"].as_object_mut().unwrap();
        assert!(sde.remove("center").is_some() && sde.remove("scale").is_some());
        let back = ScoreNet::from_json(&v.to_string()).unwrap();
        assert_eq!((back.sde.center, back.sde.scale), ([0.0, 0.0], 1.0));
        assert_eq!(back, n);
        // A broken frame is refused with a message.
        for (key, bad) in [("scale", "-1.0"), ("scale", "0.0"), ("center", "[1e9, 0]")] {
            let mut v = serde_json::to_value(n.to_file(3)).unwrap();
            v["sde"][key] = serde_json::from_str(bad).unwrap();
            let err = ScoreNet::from_json(&v.to_string()).unwrap_err().to_string();
            assert!(err.contains("data frame"), "{key}={bad}: {err}");
        }
    }

    #[test]
    fn model_file_round_trips_and_rejects_corruption() {
        let n = net(2);
        let text = serde_json::to_string(&n.to_file(7)).unwrap();
        let back = ScoreNet::from_json(&text).unwrap();
        assert_eq!(back, n);
        let mut f = n.to_file(7);
        f.params.pop();
        assert!(matches!(
            ScoreNet::from_json(&serde_json::to_string(&f).unwrap()),
            Err(ModelError::WrongParamCount { .. })
        ));
        assert!(ScoreNet::from_json("{\"format\":1").is_err());
        let text = text.replacen("scorelab-model", "other", 1);
        assert!(matches!(
            ScoreNet::from_json(&text),
            Err(ModelError::WrongFormat { .. })
        ));
    }
}

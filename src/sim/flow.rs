//! Flow matching beside score matching (Lipman et al. 2023; rectified flow, Liu et al. 2023).
//!
//! The linear path in the data's frame: x_t = (1 − t) x₀ + t x₁ with the source
//! x₀ ~ N(m, d² I) (m, d: the mixture's centre and scalar std, the frame every SDE uses,
//! [`crate::sim::sde::Frame`]) and x₁ ~ p_data; t = 0 is noise, t = 1 is data. Given
//! component k, x_t ~ N((1 − t) m + t μ_k, C_k) with C_k = (1 − t)² d² I + t² Σ_k, and
//! (x₁ − x₀, x_t) are jointly Gaussian with Cov(x₁ − x₀, x_t) = t Σ_k − (1 − t) d² I, so the
//! marginal velocity is
//!
//!   u_t(x) = E[x₁ − x₀ | x_t = x]
//!          = Σ_k r_k(x) [μ_k − m + (t Σ_k − (1 − t) d² I) C_k⁻¹ (x − (1 − t) m − t μ_k)],
//!
//! r_k the responsibilities under p_t. For this path velocity and score are affine in each
//! other: u_t(x) = (x − m)/t + ((1 − t) d²/t) ∇log p_t(x) ([`velocity_from_score`]).
//!
//! The learned velocity [`FlowNet`] is the score network's MLP with its own preconditioning
//! (G = 0 is the exact velocity of the Gaussian fit N(m, d² I)), trained by conditional flow
//! matching ([`FlowTrainer`]); [`flow_sample`] integrates dx/dt = v(x, t) from t = 0 to 1
//! (Euler, Heun, RK4, adaptive RK45), [`flow_log_likelihood`] gives log p₁ by the
//! instantaneous change of variables, and [`reflow_couplings`] makes the (x₀, x̂₁) pairs one
//! round of reflow trains on.

use serde::{Deserialize, Serialize};

use crate::sim::mixture::GaussianMixture;
use crate::sim::mlp::{Mlp, MlpWorkspace};
use crate::sim::model::{space_fourier, time_fourier, ModelError, NetConfig};
use crate::sim::rng::{stream, CounterRng};
use crate::sim::sde::Frame;
use crate::sim::{Mat2, Vec2};

/// The linear path's source N(m, d² I), in the data's frame.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowPath {
    /// Centre m of the source (the mixture mean).
    pub center: [f64; 2],
    /// Std d of the source (the mixture's scalar std).
    pub d: f64,
}

impl FlowPath {
    /// The path of `mixture`'s frame.
    pub fn for_mixture(mixture: &GaussianMixture) -> Self {
        let f = Frame::of(mixture);
        Self {
            center: [f.center.x, f.center.y],
            d: f.scale,
        }
    }

    /// Centre m.
    pub fn center(&self) -> Vec2 {
        Vec2::new(self.center[0], self.center[1])
    }

    /// x_t on the straight line from x₀ to x₁.
    pub fn interpolate(&self, x0: Vec2, x1: Vec2, t: f64) -> Vec2 {
        (1.0 - t) * x0 + t * x1
    }

    /// The source point m + d z.
    pub fn source(&self, z: Vec2) -> Vec2 {
        self.center() + self.d * z
    }

    /// The marginal p_t = Σ w_k N((1 − t) m + t μ_k, t² Σ_k + (1 − t)² d² I).
    pub fn marginal(&self, mixture: &GaussianMixture, t: f64) -> GaussianMixture {
        mixture.perturbed(self.center(), t, (1.0 - t) * self.d)
    }
}

/// u_t from the score of p_t: (x − m)/t + ((1 − t) d²/t) ∇log p_t(x) (t > 0).
pub fn velocity_from_score(path: &FlowPath, x: Vec2, t: f64, score: Vec2) -> Vec2 {
    (x - path.center()) / t + ((1.0 - t) * path.d * path.d / t) * score
}

/// ∇log p_t from the velocity: (t u − (x − m)) / ((1 − t) d²) (t < 1): the score a velocity
/// model implies.
pub fn score_from_velocity(path: &FlowPath, x: Vec2, t: f64, v: Vec2) -> Vec2 {
    (t * v - (x - path.center())) / ((1.0 - t) * path.d * path.d)
}

/// A time-dependent velocity field v(x, t) on the linear path.
pub trait VelocityModel: Sync {
    /// v at every point of `xs` (all at `t`) into `out`.
    fn velocity_batch(&self, xs: &[Vec2], t: f64, out: &mut [Vec2]);

    /// v and its divergence ∇·v at one point.
    fn velocity_and_divergence(&self, x: Vec2, t: f64) -> (Vec2, f64);

    /// v at one point.
    fn velocity(&self, x: Vec2, t: f64) -> Vec2 {
        let mut out = [Vec2::zeros()];
        self.velocity_batch(&[x], t, &mut out);
        out[0]
    }
}

/// The exact marginal velocity of a Gaussian mixture (closed form, any t in [0, 1]).
#[derive(Clone, Debug)]
pub struct ExactVelocity {
    /// The data p₁.
    pub mixture: GaussianMixture,
    /// The path.
    pub path: FlowPath,
}

/// One component's pieces at t: weight, mean of x_t, C⁻¹, the gain A = (t Σ − (1 − t) d²) C⁻¹,
/// μ − m and log det C.
struct Part {
    log_w: f64,
    mean: Vec2,
    c_inv: Mat2,
    gain: Mat2,
    shift: Vec2,
    log_det: f64,
}

impl ExactVelocity {
    /// The exact velocity of `mixture` on its own frame's path.
    pub fn new(mixture: GaussianMixture) -> Self {
        let path = FlowPath::for_mixture(&mixture);
        Self { mixture, path }
    }

    fn parts(&self, t: f64) -> Vec<Part> {
        let (m, d2) = (self.path.center(), self.path.d * self.path.d);
        self.mixture
            .components()
            .iter()
            .zip(self.mixture.weights())
            .map(|(g, w)| {
                let c = t * t * g.cov + Mat2::identity() * ((1.0 - t) * (1.0 - t) * d2);
                let c_inv = c.try_inverse().unwrap_or_else(Mat2::identity);
                let gain = (t * g.cov - Mat2::identity() * ((1.0 - t) * d2)) * c_inv;
                Part {
                    log_w: w.ln(),
                    mean: (1.0 - t) * m + t * g.mean,
                    c_inv,
                    gain,
                    shift: g.mean - m,
                    log_det: c.determinant().ln(),
                }
            })
            .collect()
    }

    /// Responsibilities r_k(x) under p_t and each component's score −C⁻¹(x − mean).
    fn posterior(parts: &[Part], x: Vec2) -> (Vec<f64>, Vec<Vec2>) {
        let logs: Vec<f64> = parts
            .iter()
            .map(|p| {
                let y = x - p.mean;
                p.log_w - 0.5 * p.log_det - 0.5 * y.dot(&(p.c_inv * y))
            })
            .collect();
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
        let z: f64 = e.iter().sum();
        let scores = parts.iter().map(|p| -(p.c_inv * (x - p.mean))).collect();
        (e.iter().map(|v| v / z).collect(), scores)
    }

    fn at(parts: &[Part], x: Vec2) -> (Vec2, f64) {
        let (r, s) = Self::posterior(parts, x);
        let us: Vec<Vec2> = parts
            .iter()
            .map(|p| p.shift + p.gain * (x - p.mean))
            .collect();
        let u: Vec2 = us.iter().zip(&r).map(|(u, r)| *r * u).sum();
        let s_bar: Vec2 = s.iter().zip(&r).map(|(s, r)| *r * s).sum();
        // ∇·(Σ r_k u_k) = Σ r_k tr A_k + Σ r_k (s_k − s̄)·u_k  (∇r_k = r_k (s_k − s̄)).
        let div = parts
            .iter()
            .zip(&r)
            .zip(us.iter().zip(&s))
            .map(|((p, r), (u, sk))| r * (p.gain.trace() + (sk - s_bar).dot(u)))
            .sum();
        (u, div)
    }
}

impl VelocityModel for ExactVelocity {
    fn velocity_batch(&self, xs: &[Vec2], t: f64, out: &mut [Vec2]) {
        let parts = self.parts(t);
        for (o, x) in out.iter_mut().zip(xs) {
            *o = Self::at(&parts, *x).0;
        }
    }

    fn velocity_and_divergence(&self, x: Vec2, t: f64) -> (Vec2, f64) {
        Self::at(&self.parts(t), x)
    }
}

/// The velocity network v_θ(x, t) = κ(t) (x − m) + d·G(features), κ(t) = (2t − 1)/((1 − t)² +
/// t²): with G = 0 it is the exact velocity of the Gaussian fit N(m, d² I) (data as wide as
/// the source), so the MLP learns the residual at unit scale. Features, laid out as the score
/// network's ([`NetConfig::n_inputs`]): u = (x − m)/(d √((1 − t)² + t²)), c = 2t − 1, sin/cos
/// (2π w_j c), and optionally Fourier features of u.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowNet {
    /// Hyper-parameters (`data_std` is the path's d).
    pub config: NetConfig,
    /// The path it was trained for.
    pub path: FlowPath,
    /// The MLP G.
    pub mlp: Mlp,
    time_freqs: Vec<f64>,
    x_freqs: Vec<Vec2>,
}

impl FlowNet {
    /// A fresh network (the score network's initialisation: G ≈ 0).
    pub fn new(config: NetConfig, path: FlowPath) -> Result<Self, ModelError> {
        let init = crate::sim::model::ScoreNet::new(
            config.clone(),
            crate::sim::sde::Sde::new(crate::sim::sde::SdeKind::Vp, 1.0),
        )?;
        Self::with_params(config, path, init.mlp.params)
    }

    /// A network with these weights.
    pub fn with_params(
        config: NetConfig,
        path: FlowPath,
        params: Vec<f32>,
    ) -> Result<Self, ModelError> {
        if !(path.d.is_finite() && path.d > 0.0 && path.center.iter().all(|c| c.is_finite())) {
            return Err(ModelError::BadConfig(format!(
                "the flow path needs a finite centre and d > 0 (got {:?}, {})",
                path.center, path.d
            )));
        }
        let (mlp, time_freqs, x_freqs) = config.build(params)?;
        Ok(Self {
            config,
            path,
            mlp,
            time_freqs,
            x_freqs,
        })
    }

    /// κ(t) and the input scale d √((1 − t)² + t²).
    fn coefs(&self, t: f64) -> (f64, f64) {
        let q = (1.0 - t) * (1.0 - t) + t * t;
        ((2.0 * t - 1.0) / q, self.path.d * q.sqrt())
    }

    /// The input features of (x, t) into `out`.
    pub fn features(&self, x: Vec2, t: f64, out: &mut [f32]) {
        let (_, scale) = self.coefs(t);
        let u = (x - self.path.center()) / scale;
        let c = 2.0 * t - 1.0;
        out[0] = u.x as f32;
        out[1] = u.y as f32;
        out[2] = c as f32;
        time_fourier(&self.time_freqs, c, &mut out[3..]);
        space_fourier(&self.x_freqs, u, &mut out[3 + 2 * self.time_freqs.len()..]);
    }

    /// v from the MLP output G.
    #[inline]
    pub fn velocity_from_output(&self, x: Vec2, t: f64, g: Vec2) -> Vec2 {
        self.coefs(t).0 * (x - self.path.center()) + self.path.d * g
    }

    /// Conditional flow matching on one piece of a batch: Σ_i inv_b ‖v_θ(x_t, t) − (x₁ − x₀)‖²
    /// / d² (dimensionless) and its gradient added to `grad`.
    #[allow(clippy::too_many_arguments)]
    pub fn cfm_part(
        &self,
        x0: &[Vec2],
        x1: &[Vec2],
        t: &[f64],
        inv_b: f64,
        grad: &mut [f32],
        ws: &mut MlpWorkspace,
        input: &mut Vec<f32>,
        d_out: &mut Vec<f32>,
    ) -> f64 {
        let batch = x0.len();
        let n_in = self.config.n_inputs();
        input.resize(batch * n_in, 0.0);
        let xt: Vec<Vec2> = (0..batch)
            .map(|i| self.path.interpolate(x0[i], x1[i], t[i]))
            .collect();
        for (i, x) in xt.iter().enumerate() {
            self.features(*x, t[i], &mut input[i * n_in..(i + 1) * n_in]);
        }
        let out = self.mlp.forward(input, batch, ws).to_vec();
        d_out.resize(batch * 2, 0.0);
        let inv_d2 = 1.0 / (self.path.d * self.path.d);
        let mut loss = 0.0;
        for i in 0..batch {
            let g = Vec2::new(f64::from(out[2 * i]), f64::from(out[2 * i + 1]));
            let r = self.velocity_from_output(xt[i], t[i], g) - (x1[i] - x0[i]);
            loss += r.norm_squared() * inv_d2 * inv_b;
            // dv/dG = d.
            let k = 2.0 * inv_b * inv_d2 * self.path.d;
            d_out[2 * i] = (k * r.x) as f32;
            d_out[2 * i + 1] = (k * r.y) as f32;
        }
        self.mlp.backward(d_out, ws, grad);
        loss
    }
}

impl VelocityModel for FlowNet {
    fn velocity_batch(&self, xs: &[Vec2], t: f64, out: &mut [Vec2]) {
        let n_in = self.config.n_inputs();
        // The score network's per-thread scratch (kept between calls).
        crate::sim::par::zip_chunks(xs, out, 512, |xc, oc| {
            crate::sim::model::SCRATCH.with_borrow_mut(|(ws, input)| {
                input.resize(xc.len() * n_in, 0.0);
                for (row, x) in input.chunks_exact_mut(n_in).zip(xc) {
                    self.features(*x, t, row);
                }
                let g = self.mlp.forward(input, xc.len(), ws);
                for (i, (o, x)) in oc.iter_mut().zip(xc).enumerate() {
                    let gv = Vec2::new(f64::from(g[2 * i]), f64::from(g[2 * i + 1]));
                    *o = self.velocity_from_output(*x, t, gv);
                }
            });
        });
    }

    fn velocity_and_divergence(&self, x: Vec2, t: f64) -> (Vec2, f64) {
        // The 2D divergence by central differences of the network (h relative to the input
        // scale; f32 weights make this accurate to ≈ 1e-4 of the field's scale).
        let h = 1e-3 * self.coefs(t).1;
        let v = self.velocity(x, t);
        let dx = self.velocity(x + Vec2::new(h, 0.0), t) - self.velocity(x - Vec2::new(h, 0.0), t);
        let dy = self.velocity(x + Vec2::new(0.0, h), t) - self.velocity(x - Vec2::new(0.0, h), t);
        (v, (dx.x + dy.y) / (2.0 * h))
    }
}

/// How [`flow_sample`] integrates dx/dt = v.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowSolver {
    /// Euler: one evaluation a step.
    #[default]
    Euler,
    /// Heun (explicit trapezoid): two.
    Heun,
    /// Classic RK4: four.
    Rk4,
    /// Adaptive Dormand–Prince 5(4) (`steps` is ignored; rtol = atol = 1e-5).
    Rk45,
}

impl FlowSolver {
    /// Every solver.
    pub const ALL: [FlowSolver; 4] = [Self::Euler, Self::Heun, Self::Rk4, Self::Rk45];

    /// Its name in the CLI and links.
    pub fn name(self) -> &'static str {
        match self {
            Self::Euler => "euler",
            Self::Heun => "heun",
            Self::Rk4 => "rk4",
            Self::Rk45 => "rk45",
        }
    }
}

/// Source points x₀ = m + d z for particles 0..n of `seed`.
pub fn source_points(path: &FlowPath, n: usize, seed: u32) -> Vec<Vec2> {
    let rng = CounterRng::new(seed);
    (0..n as u32)
        .map(|i| path.source(rng.normal2(0, i, stream::INIT)))
        .collect()
}

/// Integrate every point of `xs` from t = 0 to 1 along `v`; returns the evaluations used
/// (points × evaluations per point, the NFE of the whole batch).
pub fn flow_integrate(
    v: &dyn VelocityModel,
    xs: &mut [Vec2],
    steps: usize,
    solver: FlowSolver,
) -> u64 {
    flow_integrate_between(v, xs, 0.0, 1.0, steps, solver)
}

/// Integrate from `t0` to `t1` (either direction).
pub fn flow_integrate_between(
    v: &dyn VelocityModel,
    xs: &mut [Vec2],
    t0: f64,
    t1: f64,
    steps: usize,
    solver: FlowSolver,
) -> u64 {
    let n = xs.len();
    if solver == FlowSolver::Rk45 {
        let mut nfe = 0;
        for x in xs.iter_mut() {
            let mut ode = crate::sim::samplers::Rk45::new(t0, vec![x.x, x.y], t1, 1e-5, 1e-5);
            let mut f = |t: f64, y: &[f64], dy: &mut [f64]| {
                let u = v.velocity(Vec2::new(y[0], y[1]), t);
                dy[0] = u.x;
                dy[1] = u.y;
            };
            while !ode.done() {
                ode.step(&mut f);
            }
            nfe += ode.nfev;
            *x = Vec2::new(ode.y[0], ode.y[1]);
        }
        return nfe;
    }
    let steps = steps.max(1);
    let h = (t1 - t0) / steps as f64;
    let mut k = [
        vec![Vec2::zeros(); n],
        vec![Vec2::zeros(); n],
        vec![Vec2::zeros(); n],
        vec![Vec2::zeros(); n],
    ];
    let mut tmp = vec![Vec2::zeros(); n];
    let per_step = match solver {
        FlowSolver::Euler => 1,
        FlowSolver::Heun => 2,
        _ => 4,
    };
    for s in 0..steps {
        let t = t0 + s as f64 * h;
        v.velocity_batch(xs, t, &mut k[0]);
        match solver {
            FlowSolver::Euler => {
                for (x, k0) in xs.iter_mut().zip(&k[0]) {
                    *x += h * k0;
                }
            }
            FlowSolver::Heun => {
                for ((y, x), k0) in tmp.iter_mut().zip(xs.iter()).zip(&k[0]) {
                    *y = x + h * k0;
                }
                v.velocity_batch(&tmp, t + h, &mut k[1]);
                for ((x, k0), k1) in xs.iter_mut().zip(&k[0]).zip(&k[1]) {
                    *x += 0.5 * h * (k0 + k1);
                }
            }
            _ => {
                for j in 0..3 {
                    let c = if j == 2 { 1.0 } else { 0.5 };
                    let (head, tail) = k.split_at_mut(j + 1);
                    for ((y, x), kj) in tmp.iter_mut().zip(xs.iter()).zip(&head[j]) {
                        *y = x + c * h * kj;
                    }
                    v.velocity_batch(&tmp, t + c * h, &mut tail[0]);
                }
                for (i, x) in xs.iter_mut().enumerate() {
                    *x += h / 6.0 * (k[0][i] + 2.0 * k[1][i] + 2.0 * k[2][i] + k[3][i]);
                }
            }
        }
    }
    (n * steps * per_step) as u64
}

/// n samples of the flow: source points of `seed` carried from t = 0 to 1.
pub fn flow_sample(
    v: &dyn VelocityModel,
    path: &FlowPath,
    n: usize,
    steps: usize,
    solver: FlowSolver,
    seed: u32,
) -> Vec<Vec2> {
    let mut xs = source_points(path, n, seed);
    flow_integrate(v, &mut xs, steps, solver);
    xs
}

/// log p₁(x) by the instantaneous change of variables: carry (x, ℓ) from t = 1 back to 0 with
/// dx/dt = v, dℓ/dt = ∇·v (RK4, `steps` steps), then log p₁(x) = log N(x₀; m, d² I) − ℓ(1→0)
/// … written as log p₀(x₀) − ∫₀¹ ∇·v dt along the path. Returns (log p₁(x), x₀).
pub fn flow_log_likelihood(
    v: &dyn VelocityModel,
    path: &FlowPath,
    x: Vec2,
    steps: usize,
) -> (f64, Vec2) {
    let steps = steps.max(1);
    let h = -1.0 / steps as f64;
    let f = |t: f64, y: Vec2| v.velocity_and_divergence(y, t);
    let (mut y, mut int) = (x, 0.0);
    for s in 0..steps {
        let t = 1.0 + s as f64 * h;
        let (k1, d1) = f(t, y);
        let (k2, d2) = f(t + 0.5 * h, y + 0.5 * h * k1);
        let (k3, d3) = f(t + 0.5 * h, y + 0.5 * h * k2);
        let (k4, d4) = f(t + h, y + h * k3);
        y += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
        // ∫ from 1 down to 0 of ∇·v dt = −∫₀¹ ∇·v dt.
        int += h / 6.0 * (d1 + 2.0 * d2 + 2.0 * d3 + d4);
    }
    let d2 = path.d * path.d;
    let log_p0 =
        -(y - path.center()).norm_squared() / (2.0 * d2) - (std::f64::consts::TAU * d2).ln();
    // log p₁(x) = log p₀(x₀) − ∫₀¹ ∇·v dt = log p₀(x₀) + int.
    (log_p0 + int, y)
}

/// One round of reflow's couplings: (x₀, x̂₁) with x̂₁ the model's own ODE image of x₀ (`steps`
/// RK4 steps), for n source points of `seed`.
pub fn reflow_couplings(
    v: &dyn VelocityModel,
    path: &FlowPath,
    n: usize,
    steps: usize,
    seed: u32,
) -> Vec<(Vec2, Vec2)> {
    let x0 = source_points(path, n, seed);
    let mut x1 = x0.clone();
    flow_integrate(v, &mut x1, steps, FlowSolver::Rk4);
    x0.into_iter().zip(x1).collect()
}

/// How straight the model's paths are: the mean squared gap between one Euler step (the
/// straight line x₀ + v(x₀, 0)) and the RK4 endpoint, in units of d², over n source points.
pub fn straightness_gap(v: &dyn VelocityModel, path: &FlowPath, n: usize, seed: u32) -> f64 {
    let x0 = source_points(path, n, seed);
    let (mut one, mut fine) = (x0.clone(), x0);
    flow_integrate(v, &mut one, 1, FlowSolver::Euler);
    flow_integrate(v, &mut fine, 64, FlowSolver::Rk4);
    one.iter()
        .zip(&fine)
        .map(|(a, b)| (a - b).norm_squared())
        .sum::<f64>()
        / (n as f64 * path.d * path.d)
}

/// The velocity's relative error E‖v_θ − u‖² / E‖u‖² over points drawn from p_t at each of
/// `ts` (n points each, the velocity's "Fisher"): one number per t.
pub fn relative_velocity_error(
    model: &dyn VelocityModel,
    exact: &ExactVelocity,
    ts: &[f64],
    n: usize,
    seed: u32,
) -> Vec<f64> {
    let mut rng = crate::sim::rng::StreamRng::new(seed, stream::EVAL);
    ts.iter()
        .map(|&t| {
            let xs = exact.path.marginal(&exact.mixture, t).sample(n, &mut rng);
            let mut a = vec![Vec2::zeros(); n];
            let mut b = vec![Vec2::zeros(); n];
            model.velocity_batch(&xs, t, &mut a);
            exact.velocity_batch(&xs, t, &mut b);
            let num: f64 = a.iter().zip(&b).map(|(a, b)| (a - b).norm_squared()).sum();
            let den: f64 = b.iter().map(|b| b.norm_squared()).sum();
            num / den.max(1e-300)
        })
        .collect()
}

/// The times the velocity error is reported at.
pub fn velocity_error_times() -> Vec<f64> {
    vec![0.05, 0.25, 0.5, 0.75, 0.95]
}

/// Settings of [`FlowTrainer`].
#[derive(Clone, Debug, PartialEq)]
pub struct FlowTrainConfig {
    /// Samples per step.
    pub batch: usize,
    /// Optimiser.
    pub adam: crate::sim::adam::AdamConfig,
    /// Seed of the batch stream.
    pub seed: u32,
}

impl Default for FlowTrainConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            adam: crate::sim::adam::AdamConfig::default(),
            seed: 0,
        }
    }
}

/// Conditional flow matching on the CPU: each step draws x₁ ~ p_data, t ~ U[0, 1) and z ~
/// N(0, I) with the score trainer's counter-RNG draw (`train::draw_sample`, so a shader can
/// draw the same batch), x₀ = m + d z, or — after [`Self::set_couplings`] (reflow) — a
/// pair (x₀, x̂₁) of the couplings picked by the same draw; loss and gradient in pieces that
/// run on separate cores and add up in piece order (bit-identical on any number of threads).
#[derive(Clone, Debug)]
pub struct FlowTrainer {
    /// The network being trained.
    pub net: FlowNet,
    /// The data.
    pub mixture: GaussianMixture,
    /// Settings.
    pub config: FlowTrainConfig,
    couplings: Option<Vec<(Vec2, Vec2)>>,
    adam: crate::sim::adam::Adam,
    rng: CounterRng,
    step: u32,
    grad: Vec<f32>,
    pieces: Vec<crate::sim::train::Piece>,
}

impl FlowTrainer {
    /// A trainer for `net` on `mixture`.
    pub fn new(net: FlowNet, mixture: GaussianMixture, config: FlowTrainConfig) -> Self {
        let adam = crate::sim::adam::Adam::new(config.adam, &net.mlp.params);
        let n = net.mlp.params.len();
        Self {
            rng: CounterRng::new(config.seed),
            net,
            mixture,
            config,
            couplings: None,
            adam,
            step: 0,
            grad: vec![0.0; n],
            pieces: Vec::new(),
        }
    }

    /// Train on these (x₀, x₁) pairs instead of independent draws (reflow); `None` goes back.
    pub fn set_couplings(&mut self, couplings: Option<Vec<(Vec2, Vec2)>>) {
        self.couplings = couplings.filter(|c| !c.is_empty());
    }

    /// Steps taken.
    pub fn steps(&self) -> u32 {
        self.step
    }

    /// One step; returns the batch loss (a non-finite one is refused, the weights kept).
    pub fn step(&mut self) -> Result<f64, crate::sim::train::TrainError> {
        let (net, mixture, rng, couplings) = (&self.net, &self.mixture, &self.rng, &self.couplings);
        let step = self.step;
        let loss = crate::sim::train::batch_step(
            &mut self.pieces,
            self.config.batch,
            &mut self.grad,
            |p, inv_b| {
                p.clear_draws();
                for i in p.start..p.start + p.len {
                    let (x1, t, z) = crate::sim::train::draw_sample(mixture, rng, 0.0, step, i);
                    let (a, b) = match couplings {
                        Some(c) => {
                            let pick = rng.bits(step, i, stream::SEQUENTIAL)[0] as usize % c.len();
                            c[pick]
                        }
                        None => (net.path.source(z), x1),
                    };
                    // The piece's `z` holds the data end x₁ here.
                    p.x0.push(a);
                    p.z.push(b);
                    p.t.push(t);
                }
                let (x0, t, x1, grad, ws, input, d_out) = p.parts();
                net.cfm_part(x0, x1, t, inv_b, grad, ws, input, d_out)
            },
        );
        self.step += 1;
        if !loss.is_finite() || self.grad.iter().any(|g| !g.is_finite()) {
            return Err(crate::sim::train::TrainError::Diverged { step, loss });
        }
        self.adam.step(&mut self.net.mlp.params, &self.grad);
        Ok(loss)
    }

    /// Divergence recovery (a refused step left the last good weights): the learning rate is
    /// lowered as every trainer lowers it ([`crate::sim::train::lowered_lr`]); returns it.
    pub fn recover(&mut self) -> f32 {
        let lr = crate::sim::train::lowered_lr(self.config.adam.lr);
        self.config.adam.lr = lr;
        self.adam.config.lr = lr;
        lr
    }

    /// The network with the EMA weights.
    pub fn ema_net(&self) -> FlowNet {
        let mut n = self.net.clone();
        n.mlp.params.clone_from(&self.adam.ema);
        n
    }
}

pub mod experiment;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

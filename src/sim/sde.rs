//! The forward SDEs of score_sde (Song et al. 2021), in their notation:
//! dx = f(x, t) dt + g(t) dw, t ∈ [0, 1], with affine marginals x_t = α(t) x_0 + s(t) z.
//!
//! - VE: σ(t) = σ_min (σ_max/σ_min)^t, f = 0, g = σ(t) √(2 ln(σ_max/σ_min)), α = 1, s = σ(t).
//! - VP: β(t) = β_min + t(β_max − β_min), f = −½ β x, g = √β,
//!   α = exp(−¼ t²(β_max−β_min) − ½ t β_min), s = √(1 − α²).
//! - sub-VP: f = −½ β x, g = √(β (1 − e^{−2∫β})), α as VP, s = 1 − α².
//!
//! ## The data's frame (ARCHITECTURE.md §4)
//!
//! Real diffusion models normalise their data; ScoreLab's data is a mixture the user drags
//! anywhere, so every SDE is defined in the mixture's own frame y = (x − m)/d, with m the
//! mixture mean and d its scalar std √(tr Cov/2) ([`Frame::of`]). The formulas above are
//! those of y; in data units (what every caller sees) they read
//!
//!   x_t = m + α(t)(x_0 − m) + d·s(t) z,   f(x, t) = −½β(t)(x − m),   g_x = d·g_y,
//!
//! and the prior is N(m, (d·s(1))² I). So no picture depends on where the origin is or on the
//! units, and the exact perturbed mixture stays exact: p_t = Σ w_k N(m + α(μ_k − m),
//! α² Σ_k + (d s)² I) ([`Sde::forward_mean`], [`Sde::marginal`] returns d·s).
//! VE already carries data units (σ_max = Song & Ermon's technique 1, at least the largest
//! pairwise distance, which is the same in any translated frame, and at least
//! [`SIGMA_MAX_MIN_REL`] d; σ_min = [`SIGMA_MIN_REL`] × the narrowest component's std), so for
//! VE the frame moves only the prior's centre.
//! `Sde::new` is the frame at the origin with unit scale (what files from before the frame
//! existed were made in: `center` and `scale` default to it when read).

use serde::{Deserialize, Serialize};

use crate::sim::mixture::GaussianMixture;
use crate::sim::Vec2;

/// VE σ_min relative to the narrowest component's smallest std (NCSN's σ_L = 0.01 on unit-scale
/// data): small enough that p_{t_min} is the data to 1e-4 in variance, never larger than the
/// component it must resolve.
pub const SIGMA_MIN_REL: f64 = 0.01;

/// VE σ_max is at least this many frame scales d. Technique 1 asks for σ_max *at least* the
/// largest pairwise distance of the data, but in 2D that is only ≈ 3–5 d, and the prior
/// N(m, σ_max² I) then differs from the true p_1 = p_0 ⊛ N(0, σ_max²) by ≈ ½ (d/σ_max)² ·
/// E|χ²₂ − 2| ≈ 0.07 nats per point (measured: PF-ODE likelihood with the exact score, random
/// dragged mixtures). At 6 d the mismatch is ≈ 0.02 nats.
pub const SIGMA_MAX_MIN_REL: f64 = 6.0;

/// The knee of [`Sde::ode_time_grid`] relative to the narrowest component's std.
pub const ODE_GRID_KNEE_REL: f64 = 0.3;

/// The data's frame: centre m and scale d (module docs).
/// Smallest t the app shows (the σ slider's lower end).
pub const T_MIN_SHOWN: f64 = 1e-3;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Centre m (the mixture mean).
    pub center: Vec2,
    /// Scale d (the mixture's scalar std √(tr Cov / 2)).
    pub scale: f64,
}

impl Frame {
    /// The frame of `mixture`.
    pub fn of(mixture: &GaussianMixture) -> Self {
        Self {
            center: mixture.mean(),
            scale: mixture.data_std().max(1e-6),
        }
    }
}

/// VE σ_min for `mixture`: [`SIGMA_MIN_REL`] × the narrowest component's smallest std.
pub fn sigma_min_for(mixture: &GaussianMixture) -> f64 {
    let narrowest = mixture
        .components()
        .iter()
        .map(|g| {
            crate::sim::mixture::sym_eigenvalues(&g.cov)
                .0
                .max(0.0)
                .sqrt()
        })
        .fold(f64::INFINITY, f64::min);
    (SIGMA_MIN_REL * narrowest).max(1e-6)
}

fn origin() -> [f64; 2] {
    [0.0, 0.0]
}

fn unit() -> f64 {
    1.0
}

/// Which SDE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SdeKind {
    /// Variance exploding (NCSN's continuous limit).
    #[default]
    Ve,
    /// Variance preserving (DDPM's continuous limit).
    Vp,
    /// sub-VP.
    Subvp,
}

impl SdeKind {
    /// Parse "ve" / "vp" / "subvp" (also "sub-vp").
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ve" => Some(Self::Ve),
            "vp" => Some(Self::Vp),
            "subvp" | "sub-vp" => Some(Self::Subvp),
            _ => None,
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ve => "ve",
            Self::Vp => "vp",
            Self::Subvp => "subvp",
        }
    }
}

/// An SDE with its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sde {
    /// Which family.
    pub kind: SdeKind,
    /// VE: smallest noise std.
    pub sigma_min: f64,
    /// VE: largest noise std (≈ max pairwise data distance).
    pub sigma_max: f64,
    /// VP / sub-VP: β(0).
    pub beta_min: f64,
    /// VP / sub-VP: β(1).
    pub beta_max: f64,
    /// The data frame's centre m (module docs); the origin in files from before it existed.
    #[serde(default = "origin")]
    pub center: [f64; 2],
    /// The data frame's scale d (VP / sub-VP: data-unit std = d·s); 1 in older files.
    #[serde(default = "unit")]
    pub scale: f64,
}

/// Default training t-floor ε_t (ARCHITECTURE.md §4).
pub const TRAIN_T_EPS: f64 = 1e-5;
/// Default sampling end time (score_sde's `sampling_eps`).
pub const SAMPLE_T_EPS: f64 = 1e-3;

impl Sde {
    /// An SDE with the default parameters; `sigma_max` only matters for VE.
    pub fn new(kind: SdeKind, sigma_max: f64) -> Self {
        Self {
            kind,
            sigma_min: 0.01,
            sigma_max: sigma_max.max(0.1),
            beta_min: 0.1,
            beta_max: 20.0,
            center: origin(),
            scale: unit(),
        }
    }

    /// The SDE of `kind` at the origin with unit scale and VE σ_max = the largest distance
    /// between `mixture`'s means: how every SDE was built before data frames (what model
    /// files without a frame were trained in, and what the closed-form tests use).
    pub fn at_origin(kind: SdeKind, mixture: &GaussianMixture) -> Self {
        Self::new(kind, mixture.max_pairwise_distance())
    }

    /// The SDE of `kind` in `mixture`'s own frame (module docs): centre and scale from
    /// [`Frame::of`], VE σ_max by Song & Ermon's technique 1 and σ_min relative to the
    /// narrowest component.
    pub fn for_mixture(kind: SdeKind, mixture: &GaussianMixture) -> Self {
        let frame = Frame::of(mixture);
        let sigma_min = sigma_min_for(mixture);
        let sigma_max = mixture
            .max_pairwise_distance()
            .max(SIGMA_MAX_MIN_REL * frame.scale)
            .max(10.0 * sigma_min);
        Self {
            sigma_min,
            center: [frame.center.x, frame.center.y],
            scale: frame.scale,
            ..Self::new(kind, sigma_max)
        }
    }

    /// Same family and β schedule (what a trained network depends on: it is conditioned on
    /// the noise level and evaluated in the frame it is given, so a moved frame or another
    /// σ range is fine).
    pub fn same_family(&self, other: &Sde) -> bool {
        self.kind == other.kind
            && self.beta_min == other.beta_min
            && self.beta_max == other.beta_max
    }

    /// The frame's centre m.
    #[inline]
    pub fn center(&self) -> Vec2 {
        Vec2::new(self.center[0], self.center[1])
    }

    /// The mean of x_t given x_0 = `x0` at marginal coefficient `alpha`: m + α (x_0 − m).
    #[inline]
    pub fn forward_mean(&self, x0: Vec2, alpha: f64) -> Vec2 {
        let m = self.center();
        m + alpha * (x0 - m)
    }

    /// VE σ(t).
    #[inline]
    pub fn ve_sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }

    /// β(t).
    #[inline]
    pub fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }

    /// ∫₀ᵗ β(s) ds.
    #[inline]
    pub fn beta_integral(&self, t: f64) -> f64 {
        self.beta_min * t + 0.5 * t * t * (self.beta_max - self.beta_min)
    }

    /// Marginal coefficients (α(t), s(t)): x_t = α x_0 + s z.
    #[inline]
    pub fn marginal(&self, t: f64) -> (f64, f64) {
        match self.kind {
            SdeKind::Ve => (1.0, self.ve_sigma(t)),
            SdeKind::Vp => {
                let a = (-0.5 * self.beta_integral(t)).exp();
                // 1 − α² = −expm1(−∫β), accurate for small t.
                (a, self.scale * (-(-self.beta_integral(t)).exp_m1()).sqrt())
            }
            SdeKind::Subvp => {
                let a = (-0.5 * self.beta_integral(t)).exp();
                (a, self.scale * -(-self.beta_integral(t)).exp_m1())
            }
        }
    }

    /// Drift f(x, t) = −½β(t)(x − m) (VP / sub-VP; 0 for VE).
    #[inline]
    pub fn drift(&self, x: Vec2, t: f64) -> Vec2 {
        match self.kind {
            SdeKind::Ve => Vec2::zeros(),
            SdeKind::Vp | SdeKind::Subvp => -0.5 * self.beta(t) * (x - self.center()),
        }
    }

    /// ∇·f(x, t) (2D).
    #[inline]
    pub fn drift_divergence(&self, t: f64) -> f64 {
        match self.kind {
            SdeKind::Ve => 0.0,
            SdeKind::Vp | SdeKind::Subvp => -self.beta(t),
        }
    }

    /// Diffusion g(t).
    #[inline]
    pub fn diffusion(&self, t: f64) -> f64 {
        match self.kind {
            SdeKind::Ve => self.ve_sigma(t) * (2.0 * (self.sigma_max / self.sigma_min).ln()).sqrt(),
            SdeKind::Vp => self.scale * self.beta(t).sqrt(),
            SdeKind::Subvp => {
                let disc = -(-2.0 * self.beta_integral(t)).exp_m1();
                self.scale * (self.beta(t) * disc).sqrt()
            }
        }
    }

    /// Std of the prior p_1 (isotropic, centred on the frame's centre m): VE σ_max, VP and
    /// sub-VP d·s(1) (d for VP; score_sde's sub-VP prior is N(0, I) too, in y).
    pub fn prior_std(&self) -> f64 {
        match self.kind {
            SdeKind::Ve => self.sigma_max,
            SdeKind::Vp | SdeKind::Subvp => self.scale,
        }
    }

    /// A prior sample from a standard normal `z`: m + prior_std·z.
    #[inline]
    pub fn prior_sample(&self, z: Vec2) -> Vec2 {
        self.center() + self.prior_std() * z
    }

    /// log p_1(x) of the prior N(m, prior_std² I).
    pub fn prior_log_prob(&self, x: Vec2) -> f64 {
        let v = self.prior_std() * self.prior_std();
        -(std::f64::consts::TAU * v).ln() - 0.5 * (x - self.center()).norm_squared() / v
    }

    /// The VP ancestral (DDPM) step's β_i = 1 − (α(t)/α(t_next))² for t > t_next, written as
    /// −expm1(−(∫₀ᵗβ − ∫₀^{t_next}β)) with the integral difference in closed form: no
    /// cancellation when the step is small (1 − (a/aₙ)² loses digits in f32).
    #[inline]
    pub fn vp_step_beta(&self, t: f64, t_next: f64) -> f64 {
        let db =
            (t - t_next) * (self.beta_min + 0.5 * (self.beta_max - self.beta_min) * (t + t_next));
        -(-db).exp_m1()
    }

    /// The noise-to-signal ratio σ_e = s/α (the VE-equivalent noise level at t, data units).
    #[inline]
    pub fn effective_sigma(&self, t: f64) -> f64 {
        let (a, s) = self.marginal(t);
        s / a
    }

    /// The time at which σ_e(t) = `sigma` (σ_e increases with t), clamped to [0, 1];
    /// bisection to 1e-12 in t.
    pub fn time_of_sigma(&self, sigma: f64) -> f64 {
        // NaN-safe: a NaN σ lands at t = 0.
        if sigma.is_nan() || sigma <= self.effective_sigma(0.0) {
            return 0.0;
        }
        if sigma >= self.effective_sigma(1.0) {
            return 1.0;
        }
        let (mut lo, mut hi) = (0.0, 1.0);
        while hi - lo > 1e-12 {
            let mid = 0.5 * (lo + hi);
            if self.effective_sigma(mid) < sigma {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// [`Sde::time_of_sigma`] on the range the app shows, [`T_MIN_SHOWN`]..=1 (the σ slider).
    pub fn shown_time_of_sigma(&self, sigma: f64) -> f64 {
        self.time_of_sigma(sigma).max(T_MIN_SHOWN)
    }

    /// The `n + 1` times from `t0` to 1 of a fixed-step PF-ODE integration (the likelihood's
    /// RK4 on the GPU and its CPU twin), uniform in u = ln(σ_e(t)² + c²) with c =
    /// [`ODE_GRID_KNEE_REL`] × the narrowest component's std (σ_min / [`SIGMA_MIN_REL`] for
    /// [`Sde::for_mixture`]).
    ///
    /// Why: near a component of variance λ the flow's Jacobian is ≈ ½ (dσ_e²/dt)/(λ + σ_e²)
    /// on every SDE (VE: ½ g²/(λ + σ²); VP: ½ β d²/(λ + d² s²) while α ≈ 1), so ln(λ + σ_e²)
    /// is the integrated stiffness: equal steps in u are log-spaced in σ_e above the knee c and
    /// stop refining below it, where the flow is a plain contraction. Measured with the exact
    /// score at 16 steps (the page's heatmap), mean |error| on grid25 / ncsn / ring8 samples:
    /// uniform t (score_sde's grid, in the data's frame) up to 0.15 nats, pure log σ_e up to
    /// 0.15, c = λ^½ up to 0.09, c = 0.3 λ^½ at most 0.03 (VE's ≈ 0.02 of it is its prior);
    /// at 200 steps on ring8's low-density points (VP) uniform t gave 0.48 nats, this 0.003.
    pub fn ode_time_grid(&self, t0: f64, n: usize) -> Vec<f64> {
        let n = n.max(1);
        let c2 = (ODE_GRID_KNEE_REL * self.sigma_min / SIGMA_MIN_REL).powi(2);
        let u = |t: f64| (self.effective_sigma(t).powi(2) + c2).ln();
        let (a, b) = (u(t0), u(1.0));
        let mut ts: Vec<f64> = if a.is_finite() && b.is_finite() && b > a {
            (0..=n)
                .map(|i| {
                    let s2 = (a + (b - a) * i as f64 / n as f64).exp() - c2;
                    self.time_of_sigma(s2.max(0.0).sqrt()).max(t0)
                })
                .collect()
        } else {
            (0..=n)
                .map(|i| t0 + (1.0 - t0) * i as f64 / n as f64)
                .collect()
        };
        ts[0] = t0;
        ts[n] = 1.0;
        ts
    }

    /// Where the SDE / ODE samplers (and plain Langevin's single level) end: the time whose
    /// VE-equivalent noise s/α is σ_min (1% of the narrowest component's std, so the leftover
    /// noise adds 1e-4 of its variance), never below the training floor [`TRAIN_T_EPS`] (a
    /// network has not seen smaller t). score_sde's fixed 1e-3 left VP a noise of d·s(1e-3)
    /// ≈ 0.01 d in data units: +22% variance on a variance-0.1 component of a mixture spread
    /// over ±20.
    pub fn sampling_t_end(&self) -> f64 {
        self.time_of_sigma(self.sigma_min).max(TRAIN_T_EPS)
    }

    /// The `n + 1` times of an `n`-step SDE / ODE sampler from `t_start` down to `t_end`:
    /// uniform in u = ln(σ_e(t)² + c²) (the knee c of [`Sde::ode_time_grid`]): geometric in
    /// the noise level σ_e above the narrowest component's scale, no longer refining below
    /// it, on every SDE (a grid uniform in t spends VP's steps where nothing moves and leaves
    /// too few where the components form). Falls back to uniform t when σ_e is degenerate.
    pub fn sampling_time_grid(&self, t_start: f64, t_end: f64, n: usize) -> Vec<f64> {
        let n = n.max(1);
        let c2 = (ODE_GRID_KNEE_REL * self.sigma_min / SIGMA_MIN_REL).powi(2);
        let u = |t: f64| (self.effective_sigma(t).powi(2) + c2).ln();
        let (a, b) = (u(t_start), u(t_end));
        let mut ts: Vec<f64> = if a.is_finite() && b.is_finite() && a > b {
            (0..=n)
                .map(|i| {
                    let s2 = (a + (b - a) * i as f64 / n as f64).exp() - c2;
                    self.time_of_sigma(s2.max(0.0).sqrt()).clamp(t_end, t_start)
                })
                .collect()
        } else {
            (0..=n)
                .map(|i| t_start + (t_end - t_start) * i as f64 / n as f64)
                .collect()
        };
        ts[0] = t_start;
        ts[n] = t_end;
        // Bisection can tie two neighbours where σ_e is flat; keep the grid strictly
        // decreasing (a zero step would waste a network evaluation).
        for i in 1..n {
            let max = ts[i - 1] - 1e-15;
            if ts[i] > max {
                ts[i] = max;
            }
        }
        ts
    }

    /// The `n` annealed-Langevin levels from `t_start` down to σ_min: geometric in the
    /// VE-equivalent noise σ_e (data units) on every SDE (NCSN's σ_1 > … > σ_L), mapped to
    /// times. VE's σ is geometric in t, so there this is linspace(t_start, 0, n) as before;
    /// VP's levels used to be uniform in t, which put its last two levels at σ = 0.75 and
    /// 0.01 on `ncsn` (+63–71% too wide at the live defaults).
    ///
    /// VP and sub-VP start at σ_e = min(σ_e(t_start), σ_max) with σ_max the VE one of this
    /// frame (Song & Ermon's technique 1): σ_e(1) is ≈ 150 d there, and geometric levels from
    /// it spent a third of L above any scale the data has, leaving the levels where the modes
    /// separate too far apart (weight errors up to 0.037 at the live defaults, VE's 0.027).
    pub fn annealing_levels(&self, t_start: f64, n: usize) -> Vec<f64> {
        let n = n.max(2);
        let (mut hi, lo) = (self.effective_sigma(t_start), self.sigma_min);
        let mut t0 = t_start;
        if self.kind != SdeKind::Ve && hi.is_finite() && hi > self.sigma_max && self.sigma_max > lo
        {
            hi = self.sigma_max;
            t0 = self.time_of_sigma(hi);
        }
        let t_min = self.t_of_sigma_min();
        (0..n)
            .map(|i| {
                if i == 0 {
                    return t0;
                }
                if i == n - 1 {
                    return t_min;
                }
                if !(hi.is_finite() && hi > lo) {
                    return t_start + (t_min - t_start) * i as f64 / (n - 1) as f64;
                }
                let f = i as f64 / (n - 1) as f64;
                match self.kind {
                    // Exact in closed form (σ is geometric in t): no bisection error.
                    SdeKind::Ve => t_start + (t_min - t_start) * f,
                    _ => self.time_of_sigma(hi * (lo / hi).powf(f)),
                }
            })
            .collect()
    }

    /// The smallest noise level the samplers' schedules should reach: the time where the
    /// VE-equivalent noise is σ_min (VE: t = 0; VP / sub-VP: where s/α = σ_min, so annealed
    /// Langevin's last level is a real noise scale relative to the data on every SDE).
    pub fn t_of_sigma_min(&self) -> f64 {
        match self.kind {
            SdeKind::Ve => 0.0,
            SdeKind::Vp | SdeKind::Subvp => self.time_of_sigma(self.sigma_min),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VP ancestral β over a tiny step keeps its digits: 1 − (α(t)/α(t_next))² loses
    /// ≈ log10(1/β) of them to cancellation (here 1e-6 relative in f64, all of them in f32).
    #[test]
    fn vp_step_beta_has_no_cancellation() {
        let sde = Sde::new(SdeKind::Vp, 1.0);
        let (t, tn) = (0.3, 0.3 - 1e-9);
        let h = t - tn; // exact (Sterbenz)
                        // Series reference: β = 1 − e^{−D} = D − D²/2 + D³/6 with D = ∫_{t_next}^{t} β.
        let d = h * (sde.beta_min + 0.5 * (sde.beta_max - sde.beta_min) * (t + tn));
        let want = d - d * d / 2.0 + d * d * d / 6.0;
        let got = sde.vp_step_beta(t, tn);
        assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        let naive = 1.0 - (sde.marginal(t).0 / sde.marginal(tn).0).powi(2);
        assert!(
            (naive / want - 1.0).abs() > 1e-9,
            "the naive form was expected to lose digits"
        );
    }

    /// The frame's time grid for fixed-step PF-ODE integration starts at t0, ends at 1 and
    /// increases, on every SDE and for a degenerate σ_e(t0) = 0.
    #[test]
    fn ode_time_grid_is_monotone() {
        for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
            for t0 in [0.0, 1e-5, 0.3] {
                let g = Sde::new(kind, 20.0).ode_time_grid(t0, 16);
                assert_eq!((g.len(), g[0], g[16]), (17, t0, 1.0), "{kind:?}");
                assert!(g.windows(2).all(|w| w[1] > w[0]), "{kind:?} t0={t0}: {g:?}");
            }
        }
    }

    /// d/dt of the marginal variance must match the SDE: for x_t = α x0 + s z,
    /// dα/dt = −½β α (VP/sub-VP) and d(s²)/dt = g² + 2 (dα/dt / α) s² (Itô).
    #[test]
    fn marginals_match_the_sde() {
        for kind in [SdeKind::Ve, SdeKind::Vp, SdeKind::Subvp] {
            let sde = Sde::new(kind, 20.0);
            for &t in &[0.05, 0.3, 0.7, 0.95] {
                let h = 1e-6;
                let (a0, s0) = sde.marginal(t - h);
                let (a1, s1) = sde.marginal(t + h);
                let (_, s) = sde.marginal(t);
                let dlog_a = (a1.ln() - a0.ln()) / (2.0 * h);
                let dvar = (s1 * s1 - s0 * s0) / (2.0 * h);
                let g = sde.diffusion(t);
                let expected = g * g + 2.0 * dlog_a * s * s;
                assert!(
                    (dvar - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                    "{kind:?} t={t}: {dvar} vs {expected}"
                );
                let f_coef = sde.drift(Vec2::new(1.0, 0.0), t).x;
                assert!(
                    (dlog_a - f_coef).abs() < 1e-5,
                    "{kind:?}: drift {f_coef} vs dlogα {dlog_a}"
                );
            }
        }
    }
}

//! Dormand–Prince 5(4) with error control (the adaptive PF-ODE sampler and likelihood).

/// An ODE right-hand side: `f(t, y, dy/dt)`.
pub type OdeRhs<'a> = dyn FnMut(f64, &[f64], &mut [f64]) + 'a;

/// Dormand–Prince 5(4) with error control (the scheme behind scipy's `RK45`).
#[derive(Clone, Debug)]
pub struct Rk45 {
    /// Current time.
    pub t: f64,
    /// Target time.
    pub t_end: f64,
    /// Current state.
    pub y: Vec<f64>,
    h: f64,
    rtol: f64,
    atol: f64,
    k: [Vec<f64>; 7],
    fsal: bool,
    /// Right-hand-side evaluations so far.
    pub nfev: u64,
    /// Accepted steps.
    pub accepted: u64,
    /// Set when the right-hand side produced NaN/inf or the step size collapsed; the
    /// integration stops where it was.
    pub failed: bool,
}

const DP_C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const DP_A: [[f64; 6]; 7] = [
    [0.0; 6],
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// 5th-order weights minus 4th-order weights (the error estimate).
const DP_E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

impl Rk45 {
    /// Integrate from (t0, y0) towards t_end (either direction).
    pub fn new(t0: f64, y0: Vec<f64>, t_end: f64, rtol: f64, atol: f64) -> Self {
        let n = y0.len();
        let h = 0.01 * (t_end - t0);
        Self {
            t: t0,
            t_end,
            y: y0,
            h,
            rtol,
            atol,
            k: std::array::from_fn(|_| vec![0.0; n]),
            fsal: false,
            nfev: 0,
            accepted: 0,
            failed: false,
        }
    }

    /// Reached the end.
    pub fn done(&self) -> bool {
        self.failed || (self.t_end - self.t).abs() <= 1e-12 * (1.0 + self.t_end.abs())
    }

    /// Attempt steps until one is accepted (or the end is reached).
    // Stage sums index k[j][i], y[i] and ytmp[i] together; an index loop is the clear form.
    #[allow(clippy::needless_range_loop)]
    pub fn step(&mut self, f: &mut OdeRhs<'_>) {
        if self.done() {
            return;
        }
        let n = self.y.len();
        if !self.fsal {
            f(self.t, &self.y, &mut self.k[0]);
            self.nfev += 1;
            self.fsal = true;
        }
        let dir = (self.t_end - self.t).signum();
        let mut ytmp = vec![0.0; n];
        loop {
            let mut h = self.h;
            if (self.t + h - self.t_end) * dir > 0.0 {
                h = self.t_end - self.t;
            }
            for s in 1..7 {
                for i in 0..n {
                    let mut acc = self.y[i];
                    for (j, a) in DP_A[s][..s].iter().enumerate() {
                        acc += h * a * self.k[j][i];
                    }
                    ytmp[i] = acc;
                }
                let (_, tail) = self.k.split_at_mut(s);
                f(self.t + DP_C[s] * h, &ytmp, &mut tail[0]);
                self.nfev += 1;
            }
            // ytmp now holds the 5th-order solution (row 6 of A are its weights).
            let mut err2 = 0.0;
            for i in 0..n {
                let e: f64 = (0..7).map(|s| DP_E[s] * self.k[s][i]).sum::<f64>() * h;
                let sc = self.atol + self.rtol * self.y[i].abs().max(ytmp[i].abs());
                err2 += (e / sc).powi(2);
            }
            let err = (err2 / n as f64).sqrt();
            if !err.is_finite() || h.abs() < 1e-14 || self.nfev > 10_000_000 {
                self.failed = true;
                return;
            }
            if err <= 1.0 {
                self.t += h;
                self.y.copy_from_slice(&ytmp);
                self.k.swap(0, 6);
                self.accepted += 1;
                let fac = if err == 0.0 {
                    10.0
                } else {
                    (0.9 * err.powf(-0.2)).clamp(0.2, 10.0)
                };
                self.h = h * fac;
                if (self.t_end - self.t).abs() < 1e-12 {
                    self.t = self.t_end;
                }
                return;
            }
            self.h = h * (0.9 * err.powf(-0.2)).clamp(0.2, 1.0);
        }
    }

    /// Integrate to the end.
    pub fn run(&mut self, f: &mut OdeRhs<'_>) {
        while !self.done() {
            self.step(f);
        }
    }
}

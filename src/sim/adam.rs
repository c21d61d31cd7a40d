//! Adam (Kingma & Ba 2015) with bias correction, plus an exponential moving average of the
//! weights (score_sde evaluates with EMA weights).

use serde::{Deserialize, Serialize};

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator floor.
    pub eps: f32,
    /// Decay of the weight EMA (0 disables it).
    pub ema_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            ema_decay: 0.995,
        }
    }
}

/// Optimiser state.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// Hyper-parameters.
    pub config: AdamConfig,
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
    /// EMA of the weights.
    pub ema: Vec<f32>,
    /// Updates applied so far.
    pub t: u32,
}

impl Adam {
    /// Fresh state for `params`.
    pub fn new(config: AdamConfig, params: &[f32]) -> Self {
        Self {
            config,
            m: vec![0.0; params.len()],
            v: vec![0.0; params.len()],
            ema: params.to_vec(),
            t: 0,
        }
    }

    /// One update: θ ← θ − lr · m̂ / (√v̂ + eps), then ema ← d·ema + (1−d)·θ.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        self.t += 1;
        let c = self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        // EMA warm-up as in many implementations: the effective decay starts small.
        let d = c
            .ema_decay
            .min((1.0 + self.t as f32) / (10.0 + self.t as f32));
        for i in 0..params.len() {
            let g = grad[i];
            self.m[i] = c.beta1 * self.m[i] + (1.0 - c.beta1) * g;
            self.v[i] = c.beta2 * self.v[i] + (1.0 - c.beta2) * g * g;
            let mhat = self.m[i] / bc1;
            let vhat = self.v[i] / bc2;
            params[i] -= c.lr * mhat / (vhat.sqrt() + c.eps);
            self.ema[i] = d * self.ema[i] + (1.0 - d) * params[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr_against_the_gradient_sign() {
        let mut p = vec![1.0f32, -2.0];
        let mut adam = Adam::new(
            AdamConfig {
                ema_decay: 0.0,
                ..AdamConfig::default()
            },
            &p,
        );
        adam.step(&mut p, &[0.5, -3.0]);
        // With bias correction the first step is exactly lr · sign(g) (up to eps).
        assert!((p[0] - (1.0 - 2e-3)).abs() < 1e-6);
        assert!((p[1] - (-2.0 + 2e-3)).abs() < 1e-6);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut p = vec![3.0f32, -4.0];
        let mut adam = Adam::new(
            AdamConfig {
                lr: 0.05,
                ..AdamConfig::default()
            },
            &p,
        );
        for _ in 0..2000 {
            let g = vec![2.0 * (p[0] - 1.0), 2.0 * (p[1] + 0.5)];
            adam.step(&mut p, &g);
        }
        assert!(
            (p[0] - 1.0).abs() < 1e-2 && (p[1] + 0.5).abs() < 1e-2,
            "{p:?}"
        );
    }
}

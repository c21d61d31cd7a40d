//! Counter-based random numbers: every random value is a pure function of
//! `(seed, step, index, stream)`, so a WGSL kernel can reproduce any single draw
//! exactly (ARCHITECTURE.md §5 "RNG").
//!
//! The hash is `pcg4d` (Jarzynski & Olano, "Hash Functions for GPU Rendering", JCGT 2020):
//! only wrapping `u32` multiplies, adds, xors and shifts, which WGSL has with the same
//! semantics. Uniforms keep 24 bits so they are exact in `f32` and `f64` alike.

use crate::sim::Vec2;

/// Stream ids: independent sub-streams for the different uses of randomness in one step.
pub mod stream {
    /// Choice of mixture component and `t` for a training sample, plus the x0 normals.
    pub const DATA: u32 = 1;
    /// The DSM noise `z` of a training sample.
    pub const NOISE: u32 = 2;
    /// Initial particle positions.
    pub const INIT: u32 = 3;
    /// Noise of a sampler's predictor / Langevin step.
    pub const STEP: u32 = 4;
    /// Noise of a predictor–corrector's corrector step.
    pub const CORRECTOR: u32 = 5;
    /// Network weight initialisation.
    pub const WEIGHTS: u32 = 6;
    /// Fixed Fourier-feature frequencies of the network.
    pub const FOURIER: u32 = 7;
    /// Evaluation draws (metrics).
    pub const EVAL: u32 = 8;
    /// Sequential generator ([`super::StreamRng`]).
    pub const SEQUENTIAL: u32 = 9;
}

/// The pcg4d hash: four `u32` in, four well-mixed `u32` out.
#[inline]
pub fn pcg4d(v: [u32; 4]) -> [u32; 4] {
    let mut v = v.map(|x| x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223));
    v[0] = v[0].wrapping_add(v[1].wrapping_mul(v[3]));
    v[1] = v[1].wrapping_add(v[2].wrapping_mul(v[0]));
    v[2] = v[2].wrapping_add(v[0].wrapping_mul(v[1]));
    v[3] = v[3].wrapping_add(v[1].wrapping_mul(v[2]));
    v = v.map(|x| x ^ (x >> 16));
    v[0] = v[0].wrapping_add(v[1].wrapping_mul(v[3]));
    v[1] = v[1].wrapping_add(v[2].wrapping_mul(v[0]));
    v[2] = v[2].wrapping_add(v[0].wrapping_mul(v[1]));
    v[3] = v[3].wrapping_add(v[1].wrapping_mul(v[2]));
    v
}

/// A uniform in `[0, 1)` from the top 24 bits (exact in f32).
#[inline]
pub fn unit_closed_open(u: u32) -> f64 {
    f64::from(u >> 8) * (1.0 / 16_777_216.0)
}

/// A uniform in `(0, 1]` from the top 24 bits (safe for `ln`).
#[inline]
pub fn unit_open_closed(u: u32) -> f64 {
    f64::from((u >> 8) + 1) * (1.0 / 16_777_216.0)
}

/// Box–Muller: two independent standard normals from two hashed words.
#[inline]
pub fn box_muller(u1: u32, u2: u32) -> Vec2 {
    let r = (-2.0 * unit_open_closed(u1).ln()).sqrt();
    let theta = std::f64::consts::TAU * unit_closed_open(u2);
    Vec2::new(r * theta.cos(), r * theta.sin())
}

/// A counter-based generator: a seed, and pure functions of `(step, index, stream)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterRng {
    /// User seed.
    pub seed: u32,
}

impl CounterRng {
    /// A generator for `seed`.
    pub fn new(seed: u32) -> Self {
        Self { seed }
    }

    /// Four hashed words for `(step, index, stream)`.
    #[inline]
    pub fn bits(&self, step: u32, index: u32, stream: u32) -> [u32; 4] {
        pcg4d([self.seed, step, index, stream])
    }

    /// Four uniforms in `[0, 1)`.
    #[inline]
    pub fn uniform4(&self, step: u32, index: u32, stream: u32) -> [f64; 4] {
        self.bits(step, index, stream).map(unit_closed_open)
    }

    /// Two standard normals (words 0 and 1 of the hash) and a uniform in `(0, 1]` (word 2):
    /// a Metropolis step's noise and its accept draw from one hash.
    #[inline]
    pub fn normal2_uniform(&self, step: u32, index: u32, stream: u32) -> (Vec2, f64) {
        let b = self.bits(step, index, stream);
        (box_muller(b[0], b[1]), unit_open_closed(b[2]))
    }

    /// Two standard normals (words 0 and 1 of the hash).
    #[inline]
    pub fn normal2(&self, step: u32, index: u32, stream: u32) -> Vec2 {
        let b = self.bits(step, index, stream);
        box_muller(b[0], b[1])
    }

    /// Four standard normals (words 0,1 and 2,3 of the hash).
    #[inline]
    pub fn normal4(&self, step: u32, index: u32, stream: u32) -> [f64; 4] {
        let b = self.bits(step, index, stream);
        let a = box_muller(b[0], b[1]);
        let c = box_muller(b[2], b[3]);
        [a.x, a.y, c.x, c.y]
    }
}

/// A sequential generator over the same hash, for code that just wants "the next number"
/// (it implements [`rand::TryRng`], so `rand::RngExt` works on it). Portable: the same
/// seed gives the same sequence on every platform, native and wasm.
#[derive(Clone, Debug)]
pub struct StreamRng {
    rng: CounterRng,
    stream: u32,
    counter: u32,
    buffer: [u32; 4],
    used: usize,
}

impl StreamRng {
    /// A sequence for `(seed, stream)`.
    pub fn new(seed: u32, stream: u32) -> Self {
        Self {
            rng: CounterRng::new(seed),
            stream,
            counter: 0,
            buffer: [0; 4],
            used: 4,
        }
    }

    /// The next hashed word.
    pub fn next_word(&mut self) -> u32 {
        if self.used == 4 {
            self.buffer = self.rng.bits(self.counter, self.stream, stream::SEQUENTIAL);
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
        let w = self.buffer[self.used];
        self.used += 1;
        w
    }

    /// A uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        unit_closed_open(self.next_word())
    }

    /// Two standard normals.
    pub fn normal2(&mut self) -> Vec2 {
        let (a, b) = (self.next_word(), self.next_word());
        box_muller(a, b)
    }
}

impl rand::TryRng for StreamRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.next_word())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let lo = u64::from(self.next_word());
        let hi = u64::from(self.next_word());
        Ok(lo | (hi << 32))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(4) {
            let w = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg4d_is_a_fixed_function() {
        // Pinned values, computed independently (Python, from the paper's reference code):
        // the WGSL port must produce exactly these words.
        assert_eq!(
            pcg4d([7, 0, 0, 0]),
            [3_988_896_953, 1_168_609_940, 2_463_492_931, 4_294_468_124]
        );
        assert_eq!(
            pcg4d([1, 2, 3, 4]),
            [908_250_390, 4_044_648_920, 3_775_961_919, 45_698_095]
        );
    }

    #[test]
    fn normals_have_unit_moments() {
        let rng = CounterRng::new(42);
        let n = 200_000u32;
        let (mut s, mut s2, mut cross) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let z = rng.normal2(0, i, stream::STEP);
            s += z.x + z.y;
            s2 += z.x * z.x + z.y * z.y;
            cross += z.x * z.y;
        }
        let m = f64::from(2 * n);
        assert!((s / m).abs() < 0.01, "mean {}", s / m);
        assert!((s2 / m - 1.0).abs() < 0.01, "var {}", s2 / m);
        assert!((cross / f64::from(n)).abs() < 0.01);
    }

    #[test]
    fn stream_rng_works_with_rand() {
        use rand::RngExt;
        let mut r = StreamRng::new(3, 0);
        let x: f64 = r.random();
        assert!((0.0..1.0).contains(&x));
        let mut a = StreamRng::new(3, 0);
        let mut b = StreamRng::new(3, 0);
        assert_eq!(a.next_word(), b.next_word());
    }
}

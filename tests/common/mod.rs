//! Fixtures shared by the science tests of both engines (tests/cpu_reference, tests/gpu_parity).

use scorelab::sim::mixture::{presets, ComponentSpec, GaussianMixture, MixtureSpec};
use scorelab::sim::rng::StreamRng;
use scorelab::sim::Vec2;

/// A random "dragged" mixture (issue 15): 2–6 components, means anywhere in a ±25 box (not
/// centred), rotated anisotropic covariances (eigenvalues 0.1–3), weights down to 0.03, well
/// separated (centres ≥ 4 (σ_i + σ_j) apart, σ the larger std of each, so overlap is
/// negligible). Both engines' tests draw from it.
pub fn dragged_mixture(seed: u32) -> GaussianMixture {
    let mut rng = StreamRng::new(seed, 77);
    // 2..=6 components; every other mixture has a small first one (0.03 of the total weight).
    let k = 2 + (rng.uniform() * 5.0) as usize;
    let small = seed.is_multiple_of(2);
    let mut comps: Vec<(ComponentSpec, f64)> = Vec::new(); // (component, larger std)
    while comps.len() < k {
        let (l1, l2) = (0.1 + 2.9 * rng.uniform(), 0.1 + 2.9 * rng.uniform());
        let th = std::f64::consts::PI * rng.uniform();
        let (c, s) = (th.cos(), th.sin());
        let cov = [
            [l1 * c * c + l2 * s * s, (l1 - l2) * c * s],
            [(l1 - l2) * c * s, l1 * s * s + l2 * c * c],
        ];
        let mean = [50.0 * rng.uniform() - 25.0, 50.0 * rng.uniform() - 25.0];
        let sd = l1.max(l2).sqrt();
        let far = comps.iter().all(|(o, osd)| {
            let d = Vec2::new(mean[0] - o.mean[0], mean[1] - o.mean[1]).norm();
            d >= 4.0 * (sd + osd)
        });
        if far {
            let weight = 0.2 + rng.uniform();
            comps.push((ComponentSpec { weight, mean, cov }, sd));
        }
    }
    let mut comps: Vec<ComponentSpec> = comps.into_iter().map(|(c, _)| c).collect();
    if small {
        let rest: f64 = comps[1..].iter().map(|c| c.weight).sum();
        comps[0].weight = 0.03 / 0.97 * rest;
    }
    GaussianMixture::from_spec(&MixtureSpec { components: comps }).unwrap()
}

/// A named preset (panics on an unknown name: a test typo).
pub fn preset(name: &str) -> GaussianMixture {
    GaussianMixture::from_spec(&presets::by_name(name).unwrap()).unwrap()
}

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
        let cov = rotated_cov(l1, l2, std::f64::consts::PI * rng.uniform());
        let mean = [50.0 * rng.uniform() - 25.0, 50.0 * rng.uniform() - 25.0];
        let sd = l1.max(l2).sqrt();
        if far_from_all(&comps, mean, sd) {
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

/// The covariance with eigenvalues (l1, l2) turned by `th` radians.
fn rotated_cov(l1: f64, l2: f64, th: f64) -> [[f64; 2]; 2] {
    let (c, s) = (th.cos(), th.sin());
    [
        [l1 * c * c + l2 * s * s, (l1 - l2) * c * s],
        [(l1 - l2) * c * s, l1 * s * s + l2 * c * c],
    ]
}

/// Whether a component at `mean` with larger std `sd` is ≥ 4 (σ_i + σ_j) from every one of
/// `comps` (component, larger std).
fn far_from_all(comps: &[(ComponentSpec, f64)], mean: [f64; 2], sd: f64) -> bool {
    comps.iter().all(|(o, osd)| {
        let d = Vec2::new(mean[0] - o.mean[0], mean[1] - o.mean[1]).norm();
        d >= 4.0 * (sd + osd)
    })
}

/// A named preset (panics on an unknown name: a test typo).
pub fn preset(name: &str) -> GaussianMixture {
    GaussianMixture::from_spec(&presets::by_name(name).unwrap()).unwrap()
}

/// A random mixture as a user drags it on the live page (issue 27): 2–6 components, the box
/// the means fall in and the narrowest variance drawn per mixture (half-widths 4–25, so some
/// mixtures are spread over ±25; eigenvalues log-uniform from a floor of 0.005–0.3 up to 3,
/// so some components are narrow), rotated, weights down to 0.03, separated by ≥ 4 (σ_i + σ_j).
pub fn live_mixture(seed: u32) -> GaussianMixture {
    let mut rng = StreamRng::new(seed, 91);
    let k = 2 + (rng.uniform() * 5.0) as usize;
    let half = [4.0, 12.0, 25.0][(rng.uniform() * 3.0) as usize % 3];
    let floor: f64 = [0.005, 0.05, 0.3][(rng.uniform() * 3.0) as usize % 3];
    let mut comps: Vec<(ComponentSpec, f64)> = Vec::new();
    let mut tries = 0;
    while comps.len() < k {
        tries += 1;
        let draw = |u: f64| floor * (3.0 / floor).powf(u);
        let (l1, l2) = (draw(rng.uniform()), draw(rng.uniform()));
        let cov = rotated_cov(l1, l2, std::f64::consts::PI * rng.uniform());
        // The box grows if the components do not fit (a narrow box and wide components).
        let h = half * (1.0 + tries as f64 / 200.0);
        let mean = [
            2.0 * h * rng.uniform() - h + 7.0,
            2.0 * h * rng.uniform() - h - 3.0,
        ];
        let sd = l1.max(l2).sqrt();
        if far_from_all(&comps, mean, sd) {
            let weight = 0.2 + rng.uniform();
            comps.push((ComponentSpec { weight, mean, cov }, sd));
        }
    }
    let mut comps: Vec<ComponentSpec> = comps.into_iter().map(|(c, _)| c).collect();
    if seed.is_multiple_of(3) {
        let rest: f64 = comps[1..].iter().map(|c| c.weight).sum();
        comps[0].weight = 0.03 / 0.97 * rest;
    }
    GaussianMixture::from_spec(&MixtureSpec { components: comps }).unwrap()
}

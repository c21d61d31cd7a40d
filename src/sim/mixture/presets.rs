//! Named example mixtures.

use super::{ComponentSpec, MixtureSpec};

/// Names accepted by [`by_name`].
pub const NAMES: &[&str] = &[
    "ncsn",
    "ring8",
    "grid25",
    "spiral",
    "two-moons-ish",
    "anisotropic3",
];

fn iso(weight: f64, x: f64, y: f64, var: f64) -> ComponentSpec {
    ComponentSpec {
        weight,
        mean: [x, y],
        cov: [[var, 0.0], [0.0, var]],
    }
}

/// A preset by name.
pub fn by_name(name: &str) -> Option<MixtureSpec> {
    let components = match name {
        // Song & Ermon 2019, Fig. 3: weights 1/5 and 4/5.
        "ncsn" => vec![iso(0.2, -5.0, -5.0, 1.0), iso(0.8, 5.0, 5.0, 1.0)],
        "ring8" => (0..8)
            .map(|k| {
                let a = std::f64::consts::TAU * f64::from(k) / 8.0;
                iso(1.0, 4.0 * a.cos(), 4.0 * a.sin(), 0.09)
            })
            .collect(),
        "grid25" => (0..25)
            .map(|k| {
                iso(
                    1.0,
                    f64::from(k % 5) * 2.0 - 4.0,
                    f64::from(k / 5) * 2.0 - 4.0,
                    0.04,
                )
            })
            .collect(),
        "spiral" => (0..12)
            .map(|k| {
                let s = f64::from(k) / 11.0;
                let a = 3.0 * std::f64::consts::PI * s;
                let r = 0.8 + 4.2 * s;
                iso(1.0, r * a.cos(), r * a.sin(), 0.05 + 0.1 * s)
            })
            .collect(),
        // Two bent arcs of small elongated Gaussians.
        "two-moons-ish" => (0..12)
            .map(|k| {
                let upper = k < 6;
                let s = f64::from(k % 6) / 5.0;
                let a = std::f64::consts::PI * s;
                let (x, y) = if upper {
                    (2.0 * a.cos() - 1.0, 2.0 * a.sin() - 0.3)
                } else {
                    (1.0 - 2.0 * a.cos(), 0.3 - 2.0 * a.sin())
                };
                let (c, sn) = (
                    (a + std::f64::consts::FRAC_PI_2).cos(),
                    (a + std::f64::consts::FRAC_PI_2).sin(),
                );
                // Stretched along the arc tangent.
                let (l1, l2) = (0.12, 0.02);
                let xx = l1 * c * c + l2 * sn * sn;
                let yy = l1 * sn * sn + l2 * c * c;
                let xy = (l1 - l2) * c * sn;
                ComponentSpec {
                    weight: 1.0,
                    mean: [x, y],
                    cov: [[xx, xy], [xy, yy]],
                }
            })
            .collect(),
        // Three anisotropic, rotated components (used in the likelihood tests).
        "anisotropic3" => vec![
            ComponentSpec {
                weight: 0.5,
                mean: [-2.0, 1.0],
                cov: [[1.0, 0.6], [0.6, 0.5]],
            },
            ComponentSpec {
                weight: 0.3,
                mean: [2.5, 0.5],
                cov: [[0.3, -0.2], [-0.2, 0.8]],
            },
            ComponentSpec {
                weight: 0.2,
                mean: [0.0, -2.5],
                cov: [[1.5, 0.0], [0.0, 0.2]],
            },
        ],
        _ => return None,
    };
    Some(MixtureSpec { components })
}

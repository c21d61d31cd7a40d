//! Covariance ellipses and component edits (what the canvas's handles do, as math): the
//! principal axes of a 2×2 covariance, the covariance with a given major axis, and removing a
//! component.

#[cfg(test)]
use crate::sim::mixture::ComponentSpec;
use crate::sim::mixture::MixtureSpec;
use crate::sim::Vec2;

/// Eigen-decomposition of a symmetric 2×2 covariance: (σ_major, unit major axis, σ_minor).
pub fn principal_axes(cov: [[f64; 2]; 2]) -> (f64, Vec2, f64) {
    let (a, b, d) = (cov[0][0], 0.5 * (cov[0][1] + cov[1][0]), cov[1][1]);
    let mean = 0.5 * (a + d);
    let r = (0.25 * (a - d) * (a - d) + b * b).sqrt();
    let (l1, l2) = (mean + r, (mean - r).max(0.0));
    let v = if b.abs() > 1e-12 * (a.abs() + d.abs()) {
        Vec2::new(l1 - d, b).normalize()
    } else if a >= d {
        Vec2::new(1.0, 0.0)
    } else {
        Vec2::new(0.0, 1.0)
    };
    (l1.sqrt(), v, l2.sqrt())
}

/// Covariance with standard deviation |axis| along `axis` and `minor_std` across it.
pub fn cov_from_axis(axis: Vec2, minor_std: f64) -> [[f64; 2]; 2] {
    let a = axis.norm();
    let u = if a > 0.0 {
        axis / a
    } else {
        Vec2::new(1.0, 0.0)
    };
    let w = Vec2::new(-u.y, u.x);
    let (a2, b2) = (a * a, minor_std * minor_std);
    let c = |i: usize, j: usize| a2 * u[i] * u[j] + b2 * w[i] * w[j];
    [[c(0, 0), c(0, 1)], [c(0, 1), c(1, 1)]]
}

/// `spec` without component `k` (a mixture keeps at least one component).
pub fn remove_component(spec: &MixtureSpec, k: usize) -> Result<MixtureSpec, String> {
    if spec.components.len() <= 1 {
        return Err("A mixture needs at least one component.".into());
    }
    let mut s = spec.clone();
    if k < s.components.len() {
        s.components.remove(k);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_trip_through_the_covariance() {
        for (axis, minor) in [
            (Vec2::new(2.0, 0.0), 0.5),
            (Vec2::new(0.3, -1.7), 0.2),
            (Vec2::new(-1.0, 1.0), 0.9),
        ] {
            let cov = cov_from_axis(axis, minor);
            assert!((cov[0][1] - cov[1][0]).abs() < 1e-12);
            let (s1, v, s2) = principal_axes(cov);
            assert!((s1 - axis.norm()).abs() < 1e-9, "{s1} vs {}", axis.norm());
            assert!((s2 - minor).abs() < 1e-9);
            // same axis up to sign
            assert!((v.dot(&axis.normalize()).abs() - 1.0).abs() < 1e-9);
        }
        let (s1, v, s2) = principal_axes([[1.0, 0.0], [0.0, 4.0]]);
        assert_eq!((s1, s2), (2.0, 1.0));
        assert_eq!(v, Vec2::new(0.0, 1.0));
    }

    #[test]
    fn the_last_component_cannot_be_removed() {
        let one = MixtureSpec {
            components: vec![ComponentSpec {
                weight: 1.0,
                mean: [0.0, 0.0],
                cov: [[1.0, 0.0], [0.0, 1.0]],
            }],
        };
        assert!(remove_component(&one, 0).is_err());
        let mut two = one.clone();
        two.components.push(ComponentSpec {
            weight: 2.0,
            mean: [1.0, 0.0],
            cov: [[1.0, 0.0], [0.0, 1.0]],
        });
        let s = remove_component(&two, 0).expect("two components");
        assert_eq!(s.components.len(), 1);
        assert_eq!(s.components[0].weight, 2.0);
    }
}

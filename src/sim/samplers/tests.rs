use super::*;
use crate::sim::mixture::presets;
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::{NetConfig, ScoreNet};
use crate::sim::score::ExactScore;

/// Runs `steps` steps of every sampler whole and in slices of `slice` particles; the
/// particles and NFE must be identical (same noise, same per-particle arithmetic).
fn sliced_equals_whole(score: &dyn ScoreModel, m: &GaussianMixture, sde: Sde, slice: usize) {
    for kind in SamplerKind::ALL {
        let cfg = SamplerConfig {
            n_steps: 6,
            n_levels: 3,
            ..SamplerConfig::defaults(kind, m)
        };
        let n = 1100;
        let mut whole = Sampler::new(cfg.clone(), sde, n).expect("valid sampler");
        let mut sliced = whole.clone();
        for _ in 0..4 {
            whole.step(score);
            let mut calls = 1;
            while !sliced.advance(score, slice) {
                calls += 1;
            }
            if kind != SamplerKind::OdeRk45 {
                assert!(calls > 1, "{kind:?}: a step of {n} in slices of {slice}");
            }
            assert_eq!(whole.steps_done(), sliced.steps_done(), "{kind:?}");
        }
        assert_eq!(whole.x, sliced.x, "{kind:?} particles");
        assert_eq!(whole.x_mean, sliced.x_mean, "{kind:?} means");
        assert_eq!(whole.nfe(), sliced.nfe(), "{kind:?} NFE");
        assert!(whole.x.iter().all(|x| x.x.is_finite() && x.y.is_finite()));
    }
}

#[test]
fn a_step_in_slices_equals_the_whole_step() {
    let spec = presets::by_name("ring8").expect("ring8 is a preset");
    let m = GaussianMixture::from_spec(&spec).expect("valid");
    for kind in [SdeKind::Ve, SdeKind::Vp] {
        let sde = Sde::for_mixture(kind, &m);
        let exact = ExactScore::new(m.clone(), sde);
        sliced_equals_whole(&exact, &m, sde, 300);
        // Metropolis-adjusted: the same particles and acceptance in slices.
        for kind in [SamplerKind::Langevin, SamplerKind::AnnealedLangevin] {
            let cfg = SamplerConfig {
                n_steps: 5,
                n_levels: 3,
                ..SamplerConfig::defaults(kind, &m)
            };
            let mut whole = Sampler::new(cfg, sde, 700)
                .expect("valid sampler")
                .with_mala(exact.clone());
            let mut sliced = whole.clone();
            assert!(whole.is_mala());
            while !whole.done() {
                whole.step(&exact);
                while !sliced.advance(&exact, 256) {}
            }
            assert_eq!(whole.x, sliced.x, "{kind:?} MALA particles");
            assert_eq!(whole.acceptance(), sliced.acceptance());
            let (acc, prop) = whole.acceptance();
            assert_eq!(prop, 700 * whole.total_steps() as u64);
            assert!(acc > 0 && acc < prop, "{kind:?}: accepted {acc} of {prop}");
        }
        let cfg = NetConfig {
            width: 16,
            depth: 2,
            data_std: m.data_std(),
            ..NetConfig::default()
        };
        let net = ScoreNet::new(cfg, sde).expect("valid net");
        // Slices on the network's chunk boundaries (512 points) and off them.
        sliced_equals_whole(&net, &m, sde, 512);
        sliced_equals_whole(&net, &m, sde, 333);
    }
}

/// Plain Langevin at a large step (h = the narrowest component variance) on an
/// off-centre anisotropic mixture, with and without the Metropolis adjustment: per
/// component, MALA keeps the covariance's eigenvalues, unadjusted Langevin widens them.
#[test]
fn mala_in_the_sampler_removes_langevin_step_bias() {
    let m = crate::sim::test_mixtures::off_centre_anisotropic();
    let sde = Sde::for_mixture(SdeKind::Ve, &m);
    let exact = ExactScore::new(m.clone(), sde);
    let cfg = SamplerConfig {
        n_steps: 600,
        alpha_last: narrowest_variance(&m),
        seed: 3,
        ..SamplerConfig::defaults(SamplerKind::Langevin, &m)
    };
    let n = 6000;
    let mut plain = Sampler::new(cfg.clone(), sde, n).expect("valid");
    let mut mala = Sampler::new(cfg, sde, n)
        .expect("valid")
        .with_mala(exact.clone());
    plain.run(&exact);
    mala.run(&exact);
    let worst = |xs: &[Vec2]| crate::sim::metrics::variance_error(&m, xs);
    let (acc, prop) = mala.acceptance();
    let (e_mala, e_plain) = (worst(mala.samples()), worst(plain.samples()));
    assert!(e_mala < 0.08, "MALA eigenvalue error {e_mala}");
    assert!(
        e_plain > 0.2,
        "unadjusted Langevin eigenvalue error {e_plain}"
    );
    let rate = acc as f64 / prop as f64;
    eprintln!(
        "worst eigenvalue error: MALA {e_mala:.3} (acceptance {rate:.3}), unadjusted {e_plain:.3}"
    );
    assert!((0.5..0.99).contains(&rate), "acceptance {rate}");
}

/// A sampler's name in links, scene files and `state()` (serde) is its CLI and menu name.
#[test]
fn every_sampler_serializes_as_its_name() {
    for kind in SamplerKind::ALL {
        let json = serde_json::to_string(&kind).expect("serializable");
        assert_eq!(json, format!("\"{}\"", kind.name()));
        assert_eq!(SamplerKind::parse(kind.name()), Some(kind));
        let back: SamplerKind = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, kind);
    }
}

/// A run split into shards by particle ([`Sampler::new_shard`]) gives, concatenated, the
/// whole run's particles bit for bit (the worker pool's samplers rely on it); the samplers
/// whose particles meet refuse to split.
#[test]
fn shards_of_a_run_are_the_whole_run() {
    let spec = presets::by_name("ncsn").expect("ncsn is a preset");
    let m = GaussianMixture::from_spec(&spec).expect("valid");
    let sde = Sde::for_mixture(SdeKind::Vp, &m);
    let exact = ExactScore::new(m.clone(), sde);
    let n = 301;
    let cuts = [0, 97, 98, 250, n];
    for kind in SamplerKind::ALL {
        let cfg = SamplerConfig {
            n_steps: 5,
            n_levels: 3,
            seed: 7,
            ..SamplerConfig::defaults(kind, &m)
        };
        if kind.couples_particles() {
            assert!(
                Sampler::new_shard(cfg.clone(), sde, n, 0..100).is_err(),
                "{kind:?}"
            );
            assert!(
                Sampler::new_shard(cfg, sde, n, 0..n).is_ok(),
                "{kind:?} whole"
            );
            continue;
        }
        for mala in [false, true] {
            if mala && !matches!(kind, SamplerKind::Langevin | SamplerKind::AnnealedLangevin) {
                continue;
            }
            let make = |r: std::ops::Range<usize>| {
                let s = Sampler::new_shard(cfg.clone(), sde, n, r).expect("a shard");
                if mala {
                    s.with_mala(exact.clone())
                } else {
                    s
                }
            };
            let mut whole = make(0..n);
            whole.run(&exact);
            let (mut x, mut means, mut acc) = (Vec::new(), Vec::new(), (0, 0));
            for w in cuts.windows(2) {
                let mut s = make(w[0]..w[1]);
                s.run(&exact);
                assert_eq!(s.nfe(), whole.nfe(), "{kind:?} NFE per particle");
                x.extend_from_slice(&s.x);
                means.extend_from_slice(&s.x_mean);
                acc = (acc.0 + s.acceptance().0, acc.1 + s.acceptance().1);
            }
            assert_eq!(x, whole.x, "{kind:?} (MALA {mala}) particles");
            assert_eq!(means, whole.x_mean, "{kind:?} (MALA {mala}) means");
            assert_eq!(acc, whole.acceptance(), "{kind:?} (MALA {mala}) acceptance");
        }
    }
    let cfg = SamplerConfig::defaults(SamplerKind::OdeEuler, &m);
    assert!(Sampler::new_shard(cfg.clone(), sde, n, 300..302).is_err());
    assert!(Sampler::new_shard(cfg, sde, n, 5..5).is_err());
}

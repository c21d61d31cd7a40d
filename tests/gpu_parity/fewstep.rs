//! Issue 30 on the WGSL engine: DDIM (η = 0 and > 0), Heun on the EDM schedule (with and
//! without churn) and DPM-Solver++(2M) step for step against the CPU (`fewstep_range`), with
//! the exact score and a network, in a moved frame, over every step of a run (DPM-Solver's
//! memory and the last step included) and, with the exact score, through a drag in the middle
//! of the run (the GPU rewrites the step coefficients as `Sampler::set_sde` recomputes them).

use super::*;

#[test]
fn few_step_samplers_match_cpu_elementwise_over_whole_runs_and_a_drag() {
    let Some(ctx) = ctx() else { return };
    let m = common::dragged_mixture(12);
    let moved = {
        // Moved and stretched: the frame's centre, scale and σ range all change.
        let mut spec = m.to_spec();
        for c in &mut spec.components {
            c.mean = [1.6 * c.mean[0] + 1.5, 1.6 * c.mean[1] - 0.7];
            for row in &mut c.cov {
                for v in row {
                    *v *= 1.4;
                }
            }
        }
        GaussianMixture::from_spec(&spec).unwrap()
    };
    let cases = [
        (SamplerKind::Ddim, SdeKind::Vp, 0.0, 0.0),
        (SamplerKind::Ddim, SdeKind::Vp, 1.0, 0.0),
        (SamplerKind::Ddim, SdeKind::Ve, 0.5, 0.0),
        (SamplerKind::EdmHeun, SdeKind::Ve, 0.0, 0.0),
        (SamplerKind::EdmHeun, SdeKind::Vp, 0.0, 3.0),
        (SamplerKind::DpmSolver, SdeKind::Vp, 0.0, 0.0),
        (SamplerKind::DpmSolver, SdeKind::Subvp, 0.0, 0.0),
    ];
    for (kind, sde_kind, eta, churn) in cases {
        let sde = Sde::for_mixture(sde_kind, &m);
        let sde2 = Sde::for_mixture(sde_kind, &moved);
        let net = test_net(sde, m.data_std(), 0);
        let gnet = GpuNet::upload(ctx, &net).unwrap();
        for use_net in [false, true] {
            let cfg = SamplerConfig {
                seed: 5,
                n_steps: 8,
                eta,
                churn,
                ..SamplerConfig::defaults(kind, &m)
            };
            let n = 200;
            let mut cpu = Sampler::new(cfg.clone(), sde, n).unwrap();
            let score = if use_net {
                GpuScore::Net(&gnet)
            } else {
                GpuScore::Exact
            };
            let mut gpu = GpuSampler::new(ctx, score, &m, sde, &cfg, n).unwrap();
            let (mut mix, mut cur) = (m.clone(), sde);
            for step in 0..8 {
                if step == 5 && !use_net {
                    // A drag: both engines follow the moved mixture's SDE from here (the exact
                    // score; a network keeps the frame it was trained in on the CPU, while the
                    // GPU's reads the mixture uniform, so the engines retrain after a drag).
                    (mix, cur) = (moved.clone(), sde2);
                    cpu.set_sde(cur);
                    gpu.set_mixture(ctx, &mix, &cur);
                }
                let exact = ExactScore::new(mix.clone(), cur);
                let s: &dyn ScoreModel = if use_net { &net } else { &exact };
                cpu.step(s);
                gpu.step_n(ctx, 1);
                let label = format!(
                    "{}/{} η={eta} churn={churn} net={use_net} step {step}",
                    kind.name(),
                    sde_kind.name()
                );
                assert_particles_match(ctx, &gpu, &cpu, &label);
            }
            assert!(gpu.done() && cpu.done(), "{}", kind.name());
            assert_eq!(gpu.nfe(), cpu.nfe(), "{}: NFE", kind.name());
            // The run moved the particles (a parity of nothing would pass trivially).
            let start = Sampler::new(cfg.clone(), sde, n).unwrap();
            let moved_by = cpu
                .x
                .iter()
                .zip(&start.x)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            assert!(moved_by > 0.1 * m.data_std(), "{}: {moved_by}", kind.name());
        }
    }
}

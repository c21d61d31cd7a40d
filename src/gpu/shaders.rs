//! WGSL sources: every module is `common.wgsl` + `mixture.wgsl` + `mlp.wgsl` + one stage
//! file, so all stages share the structs, bindings, RNG and score functions. Every stage
//! entry point of workgroup-size 64 is written `@workgroup_size(WORKGROUP_SIZE)`, the prelude's
//! constant, equal to [`crate::gpu::WORKGROUP_SIZE`] (a test checks both).

/// The shared prelude.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
/// Mixture sampling and exact scores.
pub const MIXTURE: &str = include_str!("../../shaders/mixture.wgsl");
/// The score network.
pub const MLP: &str = include_str!("../../shaders/mlp.wgsl");

use crate::sim;

/// A compute entry point of a stage; the pipelines are keyed by it (no lookup by name can
/// miss at run time), and its WGSL name is the pipeline's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// `train_step.wgsl`: batch draw + forward + loss + backward per tile of samples.
    TrainStep,
    /// `train_step.wgsl`: the weight gradient as tiled GEMMs over batch chunks.
    TrainGrad,
    /// `reduce_adam.wgsl`: the chunk partials in order, Adam and EMA.
    ReduceAdam,
    /// `reduce_adam.wgsl`: the loss by a workgroup tree.
    TrainFinish,
    /// `langevin_step.wgsl`: one (annealed) Langevin step.
    LangevinStep,
    /// `langevin_step.wgsl`: one Metropolis-adjusted Langevin step.
    MalaStep,
    /// `reverse_sde_step.wgsl`: Euler–Maruyama on the reverse SDE.
    ReverseSdeStep,
    /// `reverse_sde_step.wgsl`: ancestral sampling.
    AncestralStep,
    /// `pc_step.wgsl`: the corrector's scores.
    PcScore,
    /// `pc_step.wgsl`: the mean noise and score norms (the corrector's step size).
    PcNorms,
    /// `pc_step.wgsl`: the corrector's Langevin move.
    PcCorrect,
    /// `pf_ode_step.wgsl`: one probability-flow ODE step.
    PfOdeStep,
    /// `fewstep_step.wgsl`: one DDIM / DPM-Solver++(2M) / Heun-EDM step.
    FewStepStep,
    /// `field.wgsl`: the learned and exact score on a grid.
    Field,
    /// `likelihood.wgsl`: one RK4 step of the PF-ODE with its divergence.
    LikelihoodStep,
    /// `metrics.wgsl`: the Fisher divergence's terms.
    FisherTerms,
    /// `metrics.wgsl`: pairwise sums of the Fisher terms.
    SumPairs,
    /// `metrics.wgsl`: the mode histogram.
    ModeHistogram,
}

impl Entry {
    /// Every entry point.
    pub const ALL: [Entry; 18] = [
        Entry::TrainStep,
        Entry::TrainGrad,
        Entry::ReduceAdam,
        Entry::TrainFinish,
        Entry::LangevinStep,
        Entry::MalaStep,
        Entry::ReverseSdeStep,
        Entry::AncestralStep,
        Entry::PcScore,
        Entry::PcNorms,
        Entry::PcCorrect,
        Entry::PfOdeStep,
        Entry::FewStepStep,
        Entry::Field,
        Entry::LikelihoodStep,
        Entry::FisherTerms,
        Entry::SumPairs,
        Entry::ModeHistogram,
    ];

    /// The WGSL entry point's name.
    pub const fn name(self) -> &'static str {
        match self {
            Entry::TrainStep => "train_step",
            Entry::TrainGrad => "train_grad",
            Entry::ReduceAdam => "reduce_adam",
            Entry::TrainFinish => "train_finish",
            Entry::LangevinStep => "langevin_step",
            Entry::MalaStep => "mala_step",
            Entry::ReverseSdeStep => "reverse_sde_step",
            Entry::AncestralStep => "ancestral_step",
            Entry::PcScore => "pc_score",
            Entry::PcNorms => "pc_norms",
            Entry::PcCorrect => "pc_correct",
            Entry::PfOdeStep => "pf_ode_step",
            Entry::FewStepStep => "fewstep_step",
            Entry::Field => "field",
            Entry::LikelihoodStep => "likelihood_step",
            Entry::FisherTerms => "fisher_terms",
            Entry::SumPairs => "sum_pairs",
            Entry::ModeHistogram => "mode_histogram",
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage's CPU twin: the `sim` function the GPU-vs-CPU parity tests compare it with,
/// registered by the function itself ([`twin!`]: a path that names no function does not
/// compile); `path` names it for the tests and the docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Twin {
    /// The function's path below the crate root.
    pub path: &'static str,
}

/// Register a CPU twin by its function (checked by the compiler), keeping its path.
macro_rules! twin {
    ($f:path) => {{
        const _: () = {
            let _ = $f;
        };
        Twin {
            path: stringify!($f),
        }
    }};
}

/// One compute stage: a WGSL file, its entry points and each one's CPU twin in `sim`.
pub struct Stage {
    /// File name under `shaders/`.
    pub file: &'static str,
    /// Its source (without the prelude; [`compose`] adds it).
    pub source: &'static str,
    /// (entry point, CPU twin).
    pub entries: &'static [(Entry, Twin)],
}

/// Every compute stage (the particle draw shader and the benchmark SGEMM are not stages).
pub const STAGES: &[Stage] = &[
    Stage {
        file: "train_step.wgsl",
        source: include_str!("../../shaders/train_step.wgsl"),
        entries: &[
            (
                Entry::TrainStep,
                twin!(sim::model::ScoreNet::dsm_loss_and_grad),
            ),
            (Entry::TrainGrad, twin!(sim::mlp::Mlp::backward)),
        ],
    },
    Stage {
        file: "reduce_adam.wgsl",
        source: include_str!("../../shaders/reduce_adam.wgsl"),
        entries: &[
            (Entry::ReduceAdam, twin!(sim::adam::Adam::step)),
            (Entry::TrainFinish, twin!(sim::train::Trainer::step)),
        ],
    },
    Stage {
        file: "langevin_step.wgsl",
        source: include_str!("../../shaders/langevin_step.wgsl"),
        entries: &[
            (Entry::LangevinStep, twin!(sim::samplers::langevin_step)),
            (Entry::MalaStep, twin!(sim::mala::mala_step)),
        ],
    },
    Stage {
        file: "reverse_sde_step.wgsl",
        source: include_str!("../../shaders/reverse_sde_step.wgsl"),
        entries: &[
            (
                Entry::ReverseSdeStep,
                twin!(sim::samplers::reverse_sde_step),
            ),
            (Entry::AncestralStep, twin!(sim::samplers::ancestral_step)),
        ],
    },
    Stage {
        file: "pc_step.wgsl",
        source: include_str!("../../shaders/pc_step.wgsl"),
        entries: &[
            (Entry::PcScore, twin!(sim::samplers::Sampler::step)),
            (Entry::PcNorms, twin!(sim::samplers::corrector_step_size)),
            (Entry::PcCorrect, twin!(sim::samplers::langevin_step)),
        ],
    },
    Stage {
        file: "pf_ode_step.wgsl",
        source: include_str!("../../shaders/pf_ode_step.wgsl"),
        entries: &[(Entry::PfOdeStep, twin!(sim::samplers::pf_ode_step))],
    },
    Stage {
        file: "fewstep_step.wgsl",
        source: include_str!("../../shaders/fewstep_step.wgsl"),
        entries: &[(
            Entry::FewStepStep,
            twin!(sim::samplers::fewstep::fewstep_range),
        )],
    },
    Stage {
        file: "field.wgsl",
        source: include_str!("../../shaders/field.wgsl"),
        entries: &[(Entry::Field, twin!(sim::field::cpu_field))],
    },
    Stage {
        file: "likelihood.wgsl",
        source: include_str!("../../shaders/likelihood.wgsl"),
        entries: &[(
            Entry::LikelihoodStep,
            twin!(sim::likelihood::log_likelihood_rk4),
        )],
    },
    Stage {
        file: "metrics.wgsl",
        source: include_str!("../../shaders/metrics.wgsl"),
        entries: &[
            (Entry::FisherTerms, twin!(sim::metrics::relative_fisher)),
            (Entry::SumPairs, twin!(sim::metrics::relative_fisher)),
            (Entry::ModeHistogram, twin!(sim::metrics::ModeCensus::of)),
        ],
    },
];

/// The full module source of a stage.
pub fn compose(stage_source: &str) -> String {
    [COMMON, MIXTURE, MLP, stage_source].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry point has exactly one stage (so `GpuContext::pipeline` finds each one), and
    /// a twin's path reads as it is written.
    #[test]
    fn every_entry_point_is_in_one_stage() {
        for e in Entry::ALL {
            let n = STAGES
                .iter()
                .flat_map(|s| s.entries.iter())
                .filter(|(x, _)| *x == e)
                .count();
            assert_eq!(n, 1, "{e} is in {n} stages");
        }
        let all: usize = STAGES.iter().map(|s| s.entries.len()).sum();
        assert_eq!(all, Entry::ALL.len());
        assert_eq!(STAGES[0].entries[1].1.path, "sim::mlp::Mlp::backward");
    }
}

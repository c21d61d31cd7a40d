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

/// One compute stage: a WGSL file, its entry points and each one's CPU twin in `sim` (the
/// function the GPU-vs-CPU parity tests compare it with).
pub struct Stage {
    /// File name under `shaders/`.
    pub file: &'static str,
    /// Its source (without the prelude; [`compose`] adds it).
    pub source: &'static str,
    /// (entry point, CPU twin as a path below the crate root).
    pub entries: &'static [(&'static str, &'static str)],
}

/// Every compute stage (the particle draw shader and the benchmark SGEMM are not stages).
pub const STAGES: &[Stage] = &[
    Stage {
        file: "train_step.wgsl",
        source: include_str!("../../shaders/train_step.wgsl"),
        entries: &[
            ("train_step", "sim::model::ScoreNet::dsm_loss_and_grad"),
            ("train_grad", "sim::mlp::Mlp::backward"),
        ],
    },
    Stage {
        file: "reduce_adam.wgsl",
        source: include_str!("../../shaders/reduce_adam.wgsl"),
        entries: &[
            ("reduce_adam", "sim::adam::Adam::step"),
            ("train_finish", "sim::train::Trainer::step"),
        ],
    },
    Stage {
        file: "langevin_step.wgsl",
        source: include_str!("../../shaders/langevin_step.wgsl"),
        entries: &[
            ("langevin_step", "sim::samplers::langevin_step"),
            ("mala_step", "sim::mala::mala_step"),
        ],
    },
    Stage {
        file: "reverse_sde_step.wgsl",
        source: include_str!("../../shaders/reverse_sde_step.wgsl"),
        entries: &[
            ("reverse_sde_step", "sim::samplers::reverse_sde_step"),
            ("ancestral_step", "sim::samplers::ancestral_step"),
        ],
    },
    Stage {
        file: "pc_step.wgsl",
        source: include_str!("../../shaders/pc_step.wgsl"),
        entries: &[
            ("pc_score", "sim::samplers::Sampler::step"),
            ("pc_norms", "sim::samplers::corrector_step_size"),
            ("pc_correct", "sim::samplers::langevin_step"),
        ],
    },
    Stage {
        file: "pf_ode_step.wgsl",
        source: include_str!("../../shaders/pf_ode_step.wgsl"),
        entries: &[("pf_ode_step", "sim::samplers::pf_ode_step")],
    },
    Stage {
        file: "field.wgsl",
        source: include_str!("../../shaders/field.wgsl"),
        entries: &[("field", "sim::field::cpu_field")],
    },
    Stage {
        file: "likelihood.wgsl",
        source: include_str!("../../shaders/likelihood.wgsl"),
        entries: &[("likelihood_step", "sim::likelihood::log_likelihood_rk4")],
    },
    Stage {
        file: "metrics.wgsl",
        source: include_str!("../../shaders/metrics.wgsl"),
        entries: &[
            ("fisher_terms", "sim::metrics::relative_fisher"),
            ("sum_pairs", "sim::metrics::relative_fisher"),
            ("mode_histogram", "sim::metrics::ModeCensus::of"),
        ],
    },
];

/// The full module source of a stage.
pub fn compose(stage_source: &str) -> String {
    [COMMON, MIXTURE, MLP, stage_source].join("\n")
}

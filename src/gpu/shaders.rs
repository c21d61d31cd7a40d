//! WGSL sources: every module is `common.wgsl` + `mixture.wgsl` + `mlp.wgsl` + one stage
//! file, so all stages share the structs, bindings, RNG and score functions.

/// The shared prelude.
pub const COMMON: &str = include_str!("../../shaders/common.wgsl");
/// Mixture sampling and exact scores.
pub const MIXTURE: &str = include_str!("../../shaders/mixture.wgsl");
/// The score network.
pub const MLP: &str = include_str!("../../shaders/mlp.wgsl");

/// (file name, source, entry points) of every stage.
pub const STAGES: &[(&str, &str, &[&str])] = &[
    (
        "train_step.wgsl",
        include_str!("../../shaders/train_step.wgsl"),
        &["train_step"],
    ),
    (
        "reduce_adam.wgsl",
        include_str!("../../shaders/reduce_adam.wgsl"),
        &["reduce_adam", "train_finish"],
    ),
    (
        "langevin_step.wgsl",
        include_str!("../../shaders/langevin_step.wgsl"),
        &["langevin_step"],
    ),
    (
        "reverse_sde_step.wgsl",
        include_str!("../../shaders/reverse_sde_step.wgsl"),
        &["reverse_sde_step", "ancestral_step"],
    ),
    (
        "pc_step.wgsl",
        include_str!("../../shaders/pc_step.wgsl"),
        &["pc_score", "pc_norms", "pc_correct"],
    ),
    (
        "pf_ode_step.wgsl",
        include_str!("../../shaders/pf_ode_step.wgsl"),
        &["pf_ode_step"],
    ),
    (
        "field.wgsl",
        include_str!("../../shaders/field.wgsl"),
        &["field"],
    ),
    (
        "likelihood.wgsl",
        include_str!("../../shaders/likelihood.wgsl"),
        &["likelihood_step"],
    ),
    (
        "metrics.wgsl",
        include_str!("../../shaders/metrics.wgsl"),
        &["fisher_terms", "sum_pairs", "mode_histogram"],
    ),
];

/// The full module source of a stage.
pub fn compose(stage_source: &str) -> String {
    [COMMON, MIXTURE, MLP, stage_source].join("\n")
}

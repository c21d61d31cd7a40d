//! The lesson player's lessons (issue 14): each one a state (the same JSON as its README link)
//! and the text the page shows beside it: what to look at, two or three things to try, a
//! question to discuss. `#lesson=N` (1-based) in a link opens lesson N; without an `s=` state
//! it also loads the lesson's state. A unit test checks that every lesson's state is one of the
//! README's lesson links, so the README and the player cannot drift apart.

use crate::sim::metrics::RunStats;
use crate::state::State;

/// One lesson.
#[derive(Clone, Copy, Debug)]
pub struct Lesson {
    /// Title.
    pub title: &'static str,
    /// Its state, as the JSON a link holds (missing fields take their defaults).
    pub state_json: &'static str,
    /// What to look at.
    pub look: &'static str,
    /// Things to try.
    pub try_this: &'static [&'static str],
    /// A question to discuss.
    pub ask: &'static str,
    /// Failure scenes: why it goes wrong (empty for lessons).
    pub why: &'static str,
    /// Predict, then reveal: a question the player asks before the run starts.
    pub predict: Option<Predict>,
    /// Failure scenes: the number that shows the failure, as measured (a unit test
    /// re-measures it).
    pub check: Option<Check>,
}

/// A question asked before the run (issue 33): the run waits for a choice (or "just show
/// me"), plays, then the player names the right choice from what the page measured.
#[derive(Clone, Copy, Debug)]
pub struct Predict {
    /// The question.
    pub question: &'static str,
    /// Two to four choices.
    pub choices: &'static [&'static str],
    /// How the right choice follows from the measured runs.
    pub reveal: Reveal,
    /// Why (shown with the answer).
    pub why: &'static str,
}

/// How a question's right choice follows from the runs the page measured (sampler A's and,
/// split, B's last finished runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    /// Split A | B: whose mode weights are right (largest error < 0.05): left, right, both,
    /// neither.
    WeightsBySide,
    /// Split A | B: whose spreads are too wide (largest variance error > 0.2): left, right,
    /// both, neither.
    SpreadBySide,
    /// A's fraction near component 1: all (1), its true weight, none (0), whichever is nearest.
    GuidedFraction,
    /// A's diverged fraction: none of them (choice 0) or most (choice 1, above one half).
    Diverged,
}

/// Largest weight error of a sampler whose mode weights count as right.
pub const RIGHT_WEIGHTS: f64 = 0.05;
/// Largest variance error of a sampler whose spreads count as right.
pub const RIGHT_SPREAD: f64 = 0.2;

impl Reveal {
    /// The right choice and the sentence that quotes the measured numbers, once the runs it
    /// needs have finished (None before).
    pub fn judge(self, runs: [Option<&RunStats>; 2]) -> Option<(usize, String)> {
        let side = |ok: [bool; 2]| match ok {
            [true, false] => 0,
            [false, true] => 1,
            [true, true] => 2,
            [false, false] => 3,
        };
        match self {
            Reveal::WeightsBySide => {
                let (a, b) = (runs[0]?, runs[1]?);
                let right = side([a, b].map(|r| r.max_weight_error < RIGHT_WEIGHTS));
                Some((right, format!(
                    "Measured: the left run's weights {} (largest error {:.3}), the right run's {} (largest error {:.3}), against the true {}.",
                    weights(&a.weights), a.max_weight_error, weights(&b.weights), b.max_weight_error, weights(&a.true_weights)
                )))
            }
            Reveal::SpreadBySide => {
                let (a, b) = (runs[0]?, runs[1]?);
                let right = side([a, b].map(|r| r.max_variance_error > RIGHT_SPREAD));
                Some((right, format!(
                    "Measured: the largest variance error is {:.3} on the left and {:.3} on the right.",
                    a.max_variance_error, b.max_variance_error
                )))
            }
            Reveal::GuidedFraction => {
                let a = runs[0]?;
                let (w, t) = (*a.weights.first()?, *a.true_weights.first()?);
                let targets = [1.0, t, 0.0];
                let right = (0..3)
                    .min_by(|&i, &j| (w - targets[i]).abs().total_cmp(&(w - targets[j]).abs()))
                    .unwrap_or(0);
                Some((right, format!(
                    "Measured: {w:.3} of the particles near component 1 (its true weight is {t:.2})."
                )))
            }
            Reveal::Diverged => {
                let a = runs[0]?;
                let d = a.diverged as f64 / a.n.max(1) as f64;
                Some((
                    usize::from(d > 0.5),
                    format!("Measured: {d:.3} of the particles diverged."),
                ))
            }
        }
    }
}

/// Weights as "0.197 / 0.803".
fn weights(w: &[f64]) -> String {
    w.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// What a failure scene measures and what it measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Check {
    /// The number.
    pub metric: Metric,
    /// Its value as measured with the exact score (or, for an under-trained network, the CPU
    /// engine's training) on the scene's first run; the text quotes it.
    pub value: f64,
    /// A fresh network trained this many steps first (0: the network is left alone).
    pub train_steps: u32,
}

/// The measured number of a failure scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of the particles that diverged (not finite) in sampler 1's run.
    Diverged,
    /// Sampler 1's largest |sample weight − true weight| of a component.
    WeightError,
    /// The learned score's relative error near the lightest component over that near the
    /// heaviest (`sim::metrics::score_error_by_component`, at the shown t).
    ScoreErrorRatio,
}

impl Lesson {
    /// The lesson's state (validated).
    pub fn state(&self) -> Result<State, super::StateError> {
        let mut st: State = serde_json::from_str(self.state_json)
            .map_err(|e| format!("lesson {:?}: {e}", self.title))?;
        st.upgrade_legacy();
        st.validate()?;
        Ok(st)
    }
}

/// Every lesson, in the README's order.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        title: "Why annealing: plain vs annealed Langevin",
        state_json: r#"{"samplers":[{"kind":"annealed-langevin","levels":50,"steps":100,"step":0.2,"exact":true,"n":2000,"repeat":false},{"kind":"langevin","steps":1000,"step":0.05,"exact":true,"n":2000,"repeat":false}],"split":"samplers","training":false}"#,
        look: "Two samplers on the same two-mode mixture (weights 0.2 and 0.8), both following the exact score. Left: annealed Langevin, from large noise down to small. Right: plain Langevin at the smallest noise only. Watch the bars under the sampler panel when both runs finish.",
        try_this: &[
            "Press r to restart both from fresh noise, and watch where the particles go in the first frames.",
            "Lower the number of levels L on the left to 2 or 3.",
            "Give the right sampler 10 times more steps.",
        ],
        ask: "Both samplers find the modes, so why does only the annealed one get the weights right? Why can't a chain at the smallest noise cross from one mode to the other?",
        why: "",
        predict: Some(Predict {
            question: "Before it runs: which sampler will get the two modes' weights (0.2 / 0.8) right?",
            choices: &["annealed Langevin (left)", "plain Langevin (right)", "both", "neither"],
            reveal: Reveal::WeightsBySide,
            why: "At the smallest noise the density between the modes is almost zero, so a plain Langevin chain never crosses: each particle stays in the mode it first falls into, and the split is the start's. Annealing starts where the noise joins the modes into one blob, so particles move freely between them before the modes separate.",
        }),
        check: None,
    },
    Lesson {
        title: "The noise level: true vs learned density",
        state_json: r#"{"scene":{"t":0.35},"split":"density"}"#,
        look: "Left: the true log-density of the noised data at this noise level. Right: the network's own log-density at the same level, from the probability-flow ODE. The network is training live.",
        try_this: &[
            "Slide the noise σ up until the two modes merge into one blob.",
            "Drag a component to a new place and watch the right side catch up.",
        ],
        ask: "Why do samplers start from the blob at large noise, instead of from the data's noise level?",
        why: "",
        predict: None,
        check: None,
    },
    Lesson {
        title: "Deterministic paths and exact likelihoods",
        state_json: r#"{"scene":{"sde":"vp"},"samplers":[{"kind":"ode-rk4","steps":200,"exact":true,"n":2000}],"ode_paths":true,"probe":[4.5,5.5]}"#,
        look: "Purple: probability-flow ODE paths from a grid of prior points down to the data. The probe at (4.5, 5.5) is followed both ways, data -> noise and back, and the two curves coincide. Its log-likelihood from the ODE matches the true log p.",
        try_this: &[
            "Pick the probe tool and click somewhere else.",
            "Switch the SDE to VE and compare the sample fractions.",
            "Drag a component far away and run the sampler again.",
        ],
        ask: "The ODE is deterministic: how can a deterministic map from noise produce random samples? What makes the likelihood exact?",
        why: "",
        predict: None,
        check: None,
    },
    Lesson {
        title: "Inpainting: replacement vs the exact conditional",
        state_json: r#"{"inpaint":{"c":0,"method":"replacement","n":2000,"steps":500,"exact":true}}"#,
        look: "We observe x₁ = 0 (the orange line) and sample x₂. The histogram under the panel is compared with the analytic conditional (the curve) by its KS statistic.",
        try_this: &[
            "Switch the method to 'exact' and compare the KS statistic.",
            "Pick the x₁ = c tool and click the canvas to move the line.",
        ],
        ask: "Replacement overwrites x₁ with a noised copy of the observation at every step. Why is that not the same as conditioning?",
        why: "",
        predict: None,
        check: None,
    },
    Lesson {
        title: "Guidance toward one component",
        state_json: r#"{"samplers":[{"kind":"reverse-sde","steps":500,"exact":true,"n":2000,"guide":{"component":0,"gamma":3}}],"training":false}"#,
        look: "The reverse SDE with classifier guidance toward component 1 (the light one) at γ = 3: every particle goes there.",
        try_this: &[
            "Set γ to 1: the particles sample p(x | component 1).",
            "Set γ to 0: the unconditional split comes back.",
        ],
        ask: "What does γ > 1 do to the distribution of one component, and why would anyone want that?",
        why: "",
        predict: Some(Predict {
            question: "Guidance with γ = 3 toward component 1, the light one (weight 0.2). Where will the particles end up?",
            choices: &["all near component 1", "0.2 / 0.8, as without guidance", "all near component 2"],
            reveal: Reveal::GuidedFraction,
            why: "γ = 1 would sample p(x | k = 1) exactly; γ = 3 sharpens it further. The guidance term γ grad log p_t(k | x) outweighs the prior's pull wherever the classifier is unsure, so particles that start near component 2 are pulled across while the noise is large.",
        }),
        check: None,
    },
    Lesson {
        title: "The denoiser's view (Tweedie)",
        state_json: r#"{"scene":{"t":0.6},"arrows":"denoiser","layers":{"responsibilities":true,"true_density":false}}"#,
        look: "Each arrow goes from a noisy point to its best guess of the clean point, D(x) = E[x₀ | x], drawn to scale: orange from the learned score, cyan from the exact one. The colours are the probabilities that the point came from each component.",
        try_this: &[
            "Slide σ down until the arrows vanish, then up until they all point at the data mean.",
            "Let the network train and watch the orange arrows catch up with the cyan ones.",
            "Drag a component into the other one's colour region.",
        ],
        ask: "Tweedie's formula says the score points toward the denoiser's guess. Why does the score get longer as the noise gets smaller?",
        why: "",
        predict: None,
        check: None,
    },
    Lesson {
        title: "Conditional vs marginal paths",
        state_json: r#"{"scene":{"t":0.55},"samplers":[{"exact":true}],"probe":[1,3.5],"cond_paths":true,"training":false}"#,
        look: "The probe is one data point x₀. Yellow: its own noising path, one fixed direction of noise. Magenta: the probability-flow ODE path through the same noisy point, the path a deterministic sampler follows.",
        try_this: &[
            "Move σ to slide the shared point along the yellow path.",
            "Drop the probe in the middle of a component, then between the components.",
        ],
        ask: "Why does the magenta path not lead back to x₀? What does flow matching learn from the yellow paths?",
        why: "",
        predict: None,
        check: None,
    },
    Lesson {
        title: "Metropolis vs Langevin",
        state_json: r#"{"scene":{"mixture":{"components":[{"weight":0.5,"mean":[17,-14],"cov":[[1,0.6],[0.6,0.5]]},{"weight":0.3,"mean":[29,-13],"cov":[[0.3,0],[0,2]]},{"weight":0.2,"mean":[23,-7],"cov":[[0.8,-0.3],[-0.3,0.8]]}]}},"split":"samplers","training":false,"samplers":[{"kind":"langevin","steps":600,"step":1,"exact":true,"mala":true,"n":3000,"repeat":false,"speed":4},{"kind":"langevin","steps":600,"step":1,"exact":true,"n":3000,"repeat":false,"speed":4}]}"#,
        look: "Both sides run Langevin with the same large step. Left: each step is a Metropolis–Hastings proposal (MALA), with its acceptance rate shown. Right: plain Langevin. Compare the spreads and the variance errors.",
        try_this: &[
            "Raise the step α on both sides and watch the acceptance fall.",
            "Lower α until plain Langevin's variance error is small too.",
        ],
        ask: "MALA keeps each component's shape exactly. Why are its mode weights still wrong?",
        why: "",
        predict: Some(Predict {
            question: "The same large step on both sides. Which side's component shapes will come out too wide?",
            choices: &["left (MALA)", "right (plain Langevin)", "both", "neither"],
            reveal: Reveal::SpreadBySide,
            why: "Unadjusted Langevin samples a distribution that is wider than the target in every direction the step is large for (on a Gaussian of variance v, v / (1 − α/4v)). MALA's accept / reject step keeps the target exactly invariant at any step size, at the cost of rejected moves.",
        }),
        check: None,
    },
    Lesson {
        title: "Approximate vs exact guidance: DPS",
        state_json: r#"{"inpaint":{"c":2,"method":"dps","n":2000,"steps":500,"exact":true,"zeta":0.05},"training":false}"#,
        look: "Inpainting x₂ given x₁ = 2 with diffusion posterior sampling, which nudges every step toward the observation through the denoiser's guess. Compare its KS statistic with the exact conditional's.",
        try_this: &[
            "Switch to 'exact' and compare the histograms.",
            "Move the DPS step ζ down by 10, then up by 10.",
        ],
        ask: "DPS treats the denoiser's guess as if it were the clean point. When is that a good approximation, and when is it bad?",
        why: "",
        predict: None,
        check: None,
    },
];

/// The failure-mode scenes, one click each: what goes wrong, why, and the number that shows
/// it. In the player they follow the lessons (`#lesson=10` is the first one).
pub const FAILURES: &[Lesson] = &[
    Lesson {
        title: "Langevin step too large",
        state_json: r#"{"scene":{"mixture":{"components":[{"weight":0.2,"mean":[-5,-5],"cov":[[0.1,0],[0,0.1]]},{"weight":0.8,"mean":[5,5],"cov":[[0.1,0],[0,0.1]]}]}},"samplers":[{"kind":"langevin","steps":1000,"eps":1,"exact":true,"n":2000,"repeat":false}],"training":false}"#,
        look: "Plain Langevin with step α = 1 on components of variance σ² = 0.1, following the exact score. The particles fly off the canvas; the sampler panel counts the diverged ones. Measured: all of them (diverged fraction 1.00).",
        try_this: &[
            "Set α to 0.3: the chain is stable, but each mode's variance comes out 4 times too big.",
            "Set α to 0.02 and compare the variance error.",
        ],
        ask: "Why does the narrowest direction of the data, not the widest, decide the largest step that works?",
        why: "One step moves x by (α/2) grad log p(x) + √α z. Near a mode of variance σ² the score is −(x − μ)/σ², so the step multiplies the distance to the mode by |1 − α/(2σ²)|. With α = 10σ² that factor is 4: every step quadruples the error until the numbers overflow. The chain is stable only for α < 4σ², and even then its variance is σ²/(1 − α/(4σ²)), too big unless α is small.",
        predict: Some(Predict {
            question: "Plain Langevin with step α = 1 on components of variance 0.1. What will the particles do?",
            choices: &["sample the two modes, just faster", "fly off to infinity (diverge)", "freeze where they start"],
            reveal: Reveal::Diverged,
            why: "Near a mode the step multiplies the distance to it by |1 − α/(2σ²)| = 4: every step quadruples the error until the numbers overflow. The chain is stable only for α < 4σ².",
        }),
        check: Some(Check {
            metric: Metric::Diverged,
            value: 1.0,
            train_steps: 0,
        }),
    },
    Lesson {
        title: "Too few noise levels",
        state_json: r#"{"samplers":[{"kind":"annealed-langevin","levels":3,"steps":133,"exact":true,"n":2000,"repeat":false}],"training":false}"#,
        look: "Annealed Langevin with only L = 3 noise levels (σ ≈ 25, 0.5 and 0.01) and the exact score. Compare the bars under the sampler panel with the true weights 0.2 and 0.8. Measured: weight error 0.22 (0.03 with 20 levels of 20 steps).",
        try_this: &[
            "Raise L to 10, then 20, keeping about 400 steps in all.",
            "Slide σ to see how different neighbouring noise levels' densities are.",
        ],
        ask: "Each level starts from where the last one ended. What must be true of two neighbouring levels for that to work?",
        why: "Each level's Langevin chain only mixes locally; it relies on starting from samples of the level above, which should already be close to its own distribution. With three levels the jumps from σ ≈ 25 to 0.5 and on to 0.01 are far too big: the particles arrive spread over the whole plane at a noise level where the modes are separate, and each falls into the nearest basin. So the modes get the share of the plane's area they drain, not their weight.",
        predict: None,
        check: Some(Check {
            metric: Metric::WeightError,
            value: 0.22,
            train_steps: 0,
        }),
    },
    Lesson {
        title: "σ_max too small to connect the modes",
        state_json: r#"{"samplers":[{"kind":"annealed-langevin","levels":20,"steps":20,"exact":true,"n":2000,"repeat":false,"t_start":0.5}],"training":false}"#,
        look: "Annealed Langevin whose largest noise level is σ = 0.50 (start t = 0.5) instead of σ_max ≈ 25, while the modes are 14 apart. Measured: weights 0.50 / 0.50 against the true 0.2 / 0.8 (weight error 0.30).",
        try_this: &[
            "Move the start t in the sampler panel back up to 1.",
            "Slide σ to 0.5 and look at the density: are the modes connected?",
        ],
        ask: "How large must σ_max be for the first level to 'see' every mode, and what does Song and Ermon's rule of thumb say?",
        why: "The weights of the modes are decided at the first, largest noise level, where the density is one connected blob and Langevin moves freely between the modes. If σ_max is much smaller than the distance between modes, even the first level has separate modes with (almost) no probability between them, so no chain crosses: each particle stays in the basin it started in, and the uniform start puts half in each.",
        predict: None,
        check: Some(Check {
            metric: Metric::WeightError,
            value: 0.30,
            train_steps: 0,
        }),
    },
    Lesson {
        title: "A deterministic sampler from the wrong prior",
        state_json: r#"{"samplers":[{"kind":"ode-rk4","steps":200,"exact":true,"n":2000,"repeat":false,"prior_scale":0.2}],"training":false}"#,
        look: "The probability-flow ODE with the exact score, started from N(m, (σ_max/5)² I) instead of the VE prior N(m, σ_max² I). Measured: every sample lands in the heavy mode (weight error 0.20), squeezed into its middle: the covariance eigenvalues are 4–7% of that mode's, the total variance 0.3% of the data's.",
        try_this: &[
            "Set the prior scale back to 1 in the sampler panel.",
            "Try 0.5 and 2: which way does each distort the samples?",
        ],
        ask: "A stochastic sampler forgets part of where it started. Why can a deterministic one not?",
        why: "The ODE is a fixed, invertible map from noise to data: it turns the right prior into the data distribution and anything else into something else. A prior 5 times too narrow holds only the middle of the right one, and the middle of the prior maps to the middle of the probability mass, inside the heavy mode. Nothing in the ODE can correct this; a reverse SDE partly can, because its noise keeps mixing.",
        predict: None,
        check: Some(Check {
            metric: Metric::WeightError,
            value: 0.20,
            train_steps: 0,
        }),
    },
    Lesson {
        title: "An under-trained network",
        state_json: r#"{"scene":{"mixture":{"components":[{"weight":0.95,"mean":[-3,0],"cov":[[1,0],[0,1]]},{"weight":0.05,"mean":[4,2],"cov":[[0.5,0],[0,0.5]]}]},"sde":"vp","t":0.2},"arrows":"difference","training":false}"#,
        look: "A fresh network trained for only 400 steps; the arrows show learned − exact score at t = 0.2, coloured by whether the network pulls too weakly (blue) or too strongly (red) along the true score. They are short only inside the heavy component (weight 0.95). Measured: relative to the true score, the error near the light component (weight 0.05) is 6.2 times the error near the heavy one (0.68 against 0.11).",
        try_this: &[
            "Switch training on and watch the light component's arrows shrink last.",
            "Give the light component more weight and reset the network.",
        ],
        ask: "Why does the training loss care so little about the light component, and what would that do to a sampler?",
        why: "Denoising score matching averages the score error over the data: a region the data visits 5% of the time contributes about 5% of the loss and of the gradient. So the network first learns the score where the data is plentiful and stays wrong where it is scarce, which is exactly where a sampler must be steered correctly to give the light mode its weight.",
        predict: None,
        check: Some(Check {
            metric: Metric::ScoreErrorRatio,
            value: 6.2,
            train_steps: 400,
        }),
    },
];

impl Metric {
    /// What the number is called in the player.
    pub fn label(self) -> &'static str {
        match self {
            Self::Diverged => "diverged fraction",
            Self::WeightError => "weight error",
            Self::ScoreErrorRatio => "score error, light / heavy component",
        }
    }

    /// The ratio of the relative score errors near the lightest and the heaviest component
    /// (`errors[k]` near component k of weights `weights`).
    pub fn error_ratio(errors: &[f64], weights: &[f64]) -> Option<f64> {
        let by = |better: fn(f64, f64) -> bool| {
            (0..weights.len().min(errors.len())).reduce(|a, b| {
                if better(weights[b], weights[a]) {
                    b
                } else {
                    a
                }
            })
        };
        let (light, heavy) = (by(|a, b| a < b)?, by(|a, b| a > b)?);
        (errors[heavy] > 0.0).then(|| errors[light] / errors[heavy])
    }
}

/// Lesson `n` (1-based), if it exists.
/// The failure scenes follow the lessons: n = `LESSONS.len()` + k is failure scene k.
pub fn lesson(n: usize) -> Option<&'static Lesson> {
    let i = n.checked_sub(1)?;
    LESSONS
        .get(i)
        .or_else(|| FAILURES.get(i.checked_sub(LESSONS.len())?))
}

/// Lessons and failure scenes together (the player's Next / Back run through both).
pub fn count() -> usize {
    LESSONS.len() + FAILURES.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::link::parse_hash;

    /// Every lesson's state is valid and is the state of one of the README's lesson links,
    /// in order.
    #[test]
    fn lessons_are_the_readme_links() {
        let readme = include_str!("../../README.md");
        let links: Vec<State> = readme
            .split("](http://127.0.0.1:8080/#s=")
            .skip(1)
            .filter_map(|part| {
                let end = part.find(')')?;
                parse_hash(&format!("#s={}", &part[..end])).ok()?.shared
            })
            .collect();
        assert!(links.len() >= LESSONS.len(), "{} README links", links.len());
        for (i, l) in LESSONS.iter().enumerate() {
            let st = l.state().expect("a lesson's state is valid");
            assert_eq!(links[i], st, "lesson {}: {}", i + 1, l.title);
            assert!(
                !l.look.is_empty() && (2..=3).contains(&l.try_this.len()) && l.ask.ends_with('?')
            );
        }
        assert!(lesson(0).is_none() && lesson(count() + 1).is_none());
        assert_eq!(lesson(1).map(|l| l.title), Some(LESSONS[0].title));
        assert_eq!(
            lesson(LESSONS.len() + 1).map(|l| l.title),
            Some(FAILURES[0].title)
        );
        // Every failure scene has its README link too.
        for f in FAILURES {
            let st = f.state().expect("a failure scene's state is valid");
            assert!(links.contains(&st), "README link of {:?}", f.title);
            assert!(f.check.is_some() && !f.why.is_empty() && f.ask.ends_with('?'));
        }
    }

    /// What a failure scene measures on a run with `seed` (the engine's run number), as the
    /// CPU engine computes it: the exact-score sampler's statistics, or a fresh network trained
    /// for the scene's steps.
    fn measure(f: &Lesson, seed: u32) -> f64 {
        use crate::engine::settings::{new_net, train_config};
        use crate::sim::metrics::{score_error_by_component, RunStats};
        use crate::sim::samplers::sample;
        use crate::sim::score::ExactScore;
        use crate::sim::sde::Sde;
        let st = f.state().unwrap();
        let m = st.validate().unwrap();
        let sde = Sde::for_mixture(st.scene.sde, &m);
        let c = f.check.unwrap();
        if c.metric == Metric::ScoreErrorRatio {
            let net = new_net(&st.settings, &m, sde).unwrap();
            let mut tr =
                crate::sim::train::Trainer::new(net, m.clone(), train_config(&st.settings));
            for _ in 0..c.train_steps {
                tr.step().unwrap();
            }
            let e = score_error_by_component(&tr.ema_net(), &m, &sde, st.scene.t, 500, 1);
            return Metric::error_ratio(&e, m.weights()).unwrap();
        }
        let live = &st.samplers[0];
        let exact = ExactScore::new(m.clone(), sde);
        let (xs, _) = sample(live.config(&m, seed), sde, live.n, &exact).unwrap();
        let r = RunStats::new(&m, seed, live.kind, &xs);
        match c.metric {
            Metric::Diverged => r.diverged as f64 / r.n as f64,
            _ => r.max_weight_error,
        }
    }

    /// The wrong-prior scene's spreads (seed 0, as the CPU engine runs it): the heavy mode's
    /// covariance eigenvalues as percentages of the true ones (smaller, larger) and the
    /// samples' total variance as a percentage of the data's.
    fn prior_scene_spreads(f: &Lesson) -> (f64, f64, f64) {
        use crate::sim::metrics::component_stats;
        use crate::sim::mixture::sym_eigenvalues;
        use crate::sim::samplers::sample;
        use crate::sim::score::ExactScore;
        use crate::sim::sde::Sde;
        use crate::sim::{Mat2, Vec2};
        let st = f.state().unwrap();
        let m = st.validate().unwrap();
        let sde = Sde::for_mixture(st.scene.sde, &m);
        let live = &st.samplers[0];
        let exact = ExactScore::new(m.clone(), sde);
        let (xs, _) = sample(live.config(&m, 0), sde, live.n, &exact).unwrap();
        let heavy = (0..m.len())
            .max_by(|a, b| m.weights()[*a].total_cmp(&m.weights()[*b]))
            .unwrap();
        let c = &component_stats(&m, &xs)[heavy].cov;
        let (a, b) = sym_eigenvalues(&Mat2::new(c[0][0], c[0][1], c[1][0], c[1][1]));
        let (ta, tb) = sym_eigenvalues(&m.components()[heavy].cov);
        let (r1, r2) = (a / ta, b / tb);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<Vec2>() / n;
        let var = xs.iter().map(|x| (x - mean).norm_squared()).sum::<f64>() / n;
        let total = var / m.covariance().trace();
        (100.0 * r1.min(r2), 100.0 * r1.max(r2), 100.0 * total)
    }

    /// Each failure scene produces the failure it names, by the number its text quotes: the
    /// first run (seed 0) within 0.02 of it (5% for the ratio), and other runs clearly failing
    /// too; the quoted number is written in the text.
    #[test]
    fn failure_scenes_fail_as_measured() {
        for f in FAILURES {
            let c = f.check.unwrap();
            let got = measure(f, 0);
            let tol = if c.metric == Metric::ScoreErrorRatio {
                0.05 * c.value
            } else {
                0.02
            };
            assert!(
                (got - c.value).abs() <= tol,
                "{}: measured {got:.3}, the text says {}",
                f.title,
                c.value
            );
            let quoted = format!("{:.2}", c.value);
            let quoted_1 = format!("{:.1}", c.value);
            assert!(
                f.look.contains(&quoted) || f.look.contains(&quoted_1),
                "{}: the text quotes {quoted}",
                f.title
            );
            if f.title == "Too few noise levels" {
                // The text's comparison: the same scene with the live default's 20 levels.
                let mut g = *f;
                let json = f
                    .state_json
                    .replace(r#""levels":3,"steps":133"#, r#""levels":20,"steps":20"#);
                assert_ne!(json, f.state_json);
                g.state_json = Box::leak(json.into_boxed_str());
                let twenty = measure(&g, 0);
                let claim = format!("{twenty:.2} with 20 levels of 20 steps");
                assert!(
                    f.look.contains(&claim),
                    "{}: the text must say {claim}",
                    f.title
                );
            }
            if f.title.contains("wrong prior") {
                let (lo, hi, total) = prior_scene_spreads(f);
                let claim = format!("{lo:.0}–{hi:.0}% of that mode's");
                let claim_total = format!("total variance {total:.1}% of the data's");
                eprintln!("{}: {claim}; {claim_total}", f.title);
                assert!(
                    f.look.contains(&claim) && f.look.contains(&claim_total),
                    "{}: the text must say what is measured: {claim}; {claim_total}",
                    f.title
                );
            }
            if c.train_steps == 0 {
                for seed in 1..3 {
                    let other = measure(f, seed);
                    assert!(other >= 0.75 * c.value, "{} run {seed}: {other}", f.title);
                }
            }
        }
    }
}

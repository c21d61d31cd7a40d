//! The lesson player's lessons (issue 14): each one a state (the same JSON as its README link)
//! and the text the page shows beside it: what to look at, two or three things to try, a
//! question to discuss. `#lesson=N` (1-based) in a link opens lesson N; without an `s=` state
//! it also loads the lesson's state. A unit test checks that every lesson's state is one of the
//! README's lesson links, so the README and the player cannot drift apart.

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
}

impl Lesson {
    /// The lesson's state (validated).
    pub fn state(&self) -> Result<State, String> {
        let st: State = serde_json::from_str(self.state_json)
            .map_err(|e| format!("lesson {:?}: {e}", self.title))?;
        st.validate()?;
        Ok(st)
    }
}

/// Every lesson, in the README's order.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        title: "Why annealing: plain vs annealed Langevin",
        state_json: r#"{"samplers":[{"kind":"annealed-langevin","levels":50,"steps":100,"eps":0.00002,"exact":true,"n":2000,"repeat":false},{"kind":"langevin","steps":1000,"eps":0.05,"exact":true,"n":2000,"repeat":false}],"split":"samplers","training":false}"#,
        look: "Two samplers on the same two-mode mixture (weights 0.2 and 0.8), both following the exact score. Left: annealed Langevin, from large noise down to small. Right: plain Langevin at the smallest noise only. Watch the bars under the sampler panel when both runs finish.",
        try_this: &[
            "Press r to restart both from fresh noise, and watch where the particles go in the first frames.",
            "Lower the number of levels L on the left to 2 or 3.",
            "Give the right sampler 10 times more steps.",
        ],
        ask: "Both samplers find the modes, so why does only the annealed one get the weights right? Why can't a chain at the smallest noise cross from one mode to the other?",
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
    },
    Lesson {
        title: "Deterministic paths and exact likelihoods",
        state_json: r#"{"scene":{"sde":"vp"},"samplers":[{"kind":"ode-rk4","steps":200,"exact":true,"n":2000}],"ode_paths":true,"probe":[4.5,5.5]}"#,
        look: "Purple: probability-flow ODE paths from a grid of prior points down to the data. The probe at (4.5, 5.5) is followed both ways, data → noise and back, and the two curves coincide. Its log-likelihood from the ODE matches the true log p.",
        try_this: &[
            "Pick the probe tool and click somewhere else.",
            "Switch the SDE to VE and compare the sample fractions.",
            "Drag a component far away and run the sampler again.",
        ],
        ask: "The ODE is deterministic: how can a deterministic map from noise produce random samples? What makes the likelihood exact?",
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
    },
    Lesson {
        title: "Metropolis vs Langevin",
        state_json: r#"{"scene":{"mixture":{"components":[{"weight":0.5,"mean":[17,-14],"cov":[[1,0.6],[0.6,0.5]]},{"weight":0.3,"mean":[29,-13],"cov":[[0.3,0],[0,2]]},{"weight":0.2,"mean":[23,-7],"cov":[[0.8,-0.3],[-0.3,0.8]]}]}},"split":"samplers","training":false,"samplers":[{"kind":"langevin","steps":600,"eps":0.1,"exact":true,"mala":true,"n":3000,"repeat":false,"speed":4},{"kind":"langevin","steps":600,"eps":0.1,"exact":true,"n":3000,"repeat":false,"speed":4}]}"#,
        look: "Both sides run Langevin with the same large step. Left: each step is a Metropolis–Hastings proposal (MALA), with its acceptance rate shown. Right: plain Langevin. Compare the spreads and the variance errors.",
        try_this: &[
            "Raise the step α on both sides and watch the acceptance fall.",
            "Lower α until plain Langevin's variance error is small too.",
        ],
        ask: "MALA keeps each component's shape exactly. Why are its mode weights still wrong?",
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
    },
];

/// Lesson `n` (1-based), if it exists.
pub fn lesson(n: usize) -> Option<&'static Lesson> {
    n.checked_sub(1).and_then(|i| LESSONS.get(i))
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
        assert!(lesson(0).is_none() && lesson(LESSONS.len() + 1).is_none());
        assert_eq!(lesson(1).map(|l| l.title), Some(LESSONS[0].title));
    }
}

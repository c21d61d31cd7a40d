//! Student-facing explanations: one tooltip per sampler and per view, each with its update
//! equation and what to look for on the canvas.

use crate::sim::samplers::SamplerKind;

/// The tooltip of a sampler.
pub fn sampler(kind: SamplerKind) -> &'static str {
    match kind {
        SamplerKind::Langevin => "Plain Langevin (one noise level σ_min):\n  x <- x + (α/2)·s(x, σ_min) + √α·z\n\nLook for: the particles find the modes, but the split between them is wrong. Between the modes the data density is ~0, so the score there is never learned, and a chain almost never crosses from one mode to the other. Each mode keeps the share of particles that started near it, not its true weight (Song & Ermon 2019, Fig. 3).",
        SamplerKind::AnnealedLangevin => "Annealed Langevin (NCSN Alg. 1): for levels σ₁ > … > σ_L, take T steps of\n  x <- x + (α_i/2)·s(x, σ_i) + √α_i·z,   α_i = ε·σ_i²/σ_L²\n\nLook for: at large σ the perturbed density is one broad blob, so particles move freely between the modes and settle in proportion to the weights. As σ shrinks, each mode sharpens and the particles stay where they are. The weights come out right (ncsn: 0.2 / 0.8).",
        SamplerKind::ReverseSde => "Reverse-time SDE, Euler–Maruyama (score_sde Eq. 6), t from 1 to ε:\n  x <- x + [f(x,t) − g(t)²·s(x,t)]·Δt + g(t)·√|Δt|·z\n\nLook for: noise from the prior is turned back into data. The score term pulls towards high density, and the injected noise keeps the samples spread like the data.",
        SamplerKind::Ancestral => "Ancestral sampling / reverse diffusion (score_sde App. F): the discrete reverse Markov chain of the forward noising.\n  VE: x <- x + (σ_i² − σ_{i+1}²)·s + √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²)·z\n\nLook for: the same picture as the reverse SDE, from a slightly different discretisation.",
        SamplerKind::Pc => "Predictor–corrector (score_sde Alg. 2): at each t, one Langevin corrector step\n  x <- x + ε·s + √(2ε)·z,  ε = 2a·(snr·|z|/|s|)²\nthen one ancestral predictor step to the next t.\n\nLook for: the corrector pulls particles back onto the current noise level's density, so errors of the predictor don't pile up. It costs two score evaluations per step.",
        SamplerKind::OdeEuler | SamplerKind::OdeHeun | SamplerKind::OdeRk4 | SamplerKind::OdeRk45 => "Probability-flow ODE (score_sde Eq. 13):\n  dx/dt = f(x,t) − ½·g(t)²·s(x,t)\nintegrated from t = 1 to ε (Euler, Heun, RK4, or adaptive RK45).\n\nLook for: there is no noise at all. Each starting point has exactly one path, so the trails are smooth curves that never cross, and running the same start twice gives the same sample. The marginals match the SDE's, so the samples still follow the data. Being invertible, the ODE also gives exact likelihoods (the probe).\n\nCaveat: the ODE keeps any error of its start. On VE the start N(0, σ_max²) is not quite the true p₁ when the data sit off the origin (ncsn comes out ≈ 0.26 / 0.74). The SDE samplers' noise corrects this; the ODE's cannot. VP starts almost exactly at p₁.",
        SamplerKind::Ddim => "DDIM (Song, Meng & Ermon 2021) on the EDM noise schedule σ_i (ρ = 7). With y = m + (x − m)/α(t) the rescaled point and D = E[x₀ | x_t] Tweedie's denoised guess:\n  y <- D + √(σ_{i+1}² − c²)·(y − D)/σ_i + c·z,   c² = η²·σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²\n\nη = 0 is deterministic: exactly Euler's method on the probability-flow ODE in σ, first order (halving the steps doubles the error). η = 1 is ancestral sampling.\n\nLook for: with few steps the samples come out blurred and too wide, worst for narrow components (grid25); first order needs about 500 steps (the default) for their widths. Compare its curve with the second-order samplers in the steps sweep.",
        SamplerKind::EdmHeun => "Heun's method on the EDM schedule (Karras et al. 2022, Alg. 1/2): σ_i = (σ_max^(1/7) + i/N·(σ_min^(1/7) − σ_max^(1/7)))^7, an Euler step of dy/dσ = (y − D(y; σ))/σ and its trapezoidal correction: two score evaluations a step, second order. With churn S_churn > 0 each step first raises σ by γ = min(S_churn/N, √2 − 1) and adds the matching fresh noise (Alg. 2).\n\nLook for: the error falls 4× when the steps double. 64 steps (128 evaluations, the default) give the exact answer's widths even for grid25's narrow components; broad mixtures need far fewer (try 10). Churn adds fresh noise that corrects errors of the start, at a cost in sharpness with few steps.",
        SamplerKind::DpmSolver => "DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): a multistep solver of the probability-flow ODE in λ = −log σ on Tweedie's denoised guesses:\n  y <- (σ_{i+1}/σ_i)·y + (1 − σ_{i+1}/σ_i)·[(1 + 1/2r)·D_i − (1/2r)·D_{i−1}],   r = h_{i−1}/h_i\nSecond order with one score evaluation a step (it reuses the last step's D); the first step is DDIM's.\n\nLook for: the cheapest sampler here at a given error (see the steps sweep). 100 steps (the default) sample even grid25's narrow components right; broad mixtures look right with 15. No noise: each start has one path, as for the ODE samplers.",
    }
}

/// Tooltip of the noise-level slider.
pub const NOISE: &str = "The noise level every layer is drawn at (log scale). σ is the noise-to-signal ratio s(t)/α(t) of the forward SDE. Slide it up and watch the modes merge into one blob: that blob is easy to sample, which is why samplers start at large σ and anneal down.";
/// Tooltip of the split view.
pub const SPLIT: &str = "Two samplers side by side on the same mixture and model (each with its own mode-weight bars), or the true log-density next to the model's own PF-ODE log-density at the same noise level.";
/// Tooltip of the probability-flow paths.
pub const ODE_PATHS: &str = "Deterministic probability-flow ODE paths from a grid of prior points at t = 1 down to the data. Where paths bunch up, density is high. The paths never cross, because the ODE is a smooth, invertible map from noise to data.";
/// Tooltip of the probe.
pub const PROBE: &str = "Click the canvas to drop a probe. Its path is drawn both ways: data -> noise along the forward ODE (orange) and back noise -> data along the reverse ODE (cyan). The two curves coincide because the map is invertible. That invertibility is what gives the exact log-likelihood log p_θ(x) = log p₁(x₁) + ∫ div f_θ dt, shown next to the true log p(x).";
/// Tooltip of inpainting.
pub const INPAINT: &str = "Observe x₁ = c (the vertical line) and sample x₂. 'exact' runs the reverse SDE with the exact score of the perturbed conditional p_t(x₂ | x₁ = c): its histogram matches the analytic conditional (the curve). 'replacement' runs the joint reverse SDE and overwrites x₁ with a noised copy of c at every step. It is cheap, but biased: the sampled x₂ does not see the observation consistently.";
/// Conditional vs marginal paths.
pub const COND_PATHS: &str = "The probe is a data point x₀. Yellow: its own noising path x_t = m + α(t)(x₀ − m) + s(t)·z for one fixed z, a straight line from x₀ for VE (the conditional path that flow matching regresses on). Magenta: the probability-flow ODE path through the same x_t (white dot) at the shown t, followed to t = 0 and t = 1. The ODE path is what a deterministic sampler follows: it averages over every x₀ that could have produced x_t, so it does not return to the probe's x₀ (magenta dot) and does not end where the yellow one does. Move σ to move the shared point.";
/// Diffusion posterior sampling.
pub const DPS: &str = "Diffusion posterior sampling (DPS, Chung et al. 2023): run the joint reverse SDE and after every step nudge x_t so that its denoised guess D(x_t) (Tweedie) agrees with the observation: x <- x − ζ·grad |c − D₁(x_t)|. It needs no conditional score, only the joint one, so it works for any observation. But it pretends x₀ is exactly D(x_t), which is wrong while the noise is large: its histogram misses the exact conditional, and how much depends on ζ (too small: barely conditioned; too large: overshoots). Compare its KS statistic with 'exact'.";
/// Tooltip of guidance.
pub const GUIDE: &str = "Classifier guidance toward one component: s_γ = s + γ·grad_x log p_t(k | x), with the exact noisy classifier of the mixture. γ = 0 is unconditional; γ = 1 samples p(x | k); γ > 1 over-sharpens.";
/// The denoiser's arrows (Tweedie).
pub const DENOISER: &str = "Tweedie's formula: the best guess of the clean point from a noisy one, D(x_t) = E[x₀ | x_t] = m + (x_t − m + s²·grad log p_t(x_t)) / α. Each arrow goes from x_t to D(x_t), to scale: orange from the learned score, cyan from the exact one. The score is the denoiser's direction, scaled by 1/s². At small σ the arrows vanish (x_t is already clean); as σ grows they reach to the nearest component's mean, then to the data mean. Colour the plane by p(k | x_t) to see which component each guess is pulled to.";
/// Metropolis-adjusted Langevin (the sampler panel's checkbox).
pub const MALA: &str = "Metropolis-adjusted Langevin (MALA): each Langevin step becomes a proposal, kept with probability min(1, p(x')q(x|x') / p(x)q(x'|x)). The target is then exactly invariant at any step size, where plain Langevin's spread grows with the step (on a Gaussian of variance v: v / (1 − α/4v)). The acceptance rate is shown; it falls as the step grows. MALA needs the log-density, which the network does not give, so it uses the exact p_t. Neither chain hops between well-separated modes: MALA fixes each mode's shape, not the balance between modes it has not visited.";
/// The keyboard shortcuts (help overlay).
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("space", "play / pause the particles"),
    ("f", "freeze all motion (particles and training), or start both again"),
    ("s", "one sampler step (pauses)"),
    ("r", "restart the samplers from the prior"),
    ("1 … 9", "pick a sampler: 1 Langevin, 2 annealed Langevin, 3 reverse SDE, 4 ancestral, 5 predictor–corrector, 6 ODE Euler, 7 ODE Heun, 8 ODE RK4, 9 ODE RK45"),
    ("h or ?", "this help"),
    ("n / p", "next / previous lesson (the lesson player)"),
    ("c", "open / close the controls drawer (narrow screens)"),
    ("Tab / Shift+Tab", "move the keyboard focus through the controls; Enter presses the focused one"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo an edit of the mixture"),
    ("Delete", "remove the selected component"),
    ("[ / ]", "select the previous / next component"),
    ("arrow keys (Shift: ×4)", "move the selected component by half its standard deviation"),
    ("drag", "move a centre, stretch with the edge ring, pan the background"),
    ("scroll / pinch", "weight of the component under the pointer, or zoom"),
    ("double-click", "add a component"),
    ("right-click", "remove a component (undo brings it back); on touch, a long press opens its menu"),
];

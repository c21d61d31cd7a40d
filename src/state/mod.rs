//! The one state schema (no egui): everything the user has made, serde-serialisable.
//! The share link (`#s=…`), `window.scorelab.state()/setConfig/setScene`, scene files and
//! the panel all read and write [`State`]; changes arrive as [`command::Command`]s that the
//! app applies in one place (`app::apply`), which compares the old and the new state to
//! decide what the engine must redo.
//!
//! Key vocabulary (the state's own field names, documented in `docs/ARCHITECTURE.md`; the
//! numbers' ranges are `engine::settings::table`'s): `scene{mixture,sde,t,seed}`,
//! `settings{width,depth,batch,lr}`, `samplers[{enabled,exact,n,kind,levels,steps,step,eps,
//! snr,eta,churn,speed,repeat,guide{component,gamma},mala,t_start,prior_scale}]` (older links' absolute
//! `eps` is converted with their mixture), `split`, `layers{samples,true_density,
//! learned_density,arrows,particles,trails,responsibilities}`, `arrows`, `training`, `paused`,
//! `ode_paths`, `probe`, `cond_paths`, `inpaint{c,method,n,steps,exact,zeta}`, `view`,
//! `palette`, `axes`, `sigma_circle`, `legends`, `theme`, `ui_scale`. `setConfig` takes the
//! same names (the sampler keys for `slot`), and still accepts the older spellings
//! (`particles`, `sampler_eps`, `exact_particles`, …) as aliases.

pub mod base64;
pub mod command;
mod error;
pub mod js;
pub mod lessons;
pub mod link;
pub mod patch;

use serde::{Deserialize, Serialize};

pub use error::StateError;

use crate::engine::{LiveSampling, TrainSettings, SLOTS};
use crate::sim::guidance::InpaintMethod;
use crate::sim::mixture::{presets, GaussianMixture, MixtureSpec};
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::SdeKind;

/// Most particles an inpainting run may ask for.
pub const MAX_INPAINT_N: usize = 20_000;
/// Most reverse-SDE steps of an inpainting run.
pub const MAX_INPAINT_STEPS: usize = 5_000;
/// Largest |coordinate| accepted for points in a link (probe, inpainting line, view box).
pub const MAX_COORD: f64 = 1e4;

/// The data distribution and the noise level shown. Missing fields take their defaults;
/// unknown ones are refused (also `setScene`'s argument).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scene {
    /// The data distribution.
    pub mixture: MixtureSpec,
    /// Forward SDE.
    pub sde: SdeKind,
    /// Noise level shown, as SDE time t ∈ [0, 1].
    pub t: f64,
    /// Seed for samples.
    pub seed: u32,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            mixture: presets::by_name("ncsn").unwrap_or(MixtureSpec {
                components: Vec::new(),
            }),
            sde: SdeKind::Ve,
            t: 0.0,
            seed: 0,
        }
    }
}

impl Scene {
    /// Range checks (the mixture validates; t ∈ [0, 1]).
    pub fn validate(&self) -> Result<GaussianMixture, StateError> {
        let m = GaussianMixture::from_spec(&self.mixture)?;
        if !(self.t.is_finite() && (0.0..=1.0).contains(&self.t)) {
            return Err(format!("t must be in [0, 1] (got {})", self.t).into());
        }
        Ok(m)
    }
}

/// Layers of the canvas (all drawn at the chosen noise level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Layers {
    /// Samples from the data distribution.
    pub samples: bool,
    /// Heatmap of the true perturbed log-density log p_t.
    pub true_density: bool,
    /// Heatmap of the learned log-density (PF-ODE likelihood of the model at t).
    pub learned_density: bool,
    /// Score arrows.
    pub arrows: bool,
    /// Live sampler particles.
    pub particles: bool,
    /// Fading trails behind the particles.
    pub trails: bool,
    /// The plane coloured by the exact responsibilities p(k | x_t) of the components.
    pub responsibilities: bool,
    /// The steps sweep: few-step and ODE samplers at 4..512 score evaluations, their error
    /// against the exact truth charted over the canvas. Written only when on, so a link
    /// without it is the link it was before the sweep existed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sweep: bool,
    /// The sweep follows a snapshot of the learned score instead of the exact one (written only
    /// when on, as `sweep`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sweep_learned: bool,
    /// Flow matching beside score matching: a velocity network trained live on the page, its
    /// arrows at flow t = 1 − t (written only when on, as every flow flag below).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow: bool,
    /// The exact marginal velocity's arrows too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow_exact: bool,
    /// Straight conditional paths beside the model's curved ODE paths, and a few-step Euler run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow_paths: bool,
    /// One round of reflow: train on the model's own couplings (x₀, x̂₁).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow_reflow: bool,
    /// The score the velocity implies, beside the exact score.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow_score: bool,
    /// Steps of the flow view's few-step run (1..=64; written only when not 4).
    #[serde(skip_serializing_if = "is_default_flow_euler")]
    pub flow_euler: u32,
    /// The solver of that run ("euler", "heun", "rk4", "rk45"; RK45 is adaptive and takes no
    /// step count; written only when not Euler).
    #[serde(skip_serializing_if = "is_euler")]
    pub flow_solver: crate::sim::flow::FlowSolver,
    /// Arrows of the learned minus the exact velocity instead of both (written only when on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flow_diff: bool,
}

fn is_euler(s: &crate::sim::flow::FlowSolver) -> bool {
    *s == crate::sim::flow::FlowSolver::Euler
}

/// The flow view's default Euler steps.
pub const FLOW_EULER: u32 = 4;

fn is_default_flow_euler(n: &u32) -> bool {
    *n == FLOW_EULER
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            samples: true,
            true_density: true,
            learned_density: false,
            arrows: true,
            particles: true,
            trails: true,
            responsibilities: false,
            sweep: false,
            sweep_learned: false,
            flow: false,
            flow_exact: false,
            flow_paths: false,
            flow_reflow: false,
            flow_score: false,
            flow_euler: FLOW_EULER,
            flow_solver: crate::sim::flow::FlowSolver::Euler,
            flow_diff: false,
        }
    }
}

/// Which field the arrows show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrowMode {
    /// The network's score.
    #[default]
    Learned,
    /// The exact score of the perturbed mixture.
    Exact,
    /// learned − exact.
    Difference,
    /// Tweedie's denoiser: arrows from x_t to D(x_t) = E[x₀ | x_t], to scale, for the learned
    /// score (orange) and the exact one (cyan).
    Denoiser,
}

/// What the split view shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMode {
    /// One canvas.
    #[default]
    Off,
    /// Two samplers side by side on the same mixture and model.
    Samplers,
    /// True log p_t (left) beside the learned PF-ODE log-density (right).
    Density,
}

/// The colour map of the density heatmaps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Palette {
    /// Dark blue → violet → orange → pale yellow (the original map).
    #[default]
    Classic,
    /// Cividis: perceptually uniform and readable with colour-vision deficiencies.
    Cividis,
}

/// The look of the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// The panels follow the system's light / dark setting (`prefers-color-scheme`); the
    /// canvas stays dark.
    #[default]
    Auto,
    /// Dark panels.
    Dark,
    /// Light panels.
    Light,
    /// For a projector in a bright room: light, high-contrast panels and canvas, thicker lines
    /// and larger dots.
    Projector,
}

/// Smallest and largest UI scale.
pub const UI_SCALE_RANGE: (f64, f64) = (0.75, 2.5);

/// 2D inpainting: observe x₁ = c, sample x₂.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintSpec {
    /// The observed x₁.
    pub c: f64,
    /// Replacement (uses the chosen score) or the exact conditional score.
    pub method: InpaintMethod,
    /// Particles.
    pub n: usize,
    /// Reverse-SDE steps.
    pub steps: usize,
    /// Replacement and DPS follow the exact joint score instead of the learned one.
    #[serde(default)]
    pub exact: bool,
    /// DPS's step ζ, in units of the data's spread.
    #[serde(default = "default_zeta")]
    pub zeta: f64,
}

fn default_zeta() -> f64 {
    crate::sim::guidance::DPS_ZETA
}

impl Default for InpaintSpec {
    fn default() -> Self {
        Self {
            c: 0.0,
            method: InpaintMethod::ExactConditional,
            n: 1000,
            steps: 500,
            exact: false,
            zeta: default_zeta(),
        }
    }
}

impl InpaintSpec {
    /// Range checks.
    pub fn validate(&self) -> Result<(), StateError> {
        if !(self.c.is_finite() && self.c.abs() <= MAX_COORD) {
            return Err(format!("the inpainting line x₁ = c needs |c| ≤ {MAX_COORD}").into());
        }
        if !(self.zeta.is_finite() && (0.0..=1.0).contains(&self.zeta)) {
            return Err("DPS's step ζ must be in [0, 1]".to_string().into());
        }
        if !(1..=MAX_INPAINT_N).contains(&self.n) || !(1..=MAX_INPAINT_STEPS).contains(&self.steps)
        {
            return Err(format!(
                "inpainting needs 1..={MAX_INPAINT_N} particles and 1..={MAX_INPAINT_STEPS} steps"
            )
            .into());
        }
        Ok(())
    }
}

/// Everything the user has made (and a link, a scene file or `state()` holds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct State {
    /// Mixture, SDE, noise level, seed.
    pub scene: Scene,
    /// Network and optimiser.
    pub settings: TrainSettings,
    /// Live samplers A and B (B runs in the split view). A link may hold only A.
    #[serde(deserialize_with = "one_or_two_samplers")]
    pub samplers: [LiveSampling; SLOTS],
    /// Split view.
    pub split: SplitMode,
    /// Layer toggles.
    pub layers: Layers,
    /// Arrow field.
    pub arrows: ArrowMode,
    /// Train continuously.
    pub training: bool,
    /// The live particles are frozen where they are.
    pub paused: bool,
    /// Probability-flow ODE paths from a grid of start points.
    pub ode_paths: bool,
    /// The probe particle, if dropped.
    pub probe: Option<[f64; 2]>,
    /// With the probe as the data point x₀: its conditional noising path beside the marginal
    /// PF-ODE path through the same x_t (at the shown noise level).
    pub cond_paths: bool,
    /// Inpainting, if on.
    pub inpaint: Option<InpaintSpec>,
    /// The visible data box [x_lo, y_lo, x_hi, y_hi] (fitted to the data when absent).
    pub view: Option<[f64; 4]>,
    /// Colour map of the density heatmaps.
    pub palette: Palette,
    /// Light axes with tick labels and a scale bar on the canvas.
    pub axes: bool,
    /// A circle of the noise's standard deviation s(t) at the cursor.
    pub sigma_circle: bool,
    /// Colour legends on the canvas.
    pub legends: bool,
    /// The page's look (the projector theme).
    pub theme: Theme,
    /// Size of the controls and text (1 = egui's default; 1.25 or more for a room).
    pub ui_scale: f64,
}

impl State {
    /// Convert what older links and files hold in absolute units (the samplers' `eps`) with
    /// the state's own mixture; every path that reads a `State` from outside calls this.
    pub fn upgrade_legacy(&mut self) {
        match GaussianMixture::from_spec(&self.scene.mixture) {
            Ok(m) => self.upgrade_legacy_with(&m),
            // An invalid mixture is refused by validation; drop what cannot be converted.
            Err(_) => self.samplers.iter_mut().for_each(|s| s.legacy_eps = None),
        }
    }

    /// [`Self::upgrade_legacy`] with the mixture given.
    pub fn upgrade_legacy_with(&mut self, mixture: &GaussianMixture) {
        for s in &mut self.samplers {
            s.upgrade_legacy(mixture);
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self {
            scene: Scene::default(),
            settings: TrainSettings::small(),
            samplers: [LiveSampling::small(), second_sampler()],
            split: SplitMode::Off,
            layers: Layers::default(),
            arrows: ArrowMode::Learned,
            training: true,
            paused: false,
            ode_paths: false,
            probe: None,
            cond_paths: false,
            inpaint: None,
            view: None,
            palette: Palette::default(),
            axes: true,
            sigma_circle: true,
            legends: true,
            theme: Theme::Auto,
            ui_scale: 1.0,
        }
    }
}

/// The second live sampler's default (split view): plain Langevin, the failure case beside
/// annealed Langevin (NCSN Fig. 3).
pub fn second_sampler() -> LiveSampling {
    let mut l = LiveSampling::small();
    l.kind = SamplerKind::Langevin;
    l.steps = 1000;
    l.step = crate::engine::settings::LANGEVIN_STEP;
    l
}

/// Links from before the split view hold one sampler: B keeps its default then.
fn one_or_two_samplers<'de, D>(d: D) -> Result<[LiveSampling; SLOTS], D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v = Vec::<LiveSampling>::deserialize(d)?;
    let mut it = v.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(a), b, None) => Ok([a, b.unwrap_or_else(second_sampler)]),
        _ => Err(serde::de::Error::custom(format!(
            "a link holds 1..={SLOTS} samplers"
        ))),
    }
}

impl State {
    /// Every range check (scene, settings, samplers, points); returns the valid mixture.
    pub fn validate(&self) -> Result<GaussianMixture, StateError> {
        let mixture = self.scene.validate()?;
        self.settings.validate()?;
        for (i, s) in self.samplers.iter().enumerate() {
            s.validate()
                .map_err(|e| StateError::from(e).within(format!("sampler {}", i + 1)))?;
            if let Some(g) = s.guide {
                if g.component >= mixture.len() {
                    return Err(format!(
                        "sampler {}: guidance toward component {} of {}",
                        i + 1,
                        g.component + 1,
                        mixture.len()
                    )
                    .into());
                }
            }
        }
        if let Some(p) = self.probe {
            if !p.iter().all(|v| v.is_finite() && v.abs() <= MAX_COORD) {
                return Err(
                    format!("the probe needs finite coordinates within ±{MAX_COORD}").into(),
                );
            }
        }
        if let Some(i) = &self.inpaint {
            i.validate()?;
        }
        if !(1..=64).contains(&self.layers.flow_euler) {
            return Err(format!(
                "the flow view's Euler steps must be in 1..=64 (got {})",
                self.layers.flow_euler
            )
            .into());
        }
        let (lo, hi) = UI_SCALE_RANGE;
        if !(self.ui_scale.is_finite() && (lo..=hi).contains(&self.ui_scale)) {
            return Err(format!("the UI scale must be in [{lo}, {hi}]").into());
        }
        if let Some(v) = self.view {
            let ok = v.iter().all(|x| x.is_finite() && x.abs() <= MAX_COORD)
                && v[2] - v[0] > 1e-3
                && v[3] - v[1] > 1e-3;
            if !ok {
                return Err("the view box needs finite corners with lo < hi".into());
            }
        }
        Ok(mixture)
    }

    /// Sampler `slot` as the engine runs it: B only runs in the split view.
    pub fn running(&self, slot: usize) -> LiveSampling {
        let mut l = self.samplers[slot].clone();
        l.enabled &= slot == 0 || self.split == SplitMode::Samplers;
        l
    }
}

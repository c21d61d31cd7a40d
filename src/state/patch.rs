//! `setConfig(partial)`: a partial [`State`] in the state's own key vocabulary (the
//! sampler keys apply to `slot`), plus a few actions. Parsed and range-checked here,
//! synchronously (a bad call throws in JS with the message); older key spellings parse as
//! aliases. No egui.

use serde::Deserialize;

use crate::engine::{EngineChoice, Guide, MAX_LIVE_STEPS, MAX_PARTICLES, SLOTS};
use crate::sim::mixture::GaussianMixture;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::SdeKind;
use crate::state::{ArrowMode, InpaintSpec, Layers, Palette, Scene, SplitMode, State};

/// Longest JSON text accepted by `setScene` / `setConfig`.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// Partial layers in a config patch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayersPatch {
    samples: Option<bool>,
    true_density: Option<bool>,
    learned_density: Option<bool>,
    arrows: Option<bool>,
    particles: Option<bool>,
    trails: Option<bool>,
}

impl LayersPatch {
    /// Apply to `l`.
    pub fn apply(&self, l: &mut Layers) {
        let set = |dst: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut l.samples, self.samples);
        set(&mut l.true_density, self.true_density);
        set(&mut l.learned_density, self.learned_density);
        set(&mut l.arrows, self.arrows);
        set(&mut l.particles, self.particles);
        set(&mut l.trails, self.trails);
    }
}

/// `setConfig(partial)`: every field optional; unknown fields are refused.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    /// Hidden width (8..=256).
    pub width: Option<usize>,
    /// Hidden layers (1..=6).
    pub depth: Option<usize>,
    /// Batch (16..=4096).
    pub batch: Option<usize>,
    /// Learning rate (1e-5..=0.1).
    pub lr: Option<f32>,
    /// "ve" | "vp" | "subvp".
    pub sde: Option<SdeKind>,
    /// Noise level shown, t ∈ [0, 1].
    pub t: Option<f64>,
    /// Train continuously.
    pub training: Option<bool>,
    /// Run the live sampler (`sampling` in older calls).
    #[serde(alias = "sampling")]
    pub enabled: Option<bool>,
    /// The sampler follows the exact score (`exact_particles`).
    #[serde(alias = "exact_particles")]
    pub exact: Option<bool>,
    /// Number of live particles (`particles`).
    #[serde(alias = "particles")]
    pub n: Option<usize>,
    /// Annealed Langevin: noise levels L, 2..=200 (`sampler_levels`).
    #[serde(alias = "sampler_levels")]
    pub levels: Option<usize>,
    /// Steps (per level for annealed Langevin) (`sampler_steps`).
    #[serde(alias = "sampler_steps")]
    pub steps: Option<usize>,
    /// Freeze the live particles where they are (true) or let them run (`particles_paused`).
    #[serde(alias = "particles_paused")]
    pub paused: Option<bool>,
    /// "learned" | "exact" | "difference".
    pub arrows: Option<ArrowMode>,
    /// Layer toggles.
    pub layers: Option<LayersPatch>,
    /// "gpu" | "cpu".
    pub engine: Option<EngineChoice>,
    /// Which live sampler the sampler keys below change (0 or 1; default 0).
    pub slot: Option<usize>,
    /// Pick a sampler with its recommended schedule, e.g. "annealed-langevin", "ode-rk4"
    /// (`sampler`).
    #[serde(alias = "sampler")]
    pub kind: Option<SamplerKind>,
    /// Langevin step α / annealed ε (`sampler_eps`).
    #[serde(alias = "sampler_eps")]
    pub eps: Option<f64>,
    /// Predictor–corrector snr (`sampler_snr`).
    #[serde(alias = "sampler_snr")]
    pub snr: Option<f64>,
    /// Animation speed (1 = a run in ≈150 frames; 0.05 = slow motion).
    pub speed: Option<f64>,
    /// Start a new run after each finished one.
    pub repeat: Option<bool>,
    /// Guidance `{component, gamma}` toward a component, or null for none.
    #[serde(default, deserialize_with = "double_option")]
    pub guide: Option<Option<Guide>>,
    /// Start new runs from fresh noise now.
    pub restart: Option<bool>,
    /// Take this many sampler steps (while the particles are frozen).
    pub step_sampler: Option<u32>,
    /// "off" | "samplers" | "density".
    pub split: Option<SplitMode>,
    /// Probability-flow ODE paths from a grid of start points.
    pub ode_paths: Option<bool>,
    /// Drop the probe particle at [x, y], or null to remove it.
    #[serde(default, deserialize_with = "double_option")]
    pub probe: Option<Option<[f64; 2]>>,
    /// Inpainting `{c, method: "exact"|"replacement", n, steps, exact}`, or null for none.
    #[serde(default, deserialize_with = "double_option")]
    pub inpaint: Option<Option<InpaintSpec>>,
    /// A fresh network (true).
    pub reset: Option<bool>,
    /// Colour map of the density heatmaps: "classic" | "cividis".
    pub palette: Option<Palette>,
}

/// `Some(None)` for an explicit null, `Some(Some(v))` for a value (absent keys stay `None`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn check_len(json: &str) -> Result<(), String> {
    if json.len() > MAX_JSON_BYTES {
        return Err(format!(
            "the JSON text is {} bytes; at most {MAX_JSON_BYTES} are accepted",
            json.len()
        ));
    }
    Ok(())
}

/// Parse and check a `setConfig` argument.
pub fn parse_config(json: &str) -> Result<ConfigPatch, String> {
    check_len(json)?;
    let p: ConfigPatch =
        serde_json::from_str(json).map_err(|e| format!("setConfig: invalid JSON: {e}"))?;
    let range = |name: &str, v: Option<usize>, lo: usize, hi: usize| match v {
        Some(v) if !(lo..=hi).contains(&v) => Err(format!(
            "setConfig: {name} must be in {lo}..={hi} (got {v})"
        )),
        _ => Ok(()),
    };
    range("width", p.width, 8, crate::gpu::MAX_GPU_WIDTH)?;
    range("depth", p.depth, 1, 6)?;
    range("batch", p.batch, 16, 4096)?;
    range("particles (n)", p.n, 1, MAX_PARTICLES)?;
    range("levels", p.levels, 2, 200)?;
    range("steps", p.steps, 1, MAX_LIVE_STEPS)?;
    range("slot", p.slot, 0, SLOTS - 1)?;
    let real = |name: &str, v: Option<f64>, lo: f64, hi: f64| match v {
        Some(v) if !(v.is_finite() && (lo..=hi).contains(&v)) => Err(format!(
            "setConfig: {name} must be in [{lo}, {hi}] (got {v})"
        )),
        _ => Ok(()),
    };
    real("eps", p.eps, 1e-12, 1.0)?;
    real("snr", p.snr, 0.0, 10.0)?;
    real("speed", p.speed, 0.001, 100.0)?;
    if let Some(Some(g)) = p.guide {
        real("guide.gamma", Some(g.gamma), 0.0, 20.0)?;
    }
    if let Some(Some(pr)) = p.probe {
        real("probe x", Some(pr[0]), -1e4, 1e4)?;
        real("probe y", Some(pr[1]), -1e4, 1e4)?;
    }
    if let Some(Some(i)) = &p.inpaint {
        i.validate().map_err(|e| format!("setConfig: {e}"))?;
    }
    if let Some(lr) = p.lr {
        if !(lr.is_finite() && (1e-5..=0.1).contains(&lr)) {
            return Err(format!("setConfig: lr must be in [1e-5, 0.1] (got {lr})"));
        }
    }
    if let Some(t) = p.t {
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(format!("setConfig: t must be in [0, 1] (got {t})"));
        }
    }
    Ok(p)
}

/// Parse and check a `setScene` argument (a [`Scene`]; missing fields take defaults).
pub fn parse_scene(json: &str) -> Result<Scene, String> {
    check_len(json)?;
    let s: Scene =
        serde_json::from_str(json).map_err(|e| format!("setScene: invalid JSON: {e}"))?;
    s.validate().map_err(|e| format!("setScene: {e}"))?;
    Ok(s)
}

impl ConfigPatch {
    /// Apply the state part of the patch to `st` (the sampler keys to sampler `slot`);
    /// `mixture` gives a picked sampler its recommended schedule. Actions (`reset`,
    /// `restart`, `step_sampler`, `engine`) are the caller's.
    pub fn apply_to(&self, st: &mut State, mixture: &GaussianMixture) {
        let set = |dst: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut st.settings.width, self.width);
        set(&mut st.settings.depth, self.depth);
        set(&mut st.settings.batch, self.batch);
        if let Some(v) = self.lr {
            st.settings.lr = v;
        }
        if let Some(v) = self.sde {
            st.scene.sde = v;
        }
        if let Some(v) = self.t {
            st.scene.t = v;
        }
        if let Some(v) = self.training {
            st.training = v;
        }
        if let Some(v) = self.paused {
            st.paused = v;
        }
        if let Some(v) = self.arrows {
            st.arrows = v;
        }
        if let Some(l) = &self.layers {
            l.apply(&mut st.layers);
        }
        if let Some(v) = self.split {
            st.split = v;
        }
        if let Some(v) = self.ode_paths {
            st.ode_paths = v;
        }
        if let Some(v) = self.probe {
            st.probe = v;
        }
        if let Some(v) = self.inpaint {
            st.inpaint = v;
        }
        if let Some(v) = self.palette {
            st.palette = v;
        }
        let live = &mut st.samplers[self.slot.unwrap_or(0).min(SLOTS - 1)];
        if let Some(kind) = self.kind {
            *live = live.with_kind(kind, mixture);
        }
        if let Some(v) = self.enabled {
            live.enabled = v;
        }
        if let Some(v) = self.exact {
            live.exact = v;
        }
        set(&mut live.n, self.n);
        set(&mut live.levels, self.levels);
        set(&mut live.steps, self.steps);
        if let Some(v) = self.eps {
            live.eps = v;
        }
        if let Some(v) = self.snr {
            live.snr = v;
        }
        if let Some(v) = self.speed {
            live.speed = v;
        }
        if let Some(v) = self.repeat {
            live.repeat = v;
        }
        if let Some(g) = self.guide {
            live.guide = g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_patches_are_range_checked() {
        let ok = parse_config(
            r#"{"width":32,"lr":0.001,"sde":"vp","layers":{"trails":false},"arrows":"difference"}"#,
        )
        .expect("valid patch");
        assert_eq!(ok.width, Some(32));
        assert_eq!(ok.sde, Some(SdeKind::Vp));
        assert_eq!(ok.arrows, Some(ArrowMode::Difference));
        for bad in [
            r#"{"width":4}"#,
            r#"{"width":100000}"#,
            r#"{"lr":5}"#,
            r#"{"t":1.5}"#,
            r#"{"particles":0}"#,
            r#"{"sampler_levels":1}"#,
            r#"{"sampler_steps":0}"#,
            r#"{"particles":1e12}"#,
            r#"{"colour":"red"}"#,
            r#"{"layers":{"everything":true}}"#,
            "not json",
        ] {
            assert!(parse_config(bad).is_err(), "accepted {bad}");
        }
        assert!(parse_config(&" ".repeat(MAX_JSON_BYTES + 1)).is_err());
    }

    #[test]
    fn old_and_new_spellings_of_the_sampler_keys_agree() {
        let m = GaussianMixture::from_spec(&State::default().scene.mixture).expect("valid");
        let old = parse_config(
            r#"{"slot":1,"sampler":"pc","particles":700,"sampler_eps":0.001,"sampler_snr":0.2,"exact_particles":true,"sampling":true,"sampler_levels":30,"sampler_steps":40,"particles_paused":true}"#,
        )
        .expect("old spellings parse");
        let new = parse_config(
            r#"{"slot":1,"kind":"pc","n":700,"eps":0.001,"snr":0.2,"exact":true,"enabled":true,"levels":30,"steps":40,"paused":true}"#,
        )
        .expect("new spellings parse");
        assert_eq!(old, new);
        let mut a = State::default();
        old.apply_to(&mut a, &m);
        assert_eq!(a.samplers[1].n, 700);
        assert_eq!(a.samplers[1].kind, SamplerKind::Pc);
        assert!(a.samplers[1].exact && a.paused);
        assert_eq!(a.samplers[0], State::default().samplers[0]);
    }

    #[test]
    fn scenes_are_validated() {
        let s = parse_scene(
            r#"{"mixture":{"components":[{"weight":1,"mean":[1,2],"cov":[[1,0],[0,2]]}]},"t":0.3}"#,
        )
        .expect("valid scene");
        assert_eq!(s.mixture.components.len(), 1);
        assert_eq!(s.t, 0.3);
        for bad in [
            r#"{"mixture":{"components":[]}}"#,
            r#"{"mixture":{"components":[{"weight":1,"mean":[0,0],"cov":[[1,2],[2,1]]}]}}"#,
            r#"{"mixture":{"components":[{"weight":-1,"mean":[0,0],"cov":[[1,0],[0,1]]}]}}"#,
            r#"{"t":2}"#,
        ] {
            assert!(parse_scene(bad).is_err(), "accepted {bad}");
        }
    }
}

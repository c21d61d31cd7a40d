//! `setConfig(partial)`: a partial [`State`]. Any key of the state (`training`, `paused`,
//! `layers: {trails: false}`, `split`, `probe`, `palette`, …) is merged into it as it is
//! (objects key by key, everything else replaced), so a new setting of the state is settable
//! here without touching this file. A few shortcuts stay: the network and scene keys at the
//! top level (`width`, `lr`, `sde`, `t`, …), the sampler keys for sampler `slot` (`n`, `eps`,
//! `kind`, …, with their older spellings `particles`, `sampler_eps`, `sampler`, … as
//! aliases), and the actions `engine`, `reset`, `restart`, `step_sampler`. Parsed and
//! checked here, synchronously (a bad call throws in JS with the message). No egui.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::engine::{EngineChoice, Guide, SLOTS};
use crate::sim::mixture::GaussianMixture;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::SdeKind;
use crate::state::{Scene, State, StateError};

/// Longest JSON text accepted by `setScene` / `setConfig`.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// `setConfig(partial)`: every field optional; keys that are neither a shortcut nor a key
/// of the [`State`] are refused.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ConfigPatch {
    /// Hidden width (`engine::settings::table` has every range below).
    pub width: Option<usize>,
    /// Hidden layers.
    pub depth: Option<usize>,
    /// Batch.
    pub batch: Option<usize>,
    /// Learning rate.
    pub lr: Option<f32>,
    /// "ve" | "vp" | "subvp".
    pub sde: Option<SdeKind>,
    /// Noise level shown, t ∈ [0, 1].
    pub t: Option<f64>,
    /// Freeze the live particles where they are (true) or let them run (`particles_paused`).
    #[serde(alias = "particles_paused")]
    pub paused: Option<bool>,
    /// "gpu" | "cpu".
    pub engine: Option<EngineChoice>,
    /// Which live sampler the sampler keys below change (0 or 1; default 0).
    pub slot: Option<usize>,
    /// Run the live sampler (`sampling` in older calls).
    #[serde(alias = "sampling")]
    pub enabled: Option<bool>,
    /// The sampler follows the exact score (`exact_particles`).
    #[serde(alias = "exact_particles")]
    pub exact: Option<bool>,
    /// Number of live particles (`particles`).
    #[serde(alias = "particles")]
    pub n: Option<usize>,
    /// Pick a sampler with its recommended schedule, e.g. "annealed-langevin", "ode-rk4"
    /// (`sampler`).
    #[serde(alias = "sampler")]
    pub kind: Option<SamplerKind>,
    /// Annealed Langevin: noise levels L (`sampler_levels`).
    #[serde(alias = "sampler_levels")]
    pub levels: Option<usize>,
    /// Steps (per level for annealed Langevin) (`sampler_steps`).
    #[serde(alias = "sampler_steps")]
    pub steps: Option<usize>,
    /// The relative step (`LiveSampling::step`: annealed r = α_i/σ_i², plain Langevin α in
    /// units of the narrowest component variance).
    pub step: Option<f64>,
    /// An absolute Langevin step α / annealed ε in data units (`sampler_eps`), converted to
    /// the relative step with the current mixture (calls made before steps were relative
    /// keep working).
    #[serde(alias = "sampler_eps")]
    pub eps: Option<f64>,
    /// Predictor–corrector snr (`sampler_snr`).
    #[serde(alias = "sampler_snr")]
    pub snr: Option<f64>,
    /// DDIM's η.
    pub eta: Option<f64>,
    /// Heun-EDM's S_churn.
    pub churn: Option<f64>,
    /// Animation speed (1 = a run in ≈150 frames; 0.05 = slow motion).
    pub speed: Option<f64>,
    /// Start a new run after each finished one.
    pub repeat: Option<bool>,
    /// Guidance `{component, gamma}` toward a component, or null for none.
    #[serde(default, deserialize_with = "double_option")]
    pub guide: Option<Option<Guide>>,
    /// Langevin family: Metropolis-adjust against the exact p_t (MALA).
    pub mala: Option<bool>,
    /// Start time of a run (its σ_max = s(t_start)).
    pub t_start: Option<f64>,
    /// The start distribution's std relative to the right prior's.
    pub prior_scale: Option<f64>,
    /// Open lesson N (1-based) with its state, applied before the other keys; null closes
    /// the lesson player.
    #[serde(default, deserialize_with = "double_option")]
    pub lesson: Option<Option<usize>>,
    /// Start new runs from fresh noise now.
    pub restart: Option<bool>,
    /// Take this many sampler steps (while the particles are frozen).
    pub step_sampler: Option<u32>,
    /// A fresh network (true).
    pub reset: Option<bool>,
    /// Every other key: merged into the state.
    #[serde(flatten)]
    pub state: Map<String, Value>,
}

/// `Some(None)` for an explicit null, `Some(Some(v))` for a value (absent keys stay `None`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Merge `patch` into `target`: objects key by key (recursively), anything else replaced.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn check_len(json: &str) -> Result<(), StateError> {
    if json.len() > MAX_JSON_BYTES {
        return Err(StateError::TooLong {
            bytes: json.len(),
            max: MAX_JSON_BYTES,
        });
    }
    Ok(())
}

/// Parse and check a `setConfig` argument.
pub fn parse_config(json: &str) -> Result<ConfigPatch, StateError> {
    let within = |e: StateError| e.within("setConfig");
    check_len(json)?;
    let p: ConfigPatch =
        serde_json::from_str(json).map_err(|e| within(StateError::Json(e.to_string())))?;
    // The settings' rows (`engine::settings::table`): the same ranges and messages as the
    // panel, links and the CLI.
    use crate::engine::settings::table as t;
    let check = |row: &t::Setting, v: Option<f64>| match v {
        Some(v) => row.check(v).map_err(|e| within(e.into())),
        None => Ok(()),
    };
    let int = |v: Option<usize>| v.map(|v| v as f64);
    check(&t::WIDTH, int(p.width))?;
    check(&t::DEPTH, int(p.depth))?;
    check(&t::BATCH, int(p.batch))?;
    check(&t::LR, p.lr.map(f64::from))?;
    check(&t::PARTICLES, int(p.n))?;
    check(&t::LEVELS, int(p.levels))?;
    check(&t::STEPS, int(p.steps))?;
    check(&t::STEP, p.step)?;
    check(&t::SNR, p.snr)?;
    check(&t::ETA, p.eta)?;
    check(&t::CHURN, p.churn)?;
    check(&t::SPEED, p.speed)?;
    check(&t::T_START, p.t_start)?;
    check(&t::PRIOR_SCALE, p.prior_scale)?;
    if let Some(Some(g)) = p.guide {
        check(&t::GAMMA, Some(g.gamma))?;
    }
    if let Some(slot) = p.slot.filter(|s| *s >= SLOTS) {
        return Err(format!("setConfig: slot must be in 0..={} (got {slot})", SLOTS - 1).into());
    }
    if let Some(eps) = p
        .eps
        .filter(|v| !(v.is_finite() && (1e-12..=1.0).contains(v)))
    {
        return Err(format!("setConfig: eps must be in [1e-12, 1] (got {eps})").into());
    }
    if let Some(Some(n)) = p.lesson {
        let count = crate::state::lessons::count();
        if !(1..=count).contains(&n) {
            return Err(format!("setConfig: lesson must be in 1..={count} (got {n})").into());
        }
    }
    if let Some(t) = p.t {
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            return Err(format!("setConfig: t must be in [0, 1] (got {t})").into());
        }
    }
    // The state keys: names, types and ranges, checked on the defaults (the mixture-dependent
    // checks run again on the real state when the patch is applied).
    let mut st = State::default();
    p.merge_into(&mut st)?;
    st.validate().map_err(within)?;
    Ok(p)
}

/// Parse and check a `setScene` argument (a [`Scene`]; missing fields take defaults).
pub fn parse_scene(json: &str) -> Result<Scene, StateError> {
    let within = |e: StateError| e.within("setScene");
    check_len(json)?;
    let s: Scene =
        serde_json::from_str(json).map_err(|e| within(StateError::Json(e.to_string())))?;
    s.validate().map_err(within)?;
    Ok(s)
}

impl ConfigPatch {
    /// Merge the patch's state keys into `st`.
    fn merge_into(&self, st: &mut State) -> Result<(), StateError> {
        if self.state.is_empty() {
            return Ok(());
        }
        let mut v = serde_json::to_value(&*st).map_err(|e| StateError::Refused(e.to_string()))?;
        merge(&mut v, &Value::Object(self.state.clone()));
        *st = serde_json::from_value(v)
            .map_err(|e| StateError::Refused(e.to_string()).within("setConfig"))?;
        Ok(())
    }

    /// Apply the state part of the patch to `st` (the sampler keys to sampler `slot`);
    /// `mixture` gives a picked sampler its recommended schedule. Actions (`reset`,
    /// `restart`, `step_sampler`, `engine`) are the caller's.
    pub fn apply_to(&self, st: &mut State, mixture: &GaussianMixture) {
        if let Err(e) = self.merge_into(st) {
            // Checked by `parse_config`; unreachable for a parsed patch.
            log::warn!("{e}");
        }
        // A patched mixture is what the legacy steps were meant for.
        let patched = GaussianMixture::from_spec(&st.scene.mixture).ok();
        let mixture = patched.as_ref().unwrap_or(mixture);
        st.upgrade_legacy_with(mixture);
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
        if let Some(v) = self.paused {
            st.paused = v;
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
            live.step = live.relative_step(v, mixture);
        }
        if let Some(v) = self.step {
            live.step = v;
        }
        if let Some(v) = self.snr {
            live.snr = v;
        }
        if let Some(v) = self.eta {
            live.eta = v;
        }
        if let Some(v) = self.churn {
            live.churn = v;
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
        if let Some(v) = self.mala {
            live.mala = v;
        }
        if let Some(v) = self.t_start {
            live.t_start = v;
        }
        if let Some(v) = self.prior_scale {
            live.prior_scale = v;
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
        let mut st = State::default();
        let m = GaussianMixture::from_spec(&st.scene.mixture).expect("valid");
        ok.apply_to(&mut st, &m);
        assert_eq!(st.arrows, crate::state::ArrowMode::Difference);
        assert!(
            !st.layers.trails && st.layers.samples,
            "a partial layers object merges"
        );
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
            r#"{"probe":[1e300,0]}"#,
            r#"{"palette":"rainbow"}"#,
            r#"{"inpaint":{"c":0,"method":"exact","n":0,"steps":10}}"#,
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

    /// A key of the state needs no code here: `palette` (added after the patch was written)
    /// and nulls that remove an optional part.
    #[test]
    fn any_state_key_merges_and_null_removes() {
        let m = GaussianMixture::from_spec(&State::default().scene.mixture).expect("valid");
        let mut st = State {
            probe: Some([1.0, 2.0]),
            ..State::default()
        };
        parse_config(r#"{"palette":"cividis","probe":null,"training":false}"#)
            .expect("valid")
            .apply_to(&mut st, &m);
        assert_eq!(st.palette, crate::state::Palette::Cividis);
        assert_eq!(st.probe, None);
        assert!(!st.training);
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

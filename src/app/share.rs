//! Share links: the URL hash holds the whole scene (mixture, SDE, t, seed), the model
//! settings, the samplers, the view flags, the conditional-sampling setup and the view box,
//! as `#s=<base64url(JSON)>`, plus embed flags (`ui=min`, `panels=…`) that hide parts of the
//! page for a slide or an iframe.
//!
//! Parsing is strict and bounded: the hash is at most [`MAX_HASH_BYTES`]; keys are
//! whitelisted; the payload must be base64url of UTF-8 JSON with no unknown fields; every
//! number is range-checked by the same validators the panel and the JS API use. A bad link
//! gives an error message (the app then starts from the defaults); nothing here panics.
//! No egui: tested natively (unit tests and a seeded mutation fuzz below).

use serde::{Deserialize, Serialize};

use crate::app::api::{ArrowMode, Layers};
use crate::app::Scene;
use crate::engine::{LiveSampling, TrainSettings, SLOTS};
use crate::sim::guidance::InpaintMethod;
use crate::sim::mixture::GaussianMixture;

/// Longest hash accepted (bytes, including the leading `#`).
pub const MAX_HASH_BYTES: usize = 32 * 1024;
/// Most particles an inpainting run may ask for.
pub const MAX_INPAINT_N: usize = 20_000;
/// Most reverse-SDE steps of an inpainting run.
pub const MAX_INPAINT_STEPS: usize = 5_000;
/// Largest |coordinate| accepted for points in a link (probe, inpainting line, view box).
const MAX_COORD: f64 = 1e4;

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
    /// Replacement follows the exact joint score instead of the learned one.
    #[serde(default)]
    pub exact: bool,
}

impl Default for InpaintSpec {
    fn default() -> Self {
        Self {
            c: 0.0,
            method: InpaintMethod::ExactConditional,
            n: 1000,
            steps: 500,
            exact: false,
        }
    }
}

impl InpaintSpec {
    /// Range checks.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.c.is_finite() && self.c.abs() <= MAX_COORD) {
            return Err(format!(
                "the inpainting line x₁ = c needs |c| ≤ {MAX_COORD}"
            ));
        }
        if !(1..=MAX_INPAINT_N).contains(&self.n) || !(1..=MAX_INPAINT_STEPS).contains(&self.steps)
        {
            return Err(format!(
                "inpainting needs 1..={MAX_INPAINT_N} particles and 1..={MAX_INPAINT_STEPS} steps"
            ));
        }
        Ok(())
    }
}

/// Everything a share link restores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Shared {
    /// Mixture, SDE, noise level, seed.
    pub scene: Scene,
    /// Network and optimiser.
    pub settings: TrainSettings,
    /// Live samplers (the second one is shown in the split view).
    pub samplers: Vec<LiveSampling>,
    /// Split view.
    pub split: SplitMode,
    /// Layer toggles.
    pub layers: Layers,
    /// Arrow field.
    pub arrows: ArrowMode,
    /// Train continuously.
    pub training: bool,
    /// Probability-flow ODE paths from a grid of start points.
    pub ode_paths: bool,
    /// The probe particle, if dropped.
    pub probe: Option<[f64; 2]>,
    /// Inpainting, if on.
    pub inpaint: Option<InpaintSpec>,
    /// The visible data box [x_lo, y_lo, x_hi, y_hi] (fitted to the data when absent).
    pub view: Option<[f64; 4]>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            scene: Scene::default(),
            settings: TrainSettings::small(),
            samplers: vec![LiveSampling::small()],
            split: SplitMode::Off,
            layers: Layers::default(),
            arrows: ArrowMode::Learned,
            training: true,
            ode_paths: false,
            probe: None,
            inpaint: None,
            view: None,
        }
    }
}

impl Shared {
    /// Every range check (scene, settings, samplers, points).
    pub fn validate(&self) -> Result<(), String> {
        let mixture = GaussianMixture::from_spec(&self.scene.mixture).map_err(|e| e.to_string())?;
        if !(self.scene.t.is_finite() && (0.0..=1.0).contains(&self.scene.t)) {
            return Err(format!("t must be in [0, 1] (got {})", self.scene.t));
        }
        self.settings.validate()?;
        if self.samplers.is_empty() || self.samplers.len() > SLOTS {
            return Err(format!("a link holds 1..={SLOTS} samplers"));
        }
        for (i, s) in self.samplers.iter().enumerate() {
            s.validate()
                .map_err(|e| format!("sampler {}: {e}", i + 1))?;
            if let Some(g) = s.guide {
                if g.component >= mixture.len() {
                    return Err(format!(
                        "sampler {}: guidance toward component {} of {}",
                        i + 1,
                        g.component + 1,
                        mixture.len()
                    ));
                }
            }
        }
        if let Some(p) = self.probe {
            if !p.iter().all(|v| v.is_finite() && v.abs() <= MAX_COORD) {
                return Err(format!(
                    "the probe needs finite coordinates within ±{MAX_COORD}"
                ));
            }
        }
        if let Some(i) = &self.inpaint {
            i.validate()?;
        }
        if let Some(v) = self.view {
            let ok = v.iter().all(|x| x.is_finite() && x.abs() <= MAX_COORD)
                && v[2] - v[0] > 1e-3
                && v[3] - v[1] > 1e-3;
            if !ok {
                return Err("the view box needs finite corners with lo < hi".into());
            }
        }
        Ok(())
    }
}

/// Which parts of the page show (embed flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Panels {
    /// The control panel on the left.
    pub controls: bool,
    /// The status line.
    pub status: bool,
    /// Loss / Fisher / mode-weight charts.
    pub charts: bool,
    /// The no-WebGPU banner.
    pub banner: bool,
}

impl Default for Panels {
    fn default() -> Self {
        Self {
            controls: true,
            status: true,
            charts: true,
            banner: true,
        }
    }
}

const PANEL_NAMES: [&str; 4] = ["controls", "status", "charts", "banner"];

/// Embed flags of a link, kept verbatim (normalised) so a copied link keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmbedFlags {
    /// `ui=min`: the canvas only.
    pub minimal: bool,
    /// `panels=a,b,…`: show exactly these panels.
    pub panels: Option<Vec<String>>,
}

impl EmbedFlags {
    /// The panels to show.
    pub fn panels(&self) -> Panels {
        let mut p = Panels::default();
        if self.minimal {
            p = Panels {
                controls: false,
                status: false,
                charts: false,
                banner: false,
            };
        }
        if let Some(list) = &self.panels {
            let has = |n: &str| list.iter().any(|x| x == n);
            p = Panels {
                controls: has("controls"),
                status: has("status"),
                charts: has("charts"),
                banner: has("banner"),
            };
        }
        p
    }

    fn to_hash_parts(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.minimal {
            v.push("ui=min".to_string());
        }
        if let Some(p) = &self.panels {
            v.push(format!("panels={}", p.join(",")));
        }
        v
    }
}

/// A parsed link.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The state, if the link has one (`s=`).
    pub shared: Option<Shared>,
    /// Embed flags.
    pub flags: EmbedFlags,
}

/// Percent-decode (strict: a `%` must be followed by two hex digits); bytes, not yet UTF-8.
fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a broken %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        let chars = c.len() + 1;
        for k in 0..chars {
            s.push(B64URL[(n >> (18 - 6 * k)) as usize & 63] as char);
        }
    }
    s
}

/// Decode base64url (padding optional); refuses any other character.
pub fn base64url_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for ch in s.bytes() {
        let v = B64URL
            .iter()
            .position(|&c| c == ch)
            .ok_or_else(|| format!("the state is not base64url (found {:?})", ch as char))?
            as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("the state has a truncated base64url tail".into());
    }
    Ok(out)
}

/// Parse a URL hash (with or without the leading `#`). An empty hash is `Ok` with no state.
pub fn parse_hash(hash: &str) -> Result<Link, String> {
    if hash.len() > MAX_HASH_BYTES {
        return Err(format!(
            "the link's hash is {} bytes; at most {MAX_HASH_BYTES} are accepted",
            hash.len()
        ));
    }
    let hash = hash.strip_prefix('#').unwrap_or(hash);
    let mut link = Link {
        shared: None,
        flags: EmbedFlags::default(),
    };
    for part in hash.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let value = String::from_utf8(percent_decode(value)?)
            .map_err(|_| format!("the value of {key:?} is not valid UTF-8"))?;
        match key {
            "s" => {
                if link.shared.is_some() {
                    return Err("the link has two states (s=)".into());
                }
                let bytes = base64url_decode(&value)?;
                let text = String::from_utf8(bytes).map_err(|_| "the state is not valid UTF-8")?;
                let shared: Shared = serde_json::from_str(&text)
                    .map_err(|e| format!("the state is not a ScoreLab scene: {e}"))?;
                shared.validate()?;
                link.shared = Some(shared);
            }
            "ui" => match value.as_str() {
                "min" => link.flags.minimal = true,
                "full" => link.flags.minimal = false,
                other => return Err(format!("ui={other:?} is not one of min, full")),
            },
            "panels" => {
                let list: Vec<String> = value
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(bad) = list.iter().find(|p| !PANEL_NAMES.contains(&p.as_str())) {
                    return Err(format!(
                        "panels: {bad:?} is not one of {}",
                        PANEL_NAMES.join(", ")
                    ));
                }
                link.flags.panels = Some(list);
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(format!("unknown link key {shown:?} (known: s, ui, panels)"));
            }
        }
    }
    Ok(link)
}

/// The hash (with `#`) for a state and embed flags.
pub fn to_hash(shared: &Shared, flags: &EmbedFlags) -> String {
    let json = serde_json::to_string(shared).unwrap_or_else(|_| "{}".into());
    let mut parts = vec![format!("s={}", base64url_encode(json.as_bytes()))];
    parts.extend(flags.to_hash_parts());
    format!("#{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::StreamRng;
    use crate::sim::samplers::SamplerKind;

    fn sample_state() -> Shared {
        let mut s = Shared::default();
        s.scene.t = 0.3125;
        s.scene.seed = 7;
        s.samplers = vec![
            LiveSampling::small().with_kind(
                SamplerKind::Langevin,
                &GaussianMixture::from_spec(&s.scene.mixture).expect("valid"),
            ),
            LiveSampling::small(),
        ];
        s.split = SplitMode::Samplers;
        s.probe = Some([1.5, -2.25]);
        s.inpaint = Some(InpaintSpec {
            c: -1.0,
            ..InpaintSpec::default()
        });
        s.view = Some([-10.0, -9.0, 11.0, 12.5]);
        s
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = base64url_encode(&bytes);
            assert!(enc.bytes().all(|c| B64URL.contains(&c)));
            assert_eq!(base64url_decode(&enc).expect("decodes"), bytes);
        }
        assert!(base64url_decode("ab+c").is_err());
        assert!(base64url_decode("a").is_err());
    }

    #[test]
    fn links_round_trip_exactly() {
        let s = sample_state();
        let flags = EmbedFlags {
            minimal: true,
            panels: Some(vec!["status".into()]),
        };
        let hash = to_hash(&s, &flags);
        let link = parse_hash(&hash).expect("own links parse");
        assert_eq!(link.shared.as_ref(), Some(&s));
        assert_eq!(link.flags, flags);
        assert_eq!(to_hash(&link.shared.expect("state"), &link.flags), hash);
        assert!(!flags.panels().controls && flags.panels().status);
    }

    #[test]
    fn hostile_links_are_refused_with_a_message() {
        let json_hash = |json: &str| format!("#s={}", base64url_encode(json.as_bytes()));
        let huge_components = format!(
            r#"{{"scene":{{"mixture":{{"components":[{}]}}}}}}"#,
            vec![r#"{"weight":1,"mean":[0,0],"cov":[[1,0],[0,1]]}"#; 40].join(",")
        );
        let cases: Vec<(String, &str)> = vec![
            (json_hash(r#"{"scene":{"t":1e308}}"#), "t must be"),
            (json_hash(r#"{"scene":{"t":NaN}}"#), "not a ScoreLab scene"),
            (
                json_hash(r#"{"settings":{"width":1e9,"depth":3,"batch":128,"lr":0.001}}"#),
                "not a ScoreLab scene",
            ),
            (
                json_hash(r#"{"settings":{"width":100000,"depth":3,"batch":128,"lr":0.001}}"#),
                "width",
            ),
            (json_hash(r#"{"samplers":[{"n":1000000000}]}"#), "particles"),
            (json_hash(r#"{"samplers":[]}"#), "samplers"),
            (json_hash(r#"{"probe":[1e300,0]}"#), "probe"),
            (
                json_hash(r#"{"inpaint":{"c":0,"method":"exact","n":1000000,"steps":10}}"#),
                "inpainting",
            ),
            (json_hash(&huge_components), "components"),
            (json_hash(r#"{"colour":"red"}"#), "unknown field"),
            ("#s=%FF%FE%FD".into(), "UTF-8"),
            (
                format!("#s={}", base64url_encode(&[0xff, 0xfe, 0x00, 0x80])),
                "UTF-8",
            ),
            ("#s=!!!!".into(), "base64url"),
            ("#s=%ZZ".into(), "%-escape"),
            (format!("#s={}", "A".repeat(100_000)), "at most"),
            ("#ui=max".into(), "ui="),
            ("#panels=controls,everything".into(), "panels"),
            ("#evil=1".into(), "unknown link key"),
            ("#s=e30&s=e30".into(), "two states"),
        ];
        for (hash, want) in cases {
            let err =
                parse_hash(&hash).expect_err(&format!("accepted {}", &hash[..hash.len().min(80)]));
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        // 10⁶ components: refused by the length limit before any parsing.
        let million = format!("#s={}", "QUFB".repeat(250_000));
        assert!(parse_hash(&million)
            .expect_err("too long")
            .contains("at most"));
    }

    #[test]
    fn empty_and_flag_only_hashes_parse() {
        assert_eq!(parse_hash("").expect("empty").shared, None);
        assert_eq!(parse_hash("#").expect("bare #").shared, None);
        let l = parse_hash("#ui=min").expect("flags only");
        assert!(l.flags.minimal && l.shared.is_none());
        let l = parse_hash("#panels=controls,charts").expect("panels");
        let p = l.flags.panels();
        assert!(p.controls && p.charts && !p.status);
    }

    /// Seeded mutation fuzz: random byte edits, truncations and splices of a valid link never
    /// panic, and whatever parses passes validation (the parser's only way out is `Err`).
    #[test]
    fn mutated_links_never_panic_and_parsed_ones_are_valid() {
        let base = to_hash(&sample_state(), &EmbedFlags::default());
        let json = serde_json::to_string(&sample_state()).expect("serialises");
        let mut rng = StreamRng::new(2024, 9);
        let mut parsed = 0;
        for round in 0..4000 {
            let mut bytes: Vec<u8> = if round % 2 == 0 {
                base.clone().into_bytes()
            } else {
                json.clone().into_bytes()
            };
            let edits = 1 + (rng.next_word() % 6) as usize;
            for _ in 0..edits {
                let at = rng.next_word() as usize % bytes.len().max(1);
                match rng.next_word() % 4 {
                    0 => bytes[at] = rng.next_word() as u8,
                    1 => bytes.truncate(at),
                    2 => bytes.insert(
                        at,
                        b"%&=-_{}[],:0123456789eE.\"#"[rng.next_word() as usize % 26],
                    ),
                    _ => {
                        if !bytes.is_empty() {
                            bytes.remove(at);
                        }
                    }
                }
                if bytes.is_empty() {
                    bytes.push(b'#');
                }
            }
            let text = if round % 2 == 0 {
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                // mutate the JSON, then wrap it as a link
                format!("#s={}", base64url_encode(&bytes))
            };
            if let Ok(link) = parse_hash(&text) {
                parsed += 1;
                if let Some(s) = link.shared {
                    assert!(s.validate().is_ok());
                }
            }
        }
        // Some mutations must survive (e.g. a changed digit), or the fuzz tests nothing.
        assert!(parsed > 10, "only {parsed} mutated links parsed");
    }
}

//! Share links (the wire form of [`State`]): the URL hash holds the whole scene (mixture, SDE, t, seed), the model
//! settings, the samplers, the view flags, the conditional-sampling setup and the view box,
//! as `#s=<base64url(JSON)>`, plus embed flags (`ui=min`, `panels=…`) that hide parts of the
//! page for a slide or an iframe.
//!
//! Parsing is strict and bounded: the hash is at most [`MAX_HASH_BYTES`]; keys are
//! whitelisted; the payload must be base64url of UTF-8 JSON with no unknown fields; every
//! number is range-checked by the same validators the panel and the JS API use. A bad link
//! gives an error message (the app then starts from the defaults); nothing here panics.
//! No egui: tested natively (unit tests and a seeded mutation fuzz below).

use crate::state::StateError;
use serde::Serialize;

use crate::state::base64::{base64url_decode, base64url_encode};
use crate::state::State;

/// Longest hash accepted (bytes, including the leading `#`).
pub const MAX_HASH_BYTES: usize = 32 * 1024;

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
    /// `lesson=N`: the lesson player shows lesson N (1-based, `state::lessons`).
    pub lesson: Option<usize>,
    /// `qr`: the link's QR code shows over the canvas (a room's students scan it).
    pub qr: bool,
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
        if let Some(n) = self.lesson {
            v.push(format!("lesson={n}"));
        }
        if self.qr {
            v.push("qr".to_string());
        }
        v
    }
}

/// A parsed link.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The state, if the link has one (`s=`).
    pub shared: Option<State>,
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

/// Parse a URL hash (with or without the leading `#`). An empty hash is `Ok` with no state.
pub fn parse_hash(hash: &str) -> Result<Link, StateError> {
    if hash.len() > MAX_HASH_BYTES {
        return Err(format!(
            "the link's hash is {} bytes; at most {MAX_HASH_BYTES} are accepted",
            hash.len()
        )
        .into());
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
                let text = String::from_utf8(bytes)
                    .map_err(|_| StateError::from("the state is not valid UTF-8"))?;
                let mut shared: State = serde_json::from_str(&text)
                    .map_err(|e| format!("the state is not a ScoreLab scene: {e}"))?;
                shared.upgrade_legacy();
                shared.validate()?;
                link.shared = Some(shared);
            }
            "ui" => match value.as_str() {
                "min" => link.flags.minimal = true,
                "full" => link.flags.minimal = false,
                other => return Err(format!("ui={other:?} is not one of min, full").into()),
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
                    )
                    .into());
                }
                link.flags.panels = Some(list);
            }
            "lesson" => {
                let n = crate::state::lessons::count();
                match value.parse::<usize>() {
                    Ok(k) if (1..=n).contains(&k) => link.flags.lesson = Some(k),
                    _ => {
                        let shown: String = value.chars().take(20).collect();
                        return Err(format!("lesson={shown:?} is not a lesson (1 to {n})").into());
                    }
                }
            }
            "qr" => match value.as_str() {
                "" | "1" => link.flags.qr = true,
                "0" => link.flags.qr = false,
                other => return Err(format!("qr={other:?} is not one of 1, 0").into()),
            },
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(format!(
                    "unknown link key {shown:?} (known: s, ui, panels, lesson, qr)"
                )
                .into());
            }
        }
    }
    Ok(link)
}

/// The hash (with `#`) for a state and embed flags.
pub fn to_hash(shared: &State, flags: &EmbedFlags) -> String {
    let json = serde_json::to_string(shared).unwrap_or_else(|_| "{}".into());
    let mut parts = vec![format!("s={}", base64url_encode(json.as_bytes()))];
    parts.extend(flags.to_hash_parts());
    format!("#{}", parts.join("&"))
}

/// [`to_hash`]'s shorter form (for QR codes): the state's JSON without the values that equal
/// the defaults (a link's missing keys are the defaults), kept only if it reads back as the
/// same state; otherwise the whole state.
pub fn to_short_hash(shared: &State, flags: &EmbedFlags) -> String {
    let (Ok(full), Ok(defaults), Ok(one)) = (
        serde_json::to_value(shared),
        serde_json::to_value(State::default()),
        serde_json::to_value(crate::engine::LiveSampling::default()),
    ) else {
        return to_hash(shared, flags);
    };
    let mut short = without_defaults(&full, &defaults).unwrap_or(serde_json::json!({}));
    // A sampler written in a link starts from `LiveSampling::default()` (the A slot's, not its
    // own slot's: B is plain Langevin), so each is written as its difference from that.
    if let (Some(list), Some(obj)) = (full["samplers"].as_array(), short.as_object_mut()) {
        if obj.contains_key("samplers") {
            let mut items: Vec<serde_json::Value> = list
                .iter()
                .map(|x| without_defaults(x, &one).unwrap_or(serde_json::json!({})))
                .collect();
            while items.len() > 1 && items.last() == Some(&serde_json::json!({})) {
                items.pop();
            }
            obj.insert("samplers".into(), serde_json::Value::Array(items));
        }
    }
    let json = short.to_string();
    let back: Option<State> = serde_json::from_str(&json).ok().map(|mut s: State| {
        s.upgrade_legacy();
        s
    });
    if back.as_ref() != Some(shared) {
        return to_hash(shared, flags);
    }
    let mut parts = vec![format!("s={}", base64url_encode(json.as_bytes()))];
    parts.extend(flags.to_hash_parts());
    format!("#{}", parts.join("&"))
}

/// `v` without what equals `d`: objects key by key, anything else whole; None when all of it
/// is the default.
fn without_defaults(v: &serde_json::Value, d: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    if v == d {
        return None;
    }
    match (v, d) {
        (Value::Object(a), Value::Object(b)) => Some(Value::Object(
            a.iter()
                .filter_map(|(k, x)| match b.get(k) {
                    Some(y) => without_defaults(x, y).map(|x| (k.clone(), x)),
                    None => Some((k.clone(), x.clone())),
                })
                .collect(),
        )),
        _ => Some(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LiveSampling;
    use crate::sim::mixture::GaussianMixture;
    use crate::sim::rng::StreamRng;
    use crate::sim::samplers::SamplerKind;
    use crate::state::{InpaintSpec, SplitMode};

    fn sample_state() -> State {
        let mut s = State::default();
        s.scene.t = 0.3125;
        s.scene.seed = 7;
        s.samplers = [
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
            method: crate::sim::guidance::InpaintMethod::Dps,
            zeta: 0.2,
            ..InpaintSpec::default()
        });
        s.view = Some([-10.0, -9.0, 11.0, 12.5]);
        // Issue 16's views.
        s.samplers[0].mala = true;
        s.arrows = crate::state::ArrowMode::Denoiser;
        s.layers.responsibilities = true;
        // Issue 14's display settings and failure-scene sampler settings.
        s.theme = crate::state::Theme::Projector;
        s.ui_scale = 1.25;
        s.palette = crate::state::Palette::Cividis;
        s.legends = false;
        s.samplers[1].t_start = 0.5;
        s.samplers[1].prior_scale = 0.2;
        s
    }

    /// The short form reads back as the same state, for a busy state and every lesson's, and
    /// is shorter than the whole state.
    #[test]
    fn short_links_round_trip_and_are_shorter() {
        let mut states = vec![
            ("sample".to_string(), sample_state()),
            ("default".into(), State::default()),
        ];
        for n in 1..=crate::state::lessons::count() {
            let l = crate::state::lessons::lesson(n).expect("a lesson");
            states.push((format!("lesson {n}"), l.state().expect("its state")));
        }
        for (name, s) in states {
            let flags = EmbedFlags::default();
            let short = to_short_hash(&s, &flags);
            let full = to_hash(&s, &flags);
            let back = parse_hash(&short).expect("parses").shared.expect("a state");
            assert_eq!(back, s, "{name}: the short link reads back as the state");
            assert!(
                short.len() < full.len(),
                "{name}: {} vs {} bytes",
                short.len(),
                full.len()
            );
            if name == "default" {
                assert_eq!(short, format!("#s={}", base64url_encode(b"{}")), "{name}");
            }
        }
    }

    #[test]
    fn links_round_trip_exactly() {
        let s = sample_state();
        let flags = EmbedFlags {
            minimal: true,
            panels: Some(vec!["status".into()]),
            lesson: Some(12),
            qr: true,
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
            (
                json_hash(r#"{"layers":{"flow":true,"flow_euler":0}}"#),
                "Euler steps",
            ),
            (
                json_hash(r#"{"layers":{"flow_euler":100000}}"#),
                "Euler steps",
            ),
            (
                json_hash(r#"{"layers":{"flow":true,"flow_solver":"rk5"}}"#),
                "unknown variant",
            ),
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
            ("#lesson=0".into(), "not a lesson"),
            ("#lesson=99".into(), "not a lesson"),
            ("#lesson=-1".into(), "not a lesson"),
        ];
        for (hash, want) in cases {
            let err = parse_hash(&hash)
                .expect_err(&format!("accepted {}", &hash[..hash.len().min(80)]))
                .to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        // 10⁶ components: refused by the length limit before any parsing.
        let million = format!("#s={}", "QUFB".repeat(250_000));
        assert!(parse_hash(&million)
            .expect_err("too long")
            .to_string()
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

    /// The JSON of a link's `s=` state (Null when it has none).
    fn link_json(link: &str) -> serde_json::Value {
        link.trim_start_matches('#')
            .split('&')
            .find_map(|kv| kv.strip_prefix("s="))
            .and_then(|v| base64url_decode(v).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Links saved from main before the state rebuild (every README lesson link, every
    /// preset, sampler, split and layer, partial links, embed flags) give the same state
    /// and flags as then; and every lesson link in today's README still parses.
    #[test]
    fn links_from_before_the_rebuild_give_the_same_state() {
        let text = include_str!("../../tests/fixtures/links-2026-12-01.json");
        let rows: Vec<serde_json::Value> = serde_json::from_str(text).expect("fixture");
        assert!(rows.len() >= 15);
        for row in rows {
            let link = row["link"].as_str().expect("link");
            let got = parse_hash(link).expect("an old link parses");
            // The saved state held absolute steps (`eps`); converted with its own mixture,
            // the samplers run with the same ε / α as then.
            let mut want: State =
                serde_json::from_value(row["state"].clone()).expect("the saved state parses");
            let mixture = want.validate().expect("valid");
            let saved_eps: Vec<Option<f64>> = want.samplers.iter().map(|s| s.legacy_eps).collect();
            want.upgrade_legacy();
            // A link that left a sampler's step (or steps per level) out asked for the
            // default, which changed with issue 27: the step is relative now (the old
            // absolute default diverged on some presets) and annealed Langevin's live L, T are 40, 50.
            let raw = link_json(link);
            let given_key = |i: usize, key: &str| match &raw["samplers"] {
                serde_json::Value::Array(a) => a.get(i).is_some_and(|s| s.get(key).is_some()),
                serde_json::Value::Object(o) => i == 0 && o.contains_key(key),
                _ => false,
            };
            let given = |i: usize| given_key(i, "eps");
            // A sampler the link holds takes the struct's defaults for what it leaves out; a
            // slot it does not hold takes the state's default sampler.
            let present = |i: usize| match &raw["samplers"] {
                serde_json::Value::Array(a) => i < a.len(),
                serde_json::Value::Object(_) => i == 0,
                _ => false,
            };
            for (i, s) in want.samplers.iter_mut().enumerate() {
                let d = if present(i) {
                    crate::engine::LiveSampling::default()
                } else {
                    State::default().samplers[i].clone()
                };
                if !given(i) {
                    s.step = d.step;
                }
                if !given_key(i, "steps") {
                    s.steps = d.steps;
                }
                if !given_key(i, "levels") {
                    s.levels = d.levels;
                }
            }
            for (i, (s, eps)) in want.samplers.iter().zip(saved_eps).enumerate() {
                if let (Some(eps), Some(a), true) = (eps, s.absolute_step(&mixture), given(i)) {
                    assert!((a / eps - 1.0).abs() < 1e-9, "{link}: {a} vs {eps}");
                }
            }
            assert_eq!(got.shared.as_ref(), Some(&want), "{link}");
            assert_eq!(got.flags.minimal, row["minimal"].as_bool().expect("bool"));
            let panels: Option<Vec<String>> =
                serde_json::from_value(row["panels"].clone()).expect("panels");
            assert_eq!(got.flags.panels, panels);
        }
        let readme = include_str!("../../README.md");
        let mut n = 0;
        for part in readme.split("#s=").skip(1) {
            let end = part
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-_&=,".contains(c)))
                .unwrap_or(part.len());
            if end < 8 {
                continue; // "#s=<base64url…>" in the prose
            }
            let link = format!("#s={}", &part[..end]);
            parse_hash(&link).unwrap_or_else(|e| panic!("README link {link}: {e}"));
            n += 1;
        }
        assert!(n >= 5, "only {n} README links found");
    }
}

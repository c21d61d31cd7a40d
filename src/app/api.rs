//! The JS embed API's plumbing (`window.scorelab.setScene/setConfig/samples/exportPng`):
//! requests are parsed and range-checked here, synchronously (a bad call throws in JS with
//! the message), then queued for the app, which applies them at its next frame. Answers
//! that need a frame (samples from the GPU, a screenshot) are stored by request id and
//! collected by the page's JS wrapper. No egui or wasm here, so it is tested natively.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;

use crate::app::share::{InpaintSpec, Shared, SplitMode};
use crate::app::Scene;
use crate::engine::{Guide, LiveSampling, MAX_LIVE_STEPS, MAX_PARTICLES, SLOTS};
use crate::sim::mixture::GaussianMixture;
use crate::sim::model::ScoreNet;
use crate::sim::samplers::SamplerKind;
use crate::sim::sde::SdeKind;

/// Largest file `importFile` / a dropped file may be (a width-256, depth-6 model is ≈5 MB).
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// Longest JSON text accepted by `setScene` / `setConfig`.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// Layers of the canvas (all drawn at the chosen noise level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
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
    /// Live annealed-Langevin particles.
    pub particles: bool,
    /// Fading trails behind the particles.
    pub trails: bool,
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
        }
    }
}

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
    /// Run the live particles.
    pub sampling: Option<bool>,
    /// Particles follow the exact score.
    pub exact_particles: Option<bool>,
    /// Number of live particles.
    pub particles: Option<usize>,
    /// Live annealed Langevin: noise levels L (2..=200).
    pub sampler_levels: Option<usize>,
    /// Live annealed Langevin: steps per level T (1..=1000).
    pub sampler_steps: Option<usize>,
    /// Freeze the live particles where they are (true) or let them run (false).
    pub particles_paused: Option<bool>,
    /// "learned" | "exact" | "difference".
    pub arrows: Option<ArrowMode>,
    /// Layer toggles.
    pub layers: Option<LayersPatch>,
    /// "gpu" | "cpu".
    pub engine: Option<crate::engine::EngineChoice>,
    /// Which live sampler the sampler keys below change (0 or 1; default 0).
    pub slot: Option<usize>,
    /// Pick a sampler (with its recommended schedule), e.g. "annealed-langevin", "ode-rk4".
    pub sampler: Option<SamplerKind>,
    /// Langevin step α / annealed ε.
    pub sampler_eps: Option<f64>,
    /// Predictor–corrector snr.
    pub sampler_snr: Option<f64>,
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
}

/// `Some(None)` for an explicit null, `Some(Some(v))` for a value (absent keys stay `None`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Which field the arrows show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrowMode {
    /// The network's score.
    Learned,
    /// The exact score of the perturbed mixture.
    Exact,
    /// learned − exact.
    Difference,
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
    range("particles", p.particles, 1, MAX_PARTICLES)?;
    range("sampler_levels", p.sampler_levels, 2, 200)?;
    range("sampler_steps", p.sampler_steps, 1, MAX_LIVE_STEPS)?;
    range("slot", p.slot, 0, SLOTS - 1)?;
    let real = |name: &str, v: Option<f64>, lo: f64, hi: f64| match v {
        Some(v) if !(v.is_finite() && (lo..=hi).contains(&v)) => Err(format!(
            "setConfig: {name} must be in [{lo}, {hi}] (got {v})"
        )),
        _ => Ok(()),
    };
    real("sampler_eps", p.sampler_eps, 1e-12, 1.0)?;
    real("sampler_snr", p.sampler_snr, 0.0, 10.0)?;
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
    GaussianMixture::from_spec(&s.mixture).map_err(|e| format!("setScene: {e}"))?;
    if !(s.t.is_finite() && (0.0..=1.0).contains(&s.t)) {
        return Err(format!("setScene: t must be in [0, 1] (got {})", s.t));
    }
    Ok(s)
}

/// A request queued for the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Replace the scene.
    SetScene(Box<Scene>),
    /// Change settings.
    SetConfig(Box<ConfigPatch>),
    /// Read the particle positions; the answer is stored under the id.
    Samples(u32),
    /// Screenshot the plot as a PNG data URL; stored under the id.
    ExportPng(u32),
    /// Particle positions of a live sampler: (id, slot).
    SamplesOf(u32, usize),
    /// The drawing network as a model file (JSON); stored under the id.
    ExportModel(u32),
    /// The learned score field at the shown noise level, `[[x, y, sx, sy], …]`.
    Field(u32),
    /// The inpainting samples x₂ once the run is complete.
    Inpaint(u32),
    /// Apply an imported (already validated) file.
    Import(Box<Imported>),
    /// Show a message about a file (e.g. a refused drop).
    FileMessage(String),
}

/// A validated imported file.
#[derive(Clone, Debug)]
pub enum Imported {
    /// A model file: config, SDE and weights.
    Model(Box<ScoreNet>),
    /// A scene file (everything a share link holds).
    Scene(Box<Shared>),
}

impl PartialEq for Imported {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Model(a), Self::Model(b)) => {
                a.mlp.params == b.mlp.params && a.config == b.config
            }
            (Self::Scene(a), Self::Scene(b)) => a == b,
            _ => false,
        }
    }
}

/// Parse and validate an imported file (model JSON or scene JSON). A refused file leaves
/// everything as it was; the message says why.
pub fn parse_import(name: &str, text: &str) -> Result<Imported, String> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(format!(
            "{name}: {} bytes; at most {MAX_IMPORT_BYTES} are accepted",
            text.len()
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("{name} is not a ScoreLab file (invalid JSON: {e})"))?;
    if value.get("format").is_some() || value.get("params").is_some() {
        let net = ScoreNet::from_json(text).map_err(|e| format!("{name}: model refused: {e}"))?;
        let max_w = crate::gpu::MAX_GPU_WIDTH;
        if net.config.width > max_w || !(1..=6).contains(&net.config.depth) {
            return Err(format!(
                "{name}: model refused: width ≤ {max_w} and depth 1..=6 are supported (got {}×{})",
                net.config.width, net.config.depth
            ));
        }
        return Ok(Imported::Model(Box::new(net)));
    }
    if value.get("mixture").is_some() {
        let scene = parse_scene(text).map_err(|e| format!("{name}: {e}"))?;
        return Ok(Imported::Scene(Box::new(Shared {
            scene,
            ..Shared::default()
        })));
    }
    let shared: Shared = serde_json::from_value(value)
        .map_err(|e| format!("{name} is neither a ScoreLab model nor a scene file: {e}"))?;
    shared.validate().map_err(|e| format!("{name}: {e}"))?;
    Ok(Imported::Scene(Box::new(shared)))
}

static COMMANDS: Mutex<Vec<Command>> = Mutex::new(Vec::new());
static RESULTS: Mutex<Option<HashMap<u32, Result<String, String>>>> = Mutex::new(None);
static NEXT_ID: Mutex<u32> = Mutex::new(1);

/// Queue a command.
pub fn push(cmd: Command) {
    if let Ok(mut q) = COMMANDS.lock() {
        q.push(cmd);
    }
}

/// A fresh request id.
pub fn next_id() -> u32 {
    NEXT_ID
        .lock()
        .map(|mut n| {
            let id = *n;
            *n = n.wrapping_add(1).max(1);
            id
        })
        .unwrap_or(0)
}

/// Take the queued commands (the app, once per frame).
pub fn drain() -> Vec<Command> {
    COMMANDS
        .lock()
        .map(|mut q| std::mem::take(&mut *q))
        .unwrap_or_default()
}

/// Store the answer to request `id`.
pub fn answer(id: u32, result: Result<String, String>) {
    if let Ok(mut r) = RESULTS.lock() {
        r.get_or_insert_with(HashMap::new).insert(id, result);
    }
}

/// Take the answer to request `id`, if it has come.
pub fn take_answer(id: u32) -> Option<Result<String, String>> {
    RESULTS.lock().ok()?.as_mut()?.remove(&id)
}

/// Defaults check: the live-sampling part of a patch applied to `live`.
pub fn apply_sampling(p: &ConfigPatch, live: &mut LiveSampling) -> bool {
    let before = live.clone();
    if let Some(v) = p.sampling {
        live.enabled = v;
    }
    if let Some(v) = p.exact_particles {
        live.exact = v;
    }
    if let Some(v) = p.particles {
        live.n = v;
    }
    if let Some(v) = p.sampler_levels {
        live.levels = v;
    }
    if let Some(v) = p.sampler_steps {
        live.steps = v;
    }
    if let Some(v) = p.sampler_eps {
        live.eps = v;
    }
    if let Some(v) = p.sampler_snr {
        live.snr = v;
    }
    if let Some(v) = p.speed {
        live.speed = v;
    }
    if let Some(v) = p.repeat {
        live.repeat = v;
    }
    if let Some(g) = p.guide {
        live.guide = g;
    }
    *live != before
}

// ------------------------------------------------------------------ PNG

/// Encode 8-bit RGBA pixels (row-major, top row first) as a PNG file. Deflate "stored"
/// blocks only (no compression): exact, small code, and the data URL is for a script.
pub fn encode_png(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    let row = width as usize * 4;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for y in 0..height as usize {
        raw.push(0); // filter: none
        raw.extend_from_slice(&rgba[y * row..(y + 1) * row]);
    }
    // zlib stream: header, stored blocks of ≤ 65535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let mut chunks = raw.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        z.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        z.push(u8::from(chunks.peek().is_none()));
        let len = c.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &v in &raw {
        a = (a + u32::from(v)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, no filter set, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Standard base64 (with padding).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_through_an_independent_decoder() {
        let (w, h) = (37u32, 2100u32); // > 65535 bytes of raw data: several stored blocks
        let rgba: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 251) as u8).collect();
        let png_bytes = encode_png(w, h, &rgba);
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("valid PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("valid PNG data");
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(info.color_type, png::ColorType::Rgba);
        assert_eq!(&buf[..info.buffer_size()], &rgba[..]);
    }

    #[test]
    fn base64_matches_known_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }

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

#[cfg(test)]
mod import_tests {
    use super::*;
    use crate::sim::model::NetConfig;
    use crate::sim::sde::Sde;

    #[test]
    fn model_files_round_trip_and_corrupt_ones_are_refused() {
        let net = ScoreNet::new(
            NetConfig {
                width: 16,
                depth: 2,
                ..NetConfig::default()
            },
            Sde::new(SdeKind::Vp, 10.0),
        )
        .expect("valid net");
        let text = serde_json::to_string(&net.to_file(12)).expect("serialises");
        match parse_import("m.json", &text).expect("own model files import") {
            Imported::Model(m) => assert_eq!(m.mlp.params, net.mlp.params),
            Imported::Scene(_) => panic!("a model file imported as a scene"),
        }
        let cut = &text[..text.len() / 2];
        let wrong_count = text.replacen("\"params\":[", "\"params\":[0.5,", 1);
        let nan = text.replacen("\"params\":[", "\"params\":[1e999,", 1);
        let wrong_format = text.replacen("scorelab-model", "other-model", 1);
        for (bad, why) in [
            (cut, "invalid JSON"),
            (wrong_count.as_str(), "model refused"),
            (nan.as_str(), "invalid JSON"),
            (wrong_format.as_str(), "model refused"),
            ("[1,2,3]", "neither"),
            ("{\"hello\":1}", "neither"),
        ] {
            let e = parse_import("m.json", bad).expect_err("corrupt file accepted");
            assert!(e.contains(why), "{e:?} should say {why:?}");
        }
    }

    #[test]
    fn scene_files_import() {
        let sh = Shared::default();
        let text = serde_json::to_string_pretty(&sh).expect("serialises");
        match parse_import("s.json", &text).expect("scene imports") {
            Imported::Scene(s) => assert_eq!(*s, sh),
            Imported::Model(_) => panic!("a scene imported as a model"),
        }
    }
}

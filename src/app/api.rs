//! The JS embed API's plumbing (`window.scorelab.setScene/setConfig/samples/exportPng`):
//! requests are parsed and range-checked here, synchronously (a bad call throws in JS with
//! the message), then queued for the app, which applies them at its next frame. Answers
//! that need a frame (samples from the GPU, a screenshot) are stored by request id and
//! collected by the page's JS wrapper. No egui or wasm here, so it is tested natively.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Deserialize;

use crate::app::engine::{LiveSampling, MAX_PARTICLES};
use crate::app::Scene;
use crate::sim::mixture::GaussianMixture;
use crate::sim::sde::SdeKind;

/// Longest JSON text accepted by `setScene` / `setConfig`.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// Layers of the canvas (all drawn at the chosen noise level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    pub engine: Option<crate::app::EngineChoice>,
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
    range("sampler_steps", p.sampler_steps, 1, 1000)?;
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

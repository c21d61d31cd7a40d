//! The JS embed API's requests and answers, typed. A call that needs a frame queues a
//! [`Command`] with a fresh request id; the app answers it with an [`Answer`] or says why
//! not ([`Refused`]); `take_answer` turns that into what JS receives, here and nowhere else
//! (JSON for data, the data URL for a PNG, the file's text for a model; a refusal throws its
//! message). No egui or wasm: tested natively.

use std::collections::HashMap;
use std::sync::Mutex;

use super::command::Command;

/// What a request is answered with.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// `samples()`: the particle positions.
    Points(Vec<[f32; 2]>),
    /// `field()` / `denoiser()`: one row of numbers per grid point.
    Rows(Vec<Vec<f64>>),
    /// `inpaint()`: the x₂ samples.
    Values(Vec<f64>),
    /// `exportModel()`: a model file's JSON text.
    ModelFile(String),
    /// `exportPng()`: the plot as a PNG data URL.
    PngDataUrl(String),
}

/// Why a request is not answered (the message JS throws).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refused {
    /// `samples()` of a sampler that is not running (1-based).
    #[error("live sampler {0} is off")]
    SamplerOff(usize),
    /// `exportModel()` with no engine.
    #[error("no training engine is running")]
    NoEngine,
    /// `exportPng()` while the plot is hidden.
    #[error("the plot is not on screen")]
    PlotOffScreen,
    /// `inpaint()` with inpainting off.
    #[error("inpainting is off (setConfig({{inpaint: {{...}}}}))")]
    InpaintOff,
    /// The answer could not be written.
    #[error("cannot write the answer: {0}")]
    Encode(String),
}

impl Answer {
    /// The text JS receives.
    pub fn into_text(self) -> Result<String, Refused> {
        let json = |r: serde_json::Result<String>| r.map_err(|e| Refused::Encode(e.to_string()));
        match self {
            Answer::Points(p) => json(serde_json::to_string(&p)),
            Answer::Rows(r) => json(serde_json::to_string(&r)),
            Answer::Values(v) => json(serde_json::to_string(&v)),
            Answer::ModelFile(text) | Answer::PngDataUrl(text) => Ok(text),
        }
    }
}

static COMMANDS: Mutex<Vec<Command>> = Mutex::new(Vec::new());
static RESULTS: Mutex<Option<HashMap<u32, Result<Answer, Refused>>>> = Mutex::new(None);
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
pub fn answer(id: u32, result: Result<Answer, Refused>) {
    if let Ok(mut r) = RESULTS.lock() {
        r.get_or_insert_with(HashMap::new).insert(id, result);
    }
}

/// Take the answer to request `id`, if it has come, as the text JS receives (or the message
/// it throws).
pub fn take_answer(id: u32) -> Option<Result<String, String>> {
    let answer = RESULTS.lock().ok()?.as_mut()?.remove(&id)?;
    Some(
        answer
            .and_then(|a| a.into_text())
            .map_err(|e| e.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_reach_js_as_text_and_refusals_as_messages() {
        let (a, b, c) = (next_id(), next_id(), next_id());
        assert!(a != b && b != c);
        answer(a, Ok(Answer::Points(vec![[1.0, -2.5]])));
        answer(b, Err(Refused::SamplerOff(2)));
        answer(c, Ok(Answer::PngDataUrl("data:image/png;base64,AA".into())));
        assert_eq!(take_answer(a), Some(Ok("[[1.0,-2.5]]".into())));
        assert_eq!(take_answer(a), None, "an answer is taken once");
        assert_eq!(take_answer(b), Some(Err("live sampler 2 is off".into())));
        assert_eq!(take_answer(c), Some(Ok("data:image/png;base64,AA".into())));
    }
}

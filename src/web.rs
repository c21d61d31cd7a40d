//! The wasm entry point and the JS embed API (`window.scorelab`, wired up in `index.html`).
//!
//! Start-up: `#[wasm_bindgen(start)]` → eframe's `WebRunner` on `#scorelab_canvas` (WebGPU
//! when the browser has it, WebGL otherwise) → after the first frames the app sets
//! `data-scorelab-ready="1"` on `<body>`. A start-up failure or a panic is written into the
//! page (`#scorelab_message`), never a blank page.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::app::{AppOptions, ScoreLabApp};
use crate::engine::EngineChoice;

/// Options from the page URL: `?engine=gpu|cpu`, and the `#…` share link.
fn options_from_url() -> AppOptions {
    let location = web_sys::window().map(|w| w.location());
    let get = |f: fn(&web_sys::Location) -> Result<String, JsValue>| {
        location
            .as_ref()
            .and_then(|l| f(l).ok())
            .unwrap_or_default()
    };
    let search = get(web_sys::Location::search);
    let hash = get(web_sys::Location::hash);
    let page_url = format!(
        "{}{}{}",
        get(web_sys::Location::origin),
        get(web_sys::Location::pathname),
        search
    );
    let engine = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| match kv {
            "engine=gpu" => Some(EngineChoice::Gpu),
            "engine=cpu" => Some(EngineChoice::Cpu),
            _ => None,
        });
    AppOptions {
        engine,
        hash: Some(hash),
        page_url,
    }
}

thread_local! {
    static RUNNER: RefCell<Option<eframe::WebRunner>> = const { RefCell::new(None) };
}

fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

/// Show a readable message in the page (start-up failure, crash).
fn show_message(text: &str) {
    if let Some(el) = document().and_then(|d| d.get_element_by_id("scorelab_message")) {
        el.set_text_content(Some(text));
        let _ = el.set_attribute("class", "visible");
    }
}

fn signal_ready() {
    if let Some(body) = document().and_then(|d| d.body()) {
        // When (page clock, ms) the first frames were painted: the load benchmark reads it.
        if let Some(now) = web_sys::window()
            .and_then(|w| w.performance())
            .map(|p| p.now())
        {
            let _ = body.set_attribute("data-scorelab-ready-ms", &format!("{now:.1}"));
        }
        let _ = body.set_attribute("data-scorelab-ready", "1");
    }
    if let Some(el) = document().and_then(|d| d.get_element_by_id("scorelab_loading")) {
        el.remove();
    }
}

/// Runs when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        show_message(&format!(
            "ScoreLab crashed: {info}. Reload the page to start again."
        ));
    }));
    let _ = eframe::WebLogger::init(log::LevelFilter::Info);
    let bench_page = document()
        .and_then(|d| d.body())
        .is_some_and(|b| b.has_attribute("data-scorelab-bench"));
    if bench_page {
        return; // web/bench.html drives `web_bench` itself.
    }
    wasm_bindgen_futures::spawn_local(async {
        let Some(canvas) = document()
            .and_then(|d| d.get_element_by_id("scorelab_canvas"))
            .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
        else {
            show_message("ScoreLab: the page has no <canvas id=\"scorelab_canvas\">.");
            return;
        };
        let runner = eframe::WebRunner::new();
        let started = runner
            .start(
                canvas,
                eframe::WebOptions::default(),
                Box::new(|cc| {
                    Ok(Box::new(ScoreLabApp::new(
                        cc,
                        Some(Box::new(signal_ready)),
                        options_from_url(),
                    )))
                }),
            )
            .await;
        match started {
            Ok(()) => RUNNER.with(|r| *r.borrow_mut() = Some(runner)),
            Err(e) => {
                let text = e.as_string().unwrap_or_else(|| format!("{e:?}"));
                log::error!("ScoreLab failed to start: {text}");
                show_message(&format!("ScoreLab could not start its renderer: {text}"));
            }
        }
    });
}

/// The app state as a JSON string (`window.scorelab.state()` parses it).
#[wasm_bindgen]
pub fn state() -> String {
    crate::app::state_json()
}

/// `setScene(json)`: validated now (throws with the reason), applied at the next frame.
#[wasm_bindgen]
pub fn set_scene(json: &str) -> Result<(), JsValue> {
    let scene = crate::state::patch::parse_scene(json).map_err(|e| JsValue::from_str(&e))?;
    crate::state::command::push(crate::state::command::Command::SetScene(Box::new(scene)));
    Ok(())
}

/// `setConfig(partialJson)`: validated now (throws with the reason), applied at the next frame.
#[wasm_bindgen]
pub fn set_config(json: &str) -> Result<(), JsValue> {
    let patch = crate::state::patch::parse_config(json).map_err(|e| JsValue::from_str(&e))?;
    crate::state::command::push(crate::state::command::Command::SetConfig(Box::new(patch)));
    Ok(())
}

/// Ask for the particle positions; returns a request id for [`take_answer`].
#[wasm_bindgen]
pub fn request_samples() -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::Samples(id));
    id
}

/// Ask for a PNG of the plot; returns a request id for [`take_answer`].
#[wasm_bindgen]
pub fn request_export_png() -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::ExportPng(id));
    id
}

/// The answer to request `id` once it is there (`undefined` before); an error throws.
#[wasm_bindgen]
pub fn take_answer(id: u32) -> Result<Option<String>, JsValue> {
    match crate::state::command::take_answer(id) {
        None => Ok(None),
        Some(Ok(s)) => Ok(Some(s)),
        Some(Err(e)) => Err(JsValue::from_str(&e)),
    }
}

/// Ask for a live sampler's particle positions (`slot` 0 or 1); returns a request id.
#[wasm_bindgen]
pub fn request_samples_of(slot: u32) -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::SamplesOf(
        id,
        slot.min(1) as usize,
    ));
    id
}

/// Ask for the drawing network as a model file (JSON text); returns a request id.
#[wasm_bindgen]
pub fn request_model() -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::ExportModel(id));
    id
}

/// Ask for the learned score field at the shown noise level; returns a request id.
#[wasm_bindgen]
pub fn request_field() -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::Field(id));
    id
}

/// Ask for the inpainting samples x₂ (answered when the run is complete); returns a request id.
#[wasm_bindgen]
pub fn request_inpaint() -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::Inpaint(id));
    id
}

/// `importFile(name, text)`: a model or scene JSON file, validated now (throws with the
/// reason and changes nothing), applied at the next frame.
#[wasm_bindgen]
pub fn import_file(name: &str, text: &str) -> Result<(), JsValue> {
    let file =
        crate::state::command::parse_import(name, text).map_err(|e| JsValue::from_str(&e))?;
    crate::state::command::push(crate::state::command::Command::Import(Box::new(file)));
    Ok(())
}

/// Show a message in the panel (the page's file picker reports a refused file through this).
#[wasm_bindgen]
pub fn file_message(text: &str) {
    crate::state::command::push(crate::state::command::Command::FileMessage(
        text.to_string(),
    ));
}

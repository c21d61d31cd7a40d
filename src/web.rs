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

/// Options from the page URL: `?engine=gpu|cpu|split`, and the `#…` share link.
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
            "engine=cpu" | "engine=split" => Some(EngineChoice::Cpu),
            _ => None,
        });
    let split = search
        .trim_start_matches('?')
        .split('&')
        .any(|kv| kv == "engine=split");
    let no_offload = search
        .trim_start_matches('?')
        .split('&')
        .any(|kv| kv == "worker=0");
    let probe_software = search
        .trim_start_matches('?')
        .split('&')
        .any(|kv| kv == "probe=1");
    AppOptions {
        engine,
        hash: Some(hash),
        page_url,
        no_offload,
        worker: Some(crate::engine::remote::Offload {
            start: start_worker,
            place: crate::engine::RunsOn::Worker,
            workers: pool_size(&search),
            shards: pool_shards(&search),
        }),
        probe_software,
        split,
    }
}

/// The CPU engine's pool of Web Workers (`engine::pool`): `?workers=N` (1..=MAX_WORKERS),
/// else the machine's cores less the page's own (`navigator.hardwareConcurrency` − 1), at
/// least one and at most [`crate::engine::pool::MAX_WORKERS`].
fn pool_size(search: &str) -> usize {
    use crate::engine::pool::MAX_WORKERS;
    let asked = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("workers="));
    if let Some(a) = asked {
        match a.parse::<usize>() {
            Ok(n) if (1..=MAX_WORKERS).contains(&n) => return n,
            _ => log::warn!(
                "?workers={a} is not a worker count in 1..={MAX_WORKERS}; using the machine's cores"
            ),
        }
    }
    let cores = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("navigator")).ok())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("hardwareConcurrency")).ok())
        .and_then(|c| c.as_f64())
        .unwrap_or(2.0);
    (cores as usize).saturating_sub(1).clamp(1, MAX_WORKERS)
}

/// Whether a pool's other workers compute their pieces of each training step
/// (`engine::shards`): `?shards=1` or `?shards=0`, else [`crate::engine::shards::BY_DEFAULT`].
fn pool_shards(search: &str) -> bool {
    let asked = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("shards="));
    match asked {
        Some("1") => true,
        Some("0") => false,
        Some(a) => {
            log::warn!("?shards={a} is neither 0 nor 1; using the default");
            crate::engine::shards::BY_DEFAULT
        }
        None => crate::engine::shards::BY_DEFAULT,
    }
}

/// The CPU engine's Web Worker, as `engine::start` asks for it.
fn start_worker() -> Result<Box<dyn crate::engine::remote::Link>, String> {
    WebLink::start().map(|l| Box::new(l) as Box<dyn crate::engine::remote::Link>)
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
    if web_sys::window().is_none() {
        return; // the CPU engine's worker (web/worker.js): no page to start
    }
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
    let scene =
        crate::state::patch::parse_scene(json).map_err(|e| JsValue::from_str(&e.to_string()))?;
    crate::state::command::push(crate::state::command::Command::SetScene(Box::new(scene)));
    Ok(())
}

/// `setConfig(partialJson)`: validated now (throws with the reason), applied at the next frame.
#[wasm_bindgen]
pub fn set_config(json: &str) -> Result<(), JsValue> {
    let patch =
        crate::state::patch::parse_config(json).map_err(|e| JsValue::from_str(&e.to_string()))?;
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

/// `record(seconds)`: start recording a clip of at most `seconds` (the Record button's
/// command; applied at the next frame).
#[wasm_bindgen]
pub fn start_recording(seconds: f64) {
    crate::state::command::push(crate::state::command::Command::Record(Some(
        if seconds.is_finite() {
            seconds
        } else {
            crate::app::record::MAX_SECONDS
        },
    )));
}

/// `stopRecording()`: stop the clip and save it (the Stop button's command).
#[wasm_bindgen]
pub fn stop_recording() {
    crate::state::command::push(crate::state::command::Command::Record(None));
}

/// The last finished clip's GIF (empty before one).
#[wasm_bindgen]
pub fn last_gif() -> Vec<u8> {
    crate::app::record::LAST_GIF
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default()
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

/// Ask for Tweedie's denoiser on the field's grid (learned, exact, responsibilities);
/// returns a request id.
#[wasm_bindgen]
pub fn request_denoiser() -> u32 {
    let id = crate::state::command::next_id();
    crate::state::command::push(crate::state::command::Command::Denoiser(id));
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
    let file = crate::state::command::parse_import(name, text)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
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

// ------------------------------------------------------------------ the CPU engine's worker

type Inbox = std::rc::Rc<RefCell<Vec<Vec<u8>>>>;
type Failure = std::rc::Rc<RefCell<Option<String>>>;

/// The page's end of the CPU engine's Web Worker (`web/worker.js` running this same wasm
/// build; `engine::remote`). Messages go as transferred `ArrayBuffer`s.
pub struct WebLink {
    worker: web_sys::Worker,
    inbox: Inbox,
    failure: Failure,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl WebLink {
    /// Start the worker with the build the page loaded (`data-scorelab-build`).
    pub fn start() -> Result<Self, String> {
        let build = document()
            .and_then(|d| d.body())
            .and_then(|b| b.get_attribute("data-scorelab-build"))
            .filter(|b| b == "scorelab" || b == "scorelab_webgl")
            .unwrap_or_else(|| "scorelab".to_string());
        let opts = web_sys::WorkerOptions::new();
        opts.set_type(web_sys::WorkerType::Module);
        opts.set_name("scorelab-cpu-engine");
        let worker =
            web_sys::Worker::new_with_options(&format!("./worker.js?build={build}"), &opts)
                .map_err(|e| format!("cannot start a Web Worker: {}", js_text(&e)))?;
        let inbox: Inbox = Default::default();
        let failure: Failure = Default::default();
        let (ib, fl) = (inbox.clone(), failure.clone());
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let data = e.data();
                if let Some(text) = data.as_string() {
                    // worker.js reports a failed start as text.
                    *fl.borrow_mut() = Some(text);
                } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                    ib.borrow_mut().push(js_sys::Uint8Array::new(&buf).to_vec());
                }
            });
        let fl = failure.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let text = e
                .dyn_ref::<web_sys::ErrorEvent>()
                .map(|e| e.message())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the worker failed to load".to_string());
            fl.borrow_mut().get_or_insert(text);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // First message: the page's own compiled module, which the worker instantiates instead
        // of fetching and compiling the wasm again (a pool starts several workers; V8 shares
        // the compiled code). `null` where it cannot be posted: the worker then fetches it.
        if worker.post_message(&wasm_bindgen::module()).is_err() {
            let _ = worker.post_message(&JsValue::NULL);
        }
        Ok(Self {
            worker,
            inbox,
            failure,
            _on_message: on_message,
            _on_error: on_error,
        })
    }
}

fn js_text(v: &JsValue) -> String {
    v.as_string()
        .or_else(|| {
            v.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{v:?}"))
}

/// Post `bytes` to `target` (a worker or the worker's global scope), moving its buffer.
fn post_bytes(
    bytes: &[u8],
    post: impl FnOnce(&JsValue, &JsValue) -> Result<(), JsValue>,
) -> Result<(), JsValue> {
    let arr = js_sys::Uint8Array::from(bytes);
    let buf = arr.buffer();
    post(&buf, &js_sys::Array::of1(&buf))
}

impl crate::engine::remote::Link for WebLink {
    fn send(&mut self, msg: Vec<u8>) {
        if let Err(e) = post_bytes(&msg, |m, t| self.worker.post_message_with_transfer(m, t)) {
            self.failure
                .borrow_mut()
                .get_or_insert(format!("cannot post to the worker: {}", js_text(&e)));
        }
    }

    fn receive(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.inbox.borrow_mut())
    }

    fn failed(&mut self) -> Option<String> {
        self.failure.borrow().clone()
    }

    fn connect(
        &mut self,
        me: usize,
        other: &mut dyn crate::engine::remote::Link,
        them: usize,
    ) -> bool {
        let Some(o) = other.as_any().and_then(|a| a.downcast_mut::<WebLink>()) else {
            return false;
        };
        let Ok(ch) = web_sys::MessageChannel::new() else {
            return false;
        };
        // Each worker gets one end, with the name it knows the other by (`web/worker.js`).
        let give = |worker: &web_sys::Worker, id: usize, port: web_sys::MessagePort| {
            let msg = js_sys::Object::new();
            let set = js_sys::Reflect::set(&msg, &"peer".into(), &JsValue::from(id as u32))
                .and_then(|_| js_sys::Reflect::set(&msg, &"port".into(), &port));
            set.and_then(|_| worker.post_message_with_transfer(&msg, &js_sys::Array::of1(&port)))
                .is_ok()
        };
        give(&self.worker, them, ch.port1()) && give(&o.worker, me, ch.port2())
    }

    fn as_any(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

impl Drop for WebLink {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

thread_local! {
    static CORE: RefCell<crate::engine::remote::WorkerCore> =
        RefCell::new(crate::engine::remote::WorkerCore::new());
}

/// In the worker: one message from the page (its `ArrayBuffer`).
#[wasm_bindgen]
pub fn worker_message(data: js_sys::ArrayBuffer) {
    let bytes = js_sys::Uint8Array::new(&data).to_vec();
    CORE.with(|c| c.borrow_mut().handle(&bytes));
}

/// In the worker: a direct link to another worker of the pool, which this one knows as `id`
/// (`engine::shards`; `web/worker.js` passes the port's messages to [`worker_peer_message`]).
#[wasm_bindgen]
pub fn worker_peer(id: u32, port: web_sys::MessagePort) {
    let send = move |bytes: Vec<u8>| {
        if let Err(e) = post_bytes(&bytes, |m, t| port.post_message_with_transferable(m, t)) {
            log::warn!("worker: cannot post to a peer: {}", js_text(&e));
        }
    };
    CORE.with(|c| c.borrow_mut().connect(id as usize, Box::new(send)));
}

/// In the worker: a message from the peer it knows as `id`.
#[wasm_bindgen]
pub fn worker_peer_message(id: u32, data: js_sys::ArrayBuffer) {
    let bytes = js_sys::Uint8Array::new(&data).to_vec();
    CORE.with(|c| c.borrow_mut().peer_message(id as usize, &bytes));
}

/// In the worker: one chunk of work (training, or a tick's samplers and report); returns
/// whether there is more to do without a new message (`web/worker.js` schedules the next).
#[wasm_bindgen]
pub fn worker_pump() -> Result<bool, JsValue> {
    let (report, busy) = CORE.with(|c| {
        let mut c = c.borrow_mut();
        let r = c.pump();
        (r, c.busy())
    });
    if let Some(bytes) = report {
        let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        post_bytes(&bytes, |m, t| scope.post_message_with_transfer(m, t))?;
    }
    Ok(busy)
}

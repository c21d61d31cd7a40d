//! Saving exports and picking files to import: a browser download / file picker on the web,
//! the working directory / dropped files natively. Returns messages for the panel.

/// Save `bytes` as `name`: a download in the browser, a file in the working directory natively.
/// Returns what happened, for the panel.
pub fn save(name: &str, mime: &str, bytes: &[u8]) -> String {
    match save_impl(name, mime, bytes) {
        Ok(m) => m,
        Err(e) => format!("Could not save {name}: {e}"),
    }
}

#[cfg(target_arch = "wasm32")]
fn save_impl(name: &str, mime: &str, bytes: &[u8]) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    let err = |e: wasm_bindgen::JsValue| format!("{e:?}");
    let array = js_sys::Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts).map_err(err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(err)?;
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a = doc
        .create_element("a")
        .map_err(err)?
        .dyn_into::<web_sys::HtmlAnchorElement>()
        .map_err(|_| "no anchor element".to_string())?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(format!("Downloaded {name}."))
}

#[cfg(not(target_arch = "wasm32"))]
fn save_impl(name: &str, _mime: &str, bytes: &[u8]) -> Result<String, String> {
    let path = std::env::current_dir()
        .map_err(|e| e.to_string())?
        .join(name);
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    Ok(format!("Saved {}.", path.display()))
}

/// Toggle fullscreen: the page through the browser's Fullscreen API (the canvas fills it), the
/// window natively. Returns a message when the browser refuses.
pub fn toggle_fullscreen(ctx: &eframe::egui::Context) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = ctx;
        let doc = web_sys::window()?.document()?;
        if doc.fullscreen_element().is_some() {
            doc.exit_fullscreen();
            return None;
        }
        let el = doc.document_element()?;
        el.request_fullscreen()
            .err()
            .map(|e| format!("The browser refused fullscreen: {e:?}"))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let on = ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
        ctx.send_viewport_cmd(eframe::egui::ViewportCommand::Fullscreen(!on));
        None
    }
}

/// Open the browser's file picker (the page's `scorelabPickFile`, defined in `index.html`,
/// hands the chosen file to `importFile`). Natively: drop a file onto the window.
pub fn pick_file() -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        let f = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w, &"scorelabPickFile".into()).ok())
            .and_then(|f| wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(f).ok());
        match f {
            Some(f) => f
                .call0(&wasm_bindgen::JsValue::NULL)
                .err()
                .map(|e| format!("Could not open the file picker: {e:?}")),
            None => Some("This page has no file picker; drop the file onto the canvas.".into()),
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Some("Drop a model or scene JSON file onto the window to import it.".into())
    }
}

/// Start recording the canvas as a video (the page's `scorelabRecord.start`, defined in
/// `index.html`: the canvas's stream into a `MediaRecorder`). Returns why there is no video
/// (None: it records).
pub fn record_start(fps: f64) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        let call = || -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
            let w = web_sys::window().ok_or("no window")?;
            let rec = js_sys::Reflect::get(&w, &"scorelabRecord".into())?;
            let start: js_sys::Function =
                wasm_bindgen::JsCast::dyn_into(js_sys::Reflect::get(&rec, &"start".into())?)?;
            start.call1(&rec, &fps.into())
        };
        match call() {
            Ok(v) => v.as_string().filter(|s| !s.is_empty()),
            Err(e) => Some(format!(
                "No video: this page cannot record the canvas ({e:?})."
            )),
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = fps;
        Some("Natively the clip is a GIF (the video needs the browser).".into())
    }
}

/// Stop the video and save it as `name`.webm (or .mp4) (the page's `scorelabRecord.stop`).
pub fn record_stop(name: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (|| -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
            let w = web_sys::window().ok_or("no window")?;
            let rec = js_sys::Reflect::get(&w, &"scorelabRecord".into())?;
            let stop: js_sys::Function =
                wasm_bindgen::JsCast::dyn_into(js_sys::Reflect::get(&rec, &"stop".into())?)?;
            stop.call1(&rec, &name.into())
        })();
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = name;
}

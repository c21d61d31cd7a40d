//! Record a clip for the slides (issue 33): "Record clip" (or `scorelab.record(seconds)`)
//! captures what the user does until Stop or the time limit.
//!
//! - **GIF, both targets:** the plot (as the PNG export cuts it), ten times a second through
//!   egui's screenshots, scaled to at most [`GIF_MAX_SIDE`] pixels and encoded here
//!   ([`gif`]), capped at [`GIF_MAX_BYTES`].
//! - **WebM, in the browser:** the whole canvas's stream through `MediaRecorder` (MP4 where
//!   the browser only records that), started and saved by the page's `scorelabRecord`
//!   (`index.html`).
//!
//! Recording changes nothing of the scene: it reads frames, the indicator sits in the status
//! line (outside the plot and the GIF), and the files are named after the scene.

use std::sync::Arc;

use eframe::egui;
use web_time::Instant;

pub mod gif;

/// The longest clip, seconds.
pub const MAX_SECONDS: f64 = 10.0;
/// GIF frames per second.
const GIF_FPS: f64 = 10.0;
/// The video stream's frame-rate cap (the page's own frames, at most this many a second).
const VIDEO_FPS: f64 = 30.0;
/// The GIF's longest side, pixels.
pub const GIF_MAX_SIDE: usize = 480;
/// The GIF stops growing past this (the clip goes on in the WebM).
pub const GIF_MAX_BYTES: usize = 12 << 20;

/// A screenshot for the recording: (seconds since the start, image).
type Shot = (f64, Arc<egui::ColorImage>);
static SHOTS: std::sync::Mutex<Vec<Shot>> = std::sync::Mutex::new(Vec::new());
/// Screenshots asked for and not yet arrived, at most: on a slow page (a software GPU) a
/// screenshot arrives frames later, and waiting for each would leave a frame a second.
const IN_FLIGHT: usize = 4;

/// A recording in progress.
pub struct Recording {
    /// The files' name (without extension).
    pub name: String,
    /// The time limit, seconds.
    pub max_s: f64,
    started: Instant,
    gif: Option<gif::GifWriter>,
    /// The GIF's size, fixed by its first frame.
    size: (usize, usize),
    /// The last frame, written once the next one's time gives its delay.
    held: Option<(f64, Vec<[u8; 3]>)>,
    in_flight: usize,
    last_capture: Option<f64>,
    /// Why there is no WebM (None: it records).
    pub webm_note: Option<String>,
    gif_note: Option<String>,
}

/// A finished clip (`state().recording.last`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Clip {
    pub name: String,
    pub seconds: f64,
    pub gif_frames: usize,
    pub gif_width: usize,
    pub gif_height: usize,
    pub gif_bytes: usize,
    pub webm: bool,
    pub message: String,
}

/// The last finished GIF's bytes (for the page's `lastGif()`).
pub static LAST_GIF: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

impl Recording {
    /// Start: the WebM in the browser (if it can), the GIF from the next frame.
    pub fn start(name: String, max_s: f64) -> Self {
        let webm_note = crate::app::files::record_start(VIDEO_FPS);
        if let Ok(mut s) = SHOTS.lock() {
            s.clear();
        }
        Self {
            name,
            max_s: max_s.clamp(0.5, MAX_SECONDS),
            started: Instant::now(),
            gif: None,
            size: (0, 0),
            held: None,
            in_flight: 0,
            last_capture: None,
            webm_note,
            gif_note: None,
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// GIF frames so far.
    pub fn frames(&self) -> usize {
        self.gif.as_ref().map_or(0, gif::GifWriter::frames) + usize::from(self.held.is_some())
    }

    /// One frame: take a finished screenshot into the GIF, ask for the next one when due.
    /// Returns whether the time limit is reached.
    pub fn tick(&mut self, ctx: &egui::Context, plot: egui::Rect) -> bool {
        let now = self.elapsed();
        let mut shots = SHOTS
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        shots.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (at, img) in shots {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.add(at, &img, plot, ctx.pixels_per_point());
        }
        if now >= self.max_s {
            return true;
        }
        let due = self
            .last_capture
            .is_none_or(|t| now - t >= 1.0 / GIF_FPS - 1e-3);
        if due && self.in_flight < IN_FLIGHT && self.gif_note.is_none() {
            self.in_flight += 1;
            self.last_capture = Some(now);
            // The frame is the one drawn now: it is timed when asked for.
            ctx.request_screenshot(move |img| {
                if let Ok(mut s) = SHOTS.lock() {
                    s.push((now, img));
                }
            });
        }
        false
    }

    fn add(&mut self, at: f64, img: &egui::ColorImage, plot: egui::Rect, ppp: f32) {
        let Some(rgb) = self.cut(img, plot, ppp) else {
            return;
        };
        if let Some((t, prev)) = self.held.take() {
            let delay = ((at - t) * 100.0).round().clamp(2.0, 6000.0) as u16;
            let g = self
                .gif
                .get_or_insert_with(|| gif::GifWriter::new(self.size.0 as u16, self.size.1 as u16));
            g.frame(&prev, delay);
            if g.len() > GIF_MAX_BYTES {
                self.gif_note = Some(format!(
                    "the GIF stopped at {:.0} MB ({:.1} s)",
                    g.len() as f64 / 1e6,
                    at
                ));
                return;
            }
        }
        self.held = Some((at, rgb));
    }

    /// The plot's pixels, box-averaged down to the GIF's size (set by the first frame).
    fn cut(&mut self, img: &egui::ColorImage, plot: egui::Rect, ppp: f32) -> Option<Vec<[u8; 3]>> {
        let [w, h] = img.size;
        let [x0, y0, x1, y1] = plot_pixels(plot, ppp, img.size)?;
        let (sw, sh) = (x1 - x0, y1 - y0);
        if self.size == (0, 0) {
            let f = sw.max(sh).div_ceil(GIF_MAX_SIDE).max(1);
            self.size = ((sw / f).max(1), (sh / f).max(1));
        }
        let (gw, gh) = self.size;
        let mut out = Vec::with_capacity(gw * gh);
        for gy in 0..gh {
            let (ya, yb) = (
                y0 + gy * sh / gh,
                y0 + ((gy + 1) * sh / gh).max(gy * sh / gh + 1),
            );
            for gx in 0..gw {
                let (xa, xb) = (
                    x0 + gx * sw / gw,
                    x0 + ((gx + 1) * sw / gw).max(gx * sw / gw + 1),
                );
                let mut sum = [0u32; 3];
                for y in ya..yb.min(h) {
                    for p in &img.pixels[y * w + xa..y * w + xb.min(w)] {
                        for (s, c) in sum.iter_mut().zip(p.to_array()) {
                            *s += u32::from(c);
                        }
                    }
                }
                let n = ((yb.min(h) - ya) * (xb.min(w) - xa)).max(1) as u32;
                out.push(sum.map(|s| ((s + n / 2) / n) as u8));
            }
        }
        Some(out)
    }

    /// Stop: save the GIF (and the WebM in the browser); what the page says about it.
    pub fn finish(mut self) -> Clip {
        let end = self.elapsed().min(self.max_s);
        let webm = self.webm_note.is_none();
        if webm {
            crate::app::files::record_stop(&self.name);
        }
        if let Some((t, prev)) = self.held.take() {
            let delay = ((end - t) * 100.0).round().clamp(2.0, 6000.0) as u16;
            let (w, h) = self.size;
            self.gif
                .get_or_insert_with(|| gif::GifWriter::new(w as u16, h as u16))
                .frame(&prev, delay);
        }
        let (frames, bytes) = match self.gif.take() {
            Some(g) => (g.frames(), g.finish()),
            None => (0, Vec::new()),
        };
        let mut said = Vec::new();
        if frames > 0 {
            said.push(crate::app::files::save(
                &format!("{}.gif", self.name),
                "image/gif",
                &bytes,
            ));
        } else {
            said.push("No GIF frame was captured.".to_string());
        }
        if webm {
            said.push(format!("The video is {}.webm (or .mp4).", self.name));
        }
        said.extend(self.webm_note.clone());
        said.extend(self.gif_note.clone().map(|n| format!("Note: {n}.")));
        let clip = Clip {
            name: self.name.clone(),
            seconds: end,
            gif_frames: frames,
            gif_width: self.size.0,
            gif_height: self.size.1,
            gif_bytes: bytes.len(),
            webm,
            message: said.join(" "),
        };
        if let Ok(mut g) = LAST_GIF.lock() {
            *g = bytes;
        }
        clip
    }
}

/// The plot's pixel box [x0, y0, x1, y1] in a screenshot of `size` (None when empty).
pub fn plot_pixels(plot: egui::Rect, ppp: f32, size: [usize; 2]) -> Option<[usize; 4]> {
    let px = |v: f32, max: usize| ((v * ppp).round().max(0.0) as usize).min(max);
    let b = [
        px(plot.min.x, size[0]),
        px(plot.min.y, size[1]),
        px(plot.max.x, size[0]),
        px(plot.max.y, size[1]),
    ];
    (b[2] > b[0] && b[3] > b[1]).then_some(b)
}

/// The files' name: the open lesson's title, else the scene's size, as a slug.
pub fn clip_name(lesson: Option<&str>, components: usize, step: u64) -> String {
    let base = match lesson {
        Some(t) => t.to_string(),
        None => format!("{components} components step {step}"),
    };
    let mut slug = String::from("scorelab-");
    for c in base.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_names_are_slugs_of_the_scene() {
        assert_eq!(
            clip_name(Some("Annealed Langevin: why σ levels?"), 2, 0),
            "scorelab-annealed-langevin-why-levels"
        );
        assert_eq!(clip_name(None, 3, 1200), "scorelab-3-components-step-1200");
    }
}

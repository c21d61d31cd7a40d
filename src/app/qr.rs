//! The scene's share link as a QR code over the canvas ("Show QR", `#qr`): a room's students
//! scan it from the projector and open the same scene. The link is the short form
//! ([`crate::state::link::to_short_hash`]: only what differs from the defaults), encoded at
//! error-correction level M where it fits (L otherwise); a link longer than a QR code holds
//! gets a message instead.

use eframe::egui::{self, Color32};

/// An encoded link.
#[derive(Clone, Debug, PartialEq)]
pub struct Qr {
    /// The text the code holds.
    pub link: String,
    /// Modules per side.
    pub width: usize,
    /// The QR version (1..=40).
    pub version: i16,
    /// Dark modules, row-major.
    dark: Vec<bool>,
}

/// Most bytes a QR code holds (version 40, level L).
pub const MAX_BYTES: usize = 2953;

mod encode;

/// Encode `link`; an over-long one gives the message the overlay shows.
pub fn encode(link: &str) -> Result<Qr, String> {
    let code = encode::encode(link.as_bytes()).ok_or_else(|| {
        format!(
            "This scene's link is {} characters, more than a QR code holds ({MAX_BYTES}). \
             Share the link itself, or make the scene smaller (fewer or rounder components).",
            link.len()
        )
    })?;
    Ok(Qr {
        link: link.to_string(),
        width: code.width,
        version: code.version as i16,
        dark: code.dark,
    })
}

impl Qr {
    /// Whether module (x, y) is dark.
    pub fn dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }

    /// Paint the code into `rect` (a square), black on white with a 4-module quiet zone.
    pub fn paint(&self, painter: &egui::Painter, rect: egui::Rect) {
        painter.rect_filled(rect, 0.0, Color32::WHITE);
        let n = self.width + 8;
        let m = (rect.width().min(rect.height()) / n as f32)
            .floor()
            .max(1.0);
        let side = m * n as f32;
        let origin = rect.center() - egui::vec2(side, side) / 2.0 + egui::vec2(4.0 * m, 4.0 * m);
        for y in 0..self.width {
            for x in 0..self.width {
                if self.dark(x, y) {
                    let min = origin + egui::vec2(x as f32 * m, y as f32 * m);
                    painter.rect_filled(
                        egui::Rect::from_min_size(min, egui::vec2(m, m)),
                        0.0,
                        Color32::BLACK,
                    );
                }
            }
        }
    }
}

/// The overlay over `canvas`: the code as large as fits, the link under it, and Close (Esc
/// also closes). Returns whether it stays open.
pub fn overlay(ctx: &egui::Context, canvas: egui::Rect, qr: &Result<Qr, String>) -> bool {
    let mut open = !ctx.input(|i| i.key_pressed(egui::Key::Escape));
    let side = (canvas.width().min(canvas.height()) - 90.0).max(120.0);
    egui::Area::new(egui::Id::unique("qr_overlay"))
        .order(egui::Order::Foreground)
        .fixed_pos(canvas.center() - egui::vec2(side / 2.0 + 12.0, side / 2.0 + 40.0))
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                ui.set_width(side);
                ui.horizontal(|ui| {
                    ui.strong(match qr {
                        Ok(q) => format!("Scan to open this scene (QR version {})", q.version),
                        Err(_) => "No QR code for this scene".to_string(),
                    });
                    if ui.button("Close QR").on_hover_text("Esc").clicked() {
                        open = false;
                    }
                });
                match qr {
                    Ok(q) => {
                        let (rect, _) =
                            ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
                        q.paint(ui.painter(), rect);
                        ui.small(&q.link);
                    }
                    Err(e) => {
                        ui.label(e.as_str());
                    }
                }
            });
        });
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_encodes_and_an_over_long_one_gives_the_message() {
        let q = encode("http://127.0.0.1:8080/#s=e30").expect("a short link encodes");
        assert_eq!(q.width, 17 + 4 * q.version as usize);
        assert!((0..q.width).any(|x| q.dark(x, 0)));
        assert_eq!(encode::capacity(40, encode::Ecc::L), MAX_BYTES);
        assert!(encode(&"x".repeat(MAX_BYTES)).is_ok());
        let long = "x".repeat(MAX_BYTES + 1);
        let e = encode(&long).expect_err("too long");
        assert!(e.contains(&format!("{} characters", MAX_BYTES + 1)), "{e}");
    }
}

//! Every glyph renders everywhere (issue 33): each non-ASCII character in the app's source
//! outside comments (labels, tooltips, lessons, messages, legends, the settings table) is in
//! the fonts the running app has loaded, for the proportional and the monospace family, so no
//! label shows a box natively or in the browser (both builds load the same fonts).

use super::*;
use eframe::egui::{FontFamily, FontId};
use std::collections::BTreeMap;

/// Non-ASCII characters of every non-comment line of the crate's sources, with a place each.
fn used_chars() -> BTreeMap<char, String> {
    let mut out = BTreeMap::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                // A trailing comment is not shown either (strings here hold no "//" but URLs).
                let code = match code.find(" // ") {
                    Some(at) => &code[..at],
                    None => code,
                };
                for c in code.chars().filter(|c| !c.is_ascii()) {
                    out.entry(c)
                        .or_insert_with(|| format!("{}:{}", p.display(), i + 1));
                }
            }
        }
    }
    out
}

#[test]
fn every_character_of_the_app_strings_is_in_the_loaded_fonts() {
    let mut h = app();
    frames(&mut h, 2);
    let chars = used_chars();
    assert!(chars.contains_key(&'σ'), "the scan found the app's strings");
    let mut missing = Vec::new();
    for (c, place) in &chars {
        for family in [FontFamily::Proportional, FontFamily::Monospace] {
            let id = FontId::new(14.0, family.clone());
            if !h.ctx.fonts_mut(|f| f.has_glyph(&id, *c)) {
                missing.push(format!(
                    "{c:?} (U+{:04X}, {family:?}) at {place}",
                    *c as u32
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "glyphs the fonts lack:\n{}",
        missing.join("\n")
    );
}

//! A QR code of the scene (issue 33): the code drawn over the canvas, rendered by wgpu on
//! lavapipe, decodes (rqrr) back to exactly the link the app says it shows, and that link opens
//! the same state — for the default scene and for every lesson's and failure scene's; the
//! "Show QR" button opens it; an over-long link gives the message instead of a code.

use super::*;
use scorelab::sim::mixture::{ComponentSpec, MixtureSpec};
use scorelab::state::link::parse_hash;

/// The app opened with `hash`, rendered with wgpu.
fn rendered(hash: &str) -> App {
    let options = AppOptions {
        engine: Some(EngineChoice::Cpu),
        hash: Some(hash.to_string()),
        page_url: "http://127.0.0.1:8080/".into(),
        ..Default::default()
    };
    let mut h = Harness::builder()
        .with_size([1100.0, 900.0])
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| ScoreLabApp::new(cc, None, options));
    h.run_steps(4);
    h
}

/// The text of the QR code in the rendered frame.
fn decode(h: &mut App) -> String {
    let img = h.render().expect("the frame renders");
    let (w, hgt) = (img.width() as usize, img.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, hgt, |x, y| {
        let p = img.get_pixel(x as u32, y as u32).0;
        ((u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3) as u8
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on screen");
    grids[0].decode().expect("the code decodes").1
}

#[test]
fn the_qr_code_decodes_to_the_link_for_every_lesson_scene() {
    let mut hashes = vec![("default".to_string(), "#qr".to_string())];
    for n in 1..=scorelab::state::lessons::count() {
        hashes.push((format!("lesson {n}"), format!("#lesson={n}&qr")));
    }
    for (name, hash) in hashes {
        let mut h = rendered(&hash);
        let s = snap(&h);
        let link = s["qr"]["link"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {}", s["qr"]))
            .to_string();
        let text = decode(&mut h);
        eprintln!(
            "{name}: QR version {}, {} bytes",
            s["qr"]["version"],
            link.len()
        );
        assert_eq!(text, link, "{name}: the code holds the link");
        let opened = parse_hash(&text[text.find('#').unwrap_or(0)..]).expect("the link parses");
        assert_eq!(
            opened.shared.as_ref(),
            Some(h.state().state()),
            "{name}: the link opens this state"
        );
        assert!(
            !opened.flags.qr,
            "{name}: the students' link does not open the QR code"
        );
        assert_eq!(
            opened.flags.lesson.map(|n| n as u64),
            s["lesson"].as_u64(),
            "{name}: the lesson shown"
        );
    }
}

#[test]
fn the_show_qr_button_and_an_over_long_link() {
    let mut h = app();
    h.get_by_label("Show QR").click();
    frames(&mut h, 3);
    let s = snap(&h);
    assert!(
        s["qr"]["link"]
            .as_str()
            .is_some_and(|l| l.starts_with("http://127.0.0.1/#s=")),
        "{}",
        s["qr"]
    );
    h.get_by_label("Close QR").click();
    frames(&mut h, 3);
    assert!(snap(&h)["qr"].is_null(), "Close hides it");
    // 32 components with unround numbers: a link longer than a QR code holds.
    let mut st = scorelab::state::State::default();
    st.scene.mixture = MixtureSpec {
        components: (0..32)
            .map(|k| {
                let a = 0.1 + k as f64 * 0.137_113_9;
                ComponentSpec {
                    weight: 1.0 + a,
                    mean: [a.sin() * 7.123_456_7, a.cos() * 5.987_654_3],
                    cov: [[0.3 + a / 10.0, 0.011_1 * a], [0.011_1 * a, 0.4 + a / 20.0]],
                }
            })
            .collect(),
    };
    let hash = scorelab::state::link::to_hash(&st, &Default::default());
    let mut h = app_with(Some(&format!("{hash}&qr")));
    frames(&mut h, 3);
    let s = snap(&h);
    let msg = s["qr"]["error"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("more than a QR code holds"), "{}", s["qr"]);
    assert!(shows(&h, &msg), "the message is on screen");
}

//! Record a clip (issue 33) through the real Record button, rendered by wgpu on lavapipe: the
//! status line shows the recording with its time and limit, Stop saves a GIF of the plot named
//! after the scene that decodes (the `gif` crate) to the frames, size and look the app
//! reported, and the scene is the same afterwards.

use super::*;

#[test]
fn the_record_button_saves_a_gif_of_the_plot_and_leaves_the_scene_alone() {
    let options = AppOptions {
        engine: Some(EngineChoice::Cpu),
        page_url: "http://127.0.0.1/".into(),
        ..Default::default()
    };
    let mut h = Harness::builder()
        .with_size(SIZE)
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| ScoreLabApp::new(cc, None, options));
    h.run_steps(10);
    let before = h.state().state().clone();
    // The panel above the button can change height between frames (a run's statistics
    // appear): a click aimed from one frame's layout can miss, so it is retried.
    for _ in 0..3 {
        h.get_by_label("Record clip").click();
        frames(&mut h, 4);
        if snap(&h)["recording"]["active"] == true {
            break;
        }
    }
    let s = snap(&h);
    assert_eq!(s["recording"]["active"], true, "the button starts it");
    assert!(
        s["recording"]["last"].is_null(),
        "one click: {}",
        s["recording"]
    );
    let t0 = Instant::now();
    let s = loop {
        h.step();
        let s = snap(&h);
        if s["recording"]["frames"].as_u64().unwrap_or(0) >= 6 {
            break s;
        }
        assert!(
            t0.elapsed().as_secs() < 60,
            "no six GIF frames after 60 s: {} (frame {})",
            s["recording"],
            s["frame"]
        );
    };
    let name = s["recording"]["name"].as_str().unwrap_or("").to_string();
    assert!(name.starts_with("scorelab-2-components-step-"), "{name}");
    assert_eq!(s["recording"]["max_s"], 10.0);
    assert!(shows(&h, "REC "), "the status line shows the recording");
    assert!(
        s["recording"]["webm_note"]
            .as_str()
            .is_some_and(|n| n.contains("GIF")),
        "natively there is no video, and the note says so: {}",
        s["recording"]
    );
    let path = std::env::current_dir().unwrap().join(format!("{name}.gif"));
    let _ = std::fs::remove_file(&path);
    h.get_by(|n| {
        n.role() == Role::Button && n.label().is_some_and(|l| l.starts_with("Stop recording ("))
    })
    .click();
    let s = wait(&mut h, "the finished clip", 30.0, |s| {
        !s["recording"]["last"].is_null() && s["recording"]["active"] == false
    });
    assert_eq!(s["recording"]["active"], false);
    let last = &s["recording"]["last"];
    let bytes = std::fs::read(&path).expect("the GIF was saved under the scene's name");
    let _ = std::fs::remove_file(&path);
    assert_eq!(last["gif_bytes"].as_u64(), Some(bytes.len() as u64));
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(bytes.as_slice()).expect("a GIF");
    let (w, hgt) = (usize::from(dec.width()), usize::from(dec.height()));
    assert_eq!(
        (Some(w as u64), Some(hgt as u64)),
        (last["gif_width"].as_u64(), last["gif_height"].as_u64())
    );
    assert!(w.max(hgt) <= 480 && w.max(hgt) >= 240, "{w}×{hgt}");
    // The plot's shape (the PNG export's rectangle), scaled.
    let plot = &s["plot_rect"];
    let aspect = plot[2].as_f64().unwrap_or(0.0) / plot[3].as_f64().unwrap_or(1.0);
    assert!(
        ((w as f64 / hgt as f64) / aspect - 1.0).abs() < 0.02,
        "{w}×{hgt} vs the plot {plot}"
    );
    let mut n = 0;
    let mut colours = std::collections::HashSet::new();
    while let Some(f) = dec.read_next_frame().expect("every frame decodes") {
        assert!(f.delay >= 2, "frame {n}: delay {}", f.delay);
        if n == 0 {
            colours.extend(f.buffer.chunks(4).map(|c| [c[0], c[1], c[2]]));
        }
        n += 1;
    }
    assert_eq!(Some(n as u64), last["gif_frames"].as_u64());
    assert!(n >= 6, "{n} frames");
    assert!(
        colours.len() >= 8,
        "the plot, not a blank frame: {} colours",
        colours.len()
    );
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("{name}.gif"))),
        "the page says where the clip went: {}",
        last["message"]
    );
    assert_eq!(
        h.state().state(),
        &before,
        "recording changed nothing of the scene"
    );
}

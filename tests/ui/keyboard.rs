//! The keyboard (moved from tests/browser/lessons.mjs): the number keys pick samplers on ncsn
//! (annealed Langevin and the PF-ODE on VP get the 0.2 / 0.8 weights within 0.03, plain
//! Langevin does not: off by more than 0.1); Tab reaches the controls; f freezes all motion
//! and starts it again; ] selects a component, → and Shift+↑ move it by 0.5 and 2 of its std;
//! two Ctrl+Z undo that.

use super::*;
use egui::{Key, Modifiers};

/// Set up 2000 exact-score particles at speed 20, the loop off and training paused.
pub fn fast_exact_runs(h: &mut App) {
    button(h, "Pause training");
    h.get_by_label("exact score").click();
    frames(h, 2);
    slider(h, "particles", 2000.0);
    slider(h, "speed", 20.0);
    click(h, Role::CheckBox, "loop");
}

/// Press `key` with the pointer over an empty spot of the canvas (keys go to the canvas when
/// no control has the focus).
fn press(h: &mut App, key: Key) {
    h.key_press(key);
    frames(h, 3);
}

#[test]
fn number_keys_pick_samplers_with_the_lessons_weights() {
    let mut h = app();
    fast_exact_runs(&mut h);
    for (key, kind) in [
        (Key::Num2, "annealed-langevin"),
        (Key::Num1, "langevin"),
        (Key::Num8, "ode-rk4"),
    ] {
        if kind == "ode-rk4" {
            h.get_by_label("VP").click();
            frames(&mut h, 2);
            assert_eq!(snap(&h)["scene"]["sde"], "vp");
        }
        press(&mut h, key);
        assert_eq!(snap(&h)["sampling"]["kind"], kind, "{key:?} picks {kind}");
        let run = finished(&mut h, kind, 60.0);
        let err = run["max_weight_error"].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "{kind}: weights {:.3?}, max error {err:.3}",
            floats(&run["weights"])
        );
        assert_eq!(run["n"], 2000);
        if kind == "langevin" {
            assert!(
                err > 0.1,
                "plain Langevin gets the ncsn weights wrong ({err:.3})"
            );
        } else {
            assert!(
                err <= 0.03,
                "{kind} matches the ncsn weights within 0.03 ({err:.3})"
            );
        }
    }
}

#[test]
fn tab_focus_freeze_select_nudge_and_undo() {
    let mut h = app();
    for _ in 0..4 {
        press(&mut h, Key::Tab);
    }
    assert_eq!(snap(&h)["keyboard_focus"], true, "Tab reaches the controls");
    press(&mut h, Key::Escape);
    // Give the keys back to the canvas: a click on an empty spot near its bottom edge.
    let f = floats(&snap(&h)["plot_rect"]);
    let spot = egui::pos2((f[0] + 0.5 * f[2]) as f32, (f[1] + 0.97 * f[3]) as f32);
    h.hover_at(spot);
    frames(&mut h, 1);
    h.event(egui::Event::PointerButton {
        pos: spot,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.event(egui::Event::PointerButton {
        pos: spot,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    frames(&mut h, 3);
    assert_eq!(
        snap(&h)["keyboard_focus"],
        false,
        "a click on the canvas takes the focus"
    );
    press(&mut h, Key::F);
    let frozen = snap(&h);
    press(&mut h, Key::F);
    let thawed = snap(&h);
    assert!(
        frozen["state"]["paused"] == true && frozen["training"] == false,
        "f freezes all motion"
    );
    assert!(
        thawed["state"]["paused"] == false && thawed["training"] == true,
        "f starts it again"
    );
    press(&mut h, Key::CloseBracket);
    let s0 = snap(&h);
    assert_eq!(s0["selected"], 0, "] selects component 1");
    let c0 = &s0["scene"]["mixture"]["components"][0];
    let m0 = floats(&c0["mean"]);
    let cov = &c0["cov"];
    let sd = (0.5 * (cov[0][0].as_f64().unwrap() + cov[1][1].as_f64().unwrap())).sqrt();
    press(&mut h, Key::ArrowRight);
    h.key_press_modifiers(Modifiers::SHIFT, Key::ArrowUp);
    frames(&mut h, 3);
    let s1 = snap(&h);
    let m1 = floats(&s1["scene"]["mixture"]["components"][0]["mean"]);
    assert!(
        (m1[0] - m0[0] - 0.5 * sd).abs() < 1e-9 && (m1[1] - m0[1] - 2.0 * sd).abs() < 1e-9,
        "→ and Shift+↑ move it by 0.5 and 2 of its std ({m0:?} → {m1:?}, std {sd})"
    );
    assert_eq!(s1["can_undo"], true);
    // Each nudge is an undo point: two Ctrl+Z put it back.
    for _ in 0..2 {
        h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
        frames(&mut h, 3);
    }
    let m2 = floats(&snap(&h)["scene"]["mixture"]["components"][0]["mean"]);
    assert!(
        m2.iter().zip(&m0).all(|(a, b)| (a - b).abs() < 1e-9),
        "two Ctrl+Z put it back ({m2:?} vs {m0:?})"
    );
}

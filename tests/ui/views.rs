use super::*;

#[test]
fn no_control_is_cut_off_by_the_panel_edge() {
    let mut h = app();
    let out = panel_widgets_outside(&h);
    assert!(out.is_empty(), "{}", out.join("\n"));
    h.get_by_role_and_label(Role::CheckBox, "loop").click();
    frames(&mut h, 3);
    assert!(
        !h.state().state().samplers[0].repeat,
        "the loop checkbox can be clicked"
    );
}

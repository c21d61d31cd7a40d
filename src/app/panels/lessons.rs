//! Probability-flow paths, the probe and conditional sampling (inpainting).

use eframe::egui;

use super::PanelCtx;
use crate::app::explain;
use crate::app::views::overlays::ClickTool;
use crate::sim::guidance::InpaintMethod;
use crate::state::State;

/// Probability-flow paths and the probe.
pub fn paths_ui(ui: &mut egui::Ui, st: &mut State, cx: &mut PanelCtx) {
    ui.strong("Paths & likelihood");
    ui.checkbox(&mut st.ode_paths, "probability-flow ODE paths")
        .on_hover_text(explain::ODE_PATHS);
    ui.horizontal(|ui| {
        ui.label("click:");
        ui.selectable_value(&mut cx.ui.tool, ClickTool::Select, "select");
        ui.selectable_value(&mut cx.ui.tool, ClickTool::Probe, "probe")
            .on_hover_text(explain::PROBE);
        ui.selectable_value(&mut cx.ui.tool, ClickTool::Inpaint, "x₁ = c")
            .on_hover_text(explain::INPAINT);
    });
    ui.checkbox(
        &mut st.cond_paths,
        "conditional vs marginal path (at the shown t)",
    )
    .on_hover_text(explain::COND_PATHS);
    if st.cond_paths && st.probe.is_none() {
        ui.label("pick a data point: choose 'probe' and click the canvas");
    }
    if let Some(c) = cx.views.overlays.cond_result() {
        ui.colored_label(
            egui::Color32::from_rgb(255, 230, 90),
            format!("conditional path of x₀ = ({:.2}, {:.2})", c.x0[0], c.x0[1]),
        );
        ui.colored_label(
            egui::Color32::from_rgb(235, 110, 255),
            format!(
                "marginal PF-ODE path through x_t (t = {:.2}) starts at ({:.2}, {:.2})",
                c.t, c.marginal_start[0], c.marginal_start[1]
            ),
        );
    }
    if let Some(r) = cx.views.overlays.probe_result() {
        ui.label(format!(
            "probe ({:.2}, {:.2}): log p_θ = {} · true {:.2} · round trip back to ({:.2}, {:.2})",
            r.x[0],
            r.x[1],
            r.log_p_model.map_or("failed".into(), |v| format!("{v:.2}")),
            r.log_p_true,
            r.back_to[0],
            r.back_to[1]
        ));
        if ui.small_button("remove probe").clicked() {
            st.probe = None;
        }
    } else if st.probe.is_some() && !st.samplers[0].exact {
        ui.label("probe: waiting for the model snapshot…");
    }
}

/// Inpainting.
pub fn conditional_ui(ui: &mut egui::Ui, st: &mut State, cx: &PanelCtx) {
    ui.strong("Conditional: inpainting x₂ | x₁ = c")
        .on_hover_text(explain::INPAINT);
    let mut on = st.inpaint.is_some();
    let mut spec = st.inpaint.unwrap_or_default();
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut on, "on");
        ui.add_enabled(
            on,
            egui::DragValue::new(&mut spec.c).speed(0.05).prefix("c = "),
        );
        ui.selectable_value(&mut spec.method, InpaintMethod::ExactConditional, "exact");
        ui.selectable_value(&mut spec.method, InpaintMethod::Replacement, "replacement");
        ui.selectable_value(&mut spec.method, InpaintMethod::Dps, "DPS")
            .on_hover_text(explain::DPS);
    });
    if spec.method == InpaintMethod::Dps {
        ui.add(
            egui::Slider::new(&mut spec.zeta, 0.0..=1.0)
                .logarithmic(true)
                .smallest_positive(1e-3)
                .text("DPS step ζ"),
        )
        .on_hover_text(explain::DPS);
    }
    if spec.method != InpaintMethod::ExactConditional {
        ui.horizontal(|ui| {
            ui.selectable_value(&mut spec.exact, false, "learned joint score");
            ui.selectable_value(&mut spec.exact, true, "exact joint score");
        });
    }
    let new = on.then_some(spec);
    if new != st.inpaint && new.is_none_or(|s| s.validate().is_ok()) {
        st.inpaint = new;
    }
    if on {
        cx.views.overlays.inpaint_plot_ui(ui);
    }
}

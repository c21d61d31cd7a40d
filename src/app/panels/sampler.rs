//! The sampler panel: any sampler, Play / Pause / Step / Slow motion / Restart, progress,
//! mode-weight bars, the split view and guidance.

use eframe::egui::{self, Color32};

use super::PanelCtx;
use crate::app::explain;
use crate::engine::settings::table;
use crate::engine::{EngineChoice, LiveSampling, SLOTS};
use crate::sim::metrics::RunStats;
use crate::sim::mixture::GaussianMixture;
use crate::sim::samplers::SamplerKind;
use crate::state::command::Command;
use crate::state::{SplitMode, State};

/// Title drawn on a canvas of the split view.
pub fn side_title(st: &State, side: usize) -> Option<String> {
    match st.split {
        SplitMode::Off => None,
        SplitMode::Samplers => {
            let live = &st.samplers[side.min(SLOTS - 1)];
            Some(format!(
                "{} {}{}",
                ["A", "B"][side.min(1)],
                live.kind.name(),
                if live.is_mala() {
                    " + Metropolis (MALA)"
                } else {
                    ""
                }
            ))
        }
        SplitMode::Density => Some(
            if side == 0 {
                "true log p_t"
            } else {
                "learned log p_t (PF-ODE)"
            }
            .into(),
        ),
    }
}

/// The sampler panel.
pub fn sampler_ui(ui: &mut egui::Ui, st: &mut State, cx: &mut PanelCtx, cmds: &mut Vec<Command>) {
    let slot = split_ui(ui, st, cx);
    let live = &mut st.samplers[slot];
    let mut picked = None;
    egui::ComboBox::from_id_salt(("sampler_kind", slot))
        .selected_text(live.kind.name())
        .width(170.0)
        // Every sampler in view without scrolling (egui's default shows about 8 rows).
        .height(f32::INFINITY)
        .show_ui(ui, |ui| {
            for (i, k) in SamplerKind::ALL.into_iter().enumerate() {
                if ui
                    .selectable_label(live.kind == k, format!("{} {}", i + 1, k.name()))
                    .on_hover_text(explain::sampler(k))
                    .clicked()
                {
                    picked = Some(k);
                }
            }
        })
        .response
        .accessible_name("Sampler")
        .on_hover_text(explain::sampler(live.kind));
    if let Some(k) = picked {
        *live = live.with_kind(k, &cx.data.mixture);
        live.enabled = true;
    }
    schedule_ui(ui, live, &cx.data.mixture);
    particles_ui(ui, live, cx);
    play_ui(ui, st.paused, st.training, live, cmds);
    status_ui(ui, st, cx);
}

/// The split view's choice and, split, which sampler the panel edits; returns that slot.
fn split_ui(ui: &mut egui::Ui, st: &mut State, cx: &mut PanelCtx) -> usize {
    ui.horizontal(|ui| {
        ui.strong("Sampler");
        let split = &mut st.split;
        ui.label("split:");
        ui.selectable_value(split, SplitMode::Off, "off");
        ui.selectable_value(split, SplitMode::Samplers, "A | B")
            .on_hover_text(explain::SPLIT);
        ui.selectable_value(split, SplitMode::Density, "true | learned")
            .on_hover_text(explain::SPLIT);
    });
    if st.split == SplitMode::Samplers {
        ui.horizontal(|ui| {
            ui.label("edit");
            ui.selectable_value(&mut cx.ui.edit_slot, 0, "A");
            ui.selectable_value(&mut cx.ui.edit_slot, 1, "B");
        });
        cx.ui.edit_slot.min(SLOTS - 1)
    } else {
        0
    }
}

/// The schedule of the sampler's kind: levels, steps, step size, snr, start time, prior.
fn schedule_ui(ui: &mut egui::Ui, live: &mut LiveSampling, mixture: &GaussianMixture) {
    match live.kind {
        SamplerKind::AnnealedLangevin => {
            super::setting(ui, &mut live.levels, &table::LEVELS, None);
            labelled(
                ui,
                &mut live.steps,
                &table::STEPS,
                (1.0, 1000.0),
                "steps per level T",
            );
            labelled(
                ui,
                &mut live.step,
                &table::STEP,
                (0.01, 3.0),
                "step r = α_i/σ_i²",
            )
            .on_hover_text(
                "The step at every noise level relative to that level's noise variance: \
                 α_i = r σ_i² (NCSN's ε/σ_L²; its ε = 2e-5 at σ_L = 0.01 is r = 0.2). Relative, \
                 so it stays right when you drag the mixture; stable below r = 4. Larger r \
                 relaxes faster (closer widths with few steps), smaller r is closer to the \
                 exact Langevin diffusion.",
            );
            absolute_step_ui(ui, live, mixture, "ε = α_L");
            ui.checkbox(&mut live.mala, "Metropolis (MALA, exact p_t)")
                .on_hover_text(explain::MALA);
        }
        SamplerKind::Langevin => {
            super::setting(ui, &mut live.steps, &table::STEPS, None);
            labelled(
                ui,
                &mut live.step,
                &table::STEP,
                (1e-3, 20.0),
                "step α / λ_min",
            )
            .on_hover_text(
                "The step α in units of the narrowest component's variance λ_min, so it stays \
                 right when you drag the mixture. The chain's spread is v/(1 − α/4v): +1.3% at \
                 0.05; it diverges above ≈ 4.",
            );
            absolute_step_ui(ui, live, mixture, "α");
            ui.checkbox(&mut live.mala, "Metropolis (MALA, exact p_t)")
                .on_hover_text(explain::MALA);
        }
        SamplerKind::OdeRk45 => {
            ui.label("adaptive steps (rtol = atol = 1e-5)");
        }
        k => {
            labelled(
                ui,
                &mut live.steps,
                &table::STEPS,
                (2.0, 5000.0),
                "time steps N",
            );
            if k == SamplerKind::Pc {
                super::setting(ui, &mut live.snr, &table::SNR, None);
            }
            if k == SamplerKind::Ddim {
                super::setting(ui, &mut live.eta, &table::ETA, None);
            }
            if k == SamplerKind::EdmHeun {
                super::setting(ui, &mut live.churn, &table::CHURN, None);
            }
        }
    }
    if live.kind != SamplerKind::Langevin {
        super::setting(ui, &mut live.t_start, &table::T_START, None).on_hover_text(
            "Where the run starts: t = 1 is the SDE's prior. A smaller t makes this run's largest noise level s(t) smaller (the 'σ_max too small' failure scene).",
        );
    }
    if !matches!(
        live.kind,
        SamplerKind::Langevin | SamplerKind::AnnealedLangevin
    ) {
        super::setting(ui, &mut live.prior_scale, &table::PRIOR_SCALE, None).on_hover_text(
            "The start distribution's std relative to the right prior's: 1 is right (the 'wrong prior' failure scene).",
        );
    }
}

/// Which score the particles follow, how many, and guidance toward a component.
fn particles_ui(ui: &mut egui::Ui, live: &mut LiveSampling, cx: &PanelCtx) {
    let max_n = if cx.host.choice == EngineChoice::Gpu && cx.platform.gpu.is_some() {
        crate::engine::MAX_PARTICLES
    } else {
        20_000
    };
    ui.horizontal(|ui| {
        ui.selectable_value(&mut live.exact, false, "learned score");
        ui.selectable_value(&mut live.exact, true, "exact score");
    });
    super::setting(
        ui,
        &mut live.n,
        &table::PARTICLES,
        Some((100.0, max_n as f64)),
    );
    // Guidance (conditional generation) on this sampler.
    ui.horizontal(|ui| {
        let mut on = live.guide.is_some();
        ui.checkbox(&mut on, "guide to #")
            .on_hover_text(explain::GUIDE);
        let n = cx.data.mixture.len();
        let mut g = live.guide.unwrap_or(crate::engine::Guide {
            component: 0,
            gamma: 1.0,
        });
        let mut k = g.component + 1;
        ui.add_enabled(on, egui::DragValue::new(&mut k).range(1..=n.max(1)));
        ui.add_enabled_ui(on, |ui| {
            super::setting(ui, &mut g.gamma, &table::GAMMA, None)
        });
        g.component = k.saturating_sub(1).min(n.saturating_sub(1));
        live.guide = on.then_some(g);
    });
}

/// Play, freeze, step, slow motion, restart, loop and the animation speed.
fn play_ui(
    ui: &mut egui::Ui,
    paused: bool,
    training: bool,
    live: &mut LiveSampling,
    cmds: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        let play = if paused { "Play" } else { "Pause" };
        if ui
            .add(super::toggle_button(ui, play, ["Play", "Pause"]))
            .accessible_name(format!("{play} particles"))
            .on_hover_text("space")
            .clicked()
        {
            cmds.push(Command::TogglePlay);
        }
        let frozen = paused && !training;
        if ui
            .add(super::toggle_button(
                ui,
                if frozen { "Unfreeze" } else { "Freeze all" },
                ["Unfreeze", "Freeze all"],
            ))
            .on_hover_text("f: stop all motion, particles and training (or start both again)")
            .clicked()
        {
            cmds.push(Command::FreezeAll);
        }
        if ui
            .button("Step")
            .accessible_name("One sampler step")
            .on_hover_text("s: one step (pauses)")
            .clicked()
        {
            cmds.push(Command::StepSampler);
        }
        let mut slow = live.speed < 0.5;
        if ui
            .toggle_value(&mut slow, "Slow")
            .on_hover_text("slow motion")
            .changed()
        {
            live.speed = if slow { 0.05 } else { 1.0 };
        }
        if ui
            .button("Restart")
            .on_hover_text("r: fresh noise from the prior")
            .clicked()
        {
            cmds.push(Command::RestartSampling);
        }
        ui.checkbox(&mut live.repeat, "loop");
    });
    super::setting(ui, &mut live.speed, &table::SPEED, Some((0.01, 100.0))).on_hover_text("Animation speed: 1 = a run in about 150 frames, 10 = in 15; below 1 slow motion. The samples are the same at any speed.");
}

/// Each live sampler's progress, Metropolis acceptance and last run's weights and spreads.
/// Every row is there from the first frame, with "—" until the engine's numbers come, and
/// each holds one line whatever its numbers: a row that appeared (or wrapped) when a report
/// arrived moved every control below it under the pointer.
fn status_ui(ui: &mut egui::Ui, st: &State, cx: &PanelCtx) {
    for s in 0..SLOTS {
        if s == 1 && st.split != SplitMode::Samplers {
            break;
        }
        let name = if st.split == SplitMode::Samplers {
            ["A: ", "B: "][s]
        } else {
            ""
        };
        let status = cx.host.sampler[s];
        let (frac, text) = match status {
            Some(status) => (
                if status.done {
                    1.0
                } else if status.total > 0 {
                    status.step as f32 / status.total as f32
                } else {
                    0.0
                },
                format!(
                    "{name}t = {:.3} · σ = {:.3} · NFE {}{}",
                    status.t,
                    cx.sde.effective_sigma(status.t.max(1e-5)),
                    status.nfe,
                    if status.done { " · done" } else { "" }
                ),
            ),
            None => (0.0, format!("{name}waiting for the sampler…")),
        };
        ui.add(egui::ProgressBar::new(frac).text(text));
        if st.samplers[s].is_mala() {
            let accepted = status
                .and_then(|st| st.accept)
                .map_or("—".to_string(), |a| format!("{:.1}%", 100.0 * a));
            ui.label(format!(
                "{name}Metropolis: {accepted} of the moves accepted"
            ));
        }
        weights_ui(
            ui,
            st.split,
            cx.ui.flags.panels().charts,
            s,
            cx.host.runs[s].as_ref(),
        );
    }
}

/// The last run's mode weights, NLL and spreads ("—" before the first run ends), each on a
/// line short enough not to wrap.
fn weights_ui(
    ui: &mut egui::Ui,
    split: SplitMode,
    charts: bool,
    slot: usize,
    r: Option<&RunStats>,
) {
    use egui_plot::{Bar, BarChart, Plot};
    // A run with nothing left (every particle diverged) has no numbers: "—", never 0.
    let kept = r.is_some_and(|r| r.n > r.diverged);
    let or_dash = |v: Option<f64>, text: &dyn Fn(f64) -> String| match v {
        Some(v) if kept && v.is_finite() => text(v),
        _ => "—".to_string(),
    };
    let tag = if split == SplitMode::Samplers {
        ["A ", "B "][slot]
    } else {
        ""
    };
    ui.label(format!(
        "{tag}mode weights: max error {}",
        or_dash(r.map(|r| r.max_weight_error), &|v| format!("{v:.3}"))
    ));
    ui.label(format!(
        "NLL {} (true samples {})",
        or_dash(r.map(|r| r.nll), &|v| format!("{v:.2}")),
        r.map_or("—".to_string(), |r| format!(
            "{:.2}",
            r.nll_of_true_samples
        ))
    ));
    ui.label(format!(
        "variance error {} (worst component)",
        or_dash(r.map(|r| r.max_variance_error), &|v| format!("{:.0}%", 100.0 * v))
    ))
    .on_hover_text("How far the spread of the samples in each component is from the truth (the worst component's eigenvalue, against true samples): Langevin's step bias shows here (compare MALA).");
    if let Some(m) = r.and_then(|r| r.diverged_message.as_ref()) {
        ui.colored_label(Color32::from_rgb(255, 150, 90), m);
    }
    if !charts {
        return;
    }
    let bars = |w: &[f64], dx: f64| -> Vec<Bar> {
        w.iter()
            .enumerate()
            .map(|(k, w)| Bar::new(k as f64 + 1.0 + dx, *w).width(0.34))
            .collect()
    };
    let sampled = r.map_or(Vec::new(), |r| bars(&r.weights, -0.18));
    let truth = r.map_or(Vec::new(), |r| bars(&r.true_weights, 0.18));
    Plot::new(("weights", slot))
        .height(70.0)
        .allow_scroll(false)
        .allow_drag(false)
        .show(ui, |p| {
            p.bar_chart(BarChart::new("samples", sampled).color(Color32::from_rgb(110, 240, 130)));
            p.bar_chart(BarChart::new("true", truth).color(Color32::from_rgb(90, 170, 255)));
        });
}

/// The Langevin family's step in data units for the current mixture (what the relative
/// slider means now).
fn absolute_step_ui(
    ui: &mut egui::Ui,
    live: &crate::engine::LiveSampling,
    mixture: &crate::sim::mixture::GaussianMixture,
    name: &str,
) {
    if let Some(a) = live.absolute_step(mixture) {
        ui.weak(format!("{name} = {a:.3e} in data units"));
    }
}

/// A settings row's slider with its own span and label for this sampler (the steps of
/// annealed Langevin are per level, an ODE's are time steps).
fn labelled<T: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    v: &mut T,
    row: &table::Setting,
    span: (f64, f64),
    label: &'static str,
) -> egui::Response {
    let row = table::Setting { label, ..*row };
    super::setting(ui, v, &row, Some(span))
}

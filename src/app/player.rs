//! The lesson player: a lesson's text, its steps and the numbers it measures on the live app.

use eframe::egui;

use crate::state::command::Command;

use super::*;

impl ScoreLabApp {
    /// The lesson player: a panel beside the canvas with the lesson's text and Back / Next,
    /// or (embedded with the controls hidden) a caption under the canvas. A failure scene
    /// shows why it fails and the number it measures, live.
    pub(super) fn lesson_ui(
        &mut self,
        ui: &mut egui::Ui,
        n: usize,
        window: bool,
        cmds: &mut Vec<Command>,
    ) {
        use crate::state::lessons;
        let Some(l) = lessons::lesson(n) else {
            return;
        };
        let count = lessons::count();
        let header = match n.checked_sub(lessons::LESSONS.len() + 1) {
            Some(k) if l.check.is_some() => {
                format!("Failure scene {} of {}", k + 1, lessons::FAILURES.len())
            }
            _ => format!("Lesson {n} of {}", lessons::LESSONS.len()),
        };
        if !window {
            egui::Panel::bottom("lesson_caption").show(ui, |ui| {
                ui.strong(format!("{header}: {}", l.title));
                ui.label(l.look);
            });
            return;
        }
        let measured = l.check.and_then(|c| self.measured(c.metric));
        // A side panel, not a window: egui's windows and menus would add ≈ 20 kB (gzipped) to
        // a WebGPU build at its 2 MB budget. On a narrow screen it goes under the canvas.
        let panel = if self.ui.narrow {
            let h = ui.ctx().content_rect().height();
            egui::Panel::bottom("lesson_player").exact_size((0.36 * h).clamp(160.0, 420.0))
        } else {
            egui::Panel::right("lesson_player").exact_size(330.0)
        };
        panel.resizable(false).show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.strong(header);
                        if ui.small_button("close").clicked() {
                            cmds.push(Command::OpenLesson(None));
                        }
                    });
                    ui.heading(l.title);
                    ui.label(l.look);
                    if let Some(q) = l.predict {
                        self.predict_ui(ui, n, &q, cmds);
                    }
                    if let Some(c) = l.check {
                        ui.strong("Why");
                        ui.label(l.why);
                        ui.strong("Measured");
                        ui.label(match measured {
                            Some(v) => format!(
                                "{}: {v:.2} here (the text's {:.2} was measured on the CPU engine's first run)",
                                c.metric.label(),
                                c.value
                            ),
                            None => format!("{}: waiting for the run…", c.metric.label()),
                        });
                    }
                    ui.strong(if l.check.is_some() { "Fix it" } else { "Try this" });
                    for t in l.try_this {
                        ui.label(format!("• {t}"));
                    }
                    ui.strong("Discuss");
                    ui.label(l.ask);
                    ui.horizontal(|ui| {
                        if ui
                            .add_enabled(n > 1, egui::Button::new("< Back"))
                            .on_hover_text("p")
                            .clicked()
                        {
                            cmds.push(Command::StepLesson(-1));
                        }
                        if ui
                            .add_enabled(n < count, egui::Button::new("Next >"))
                            .on_hover_text("n")
                            .clicked()
                        {
                            cmds.push(Command::StepLesson(1));
                        }
                        if ui
                            .button("Start over")
                            .on_hover_text("this lesson's settings again")
                            .clicked()
                        {
                            cmds.push(Command::OpenLesson(Some(n)));
                        }
                    });
                });
            });
    }

    /// The lesson's question: its choices while the run waits, then the choice made and, once
    /// the runs have finished, the right answer with the numbers the page measured.
    fn predict_ui(
        &self,
        ui: &mut egui::Ui,
        n: usize,
        q: &crate::state::lessons::Predict,
        cmds: &mut Vec<Command>,
    ) {
        let Some(p) = self.ui.predict.filter(|p| p.lesson == n) else {
            return;
        };
        ui.strong("Predict first");
        ui.label(q.question);
        let Some(picked) = p.picked else {
            for (i, c) in q.choices.iter().enumerate() {
                if ui.button(*c).clicked() {
                    cmds.push(Command::Predict(Some(i)));
                }
            }
            if ui.button("just show me").clicked() {
                cmds.push(Command::Predict(None));
            }
            ui.small("The run starts when you choose.");
            return;
        };
        if let Some(i) = picked {
            ui.label(format!(
                "You said: {}",
                q.choices.get(i).copied().unwrap_or("?")
            ));
        }
        match self.reveal(q) {
            Some((right, measured)) => {
                let answer = q.choices.get(right).copied().unwrap_or("?");
                let verdict = match picked {
                    Some(i) if i == right => "Right! ",
                    Some(_) => "Not quite. ",
                    None => "",
                };
                ui.strong(format!("{verdict}The answer: {answer}"));
                ui.label(measured);
                ui.label(q.why);
            }
            None => {
                ui.small("Running… the answer comes when the run finishes.");
            }
        }
    }

    /// The right choice of a lesson's question and the sentence with the measured numbers,
    /// from the samplers' last finished runs (None until they have finished).
    pub(super) fn reveal(&self, q: &crate::state::lessons::Predict) -> Option<(usize, String)> {
        let runs = [self.host.runs[0].as_ref(), self.host.runs[1].as_ref()];
        q.reveal.judge(runs)
    }

    /// A failure scene's number as this page measures it now (sampler 1's last finished run,
    /// or the difference arrows' score errors).
    pub(super) fn measured(&self, metric: crate::state::lessons::Metric) -> Option<f64> {
        use crate::state::lessons::Metric;
        // Only a run of the sampler as it is now (not one that finished before a change).
        let live = &self.state.samplers[0];
        let now = self.host.sampler[0].map(|s| s.run);
        let run = self.host.runs[0]
            .as_ref()
            .filter(|r| Some(r.run) == now && r.kind == live.kind && r.n == live.n);
        match metric {
            Metric::Diverged => run.map(|r| r.diverged as f64 / r.n.max(1) as f64),
            Metric::WeightError => run.map(|r| r.max_weight_error),
            Metric::ScoreErrorRatio => Metric::error_ratio(
                self.views.overlays.score_errors()?,
                self.data.mixture.weights(),
            ),
        }
    }
}

//! Answers under eviction: what each compared policy's cache makes the model answer at the
//! current budget, beside the full-cache answer. The worker decodes; this panel only asks and
//! shows.

use egui::{RichText, Ui};

use crate::app::command::{Command, CommandQueue};
use crate::app::palette::policy_colour;
use crate::app::session_view::SessionView;
use crate::app::state::State;
use crate::policy::PolicyId;

/// Draws the answers panel.
pub fn decode_panel(
    ui: &mut Ui,
    view: &SessionView,
    state: &mut State,
    commands: &mut CommandQueue,
) {
    let budget = view.budget();
    ui.label(RichText::new("Answers under eviction").strong());
    ui.horizontal_wrapped(|ui| {
        let pending = view.answers.pending.is_some();
        if ui
            .add_enabled(
                !pending,
                egui::Button::new(format!("Decode at budget {budget}")),
            )
            .on_hover_text(
                "Run the model again with only each compared policy's kept entries in the cache",
            )
            .clicked()
        {
            commands.push(Command::DecodeUnderEviction);
        }
        ui.checkbox(&mut state.auto_decode, "when the slider rests");
        if let Some((_, asked)) = view.answers.pending {
            ui.spinner();
            ui.label(format!("decoding at budget {asked}…"));
        }
    });
    if view.answers.answers.is_empty() && view.answers.pending.is_none() {
        ui.weak("Decode asks the model to answer again with only each policy's kept entries in the cache");
    }
    if let Some(error) = &view.answers.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let full = &view.session.answer.text;
    egui::Grid::new("answers")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            ui.label(RichText::new("Full cache").strong());
            ui.add(egui::Label::new(full.trim()).wrap());
            ui.end_row();
            for policy in PolicyId::all()
                .into_iter()
                .filter(|p| state.compared.contains(p) && *p != PolicyId::FULL_KV)
            {
                ui.label(RichText::new(policy.label()).color(policy_colour(policy)));
                match view.answers.answers.get(&policy) {
                    Some(answer) => {
                        let text = answer.answer.text.trim();
                        let same = text == full.trim();
                        let mut line = RichText::new(text);
                        if answer.budget != budget.asked() {
                            line = line.weak();
                        }
                        let response = ui.add(egui::Label::new(line).wrap());
                        let verdict = if same {
                            "same as the full cache"
                        } else {
                            "differs from the full cache"
                        };
                        let hint = if answer.budget == budget.asked() {
                            format!("At budget {}: {verdict}", answer.budget)
                        } else {
                            format!(
                                "From budget {} (not the current one): {verdict}",
                                answer.budget
                            )
                        };
                        response.on_hover_text(hint);
                    }
                    None => {
                        ui.weak("–");
                    }
                }
                ui.end_row();
            }
        });
}

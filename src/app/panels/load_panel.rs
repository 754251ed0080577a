//! The load panel: model, document, soft tokens, question, Run, and the running job's progress.

use egui::{Button, DragValue, ProgressBar, RichText, TextEdit, Ui};

use crate::app::command::{Command, CommandQueue};
use crate::app::jobs::RunningJob;
use crate::app::state::{ModelChoice, State, file_label};
use crate::judgeq::shipped::SoftTokenChoice;
use crate::session::{ModelInfo, QuestionPlacement};

/// What the load panel shows besides the persisted state.
pub struct LoadStatus<'a> {
    /// The loaded model, if any.
    pub model: Option<&'a ModelInfo>,
    /// The loaded document: a label and its length in characters.
    pub document: Option<(String, usize)>,
    /// The running load or inspection.
    pub job: Option<&'a RunningJob>,
}

/// Draws the load panel.
pub fn load_panel(
    ui: &mut Ui,
    state: &mut State,
    status: &LoadStatus<'_>,
    commands: &mut CommandQueue,
) {
    ui.heading("Load");
    ui.add_space(2.0);

    ui.label(RichText::new("Model").strong());
    ui.horizontal_wrapped(|ui| {
        ui.label(state.model.describe());
        ui.menu_button("Open model…", |ui| {
            if ui.button("GGUF file…").clicked() {
                commands.push(Command::PickModelFile);
            }
            if ui.button("Hugging Face folder…").clicked() {
                commands.push(Command::PickModelFolder);
            }
            if state.model != ModelChoice::Default && ui.button("Default model").clicked() {
                commands.push(Command::UseDefaultModel);
            }
        });
    });
    match status.model {
        Some(info) => ui.weak(format!(
            "Loaded: {} · {} layers × {} heads ({} KV heads)",
            info.id, info.layers, info.query_heads, info.kv_heads
        )),
        None => ui.weak("Not loaded yet; Run loads it"),
    };

    ui.add_space(6.0);
    ui.label(RichText::new("Document").strong());
    ui.horizontal_wrapped(|ui| {
        match &status.document {
            Some((label, chars)) => ui.label(format!("{label} ({chars} characters)")),
            None => ui.weak("None"),
        };
        if ui.button("Open document…").clicked() {
            commands.push(Command::PickDocument);
        }
    });
    ui.weak("or drop a .txt or .md file on the window");
    if ui
        .button("Open task figure…")
        .on_hover_text(
            "A needle heatmap of a judgeq tasks run (RUN/figures/needle_*.json, .png or .svg): \
             click a cell to inspect its sample with the needle marked",
        )
        .clicked()
    {
        commands.push(Command::PickTaskFigure);
    }

    ui.add_space(6.0);
    ui.label(RichText::new("Soft tokens (Judge Q)").strong());
    ui.horizontal_wrapped(|ui| {
        match &state.soft_token_choice {
            SoftTokenChoice::Shipped => ui.label("Shipped").on_hover_text(
                "The soft tokens judgeq ships for SmolLM2-135M-Instruct (trained by judgeq train); \
                 other models run without soft tokens unless you open a file trained for them",
            ),
            SoftTokenChoice::File(path) => ui.label(file_label(path)),
            SoftTokenChoice::None => ui.weak("None"),
        };
        if ui.button("Open soft tokens…").clicked() {
            commands.push(Command::PickSoftTokens);
        }
        if state.soft_token_choice != SoftTokenChoice::Shipped
            && ui
                .small_button("Shipped")
                .on_hover_text("Use the soft tokens shipped for the default model")
                .clicked()
        {
            commands.push(Command::UseShippedSoftTokens);
        }
        if state.soft_token_choice != SoftTokenChoice::None
            && ui
                .small_button("None")
                .on_hover_text("Run without soft tokens")
                .clicked()
        {
            commands.push(Command::ClearSoftTokens);
        }
    });

    ui.add_space(6.0);
    let question_label = ui.label(RichText::new("Question").strong());
    ui.add(
        TextEdit::multiline(&mut state.question)
            .desired_rows(2)
            .desired_width(f32::INFINITY)
            .hint_text("Asked about the document, e.g. What does the report conclude?"),
    )
    .labelled_by(question_label.id);
    ui.horizontal(|ui| {
        let label = ui.label("Placement");
        egui::ComboBox::from_id_salt("question_placement")
            .selected_text(state.question_placement.label())
            .show_ui(ui, |ui| {
                for placement in QuestionPlacement::ALL {
                    ui.selectable_value(
                        &mut state.question_placement,
                        placement,
                        placement.label(),
                    )
                    .on_hover_text(placement_help(placement));
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text(placement_help(state.question_placement));
    });

    egui::CollapsingHeader::new("Run settings").show(ui, |ui| {
        ui.horizontal(|ui| {
            let label = ui.label("Window queries");
            ui.add(DragValue::new(&mut state.inspect_window).range(1..=512))
                .labelled_by(label.id)
                .on_hover_text("The last prompt tokens whose queries the SnapKV panel shows");
        });
        ui.horizontal(|ui| {
            let label = ui.label("Decoded tokens");
            ui.add(DragValue::new(&mut state.decode_tokens).range(1..=512))
                .labelled_by(label.id)
                .on_hover_text(
                    "Tokens the model answers with the full cache (the oracle's queries)",
                );
        });
    });

    ui.add_space(6.0);
    let busy = status.job.is_some();
    let can_run = status.document.is_some() && !busy;
    let run = ui
        .add_enabled(can_run, Button::new(RichText::new("Run").strong()).min_size(egui::vec2(90.0, 26.0)))
        .on_hover_text("Load the model if needed, run the document and question through it, and capture the three sources' attention")
        .on_disabled_hover_text(if busy { "A job is running" } else { "Open a document first" });
    if run.clicked() {
        commands.push(Command::Run);
    }
    if let Some(job) = status.job {
        ui.add_space(4.0);
        ui.label(job.describe());
        ui.horizontal(|ui| {
            let bar = ProgressBar::new(job.fraction())
                .show_percentage()
                .desired_width(ui.available_width() - 70.0);
            ui.add(bar.animate(job.total == 0));
            if ui.button("Cancel").clicked() {
                commands.push(Command::Cancel);
            }
        });
    }
}

/// What a question placement does, for its tooltip.
fn placement_help(placement: QuestionPlacement) -> &'static str {
    match placement {
        QuestionPlacement::End => {
            "The question after the document; everything is scored and evicted"
        }
        QuestionPlacement::Start => {
            "The question before the document (far from the end); everything is scored and evicted"
        }
        QuestionPlacement::AfterEviction => {
            "The document alone is scored and evicted; the question is then fed under the kept \
             cache, never evicted, and the answer decoded (the oracle: the full-cache answer's \
             attention over the document part)"
        }
    }
}

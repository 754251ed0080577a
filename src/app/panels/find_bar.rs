//! The bar above the panels: a phrase to find in the prompt with the count of its matches and
//! buttons that step through them, the legend of the marked spans (each a button that shows
//! the next span), and the switch for the score profiles.

use std::sync::Arc;

use egui::{Button, Color32, Key, KeyboardShortcut, Modifiers, Sense, TextEdit, Ui, vec2};

use crate::app::marks::{FIND_COLOUR, MarkedSpans};
use crate::app::session_view::SessionView;

/// `n` followed by the singular or plural noun.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The find box's summary: how many matches and how many tokens they cover.
pub fn find_summary(matches: &MarkedSpans) -> String {
    if matches.is_empty() {
        "no matches".to_owned()
    } else {
        format!(
            "{}, {}",
            count(matches.len(), "match", "matches"),
            count(matches.tokens(), "token", "tokens")
        )
    }
}

/// A small square of `colour`, as in a plot legend.
fn swatch(ui: &mut Ui, colour: Color32) {
    let (rect, _) = ui.allocate_exact_size(vec2(10.0, 10.0), Sense::hover());
    ui.painter().rect_filled(rect, 2.0, colour);
}

/// Draws the bar; `query` is the find box's text, `show_profiles` the profiles switch.
pub fn find_bar(ui: &mut Ui, view: &mut SessionView, query: &mut String, show_profiles: &mut bool) {
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Find in prompt");
        let edit = ui
            .add(
                TextEdit::singleline(query)
                    .hint_text("a phrase, e.g. the needle")
                    .desired_width(240.0),
            )
            .labelled_by(label.id)
            .on_hover_text("Marks every token of each occurrence (case and line breaks ignored) on every panel's key axis and in the prompt; Enter shows the next one (Ctrl+F to type here)");
        if ui.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::F)))
        {
            edit.request_focus();
        }
        let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
        let matches = view.find(query);
        let any = !matches.is_empty();
        if query.trim().is_empty() {
            ui.weak("type a phrase to mark it on every panel");
        } else {
            swatch(ui, FIND_COLOUR);
            ui.label(find_summary(&matches));
        }
        if ui
            .add_enabled(any, Button::new("Previous"))
            .on_hover_text("Show the previous match on the key axis and in the prompt")
            .clicked()
        {
            view.step_find(false);
        }
        if ui
            .add_enabled(any, Button::new("Next"))
            .on_hover_text("Show the next match on the key axis and in the prompt")
            .clicked()
            || (entered && any)
        {
            view.step_find(true);
        }
        if entered {
            edit.request_focus();
        }
        if let Some(current) = view.find.current() {
            ui.weak(format!("showing {} of {}", current + 1, matches.len()));
        }

        let marks: Vec<Arc<MarkedSpans>> = view.marks().to_vec();
        if !marks.is_empty() {
            ui.separator();
            ui.label("Marked");
            for list in &marks {
                swatch(ui, list.colour);
                let hint = format!(
                    "{}, {}: click to show the next one",
                    count(list.len(), "span", "spans"),
                    count(list.tokens(), "token", "tokens")
                );
                if ui
                    .add_enabled(!list.is_empty(), Button::new(&list.label).small())
                    .on_hover_text(hint)
                    .clicked()
                {
                    view.show_next_mark(list);
                }
            }
        }

        ui.separator();
        ui.checkbox(show_profiles, "Score profiles").on_hover_text(
            "Under each heatmap, the score of every key (its rows summed over the queries), with the strip's kept keys shaded",
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(
        clippy::single_range_in_vec_init,
        reason = "lists of token ranges, some of one range"
    )]
    fn summaries_count_matches_and_tokens() {
        let spans = |ranges| MarkedSpans::new("find", FIND_COLOUR, ranges);
        assert_eq!(find_summary(&spans(vec![])), "no matches");
        assert_eq!(find_summary(&spans(vec![3..4])), "1 match, 1 token");
        assert_eq!(
            find_summary(&spans(vec![0..5, 4..8, 20..26])),
            "3 matches, 14 tokens"
        );
    }
}

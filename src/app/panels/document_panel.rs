//! The document view with its controls: which policy's kept tokens to highlight, and whether
//! for the panels' layer and head or as the share of all heads. Marked spans (find matches, a
//! needle) are outlined in their colours.

use egui::{ComboBox, RichText, Ui};

use crate::app::marks::MarkedSpans;
use crate::app::palette::policy_colour;
use crate::app::session_view::SessionView;
use crate::app::state::{HighlightMode, State};
use crate::app::widgets::document_view::{Highlight, span_colour};
use crate::attention::{HeadView, Pick};
use crate::session::SpanKind;

/// Draws the document panel.
pub fn document_panel(ui: &mut Ui, view: &mut SessionView, state: &mut State) {
    let budget = view.budget();
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Prompt").strong());
        ui.label(RichText::new("document").color(span_colour(ui, SpanKind::Document)));
        ui.label(RichText::new("question").color(span_colour(ui, SpanKind::Question)));
        ui.label(RichText::new("chat scaffolding").italics().color(span_colour(ui, SpanKind::Scaffold)));
        ui.separator();
        let label = ui.label("Highlight");
        let mut focus = state.focus_policy;
        ComboBox::from_id_salt("focus_policy")
            .selected_text(RichText::new(focus.label()).color(policy_colour(focus)))
            .width(110.0)
            .show_ui(ui, |ui| {
                for policy in view.available_policies(&state.policy) {
                    ui.selectable_value(&mut focus, policy, RichText::new(policy.label()).color(policy_colour(policy)));
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text("Policy whose kept tokens are highlighted");
        state.focus_policy = focus;
        ui.label("kept tokens of");
        ui.selectable_value(&mut state.highlight, HighlightMode::SelectedHead, "the layer and head shown")
            .on_hover_text("Kept tokens of the layer and head the panels show (under an aggregate, shaded by the share of those heads that keep them)");
        ui.selectable_value(&mut state.highlight, HighlightMode::HeadShare, "all heads, by share")
            .on_hover_text("Each token shaded by the share of all layers and heads that keep it");
    });
    let highlight_view = match state.highlight {
        HighlightMode::SelectedHead => state.view,
        HighlightMode::HeadShare => HeadView {
            layer: Pick::All,
            head: Pick::All,
            ..state.view
        },
    };
    let share = view.kept_share(state.focus_policy, budget, highlight_view);
    let highlight = share.as_deref().map(|strength| Highlight {
        colour: policy_colour(state.focus_policy),
        strength,
    });
    let marked = view.axis.marked();
    let scroll_to = view.scroll_document_to.take();
    let lists = view.mark_lists();
    let marks: Vec<&MarkedSpans> = lists.iter().map(AsRef::as_ref).collect();
    let response = view
        .document
        .ui(ui, highlight.as_ref(), &marks, marked, scroll_to);
    if let Some(token) = response.hovered {
        view.axis.hovered = Some(token);
    }
    if let Some(token) = response.clicked {
        view.axis.centre_on(token);
    }
}

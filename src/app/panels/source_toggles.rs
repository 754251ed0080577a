//! Which query-source panels are drawn: the sources a session has a panel for, and the row of
//! switches above the panels with which the user shows or hides each one (its heatmap, kept
//! strip and score profile), e.g. to put two sources side by side with the oracle's.

use egui::Ui;

use crate::app::state::State;
use crate::attention::QuerySource;
use crate::session::Session;

/// Whether `session` gets a panel for `source`: every source it captured, and the soft tokens
/// always (their panel says how to get them). Sources captured only on request, such as
/// Lookahead Q-Cache's drafts, get no panel in a session without them.
pub fn has_panel(session: &Session, source: QuerySource) -> bool {
    session.rows(source).is_some() || source == QuerySource::Soft
}

/// The sources `session` has a panel for, in [`QuerySource::ALL`] order.
pub fn panel_sources(session: &Session) -> Vec<QuerySource> {
    QuerySource::ALL
        .into_iter()
        .filter(|&source| has_panel(session, source))
        .collect()
}

/// The sources whose panels are drawn: those `session` has a panel for that `state` shows, in
/// [`QuerySource::ALL`] order.
pub fn shown_sources(session: &Session, state: &State) -> Vec<QuerySource> {
    panel_sources(session)
        .into_iter()
        .filter(|&source| state.shows_source(source))
        .collect()
}

/// Draws the row of switches, one per source of `sources`, named as in the readout and the
/// exported `<source>.npy` files, with the panel's title as its tooltip.
pub fn source_toggles(ui: &mut Ui, sources: &[QuerySource], state: &mut State) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Panels").on_hover_text(
            "Show or hide each query source's heatmap and kept strip: e.g. hide all but the soft tokens and the decoded tokens (the oracle's queries) to compare the two",
        );
        for &source in sources {
            let mut shown = state.shows_source(source);
            if ui
                .checkbox(&mut shown, source.file_stem())
                .on_hover_text(source.title())
                .changed()
            {
                state.show_source(source, shown);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{SyntheticSpec, synthetic};

    fn session(soft: usize) -> Session {
        synthetic(&SyntheticSpec {
            layers: 1,
            query_heads: 2,
            kv_heads: 1,
            n_prompt: 12,
            window: 3,
            soft,
            decoded: 2,
            ..SyntheticSpec::default()
        })
        .unwrap()
    }

    #[test]
    fn captured_sources_and_the_soft_tokens_get_panels() {
        let without = session(0);
        assert_eq!(
            panel_sources(&without),
            [QuerySource::Window, QuerySource::Soft, QuerySource::Decoded],
            "the soft panel explains its absence; the undrafted lookahead has none"
        );
        let mut drafted = session(4);
        drafted.lookahead = Some(drafted.decoded.clone());
        assert_eq!(
            panel_sources(&drafted),
            [
                QuerySource::Window,
                QuerySource::Soft,
                QuerySource::Decoded,
                QuerySource::Lookahead
            ]
        );

        let mut state = State::default();
        state.show_source(QuerySource::Window, false);
        state.show_source(QuerySource::Lookahead, false);
        assert_eq!(
            shown_sources(&drafted, &state),
            [QuerySource::Soft, QuerySource::Decoded]
        );
        state.show_source(QuerySource::Soft, false);
        state.show_source(QuerySource::Decoded, false);
        assert!(shown_sources(&drafted, &state).is_empty());
    }
}

//! The query-source panels on one key axis: the row of switches that shows or hides each
//! source, then for each shown source a row of marked-span ticks, the heatmap, the kept strip
//! and the score profile, then the ruler and the readout of the hovered key.

use std::sync::Arc;

use egui::{Color32, ComboBox, RichText, Role, Sense, Stroke, Ui, WidgetInfo, vec2};

use crate::app::lod::Pyramid;
use crate::app::marks::MarkedSpans;
use crate::app::palette::policy_colour;
use crate::app::panels::source_toggles::{panel_sources, shown_sources, source_toggles};
use crate::app::session_view::SessionView;
use crate::app::state::State;
use crate::app::widgets::colour_bar::colour_bar;
use crate::app::widgets::heatmap::{ColourLut, paint_key_marker};
use crate::app::widgets::key_strip::{key_ruler, key_strip};
use crate::app::widgets::mark_bands::{paint_outlines, paint_tick_row};
use crate::app::widgets::score_profile::{ProfileInputs, score_profile};
use crate::attention::HeadView;
use crate::attention::QuerySource;
use crate::export::{ColourScale, format_value};
use crate::policy::PolicyId;
use crate::session::SpanKind;

/// Height of a kept strip.
const STRIP_HEIGHT: f32 = 12.0;
/// Height of a panel's title row.
const TITLE_HEIGHT: f32 = 22.0;
/// Height of the row of marked-span ticks above a heatmap.
const TICK_ROW_HEIGHT: f32 = 6.0;

/// Heights of a panel's heatmap and score profile (none when the profiles are hidden).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Heights {
    map: f32,
    profile: Option<f32>,
}

impl Heights {
    /// Shares `height` points among `panels` panels: titles, tick rows and strips first, then
    /// about a third of the rest to the profile (36 to 72 points), the remainder to the
    /// heatmap (at least 36).
    fn fit(height: f32, panels: usize, profiles: bool) -> Self {
        let panels = panels.max(1) as f32;
        let overhead = panels * (TITLE_HEIGHT + TICK_ROW_HEIGHT + STRIP_HEIGHT + 12.0) + 70.0;
        let per_panel = (height - overhead) / panels;
        if !profiles {
            return Self {
                map: per_panel.max(36.0),
                profile: None,
            };
        }
        let profile = (per_panel * 0.3).clamp(36.0, 72.0);
        Self {
            map: (per_panel - profile - 2.0).max(36.0),
            profile: Some(profile),
        }
    }
}

/// What each panel drew this frame, for the readout and the figure export.
#[derive(Default)]
struct Drawn {
    matrices: [Option<Arc<Pyramid>>; QuerySource::COUNT],
    /// The view each matrix was computed for (the previous one while a new one computes).
    views: [Option<HeadView>; QuerySource::COUNT],
    scales: [Option<ColourScale>; QuerySource::COUNT],
}

/// Draws the switches and the shown panels filling `ui`'s width and `height` points.
pub fn source_panels(
    ui: &mut Ui,
    view: &mut SessionView,
    state: &mut State,
    lut: &ColourLut,
    height: f32,
) {
    let sources = QuerySource::ALL;
    let top = ui.cursor().top();
    source_toggles(ui, &panel_sources(&view.session), state);
    let shown = shown_sources(&view.session, state);
    if shown.is_empty() {
        ui.weak("Every source panel is hidden: tick a source under Panels to show its heatmap");
        return;
    }
    let used = ui.cursor().top() - top;
    let heights = Heights::fit(height - used, shown.len(), state.show_profiles);
    let lists = view.mark_lists();
    let marks: Vec<&MarkedSpans> = lists.iter().map(AsRef::as_ref).collect();
    let ctx = ui.ctx().clone();
    let mut drawn = Drawn::default();
    let mut current = [true; QuerySource::COUNT];
    for (index, source) in sources.into_iter().enumerate() {
        if let Some((pyramid, is_current)) = view.matrix(source, state.view, &ctx) {
            drawn.matrices[index] = Some(pyramid);
            current[index] = is_current;
            drawn.views[index] = view
                .panel_mut(source)
                .and_then(|p| p.matrix.latest().map(|(v, _)| *v));
        }
    }
    drawn.scales = view.scales(state.colour);
    if current.contains(&false) {
        ctx.request_repaint_after(std::time::Duration::from_millis(50));
    }
    for (index, source) in sources.into_iter().enumerate() {
        if !shown.contains(&source) {
            continue;
        }
        panel(
            ui,
            view,
            state,
            lut,
            source,
            heights,
            &marks,
            index,
            &drawn,
            current[index],
        );
        ui.add_space(4.0);
    }
    let spans = view.session.prompt.spans.clone();
    key_ruler(ui, &mut view.axis, &spans);
    ui.horizontal(|ui| {
        if let Some(scale) = drawn.scales.iter().flatten().next() {
            colour_bar(ui, scale, lut, 220.0);
        }
        ui.separator();
        readout(ui, view, state, &shown, &drawn);
    });
}

#[expect(
    clippy::too_many_arguments,
    reason = "one panel draws from the frame's view, state, layout and shared drawing"
)]
fn panel(
    ui: &mut Ui,
    view: &mut SessionView,
    state: &mut State,
    lut: &ColourLut,
    source: QuerySource,
    heights: Heights,
    marks: &[&MarkedSpans],
    index: usize,
    drawn: &Drawn,
    current: bool,
) {
    let keys = view.keys();
    let budget = view.budget();
    let queries = view.session.rows(source).map(|rows| rows.dim().2);
    let mut strip_policy = state.strip_policy(source);
    ui.horizontal(|ui| {
        ui.set_height(TITLE_HEIGHT);
        ui.label(RichText::new(source.title()).strong()).on_hover_text(match source {
            QuerySource::Window => "Where the last prompt tokens look: SnapKV and its family keep the keys these queries attend to",
            QuerySource::Soft => "Where Judge Q's trained soft tokens, appended after the prompt, look: Judge Q keeps the keys they attend to",
            QuerySource::Decoded => "Where the tokens of the model's actual answer look: the keys a perfect policy (the oracle) would keep",
            QuerySource::Lookahead => "Where Lookahead Q-Cache's draft tokens, decoded under a SnapKV cache, look with the full cache: with the window's queries they score the keys",
            QuerySource::Repeat => "Where the model looks while repeating the prompt (KVzip's repeat pass; evenly spaced rows of it): KVzip keeps the keys its repeat queries attend to most",
        });
        if let Some(q) = queries {
            ui.weak(format!("{q} queries (rows) × {keys} keys (columns)"));
        }
        ui.separator();
        let strip_label = ui.label("Strip");
        ComboBox::from_id_salt(("strip_policy", index))
            .selected_text(RichText::new(strip_policy.label()).color(policy_colour(strip_policy)))
            .width(110.0)
            .show_ui(ui, |ui| {
                for policy in view.available_policies(&state.policy) {
                    ui.selectable_value(
                        &mut strip_policy,
                        policy,
                        RichText::new(policy.label()).color(policy_colour(policy)),
                    );
                }
            })
            .response
            .labelled_by(strip_label.id)
            .on_hover_text("Policy whose kept entries the strip under this panel shows");
        if let Some(Ok(selection)) = view.selection(strip_policy, budget) {
            let kept =
                selection.kept.iter().sum::<usize>() as f64 / selection.kept.len().max(1) as f64;
            ui.label(format!(
                "keeps {:.0} of {keys} per head ({:.0}%)",
                kept,
                100.0 * kept / keys.max(1) as f64
            ));
        }
    });
    state.set_strip_policy(source, strip_policy);

    let (tick_rect, ticks) = ui.allocate_exact_size(
        vec2(ui.available_width(), TICK_ROW_HEIGHT),
        Sense::click_and_drag(),
    );
    view.axis.interact(ui, &ticks);
    paint_tick_row(&ui.painter_at(tick_rect), tick_rect, &view.axis, marks);
    let ticks_name = format!("Marked keys: {}", source.title());
    ticks.widget_info(|| WidgetInfo::labeled(Role::Image, true, &ticks_name));

    let (rect, response) = ui.allocate_exact_size(
        vec2(ui.available_width(), heights.map),
        Sense::click_and_drag(),
    );
    view.axis.interact(ui, &response);
    let map_name = format!("Heatmap: {}", source.title());
    response.widget_info(|| WidgetInfo::labeled(Role::Image, true, &map_name));
    if response.clicked() {
        view.scroll_document_to = view.axis.hovered;
    }
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
    let ctx = ui.ctx().clone();
    let pyramid = drawn.matrices.get(index).and_then(Option::as_ref);
    let scale = drawn.scales.get(index).and_then(Option::as_ref);
    match (pyramid, scale) {
        (Some(pyramid), Some(scale)) => {
            let width_px = rect.width() * ctx.pixels_per_point();
            let shown_view = drawn
                .views
                .get(index)
                .copied()
                .flatten()
                .unwrap_or(state.view);
            let matrix_key = matrix_key(view.generation, source, &shown_view);
            let axis = view.axis.clone();
            if let Some(panel) = view.panel_mut(source) {
                let name = format!("heatmap-{}", source.file_stem());
                panel.textures.update(
                    &ctx, &name, matrix_key, pyramid, scale, lut, &axis, width_px,
                );
                panel.textures.paint(&painter, rect, &axis);
            }
            if !current {
                painter.text(
                    rect.right_top() + vec2(-8.0, 6.0),
                    egui::Align2::RIGHT_TOP,
                    "Computing…",
                    egui::FontId::proportional(12.0),
                    ui.visuals().strong_text_color(),
                );
            }
        }
        _ => {
            let message = match source {
                QuerySource::Soft => {
                    "No soft tokens in this session (the shipped ones are for SmolLM2-135M-Instruct only): open a soft-token file trained for this model in the Load panel and run again to see Judge Q's queries"
                }
                QuerySource::Lookahead => {
                    "No lookahead drafts in this session: choose the Lookahead Q-Cache policy and run again to draft them"
                }
                QuerySource::Repeat => {
                    "No KVzip repeat pass in this session: choose the KVzip policy and run again to run it"
                }
                QuerySource::Window | QuerySource::Decoded => "No attention rows for this source",
            };
            ui.put(
                rect.shrink(12.0),
                egui::Label::new(RichText::new(message).weak()).wrap(),
            );
        }
    }
    paint_outlines(&painter, rect, &view.axis, marks);
    if let Some(key) = view.axis.marked() {
        paint_key_marker(
            &painter,
            rect,
            &view.axis,
            key,
            Color32::WHITE.gamma_multiply(0.8),
        );
    }
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
        egui::StrokeKind::Inside,
    );

    let share = view.kept_share(strip_policy, budget, state.view);
    let empty = Vec::new();
    let kept = share.as_deref().unwrap_or(&empty);
    let strip = key_strip(
        ui,
        &mut view.axis,
        kept,
        policy_colour(strip_policy),
        STRIP_HEIGHT,
    );
    paint_outlines(&ui.painter_at(strip.rect), strip.rect, &view.axis, marks);
    let strip_name = format!("Kept strip: {}", source.title());
    strip.widget_info(|| WidgetInfo::labeled(Role::Image, true, &strip_name));
    strip.on_hover_text(format!(
        "Entries {} keeps (coloured) and evicts (grey) at budget {budget}",
        strip_policy.label()
    ));

    if let Some(profile_height) = heights.profile
        && let Some(scores) = view.profile(source)
    {
        ui.add_space(2.0);
        let inputs = ProfileInputs {
            label: source.title(),
            scores: &scores,
            kept,
            kept_colour: policy_colour(strip_policy),
            marks,
            skip_first: state.colour.skip_sinks,
        };
        let response = score_profile(
            ui,
            ("score_profile", index),
            &mut view.axis,
            &inputs,
            profile_height,
        );
        if response.clicked() {
            view.scroll_document_to = view.axis.hovered;
        }
    }
}

/// A key identifying one panel's matrix: the session, the source and the view.
fn matrix_key(generation: u64, source: QuerySource, view: &HeadView) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (generation, source, view).hash(&mut hasher);
    hasher.finish()
}

/// One line about the hovered key: its token, position, span, score under each `shown`
/// source and whether each shown strip's policy keeps it.
fn readout(
    ui: &mut Ui,
    view: &mut SessionView,
    state: &State,
    shown: &[QuerySource],
    drawn: &Drawn,
) {
    let Some(key) = view.axis.marked() else {
        ui.add(
            egui::Label::new(
                RichText::new("Hover a key for its token and scores · scroll to zoom · drag to pan · double-click to show all keys").weak(),
            )
            .wrap(),
        );
        return;
    };
    let token = view
        .session
        .prompt
        .tokens
        .get(key)
        .cloned()
        .unwrap_or_default();
    let kind = match view.session.prompt.kind_at(key) {
        Some(SpanKind::Document) => "document",
        Some(SpanKind::Question) => "question",
        Some(SpanKind::Scaffold) | None => "scaffold",
    };
    let mut parts = vec![format!("Key {key} “{}” ({kind})", token.escape_debug())];
    for (index, source) in QuerySource::ALL.into_iter().enumerate() {
        if !shown.contains(&source) {
            continue;
        }
        let score = drawn
            .matrices
            .get(index)
            .and_then(Option::as_ref)
            .filter(|p| key < p.keys())
            .map(|p| p.base().column(key).sum());
        let short = source.file_stem();
        if let Some(score) = score {
            parts.push(format!("{short} {}", format_value(score)));
        }
    }
    let budget = view.budget();
    let mut kept_by: Vec<String> = Vec::new();
    let mut seen: Vec<PolicyId> = Vec::new();
    let strips = QuerySource::ALL
        .into_iter()
        .zip(state.strip_policies_by_source())
        .filter(|(source, _)| shown.contains(source))
        .map(|(_, policy)| policy);
    for policy in strips {
        if seen.contains(&policy) {
            continue;
        }
        seen.push(policy);
        if let Some(share) = view.kept_share(policy, budget, state.view) {
            let s = share.get(key).copied().unwrap_or(0.0);
            let mark = if s >= 1.0 {
                "kept".to_owned()
            } else if s <= 0.0 {
                "evicted".to_owned()
            } else {
                format!("kept by {:.0}% of heads", 100.0 * s)
            };
            kept_by.push(format!("{} {mark}", policy.label()));
        }
    }
    let first = parts.first().cloned().unwrap_or_default();
    let scores = parts.get(1..).unwrap_or_default().join(", ");
    ui.add(
        egui::Label::new(format!(
            "{first} · attention summed over queries: {scores} · {}",
            kept_by.join(", ")
        ))
        .wrap(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_panels_share_the_height() {
        // Hand-computed: 1000 points less 52 per panel and 70 for the ruler and readout.
        let three = Heights::fit(1000.0, 3, true);
        assert_eq!(three.profile, Some(72.0));
        assert!((three.map - (774.0 / 3.0 - 74.0)).abs() < 1e-3, "{three:?}");
        let two = Heights::fit(1000.0, 2, true);
        assert_eq!(
            two,
            Heights {
                map: 339.0,
                profile: Some(72.0)
            }
        );
        assert_eq!(
            Heights::fit(1000.0, 2, false),
            Heights {
                map: 413.0,
                profile: None
            }
        );
        let one = Heights::fit(1000.0, 1, false);
        assert_eq!(one.map, 878.0);
        // Whatever the count, the panels fill the height they are given.
        for panels in 1..=4 {
            let h = Heights::fit(1000.0, panels, true);
            let per_panel = TITLE_HEIGHT + TICK_ROW_HEIGHT + STRIP_HEIGHT + 12.0 + h.map + 2.0;
            let total = panels as f32 * (per_panel + h.profile.unwrap_or(0.0)) + 70.0;
            assert!((total - 1000.0).abs() < 1e-2, "{panels} panels: {total}");
        }
    }
}

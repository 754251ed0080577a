//! A source's per-key score as a line plot on the shared key axis, under its heatmap: the
//! keys its strip's policy keeps shaded behind the line, the marked spans as bands.
//!
//! The plot (egui_plot) shows no axes of its own, so its x range is exactly the heatmap's;
//! it zooms and pans with the key axis and takes none of egui_plot's own gestures. Long axes
//! are drawn with one point per pixel column, the largest score under it (as the heatmap's
//! levels of detail pool keys by their maximum), so a frame costs the same at any prompt
//! length and a single-key peak is never averaged away.

use egui::{
    Align2, Color32, FontId, Rect, Response, Role, Stroke, StrokeKind, Ui, UiBuilder, Vec2,
    WidgetInfo, vec2,
};
use egui_plot::{Line, Plot};

use crate::app::key_viewport::KeyViewport;
use crate::app::marks::MarkedSpans;
use crate::app::widgets::heatmap::paint_key_marker;
use crate::app::widgets::key_strip::share_bands;
use crate::app::widgets::mark_bands::paint_bands;
use crate::export::format_value;

/// What one profile shows.
pub struct ProfileInputs<'a> {
    /// Name for the plot's line and its AccessKit label.
    pub label: &'a str,
    /// Score of every key.
    pub scores: &'a [f32],
    /// Share of the viewed heads that keep each key (as in the kept strip).
    pub kept: &'a [f32],
    /// Colour of the kept keys' shading (the strip's policy colour).
    pub kept_colour: Color32,
    /// Marked spans, drawn as vertical bands.
    pub marks: &'a [&'a MarkedSpans],
    /// Keys at the start left out of the vertical range (attention sinks), as the colour
    /// scale leaves them out; they are drawn clipped.
    pub skip_first: usize,
}

/// The points of the line for the visible range of `axis` drawn over `columns` pixel columns:
/// one point per key (at the key's centre) when keys are wider than a column, otherwise one
/// per column, at its middle, with the largest score of the keys under it.
pub fn profile_points(scores: &[f32], axis: &KeyViewport, columns: usize) -> Vec<[f64; 2]> {
    let keys = scores.len().min(axis.keys());
    if keys == 0 {
        return Vec::new();
    }
    let columns = columns.max(1);
    if axis.span() <= columns as f64 {
        // One key either side of the view, so the line runs to the edges.
        let first = (axis.start().floor().max(0.0) as usize).saturating_sub(1);
        let end = (axis.end().ceil().max(0.0) as usize + 1).min(keys);
        return (first..end)
            .map(|k| [k as f64 + 0.5, f64::from(scores[k])])
            .collect();
    }
    let mut points = Vec::with_capacity(columns);
    for c in 0..columns {
        let from = axis.start() + axis.span() * c as f64 / columns as f64;
        let to = axis.start() + axis.span() * (c + 1) as f64 / columns as f64;
        let first = (from.floor().max(0.0) as usize).min(keys);
        let last = (to.ceil().max(0.0) as usize).clamp(first, keys);
        let Some(slice) = scores.get(first..last).filter(|s| !s.is_empty()) else {
            continue;
        };
        let high = slice.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        points.push([(from + to) / 2.0, f64::from(high)]);
    }
    points
}

/// The largest score among the visible keys from `skip_first` on (among all visible keys when
/// every one of them is skipped); 1 when there is none above zero.
pub fn visible_peak(scores: &[f32], axis: &KeyViewport, skip_first: usize) -> f32 {
    let keys = scores.len().min(axis.keys());
    let first = (axis.start().floor().max(0.0) as usize).min(keys);
    let end = (axis.end().ceil().max(0.0) as usize).clamp(first, keys);
    let visible = scores.get(first..end).unwrap_or_default();
    let unskipped = scores.get(first.max(skip_first)..end).unwrap_or_default();
    let pool = if unskipped.is_empty() {
        visible
    } else {
        unskipped
    };
    let peak = pool.iter().copied().fold(0.0f32, f32::max);
    if peak > 0.0 { peak } else { 1.0 }
}

/// Draws the profile across `ui`'s width, `height` points tall, and applies the key axis
/// gestures on it (drag or scroll to pan, scroll or pinch to zoom, double-click for all keys).
pub fn score_profile(
    ui: &mut Ui,
    id_salt: impl std::hash::Hash + std::fmt::Debug,
    axis: &mut KeyViewport,
    inputs: &ProfileInputs<'_>,
    height: f32,
) -> Response {
    let rect = Rect::from_min_size(ui.cursor().min, vec2(ui.available_width(), height));
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
    for (band, share) in share_bands(inputs.kept, axis, rect) {
        painter.rect_filled(
            band,
            0.0,
            inputs.kept_colour.gamma_multiply(0.12 + 0.2 * share),
        );
    }
    paint_bands(&painter, rect, axis, inputs.marks, 0.35);

    let points = profile_points(inputs.scores, axis, rect.width().round() as usize);
    let peak = visible_peak(inputs.scores, axis, inputs.skip_first);
    let (start, end) = (axis.start(), axis.end());
    let line_colour = ui.visuals().strong_text_color();
    let label = inputs.label.to_owned();
    let response = ui
        .scope_builder(UiBuilder::new().max_rect(rect), |ui| {
            Plot::new(id_salt)
                .width(rect.width())
                .height(rect.height())
                .show_background(false)
                .show_axes(false)
                .show_grid(false)
                .show_x(false)
                .show_y(false)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .allow_boxed_zoom(false)
                .allow_double_click_reset(false)
                .set_margin_fraction(Vec2::ZERO)
                .show(ui, move |plot| {
                    plot.set_plot_bounds_x(start..=end);
                    plot.set_plot_bounds_y(0.0..=f64::from(peak) * 1.08);
                    plot.line(Line::new(label, points).color(line_colour).width(1.25));
                })
                .response
        })
        .inner;
    axis.interact(ui, &response);
    let name = format!("Score profile: {}", inputs.label);
    response.widget_info(|| WidgetInfo::labeled(Role::Image, true, &name));

    if let Some(key) = axis.marked() {
        paint_key_marker(&painter, rect, axis, key, ui.visuals().strong_text_color());
    }
    painter.text(
        rect.left_top() + vec2(4.0, 2.0),
        Align2::LEFT_TOP,
        format!("peak {}", format_value(peak)),
        FontId::proportional(10.0),
        ui.visuals().weak_text_color(),
    );
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
        StrokeKind::Inside,
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoomed_in_every_visible_key_is_a_point_at_its_centre() {
        let scores: Vec<f32> = (0..100).map(|k| k as f32).collect();
        let mut axis = KeyViewport::new(100);
        axis.set_range(10.0, 20.0);
        let points = profile_points(&scores, &axis, 200);
        let xs: Vec<f64> = points.iter().map(|p| p[0]).collect();
        let expected: Vec<f64> = (9..21).map(|k| k as f64 + 0.5).collect();
        assert_eq!(xs, expected);
        assert!(points.iter().all(|p| p[1] == p[0] - 0.5));
    }

    #[test]
    fn zoomed_out_each_column_keeps_its_largest_score() {
        // 1000 keys over 10 columns; one spike at key 437 and a dip at key 905.
        let mut scores = vec![1.0f32; 1000];
        scores[437] = 9.0;
        scores[905] = 0.25;
        let axis = KeyViewport::new(1000);
        let points = profile_points(&scores, &axis, 10);
        let expected: Vec<[f64; 2]> = (0..10)
            .map(|c| [100.0 * c as f64 + 50.0, if c == 4 { 9.0 } else { 1.0 }])
            .collect();
        assert_eq!(points, expected);
        // Zoomed in on keys 400..500 over 10 columns, the spike keeps its own column.
        let mut axis = KeyViewport::new(1000);
        axis.set_range(400.0, 500.0);
        let points = profile_points(&scores, &axis, 10);
        let spikes: Vec<f64> = points
            .iter()
            .filter(|p| p[1] == 9.0)
            .map(|p| p[0])
            .collect();
        assert_eq!(spikes, vec![435.0]);
    }

    #[test]
    fn the_peak_leaves_out_sinks_and_keys_out_of_view() {
        let mut scores = vec![0.1f32; 50];
        scores[0] = 5.0;
        scores[30] = 0.7;
        let mut axis = KeyViewport::new(50);
        assert_eq!(visible_peak(&scores, &axis, 1), 0.7);
        assert_eq!(visible_peak(&scores, &axis, 0), 5.0);
        axis.set_range(0.0, 10.0);
        assert_eq!(visible_peak(&scores, &axis, 1), 0.1);
        // Every visible key skipped: the sink sets the range.
        axis.set_range(0.0, 8.0);
        assert_eq!(visible_peak(&scores, &axis, 20), 5.0);
        assert_eq!(visible_peak(&[0.0; 4], &KeyViewport::new(4), 0), 1.0);
    }
}

//! Marked spans drawn on the key axis: a row of coloured ticks above a heatmap, outlined
//! columns over heatmaps and kept strips, translucent bands behind the score profiles.
//!
//! Every range is drawn at least a few pixels wide, so a one-token needle stays visible
//! among thousands of keys; ranges that meet on screen merge into one run.

use std::ops::Range;

use egui::{Color32, Painter, Rect, Stroke, StrokeKind};

use crate::app::key_viewport::KeyViewport;
use crate::app::marks::MarkedSpans;

/// Narrowest a run is drawn, in points.
pub const MIN_RUN_WIDTH: f32 = 3.0;

/// Runs closer than this on screen, in points, are drawn as one (a gap this narrow would not
/// show between two outlines anyway).
const MERGE_GAP: f32 = 1.0;

/// The horizontal extents (left, right) of `ranges` on screen, for `axis` drawn over
/// `[left, left + width]`: only those in view, each at least `min_width` wide (centred on the
/// range), merged when they overlap or less than a point lies between them. `ranges` must be
/// sorted by start.
pub fn screen_runs(
    ranges: &[Range<usize>],
    axis: &KeyViewport,
    left: f32,
    width: f32,
    min_width: f32,
) -> Vec<(f32, f32)> {
    let right_edge = left + width;
    let x_of = |key: usize| left + axis.fraction_of(key as f64) as f32 * width;
    let mut runs: Vec<(f32, f32)> = Vec::new();
    for range in ranges {
        let (mut from, mut to) = (x_of(range.start), x_of(range.end));
        if to - from < min_width {
            let middle = (from + to) / 2.0;
            from = middle - min_width / 2.0;
            to = middle + min_width / 2.0;
        }
        if to < left || from > right_edge {
            continue;
        }
        match runs.last_mut() {
            Some(last) if from <= last.1 + MERGE_GAP => last.1 = last.1.max(to),
            _ => runs.push((from, to)),
        }
    }
    runs
}

/// One lane per list across `rect` (the first list on top), each run a filled tick.
pub fn paint_tick_row(painter: &Painter, rect: Rect, axis: &KeyViewport, lists: &[&MarkedSpans]) {
    if lists.is_empty() {
        return;
    }
    let lane = rect.height() / lists.len() as f32;
    for (index, list) in lists.iter().enumerate() {
        let top = rect.top() + index as f32 * lane;
        for (from, to) in screen_runs(
            list.ranges(),
            axis,
            rect.left(),
            rect.width(),
            MIN_RUN_WIDTH,
        ) {
            let tick = Rect::from_x_y_ranges(from..=to, top..=top + lane);
            painter.rect_filled(tick.intersect(rect), 0.0, list.colour);
        }
    }
}

/// Outlines the runs of every list across the full height of `rect`: a dark halo under the
/// list's colour, so the outline reads on any colormap.
pub fn paint_outlines(painter: &Painter, rect: Rect, axis: &KeyViewport, lists: &[&MarkedSpans]) {
    let halo = Stroke::new(3.0, Color32::from_black_alpha(150));
    for list in lists {
        let stroke = Stroke::new(1.5, list.colour);
        for (from, to) in screen_runs(
            list.ranges(),
            axis,
            rect.left(),
            rect.width(),
            MIN_RUN_WIDTH,
        ) {
            let column = Rect::from_x_y_ranges(from..=to, rect.y_range());
            painter.rect_stroke(column, 0.0, halo, StrokeKind::Middle);
            painter.rect_stroke(column, 0.0, stroke, StrokeKind::Middle);
        }
    }
}

/// Fills the runs of every list across `rect` with the list's colour at `opacity`.
pub fn paint_bands(
    painter: &Painter,
    rect: Rect,
    axis: &KeyViewport,
    lists: &[&MarkedSpans],
    opacity: f32,
) {
    for list in lists {
        let fill = list.colour.gamma_multiply(opacity);
        for (from, to) in screen_runs(
            list.ranges(),
            axis,
            rect.left(),
            rect.width(),
            MIN_RUN_WIDTH,
        ) {
            let band = Rect::from_x_y_ranges(from..=to, rect.y_range());
            painter.rect_filled(band.intersect(rect), 0.0, fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_map_keys_to_points_and_keep_a_minimum_width() {
        // 1000 keys over 500 points: a key is half a point wide.
        let axis = KeyViewport::new(1000);
        let runs = screen_runs(&[100..120, 500..501], &axis, 10.0, 500.0, 3.0);
        assert_eq!(runs, vec![(60.0, 70.0), (258.75, 261.75)]);
    }

    #[test]
    fn runs_that_meet_on_screen_merge_and_those_out_of_view_are_skipped() {
        let mut axis = KeyViewport::new(1000);
        let runs = screen_runs(&[100..101, 102..103, 900..950], &axis, 0.0, 100.0, 3.0);
        // Keys 100 and 102 are 0.2 points apart: one run. So are runs less than a point apart.
        assert_eq!(runs.len(), 2);
        assert!((runs[0].0 - (10.05 - 1.5)).abs() < 1e-4);
        assert!((runs[0].1 - (10.25 + 1.5)).abs() < 1e-4);
        axis.set_range(0.0, 200.0);
        let runs = screen_runs(&[100..101, 900..950], &axis, 0.0, 200.0, 3.0);
        assert_eq!(runs, vec![(99.0, 102.0)]);
        let runs = screen_runs(&[10..20, 20..30, 31..40, 42..50], &axis, 0.0, 200.0, 3.0);
        assert_eq!(runs, vec![(10.0, 40.0), (42.0, 50.0)]);
    }
}

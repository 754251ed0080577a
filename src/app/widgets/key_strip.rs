//! Thin bands over the shared key axis: the kept/evicted strip under each heatmap and the
//! ruler with positions and the document, question and scaffold spans.

use egui::{Align2, Color32, FontId, Painter, Rect, Response, Sense, Stroke, Ui, vec2};

use crate::app::key_viewport::KeyViewport;
use crate::app::widgets::heatmap::paint_key_marker;
use crate::session::{Span, SpanKind};

/// Averages `values` (one per key) over the keys under each of `columns` pixel columns of the
/// visible range of `axis`.
pub fn column_means(values: &[f32], axis: &KeyViewport, columns: usize) -> Vec<f32> {
    let keys = values.len().min(axis.keys());
    (0..columns)
        .map(|c| {
            let from = axis.start() + axis.span() * c as f64 / columns as f64;
            let to = axis.start() + axis.span() * (c + 1) as f64 / columns as f64;
            let first = (from.floor().max(0.0) as usize).min(keys);
            let last = (to.ceil().max(0.0) as usize).clamp(first, keys);
            let slice = values.get(first..last).unwrap_or_default();
            if slice.is_empty() {
                0.0
            } else {
                slice.iter().sum::<f32>() / slice.len() as f32
            }
        })
        .collect()
}

/// Draws a strip over the key axis: `kept[key]` in `[0, 1]` (1 kept, 0 evicted, a fraction for
/// a share of heads) blended from the evicted colour to `colour`. Pointer gestures pan and zoom
/// the axis like on the heatmaps.
pub fn key_strip(
    ui: &mut Ui,
    axis: &mut KeyViewport,
    kept: &[f32],
    colour: Color32,
    height: f32,
) -> Response {
    let (rect, response) =
        ui.allocate_exact_size(vec2(ui.available_width(), height), Sense::click_and_drag());
    axis.interact(ui, &response);
    let painter = ui.painter_at(rect);
    let evicted = if ui.visuals().dark_mode {
        Color32::from_gray(45)
    } else {
        Color32::from_gray(215)
    };
    painter.rect_filled(rect, 0.0, evicted);
    for (band, share) in share_bands(kept, axis, rect) {
        painter.rect_filled(band, 0.0, lerp_colour(evicted, colour, share));
    }
    if let Some(key) = axis.marked() {
        paint_key_marker(&painter, rect, axis, key, ui.visuals().strong_text_color());
    }
    response
}

/// The rectangles of `rect` where `shares` (one per key) is above zero under the visible range
/// of `axis`, each with the share of its pixel columns in sixteen steps: neighbouring columns
/// of the same step merge into one rectangle, so a strip costs a few shapes at any zoom.
pub fn share_bands(shares: &[f32], axis: &KeyViewport, rect: Rect) -> Vec<(Rect, f32)> {
    let columns = (rect.width().max(1.0)).round() as usize;
    let means = column_means(shares, axis, columns);
    let column_width = rect.width() / columns as f32;
    let mut bands = Vec::new();
    let mut run_start = 0;
    while run_start < means.len() {
        let level = quantise(means[run_start]);
        let run_end = (run_start..means.len())
            .find(|&c| quantise(means[c]) != level)
            .unwrap_or(means.len());
        if level > 0 {
            let band = Rect::from_x_y_ranges(
                rect.left() + run_start as f32 * column_width
                    ..=rect.left() + run_end as f32 * column_width,
                rect.y_range(),
            );
            bands.push((band, f32::from(level) / 16.0));
        }
        run_start = run_end;
    }
    bands
}

/// Sixteen steps of a share, so runs of similar columns merge into one rectangle.
fn quantise(share: f32) -> u8 {
    (share.clamp(0.0, 1.0) * 16.0).round() as u8
}

fn lerp_colour(from: Color32, to: Color32, t: f32) -> Color32 {
    let mix = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * t).round() as u8;
    Color32::from_rgb(
        mix(from.r(), to.r()),
        mix(from.g(), to.g()),
        mix(from.b(), to.b()),
    )
}

/// The colour a span kind is marked with on the ruler.
pub fn span_band_colour(kind: SpanKind, dark: bool) -> Color32 {
    match (kind, dark) {
        (SpanKind::Document, true) => Color32::from_rgb(90, 110, 140),
        (SpanKind::Document, false) => Color32::from_rgb(170, 190, 220),
        (SpanKind::Question, _) => Color32::from_rgb(230, 160, 40),
        (SpanKind::Scaffold, true) => Color32::from_gray(80),
        (SpanKind::Scaffold, false) => Color32::from_gray(190),
    }
}

/// The ruler under the panels: the spans of the prompt as coloured bands, then tick marks with
/// key positions. Gestures pan and zoom the axis.
pub fn key_ruler(ui: &mut Ui, axis: &mut KeyViewport, spans: &[Span]) -> Response {
    let (rect, response) =
        ui.allocate_exact_size(vec2(ui.available_width(), 26.0), Sense::click_and_drag());
    axis.interact(ui, &response);
    let painter = ui.painter_at(rect);
    let dark = ui.visuals().dark_mode;
    let band = Rect::from_min_size(rect.min, vec2(rect.width(), 5.0));
    let x_of = |key: f64| rect.left() + axis.fraction_of(key) as f32 * rect.width();
    for span in spans {
        let (left, right) = (x_of(span.start as f64), x_of(span.end as f64));
        if right >= rect.left() && left <= rect.right() {
            let r = Rect::from_x_y_ranges(left..=right, band.y_range());
            painter.rect_filled(r, 0.0, span_band_colour(span.kind, dark));
        }
    }
    paint_ticks(&painter, rect, axis, ui.visuals().text_color());
    if let Some(key) = axis.marked() {
        paint_key_marker(&painter, band, axis, key, ui.visuals().strong_text_color());
    }
    response
}

/// A "nice" step (1, 2 or 5 × 10^k keys) giving about one label per 90 points.
pub fn tick_step(span: f64, width: f32) -> usize {
    let target = span / f64::from((width / 90.0).max(1.0));
    let magnitude = 10f64.powf(target.max(1.0).log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= target)
        .unwrap_or(10.0 * magnitude);
    (step as usize).max(1)
}

fn paint_ticks(painter: &Painter, rect: Rect, axis: &KeyViewport, colour: Color32) {
    let step = tick_step(axis.span(), rect.width());
    let first = (axis.start() / step as f64).ceil() as usize * step;
    let stroke = Stroke::new(1.0, colour.gamma_multiply(0.6));
    let mut key = first;
    while (key as f64) <= axis.end() {
        let x = rect.left() + axis.fraction_of(key as f64) as f32 * rect.width();
        painter.vline(x, rect.top() + 6.0..=rect.top() + 11.0, stroke);
        let align = if x < rect.left() + 12.0 {
            Align2::LEFT_TOP
        } else if x > rect.right() - 12.0 {
            Align2::RIGHT_TOP
        } else {
            Align2::CENTER_TOP
        };
        painter.text(
            egui::pos2(x, rect.top() + 12.0),
            align,
            key.to_string(),
            FontId::proportional(10.0),
            colour,
        );
        key += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_means_average_the_keys_under_each_column() {
        let kept: Vec<f32> = (0..100).map(|k| if k < 25 { 1.0 } else { 0.0 }).collect();
        let axis = KeyViewport::new(100);
        let means = column_means(&kept, &axis, 4);
        assert_eq!(means, vec![1.0, 0.0, 0.0, 0.0]);
        // Zoomed in past one key per column, every column still reads its key.
        let mut axis = KeyViewport::new(100);
        axis.set_range(20.0, 30.0);
        let means = column_means(&kept, &axis, 20);
        assert_eq!(means.len(), 20);
        assert_eq!(means[9], 1.0);
        assert_eq!(means[10], 0.0);
    }

    #[test]
    fn share_bands_merge_columns_of_one_step() {
        // Keys 0..50 kept by every head, 50..75 by half of them, the rest evicted.
        let shares: Vec<f32> = (0..100)
            .map(|k| match k {
                0..50 => 1.0,
                50..75 => 0.5,
                _ => 0.0,
            })
            .collect();
        let rect = Rect::from_min_size(egui::pos2(10.0, 0.0), vec2(8.0, 4.0));
        let bands = share_bands(&shares, &KeyViewport::new(100), rect);
        assert_eq!(bands.len(), 2);
        assert_eq!(bands[0].0.x_range(), egui::Rangef::new(10.0, 14.0));
        assert_eq!(bands[0].1, 1.0);
        assert_eq!(bands[1].0.x_range(), egui::Rangef::new(14.0, 16.0));
        assert_eq!(bands[1].1, 0.5);
    }

    #[test]
    fn tick_steps_are_round_numbers() {
        assert_eq!(tick_step(8192.0, 900.0), 1000);
        assert_eq!(tick_step(100.0, 900.0), 10);
        assert_eq!(tick_step(100.0, 300.0), 50);
        assert_eq!(tick_step(5.0, 900.0), 1);
    }
}

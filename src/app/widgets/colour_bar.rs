//! The colour bar: the colormap from low to high attention, with the scale's tick labels.

use egui::{Align2, FontId, Rect, Response, Sense, Stroke, Ui, pos2, vec2};

use crate::app::widgets::heatmap::ColourLut;
use crate::export::ColourScale;

/// Draws a horizontal colour bar `width` points wide with tick labels under it; hovering it
/// describes the scale.
pub fn colour_bar(ui: &mut Ui, scale: &ColourScale, lut: &ColourLut, width: f32) -> Response {
    let (rect, response) = ui.allocate_exact_size(vec2(width, 24.0), Sense::hover());
    let painter = ui.painter_at(rect.expand2(vec2(12.0, 0.0)));
    let bar = Rect::from_min_size(rect.min + vec2(0.0, 1.0), vec2(width, 10.0));
    let steps = 64;
    for i in 0..steps {
        let t0 = i as f32 / steps as f32;
        let t1 = (i + 1) as f32 / steps as f32;
        let r = Rect::from_x_y_ranges(
            bar.left() + t0 * width..=bar.left() + t1 * width + 0.5,
            bar.y_range(),
        );
        painter.rect_filled(r, 0.0, lut.at((t0 + t1) / 2.0));
    }
    let text = ui.visuals().text_color();
    painter.rect_stroke(
        bar,
        0.0,
        Stroke::new(1.0, text.gamma_multiply(0.4)),
        egui::StrokeKind::Outside,
    );
    for (t, label) in scale.ticks() {
        let x = bar.left() + t * width;
        let align = if t <= 0.0 {
            Align2::LEFT_TOP
        } else if t >= 1.0 {
            Align2::RIGHT_TOP
        } else {
            Align2::CENTER_TOP
        };
        painter.text(
            pos2(x, bar.bottom() + 1.0),
            align,
            label,
            FontId::proportional(10.0),
            text,
        );
    }
    response.on_hover_text(format!("Colour scale: {}", scale.describe()))
}

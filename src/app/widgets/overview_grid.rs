//! The layers × heads overview: one cell per head, coloured by a metric; click to pick a head.

use egui::{Align2, FontId, Rect, Sense, Stroke, Ui, pos2, vec2};
use ndarray::Array2;

use crate::app::widgets::heatmap::ColourLut;
use crate::attention::Pick;

/// What the user picked in the grid this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridPick {
    /// One head of one layer.
    Head {
        /// Layer.
        layer: usize,
        /// Query head.
        head: usize,
    },
    /// Every head of one layer.
    Layer(usize),
}

/// Draws `values` (`[layers, heads]`, in `[0, 1]`, NaN for none) as a grid of cells, layers
/// down and heads across, framing the selected layer and head. `label` names the metric in
/// tooltips.
pub fn overview_grid(
    ui: &mut Ui,
    values: &Array2<f32>,
    lut: &ColourLut,
    selected: (Pick, Pick),
    label: &str,
) -> Option<GridPick> {
    let (layers, heads) = values.dim();
    if layers == 0 || heads == 0 {
        return None;
    }
    let gutter = 22.0;
    let header = 12.0;
    let cell_w = ((ui.available_width() - gutter) / heads as f32).clamp(6.0, 18.0);
    let cell_h = (cell_w * 0.45).clamp(4.0, 8.0);
    let size = vec2(
        gutter + cell_w * heads as f32,
        header + cell_h * layers as f32,
    );
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    let painter = ui.painter_at(rect);
    let text = ui.visuals().text_color();
    let small = FontId::proportional(9.0);
    let cell_rect = |layer: usize, head: usize| {
        Rect::from_min_size(
            pos2(
                rect.left() + gutter + head as f32 * cell_w,
                rect.top() + header + layer as f32 * cell_h,
            ),
            vec2(cell_w, cell_h),
        )
    };
    for head in 0..heads {
        if heads <= 16 || head % 4 == 0 {
            let x = rect.left() + gutter + (head as f32 + 0.5) * cell_w;
            painter.text(
                pos2(x, rect.top()),
                Align2::CENTER_TOP,
                head.to_string(),
                small.clone(),
                text,
            );
        }
    }
    let label_every = if cell_h >= 9.0 { 1 } else { 5 };
    for layer in 0..layers {
        if layer % label_every == 0 {
            let y = rect.top() + header + (layer as f32 + 0.5) * cell_h;
            painter.text(
                pos2(rect.left() + gutter - 3.0, y),
                Align2::RIGHT_CENTER,
                layer.to_string(),
                small.clone(),
                text,
            );
        }
        for head in 0..heads {
            let value = values[[layer, head]];
            let fill = if value.is_nan() {
                ui.visuals().faint_bg_color
            } else {
                lut.at(value)
            };
            painter.rect_filled(cell_rect(layer, head).shrink(0.5), 0.0, fill);
        }
    }
    let highlight = Stroke::new(1.5, ui.visuals().strong_text_color());
    let (layer_pick, head_pick) = selected;
    let layer_rows = match layer_pick.index(layers) {
        Some(l) => l..l + 1,
        None => 0..layers,
    };
    let head_cols = match head_pick.index(heads) {
        Some(h) => h..h + 1,
        None => 0..heads,
    };
    let frame = cell_rect(layer_rows.start, head_cols.start)
        .union(cell_rect(layer_rows.end - 1, head_cols.end - 1));
    painter.rect_stroke(frame, 0.0, highlight, egui::StrokeKind::Outside);

    let pointer = response.hover_pos()?;
    let layer = ((pointer.y - rect.top() - header) / cell_h).floor();
    let column = ((pointer.x - rect.left() - gutter) / cell_w).floor();
    if layer < 0.0 || layer as usize >= layers {
        return None;
    }
    let layer = layer as usize;
    if column < 0.0 {
        let response =
            response.on_hover_text(format!("Layer {layer}: click to show all its heads"));
        return response.clicked().then_some(GridPick::Layer(layer));
    }
    let head = (column as usize).min(heads - 1);
    let value = values[[layer, head]];
    let shown = if value.is_nan() {
        "n/a".to_owned()
    } else {
        format!("{value:.3}")
    };
    let response = response.on_hover_text(format!("Layer {layer}, head {head}\n{label}: {shown}"));
    response.clicked().then_some(GridPick::Head { layer, head })
}

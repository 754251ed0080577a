//! A needle grid drawn from its scores, as the needle figures draw it: depth across, context
//! length down, each cell in the figures' score colour with its value when it fits. Every cell
//! is a button (named by its length and depth for screen readers and tests).

use std::f32::consts::FRAC_PI_2;

use egui::epaint::TextShape;
use egui::{Align2, Color32, FontId, Rect, Sense, Stroke, StrokeKind, Ui, pos2, vec2};

use crate::export::task_figures::{NeedleGrid, score_rgb};

/// Width of the column of length labels and the axis title left of the cells.
const LEFT: f32 = 64.0;
/// Height of the row of depth labels and the axis title under the cells.
const BOTTOM: f32 = 34.0;

/// The name of cell (`row`, `column`) of `grid`: `length 2048, depth 50%`.
pub fn cell_name(grid: &NeedleGrid, row: usize, column: usize) -> String {
    let length = grid.lengths.get(row).copied().unwrap_or_default();
    let depth = grid.depths.get(column).copied().unwrap_or_default();
    format!("length {length}, depth {depth}%")
}

/// Text that reads on `fill`: white on dark colours, black on light ones.
fn text_on(fill: Color32) -> Color32 {
    let [r, g, b, _] = fill.to_array().map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b < 110.0 {
        Color32::WHITE
    } else {
        Color32::BLACK
    }
}

/// Draws `grid` filling the width available, framing the `selected` cell; returns the cell
/// clicked this frame as (row, column).
pub fn needle_grid(
    ui: &mut Ui,
    grid: &NeedleGrid,
    selected: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let (rows, columns) = (grid.lengths.len(), grid.depths.len());
    if rows == 0 || columns == 0 {
        return None;
    }
    let cell_w = ((ui.available_width() - LEFT) / columns as f32).clamp(14.0, 64.0);
    let cell_h = (cell_w * 0.6).clamp(14.0, 28.0);
    let size = vec2(
        LEFT + cell_w * columns as f32,
        cell_h * rows as f32 + BOTTOM,
    );
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect.expand(1.0));
    let text = ui.visuals().text_color();
    let small = FontId::proportional(11.0);
    let cells = Rect::from_min_size(
        pos2(rect.left() + LEFT, rect.top()),
        vec2(cell_w * columns as f32, cell_h * rows as f32),
    );
    let cell_rect = |row: usize, column: usize| {
        Rect::from_min_size(
            pos2(
                cells.left() + column as f32 * cell_w,
                cells.top() + row as f32 * cell_h,
            ),
            vec2(cell_w, cell_h),
        )
    };
    let row_step = (14.0 / cell_h).ceil().max(1.0) as usize;
    for (row, length) in grid.lengths.iter().enumerate().step_by(row_step) {
        painter.text(
            pos2(cells.left() - 4.0, cell_rect(row, 0).center().y),
            Align2::RIGHT_CENTER,
            length.to_string(),
            small.clone(),
            text,
        );
    }
    let column_step = (28.0 / cell_w).ceil().max(1.0) as usize;
    for (column, depth) in grid.depths.iter().enumerate().step_by(column_step) {
        painter.text(
            pos2(cell_rect(0, column).center().x, cells.bottom() + 3.0),
            Align2::CENTER_TOP,
            depth.to_string(),
            small.clone(),
            text,
        );
    }
    painter.text(
        pos2(cells.center().x, rect.bottom()),
        Align2::CENTER_BOTTOM,
        "needle depth (%)",
        small.clone(),
        text,
    );
    let title = painter.layout_no_wrap("context length (tokens)".to_owned(), small.clone(), text);
    // Turned a quarter left about its top-left corner, the title reads upwards from there.
    let title_pos = pos2(rect.left(), cells.center().y + title.size().x / 2.0);
    painter.add(TextShape::new(title_pos, title, text).with_angle(-FRAC_PI_2));

    let show_values = cell_w >= 30.0 && cell_h >= 14.0;
    let mut clicked = None;
    for row in 0..rows {
        for column in 0..columns {
            let score = grid
                .scores
                .get(row)
                .and_then(|r| r.get(column))
                .copied()
                .flatten();
            let [r, g, b] = score_rgb(score);
            let fill = Color32::from_rgb(r, g, b);
            let cell = cell_rect(row, column);
            painter.rect_filled(cell, 0.0, fill);
            if show_values {
                let value = score.map_or_else(|| "–".to_owned(), |s| format!("{s:.2}"));
                painter.text(
                    cell.center(),
                    Align2::CENTER_CENTER,
                    value,
                    small.clone(),
                    text_on(fill),
                );
            }
            let name = cell_name(grid, row, column);
            let samples = grid
                .sample_ids
                .get(row)
                .and_then(|r| r.get(column))
                .map_or(0, Vec::len);
            let response = ui
                .interact(
                    cell,
                    ui.scope_id().with(("needle_cell", row, column)),
                    Sense::click(),
                )
                .on_hover_text(format!(
                    "{name}\nscore {}\n{samples} sample{}; click to open {}",
                    score.map_or_else(|| "none".to_owned(), |s| format!("{s:.3}")),
                    if samples == 1 { "" } else { "s" },
                    if samples == 1 { "it" } else { "one" },
                ));
            response
                .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, name.clone()));
            if response.clicked() {
                clicked = Some((row, column));
            }
        }
    }
    painter.rect_stroke(
        cells,
        0.0,
        Stroke::new(1.0, ui.visuals().weak_text_color()),
        StrokeKind::Outside,
    );
    if let Some((row, column)) = selected.filter(|&(r, c)| r < rows && c < columns) {
        painter.rect_stroke(
            cell_rect(row, column),
            0.0,
            Stroke::new(2.0, ui.visuals().strong_text_color()),
            StrokeKind::Inside,
        );
    }
    clicked
}

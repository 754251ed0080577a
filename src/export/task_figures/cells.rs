//! What the needle figures share: the score colours, one grid drawn as cells with its values,
//! the score colour bar and the "no data" key.

use crate::export::ExportError;
use crate::export::colormap::{ColorScale, Colormap, ScaleMode};
use crate::export::svg_doc::{
    BAR_W, FRAME, LABEL_SIZE, Svg, TEXT, TICK_LEN, TICK_SIZE, bar_ticks, hex, text_width,
};
use crate::export::task_figures::needle_grid::NeedleGrid;

/// Scores from 0 (dark red) through 0.5 (yellow) to 1 (dark green).
pub(super) const SCORE_SCALE: ColorScale = ColorScale {
    kind: ScaleMode::Linear,
    min: 0.0,
    max: 1.0,
    colormap: Colormap::RdYlGn,
};

/// The fill of a cell with no score: a neutral grey that is no colour of the score scale.
pub const NO_DATA_RGB: [u8; 3] = [204, 204, 204];

/// Gap between the heatmaps and the colour bar.
const BAR_GAP: f32 = 10.0;

/// The label of the score colour bar.
const BAR_LABEL: &str = "score";

/// A rectangle in points.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// The colour of a score in the needle figures (`None`: no data), for viewers that draw the
/// grids themselves.
pub fn score_rgb(score: Option<f64>) -> [u8; 3] {
    match score {
        Some(score) => SCORE_SCALE.color(score as f32, 1.0),
        None => NO_DATA_RGB,
    }
}

/// The size of the values written in cells of `w × h` points, or `None` when "0.00" does not
/// fit legibly.
pub(super) fn value_size(w: f32, h: f32) -> Option<f32> {
    let size = TICK_SIZE.min(h * 0.6);
    (size >= 4.5 && text_width("0.00", size) <= w * 0.92).then_some(size)
}

/// Text that reads on `rgb`: white on dark colours, the text colour on light ones.
fn text_colour(rgb: [u8; 3]) -> &'static str {
    let [r, g, b] = rgb.map(f32::from);
    if 0.299 * r + 0.587 * g + 0.114 * b < 110.0 {
        "#ffffff"
    } else {
        TEXT
    }
}

/// Draws `grid` as cells filling `rect` (row `i` is `lengths[i]` from the top, column `j` is
/// `depths[j]` from the left), each with the id `cell-{panel}-{i}-{j}`, with the scores
/// written in the cells when they fit and a frame around.
pub(super) fn draw_cells(svg: &mut Svg, grid: &NeedleGrid, panel: usize, rect: Rect) {
    let (rows, columns) = (grid.lengths.len(), grid.depths.len());
    let (cw, ch) = (rect.w / columns as f32, rect.h / rows as f32);
    let size = value_size(cw, ch);
    for (i, row) in grid.scores.iter().enumerate() {
        for (j, &score) in row.iter().enumerate() {
            let (x, y) = (rect.x + j as f32 * cw, rect.y + i as f32 * ch);
            let rgb = score_rgb(score);
            svg.cell(&format!("cell-{panel}-{i}-{j}"), x, y, cw, ch, &hex(rgb));
            if let Some(size) = size {
                let text = score.map_or_else(|| "–".to_owned(), |s| format!("{s:.2}"));
                let fill = format!("fill=\"{}\"", text_colour(rgb));
                svg.text(
                    x + cw / 2.0,
                    y + ch / 2.0 + size * 0.35,
                    size,
                    "middle",
                    &text,
                    &fill,
                );
            }
        }
    }
    svg.frame(rect.x, rect.y, rect.w, rect.h);
}

/// Indices of the labels to draw along an axis of `count` slots `slot` points apart when a
/// label needs `needed` points: every one when they fit, else every k-th, the first always.
pub(super) fn thinned(count: usize, slot: f32, needed: f32) -> impl Iterator<Item = usize> {
    let step = if slot >= needed {
        1
    } else {
        (needed / slot.max(1e-3)).ceil() as usize
    };
    (0..count).step_by(step.max(1))
}

/// Draws the depth ticks and labels under a grid whose bottom edge is at `bottom`.
pub(super) fn depth_axis(svg: &mut Svg, grid: &NeedleGrid, rect: Rect, bottom: f32) {
    let cw = rect.w / grid.depths.len() as f32;
    let needed = text_width("100", TICK_SIZE) + 3.0;
    for j in thinned(grid.depths.len(), cw, needed) {
        let x = rect.x + (j as f32 + 0.5) * cw;
        svg.line(x, bottom, x, bottom + TICK_LEN);
        let baseline = bottom + TICK_LEN + 1.0 + TICK_SIZE * 0.8;
        svg.text(
            x,
            baseline,
            TICK_SIZE,
            "middle",
            &grid.depths[j].to_string(),
            "",
        );
    }
}

/// Draws the length ticks and labels left of a grid.
pub(super) fn length_axis(svg: &mut Svg, grid: &NeedleGrid, rect: Rect) {
    let ch = rect.h / grid.lengths.len() as f32;
    for i in thinned(grid.lengths.len(), ch, TICK_SIZE * 1.15) {
        let y = rect.y + (i as f32 + 0.5) * ch;
        svg.line(rect.x - TICK_LEN, y, rect.x, y);
        svg.text(
            rect.x - TICK_LEN - 1.5,
            y + TICK_SIZE * 0.35,
            TICK_SIZE,
            "end",
            &grid.lengths[i].to_string(),
            "",
        );
    }
}

/// Width the length labels of `grid` need left of its cells, ticks included.
pub(super) fn length_labels_width(grid: &NeedleGrid) -> f32 {
    let widest = grid
        .lengths
        .iter()
        .map(|l| text_width(&l.to_string(), TICK_SIZE))
        .fold(0.0, f32::max);
    widest + 1.5 + TICK_LEN
}

/// Width the score colour bar takes right of the heatmaps, its gap included.
pub(super) fn score_bar_width() -> f32 {
    let labels = bar_ticks(&SCORE_SCALE)
        .iter()
        .map(|(_, label)| label.width())
        .fold(0.0, f32::max);
    BAR_GAP + BAR_W + TICK_LEN + 1.5 + labels + 4.0 + LABEL_SIZE
}

/// Draws the score colour bar beside heatmaps spanning `top..top + h`, ending at `right`, and
/// under it the "no data" key when `no_data` says some cell is empty.
pub(super) fn score_bar(
    svg: &mut Svg,
    right: f32,
    top: f32,
    h: f32,
    no_data: bool,
) -> Result<(), ExportError> {
    let x = right - score_bar_width() + BAR_GAP;
    let ticks = bar_ticks(&SCORE_SCALE);
    svg.colour_bar(
        (x, top, h),
        &SCORE_SCALE,
        &ticks,
        BAR_LABEL,
        right - LABEL_SIZE * 0.2,
    )?;
    if no_data {
        let y = top + h + TICK_SIZE + 6.0;
        svg.rect(x, y - BAR_W, BAR_W, BAR_W, &hex(NO_DATA_RGB), FRAME);
        svg.text(x + BAR_W + 2.0, y - 0.8, TICK_SIZE, "start", "no data", "");
    }
    Ok(())
}

/// Whether any cell of `grids` has no score.
pub(super) fn any_empty<'a>(grids: impl IntoIterator<Item = &'a NeedleGrid>) -> bool {
    grids
        .into_iter()
        .flat_map(|g| g.scores.iter().flatten())
        .any(Option::is_none)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_take_the_red_yellow_green_colours() {
        // ColorBrewer's RdYlGn ends and middle: #a50026, #ffffbf, #006837.
        assert_eq!(score_rgb(Some(0.0)), [165, 0, 38]);
        assert_eq!(score_rgb(Some(0.5)), [255, 255, 191]);
        assert_eq!(score_rgb(Some(1.0)), [0, 104, 55]);
        assert_eq!(score_rgb(None), NO_DATA_RGB);
        assert_eq!(text_colour(score_rgb(Some(0.0))), "#ffffff");
        assert_eq!(text_colour(score_rgb(Some(0.5))), TEXT);
        assert_eq!(text_colour(score_rgb(Some(1.0))), "#ffffff");
    }

    #[test]
    fn values_are_written_only_where_they_fit() {
        assert!(value_size(30.0, 14.0).is_some());
        assert!(value_size(8.0, 14.0).is_none(), "too narrow");
        assert!(value_size(30.0, 6.0).is_none(), "too low");
    }

    #[test]
    fn crowded_labels_are_thinned_keeping_the_first() {
        assert_eq!(thinned(5, 10.0, 8.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert_eq!(thinned(11, 5.0, 12.0).collect::<Vec<_>>(), [0, 3, 6, 9]);
    }
}

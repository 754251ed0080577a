//! One method at one budget over the needle grid, as in the needle-in-a-haystack tool and the
//! Judge Q paper: depth (%) across, context length (tokens) down, each cell coloured by its
//! score with the value written in it when it fits.

use crate::export::ExportError;
use crate::export::svg_doc::{LABEL_SIZE, Svg, TICK_LEN, TICK_SIZE, fit_size};
use crate::export::task_figures::cells::{
    Rect, any_empty, depth_axis, draw_cells, length_axis, length_labels_width, score_bar,
    score_bar_width,
};
use crate::export::task_figures::needle_grid::NeedleGrid;
use crate::export::task_figures::{HeatmapBox, Laid};

/// Figure width in millimetres.
const WIDTH_MM: f32 = 120.0;
const MARGIN: f32 = 8.0;
const TITLE_SIZE: f32 = 9.5;
const SUBTITLE_SIZE: f32 = 8.0;

/// The heatmap of one grid, laid out.
pub(super) struct NeedleHeatmap<'a> {
    title: &'a str,
    grid: &'a NeedleGrid,
    width: f32,
    height: f32,
    title_baseline: Option<f32>,
    subtitle_baseline: f32,
    cells: Rect,
}

impl<'a> NeedleHeatmap<'a> {
    /// Lays out `grid` under `title` (none when empty).
    pub(super) fn new(title: &'a str, grid: &'a NeedleGrid) -> Result<Self, ExportError> {
        grid.validate()?;
        let width = WIDTH_MM / 25.4 * 72.0;
        let mut y = MARGIN;
        let title_baseline = (!title.trim().is_empty()).then(|| {
            let baseline = y + TITLE_SIZE;
            y += TITLE_SIZE + 4.0;
            baseline
        });
        let subtitle_baseline = y + SUBTITLE_SIZE;
        y += SUBTITLE_SIZE + 5.0;
        let left = MARGIN + LABEL_SIZE + 3.0 + length_labels_width(grid);
        let cells_w = width - left - MARGIN - score_bar_width();
        let cell_w = cells_w / grid.depths.len() as f32;
        let cell_h = (cell_w * 0.6).clamp(8.0, 22.0);
        let cells = Rect {
            x: left,
            y,
            w: cells_w,
            h: cell_h * grid.lengths.len() as f32,
        };
        // Ticks, their labels and the axis label (the "no data" key beside them fits).
        y += cells.h + TICK_LEN + 2.0 + TICK_SIZE + LABEL_SIZE + 4.0;
        Ok(Self {
            title,
            grid,
            width,
            height: y + MARGIN,
            title_baseline,
            subtitle_baseline,
            cells,
        })
    }
}

impl Laid for NeedleHeatmap<'_> {
    fn size_mm(&self) -> (f32, f32) {
        (WIDTH_MM, self.height / 72.0 * 25.4)
    }

    fn size(&self) -> (f32, f32) {
        (self.width, self.height)
    }

    fn heatmaps(&self) -> Vec<HeatmapBox> {
        vec![HeatmapBox::of(self.grid, 0, self.cells)]
    }

    fn draw(&self, svg: &mut Svg) -> Result<(), ExportError> {
        let centre = self.width / 2.0;
        let text_w = self.width - 2.0 * MARGIN;
        if let Some(baseline) = self.title_baseline {
            let size = fit_size(self.title, TITLE_SIZE, text_w);
            svg.text(centre, baseline, size, "middle", self.title, "");
        }
        let subtitle = format!("{} · {}", self.grid.method, self.grid.budget_label());
        let size = fit_size(&subtitle, SUBTITLE_SIZE, text_w);
        let cells_centre = self.cells.x + self.cells.w / 2.0;
        svg.text(
            cells_centre,
            self.subtitle_baseline,
            size,
            "middle",
            &subtitle,
            "",
        );

        draw_cells(svg, self.grid, 0, self.cells);
        let bottom = self.cells.y + self.cells.h;
        depth_axis(svg, self.grid, self.cells, bottom);
        length_axis(svg, self.grid, self.cells);
        let label_y = bottom + TICK_LEN + 2.0 + TICK_SIZE + LABEL_SIZE + 1.0;
        svg.text(
            cells_centre,
            label_y,
            LABEL_SIZE,
            "middle",
            "needle depth (%)",
            "",
        );
        let label = "context length (tokens)";
        let size = fit_size(label, LABEL_SIZE, self.cells.h + 20.0);
        svg.vertical_text(
            MARGIN + LABEL_SIZE * 0.85,
            self.cells.y + self.cells.h / 2.0,
            size,
            "middle",
            label,
            "",
        );
        score_bar(
            svg,
            self.width - MARGIN,
            self.cells.y,
            self.cells.h,
            any_empty([self.grid]),
        )
    }
}

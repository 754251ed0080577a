//! Every method at every budget on one page, for README and papers: methods as rows, budgets
//! as columns (the full cache last), one needle heatmap in each slot that has a grid.

use crate::export::ExportError;
use crate::export::svg_doc::{LABEL_SIZE, Svg, TICK_LEN, TICK_SIZE, fit_size, text_width};
use crate::export::task_figures::cells::{
    Rect, any_empty, depth_axis, draw_cells, length_axis, length_labels_width, score_bar,
    score_bar_width,
};
use crate::export::task_figures::needle_grid::{NeedleGrid, budget_label};
use crate::export::task_figures::{HeatmapBox, Laid};
use crate::policy::AskedBudget;

/// Figure width in millimetres: a full page width.
const WIDTH_MM: f32 = 180.0;
const MARGIN: f32 = 8.0;
const TITLE_SIZE: f32 = 9.5;
const HEADING_SIZE: f32 = 7.5;
const COLUMN_GAP: f32 = 6.0;
const ROW_GAP: f32 = 5.0;

/// The overview of several grids, laid out.
pub(super) struct NeedleOverview<'a> {
    title: &'a str,
    grids: &'a [NeedleGrid],
    methods: Vec<&'a str>,
    budgets: Vec<Option<AskedBudget>>,
    width: f32,
    height: f32,
    title_baseline: Option<f32>,
    heading_baseline: f32,
    /// Left edge of the method names, and their width.
    names_x: f32,
    /// Left edge of the first column, the width of a panel and the height of a row.
    first_x: f32,
    panel_w: f32,
    panel_h: f32,
    top: f32,
}

impl<'a> NeedleOverview<'a> {
    /// Lays out `grids` under `title` (none when empty): one row per method in order of first
    /// appearance, one column per budget in increasing order with the full cache last.
    pub(super) fn new(title: &'a str, grids: &'a [NeedleGrid]) -> Result<Self, ExportError> {
        let invalid = |reason: String| Err(ExportError::InvalidFigure(reason));
        let Some(first) = grids.first() else {
            return invalid("a needle overview needs at least one grid".to_owned());
        };
        let mut methods: Vec<&str> = Vec::new();
        let mut budgets: Vec<Option<AskedBudget>> = Vec::new();
        for (n, grid) in grids.iter().enumerate() {
            grid.validate()?;
            if grid.lengths != first.lengths || grid.depths != first.depths {
                return invalid(format!(
                    "the needle grid of {:?} at {} has other lengths or depths than that of {:?} \
                     at {}; an overview shares one grid",
                    grid.method,
                    grid.budget_label(),
                    first.method,
                    first.budget_label()
                ));
            }
            if grids[..n]
                .iter()
                .any(|g| g.method == grid.method && g.asked() == grid.asked())
            {
                return invalid(format!(
                    "{:?} at {} is given twice",
                    grid.method,
                    grid.budget_label()
                ));
            }
            if !methods.contains(&grid.method.as_str()) {
                methods.push(&grid.method);
            }
            if !budgets.contains(&grid.asked()) {
                budgets.push(grid.asked());
            }
        }
        // From the smallest cache to the largest, the full cache last.
        budgets.sort_by(|a, b| {
            let size = |x: &Option<AskedBudget>| x.map_or(f64::INFINITY, AskedBudget::size);
            size(a).total_cmp(&size(b))
        });

        let width = WIDTH_MM / 25.4 * 72.0;
        let mut y = MARGIN;
        let title_baseline = (!title.trim().is_empty()).then(|| {
            let baseline = y + TITLE_SIZE;
            y += TITLE_SIZE + 4.0;
            baseline
        });
        let heading_baseline = y + HEADING_SIZE;
        y += HEADING_SIZE + 4.0;
        let names_x = MARGIN + LABEL_SIZE + 3.0;
        let names_w = methods
            .iter()
            .map(|m| text_width(m, HEADING_SIZE))
            .fold(0.0, f32::max)
            .min(width * 0.2);
        let first_x = names_x + names_w + 3.0 + length_labels_width(first);
        let columns = budgets.len() as f32;
        let panel_w =
            (width - first_x - MARGIN - score_bar_width() - (columns - 1.0) * COLUMN_GAP) / columns;
        if panel_w < 20.0 {
            return invalid(format!(
                "{} budgets do not fit side by side on a page",
                budgets.len()
            ));
        }
        let cell_h = (panel_w / first.depths.len() as f32 * 0.6).clamp(3.0, 14.0);
        let panel_h = cell_h * first.lengths.len() as f32;
        let top = y;
        let rows = methods.len() as f32;
        y += rows * panel_h + (rows - 1.0) * ROW_GAP;
        y += TICK_LEN + 2.0 + TICK_SIZE + LABEL_SIZE + 4.0;
        Ok(Self {
            title,
            grids,
            methods,
            budgets,
            width,
            height: y + MARGIN,
            title_baseline,
            heading_baseline,
            names_x,
            first_x,
            panel_w,
            panel_h,
            top,
        })
    }

    /// The cells of method row `row`, budget column `column`.
    fn panel(&self, row: usize, column: usize) -> Rect {
        Rect {
            x: self.first_x + column as f32 * (self.panel_w + COLUMN_GAP),
            y: self.top + row as f32 * (self.panel_h + ROW_GAP),
            w: self.panel_w,
            h: self.panel_h,
        }
    }

    /// The row of a method and the column of a budget. Both lists were built from the grids,
    /// so every grid's method and budget are found.
    fn row(&self, method: &str) -> usize {
        self.methods
            .iter()
            .position(|m| *m == method)
            .unwrap_or_default()
    }

    fn column(&self, budget: Option<AskedBudget>) -> usize {
        self.budgets
            .iter()
            .position(|b| *b == budget)
            .unwrap_or_default()
    }

    /// Every grid with its cells, in the order given.
    fn placed(&self) -> impl Iterator<Item = (usize, &'a NeedleGrid, Rect)> + '_ {
        self.grids.iter().enumerate().map(|(n, grid)| {
            let (row, column) = (self.row(&grid.method), self.column(grid.asked()));
            (n, grid, self.panel(row, column))
        })
    }

    /// Height of all rows together.
    fn rows_h(&self) -> f32 {
        let rows = self.methods.len() as f32;
        rows * self.panel_h + (rows - 1.0) * ROW_GAP
    }
}

impl Laid for NeedleOverview<'_> {
    fn size_mm(&self) -> (f32, f32) {
        (WIDTH_MM, self.height / 72.0 * 25.4)
    }

    fn size(&self) -> (f32, f32) {
        (self.width, self.height)
    }

    fn heatmaps(&self) -> Vec<HeatmapBox> {
        self.placed()
            .map(|(n, grid, rect)| HeatmapBox::of(grid, n, rect))
            .collect()
    }

    fn draw(&self, svg: &mut Svg) -> Result<(), ExportError> {
        if let Some(baseline) = self.title_baseline {
            let size = fit_size(self.title, TITLE_SIZE, self.width - 2.0 * MARGIN);
            svg.text(self.width / 2.0, baseline, size, "middle", self.title, "");
        }
        for (column, budget) in self.budgets.iter().enumerate() {
            let rect = self.panel(0, column);
            let heading = budget_label(*budget);
            let size = fit_size(&heading, HEADING_SIZE, rect.w);
            let x = rect.x + rect.w / 2.0;
            svg.text(x, self.heading_baseline, size, "middle", &heading, "");
        }
        let names_w = self.first_x - self.names_x;
        for (row, method) in self.methods.iter().enumerate() {
            let rect = self.panel(row, 0);
            let size = fit_size(method, HEADING_SIZE, names_w);
            let y = rect.y + rect.h / 2.0 + size * 0.35;
            svg.text(self.names_x, y, size, "start", method, "");
        }
        let last_row = self.methods.len() - 1;
        for (n, grid, rect) in self.placed() {
            draw_cells(svg, grid, n, rect);
        }
        // Grids share their axes: lengths left of each row's first panel, depths under the
        // last row.
        let first = &self.grids[0];
        for (row, method) in self.methods.iter().enumerate() {
            let column = self
                .grids
                .iter()
                .filter(|g| g.method == *method)
                .map(|g| self.column(g.asked()))
                .min();
            if let Some(column) = column {
                length_axis(svg, first, self.panel(row, column));
            }
        }
        let bottom = self.top + self.rows_h();
        for column in 0..self.budgets.len() {
            depth_axis(svg, first, self.panel(last_row, column), bottom);
        }
        let across = self.panel(last_row, 0).x;
        let right = self.panel(last_row, self.budgets.len() - 1);
        let centre = (across + right.x + right.w) / 2.0;
        let label_y = bottom + TICK_LEN + 2.0 + TICK_SIZE + LABEL_SIZE + 1.0;
        svg.text(
            centre,
            label_y,
            LABEL_SIZE,
            "middle",
            "needle depth (%)",
            "",
        );
        let label = "context length (tokens)";
        let size = fit_size(label, LABEL_SIZE, self.rows_h() + 20.0);
        svg.vertical_text(
            MARGIN + LABEL_SIZE * 0.85,
            self.top + self.rows_h() / 2.0,
            size,
            "middle",
            label,
            "",
        );
        score_bar(
            svg,
            self.width - MARGIN,
            self.top,
            self.rows_h(),
            any_empty(self.grids),
        )
    }
}

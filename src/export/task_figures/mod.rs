//! Figures of long-context task results (for `judgeq tasks`): a needle-in-a-haystack heatmap
//! per method and budget ([`TaskFigure::NeedleHeatmap`]), every method and budget on one page
//! ([`TaskFigure::NeedleOverview`]), and score against budget ([`TaskFigure::BudgetCurves`]).
//!
//! Each is written like the attention figures: an SVG, a PNG rasterised from it with the
//! bundled fonts, and a JSON sidecar ([`TaskFigureSidecar`]) holding the inputs (the sample ids
//! behind every heatmap cell included), the run folder they came from, the program version and
//! where each heatmap lies in the figure, so that a viewer can open the samples behind a
//! clicked cell ([`TaskFigureSidecar::samples_at`]).

mod budget_curves;
mod cells;
mod needle_grid;
mod needle_heatmap;
mod needle_overview;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::export::figure_files::write_rendered;
use crate::export::manifest::ProgramInfo;
use crate::export::png::{check_dpi, pixels, rasterise};
use crate::export::svg_doc::Svg;
use crate::export::{ExportError, FigurePaths, Overwrite};
use crate::policy::Ratio;

pub use budget_curves::BudgetCurves;
pub use cells::{NO_DATA_RGB, score_rgb};
pub use needle_grid::NeedleGrid;

use budget_curves::CurvesLayout;
use cells::Rect;
use needle_heatmap::NeedleHeatmap;
use needle_overview::NeedleOverview;

/// A figure of task results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskFigure {
    /// One method at one budget: depth across, context length down.
    NeedleHeatmap {
        /// A line above the heatmap (task and model, say); none when empty.
        title: String,
        /// The grid.
        grid: NeedleGrid,
    },
    /// Methods as rows, budgets as columns (the full cache last), one shared colour bar; the
    /// grids share their lengths and depths.
    NeedleOverview {
        /// A line above the figure; none when empty.
        title: String,
        /// One grid per method and budget.
        grids: Vec<NeedleGrid>,
    },
    /// Score against budget per method, with the full cache as a dashed line.
    BudgetCurves(BudgetCurves),
}

impl TaskFigure {
    /// Checks the inputs (ragged grids, scores outside 0–1 or not finite, unsorted axes, …).
    pub fn validate(&self) -> Result<(), ExportError> {
        self.laid_out().map(drop)
    }

    /// The figure laid out in points.
    fn laid_out(&self) -> Result<Box<dyn Laid + '_>, ExportError> {
        Ok(match self {
            TaskFigure::NeedleHeatmap { title, grid } => Box::new(NeedleHeatmap::new(title, grid)?),
            TaskFigure::NeedleOverview { title, grids } => {
                Box::new(NeedleOverview::new(title, grids)?)
            }
            TaskFigure::BudgetCurves(curves) => Box::new(CurvesLayout::new(curves)?),
        })
    }
}

/// A figure laid out, ready to draw.
trait Laid {
    /// Width and height in millimetres.
    fn size_mm(&self) -> (f32, f32);
    /// Width and height in points (the `viewBox`).
    fn size(&self) -> (f32, f32);
    /// Where the needle heatmaps are.
    fn heatmaps(&self) -> Vec<HeatmapBox>;
    /// Draws everything but the document's frame.
    fn draw(&self, svg: &mut Svg) -> Result<(), ExportError>;
}

/// Where one needle heatmap's cells lie in a figure, in points from the top left of the SVG's
/// `viewBox` (multiply by `dpi / 72` for PNG pixels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeatmapBox {
    /// Index of the grid in the figure's inputs (0 for a single heatmap).
    pub grid: usize,
    /// The grid's method.
    pub method: String,
    /// The grid's budget (`None`: full cache).
    pub budget: Option<usize>,
    /// The grid's ratio removed, when budgets were asked as ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width: one column per depth.
    pub width: f32,
    /// Height: one row per length.
    pub height: f32,
    /// Rows (lengths).
    pub rows: usize,
    /// Columns (depths).
    pub columns: usize,
}

impl HeatmapBox {
    fn of(grid: &NeedleGrid, index: usize, rect: Rect) -> Self {
        Self {
            grid: index,
            method: grid.method.clone(),
            budget: grid.budget,
            ratio: grid.ratio,
            x: rect.x,
            y: rect.y,
            width: rect.w,
            height: rect.h,
            rows: grid.lengths.len(),
            columns: grid.depths.len(),
        }
    }

    /// The (row, column) of the cell under the point (x, y), if the point is on the heatmap.
    pub fn cell_at(&self, x: f32, y: f32) -> Option<(usize, usize)> {
        let (u, v) = ((x - self.x) / self.width, (y - self.y) / self.height);
        if !((0.0..1.0).contains(&u) && (0.0..1.0).contains(&v)) {
            return None;
        }
        let row = ((v * self.rows as f32) as usize).min(self.rows.saturating_sub(1));
        let column = ((u * self.columns as f32) as usize).min(self.columns.saturating_sub(1));
        Some((row, column))
    }
}

/// The JSON sidecar written beside a task figure (and embedded in its SVG).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskFigureSidecar {
    /// The program that drew the figure.
    pub program: ProgramInfo,
    /// The run folder the results came from (where the samples are).
    pub run_dir: PathBuf,
    /// Width and height of the SVG's `viewBox`, in points.
    pub size_pt: (f32, f32),
    /// Where each needle heatmap lies (none for curves).
    pub heatmaps: Vec<HeatmapBox>,
    /// The inputs, as given.
    pub figure: TaskFigure,
}

impl TaskFigureSidecar {
    /// The grid, cell and sample ids under the point (x, y) of the figure, in points.
    pub fn samples_at(&self, x: f32, y: f32) -> Option<(&NeedleGrid, usize, usize, &[String])> {
        let (heatmap, (row, column)) = self
            .heatmaps
            .iter()
            .find_map(|h| h.cell_at(x, y).map(|cell| (h, cell)))?;
        let grid = match &self.figure {
            TaskFigure::NeedleHeatmap { grid, .. } => grid,
            TaskFigure::NeedleOverview { grids, .. } => grids.get(heatmap.grid)?,
            TaskFigure::BudgetCurves(_) => return None,
        };
        let ids = grid.sample_ids.get(row)?.get(column)?;
        Some((grid, row, column, ids.as_slice()))
    }
}

/// A task figure drawn: its SVG and its sidecar.
struct Drawn {
    svg: String,
    sidecar: TaskFigureSidecar,
}

fn draw(figure: &TaskFigure, run_dir: &Path) -> Result<Drawn, ExportError> {
    let laid = figure.laid_out()?;
    let sidecar = TaskFigureSidecar {
        program: ProgramInfo::current(),
        run_dir: run_dir.to_path_buf(),
        size_pt: laid.size(),
        heatmaps: laid.heatmaps(),
        figure: figure.clone(),
    };
    let metadata = serde_json::to_string(&sidecar)
        .map_err(|e| ExportError::Render(format!("cannot describe the figure: {e}")))?;
    let title = match figure {
        TaskFigure::NeedleHeatmap { title, grid } if title.trim().is_empty() => {
            format!("{} · {}", grid.method, grid.budget_label())
        }
        TaskFigure::NeedleHeatmap { title, .. } | TaskFigure::NeedleOverview { title, .. } => {
            title.clone()
        }
        TaskFigure::BudgetCurves(curves) => curves.title.clone(),
    };
    let mut svg = Svg::default();
    svg.open(laid.size_mm(), laid.size(), &title, &metadata);
    laid.draw(&mut svg)?;
    Ok(Drawn {
        svg: svg.close(),
        sidecar,
    })
}

/// The sidecar of `figure` drawn from the results in `run_dir`.
pub fn task_figure_sidecar(
    figure: &TaskFigure,
    run_dir: &Path,
) -> Result<TaskFigureSidecar, ExportError> {
    Ok(draw(figure, run_dir)?.sidecar)
}

/// Draws `figure` as a standalone SVG document; its `<metadata>` holds the sidecar.
pub fn render_task_svg(figure: &TaskFigure, run_dir: &Path) -> Result<String, ExportError> {
    Ok(draw(figure, run_dir)?.svg)
}

/// Draws `figure` as a PNG at `dpi`, rasterised from its SVG.
pub fn render_task_png(
    figure: &TaskFigure,
    run_dir: &Path,
    dpi: f32,
) -> Result<Vec<u8>, ExportError> {
    check_dpi(dpi)?;
    let drawn = draw(figure, run_dir)?;
    rasterise(&drawn.svg, pixels(drawn.sidecar.size_pt, dpi)?, dpi)
}

/// Draws `figure` and writes `NAME.svg`, `NAME.png` (at `dpi`) and the `NAME.json` sidecar
/// beside `path` (see [`FigurePaths::for_path`]).
///
/// Everything is drawn and every target checked before the first byte is written: a bad input,
/// a refusal to replace files ([`crate::export::WriteError::WouldOverwrite`]) or a rendering
/// error leaves the directory as it was.
pub fn write_task_figure(
    path: &Path,
    figure: &TaskFigure,
    run_dir: &Path,
    dpi: f32,
    overwrite: Overwrite,
) -> Result<FigurePaths, ExportError> {
    let paths = FigurePaths::for_path(path)?;
    check_dpi(dpi)?;
    let drawn = draw(figure, run_dir)?;
    let png = rasterise(&drawn.svg, pixels(drawn.sidecar.size_pt, dpi)?, dpi)?;
    write_rendered(&paths, &drawn.svg, &png, &drawn.sidecar, overwrite)?;
    Ok(paths)
}

#[cfg(test)]
mod tests;

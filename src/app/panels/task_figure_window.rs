//! The window of an opened needle figure: the grid of one method at one budget (a picker for
//! the others of an overview), and, under a clicked cell with several samples, the list to
//! pick one from.

use egui::{ComboBox, Context, RichText};

use crate::app::task_figure::{OpenedFigure, grid_label};
use crate::app::widgets::needle_grid::{cell_name, needle_grid};

/// An opened figure and what is picked in its window.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureWindow {
    /// The figure.
    pub figure: OpenedFigure,
    /// Index of the grid shown.
    pub grid: usize,
    /// The cell clicked last, as (row, column) of the grid shown.
    pub cell: Option<(usize, usize)>,
}

impl FigureWindow {
    /// The window of `figure`, showing its first grid.
    pub fn new(figure: OpenedFigure) -> Self {
        Self {
            figure,
            grid: 0,
            cell: None,
        }
    }

    /// The ids of the samples behind the cell clicked last.
    pub fn cell_samples(&self) -> &[String] {
        match self.cell {
            Some((row, column)) => self.figure.samples_at(self.grid, row, column),
            None => &[],
        }
    }
}

/// What the user asked for in the window this frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FigureAction {
    /// Open the sample with this id in the explorer.
    OpenSample(String),
    /// Close the window.
    Close,
}

/// Draws the window of `window`'s figure; a click on a cell with one sample opens it, on a
/// cell with several lists them.
pub fn task_figure_window(ctx: &Context, window: &mut FigureWindow) -> Option<FigureAction> {
    let mut open = true;
    let mut action = None;
    let name = window
        .figure
        .sidecar
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    egui::Window::new(format!("Needle heatmap · {name}"))
        .id(egui::Id::unique("task_figure_window"))
        .open(&mut open)
        .default_width(560.0)
        .default_pos(ctx.content_rect().center() - egui::vec2(280.0, 200.0))
        .show(ctx, |ui| {
            if !window.figure.title.trim().is_empty() {
                ui.label(RichText::new(&window.figure.title).strong());
            }
            let grids = &window.figure.grids;
            if grids.len() > 1 {
                let before = window.grid;
                ComboBox::from_label("Method and budget")
                    .selected_text(grids.get(window.grid).map(grid_label).unwrap_or_default())
                    .show_ui(ui, |ui| {
                        for (index, grid) in grids.iter().enumerate() {
                            ui.selectable_value(&mut window.grid, index, grid_label(grid));
                        }
                    });
                if window.grid != before {
                    window.cell = None;
                }
            } else if let Some(grid) = grids.first() {
                ui.label(grid_label(grid));
            }
            let Some(grid) = window.figure.grids.get(window.grid) else {
                return;
            };
            ui.add_space(4.0);
            if let Some(cell) = needle_grid(ui, grid, window.cell) {
                window.cell = Some(cell);
                if let [only] = window.cell_samples() {
                    action = Some(FigureAction::OpenSample(only.clone()));
                }
            }
            ui.add_space(4.0);
            ui.weak("Scores from 0 (red) to 1 (green); grey cells: no sample ran");
            match window.cell {
                None => {
                    ui.label("Click a cell to open its sample with the needle marked");
                }
                Some((row, column)) => {
                    let ids = window.cell_samples();
                    let cell = cell_name(grid, row, column);
                    if ids.is_empty() {
                        ui.label(format!("No sample ran at {cell}"));
                    } else if ids.len() > 1 {
                        ui.label(format!("{} samples at {cell}: pick one", ids.len()));
                        for id in ids {
                            if ui.button(id).clicked() {
                                action = Some(FigureAction::OpenSample(id.clone()));
                            }
                        }
                    } else {
                        ui.label(format!("{cell}: sample {}", ids[0]));
                    }
                }
            }
        });
    if !open {
        action = Some(FigureAction::Close);
    }
    action
}

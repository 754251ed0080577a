//! Task runs in the explorer: opening a needle figure in its window, opening the sample behind
//! a clicked cell as the document and question, and marking its needles once the session
//! comes back.

use std::ops::Range;
use std::path::PathBuf;

use egui::Context;

use super::{Explorer, LoadedDocument};
use crate::app::command::Command;
use crate::app::marks::{MarkedSpans, mark_colour};
use crate::app::panels::task_figure_window::{FigureAction, FigureWindow, task_figure_window};
use crate::app::state::file_label;
use crate::app::task_figure::{NEEDLE_LABEL, OpenedFigure};

impl Explorer {
    /// Opens a needle figure in its window; on failure the error is shown and the figure shown
    /// before stays.
    pub fn open_task_figure(&mut self, path: PathBuf) {
        match OpenedFigure::open(&path) {
            Ok(figure) => {
                self.status = format!(
                    "Opened {}; click a cell to inspect its sample",
                    file_label(&path)
                );
                self.error = None;
                self.task_figure = Some(FigureWindow::new(figure));
            }
            Err(e) => self.error = Some(format!("Cannot open the figure: {e}")),
        }
    }

    /// Opens sample `id` of the figure's run as the document (its context) and question, with
    /// its answer prefix and needles, and runs it; on failure the error is shown and the
    /// document stays.
    pub fn open_task_sample(&mut self, id: &str) {
        let Some(window) = &self.task_figure else {
            self.error = Some("Open a needle figure first".to_owned());
            return;
        };
        let sample = match window.figure.read_sample(id) {
            Ok(sample) => sample,
            Err(e) => {
                self.error = Some(format!("Cannot open sample {id}: {e}"));
                return;
            }
        };
        self.document = Some(LoadedDocument::of_sample(&sample));
        self.state.question = sample.question;
        // The needles of the session shown belong to another prompt.
        if self.sample_marks {
            self.set_marks(Vec::new());
        }
        self.error = None;
        if self.job.is_some() {
            self.status = format!("Opened sample {id}; press Run when the current run ends");
        } else {
            self.status = format!("Opened sample {id}");
            self.run();
        }
    }

    /// Marks the needles of the session that came back: `marked` holds the prompt tokens over
    /// each needle of a task sample's request (empty for other requests, whose session then
    /// loses the needles of an earlier sample).
    pub(super) fn mark_needles(&mut self, marked: Vec<Range<usize>>) {
        if !marked.is_empty() {
            self.marks = vec![MarkedSpans::new(NEEDLE_LABEL, mark_colour(0), marked)];
            self.sample_marks = true;
        } else if self.sample_marks {
            self.marks.clear();
            self.sample_marks = false;
        }
    }

    /// Replaces the marks on every session shown.
    pub(super) fn set_marks(&mut self, lists: Vec<MarkedSpans>) {
        self.marks = lists;
        self.sample_marks = false;
        if let Some(view) = &mut self.view {
            view.set_marks(&self.marks);
        }
    }

    /// Draws the figure's window; a sample asked for is opened with the frame's commands.
    pub(super) fn figure_window(&mut self, ctx: &Context) {
        let Some(window) = &mut self.task_figure else {
            return;
        };
        match task_figure_window(ctx, window) {
            Some(FigureAction::OpenSample(id)) => {
                self.commands.push(Command::OpenTaskSample(id));
            }
            Some(FigureAction::Close) => self.task_figure = None,
            None => {}
        }
    }
}

//! Intents the UI records while drawing, carried out once per frame after the UI is built.

use std::path::PathBuf;

use crate::app::marks::MarkedSpans;

/// Something the user asked for that has side effects (dialogs, worker jobs, files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Show the dialog to pick a GGUF model file.
    PickModelFile,
    /// Show the dialog to pick a Hugging Face model folder.
    PickModelFolder,
    /// Go back to the default model.
    UseDefaultModel,
    /// Show the dialog to pick a document.
    PickDocument,
    /// Read this file as the document (from a dialog or a drop).
    OpenDocument(PathBuf),
    /// Show the dialog to pick a needle heatmap of a task run.
    PickTaskFigure,
    /// Open this needle figure (its JSON sidecar, or its PNG or SVG) in its window.
    OpenTaskFigure(PathBuf),
    /// Open the sample with this id from the run of the figure shown, as the document and
    /// question with its needle marked, and run it.
    OpenTaskSample(String),
    /// Show the dialog to pick Judge Q soft tokens.
    PickSoftTokens,
    /// Run without soft tokens.
    ClearSoftTokens,
    /// Use the soft tokens shipped for the default model.
    UseShippedSoftTokens,
    /// Load the model if needed, then inspect the document.
    Run,
    /// Stop the running load or inspection.
    Cancel,
    /// Decode under eviction with the compared policies at the current budget.
    DecodeUnderEviction,
    /// Export the three panels as a figure.
    ExportFigure,
    /// Export the session's arrays, manifest and metrics.
    ExportData,
    /// Dismiss the error banner.
    DismissError,
    /// Mark these lists of token ranges on every session shown, replacing the marks before
    /// (an empty list clears them).
    SetMarks(Vec<MarkedSpans>),
}

/// The frame's queue of commands.
#[derive(Debug, Default)]
pub struct CommandQueue {
    queued: Vec<Command>,
}

impl CommandQueue {
    /// Records a command.
    pub fn push(&mut self, command: Command) {
        if !self.queued.contains(&command) {
            self.queued.push(command);
        }
    }

    /// Takes every command recorded this frame, in order.
    pub fn drain(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.queued)
    }
}

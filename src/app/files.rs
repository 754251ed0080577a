//! File and folder picking behind a trait, so tests answer the dialogs without a desktop.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a dialog is for; decides its title, filters and whether it picks a folder or saves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A GGUF model file.
    ModelFile,
    /// A Hugging Face model folder.
    ModelFolder,
    /// A text document.
    Document,
    /// A Judge Q soft-token file.
    SoftTokens,
    /// A needle heatmap of a task run (its sidecar, PNG or SVG).
    TaskFigure,
    /// Where to save a figure.
    Figure,
    /// A folder to write data arrays into.
    DataFolder,
}

impl Purpose {
    /// Dialog title.
    pub fn title(self) -> &'static str {
        match self {
            Purpose::ModelFile => "Open a GGUF model",
            Purpose::ModelFolder => "Open a Hugging Face model folder",
            Purpose::Document => "Open a document",
            Purpose::SoftTokens => "Open Judge Q soft tokens",
            Purpose::TaskFigure => "Open a needle heatmap of a task run",
            Purpose::Figure => "Export figure",
            Purpose::DataFolder => "Export data into a folder",
        }
    }

    /// Whether the dialog picks a folder.
    pub fn is_folder(self) -> bool {
        matches!(self, Purpose::ModelFolder | Purpose::DataFolder)
    }

    /// Whether the dialog chooses a file to write.
    pub fn is_save(self) -> bool {
        matches!(self, Purpose::Figure)
    }

    /// File filters: a name and the extensions it accepts.
    pub fn filters(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Purpose::ModelFile => &[("GGUF model", &["gguf"])],
            Purpose::Document => &[
                ("Text", &["txt", "md", "markdown", "text"]),
                ("Any file", &["*"]),
            ],
            Purpose::SoftTokens => &[("Soft tokens", &["safetensors"])],
            Purpose::TaskFigure => &[(
                "Needle heatmap (its JSON sidecar, PNG or SVG)",
                &["json", "png", "svg"],
            )],
            Purpose::Figure => &[(
                "PNG image (an SVG and a JSON sidecar are written beside it)",
                &["png"],
            )],
            Purpose::ModelFolder | Purpose::DataFolder => &[],
        }
    }
}

/// A request for one dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickRequest {
    /// What for.
    pub purpose: Purpose,
    /// Folder the dialog opens in.
    pub start_dir: Option<PathBuf>,
    /// Suggested file name when saving.
    pub file_name: Option<String>,
}

impl PickRequest {
    /// A request for `purpose`, starting next to `near` when given.
    pub fn new(purpose: Purpose, near: Option<&Path>) -> Self {
        let start_dir = near.and_then(|p| {
            if p.is_dir() {
                Some(p.to_path_buf())
            } else {
                p.parent().map(Path::to_path_buf)
            }
        });
        Self {
            purpose,
            start_dir,
            file_name: None,
        }
    }
}

/// Shows file dialogs.
pub trait FilePicker {
    /// The chosen path, or `None` when the user cancelled.
    fn pick(&mut self, request: &PickRequest) -> Option<PathBuf>;
}

/// The desktop's dialogs through rfd (an XDG portal, or zenity, on Linux).
pub struct NativePicker;

impl FilePicker for NativePicker {
    fn pick(&mut self, request: &PickRequest) -> Option<PathBuf> {
        let mut dialog = rfd::FileDialog::new().set_title(request.purpose.title());
        if let Some(dir) = &request.start_dir {
            dialog = dialog.set_directory(dir);
        }
        if let Some(name) = &request.file_name {
            dialog = dialog.set_file_name(name);
        }
        for (name, extensions) in request.purpose.filters() {
            dialog = dialog.add_filter(*name, extensions);
        }
        if request.purpose.is_folder() {
            dialog.pick_folder()
        } else if request.purpose.is_save() {
            dialog.save_file()
        } else {
            dialog.pick_file()
        }
    }
}

/// Answers dialogs from a queue (tests, scripted demos); an empty queue means "cancelled".
/// Clones share the queue, so a test keeps one to push answers while the app owns another.
#[derive(Clone, Debug, Default)]
pub struct QueuedPicker {
    answers: Arc<Mutex<VecDeque<Option<PathBuf>>>>,
    asked: Arc<Mutex<Vec<PickRequest>>>,
}

impl QueuedPicker {
    /// A picker with no answers queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues the answer to the next dialog (`None`: the user cancels it).
    pub fn push(&self, answer: Option<PathBuf>) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.push_back(answer);
        }
    }

    /// Every dialog shown so far.
    pub fn asked(&self) -> Vec<PickRequest> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl FilePicker for QueuedPicker {
    fn pick(&mut self, request: &PickRequest) -> Option<PathBuf> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(request.clone());
        }
        self.answers.lock().ok()?.pop_front().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_answers_come_back_in_order_then_cancel() {
        let shared = QueuedPicker::new();
        let mut picker = shared.clone();
        shared.push(Some(PathBuf::from("/a.txt")));
        shared.push(None);
        let request = PickRequest::new(Purpose::Document, Some(Path::new("/tmp/x/doc.md")));
        assert_eq!(request.start_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(picker.pick(&request), Some(PathBuf::from("/a.txt")));
        assert_eq!(picker.pick(&request), None);
        assert_eq!(picker.pick(&request), None);
        assert_eq!(shared.asked().len(), 3);
    }
}

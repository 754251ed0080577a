//! The one error type of the export room: every variant names the file or directory involved.

use std::path::PathBuf;

use crate::atomic_write::{WriteError, count_files};

/// Why a file could not be written or a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The target file exists and the caller did not ask to replace it.
    #[error(
        "{path} already exists; nothing was written (choose another name or allow replacing it)"
    )]
    Exists {
        /// The file that would have been replaced.
        path: PathBuf,
    },
    /// Some files of a multi-file export exist and the caller did not ask to replace them.
    #[error(
        "{} already exist{} in {dir}: {}; nothing was written (choose another directory or allow replacing them)",
        count_files(.names.len()),
        if .names.len() == 1 { "s" } else { "" },
        .names.join(", ")
    )]
    WouldOverwrite {
        /// The output directory.
        dir: PathBuf,
        /// File names inside `dir` that exist already.
        names: Vec<String>,
    },
    /// The directory a file should go into does not exist or is not a directory.
    #[error("cannot write into {path}: it is not an existing directory")]
    NotADirectory {
        /// The directory that was expected.
        path: PathBuf,
    },
    /// The operating system refused a read, write, rename or directory creation.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// An array could not be encoded as `.npy`.
    #[error("cannot write the array {path}: {source}")]
    Npy {
        /// The `.npy` file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: ndarray_npy::WriteNpyError,
    },
    /// A JSON document could not be encoded.
    #[error("cannot encode {path} as JSON: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A folder given as an export folder is not one.
    #[error("{dir} is not a judgeq export folder: {reason}")]
    NotAnExport {
        /// The folder.
        dir: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A file the manifest lists is not there.
    #[error("{path} is listed in manifest.json but missing; the export is incomplete")]
    Missing {
        /// The missing file.
        path: PathBuf,
    },
    /// A file of an export could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file of an export cannot be parsed or disagrees with the manifest.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data handed to the exporter is inconsistent (shapes, names, duplicates).
    #[error("cannot export this data: {0}")]
    InvalidData(String),
    /// The figure description is inconsistent (shapes, ranges, sizes).
    #[error("cannot draw this figure: {0}")]
    InvalidFigure(String),
    /// Encoding or rasterising the figure failed.
    #[error("cannot render the figure: {0}")]
    Render(String),
}

/// A failed write becomes the export error of the same name and message.
impl From<WriteError> for ExportError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Exists { path } => ExportError::Exists { path },
            WriteError::WouldOverwrite { dir, names } => ExportError::WouldOverwrite { dir, names },
            WriteError::NotADirectory { path } => ExportError::NotADirectory { path },
            WriteError::Io { path, source } => ExportError::Io { path, source },
            WriteError::Read { path, source } => ExportError::Read { path, source },
        }
    }
}

impl ExportError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn would_overwrite_lists_every_name_once() {
        let err = ExportError::WouldOverwrite {
            dir: PathBuf::from("/out"),
            names: vec![
                "manifest.json".into(),
                "window.npy".into(),
                "decoded.npy".into(),
            ],
        };
        assert_eq!(
            err.to_string(),
            "3 files already exist in /out: manifest.json, window.npy, decoded.npy; nothing was \
             written (choose another directory or allow replacing them)"
        );
        let one = ExportError::WouldOverwrite {
            dir: PathBuf::from("/out"),
            names: vec!["a.npy".into()],
        };
        assert!(
            one.to_string()
                .starts_with("1 file already exists in /out: a.npy;")
        );
    }
}

//! The one error type of the export room: every variant names the file or directory involved.

use std::path::PathBuf;

use crate::atomic_write::WriteError;

/// Why a file could not be written or a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file or directory could not be written: it exists and may not be replaced, some
    /// outputs of a multi-file export exist, the directory is missing, or the operating system
    /// refused.
    #[error(transparent)]
    Write(#[from] WriteError),
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
    /// A file of an export could not be read back.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn would_overwrite_lists_every_name_once() {
        let err = ExportError::from(WriteError::WouldOverwrite {
            dir: PathBuf::from("/out"),
            names: vec![
                "manifest.json".into(),
                "window.npy".into(),
                "decoded.npy".into(),
            ],
        });
        assert_eq!(
            err.to_string(),
            "3 files already exist in /out: manifest.json, window.npy, decoded.npy; nothing was \
             written (choose another directory or allow replacing them)"
        );
        let one = ExportError::from(WriteError::WouldOverwrite {
            dir: PathBuf::from("/out"),
            names: vec!["a.npy".into()],
        });
        assert!(
            one.to_string()
                .starts_with("1 file already exists in /out: a.npy;")
        );
    }
}

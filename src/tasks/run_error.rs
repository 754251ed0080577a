//! Errors of task runs: the journal, the model, the policies and the files a run writes.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::export::ExportError;
use crate::model::ModelError;
use crate::policy::PolicyError;

/// What can go wrong while running, resuming or merging a task run.
#[derive(Debug, Error)]
pub enum RunError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A journal is already there and the run was not asked to continue or replace it.
    #[error("{path} holds a run already: pass --resume to continue it or --force to start over")]
    JournalExists {
        /// The journal.
        path: PathBuf,
    },
    /// `--resume` found the journal of another run.
    #[error(
        "{path} is the journal of another run ({differs} differ): resume with the same settings, or use another --out"
    )]
    OtherRun {
        /// The journal.
        path: PathBuf,
        /// Which settings differ.
        differs: String,
    },
    /// A journal line is not what judgeq writes.
    #[error("{path}, line {line}: {message}")]
    BadJournal {
        /// The journal.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A table or metrics file could not be formatted.
    #[error("writing the run's tables: {0}")]
    Table(String),
    /// Shards that do not make one sweep.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A setting that cannot run.
    #[error("{0}")]
    InvalidSetting(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A policy failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Writing a result file failed.
    #[error(transparent)]
    Export(#[from] ExportError),
}

/// A failed write is reported as the export error it always was.
impl From<crate::atomic_write::WriteError> for RunError {
    fn from(error: crate::atomic_write::WriteError) -> Self {
        RunError::Export(error.into())
    }
}

impl RunError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        RunError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

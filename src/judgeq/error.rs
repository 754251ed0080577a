//! Errors of soft-token training: bad data, bad settings, files that do not fit, cancellation.

use std::path::PathBuf;

use crate::judgeq::soft_tokens::SoftTokenError;
use crate::model::ModelError;

/// Problems preparing data for, running, checkpointing or resuming a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Lines of a data file are not prompts; each problem names its line.
    #[error("{path}: {} malformed line(s): {}", problems.len(), describe_lines(problems))]
    MalformedData {
        /// The data file.
        path: PathBuf,
        /// `(line number, what is wrong)`, 1-based, in file order.
        problems: Vec<(usize, String)>,
    },
    /// No usable example is left.
    #[error("{0}")]
    NoData(String),
    /// A setting is out of range or settings contradict each other.
    #[error("{0}")]
    InvalidSetting(String),
    /// A cached target or checkpoint file is not what judgeq wrote.
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A checkpoint does not belong to this run (other data, model or settings).
    #[error("{path}: cannot resume: {message}")]
    ResumeMismatch {
        /// The training-state file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// An output exists and would be replaced.
    #[error(
        "{path} exists; pass --resume to continue that run or --force to start over and replace it"
    )]
    OutputExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The loss or its gradient is not finite (learning rate too high, or a broken target).
    #[error("the loss became {0} at step {1}; lower the learning rate")]
    NonFinite(f32, usize),
    /// The model failed.
    #[error(transparent)]
    Model(ModelError),
    /// A soft-token file could not be read or written.
    #[error(transparent)]
    SoftTokens(#[from] SoftTokenError),
    /// A file could not be written (or would replace one the user made).
    #[error(transparent)]
    Write(#[from] crate::atomic_write::WriteError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The run was cancelled (Ctrl-C); the last checkpoint was kept.
    #[error("cancelled")]
    Cancelled,
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A file judgeq wrote that does not read back.
    pub fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl From<ModelError> for TrainError {
    /// A cancelled model pass is a cancelled run; every other model error stays one.
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Cancelled => Self::Cancelled,
            other => Self::Model(other),
        }
    }
}

/// The first few malformed lines, as `line N: reason; ...`.
fn describe_lines(problems: &[(usize, String)]) -> String {
    const SHOWN: usize = 5;
    let mut text = problems
        .iter()
        .take(SHOWN)
        .map(|(line, reason)| format!("line {line}: {reason}"))
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > SHOWN {
        text.push_str(&format!("; and {} more", problems.len() - SHOWN));
    }
    text
}

/// Results of the training room.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

//! Errors of an evaluation run.

use std::path::PathBuf;

use crate::judgeq::TrainError;
use crate::model::ModelError;
use crate::policy::PolicyError;

/// Problems reading prompts, running the model, selecting or writing results.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The prompt file, a soft-token file or the model's data path failed.
    #[error(transparent)]
    Data(TrainError),
    /// A policy refused its inputs or settings.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The model failed.
    #[error(transparent)]
    Model(ModelError),
    /// An output could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The report could not be written (or would replace files).
    #[error(transparent)]
    Export(#[from] crate::export::ExportError),
    /// Settings out of range.
    #[error("{0}")]
    InvalidSetting(String),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// A failed write is reported as the export error it always was.
impl From<crate::atomic_write::WriteError> for EvalError {
    fn from(error: crate::atomic_write::WriteError) -> Self {
        EvalError::Export(error.into())
    }
}

impl From<ModelError> for EvalError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Cancelled => Self::Cancelled,
            other => Self::Model(other),
        }
    }
}

impl From<TrainError> for EvalError {
    fn from(error: TrainError) -> Self {
        match error {
            TrainError::Cancelled => Self::Cancelled,
            TrainError::Model(model) => model.into(),
            other => Self::Data(other),
        }
    }
}

impl From<candle_core::Error> for EvalError {
    fn from(error: candle_core::Error) -> Self {
        Self::Model(ModelError::from(error))
    }
}

//! Errors of task generation, loading and scoring.

use std::path::PathBuf;

/// Problems building or reading a task's samples.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A haystack directory or one of its files is not usable text.
    #[error("haystack {path}: {reason}")]
    Haystack {
        /// The directory or file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokenizer failed while measuring a prompt.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The requested length cannot hold the task's template, needles and question.
    #[error(
        "{task}: a length of {length} tokens is too small; the prompt needs at least {needed} \
         tokens plus {max_new_tokens} tokens to generate"
    )]
    LengthTooSmall {
        /// The task (e.g. `niah`, `vt`).
        task: String,
        /// The requested length in tokens.
        length: usize,
        /// Tokens of the shortest prompt the task can build.
        needed: usize,
        /// Tokens reserved for the answer.
        max_new_tokens: usize,
    },
    /// A task name that no generator knows.
    #[error("unknown task `{name}` (known: {known})")]
    UnknownTask {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A setting of a task specification is out of range.
    #[error("{0}")]
    InvalidSpec(String),
}

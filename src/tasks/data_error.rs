//! Errors of the loaders of real task sets (LongBench, L-Eval, LongEval): every variant names
//! the file, line or set involved.

use std::path::PathBuf;

/// Why a task set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The set's file is not where it should be.
    #[error("{path} does not exist ({hint})")]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
        /// How the loader names its files.
        hint: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a record of the expected shape.
    #[error("{path}:{line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no sample.
    #[error("{path} holds no sample to evaluate")]
    NoSamples {
        /// The file.
        path: PathBuf,
    },
    /// A set name that names no set of the benchmark.
    #[error("unknown {benchmark} set `{name}` (known: {known})")]
    UnknownSet {
        /// The benchmark (`LongBench`, ...).
        benchmark: &'static str,
        /// The name given.
        name: String,
        /// The names the loader knows.
        known: String,
    },
    /// A set judgeq knows but does not evaluate.
    #[error("{benchmark} set `{name}` is not supported: {reason}")]
    Unsupported {
        /// The benchmark.
        benchmark: &'static str,
        /// The set.
        name: String,
        /// Why.
        reason: String,
    },
    /// A sample's prompt cannot be cut to fit the model's context.
    #[error(
        "sample {id} cannot fit in {max_context} tokens with {max_new_tokens} left for the answer: {reason}"
    )]
    DoesNotFit {
        /// The sample's id.
        id: String,
        /// The model's context in tokens.
        max_context: usize,
        /// Tokens kept for the answer.
        max_new_tokens: usize,
        /// What is too long.
        reason: String,
    },
    /// The tokenizer failed on a sample's text.
    #[error("sample {id}: the tokenizer failed: {message}")]
    Tokenizer {
        /// The sample's id.
        id: String,
        /// The tokenizer's message.
        message: String,
    },
}

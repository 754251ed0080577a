//! Typed errors of the model room. Every variant names the file, tensor or lengths involved.

use std::path::PathBuf;

/// Anything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint file is truncated or not in the format its name says.
    #[error("{path}: not a valid {format} file: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// `GGUF`, `safetensors`, `config.json`, `tokenizer.json`, ...
        format: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The checkpoint's architecture is not one judgeq runs.
    #[error(
        "{path}: architecture `{architecture}` is not supported (judgeq runs llama, mistral and qwen2)"
    )]
    UnsupportedArchitecture {
        /// The checkpoint.
        path: PathBuf,
        /// The architecture it declares.
        architecture: String,
    },
    /// The checkpoint uses a feature judgeq does not implement (a rotary scaling type, a
    /// tokenizer kind, an activation...).
    #[error("{path}: {feature} is not supported")]
    Unsupported {
        /// The file that declares it.
        path: PathBuf,
        /// What is not supported, in words.
        feature: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor {
        /// The checkpoint.
        path: PathBuf,
        /// Tensor name as stored in the file.
        name: String,
    },
    /// A tensor has the wrong shape for the declared configuration.
    #[error("{path}: tensor `{name}` has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// Tensor name as stored in the file.
        name: String,
        /// Shape the configuration implies.
        expected: Vec<usize>,
        /// Shape found in the file.
        got: Vec<usize>,
    },
    /// The tokenizer could not be built or failed on the input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be parsed or rendered.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// The document or question is empty (or only whitespace).
    #[error("the {what} is empty")]
    EmptyInput {
        /// `document` or `question`.
        what: &'static str,
    },
    /// The prompt plus what must follow it does not fit the model's context.
    #[error(
        "the prompt is {prompt_tokens} tokens and {extra_tokens} more are needed after it, but {model} accepts at most {max_context} ({} too many)",
        excess(*.prompt_tokens, *.extra_tokens, *.max_context)
    )]
    PromptTooLong {
        /// Tokens in the rendered prompt.
        prompt_tokens: usize,
        /// Positions needed after the prompt: the soft tokens or the tokens to decode,
        /// whichever is more (they take the same positions in turn).
        extra_tokens: usize,
        /// Context length of the model.
        max_context: usize,
        /// Model name.
        model: String,
    },
    /// Fetching the default model failed; the message says what to do.
    #[error("fetching the default model failed: {0}")]
    Fetch(String),
    /// A downloaded or cached file does not have the expected checksum.
    #[error(
        "{path}: sha256 is {got}, expected {expected}; the file is corrupt or not the one judgeq expects (fetch it again, or pass --model PATH)"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        got: String,
    },
    /// An argument is out of range (device, dtype, window, budget...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// An error inside candle.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;

/// Tokens by which a prompt and what follows it exceed the context.
fn excess(prompt_tokens: usize, extra_tokens: usize, max_context: usize) -> usize {
    prompt_tokens
        .saturating_add(extra_tokens)
        .saturating_sub(max_context)
}

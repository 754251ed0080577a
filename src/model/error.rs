//! Typed errors of the model room. Every variant names the file, tensor or lengths involved.

use std::path::PathBuf;

use super::memory::gigabytes;

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
    /// The run needs more memory than the device has free: refused before it started, with
    /// both figures, or reported by the GPU when an allocation failed, without them.
    #[error("{}", out_of_memory(.device, *.needed, *.available, .detail))]
    OutOfMemory {
        /// Where memory ran short: `the CPU`, `cuda:0`, `the GPU`, `the host`.
        device: String,
        /// Bytes the run needs beyond what is already allocated, when estimated.
        needed: Option<u64>,
        /// Bytes free there, when known.
        available: Option<u64>,
        /// What needs the memory (the estimate's parts), or the driver's message.
        detail: String,
    },
    /// An error inside candle.
    #[error("tensor computation failed: {0}")]
    Candle(candle_core::Error),
}

/// Words in candle's error text that mean a GPU allocation failed: the driver's and cuBLAS's
/// out-of-memory codes.
const GPU_OUT_OF_MEMORY: [&str; 3] = [
    "CUDA_ERROR_OUT_OF_MEMORY",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "cudaErrorMemoryAllocation",
];

impl From<candle_core::Error> for ModelError {
    /// A GPU allocation failure becomes [`ModelError::OutOfMemory`]; anything else stays a
    /// candle error.
    fn from(error: candle_core::Error) -> Self {
        let text = error.to_string();
        if GPU_OUT_OF_MEMORY.iter().any(|code| text.contains(code)) {
            ModelError::OutOfMemory {
                device: "the GPU".to_owned(),
                needed: None,
                available: None,
                detail: text,
            }
        } else {
            ModelError::Candle(error)
        }
    }
}

/// The message of [`ModelError::OutOfMemory`].
fn out_of_memory(
    device: &str,
    needed: Option<u64>,
    available: Option<u64>,
    detail: &str,
) -> String {
    let advice = "use a shorter document, capture fewer rows, or a smaller dtype (bf16)";
    match (needed, available) {
        (Some(needed), Some(available)) => format!(
            "not enough memory on {device}: this run needs {} more ({detail}) but {} is free; {advice}",
            gigabytes(needed),
            gigabytes(available)
        ),
        _ => format!("{device} ran out of memory ({detail}); {advice}"),
    }
}

/// Result with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;

/// Tokens by which a prompt and what follows it exceed the context.
fn excess(prompt_tokens: usize, extra_tokens: usize, max_context: usize) -> usize {
    prompt_tokens
        .saturating_add(extra_tokens)
        .saturating_sub(max_context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gpu_allocation_failure_from_candle_is_out_of_memory() {
        let driver = candle_core::Error::Msg(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".to_owned(),
        );
        let error = ModelError::from(driver);
        assert!(
            matches!(&error, ModelError::OutOfMemory { device, needed: None, available: None, .. } if device == "the GPU"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("the GPU ran out of memory"),
            "{message}"
        );
        assert!(message.contains("CUDA_ERROR_OUT_OF_MEMORY"), "{message}");

        let wrapped = candle_core::Error::Msg("cuBLAS: CUBLAS_STATUS_ALLOC_FAILED".to_owned())
            .context("matmul");
        assert!(matches!(
            ModelError::from(wrapped),
            ModelError::OutOfMemory { .. }
        ));
        let other = candle_core::Error::Msg("shape mismatch in matmul".to_owned());
        assert!(matches!(ModelError::from(other), ModelError::Candle(_)));
    }

    #[test]
    fn a_refusal_names_what_is_needed_and_what_is_free() {
        let error = ModelError::OutOfMemory {
            device: "cuda:0".to_owned(),
            needed: Some(12_340_000_000),
            available: Some(8_000_000_000),
            detail: "KV cache 4.29 GB".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "not enough memory on cuda:0: this run needs 12.34 GB more (KV cache 4.29 GB) but \
             8.00 GB is free; use a shorter document, capture fewer rows, or a smaller dtype (bf16)"
        );
    }
}

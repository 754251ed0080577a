//! Checkpoints, tokenizer, chat template, and a transformer forward pass that exposes its
//! attention. The only room that runs candle.

mod attention;
pub mod bench;
pub mod cache;
pub mod capture;
pub mod chat;
pub mod config;
mod cpu_slice;
pub mod device;
pub mod document;
mod elementwise;
pub mod error;
pub mod fetch;
mod few_rows;
mod forward;
mod fused_attention;
pub mod generate;
mod gguf;
mod gguf_tokenizer;
pub mod hashing;
mod hf_config;
mod hf_dir;
pub mod load;
mod mask;
mod probabilities;
pub mod prompt;
pub mod random;
pub mod rope;
mod safetensors;
mod simd;
mod soft;
pub mod tokenizer;
pub mod transformer;
mod weight_loader;
pub mod weights;

pub use cache::KvCache;
pub use capture::{AttentionKernel, Capture, ForwardOptions, ForwardOutput};
pub use chat::{ChatMessage, ChatTemplate};
pub use config::{Architecture, Llama3RopeScaling, ModelConfig};
pub use error::{ModelError, Result};
pub use generate::{GenerateOptions, Generation, Sampling};
pub use load::{CheckpointKind, LoadOptions, Model, detect_checkpoint};
pub use tokenizer::{Encoded, TextTokenizer};
pub use transformer::Transformer;
pub use weights::{AttentionWeights, LayerWeights, MlpWeights, Weights};

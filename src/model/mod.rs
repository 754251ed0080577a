//! Checkpoints, tokenizer, chat template, and a transformer forward pass that exposes its
//! attention. The only room that runs candle.

mod attention;
pub mod bench;
pub mod cache;
pub mod capture;
pub mod config;
mod elementwise;
pub mod error;
mod forward;
mod fused_attention;
pub mod generate;
mod mask;
mod probabilities;
pub mod random;
pub mod rope;
mod simd;
mod soft;
pub mod transformer;
pub mod weights;

pub use cache::KvCache;
pub use capture::{AttentionKernel, Capture, ForwardOptions, ForwardOutput};
pub use config::{Architecture, Llama3RopeScaling, ModelConfig};
pub use error::{ModelError, Result};
pub use generate::{GenerateOptions, Generation, Sampling};
pub use transformer::Transformer;
pub use weights::{AttentionWeights, LayerWeights, MlpWeights, Weights};

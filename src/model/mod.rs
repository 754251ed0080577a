//! Checkpoints, tokenizer, chat template, and a transformer forward pass that exposes its
//! attention. The only room that runs candle.

pub mod config;
pub mod error;
pub mod transformer;
pub mod weights;

pub use config::{Architecture, Llama3RopeScaling, ModelConfig};
pub use error::{ModelError, Result};
pub use transformer::Transformer;
pub use weights::{AttentionWeights, LayerWeights, MlpWeights, Weights};

//! Judge Q: trainable soft tokens appended after the prompt, whose queries score the KV cache.

pub mod soft_tokens;

pub use soft_tokens::{SoftTokenError, SoftTokenMeta, SoftTokens};

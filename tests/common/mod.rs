//! Helpers shared by integration tests.

pub mod naive;
pub mod rust_source;
pub mod tiny_checkpoint;
pub mod user_text;

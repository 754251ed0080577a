//! Helpers shared by integration tests.

pub mod naive;
pub mod tiny_checkpoint;

//! Helpers shared by integration tests.

pub mod tiny_checkpoint;

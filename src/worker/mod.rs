//! The compute thread and the messages the app exchanges with it.

pub mod engine;
pub mod protocol;

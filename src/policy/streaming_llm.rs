//! StreamingLLM: the first `sinks` tokens (attention sinks) and the most recent ones.
//!
//! As KVCache-Factory's `StreamingLLMKVCluster` with its window `B − 4`: positions
//! `[0, sinks)` and the last `B − sinks`. Keys keep their original positions (no position
//! shift, as in the one-shot references). A budget below `sinks` keeps the first `B` tokens.

use ndarray::{Array3, s};

use crate::attention::KeepMask;

/// The kept set for a budget below the prompt length `n`.
pub(crate) fn select(
    layers: usize,
    heads: usize,
    n: usize,
    budget: usize,
    sinks: usize,
) -> KeepMask {
    let first = sinks.min(budget);
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.slice_mut(s![.., .., ..first]).fill(true);
    mask.slice_mut(s![.., .., n - (budget - first)..])
        .fill(true);
    mask
}

/// Positions in keep order: the sinks from the start, then the rest from the most recent back.
pub(crate) fn ranking(n: usize, sinks: usize) -> Vec<u32> {
    let first = sinks.min(n);
    (0..first)
        .chain((first..n).rev())
        .map(|p| p as u32)
        .collect()
}

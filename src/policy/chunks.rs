//! ChunkKV (arXiv 2502.00299; kvpress 0.5.5's `ChunkKVPress`): chunk-level selection over any
//! policy's scores. The scored range is cut into chunks of `chunk_size` positions (the last one
//! may be shorter); a chunk scores the mean over its positions of the scores summed over the
//! layer's heads, and whole chunks are kept by that score, highest first (ties to the earlier
//! chunk), every head of a layer keeping the same chunks as kvpress does. A policy offers it by
//! listing [`CHUNK_SIZE`] and ordering through [`chunked_order`] when it is set.
//!
//! The kept set at a count is a prefix of the order, so a budget that is not a whole number of
//! chunks keeps the leading positions of one more chunk; kvpress keeps
//! `⌊chunks · (1 − ratio)⌋` whole chunks instead. Entries a policy always keeps (its window)
//! come first, outside the chunks. SnapKV and Judge Q offer it; PyramidKV shares SnapKV's
//! order and so its chunks, while Ada-KV refuses it (its head shares need per-entry scores).

use ndarray::Axis;

use super::params::Count;
use super::{Order, PolicyError};
use crate::attention::ScoreGrid;

/// Chunk length for chunk-level selection; 0 (the default) selects entry by entry. kvpress's
/// `ChunkKVPress` defaults to 20.
pub static CHUNK_SIZE: Count = Count {
    key: "chunk_size",
    label: "ChunkKV chunk size",
    help: "Keep whole chunks of this many entries, ranked by their mean score summed over the layer's heads (ChunkKV; kvpress's ChunkKVPress chunk_length, 20 there); 0, the default, keeps entries one by one",
    default: 0,
};

/// The chunk length the ChunkKV variants use: kvpress's default `chunk_length`.
pub const KVPRESS_CHUNK_SIZE: u64 = 20;

/// The order of a prompt of `n` tokens that keeps `protected` (positions, in keep order) first,
/// then the chunks of `chunk` positions of `start..start + m` by their score from `scores`
/// (`[layers, heads, m]`), then any other position in ascending order. Every head of a layer
/// has the same order.
pub fn chunked_order(
    n: usize,
    protected: &[u32],
    start: usize,
    scores: &ScoreGrid,
    chunk: usize,
) -> Result<Order, PolicyError> {
    let (layers, heads, m) = scores.dim();
    if scores.iter().any(|s| !s.is_finite()) {
        return Err(PolicyError::NonFinite("ranked"));
    }
    let chunk = chunk.max(1);
    let layer_orders: Vec<Vec<u32>> = scores
        .outer_iter()
        .map(|layer| {
            let summed = layer.sum_axis(Axis(0));
            let starts: Vec<usize> = (0..m).step_by(chunk).collect();
            let means: Vec<f64> = starts
                .iter()
                .map(|&c| {
                    let end = (c + chunk).min(m);
                    let total: f64 = (c..end).map(|j| f64::from(summed[j])).sum();
                    total / (end - c) as f64
                })
                .collect();
            let mut ranked: Vec<usize> = (0..starts.len()).collect();
            ranked.sort_by(|&a, &b| means[b].total_cmp(&means[a]));
            let mut order: Vec<u32> = protected.to_vec();
            for c in ranked {
                let first = start + starts[c];
                let last = (first + chunk).min(start + m);
                order.extend((first..last).map(|p| p as u32));
            }
            let mut listed = vec![false; n];
            for &p in &order {
                if let Some(slot) = listed.get_mut(p as usize) {
                    *slot = true;
                }
            }
            order.extend((0..n).filter(|&p| !listed[p]).map(|p| p as u32));
            order
        })
        .collect();
    Order::per_row(layers, heads, n, |l, _| layer_orders[l].clone())
}

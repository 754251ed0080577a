//! Deterministic orderings of positions by score.
//!
//! Every selection in this crate ranks keys by score, highest first, and breaks equal scores
//! toward the **earlier position** (and, across heads in Ada-KV's global top-k, toward the lower
//! head). Max-pooling makes plateaus of equal scores, so without a fixed rule two runs (or the
//! CLI, the GUI and a reference implementation) could keep different entries.

use ndarray::ArrayView1;

/// A key that orders `f32` scores like `f32::total_cmp`, with `-0.0` equal to `0.0`.
/// Scores must be finite (callers check).
pub(crate) fn order_key(score: f32) -> u32 {
    let bits = if score == 0.0 { 0 } else { score.to_bits() };
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Positions of `scores` ordered by score descending, earlier position first among equals.
pub(crate) fn rank_desc(scores: ArrayView1<f32>) -> Vec<u32> {
    let mut keys: Vec<u64> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| (u64::from(!order_key(s)) << 32) | i as u64)
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| k as u32).collect()
}

/// One ordering of the `n` prompt positions per `[layer, head]` row, stored flat.
/// Keeping the first `c` positions of a row is the row's selection at count `c`.
#[derive(Clone, Debug)]
pub(crate) struct Rankings {
    /// Positions per row.
    pub n: usize,
    /// Heads per layer.
    pub heads: usize,
    /// `rows × n` positions, row `layer · heads + head`.
    pub data: Vec<u32>,
}

impl Rankings {
    /// The ordering of one row.
    pub fn row(&self, layer: usize, head: usize) -> &[u32] {
        let start = (layer * self.heads + head) * self.n;
        &self.data[start..start + self.n]
    }
}

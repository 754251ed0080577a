//! Budgets shared out by score: Ada-KV's head-adaptive shares within each layer
//! (`FFY0/AdaKV`, `AdaptiveSnapKVCluster`), kvpress's variant of them (`AdaKVPress`), and one
//! share over every layer and head at once
//! (kvpress's KVzip, `layerwise=False`), computed from a scored order in `O(H log² n)` per
//! group of rows, which keeps them live under the budget slider.
//!
//! Ada-KV, per layer, with `base = B − w` (`w` the protected entries) and floor α (default 0.2):
//! 1. take the global top `H·base` of every head's scores over the scored range;
//!    `cnt_h` = how many fall in head `h`;
//! 2. `cap_h = round(cnt_h·(1 − α) + ⌊base·α⌋)` (computed in `f32`, rounding half to even, as
//!    `torch.round`);
//! 3. head `h` keeps its protected entries plus its own top `cap_h`.
//!
//! kvpress's `AdaKVPress`, per layer, with `n_safe = ⌊α·B⌋` (at least 1 when `α > 0`), counted
//! from the whole budget: every head keeps its top `n_safe` entries (its protected ones count
//! among them, as kvpress's sinks carry the highest scores), and the layer's `H·B − H·n_safe`
//! other entries are the highest scores left in any head (kvpress prunes the layer's
//! lowest `H·(n − B)` after lifting each head's top `n_safe` to the maximum).
//!
//! The global share takes the top `L·H·base` over every row of every layer and gives each row
//! exactly the count that fell in it (no floor), so the total equals `B` per row.
//!
//! Ada-KV's mean over window rows ranks exactly as the sum used here (a common positive factor),
//! so the global top-k is the same. Ties in a global top-k go to the earlier position, then to
//! the lower row (head, then layer). `normalize` is off, as in Ada-KV's `config_compress`.

use ndarray::Array2;
use rayon::prelude::*;

use super::order::Order;
use super::ranking::order_key;

/// Step 2: per-head selection counts from the global top-k counts.
pub(crate) fn floored(
    counts: &[usize],
    base: usize,
    alpha: f64,
    scored: usize,
) -> impl Iterator<Item = usize> + '_ {
    let floor = (base as f64 * alpha).floor() as f32;
    let keep_share = (1.0 - alpha) as f32;
    counts.iter().map(move |&c| {
        ((c as f32 * keep_share + floor).round_ties_even().max(0.0) as usize).min(scored)
    })
}

/// Every row's scores over its scored range in its order's ranking.
#[derive(Clone, Debug)]
pub(crate) struct HeadShares {
    layers: usize,
    heads: usize,
    scored: usize,
    /// `rows × scored` order keys, descending within a row.
    keys: Vec<u32>,
    /// `rows × scored` positions in the same order (ascending among equal keys).
    positions: Vec<u32>,
}

impl HeadShares {
    /// The tables of a scored order; `None` for a fixed order (it has no scores).
    pub(crate) fn new(order: &Order) -> Option<Self> {
        let scores = order.scores()?;
        let (layers, heads, scored) = scores.grid.dim();
        let protected = order.protected().len();
        let rankings = order.rankings();
        let mut keys = Vec::with_capacity(layers * heads * scored);
        let mut positions = Vec::with_capacity(layers * heads * scored);
        for l in 0..layers {
            for h in 0..heads {
                let ranked = &rankings.row(l, h)[protected..protected + scored];
                positions.extend_from_slice(ranked);
                keys.extend(
                    ranked
                        .iter()
                        .map(|&p| order_key(scores.grid[[l, h, p as usize - scores.start]])),
                );
            }
        }
        Some(Self {
            layers,
            heads,
            scored,
            keys,
            positions,
        })
    }

    fn row(&self, layer: usize, head: usize) -> (&[u32], &[u32]) {
        let start = (layer * self.heads + head) * self.scored;
        let end = start + self.scored;
        (&self.keys[start..end], &self.positions[start..end])
    }

    /// Ada-KV: entries kept per `[layer, head]` for `protected < B < n`.
    pub(crate) fn head_adaptive(
        &self,
        budget: usize,
        protected: usize,
        alpha: f64,
    ) -> Array2<usize> {
        let base = budget - protected;
        let mut kept = Array2::zeros((self.layers, self.heads));
        kept.outer_iter_mut()
            .into_par_iter()
            .enumerate()
            .for_each(|(l, mut layer)| {
                let rows: Vec<(&[u32], &[u32])> = (0..self.heads).map(|h| self.row(l, h)).collect();
                let counts = global_top_counts(&rows, self.heads * base.min(self.scored));
                for (slot, cap) in layer
                    .iter_mut()
                    .zip(floored(&counts, base, alpha, self.scored))
                {
                    *slot = protected + cap;
                }
            });
        kept
    }

    /// kvpress's `AdaKVPress`: entries kept per `[layer, head]` for `protected < B < n`.
    pub(crate) fn safeguarded(&self, budget: usize, protected: usize, alpha: f64) -> Array2<usize> {
        let mut n_safe = (budget as f64 * alpha).floor() as usize;
        if alpha > 0.0 {
            n_safe = n_safe.max(1);
        }
        let safe = n_safe.saturating_sub(protected).min(self.scored);
        let shared = (budget - protected)
            .saturating_sub(safe)
            .min(self.scored - safe);
        let mut kept = Array2::zeros((self.layers, self.heads));
        kept.outer_iter_mut()
            .into_par_iter()
            .enumerate()
            .for_each(|(l, mut layer)| {
                let rest: Vec<(&[u32], &[u32])> = (0..self.heads)
                    .map(|h| {
                        let (keys, positions) = self.row(l, h);
                        (&keys[safe..], &positions[safe..])
                    })
                    .collect();
                let counts = global_top_counts(&rest, self.heads * shared);
                for (slot, count) in layer.iter_mut().zip(counts) {
                    *slot = protected + safe + count;
                }
            });
        kept
    }

    /// One share over every layer and head: entries kept per `[layer, head]` for
    /// `protected < B < n`, summing to `B` per row overall.
    pub(crate) fn global(&self, budget: usize, protected: usize) -> Array2<usize> {
        let base = (budget - protected).min(self.scored);
        let rows: Vec<(&[u32], &[u32])> = (0..self.layers)
            .flat_map(|l| (0..self.heads).map(move |h| (l, h)))
            .map(|(l, h)| self.row(l, h))
            .collect();
        let counts = global_top_counts(&rows, rows.len() * base);
        Array2::from_shape_fn((self.layers, self.heads), |(l, h)| {
            protected + counts[l * self.heads + h]
        })
    }
}

/// How many of the global top `k` (order: key descending, position ascending, row ascending)
/// fall in each row. Each row is `(keys descending, positions)` with positions ascending among
/// equal keys; `k` is at most the total length.
pub(crate) fn global_top_counts(rows: &[(&[u32], &[u32])], k: usize) -> Vec<usize> {
    if k == 0 {
        return vec![0; rows.len()];
    }
    let count_at_least = |v: u32| -> usize {
        rows.iter()
            .map(|(keys, _)| keys.partition_point(|&x| x >= v))
            .sum()
    };
    // The k-th largest key: the largest v with at least k keys ≥ v.
    let (mut lo, mut hi) = (0u32, u32::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if count_at_least(mid) >= k {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    let threshold = lo;
    let above: Vec<usize> = rows
        .iter()
        .map(|(keys, _)| keys.partition_point(|&x| x > threshold))
        .collect();
    let tied: Vec<&[u32]> = rows
        .iter()
        .zip(&above)
        .map(|((keys, positions), &a)| &positions[a..keys.partition_point(|&x| x >= threshold)])
        .collect();
    let wanted = k - above.iter().sum::<usize>();
    // Among the tied entries, take those before the largest position p with at most `wanted`
    // entries before it, then the rest at p itself in row order.
    let before = |p: u32| -> usize { tied.iter().map(|t| t.partition_point(|&x| x < p)).sum() };
    let (mut lo, mut hi) = (0u32, u32::MAX);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if before(mid) <= wanted {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    let mut at_p = wanted - before(lo);
    above
        .iter()
        .zip(&tied)
        .map(|(&a, t)| {
            let mut count = a + t.partition_point(|&x| x < lo);
            if at_p > 0 && t.get(count - a) == Some(&lo) {
                count += 1;
                at_p -= 1;
            }
            count
        })
        .collect()
}

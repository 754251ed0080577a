//! Budgets shared out by score: Ada-KV's head-adaptive shares within each layer
//! (`FFY0/AdaKV`, `AdaptiveSnapKVCluster`), kvpress's variant of them (`AdaKVPress`), and one
//! share over every layer and head at once
//! (kvpress's KVzip, `layerwise=False`), computed from a scored order. Every group of rows that
//! shares a budget (a layer's heads, or all rows) keeps its keys merged in one descending list,
//! built once, so the score a budget's top-k stops at is one lookup (`O(log(H·n))` steps of
//! `O(H log B)` for kvpress's variant), and a budget costs one search per row: live under the
//! budget slider.
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

/// One row's keys (descending) and positions (ascending among equal keys).
pub(crate) type ScoredRow<'a> = (&'a [u32], &'a [u32]);

/// Which rows share a budget by score: one group per layer, or one group of every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Groups {
    /// The heads of each layer (Ada-KV and kvpress's variant).
    PerLayer,
    /// Every row of every layer (the global share).
    AllRows,
}

/// Every row's scores over its scored range in its order's ranking, and each group's keys merged.
#[derive(Clone, Debug)]
pub(crate) struct HeadShares {
    layers: usize,
    heads: usize,
    scored: usize,
    /// `rows × scored` order keys, descending within a row.
    keys: Vec<u32>,
    /// `rows × scored` positions in the same order (ascending among equal keys).
    positions: Vec<u32>,
    /// The rows' keys again, merged per group (consecutive rows of `keys`), descending.
    merged: Vec<u32>,
    /// Rows per group.
    group_rows: usize,
}

impl HeadShares {
    /// The tables of a scored order whose rows share budgets in `groups`; `None` for a fixed
    /// order (it has no scores).
    pub(crate) fn new(order: &Order, groups: Groups) -> Option<Self> {
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
        let group_rows = match groups {
            Groups::PerLayer => heads,
            Groups::AllRows => layers * heads,
        };
        let mut merged = keys.clone();
        if group_rows * scored > 0 {
            merged
                .par_chunks_mut(group_rows * scored)
                .for_each(|group| group.sort_unstable_by(|a, b| b.cmp(a)));
        }
        Some(Self {
            layers,
            heads,
            scored,
            keys,
            positions,
            merged,
            group_rows,
        })
    }

    fn row(&self, layer: usize, head: usize) -> ScoredRow<'_> {
        let start = (layer * self.heads + head) * self.scored;
        let end = start + self.scored;
        (&self.keys[start..end], &self.positions[start..end])
    }

    /// The rows of the group starting at row `first` and the group's merged keys.
    fn group(&self, first: usize) -> (Vec<ScoredRow<'_>>, &[u32]) {
        let rows = (first..first + self.group_rows)
            .map(|r| self.row(r / self.heads, r % self.heads))
            .collect();
        let len = self.group_rows * self.scored;
        let start = first / self.group_rows * len;
        (rows, &self.merged[start..start + len])
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
                let (rows, merged) = self.group(l * self.heads);
                let counts =
                    global_top_counts(&rows, merged, 0, self.heads * base.min(self.scored));
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
                let (rows, merged) = self.group(l * self.heads);
                let counts = global_top_counts(&rows, merged, safe, self.heads * shared);
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
        let (rows, merged) = self.group(0);
        let counts = global_top_counts(&rows, merged, 0, rows.len() * base);
        Array2::from_shape_fn((self.layers, self.heads), |(l, h)| {
            protected + counts[l * self.heads + h]
        })
    }
}

/// How many of the global top `k` (order: key descending, position ascending, row ascending) of
/// the rows' entries after each row's first `skip` fall in each row (not counting the skipped).
/// Each row is `(keys descending, positions)` with positions ascending among equal keys;
/// `merged` is every key of the whole rows, descending; `k` is at most the entries left.
pub(crate) fn global_top_counts(
    rows: &[ScoredRow<'_>],
    merged: &[u32],
    skip: usize,
    k: usize,
) -> Vec<usize> {
    if k == 0 {
        return vec![0; rows.len()];
    }
    let threshold = kth_key(rows, merged, skip, k);
    let rows: Vec<ScoredRow<'_>> = rows
        .iter()
        .map(|(keys, positions)| (&keys[skip..], &positions[skip..]))
        .collect();
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

/// The `k`-th largest key (`k ≥ 1`) among the rows' entries after each row's first `skip`.
/// Without a skip it is `merged[k − 1]`. With one, the entries at or above a key `v` left in
/// the rows are those of `merged` less, per row, the skipped ones at or above `v` (all `skip` of
/// them when the row's `skip`-th key reaches `v`): a binary search over `merged` whose steps
/// look only at the rows' first `skip` keys.
fn kth_key(rows: &[ScoredRow<'_>], merged: &[u32], skip: usize, k: usize) -> u32 {
    if skip == 0 {
        return merged[k - 1];
    }
    let left_at_or_above = |v: u32| -> usize {
        let all = merged.partition_point(|&x| x >= v);
        let skipped: usize = rows
            .iter()
            .map(|(keys, _)| keys[..skip].partition_point(|&x| x >= v))
            .sum();
        all - skipped
    };
    // The first index of `merged` whose key leaves at least `k` entries at or above it.
    let (mut lo, mut hi) = (0, merged.len() - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if left_at_or_above(merged[mid]) >= k {
            hi = mid
        } else {
            lo = mid + 1
        }
    }
    merged[lo]
}

//! Ada-KV (`FFY0/AdaKV`, `AdaptiveSnapKVCluster`): SnapKV scores, with the layer's selection
//! budget `H·(B − w)` spread over its heads by a global top-k, then floored.
//!
//! Per layer, with `base = B − w` and floor α (default 0.2):
//! 1. take the global top `H·base` of every head's pooled scores over `[0, n − w)`;
//!    `cnt_h` = how many fall in head `h`;
//! 2. `cap_h = round(cnt_h·(1 − α) + ⌊base·α⌋)` (computed in `f32`, rounding half to even, as
//!    `torch.round`);
//! 3. head `h` keeps the window plus its own top `cap_h`.
//!
//! Ada-KV's mean over window rows ranks exactly as the sum used here (a common positive factor),
//! so the global top-k is the same. Ties in the global top-k go to the earlier position, then to
//! the lower head. `normalize` is off, as in Ada-KV's `config_compress`. The heads are query or
//! KV heads as the granularity says (Ada-KV's `gqa_support` = KV heads).

use ndarray::Array2;
use rayon::prelude::*;

use super::ranking::{Rankings, order_key};
use super::{PolicyError, PolicySettings, ScoreInputs, keep, snapkv};
use crate::attention::{KeepMask, ScoreGrid};

/// Step 2: per-head selection counts from the global top-k counts.
fn floored(
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

/// Entries kept per `[layer, head]` (window included) for `w < B < n`, by sorting every
/// `(head, position)` of a layer: the plain reference.
pub(crate) fn head_budgets(
    scores: &ScoreGrid,
    budget: usize,
    window: usize,
    alpha: f64,
) -> Array2<usize> {
    let (layers, heads, scored) = scores.dim();
    let base = budget - window;
    let mut kept = Array2::zeros((layers, heads));
    for l in 0..layers {
        let mut entries: Vec<(u32, usize, usize)> = (0..heads)
            .flat_map(|h| (0..scored).map(move |j| (h, j)))
            .map(|(h, j)| (!order_key(scores[[l, h, j]]), j, h))
            .collect();
        entries.sort_unstable();
        let mut counts = vec![0; heads];
        for &(_, _, h) in entries.iter().take(heads * base) {
            counts[h] += 1;
        }
        for (h, cap) in floored(&counts, base, alpha, scored).enumerate() {
            kept[[l, h]] = window + cap;
        }
    }
    kept
}

/// The kept set for `w < B < n`.
pub(crate) fn select(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let scores = snapkv::scores(inputs, settings, settings.pooling, "Ada-KV")?;
    let w = inputs.window(settings);
    let kept = head_budgets(&scores, budget, w, settings.ada_floor_alpha);
    Ok(keep::window_and_top(
        &scores,
        inputs.prompt_len(),
        w,
        |l, h| kept[[l, h]] - w,
    ))
}

/// Every head's scores over `[0, n − w)` in its ranking order, for budgets in `O(H log² n)` per
/// layer (the live path of [`super::PolicyBank`]).
#[derive(Clone, Debug)]
pub(crate) struct AdaTables {
    layers: usize,
    heads: usize,
    scored: usize,
    /// `rows × scored` order keys, descending within a row.
    keys: Vec<u32>,
    /// `rows × scored` positions in the same order (ascending among equal keys).
    positions: Vec<u32>,
}

impl AdaTables {
    /// Tables from SnapKV's pooled scores and the window-first rankings built from them.
    pub(crate) fn new(scores: &ScoreGrid, rankings: &Rankings, window: usize) -> Self {
        let (layers, heads, scored) = scores.dim();
        let mut keys = Vec::with_capacity(layers * heads * scored);
        let mut positions = Vec::with_capacity(layers * heads * scored);
        for l in 0..layers {
            for h in 0..heads {
                let ranked = &rankings.row(l, h)[window..];
                positions.extend_from_slice(ranked);
                keys.extend(
                    ranked
                        .iter()
                        .map(|&p| order_key(scores[[l, h, p as usize]])),
                );
            }
        }
        Self {
            layers,
            heads,
            scored,
            keys,
            positions,
        }
    }

    fn row(&self, layer: usize, head: usize) -> (&[u32], &[u32]) {
        let start = (layer * self.heads + head) * self.scored;
        let end = start + self.scored;
        (&self.keys[start..end], &self.positions[start..end])
    }

    /// Entries kept per `[layer, head]` (window included) for `w < B < n`; equal to
    /// [`head_budgets`].
    pub(crate) fn head_budgets(&self, budget: usize, window: usize, alpha: f64) -> Array2<usize> {
        let base = budget - window;
        let mut kept = Array2::zeros((self.layers, self.heads));
        kept.outer_iter_mut()
            .into_par_iter()
            .enumerate()
            .for_each(|(l, mut layer)| {
                let rows: Vec<(&[u32], &[u32])> = (0..self.heads).map(|h| self.row(l, h)).collect();
                let counts = global_top_counts(&rows, self.heads * base);
                for (slot, cap) in layer
                    .iter_mut()
                    .zip(floored(&counts, base, alpha, self.scored))
                {
                    *slot = window + cap;
                }
            });
        kept
    }
}

/// How many of the global top `k` (order: key descending, position ascending, head ascending)
/// fall in each row. Each row is `(keys descending, positions)` with positions ascending among
/// equal keys; `k` is at most the total length.
fn global_top_counts(rows: &[(&[u32], &[u32])], k: usize) -> Vec<usize> {
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
    // entries before it, then the rest at p itself in head order.
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::s;

    #[test]
    fn global_top_counts_break_ties_by_position_then_head() {
        // Keys (descending) and positions per head; three heads.
        let rows: [(&[u32], &[u32]); 3] = [
            (&[9, 5, 5, 1], &[3, 0, 7, 2]),
            (&[5, 5, 4, 0], &[0, 4, 1, 9]),
            (&[8, 5, 2, 2], &[6, 4, 1, 5]),
        ];
        // Global order: 9(h0) 8(h2) | ties at 5: pos0 h0, pos0 h1, pos4 h1, pos4 h2, pos7 h0 | 4(h1) ...
        let expect = [
            (1, vec![1, 0, 0]),
            (2, vec![1, 0, 1]),
            (3, vec![2, 0, 1]),
            (4, vec![2, 1, 1]),
            (5, vec![2, 2, 1]),
            (6, vec![2, 2, 2]),
            (7, vec![3, 2, 2]),
            (8, vec![3, 3, 2]),
        ];
        for (k, counts) in expect {
            assert_eq!(global_top_counts(&rows, k), counts, "k = {k}");
        }
        assert_eq!(global_top_counts(&rows, 12), vec![4, 4, 4]);
        assert_eq!(global_top_counts(&rows, 0), vec![0, 0, 0]);
    }

    #[test]
    fn tables_agree_with_the_sorting_reference_on_tied_scores() {
        let (layers, heads, n, window) = (3, 4, 40, 5);
        let scored = n - window;
        let scores = ndarray::Array3::from_shape_fn((layers, heads, scored), |(l, h, j)| {
            ((l * 7 + h * 3 + j * 5) % 4) as f32
        });
        let mut data = Vec::new();
        for l in 0..layers {
            for h in 0..heads {
                data.extend((n - window..n).rev().map(|p| p as u32));
                data.extend(super::super::ranking::rank_desc(scores.slice(s![l, h, ..])));
            }
        }
        let rankings = Rankings { n, heads, data };
        let tables = AdaTables::new(&scores, &rankings, window);
        for budget in window + 1..n {
            for alpha in [0.0, 0.2, 0.5, 1.0] {
                assert_eq!(
                    tables.head_budgets(budget, window, alpha),
                    head_budgets(&scores, budget, window, alpha),
                    "budget {budget}, alpha {alpha}"
                );
            }
        }
    }
}

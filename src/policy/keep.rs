//! Keep masks built directly from scores: the plain reference path behind [`super::select`].

use ndarray::{Array3, s};

use super::ranking::rank_desc;
use crate::attention::{KeepMask, ScoreGrid};

/// Keeps every entry.
pub(crate) fn all(layers: usize, heads: usize, n: usize) -> KeepMask {
    Array3::from_elem((layers, heads, n), true)
}

/// Keeps the last `count` positions of every row.
pub(crate) fn recent(layers: usize, heads: usize, n: usize, count: usize) -> KeepMask {
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.slice_mut(s![.., .., n - count.min(n)..]).fill(true);
    mask
}

/// Keeps the last `window` of `n` positions, plus in row `[l, h]` the `selected(l, h)`
/// highest-scored positions of `scores[l, h]`, which covers the scored range `[0, n − window)`.
pub(crate) fn window_and_top(
    scores: &ScoreGrid,
    n: usize,
    window: usize,
    selected: impl Fn(usize, usize) -> usize,
) -> KeepMask {
    let (layers, heads, _) = scores.dim();
    let mut mask = recent(layers, heads, n, window);
    for l in 0..layers {
        for h in 0..heads {
            let ranked = rank_desc(scores.slice(s![l, h, ..]));
            for &pos in ranked.iter().take(selected(l, h)) {
                mask[[l, h, pos as usize]] = true;
            }
        }
    }
    mask
}

/// Keeps the `count` highest-scored positions of every row of `scores` (which covers the whole
/// prompt).
pub(crate) fn top(scores: &ScoreGrid, count: usize) -> KeepMask {
    let n = scores.dim().2;
    window_and_top(scores, n, 0, |_, _| count)
}

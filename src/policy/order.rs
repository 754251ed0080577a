//! [`Order`]: how a policy ranks the positions of every `[layer, head]` row. Its kept set at a
//! count `c` is the first `c` positions, which is what makes every budget a prefix walk.
//!
//! Two kinds:
//! - **scored** ([`Order::scored`]): the entries the policy always keeps ([`Protected`]: the
//!   window, most recent first, or the first sink tokens), then a key range by score, highest first and the **earlier
//!   position first among equal scores**, then any position neither protected nor scored, in
//!   ascending order. The scores stay with the order for spreads that share a budget by score
//!   (Ada-KV, the global share).
//! - **fixed** ([`Order::same_in_every_row`], [`Order::per_row`]): a given permutation of the
//!   prompt positions (StreamingLLM's sinks then recent entries, Random's shuffle).
//!
//! One extension keeps a selection that is not a prefix: a **two-stage** order
//! ([`Order::two_stage`], CriticalKV) holds two rankings of every row and keeps, at count `c`,
//! the first [`Order::first_stage_count`]`(c)` positions of the first ranking, then the
//! earliest positions of the second ranking not yet kept until `c` are kept. Masks are written by
//! [`Order::mark_kept`] for every kind; only prefix orders have the bank's prefix tables.

use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use super::PolicyError;
use super::ranking::{Rankings, rank_desc};
use crate::attention::ScoreGrid;
use ndarray::Axis;

/// Entries a scored order keeps before any it chooses by score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protected {
    /// None: every entry is ranked by score.
    Nothing,
    /// The last `w` prompt positions (the observation window), most recent first.
    Window(usize),
    /// The first `s` prompt positions (attention sinks, as ExpectedAttention keeps them), in
    /// order.
    Sinks(usize),
}

impl Protected {
    /// How many entries are protected.
    pub fn len(self) -> usize {
        match self {
            Protected::Nothing => 0,
            Protected::Window(w) | Protected::Sinks(w) => w,
        }
    }

    /// Whether nothing is protected.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The protected positions of a prompt of `n` tokens, in keep order.
    fn positions(self, n: usize) -> Vec<u32> {
        let w = self.len().min(n);
        match self {
            Protected::Sinks(_) => (0..w).map(|p| p as u32).collect(),
            Protected::Nothing | Protected::Window(_) => {
                (n - w..n).rev().map(|p| p as u32).collect()
            }
        }
    }

    /// The positions a score range may cover: everything the protected ones leave.
    fn scorable(self, n: usize) -> Range<usize> {
        match self {
            Protected::Sinks(s) => s.min(n)..n,
            Protected::Nothing | Protected::Window(_) => 0..n - self.len().min(n),
        }
    }

    /// The note of a selection whose budget (below the prompt length) keeps no more than the
    /// protected entries: only those are kept, none is chosen by score.
    pub(crate) fn clamp_note(self, budget: usize) -> Option<String> {
        let w = match self {
            Protected::Nothing => return None,
            Protected::Sinks(s) => {
                return (budget <= s).then(|| {
                    format!(
                        "budget {budget} is at most the {s} sink tokens: clamped to the first {budget} entries, none chosen by score"
                    )
                });
            }
            Protected::Window(w) => w,
        };
        if budget < w {
            Some(format!(
                "budget {budget} is below the window of {w}: clamped to the last {budget} entries, none chosen by score"
            ))
        } else if budget == w {
            Some(format!(
                "budget {budget} equals the window: only the window is kept, none chosen by score"
            ))
        } else {
            None
        }
    }
}

/// A policy's ordering of every row's positions: its kept set at count `c` is the first `c`.
/// Cheap to clone (shared); two policies with the same order share one (see
/// [`super::OrderContext::order_of`]).
#[derive(Clone, Debug)]
pub struct Order(Arc<OrderData>);

#[derive(Debug)]
struct OrderData {
    rankings: Rankings,
    layers: usize,
    protected: Protected,
    scores: Option<RangeScores>,
    second_stage: Option<SecondStage>,
}

/// The second ranking of a two-stage order and the share of a count the first decides.
#[derive(Debug)]
struct SecondStage {
    rankings: Rankings,
    first_share: f64,
}

/// The scores a scored order ranked its range by.
#[derive(Debug)]
pub(crate) struct RangeScores {
    /// First scored position.
    pub start: usize,
    /// `[layers, heads, scored]`: the score of position `start + j` at `[.., .., j]`.
    pub grid: ScoreGrid,
}

impl Order {
    /// `protected` first, then positions `start..start + m` of a prompt of `n` tokens by
    /// `scores` (`[layers, heads, m]`), highest first and the earlier position first among
    /// equal scores, then any remaining position in ascending order. The scored range must lie
    /// outside the protected positions (before a window, after the sinks).
    pub fn scored(
        n: usize,
        protected: Protected,
        start: usize,
        scores: ScoreGrid,
    ) -> Result<Order, PolicyError> {
        let (layers, heads, m) = scores.dim();
        let protected = match protected {
            Protected::Window(w) => Protected::Window(w.min(n)),
            Protected::Sinks(s) => Protected::Sinks(s.min(n)),
            Protected::Nothing => Protected::Nothing,
        };
        let scorable = protected.scorable(n);
        if start < scorable.start || start + m > scorable.end {
            return Err(PolicyError::InvalidOrder(format!(
                "scores cover positions {start}..{} of a prompt of {n} tokens whose positions outside {}..{} are kept anyway",
                start + m,
                scorable.start,
                scorable.end
            )));
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(PolicyError::NonFinite("ranked"));
        }
        let mut data = vec![0u32; layers * heads * n];
        data.par_chunks_mut(n.max(1))
            .enumerate()
            .for_each(|(row, out)| {
                let (l, h) = (row / heads, row % heads);
                let ranked = rank_desc(scores.index_axis(Axis(0), l).index_axis(Axis(0), h))
                    .into_iter()
                    .map(|j| j + start as u32);
                let rest = (scorable.start..start)
                    .chain(start + m..scorable.end)
                    .map(|p| p as u32);
                let order = protected.positions(n).into_iter().chain(ranked).chain(rest);
                for (slot, pos) in out.iter_mut().zip(order) {
                    *slot = pos;
                }
            });
        Ok(Order(Arc::new(OrderData {
            rankings: Rankings { n, heads, data },
            layers,
            protected,
            scores: Some(RangeScores {
                start,
                grid: scores,
            }),
            second_stage: None,
        })))
    }

    /// The same order of the `order.len()` prompt positions in every row; `order` must list
    /// each position once.
    pub fn same_in_every_row(
        layers: usize,
        heads: usize,
        order: Vec<u32>,
    ) -> Result<Order, PolicyError> {
        check_permutation(&order, "the order")?;
        Ok(Self::fixed(Rankings {
            n: order.len(),
            heads,
            data: order.repeat(layers * heads),
        }))
    }

    /// Row `[l, h]` ordered as `row(l, h)`, which must list each of the `n` positions once.
    pub fn per_row(
        layers: usize,
        heads: usize,
        n: usize,
        row: impl Fn(usize, usize) -> Vec<u32> + Sync,
    ) -> Result<Order, PolicyError> {
        let mut data = vec![0u32; layers * heads * n];
        data.par_chunks_mut(n.max(1))
            .enumerate()
            .try_for_each(|(index, out)| {
                let (l, h) = (index / heads, index % heads);
                let order = row(l, h);
                if order.len() != n {
                    return Err(PolicyError::InvalidOrder(format!(
                        "row [{l}, {h}] orders {} positions of a prompt of {n}",
                        order.len()
                    )));
                }
                check_permutation(&order, &format!("row [{l}, {h}]"))?;
                out.copy_from_slice(&order);
                Ok(())
            })?;
        Ok(Self::fixed(Rankings { n, heads, data }))
    }

    fn fixed(rankings: Rankings) -> Order {
        let rows = rankings.data.len() / rankings.n.max(1);
        Order(Arc::new(OrderData {
            layers: rows / rankings.heads.max(1),
            rankings,
            protected: Protected::Nothing,
            scores: None,
            second_stage: None,
        }))
    }

    /// CriticalKV's two-stage order: at count `c` a row keeps the first
    /// [`Order::first_stage_count`]`(c)` positions of `first`, then the positions of `second`
    /// in its order, skipping those already kept, until `c` are kept. `first_share` lies in
    /// `[0, 1]`. Nothing is protected and no scores stay with the order (spreads by score
    /// refuse it).
    pub fn two_stage(
        first: &Order,
        second: &Order,
        first_share: f64,
    ) -> Result<Order, PolicyError> {
        if first.dim() != second.dim() {
            return Err(PolicyError::InvalidOrder(format!(
                "a two-stage order's rankings must cover the same rows, not {:?} and {:?}",
                first.dim(),
                second.dim()
            )));
        }
        if !(0.0..=1.0).contains(&first_share) {
            return Err(PolicyError::InvalidOrder(format!(
                "a two-stage order's first share must lie in [0, 1], not {first_share}"
            )));
        }
        Ok(Order(Arc::new(OrderData {
            rankings: first.rankings().clone(),
            layers: first.0.layers,
            protected: Protected::Nothing,
            scores: None,
            second_stage: Some(SecondStage {
                rankings: second.rankings().clone(),
                first_share,
            }),
        })))
    }

    /// Whether the kept set at a count is not a prefix of one ranking (a two-stage order).
    pub fn is_two_stage(&self) -> bool {
        self.0.second_stage.is_some()
    }

    /// Of `c` entries kept in a row, how many the first ranking decides: `c` for a prefix order;
    /// for a two-stage order `max(1, ⌊c · share⌋)` when the share and `c` are positive (kvpress's
    /// `CriticalKVPress` floors the first stage to one entry), else 0.
    pub fn first_stage_count(&self, c: usize) -> usize {
        match &self.0.second_stage {
            None => c,
            Some(stage) if stage.first_share > 0.0 && c > 0 => {
                ((c as f64 * stage.first_share).floor() as usize).clamp(1, c)
            }
            Some(_) => 0,
        }
    }

    /// Marks in `row` (all `false`, `n` long) the `c` positions row `[layer, head]` keeps at
    /// count `c` (all of them when `c ≥ n`).
    pub(crate) fn mark_kept(&self, layer: usize, head: usize, c: usize, row: &mut [bool]) {
        let n = self.0.rankings.n;
        let c = c.min(n);
        let first = self.0.rankings.row(layer, head);
        let Some(stage) = &self.0.second_stage else {
            if c <= n / 2 {
                for &p in &first[..c] {
                    row[p as usize] = true;
                }
            } else {
                row.fill(true);
                for &p in &first[c..] {
                    row[p as usize] = false;
                }
            }
            return;
        };
        self.mark_two_stage(layer, head, c, stage, row);
    }

    /// Marks in `marks` (all `false`) the `c ≤ n` positions a two-stage row keeps: the first
    /// ranking's first [`Order::first_stage_count`]`(c)`, then the second ranking's earliest not
    /// yet kept.
    fn mark_two_stage(
        &self,
        layer: usize,
        head: usize,
        c: usize,
        stage: &SecondStage,
        marks: &mut [bool],
    ) {
        let taken = self.first_stage_count(c);
        for &p in &self.0.rankings.row(layer, head)[..taken] {
            marks[p as usize] = true;
        }
        let mut left = c - taken;
        for &p in stage.rankings.row(layer, head) {
            if left == 0 {
                break;
            }
            if !marks[p as usize] {
                marks[p as usize] = true;
                left -= 1;
            }
        }
    }

    /// Rewrites `row`, the kept set of row `[layer, head]` at count `from`, into its kept set at
    /// count `to`, by the cheaper way: for a prefix order, changing only the positions between
    /// the two counts (`|to − from|` writes), or clearing the row and marking it afresh (one
    /// sequential clear and `min(to, n − to)` writes, which also needs no read of the old row);
    /// a two-stage order's row is always written afresh.
    pub(crate) fn move_kept(
        &self,
        layer: usize,
        head: usize,
        from: usize,
        to: usize,
        row: &mut [bool],
    ) {
        let n = self.0.rankings.n;
        let (from, to) = (from.min(n), to.min(n));
        // Writing afresh costs a sequential clear (about n/16 scattered writes' worth) and
        // `min(to, n − to)` writes into a row just cleared, hence in cache; moving, `|to − from|`
        // writes into a row that may not be, about twice as dear each (as measured by
        // `cargo bench --bench policy_budget`).
        let afresh = (to.min(n - to) + n / 16) / 2;
        if self.is_two_stage() || from.abs_diff(to) > afresh {
            row.fill(false);
            self.mark_kept(layer, head, to, row);
            return;
        }
        let first = self.0.rankings.row(layer, head);
        let (changed, keep) = if to > from {
            (&first[from..to], true)
        } else {
            (&first[to..from], false)
        };
        for &p in changed {
            row[p as usize] = keep;
        }
    }

    /// `(layers, heads, n)` of the rows.
    pub fn dim(&self) -> (usize, usize, usize) {
        let r = &self.0.rankings;
        (self.0.layers, r.heads, r.n)
    }

    /// The entries every row keeps before any chosen by score.
    pub fn protected(&self) -> Protected {
        self.0.protected
    }

    /// Whether `self` and `other` are the same order (one computation, shared).
    pub fn same(&self, other: &Order) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The (first) ranking of every row: the whole order of a prefix order.
    pub(crate) fn rankings(&self) -> &Rankings {
        &self.0.rankings
    }

    pub(crate) fn scores(&self) -> Option<&RangeScores> {
        self.0.scores.as_ref()
    }
}

/// Errors unless `order` lists each of `0..order.len()` once.
fn check_permutation(order: &[u32], what: &str) -> Result<(), PolicyError> {
    let mut seen = vec![false; order.len()];
    for &p in order {
        match seen.get_mut(p as usize) {
            Some(slot) if !*slot => *slot = true,
            _ => {
                return Err(PolicyError::InvalidOrder(format!(
                    "{what} must list each of the {} prompt positions once, but position {p} is repeated or out of range",
                    order.len()
                )));
            }
        }
    }
    Ok(())
}

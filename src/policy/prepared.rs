//! [`Prepared`]: one policy made ready for any budget: its order, its spread with the tables the
//! spread needs, and from those the counts, the mask and the note at a budget. The only
//! selection path: [`super::select`] prepares one policy, [`super::PolicyBank`] many.

use std::sync::{Arc, Mutex, PoisonError};

use ndarray::{Array2, Array3, Axis};
use rayon::prelude::*;

use super::interface::OrderContext;
use super::spread::Spreader;
use super::{Budget, Order, PolicyError, PolicyId, PolicySettings, Selection};
use crate::attention::KeepMask;

/// One policy's order and spread, for live budgets.
pub(crate) struct Prepared {
    /// The policy.
    pub policy: PolicyId,
    /// Its order (shared with every policy that orders the same way).
    pub order: Order,
    spreader: Spreader,
    /// The counts at the last budget asked for, when the spread shares by score (a budget
    /// change asks twice: masks and metrics).
    last: Mutex<Option<(usize, Array2<usize>)>>,
    /// The selection [`Prepared::select_live`] returned last, whose memory the next budget
    /// reuses once no one else holds it.
    live: Mutex<Option<Arc<Selection>>>,
}

impl Prepared {
    /// `policy` ordered in `ctx`, checked against the context's shape. The policy's inputs
    /// must have been checked ([`require`]).
    pub(crate) fn new(policy: PolicyId, ctx: &OrderContext) -> Result<Self, PolicyError> {
        let order = ctx.order_of(policy.policy())?;
        let expected = (ctx.layers(), ctx.heads(), ctx.prompt_len());
        if order.dim() != expected {
            let (l, h, n) = order.dim();
            return Err(PolicyError::Shape {
                what: format!("{}'s order", policy.label()),
                expected: vec![expected.0, expected.1, expected.2],
                found: vec![l, h, n],
            });
        }
        let spreader = Spreader::new(
            policy.policy().spread(ctx.settings()),
            &order,
            policy.label(),
        )?;
        Ok(Self {
            policy,
            order,
            spreader,
            last: Mutex::new(None),
            live: Mutex::new(None),
        })
    }

    /// Whether every row keeps all entries at every budget (its metrics need no tables).
    pub(crate) fn keeps_everything(&self) -> bool {
        self.spreader.keeps_everything()
    }

    /// Entries kept per `[layer, head]` at `budget`.
    pub(crate) fn kept(&self, budget: Budget) -> Array2<usize> {
        let asked = budget.asked();
        let shape = self.order.dim();
        let protected = self.order.protected().len();
        if !self.spreader.by_score() {
            return self.spreader.kept(asked, protected, shape);
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match &*last {
            Some((cached, kept)) if *cached == asked => kept.clone(),
            _ => {
                let kept = self.spreader.kept(asked, protected, shape);
                *last = Some((asked, kept.clone()));
                kept
            }
        }
    }

    /// What the policy keeps at `budget`.
    pub(crate) fn select(&self, budget: Budget, settings: &PolicySettings) -> Selection {
        let kept = self.kept(budget);
        Selection {
            policy: self.policy,
            budget,
            mask: kept_mask(&self.order, &kept),
            note: self.note(budget, &kept, settings),
            kept,
        }
    }

    /// What the policy keeps at `budget`, as [`Prepared::select`], for a live budget: when the
    /// selection returned last is no longer held elsewhere, its mask is moved to the new counts
    /// in place ([`Order::move_kept`]: each row changes only the entries between its old and new
    /// count, or is cleared and marked afresh when that is cheaper), so a budget change allocates
    /// no mask.
    pub(crate) fn select_live(&self, budget: Budget, settings: &PolicySettings) -> Arc<Selection> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut shared) = live.take()
            && let Some(selection) = Arc::get_mut(&mut shared)
        {
            let kept = self.kept(budget);
            if selection.kept != kept {
                move_mask(&self.order, &mut selection.mask, &selection.kept, &kept);
            }
            selection.note = self.note(budget, &kept, settings);
            selection.budget = budget;
            selection.kept = kept;
            *live = Some(Arc::clone(&shared));
            return shared;
        }
        let fresh = Arc::new(self.select(budget, settings));
        *live = Some(Arc::clone(&fresh));
        fresh
    }

    /// The selection [`Prepared::select_live`] returned last, when it keeps counts `kept` (a
    /// budget change asks for the masks and then the metrics of the same counts).
    pub(crate) fn live_at(&self, kept: &Array2<usize>) -> Option<Arc<Selection>> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.as_ref().filter(|s| s.kept == *kept).map(Arc::clone)
    }

    /// The note on counts `kept` at `budget`: the budget's own (it keeps everything), the
    /// policy's clamp to its protected entries, then the policy's own, then the spread's.
    pub(crate) fn note(
        &self,
        budget: Budget,
        kept: &Array2<usize>,
        settings: &PolicySettings,
    ) -> Option<String> {
        if budget.keeps_all() {
            return budget.note();
        }
        let asked = budget.asked();
        let protected = self.order.protected();
        if !self.spreader.keeps_everything()
            && let Some(note) = protected.clamp_note(asked)
        {
            return Some(note);
        }
        self.policy.policy().note(budget, settings).or_else(|| {
            (asked > protected.len())
                .then(|| {
                    self.spreader
                        .note(asked, protected.len(), budget.prompt_len(), kept)
                })
                .flatten()
        })
    }
}

/// Checks that the session has every input `policy` needs under `settings`.
pub(crate) fn require(
    policy: PolicyId,
    inputs: &super::ScoreInputs,
    settings: &PolicySettings,
) -> Result<(), PolicyError> {
    policy
        .needs(settings)
        .into_iter()
        .try_for_each(|input| inputs.require(input, policy.label()))
}

/// Mask keeping what row `[l, h]` of `order` keeps at count `kept[l, h]` (its first
/// `kept[l, h]` positions for a prefix order).
fn kept_mask(order: &Order, kept: &Array2<usize>) -> KeepMask {
    let (layers, heads) = kept.dim();
    let n = order.dim().2;
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(l, mut layer)| {
            for (h, mut row) in layer.outer_iter_mut().enumerate() {
                if let Some(slice) = row.as_slice_mut() {
                    order.mark_kept(l, h, kept[[l, h]], slice);
                }
            }
        });
    mask
}

/// Moves `mask`, what `order` keeps at counts `from`, to what it keeps at counts `to`.
fn move_mask(order: &Order, mask: &mut KeepMask, from: &Array2<usize>, to: &Array2<usize>) {
    mask.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(l, mut layer)| {
            for (h, mut row) in layer.outer_iter_mut().enumerate() {
                let (old, new) = (from[[l, h]], to[[l, h]]);
                if let (true, Some(slice)) = (old != new, row.as_slice_mut()) {
                    order.move_kept(l, h, old, new, slice);
                }
            }
        });
}

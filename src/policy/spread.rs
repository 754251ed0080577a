//! [`Spread`]: how a policy turns a budget `B` (entries per layer and head) into a count per
//! `[layer, head]` row, and the note that reports the actual counts.
//!
//! Every spread first applies the rules all policies share: at `B ≥ n` every row keeps all
//! `n` entries, and at `B` no larger than what the order protects (the window) every row keeps
//! the first `B` protected entries. Beyond that:
//! - [`Spread::PerHead`]: `B` in every row (SnapKV, H2O, Judge Q, the Oracle...);
//! - [`Spread::Everything`]: `n` in every row, whatever `B` (Full KV);
//! - [`Spread::Pyramid`]: PyramidKV's per-layer schedule ([`super::layer_schedule`]);
//! - [`Spread::HeadAdaptive`]: Ada-KV's shares between the heads of each layer, by score
//!   ([`super::head_shares`]);
//! - [`Spread::Safeguarded`]: kvpress's `AdaKVPress` shares between the heads of each layer:
//!   every head's own top entries first, then the layer's highest remaining scores;
//! - [`Spread::Global`]: one share over every layer and head at once, by score, with the same
//!   total as `B` per row (kvpress's KVzip, `layerwise=False`).

use ndarray::Array2;

use super::head_shares::{Groups, HeadShares};
use super::layer_schedule::{Schedule, layer_budgets};
use super::{Order, PolicyError};

/// How a budget is spread over layers and heads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Spread {
    /// `B` in every row.
    PerHead,
    /// Every entry in every row: the budget is ignored.
    Everything,
    /// PyramidKV: per-layer budgets decreasing from the first layer to the last, `β` as given.
    Pyramid {
        /// The last layer selects about `(B − w) / β` entries.
        beta: f64,
    },
    /// Ada-KV: the layer's `H·(B − w)` selections go to its heads by a global top-k of their
    /// scores, each head guaranteed `⌊α·(B − w)⌋`.
    HeadAdaptive {
        /// The floor α in `[0, 1]`.
        floor_alpha: f64,
    },
    /// kvpress's `AdaKVPress`: every head keeps its top `max(1, ⌊α·B⌋)` entries (protected
    /// ones first), and the rest of the layer's `H·B` go to the highest remaining scores of any
    /// of its heads.
    Safeguarded {
        /// kvpress's `alpha_safeguard` in `[0, 1]`.
        alpha: f64,
    },
    /// One share over every layer and head: the `L·H·(B − w)` highest scores of all rows.
    Global,
}

/// A spread made ready for one order: the score tables it needs, built once.
#[derive(Debug)]
pub(crate) enum Spreader {
    PerHead,
    Everything,
    Pyramid {
        beta: f64,
    },
    HeadAdaptive {
        floor_alpha: f64,
        shares: HeadShares,
    },
    Safeguarded {
        alpha: f64,
        shares: HeadShares,
    },
    Global {
        shares: HeadShares,
    },
}

impl Spreader {
    /// `spread` ready for `order`; `label` names the policy in the error a spread by score over
    /// a fixed order gives.
    pub(crate) fn new(spread: Spread, order: &Order, label: &str) -> Result<Self, PolicyError> {
        let shares = |groups| {
            HeadShares::new(order, groups).ok_or_else(|| {
                PolicyError::InvalidOrder(format!(
                    "{label} shares its budget by score, but its order is fixed (it has no scores)"
                ))
            })
        };
        Ok(match spread {
            Spread::PerHead => Spreader::PerHead,
            Spread::Everything => Spreader::Everything,
            Spread::Pyramid { beta } => Spreader::Pyramid { beta },
            Spread::HeadAdaptive { floor_alpha } => Spreader::HeadAdaptive {
                floor_alpha,
                shares: shares(Groups::PerLayer)?,
            },
            Spread::Safeguarded { alpha } => Spreader::Safeguarded {
                alpha,
                shares: shares(Groups::PerLayer)?,
            },
            Spread::Global => Spreader::Global {
                shares: shares(Groups::AllRows)?,
            },
        })
    }

    /// Whether the counts come from a top-k by score (worth remembering between calls).
    pub(crate) fn by_score(&self) -> bool {
        matches!(
            self,
            Spreader::HeadAdaptive { .. } | Spreader::Safeguarded { .. } | Spreader::Global { .. }
        )
    }

    /// Whether every row keeps all entries at every budget.
    pub(crate) fn keeps_everything(&self) -> bool {
        matches!(self, Spreader::Everything)
    }

    /// Entries kept per `[layer, head]` at `budget` entries per row (`asked`, any value ≥ 1),
    /// for rows of `n` positions that protect their first `protected`.
    pub(crate) fn kept(
        &self,
        budget: usize,
        protected: usize,
        (layers, heads, n): (usize, usize, usize),
    ) -> Array2<usize> {
        let uniform = |c: usize| Array2::from_elem((layers, heads), c);
        if budget >= n || self.keeps_everything() {
            return uniform(n);
        }
        if budget <= protected {
            return uniform(budget);
        }
        match self {
            Spreader::PerHead | Spreader::Everything => uniform(budget),
            Spreader::Pyramid { beta } => {
                let (per_layer, _) = layer_budgets(n, budget, protected, layers, *beta);
                Array2::from_shape_fn((layers, heads), |(l, _)| per_layer[l])
            }
            Spreader::HeadAdaptive {
                floor_alpha,
                shares,
            } => shares.head_adaptive(budget, protected, *floor_alpha),
            Spreader::Safeguarded { alpha, shares } => {
                shares.safeguarded(budget, protected, *alpha)
            }
            Spreader::Global { shares } => shares.global(budget, protected),
        }
    }

    /// The note on counts `kept` at `budget` (`protected < budget < n`).
    pub(crate) fn note(
        &self,
        budget: usize,
        protected: usize,
        n: usize,
        kept: &Array2<usize>,
    ) -> Option<String> {
        let (min, max, mean) = spread_of(kept);
        match self {
            Spreader::PerHead | Spreader::Everything => None,
            Spreader::Pyramid { beta } => {
                let per_layer: Vec<usize> = kept
                    .outer_iter()
                    .map(|row| row.iter().copied().max().unwrap_or(0))
                    .collect();
                let (_, schedule) = layer_budgets(n, budget, protected, per_layer.len(), *beta);
                match schedule {
                    Schedule::Uniform => Some(format!(
                        "prompt of {n} < 2·(budget − window) = {}: uniform SnapKV budgets (KVCache-Factory's fallback)",
                        2 * (budget - protected)
                    )),
                    Schedule::Pyramid => {
                        let mean =
                            per_layer.iter().sum::<usize>() as f64 / per_layer.len().max(1) as f64;
                        Some(format!(
                            "per-layer budgets {} (first layer) to {} (last layer), mean {mean:.1} (KVCache-Factory's integer schedule)",
                            per_layer.first().copied().unwrap_or(0),
                            per_layer.last().copied().unwrap_or(0),
                        ))
                    }
                }
            }
            Spreader::HeadAdaptive { floor_alpha, .. } => Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (Ada-KV, floor α = {floor_alpha})"
            )),
            Spreader::Safeguarded { alpha, .. } => Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (kvpress's AdaKV, safeguard α = {alpha})"
            )),
            Spreader::Global { .. } => Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (one share over every layer and head)"
            )),
        }
    }
}

/// Smallest, largest and mean count.
fn spread_of(kept: &Array2<usize>) -> (usize, usize, f64) {
    let min = kept.iter().copied().min().unwrap_or(0);
    let max = kept.iter().copied().max().unwrap_or(0);
    let mean = kept.iter().sum::<usize>() as f64 / kept.len().max(1) as f64;
    (min, max, mean)
}

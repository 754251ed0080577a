//! [`select`]: one policy at one budget, through the policy's own order and spread
//! ([`super::PolicyBank`] gives the same answer for many policies and live budgets).

use ndarray::Array2;

use super::interface::OrderContext;
use super::prepared::{Prepared, require};
use super::{Budget, PolicyError, PolicyId, PolicySettings, ScoreInputs};
use crate::attention::KeepMask;

/// What one policy keeps at one budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// The policy.
    pub policy: PolicyId,
    /// The budget asked for: entries kept per layer per head, window included.
    pub budget: Budget,
    /// `[layers, heads, n_prompt]`, `true` where the entry stays; heads as the granularity says.
    pub mask: KeepMask,
    /// Entries kept per `[layer, head]` (differs from the budget for Full KV, PyramidKV, Ada-KV
    /// and budgets at or above the prompt length).
    pub kept: Array2<usize>,
    /// What the user should know about this selection: a clamp, a fallback, the actual
    /// per-layer or per-head budgets.
    pub note: Option<String>,
}

/// Selects what `policy` keeps at `budget` (entries per layer per head, window included).
///
/// Budget semantics (every policy, see [`Budget`]):
/// - at or above the prompt length every entry is kept (the note says so);
/// - below what the policy must keep (the window `w`, StreamingLLM's sinks) the budget is a hard
///   cap: only the most recent `B` entries (the first `B` for StreamingLLM) are kept, none is
///   chosen by score, and the note says so. The cache is never empty.
///
/// Equal scores are broken toward the earlier position (see [`super`]).
pub fn select(
    policy: PolicyId,
    inputs: &ScoreInputs,
    budget: Budget,
    settings: &PolicySettings,
) -> Result<Selection, PolicyError> {
    settings.validate()?;
    inputs.check()?;
    budget.check_prompt(inputs.prompt_len())?;
    require(policy, inputs, settings)?;
    let ctx = OrderContext::new(inputs, settings);
    Ok(Prepared::new(policy, &ctx)?.select(budget, settings))
}

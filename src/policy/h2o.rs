//! H2O at prefill (KVCache-Factory's `H2OKVCluster`, causal as fixed upstream): the attention
//! each key receives from **every** prompt query, accumulated during prefill
//! ([`crate::session::Session::accumulated`]). No pooling; the window `w` is always kept and the
//! top `B − w` of `[0, n − w)` by accumulated attention are added.
//!
//! Accumulated scores favour early keys (more queries see them); that bias is H2O's, not a bug.

use super::{PolicyError, PolicySettings, ScoreInputs, keep, snapkv};
use crate::attention::{KeepMask, Pooling, ScoreGrid};

/// Accumulated scores over `[0, n − w)` at the settings' granularity.
pub(crate) fn scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<ScoreGrid, PolicyError> {
    let accumulated = inputs.accumulated()?;
    snapkv::scored_range(inputs, accumulated, Pooling::None, settings)
}

/// The kept set for `w < B < n`.
pub(crate) fn select(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let scores = scores(inputs, settings)?;
    let w = inputs.window(settings);
    Ok(keep::window_and_top(
        &scores,
        inputs.prompt_len(),
        w,
        |_, _| budget - w,
    ))
}

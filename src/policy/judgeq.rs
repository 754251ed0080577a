//! Judge Q (arXiv 2509.10798): the soft tokens appended after the prompt score the keys.
//!
//! Scores: the sum over the soft-token rows of their attention to each prompt key, pooled as
//! SnapKV's (the paper compares "under the same settings"). The paper leaves open whether the
//! last window is also kept (judgeq.md §1.6), so both variants exist:
//! - (a) `judgeq_keep_window = false`, the default: the top `B` of the whole prompt, pooled over
//!   `[0, n)`;
//! - (b) `judgeq_keep_window = true`: the window `w` plus the top `B − w` of `[0, n − w)`, pooled
//!   over that range (SnapKV with soft-token queries).

use super::{PolicyError, PolicySettings, ScoreInputs, keep, snapkv};
use crate::attention::{KeepMask, QuerySource, ScoreGrid};

/// Soft-token scores over the variant's scored range, pooled, at the settings' granularity.
pub(crate) fn scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<ScoreGrid, PolicyError> {
    let sums = inputs.source_sums(QuerySource::Soft, "Judge Q")?;
    if settings.judgeq_keep_window {
        snapkv::scored_range(inputs, sums.view(), settings.pooling, settings)
    } else {
        inputs.ranked_scores(sums.view(), inputs.prompt_len(), settings.pooling, settings)
    }
}

/// The kept set for `B < n` (and, in variant (b), `B > w`).
pub(crate) fn select(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let scores = scores(inputs, settings)?;
    if settings.judgeq_keep_window {
        let w = inputs.window(settings);
        Ok(keep::window_and_top(
            &scores,
            inputs.prompt_len(),
            w,
            |_, _| budget - w,
        ))
    } else {
        Ok(keep::top(&scores, budget))
    }
}

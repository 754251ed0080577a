//! Judge Q (arXiv 2509.10798): the soft tokens appended after the prompt score the keys.
//!
//! Scores: the sum over the soft-token rows of their attention to each prompt key, pooled as
//! SnapKV's (the paper compares "under the same settings"). The paper leaves open whether the
//! last window is also kept (judgeq.md §1.6), so both variants exist:
//! - (a) `judgeq_keep_window = false`, the default: the top `B` of the whole prompt, pooled over
//!   `[0, n)`;
//! - (b) `judgeq_keep_window = true`: the window `w` plus the top `B − w` of `[0, n − w)`, pooled
//!   over that range (SnapKV with soft-token queries).
//!
//! `judgeq_window_layers = L > 0` (not in the paper) ranks the first `L` layers by the last
//! window's attention instead: a soft token's layer-0 query depends only on its own embedding
//! and position, never on the prompt.

use std::borrow::Cow;

use ndarray::s;

use super::{PolicyError, PolicySettings, ScoreInputs, keep, snapkv};
use crate::attention::{KeepMask, QuerySource, ScoreGrid};

/// Soft-token scores over the variant's scored range, pooled, at the settings' granularity.
pub(crate) fn scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<ScoreGrid, PolicyError> {
    let sums = query_sums(inputs, settings.judgeq_window_layers)?;
    if settings.judgeq_keep_window {
        snapkv::scored_range(inputs, sums.view(), settings.pooling, settings)
    } else {
        inputs.ranked_scores(sums.view(), inputs.prompt_len(), settings.pooling, settings)
    }
}

/// The soft tokens' attention sums, with those of the first `window_layers` layers replaced by
/// the last window's.
fn query_sums<'a>(
    inputs: &'a ScoreInputs<'_>,
    window_layers: usize,
) -> Result<Cow<'a, ScoreGrid>, PolicyError> {
    let soft = inputs.source_sums(QuerySource::Soft, "Judge Q")?;
    if window_layers == 0 {
        return Ok(Cow::Borrowed(soft));
    }
    let window = inputs.source_sums(QuerySource::Window, "Judge Q")?;
    let layers = window_layers.min(soft.dim().0);
    let mut mixed = soft.clone();
    mixed
        .slice_mut(s![..layers, .., ..])
        .assign(&window.slice(s![..layers, .., ..]));
    Ok(Cow::Owned(mixed))
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

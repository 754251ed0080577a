//! SnapKV (`FasterDecoding/SnapKV`, `SnapKVCluster.update_kv`): the last `w` prompt queries
//! score the earlier keys.
//!
//! Score per key `j < n − w`: the sum over the window rows of their attention to `j`, pooled
//! along `[0, n − w)` only. The window (the last `w` positions) is always kept and the top
//! `B − w` of the rest by pooled score are added.

use ndarray::ArrayView3;

use super::{PolicyError, PolicySettings, ScoreInputs, keep};
use crate::attention::{KeepMask, Pooling, QuerySource, ScoreGrid};

/// Window scores over the scored range `[0, n − w)`, pooled with `pooling`, at the settings'
/// granularity.
pub(crate) fn scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
    pooling: Pooling,
    needed_by: &str,
) -> Result<ScoreGrid, PolicyError> {
    let sums = inputs.source_sums(QuerySource::Window, needed_by)?;
    scored_range(inputs, sums.view(), pooling, settings)
}

/// `raw` restricted to `[0, n − w)`, pooled and reduced (shared by SnapKV, H2O and Judge Q (b)).
pub(crate) fn scored_range(
    inputs: &ScoreInputs,
    raw: ArrayView3<f32>,
    pooling: Pooling,
    settings: &PolicySettings,
) -> Result<ScoreGrid, PolicyError> {
    let end = inputs.prompt_len() - inputs.window(settings);
    inputs.ranked_scores(raw, end, pooling, settings)
}

/// The kept set for `w < B < n`.
pub(crate) fn select(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let scores = scores(inputs, settings, settings.pooling, "SnapKV")?;
    let w = inputs.window(settings);
    Ok(keep::window_and_top(
        &scores,
        inputs.prompt_len(),
        w,
        |_, _| budget - w,
    ))
}

//! H2O as the Judge Q group's baseline code runs it (`Lookahead_Q-Cache`, `H2OKVCluster`):
//! only the last `w` queries score, summed, **without pooling**: SnapKV without pooling.

use super::{PolicyError, PolicySettings, ScoreInputs, keep, snapkv};
use crate::attention::{KeepMask, Pooling};

/// The kept set for `w < B < n`.
pub(crate) fn select(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let scores = snapkv::scores(inputs, settings, Pooling::None, "H2O (window)")?;
    let w = inputs.window(settings);
    Ok(keep::window_and_top(
        &scores,
        inputs.prompt_len(),
        w,
        |_, _| budget - w,
    ))
}

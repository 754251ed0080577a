//! Oracle: the tokens the model decodes with the full cache score the keys (sum of their raw
//! rows per head, as the Judge Q paper's hit rate ranks them; pooled like the other methods only
//! when `oracle_pooling` is on) and the top `B` of the whole prompt are kept. It cannot run at inference (the
//! answer is not known yet); it is the upper bound Judge Q's soft tokens are trained to imitate,
//! and the reference set of the hit rate.

use super::{PolicyError, PolicySettings, ScoreInputs, keep};
use crate::attention::{KeepMask, Pooling, QuerySource, ScoreGrid};

/// Decoded-token scores over the whole prompt at the settings' granularity, pooled when
/// [`PolicySettings::oracle_pooling`] is set.
pub(crate) fn scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<ScoreGrid, PolicyError> {
    let sums = inputs.source_sums(QuerySource::Decoded, "the Oracle and the hit rate")?;
    let pooling = if settings.oracle_pooling {
        settings.pooling
    } else {
        Pooling::None
    };
    inputs.ranked_scores(sums.view(), inputs.prompt_len(), pooling, settings)
}

/// The kept set for `B < n`.
pub(crate) fn select(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    Ok(keep::top(&scores(inputs, settings)?, budget))
}

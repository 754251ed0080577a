//! [`select`]: one policy at one budget, computed directly from the scores (the plain,
//! reference path; [`super::PolicyBank`] gives the same result fast for live budgets).

use ndarray::{Array2, Axis};

use super::{PolicyError, PolicyKind, PolicySettings, ScoreInputs};
use super::{
    adakv, full_kv, h2o, h2o_window, judgeq, keep, oracle, pyramidkv, random, snapkv, streaming_llm,
};
use crate::attention::{KeepMask, QuerySource};

/// What one policy keeps at one budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// The policy.
    pub policy: PolicyKind,
    /// The budget asked for: entries kept per layer per head, window included.
    pub budget: usize,
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
/// Budget semantics (every policy):
/// - 0 is an error ([`PolicyError::ZeroBudget`]);
/// - at or above the prompt length every entry is kept (the note says so);
/// - below what the policy must keep (the window `w`, StreamingLLM's sinks) the budget is a hard
///   cap: only the most recent `B` entries (the first `B` for StreamingLLM) are kept, none is
///   chosen by score, and the note says so. The cache is never empty.
///
/// Equal scores are broken toward the earlier position (see [`super`]).
pub fn select(
    policy: PolicyKind,
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<Selection, PolicyError> {
    settings.validate()?;
    inputs.check()?;
    if budget == 0 {
        return Err(PolicyError::ZeroBudget);
    }
    require_sources(policy, inputs)?;
    let (layers, heads, n) = (inputs.layers(), inputs.heads(settings), inputs.prompt_len());
    let w = inputs.window(settings);
    let mask = if budget >= n || policy == PolicyKind::FullKv {
        full_kv::select(layers, heads, n)
    } else if policy.keeps_window(settings.judgeq_keep_window) && budget <= w {
        keep::recent(layers, heads, n, budget)
    } else {
        match policy {
            PolicyKind::FullKv => full_kv::select(layers, heads, n),
            PolicyKind::StreamingLlm => {
                streaming_llm::select(layers, heads, n, budget, settings.sinks)
            }
            PolicyKind::H2o => h2o::select(inputs, budget, settings)?,
            PolicyKind::H2oWindow => h2o_window::select(inputs, budget, settings)?,
            PolicyKind::SnapKv => snapkv::select(inputs, budget, settings)?,
            PolicyKind::PyramidKv => pyramidkv::select(inputs, budget, settings)?,
            PolicyKind::AdaKv => adakv::select(inputs, budget, settings)?,
            PolicyKind::JudgeQ => judgeq::select(inputs, budget, settings)?,
            PolicyKind::Oracle => oracle::select(inputs, budget, settings)?,
            PolicyKind::Random => random::select(layers, heads, n, budget, settings.random_seed),
        }
    };
    let kept = mask.map_axis(Axis(2), |row| row.iter().filter(|&&k| k).count());
    let note = note(policy, budget, n, settings, &kept);
    Ok(Selection {
        policy,
        budget,
        mask,
        kept,
        note,
    })
}

/// Errors early when the policy's score source is missing, empty or not finite.
pub(crate) fn require_sources(policy: PolicyKind, inputs: &ScoreInputs) -> Result<(), PolicyError> {
    match policy {
        PolicyKind::FullKv | PolicyKind::StreamingLlm | PolicyKind::Random => Ok(()),
        PolicyKind::H2o => inputs.accumulated().map(|_| ()),
        PolicyKind::H2oWindow | PolicyKind::SnapKv | PolicyKind::PyramidKv | PolicyKind::AdaKv => {
            inputs
                .source_sums(QuerySource::Window, policy.label())
                .map(|_| ())
        }
        PolicyKind::JudgeQ => inputs
            .source_sums(QuerySource::Soft, policy.label())
            .map(|_| ()),
        PolicyKind::Oracle => inputs
            .source_sums(QuerySource::Decoded, policy.label())
            .map(|_| ()),
    }
}

/// The note for a selection whose per-row kept counts are `kept`.
pub(crate) fn note(
    policy: PolicyKind,
    budget: usize,
    n: usize,
    settings: &PolicySettings,
    kept: &Array2<usize>,
) -> Option<String> {
    let w = settings.window.min(n);
    if budget >= n {
        return Some(format!(
            "budget {budget} ≥ prompt length {n}: every entry is kept"
        ));
    }
    if policy == PolicyKind::FullKv {
        return Some(format!(
            "Full KV ignores the budget: all {n} entries are kept"
        ));
    }
    if policy.keeps_window(settings.judgeq_keep_window) {
        if budget < w {
            return Some(format!(
                "budget {budget} is below the window of {w}: clamped to the last {budget} entries, none chosen by score"
            ));
        }
        if budget == w {
            return Some(format!(
                "budget {budget} equals the window: only the window is kept, none chosen by score"
            ));
        }
    }
    match policy {
        PolicyKind::StreamingLlm if budget < settings.sinks => Some(format!(
            "budget {budget} is below the {} sink tokens: clamped to the first {budget} entries",
            settings.sinks
        )),
        PolicyKind::PyramidKv => {
            let per_layer: Vec<usize> = kept
                .outer_iter()
                .map(|row| row.iter().copied().max().unwrap_or(0))
                .collect();
            let (_, schedule) =
                pyramidkv::layer_budgets(n, budget, w, per_layer.len(), settings.pyramid_beta);
            match schedule {
                pyramidkv::Schedule::Uniform => Some(format!(
                    "prompt of {n} < 2·(budget − window) = {}: uniform SnapKV budgets (KVCache-Factory's fallback)",
                    2 * (budget - w)
                )),
                pyramidkv::Schedule::Pyramid => {
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
        PolicyKind::AdaKv => {
            let min = kept.iter().copied().min().unwrap_or(0);
            let max = kept.iter().copied().max().unwrap_or(0);
            let mean = kept.iter().sum::<usize>() as f64 / kept.len().max(1) as f64;
            Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (Ada-KV, floor α = {})",
                settings.ada_floor_alpha
            ))
        }
        _ => None,
    }
}

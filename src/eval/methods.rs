//! The methods an evaluation compares: a policy under one setting of the policy room's
//! [`PolicySettings`], with a row name of its own.

use crate::policy::{PolicyId, PolicySettings, policies};

/// One row of the evaluation table.
#[derive(Clone, Debug, PartialEq)]
pub struct Method {
    /// Machine name (`snapkv`, `judgeq-nopool`).
    pub id: String,
    /// Name for people.
    pub label: String,
    /// The policy.
    pub policy: PolicyId,
    /// Its settings (window, pooling, granularity, Judge Q variant...).
    pub settings: PolicySettings,
}

/// Ids of the named variants [`method_by_id`] knows besides the policies' own ids: every
/// registered policy's variants (`snapkv-nopool`, `snapkv-chunk`, `judgeq-window`,
/// `judgeq-nopool`, `judgeq-layer0-window`, `judgeq-chunk`), in registry order.
pub fn variant_ids() -> Vec<&'static str> {
    policies::variants().iter().map(|(_, v)| v.id).collect()
}

/// The method with `id` at the settings `base`: a policy's own id (`snapkv`, `judgeq`, ...) at
/// `base`, or a registered policy's named variant ([`variant_ids`]) at the variant's settings
/// made from `base`: `snapkv-nopool` (SnapKV without pooling, the H2O of the Judge Q authors'
/// code), `judgeq-window` (Judge Q keeping the last window too, variant b), `judgeq-nopool`,
/// `judgeq-layer0-window` (layer 0 ranked by the window).
pub fn method_by_id(id: &str, base: &PolicySettings) -> Option<Method> {
    if let Some((policy, variant)) = policies::variants().into_iter().find(|(_, v)| v.id == id) {
        return Some(Method {
            id: variant.id.to_string(),
            label: variant.label.to_string(),
            policy,
            settings: (variant.settings)(base),
        });
    }
    let policy = id.parse::<PolicyId>().ok()?;
    Some(Method {
        id: policy.id().to_string(),
        label: policy.label().to_string(),
        policy,
        settings: base.clone(),
    })
}

/// The comparison of the Judge Q paper, at the policy settings `base` (window, pooling,
/// granularity): StreamingLLM, SnapKV without pooling (= H2O's last-window variant), SnapKV,
/// PyramidKV, Ada-KV, Judge Q (variant a: top-B of the whole prompt) when soft tokens are given,
/// the other Judge Q variants (b: the last window kept too; no pooling; layer 0 ranked by the
/// window), and the Oracle
/// (its answers are the best any kept set of that size can do).
pub fn paper_methods(base: &PolicySettings, with_soft: bool) -> Vec<Method> {
    let baselines = [
        "streamingllm",
        "snapkv-nopool",
        "snapkv",
        "pyramidkv",
        "adakv",
    ];
    let judgeq = [
        "judgeq",
        "judgeq-window",
        "judgeq-nopool",
        "judgeq-layer0-window",
    ];
    let soft_rows: &[&str] = if with_soft { &judgeq } else { &[] };
    baselines
        .iter()
        .chain(soft_rows)
        .chain(&["oracle"])
        .filter_map(|id| method_by_id(id, base))
        .collect()
}

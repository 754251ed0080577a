//! The methods an evaluation compares: a policy under one setting of the policy room's
//! [`PolicySettings`], with a row name of its own.

use crate::attention::Pooling;
use crate::policy::{PolicyKind, PolicySettings};

/// One row of the evaluation table.
#[derive(Clone, Debug, PartialEq)]
pub struct Method {
    /// Machine name (`snapkv`, `judgeq-nopool`).
    pub id: String,
    /// Name for people.
    pub label: String,
    /// The policy.
    pub policy: PolicyKind,
    /// Its settings (window, pooling, granularity, Judge Q variant...).
    pub settings: PolicySettings,
}

impl Method {
    fn new(policy: PolicyKind, settings: &PolicySettings) -> Self {
        Self {
            id: policy.id().to_string(),
            label: policy.label().to_string(),
            policy,
            settings: settings.clone(),
        }
    }

    fn named(mut self, id: &str, label: &str) -> Self {
        self.id = id.to_string();
        self.label = label.to_string();
        self
    }
}

/// Ids of the named variants [`method_by_id`] knows besides the policies' own ids.
pub const VARIANT_IDS: [&str; 4] = [
    "snapkv-nopool",
    "judgeq-window",
    "judgeq-nopool",
    "judgeq-layer0-window",
];

/// The method with `id` at the settings `base`: a policy's own id (`snapkv`, `judgeq`, ...) or
/// one of the named variants ([`VARIANT_IDS`]): `snapkv-nopool` (SnapKV without pooling, the
/// H2O of the Judge Q authors' code), `judgeq-window` (Judge Q keeping the last window too,
/// variant b), `judgeq-nopool`, `judgeq-layer0-window` (layer 0 ranked by the window).
pub fn method_by_id(id: &str, base: &PolicySettings) -> Option<Method> {
    let judgeq = || PolicySettings {
        judgeq_keep_window: false,
        judgeq_window_layers: 0,
        ..base.clone()
    };
    let method = match id {
        "snapkv-nopool" => Method::new(PolicyKind::H2oWindow, &unpooled(base))
            .named("snapkv-nopool", "SnapKV, no pooling"),
        "judgeq-window" => Method::new(
            PolicyKind::JudgeQ,
            &PolicySettings {
                judgeq_keep_window: true,
                ..judgeq()
            },
        )
        .named("judgeq-window", "Judge Q, window kept"),
        "judgeq-nopool" => Method::new(PolicyKind::JudgeQ, &unpooled(&judgeq()))
            .named("judgeq-nopool", "Judge Q, no pooling"),
        "judgeq-layer0-window" => Method::new(
            PolicyKind::JudgeQ,
            &PolicySettings {
                judgeq_window_layers: 1,
                ..judgeq()
            },
        )
        .named("judgeq-layer0-window", "Judge Q, layer 0 by the window"),
        other => Method::new(other.parse::<PolicyKind>().ok()?, base),
    };
    Some(method)
}

/// `settings` without pooling (methods and pooled oracle alike).
fn unpooled(settings: &PolicySettings) -> PolicySettings {
    PolicySettings {
        pooling: Pooling::None,
        ..settings.clone()
    }
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

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
    let mut methods = vec![
        Method::new(PolicyKind::StreamingLlm, base),
        Method::new(PolicyKind::H2oWindow, &unpooled(base))
            .named("snapkv-nopool", "SnapKV, no pooling"),
        Method::new(PolicyKind::SnapKv, base),
        Method::new(PolicyKind::PyramidKv, base),
        Method::new(PolicyKind::AdaKv, base),
    ];
    if with_soft {
        let variant_a = PolicySettings {
            judgeq_keep_window: false,
            ..base.clone()
        };
        let variant_b = PolicySettings {
            judgeq_keep_window: true,
            ..base.clone()
        };
        methods.push(Method::new(PolicyKind::JudgeQ, &variant_a));
        methods.push(
            Method::new(PolicyKind::JudgeQ, &variant_b)
                .named("judgeq-window", "Judge Q, window kept"),
        );
        methods.push(
            Method::new(PolicyKind::JudgeQ, &unpooled(&variant_a))
                .named("judgeq-nopool", "Judge Q, no pooling"),
        );
        let window_layer_0 = PolicySettings {
            judgeq_window_layers: 1,
            ..variant_a
        };
        methods.push(
            Method::new(PolicyKind::JudgeQ, &window_layer_0)
                .named("judgeq-layer0-window", "Judge Q, layer 0 by the window"),
        );
    }
    methods.push(Method::new(PolicyKind::Oracle, base));
    methods
}

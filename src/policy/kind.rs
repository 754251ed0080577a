//! The eviction policies, by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PolicyError;

/// One eviction policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Keeps every entry; the budget is ignored.
    #[serde(rename = "full")]
    FullKv,
    /// The first `sinks` tokens and the most recent ones (StreamingLLM).
    #[serde(rename = "streamingllm")]
    StreamingLlm,
    /// The recent window plus the top of the rest by the attention every prompt query gave
    /// (H2O as KVCache-Factory runs it at prefill).
    #[serde(rename = "h2o")]
    H2o,
    /// The window plus the top of the rest by unpooled window attention: "SnapKV without
    /// pooling", the H2O that the Judge Q group's baseline code runs.
    #[serde(rename = "h2o-window")]
    H2oWindow,
    /// The window plus the top of the rest by pooled window attention (SnapKV).
    #[serde(rename = "snapkv")]
    SnapKv,
    /// SnapKV with per-layer budgets on KVCache-Factory's pyramid schedule.
    #[serde(rename = "pyramidkv")]
    PyramidKv,
    /// SnapKV scores with head-adaptive budgets within each layer (Ada-KV).
    #[serde(rename = "adakv")]
    AdaKv,
    /// Scores from the soft tokens' attention (Judge Q).
    #[serde(rename = "judgeq")]
    JudgeQ,
    /// Scores from the decoded tokens' attention: the upper bound Judge Q imitates.
    #[serde(rename = "oracle")]
    Oracle,
    /// A seeded random subset.
    #[serde(rename = "random")]
    Random,
}

impl PolicyKind {
    /// Every policy, in display order.
    pub const ALL: [PolicyKind; 10] = [
        PolicyKind::FullKv,
        PolicyKind::StreamingLlm,
        PolicyKind::H2o,
        PolicyKind::H2oWindow,
        PolicyKind::SnapKv,
        PolicyKind::PyramidKv,
        PolicyKind::AdaKv,
        PolicyKind::JudgeQ,
        PolicyKind::Oracle,
        PolicyKind::Random,
    ];

    /// Machine name used on the command line and in file names (`snapkv`, `h2o-window`).
    pub fn id(self) -> &'static str {
        match self {
            PolicyKind::FullKv => "full",
            PolicyKind::StreamingLlm => "streamingllm",
            PolicyKind::H2o => "h2o",
            PolicyKind::H2oWindow => "h2o-window",
            PolicyKind::SnapKv => "snapkv",
            PolicyKind::PyramidKv => "pyramidkv",
            PolicyKind::AdaKv => "adakv",
            PolicyKind::JudgeQ => "judgeq",
            PolicyKind::Oracle => "oracle",
            PolicyKind::Random => "random",
        }
    }

    /// Human name (`SnapKV`, `H2O (window)`).
    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::FullKv => "Full KV",
            PolicyKind::StreamingLlm => "StreamingLLM",
            PolicyKind::H2o => "H2O",
            PolicyKind::H2oWindow => "H2O (window)",
            PolicyKind::SnapKv => "SnapKV",
            PolicyKind::PyramidKv => "PyramidKV",
            PolicyKind::AdaKv => "Ada-KV",
            PolicyKind::JudgeQ => "Judge Q",
            PolicyKind::Oracle => "Oracle",
            PolicyKind::Random => "Random",
        }
    }

    /// Whether the policy always keeps the last `window` prompt entries (for Judge Q, when
    /// `judgeq_keep_window` is set).
    pub fn keeps_window(self, judgeq_keep_window: bool) -> bool {
        match self {
            PolicyKind::H2o
            | PolicyKind::H2oWindow
            | PolicyKind::SnapKv
            | PolicyKind::PyramidKv
            | PolicyKind::AdaKv => true,
            PolicyKind::JudgeQ => judgeq_keep_window,
            PolicyKind::FullKv
            | PolicyKind::StreamingLlm
            | PolicyKind::Oracle
            | PolicyKind::Random => false,
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for PolicyKind {
    type Err = PolicyError;

    /// Parses an id or a label, ignoring case, spaces, `-` and `_` (`snapkv`, `SnapKV`,
    /// `h2o-window`, `Full KV`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squash = |t: &str| -> String {
            t.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect()
        };
        let wanted = squash(s);
        PolicyKind::ALL
            .into_iter()
            .find(|p| squash(p.id()) == wanted || squash(p.label()) == wanted)
            .ok_or_else(|| PolicyError::UnknownPolicy(s.trim().to_owned()))
    }
}

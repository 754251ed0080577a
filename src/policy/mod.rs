//! KV-cache eviction policies: pure functions from scores and a budget to keep masks, the
//! [`PolicyBank`] that makes budget changes live, and the metrics that judge a kept set.
//!
//! No model runs here: policies read the attention rows and H2O's accumulated scores of a
//! [`crate::session::Session`] through [`ScoreInputs`] and return [`Selection`]s.
//!
//! # Budget
//! The budget `B` is the number of KV entries kept **per layer per head, window included**
//! (KVCache-Factory's `max_capacity_prompt`). `B = 0` is an error; `B ≥ n` (prompt length)
//! keeps everything; a budget below what a policy must keep (window `w`, StreamingLLM's sinks)
//! is clamped: the policy keeps only the most recent `B` entries (the first `B` for
//! StreamingLLM), and [`Selection::note`] says so. A cache is never silently empty.
//! PyramidKV and Ada-KV redistribute the budget over layers or heads; [`Selection::kept`]
//! has the actual counts.
//!
//! # Sources
//! Window policies score with every window row the session captured
//! (`Session::settings.window` rows); [`PolicySettings::window`] sets what they always keep and
//! where their scored range `[0, n − w)` ends. The two are equal by default (32). Rows are
//! summed per query head once per [`ScoreInputs`] and cached.
//!
//! # Ties
//! Scores are ranked highest first and **equal scores go to the earlier position** (then to the
//! lower head in Ada-KV's global top-k), everywhere: the plain [`select`], the
//! [`PolicyBank`], the CLI and the GUI keep exactly the same entries, as would any reference
//! implementation with the same rule. (PyTorch's `topk` leaves the order of ties unspecified.)
//!
//! # Defaults ([`PolicySettings::default`])
//! Window 32, max-pooling kernel 7, granularity per query head (each query head keeps its own
//! set, as the Judge Q authors' code), GQA groups reduced before pooling when per KV head
//! (Ada-KV; kvpress pools first), 4 sinks, Judge Q variant (a) (top `B` of the whole prompt),
//! PyramidKV β = 20, Ada-KV floor α = 0.2, random seed 0. Scores sum the rows of a source
//! (SnapKV); a mean would rank identically.
//!
//! # Policies
//! | policy | scores | pooled | always kept |
//! |---|---|---|---|
//! | Full KV | – | – | everything |
//! | StreamingLLM | position | – | first `sinks` + most recent |
//! | H2O | attention from every prompt query (accumulated at prefill) | no | window |
//! | H2O (window) | last-window rows | no | window |
//! | SnapKV | last-window rows over `[0, n − w)` | yes | window |
//! | PyramidKV | as SnapKV, per-layer budgets | yes | window |
//! | Ada-KV | as SnapKV, per-head budgets | yes | window |
//! | Judge Q | soft-token rows, whole prompt (a) or `[0, n − w)` + window (b) | yes | (b): window |
//! | Oracle | decoded-token rows, whole prompt | no | – |
//! | Random | seeded permutation | – | – |

mod adakv;
mod bank;
mod error;
mod full_kv;
mod h2o;
mod h2o_window;
mod inputs;
mod judgeq;
mod keep;
mod kind;
pub mod metrics;
mod oracle;
mod pyramidkv;
mod random;
mod ranking;
mod selection;
mod settings;
mod snapkv;
mod streaming_llm;

#[cfg(test)]
mod tests;

pub use bank::PolicyBank;
pub use error::PolicyError;
pub use inputs::ScoreInputs;
pub use kind::PolicyKind;
pub use metrics::{PolicyMetrics, evaluate_selection, overlap, overlap_by_head};
pub use selection::{Selection, select};
pub use settings::PolicySettings;

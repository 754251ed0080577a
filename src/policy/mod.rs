//! KV-cache eviction policies: one file each behind one trait, the registry every other room
//! reads, the [`PolicyBank`] that makes budget changes live, and the metrics that judge a kept
//! set.
//!
//! No model runs here: policies read the attention rows, H2O's accumulated scores and, when the
//! prefill captured them on request ([`prefill_capture`]), the keys, value norms and query
//! statistics of a [`crate::session::Session`] through [`ScoreInputs`] and return
//! [`Selection`]s.
//!
//! # The seam
//! A policy is a type implementing [`Policy`] in its own file under `policies/`, registered by
//! one line in `policies/mod.rs` (the registry: ids, labels, colours, parameters, variants).
//! It says what it needs ([`Input`]s), how it orders each `[layer, head]` row ([`Order`]: scores
//! over a key range after the entries it always keeps, or a fixed order) and how it spreads a
//! budget over layers and heads ([`Spread`]). [`select`] and [`PolicyBank`] select through
//! those three answers only; [`PolicyId`] is the handle the CLI, the explorer, `eval`,
//! `judgeq tasks` and the exports pass around and save.
//!
//! # Budget
//! The budget `B` ([`Budget`]) is the number of KV entries kept **per layer per head, window
//! included** (KVCache-Factory's `max_capacity_prompt`), set against the prompt once. `B = 0` is
//! an error; `B ≥ n` (prompt length) keeps everything; a budget below what a policy must keep
//! (window `w`, StreamingLLM's sinks) is clamped: the policy keeps only the most recent `B`
//! entries (the first `B` for StreamingLLM), and [`Selection::note`] says so. A cache is never
//! silently empty. A budget can also be asked as a ratio removed ([`Ratio`], kvpress's
//! `compression_ratio`): each prompt of `n` tokens resolves it to `max(1, int(n · (1 − r)))`
//! entries ([`AskedBudget`]). PyramidKV and Ada-KV redistribute the budget over layers or heads;
//! [`Selection::kept`] has the actual counts.
//!
//! # Sources
//! Window policies score with every window row the session captured
//! (`Session::settings.window` rows); [`PolicySettings::window`] sets what they always keep and
//! where their scored range `[0, n − w)` ends. The two are equal by default (32). Rows are
//! summed per query head once per [`ScoreInputs`] and cached.
//!
//! # Ties
//! Scores are ranked highest first and **equal scores go to the earlier position** (then to the
//! lower head in Ada-KV's global top-k), everywhere: [`select`], the [`PolicyBank`], the CLI and
//! the GUI keep exactly the same entries, as would any reference implementation with the same
//! rule. (PyTorch's `topk` leaves the order of ties unspecified.)
//!
//! # Defaults ([`PolicySettings::default`])
//! Window 32, max-pooling kernel 7, granularity per query head (each query head keeps its own
//! set, as the Judge Q authors' code), GQA groups reduced before pooling when per KV head
//! (Ada-KV; kvpress pools first), 4 sinks, Judge Q variant (a) (top `B` of the whole prompt),
//! PyramidKV β = 20, Ada-KV floor α = 0.2, random seed 0. Scores sum the rows of a source
//! (SnapKV); a mean would rank identically.
//!
//! # Policies
//! | policy | scores | pooled | always kept | spread |
//! |---|---|---|---|---|
//! | Full KV | – | – | everything | everything |
//! | StreamingLLM | position | – | first `sinks` + most recent | per head |
//! | H2O | attention from every prompt query (accumulated at prefill) | no | window | per head |
//! | H2O (window) | last-window rows | no | window | per head |
//! | SnapKV | last-window rows over `[0, n − w)` | yes | window | per head |
//! | PyramidKV | as SnapKV | yes | window | per layer |
//! | Ada-KV | as SnapKV | yes | window | per head within a layer, by score |
//! | Knorm (kvpress) | `−‖k‖`, per KV head | – | – | per head |
//! | KeyDiff (kvpress) | `−cos(k, mean unit key)`, per KV head | – | – | per head |
//! | TOVA (kvpress) | last query's row, mean over the layer's heads | – | last position | per head |
//! | ExpectedAttention (kvpress) | expected attention of future queries × ‖v‖ | – | first `ea_sinks` | per head |
//! | AdaKV-ExpectedAttention (kvpress) | as ExpectedAttention | – | first `ea_sinks` | kvpress's Ada-KV within a layer |
//! | Judge Q | soft-token rows, whole prompt (a) or `[0, n − w)` + window (b) | yes | (b): window | per head |
//! | CriticalKV over SnapKV, over Judge Q (kvpress) | the base's scores, then `(s + ε)·‖W_o v‖₁` ([`critical`]) | as the base | – (two stages) | per head |
//! | Oracle | decoded-token rows, whole prompt | no | – | per head |
//! | Random | seeded permutation | – | – | per head |

mod bank;
mod budget;
pub mod chunks;
pub mod critical;
mod error;
mod head_shares;
mod id;
mod inputs;
mod interface;
mod layer_schedule;
pub mod metrics;
mod order;
pub mod params;
pub mod policies;
mod prepared;
mod ranking;
mod ratio;
mod selection;
mod settings;
mod spread;

#[cfg(test)]
mod tests;

pub use bank::PolicyBank;
pub use budget::Budget;
pub use error::PolicyError;
pub use id::PolicyId;
pub use inputs::ScoreInputs;
pub use interface::{Input, OrderContext, Policy, Variant, prefill_capture};
pub use metrics::{PolicyMetrics, evaluate_selection, overlap, overlap_by_head};
pub use order::{Order, Protected};
pub use ratio::{AskedBudget, Ratio};
pub use selection::{Selection, select};
pub use settings::PolicySettings;
pub use spread::Spread;

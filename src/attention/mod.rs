//! The three query sources and what is derived from their attention rows.
//!
//! Array conventions used across the crate (row-major `ndarray` arrays, plain data, no candle):
//! - [`AttentionRows`]: `[layers, query_heads, n_queries, n_prompt]` f32. Each row is the
//!   softmax over every key the query saw (prompt keys, then any appended soft or decoded keys),
//!   restricted to the prompt keys and **not** renormalised, so a row sums to at most 1.
//! - [`ScoreGrid`]: `[layers, heads, n_prompt]` f32, heads being query heads or KV heads.
//! - [`KeepMask`]: `[layers, heads, n_prompt]` bool, `true` where the entry stays in the cache.
//!
//! [`HeadView`] picks one layer and head (or reduces over them) from rows ([`view_matrix`]) and
//! from keep masks ([`kept_share`]): the explorer's panels and every exported figure look at
//! the attention through it.

use serde::{Deserialize, Serialize};

pub mod grouping;
pub mod head_view;
pub mod kept;
pub mod pooling;
pub mod scores;

#[cfg(test)]
mod tests;

pub use grouping::{Granularity, GroupOrder, GroupReduce, head_scores, owning_head, reduce_groups};
pub use head_view::{HeadView, Pick, Reduce, key_scores, view_matrix};
pub use kept::{kept_share, mask_head, mean_kept};
pub use pooling::Pooling;
pub use scores::{RowReduce, source_scores};

/// Attention rows of one query source: `[layers, query_heads, n_queries, n_prompt]`.
pub type AttentionRows = ndarray::Array4<f32>;

/// One importance value per layer, head and prompt key: `[layers, heads, n_prompt]`.
pub type ScoreGrid = ndarray::Array3<f32>;

/// Which KV entries a policy keeps: `[layers, heads, n_prompt]`.
pub type KeepMask = ndarray::Array3<bool>;

/// The queries whose attention over the prompt scores the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuerySource {
    /// The last `w` prompt positions (SnapKV and its family).
    Window,
    /// Judge Q's trainable soft tokens appended after the prompt.
    Soft,
    /// The tokens the model actually decodes with the full cache (the oracle).
    Decoded,
    /// Lookahead Q-Cache's draft tokens (arXiv 2505.20334): decoded greedily under a SnapKV
    /// cache, then run with the full cache; captured only when a policy asks for them.
    Lookahead,
    /// KVzip's repeat queries (arXiv 2505.23416): the model asked to repeat the prompt, run
    /// after it chunk by chunk; captured only when a policy asks for them.
    Repeat,
}

impl QuerySource {
    /// Every source, in display order.
    pub const ALL: [QuerySource; QuerySource::COUNT] = [
        QuerySource::Window,
        QuerySource::Soft,
        QuerySource::Decoded,
        QuerySource::Lookahead,
        QuerySource::Repeat,
    ];

    /// Number of sources (the length of [`QuerySource::ALL`]).
    pub const COUNT: usize = 5;

    /// Short machine name used in file names (`window`, `soft`, `decoded`, `lookahead`,
    /// `repeat`).
    pub fn file_stem(self) -> &'static str {
        match self {
            QuerySource::Window => "window",
            QuerySource::Soft => "soft",
            QuerySource::Decoded => "decoded",
            QuerySource::Lookahead => "lookahead",
            QuerySource::Repeat => "repeat",
        }
    }

    /// Human title, naming the method that scores with this source.
    pub fn title(self) -> &'static str {
        match self {
            QuerySource::Window => "Last-window queries (SnapKV)",
            QuerySource::Soft => "Soft tokens (Judge Q)",
            QuerySource::Decoded => "Decoded tokens (oracle)",
            QuerySource::Lookahead => "Lookahead drafts (LAQ)",
            QuerySource::Repeat => "Repeat queries (KVzip)",
        }
    }
}

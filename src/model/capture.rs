//! What a forward pass is asked to record, what it returns, and how it runs.

use candle_core::Tensor;

use crate::attention::{AttentionRows, ScoreGrid};
use crate::progress::Stage;
use crate::session::QueryStatistics;

/// Which attention probabilities a forward pass records.
///
/// Rows are taken from the softmax over every key the query saw (earlier cache entries, then
/// the input's own positions up to the query), restricted to keys `[0, key_limit)`, and not
/// renormalised; keys after the query's position read 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// First input row (relative to this input) whose attention row is recorded; rows
    /// `rows_from..n` are returned. `rows_from >= n` records no rows.
    pub rows_from: usize,
    /// Keys `[0, key_limit)` of every recorded row (and of the accumulated sums). At most the
    /// number of cache positions after the pass.
    pub key_limit: usize,
    /// Also sum, for every key `< key_limit`, the attention it receives from all rows of this
    /// input (H2O's accumulated attention), per layer and query head.
    pub accumulate: bool,
    /// Also reduce the input's pre-RoPE queries to ExpectedAttention's statistics
    /// ([`crate::session::QueryStatistics`]).
    pub query_statistics: bool,
}

impl Capture {
    /// Records nothing.
    pub const NONE: Capture = Capture {
        rows_from: usize::MAX,
        key_limit: 0,
        accumulate: false,
        query_statistics: false,
    };

    /// Records rows `rows_from..` over keys `[0, key_limit)`.
    pub fn rows(rows_from: usize, key_limit: usize) -> Self {
        Self {
            rows_from,
            key_limit,
            accumulate: false,
            query_statistics: false,
        }
    }

    /// The same capture, also accumulating the attention each key receives.
    pub fn with_accumulation(self) -> Self {
        Self {
            accumulate: true,
            ..self
        }
    }

    /// The same capture, also reducing the queries to their statistics.
    pub fn with_query_statistics(self) -> Self {
        Self {
            query_statistics: true,
            ..self
        }
    }

    /// Rows recorded for an input of `n` rows.
    pub(crate) fn row_count(&self, n: usize) -> usize {
        n.saturating_sub(self.rows_from)
    }

    /// Whether anything at all is recorded for an input of `n` rows.
    pub(crate) fn records_anything(&self, n: usize) -> bool {
        self.row_count(n) > 0 || self.accumulate
    }
}

impl Default for Capture {
    fn default() -> Self {
        Self::NONE
    }
}

/// What [`crate::model::Transformer::forward`] returns.
#[derive(Clone, Debug)]
pub struct ForwardOutput {
    /// Logits of the last input row, `[vocab]` f32.
    pub last_logits: Tensor,
    /// `[layers, query_heads, n_rows, key_limit]` when [`Capture`] asked for rows.
    pub rows: Option<AttentionRows>,
    /// `[layers, query_heads, key_limit]` when [`Capture::accumulate`] was set.
    pub accumulated: Option<ScoreGrid>,
    /// The input's query statistics when [`Capture::query_statistics`] was set.
    pub query_statistics: Option<QueryStatistics>,
}

/// How attention is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttentionKernel {
    /// The fused CPU kernel for f32 models on the CPU, the portable one elsewhere.
    #[default]
    Auto,
    /// Fused f32 CPU kernel: scores, softmax, capture and the value product per block of query
    /// rows, without intermediate tensors. CPU and f32 only.
    Fused,
    /// Candle tensor ops, chunked over query rows; runs on any device and dtype.
    Portable,
}

/// Knobs of a forward pass that do not change its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Query rows per attention block; `None` picks a size from the number of keys so that one
    /// block of scores stays bounded (2^21 per thread for the fused kernel, 2^24 for the
    /// portable path, or one row when a row is longer).
    pub query_chunk: Option<usize>,
    /// Stage named in progress reports.
    pub stage: Stage,
    /// Attention implementation.
    pub kernel: AttentionKernel,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self {
            query_chunk: None,
            stage: Stage::Prefill,
            kernel: AttentionKernel::Auto,
        }
    }
}

/// Captured probabilities of one layer, written by either kernel.
pub(crate) struct LayerSink<'a> {
    /// First captured input row.
    pub rows_from: usize,
    /// Keys per captured row.
    pub key_limit: usize,
    /// `[heads, n - rows_from, key_limit]`, zero-initialised.
    pub rows: &'a mut [f32],
    /// `[heads, key_limit]`, zero-initialised, when accumulating.
    pub accumulated: Option<&'a mut [f32]>,
}

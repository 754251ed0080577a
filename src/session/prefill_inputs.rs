//! Inputs beyond attention rows that the prompt's prefill captures when a policy asks for them:
//! the post-RoPE keys, the values, the value norms, the norms of the values through each query
//! head's slice of the output projection (CriticalKV's) and the statistics of the prompt's queries
//! (ExpectedAttention's), and KVzip's scores, which a repeat pass after the prefill computes
//! (`inspect::repeat`, where its memory is counted). None of them needs an `L × L` matrix, and
//! none is captured unless asked for ([`PrefillCapture`]), so sessions scored by attention rows
//! alone cost what they did.
//!
//! # Memory at 8,192 prompt tokens (f32)
//! | input | shape | SmolLM2-135M (30 layers, 9 query heads, 3 KV heads, head dim 64) | Llama-3.1-8B (32 layers, 32 query heads, 8 KV heads, head dim 128) |
//! |---|---|---|---|
//! | keys | `[layers, kv_heads, n, head_dim]` | 180 MiB (188.7 MB) | 1 GiB (1,073.7 MB) |
//! | values | `[layers, kv_heads, n, head_dim]` | 180 MiB (188.7 MB) | 1 GiB (1,073.7 MB) |
//! | value norms | `[layers, kv_heads, n]` | 2.8 MiB (2.9 MB) | 8 MiB (8.4 MB) |
//! | projected value norms | `[layers, query_heads, n]` | 8.4 MiB (8.8 MB) | 32 MiB (33.6 MB) |
//! | query statistics | `[layers, query_heads, ·]`: a `head_dim²` scatter, a mean and the first [`FIRST_QUERY_ROWS`] rows | 6.4 MiB (6.7 MB), whatever `n` | 80.5 MiB (84.4 MB), whatever `n` |
//! | KVzip's repeat scores | `[layers, kv_heads, n]` | 2.8 MiB (2.9 MB) | 8 MiB (8.4 MB) |
//!
//! The keys and the values are copies of the prompt's part of the KV cache (which holds them
//! anyway, in the model's dtype); the value norms are read from it. The query statistics are reduced layer by
//! layer during the prefill from the pre-RoPE queries the layer computes anyway: the transient
//! extra is one centred copy of a layer's queries (`n · query_heads · head_dim` floats: 18.9 MB
//! and 134 MB at 8,192 tokens for the two models). The projected value norms are computed from the
//! cache after the prefill, one layer and query head at a time: the transient extra is one head's
//! `v W_o^h` rows (`n · hidden` floats: 18.9 MB and 134 MB at 8,192 tokens) and the layer's values
//! and output projection in f32.

use ndarray::{Array3, Array4, ArrayView4, s};
use serde::{Deserialize, Serialize};

use crate::attention::Pooling;

/// Leading prompt query rows kept one by one in [`QueryStatistics`], so that statistics that
/// leave out the first `s ≤ FIRST_QUERY_ROWS` rows (ExpectedAttention's sinks) can be formed for
/// any `s` without a second prefill.
pub const FIRST_QUERY_ROWS: usize = 32;

/// Which inputs beyond attention rows an inspection captures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrefillCapture {
    /// The post-RoPE keys of the prompt.
    pub keys: bool,
    /// The prompt's values (LagKV).
    pub values: bool,
    /// The L2 norm of every prompt value.
    pub value_norms: bool,
    /// The L1 norm of every prompt value through each query head's slice of the output
    /// projection (CriticalKV).
    pub projected_value_norms: bool,
    /// Mean and covariance material of the prompt's pre-RoPE queries.
    pub query_statistics: bool,
    /// Lookahead Q-Cache's draft tokens and their attention rows.
    pub lookahead: Option<LookaheadCapture>,
    /// KVzip's repeat pass: its scores and a bounded sample of its query rows.
    pub repeat: Option<RepeatCapture>,
}

/// How an inspection runs KVzip's repeat pass (arXiv 2505.23416, as kvpress 0.5.5's
/// `KVzipPress` runs it; `inspect::repeat` does the work): the prompt after the chat template's
/// prefix is cut into chunks of `chunk_size` tokens, the model is asked to repeat each chunk
/// after the whole prompt, and every chunk key scores the most attention it receives from the
/// repeat queries in a softmax over the first `n_sink` prompt keys, the chunk's keys and the
/// repeat tokens. Costs about one more prefill of the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepeatCapture {
    /// Leading prompt keys in every chunk's softmax (kvpress's `n_sink`, 4).
    pub n_sink: usize,
    /// Prompt tokens repeated per pass (kvpress's `chunk_size`, 2048).
    pub chunk_size: usize,
}

/// How an inspection drafts Lookahead Q-Cache's pseudo queries (arXiv 2505.20334, stage 1):
/// SnapKV over the last `draft_window` prompt queries keeps `draft_budget` entries per layer and
/// query head, `tokens` tokens are decoded greedily under that keep set, and the drafts are then
/// run with the full cache, their attention over the prompt captured. Costs `tokens` masked
/// decode steps plus one forward of `tokens` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LookaheadCapture {
    /// Draft tokens `ℓ` (LAQ's `max_lookahead_size`, 8).
    pub tokens: usize,
    /// SnapKV window of the drafting cache (LAQ's `stage2_window_size`, 8).
    pub draft_window: usize,
    /// Entries per layer and query head of the drafting cache, window included.
    pub draft_budget: usize,
    /// Pooling of the drafting cache's SnapKV scores (LAQ: max-pooling, kernel 7).
    pub pooling: Pooling,
}

impl PrefillCapture {
    /// Whether anything is captured.
    pub fn any(self) -> bool {
        self.keys
            || self.values
            || self.value_norms
            || self.projected_value_norms
            || self.query_statistics
            || self.lookahead.is_some()
            || self.repeat.is_some()
    }

    /// Both captures together.
    pub fn union(self, other: PrefillCapture) -> PrefillCapture {
        PrefillCapture {
            keys: self.keys || other.keys,
            values: self.values || other.values,
            value_norms: self.value_norms || other.value_norms,
            projected_value_norms: self.projected_value_norms || other.projected_value_norms,
            query_statistics: self.query_statistics || other.query_statistics,
            lookahead: union_lookahead(self.lookahead, other.lookahead),
            // Two different repeat passes cannot share one run: the first asked for is run.
            repeat: self.repeat.or(other.repeat),
        }
    }
}

/// Two lookahead captures as one: the more draft tokens of the two (a policy reads the first
/// `ℓ` rows, which do not depend on later drafts), drafted as the first says.
fn union_lookahead(
    first: Option<LookaheadCapture>,
    second: Option<LookaheadCapture>,
) -> Option<LookaheadCapture> {
    match (first, second) {
        (Some(a), Some(b)) => Some(LookaheadCapture {
            tokens: a.tokens.max(b.tokens),
            ..a
        }),
        (a, b) => a.or(b),
    }
}

/// What a prefill captured beyond attention rows; each is `None` unless it was asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrefillInputs {
    /// Post-RoPE keys `[layers, kv_heads, n_prompt, head_dim]` (as the cache holds them).
    pub keys: Option<Array4<f32>>,
    /// Values `[layers, kv_heads, n_prompt, head_dim]` (as the cache holds them).
    pub values: Option<Array4<f32>>,
    /// L2 norm of every value vector, `[layers, kv_heads, n_prompt]`.
    pub value_norms: Option<Array3<f32>>,
    /// `‖v_j W_o^h‖₁` for every prompt value `v_j` and query head `h` (its KV head's value through
    /// the head's `head_dim` columns of the output projection), `[layers, query_heads, n_prompt]`.
    pub projected_value_norms: Option<Array3<f32>>,
    /// Statistics of the prompt's pre-RoPE queries.
    pub query_statistics: Option<QueryStatistics>,
    /// KVzip's scores `[layers, kv_heads, n_prompt]`: the most attention each key received from
    /// the repeat queries of its chunk (0 for keys no chunk covers), as
    /// [`PrefillCapture::repeat`] asked.
    pub repeat_scores: Option<Array3<f32>>,
}

/// The prompt's pre-RoPE queries, reduced so that their mean and covariance over the rows from
/// any `s ≤ first` on can be formed ([`QueryStatistics::moments`]): the first rows one by one,
/// and the rest (the "tail") as a mean and a scatter matrix about that mean. Query heads follow
/// the model's order (`repeat_kv`'s layout over the KV heads).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryStatistics {
    /// The first `first = min(n, FIRST_QUERY_ROWS)` rows: `[layers, query_heads, first,
    /// head_dim]`.
    pub first_rows: Array4<f32>,
    /// Rows after the first ones (`n − first`).
    pub tail_rows: usize,
    /// Mean of the tail rows, `[layers, query_heads, head_dim]` (zeros when there are none).
    pub tail_mean: Array3<f32>,
    /// `Σ (q − mean)(q − mean)ᵀ` over the tail rows, `[layers, query_heads, head_dim, head_dim]`.
    pub tail_scatter: Array4<f32>,
    /// The rotary embedding's inverse frequencies, `[head_dim / 2]`: dimension `i` is paired with
    /// `i + head_dim/2` and rotated by `position · inverse_frequencies[i]` (rotate-half layout,
    /// any frequency scaling applied).
    pub inverse_frequencies: Vec<f64>,
}

/// Mean and covariance of some query rows of one head, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    /// Rows they were taken over.
    pub rows: usize,
    /// Mean, `head_dim` values.
    pub mean: Vec<f64>,
    /// Covariance divided by the number of rows (not rows − 1), row-major `head_dim × head_dim`.
    pub covariance: Vec<f64>,
}

impl QueryStatistics {
    /// Layers, query heads and head dimension.
    pub fn dim(&self) -> (usize, usize, usize) {
        let (layers, heads, _, d) = self.first_rows.dim();
        (layers, heads, d)
    }

    /// Prompt rows the statistics cover.
    pub fn rows(&self) -> usize {
        self.first_rows.dim().2 + self.tail_rows
    }

    /// Rows kept one by one: the most rows [`QueryStatistics::moments`] can leave out.
    pub fn first(&self) -> usize {
        self.first_rows.dim().2
    }

    /// The statistics of query rows `[layers, query_heads, n, head_dim]`, reduced as the prefill
    /// reduces them (in f64 here; the prefill reduces with the model's tensor ops), with the
    /// rotary `inverse_frequencies`. For synthetic sessions and tests.
    pub fn from_rows(rows: ArrayView4<f32>, inverse_frequencies: Vec<f64>) -> QueryStatistics {
        let (layers, heads, n, d) = rows.dim();
        let first = n.min(FIRST_QUERY_ROWS);
        let tail = n - first;
        let mut tail_mean = Array3::<f32>::zeros((layers, heads, d));
        let mut tail_scatter = Array4::<f32>::zeros((layers, heads, d, d));
        if tail > 0 {
            for l in 0..layers {
                for h in 0..heads {
                    let rest = rows.slice(s![l, h, first.., ..]);
                    let mean: Vec<f64> = (0..d)
                        .map(|i| {
                            rest.column(i).iter().map(|&v| f64::from(v)).sum::<f64>() / tail as f64
                        })
                        .collect();
                    for i in 0..d {
                        tail_mean[[l, h, i]] = mean[i] as f32;
                        for j in 0..d {
                            tail_scatter[[l, h, i, j]] = rest
                                .outer_iter()
                                .map(|q| (f64::from(q[i]) - mean[i]) * (f64::from(q[j]) - mean[j]))
                                .sum::<f64>()
                                as f32;
                        }
                    }
                }
            }
        }
        QueryStatistics {
            first_rows: rows.slice(s![.., .., ..first, ..]).to_owned(),
            tail_rows: tail,
            tail_mean,
            tail_scatter,
            inverse_frequencies,
        }
    }

    /// Mean and covariance of rows `[skip, n)` of query head `head` in `layer`, or `None` when
    /// `skip` is beyond the rows kept one by one or leaves no row.
    pub fn moments(&self, layer: usize, head: usize, skip: usize) -> Option<Moments> {
        let (_, _, d) = self.dim();
        if skip > self.first() || skip >= self.rows() {
            return None;
        }
        let rows = self.rows() - skip;
        // Everything about the tail's mean c: Σ (q − c) = 0 over the tail by definition.
        let c: Vec<f64> = (0..d)
            .map(|i| f64::from(self.tail_mean[[layer, head, i]]))
            .collect();
        let mut sum = vec![0.0; d];
        let mut scatter: Vec<f64> = (0..d * d)
            .map(|ij| f64::from(self.tail_scatter[[layer, head, ij / d, ij % d]]))
            .collect();
        for r in skip..self.first() {
            let centred: Vec<f64> = (0..d)
                .map(|i| f64::from(self.first_rows[[layer, head, r, i]]) - c[i])
                .collect();
            for i in 0..d {
                sum[i] += centred[i];
                for j in 0..d {
                    scatter[i * d + j] += centred[i] * centred[j];
                }
            }
        }
        let count = rows as f64;
        let offset: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mean = c.iter().zip(&offset).map(|(c, o)| c + o).collect();
        let covariance = (0..d * d)
            .map(|ij| scatter[ij] / count - offset[ij / d] * offset[ij % d])
            .collect();
        Some(Moments {
            rows,
            mean,
            covariance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statistics of `rows` (`[rows, d]`, one layer and head) as the capture reduces them.
    fn reduced(rows: &[Vec<f32>], first: usize) -> QueryStatistics {
        let d = rows[0].len();
        let first = first.min(rows.len());
        let tail = &rows[first..];
        let mut mean = vec![0f32; d];
        for row in tail {
            for i in 0..d {
                mean[i] += row[i] / tail.len() as f32;
            }
        }
        let mut scatter = Array4::<f32>::zeros((1, 1, d, d));
        for row in tail {
            for i in 0..d {
                for j in 0..d {
                    scatter[[0, 0, i, j]] += (row[i] - mean[i]) * (row[j] - mean[j]);
                }
            }
        }
        QueryStatistics {
            first_rows: Array4::from_shape_fn((1, 1, first, d), |(_, _, r, i)| rows[r][i]),
            tail_rows: tail.len(),
            tail_mean: Array3::from_shape_fn((1, 1, d), |(_, _, i)| {
                if tail.is_empty() { 0.0 } else { mean[i] }
            }),
            tail_scatter: scatter,
            inverse_frequencies: vec![1.0; d / 2],
        }
    }

    /// Two-pass mean and population covariance of `rows[skip..]`.
    fn two_pass(rows: &[Vec<f32>], skip: usize) -> (Vec<f64>, Vec<f64>) {
        let rows: Vec<Vec<f64>> = rows[skip..]
            .iter()
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let d = rows[0].len();
        let m = rows.len() as f64;
        let mean: Vec<f64> = (0..d)
            .map(|i| rows.iter().map(|r| r[i]).sum::<f64>() / m)
            .collect();
        let cov = (0..d * d)
            .map(|ij| {
                let (i, j) = (ij / d, ij % d);
                rows.iter()
                    .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
                    .sum::<f64>()
                    / m
            })
            .collect();
        (mean, cov)
    }

    #[test]
    fn moments_equal_the_two_pass_statistics_for_every_skip() {
        let rows: Vec<Vec<f32>> = (0..11)
            .map(|r| {
                (0..4)
                    .map(|i| ((r * 7 + i * 3) % 5) as f32 - 1.5 + 0.1 * (r * i) as f32)
                    .collect()
            })
            .collect();
        for first in [0, 3, 6, 11, 20] {
            let stats = reduced(&rows, first);
            for skip in 0..=first.min(10) {
                let m = stats.moments(0, 0, skip).unwrap();
                let (mean, cov) = two_pass(&rows, skip);
                assert_eq!(m.rows, 11 - skip);
                for (a, b) in m.mean.iter().zip(&mean) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "first {first} skip {skip}: {a} vs {b}"
                    );
                }
                for (a, b) in m.covariance.iter().zip(&cov) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "first {first} skip {skip}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn moments_refuse_a_skip_beyond_the_rows_kept() {
        let rows: Vec<Vec<f32>> = (0..5).map(|r| vec![r as f32, 1.0]).collect();
        let stats = reduced(&rows, 2);
        assert!(stats.moments(0, 0, 3).is_none());
        let all_first = reduced(&rows, 5);
        assert!(all_first.moments(0, 0, 5).is_none());
        assert_eq!(all_first.moments(0, 0, 4).unwrap().rows, 1);
    }

    #[test]
    fn captures_combine() {
        let keys = PrefillCapture {
            keys: true,
            ..PrefillCapture::default()
        };
        let stats = PrefillCapture {
            query_statistics: true,
            ..PrefillCapture::default()
        };
        assert!(!PrefillCapture::default().any());
        let both = keys.union(stats);
        assert!(both.keys && both.query_statistics && !both.value_norms && both.any());
    }
}

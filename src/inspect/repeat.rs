//! KVzip's repeat pass (arXiv 2505.23416), as kvpress 0.5.5's `KVzipPress` runs it: the model
//! is asked to repeat the prompt after reading it, chunk by chunk, and every prompt key scores
//! the most attention it receives from the repeat queries.
//!
//! The repeated context is the prompt after the chat template's prefix (the tokens before the
//! user message, [`crate::model::Model::turn_scaffold`]), cut into chunks of `chunk_size`
//! tokens. Chunk 0's repeat input is [`REPEAT_FIRST`], the template's suffix (the end of the
//! user turn and the assistant's header) and the chunk's tokens; chunk `i > 0`'s is
//! [`REPEAT_LATER`], the last [`CARRY`] tokens of chunk `i − 1`, the suffix and the chunk's
//! tokens. Each runs after the prompt's cache alone: positions continue after the prompt, and the
//! repeat entries are dropped after every chunk.
//!
//! The score of chunk key `j ∈ [start, end)` in layer `l` and KV head `g` is the largest weight
//! `j` gets, over the repeat queries and the query heads of group `g`, in a softmax over the
//! first `min(n_sink, start)` prompt keys, the chunk's keys and the repeat tokens' own keys
//! (causal), scaled by `1/√head_dim`. The forward computes each row's softmax over every key it
//! sees; a softmax over a subset of those keys is the row restricted to the subset divided by the
//! subset's mass (the same exponentials over a smaller sum), which is how it is formed here
//! ([`fold_scores`]). Keys no chunk covers (the template's prefix after the sinks) score 0.
//!
//! Cost: the repeat inputs hold the prompt after its prefix once more, plus
//! `|REPEAT_FIRST| + |suffix|` tokens for the first chunk and `|REPEAT_LATER| + CARRY + |suffix|`
//! for each later one, each attending to the whole prompt cache: about one more prefill of the
//! prompt ([`Repeated::tokens`] counts them).
//!
//! # Memory
//! Never `n × n`. Each chunk's input runs in pieces of rows whose captured rows hold at most
//! [`PIECE_FLOATS`] floats (128 MiB), folded into the scores at once. What is kept: the scores,
//! `[layers, kv_heads, n]` (2.9 MB for SmolLM2-135M and 8.4 MB for Llama-3.1-8B at 8,192 tokens,
//! f32), and for the explorer's panel at most [`PANEL_ROWS`] repeat rows, evenly spaced over all
//! repeat tokens, each restricted to the prompt's keys as every source's rows are (`[layers,
//! query_heads, ≤ 32, n]`: 283 MB and 1.07 GB at 8,192 tokens, as much as a 32-token window's
//! rows).

use std::ops::Range;

use ndarray::{Array3, ArrayView4, ArrayViewMut3, Axis, s};
use rayon::prelude::*;

use crate::attention::AttentionRows;
use crate::model::{Capture, ForwardOptions, KvCache, Model, ModelError, Result, Transformer};
use crate::progress::{Progress, Stage};

/// kvpress's instruction before the first chunk (`KVzipPress.prepare`).
pub const REPEAT_FIRST: &str = "\n\nRepeat the previous context exactly.";

/// kvpress's instruction before every later chunk, followed by the end of the chunk before.
pub const REPEAT_LATER: &str = "\n\nRepeat the part of the previous context exactly, starting with";

/// Tokens of the chunk before carried after [`REPEAT_LATER`] (kvpress's `prev_postfix_size`).
pub const CARRY: usize = 8;

/// Most repeat rows kept for the explorer's panel and the `repeat.npy` export.
pub const PANEL_ROWS: usize = 32;

/// Most floats captured by one piece of a chunk's forward before it is folded into the scores.
pub const PIECE_FLOATS: usize = 1 << 25;

/// The tokenised texts the repeat inputs are made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatTemplate {
    /// Tokens of the chat template before the user message: the prompt's part not repeated.
    pub prefix_len: usize,
    /// [`REPEAT_FIRST`]'s tokens.
    pub first: Vec<u32>,
    /// [`REPEAT_LATER`]'s tokens.
    pub later: Vec<u32>,
    /// The template's text after the user message, the assistant's header included.
    pub suffix: Vec<u32>,
}

impl RepeatTemplate {
    /// The texts of `model`'s chat template and tokenizer.
    pub fn of(model: &Model) -> Result<Self> {
        let scaffold = model.turn_scaffold()?;
        Ok(Self {
            prefix_len: scaffold.prefix.len(),
            first: model.text_ids(REPEAT_FIRST)?,
            later: model.text_ids(REPEAT_LATER)?,
            suffix: scaffold.suffix,
        })
    }
}

/// One chunk's repeat pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatChunk {
    /// The prompt positions the chunk repeats.
    pub keys: Range<usize>,
    /// Its input: the instruction (with the carried tokens after the first chunk), the suffix,
    /// then the chunk's tokens.
    pub ids: Vec<u32>,
}

/// The repeat chunks of `prompt` (its token ids): positions `[template.prefix_len, n)` cut into
/// chunks of `chunk_size` (none when the prompt is no longer than the prefix). Refuses a chunk
/// size of 0.
pub fn chunks(
    prompt: &[u32],
    template: &RepeatTemplate,
    chunk_size: usize,
) -> Result<Vec<RepeatChunk>> {
    if chunk_size == 0 {
        return Err(ModelError::InvalidArgument(
            "KVzip's chunk size must be at least 1 token".into(),
        ));
    }
    let start = template.prefix_len.min(prompt.len());
    let mut chunks: Vec<RepeatChunk> = Vec::new();
    let mut previous: &[u32] = &[];
    for (index, tokens) in prompt[start..].chunks(chunk_size).enumerate() {
        let first = start + index * chunk_size;
        let mut ids = if index == 0 {
            template.first.clone()
        } else {
            let carried = &previous[previous.len().saturating_sub(CARRY)..];
            [template.later.as_slice(), carried].concat()
        };
        ids.extend_from_slice(&template.suffix);
        ids.extend_from_slice(tokens);
        chunks.push(RepeatChunk {
            keys: first..first + tokens.len(),
            ids,
        });
        previous = tokens;
    }
    Ok(chunks)
}

/// What the repeat pass gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Repeated {
    /// `[layers, kv_heads, n]`: each key's most attention from its chunk's repeat queries.
    pub scores: Array3<f32>,
    /// `[layers, query_heads, ≤ PANEL_ROWS, n]`: every `stride`-th repeat row (counting all
    /// chunks' inputs in order from 0), restricted to the prompt's keys.
    pub rows: AttentionRows,
    /// Repeat tokens run, all chunks together.
    pub tokens: usize,
}

/// Runs `chunks` after the prompt held in `cache` (which needs room for the longest chunk) and
/// scores the prompt's keys with `n_sink` sinks in every chunk's softmax. Each chunk runs in
/// pieces of rows whose captured rows hold at most `piece_floats` floats (at least one row;
/// the inspection passes [`PIECE_FLOATS`]). `cache` holds the prompt again afterwards, also when
/// a forward fails.
pub fn repeat(
    transformer: &Transformer,
    cache: &mut KvCache,
    chunks: &[RepeatChunk],
    n_sink: usize,
    piece_floats: usize,
    progress: &dyn Progress,
) -> Result<Repeated> {
    let c = &transformer.config;
    let (layers, heads, kv_heads) = (c.num_layers, c.num_heads, c.num_kv_heads);
    let prompt_len = cache.len();
    let tokens: usize = chunks.iter().map(|chunk| chunk.ids.len()).sum();
    let stride = panel_stride(tokens);
    let mut scores = Array3::<f32>::zeros((layers, kv_heads, prompt_len));
    let mut rows = AttentionRows::zeros((layers, heads, tokens.div_ceil(stride), prompt_len));
    let options = ForwardOptions {
        stage: Stage::Repeat,
        ..ForwardOptions::default()
    };
    let mut seen = 0;
    for chunk in chunks {
        cache.ensure_room(chunk.ids.len())?;
        let widest = layers * heads * (prompt_len + chunk.ids.len());
        let piece = (piece_floats / widest.max(1)).max(1);
        let mut run = || -> Result<()> {
            for (index, ids) in chunk.ids.chunks(piece).enumerate() {
                let key_limit = cache.len() + ids.len();
                let out = transformer.forward_with(
                    &transformer.embed(ids)?,
                    cache,
                    &Capture::rows(0, key_limit),
                    &options,
                    progress,
                )?;
                let captured = out.rows.ok_or_else(|| {
                    ModelError::InvalidArgument("the repeat pass captured no rows".into())
                })?;
                fold_scores(
                    scores.view_mut(),
                    captured.view(),
                    prompt_len,
                    chunk.keys.clone(),
                    n_sink,
                );
                let first = seen + index * piece;
                for (row, t) in (first..first + ids.len()).enumerate() {
                    if t % stride == 0 {
                        rows.slice_mut(s![.., .., t / stride, ..])
                            .assign(&captured.slice(s![.., .., row, ..prompt_len]));
                    }
                }
            }
            Ok(())
        };
        let outcome = run();
        cache.truncate(prompt_len)?;
        outcome?;
        seen += chunk.ids.len();
    }
    Ok(Repeated {
        scores,
        rows,
        tokens,
    })
}

/// The spacing of the panel's rows among `tokens` repeat rows: every row up to [`PANEL_ROWS`],
/// else every `⌈tokens / PANEL_ROWS⌉`-th.
pub fn panel_stride(tokens: usize) -> usize {
    tokens.div_ceil(PANEL_ROWS).max(1)
}

/// Folds captured repeat rows into `scores` (`[layers, kv_heads, n]`, `n = prompt_len`): `rows`
/// are `[layers, query_heads, r, key_limit]`, each a softmax over every key its query saw (the
/// prompt's `prompt_len` keys, then the repeat tokens' own). For chunk keys `j ∈ keys`, the
/// weight in the softmax over the first `min(n_sink, keys.start)` keys, `keys` and the repeat
/// keys is the row's `p_j` over the mass of that subset; each score becomes the largest such
/// weight seen in its KV head's group.
pub fn fold_scores(
    mut scores: ArrayViewMut3<f32>,
    rows: ArrayView4<f32>,
    prompt_len: usize,
    keys: Range<usize>,
    n_sink: usize,
) {
    let kv_heads = scores.dim().1;
    let heads = rows.dim().1;
    let group = (heads / kv_heads.max(1)).max(1);
    let sinks = n_sink.min(keys.start);
    scores
        .outer_iter_mut()
        .into_par_iter()
        .zip(rows.outer_iter())
        .for_each(|(mut layer_scores, layer_rows)| {
            for (head, head_rows) in layer_rows.outer_iter().enumerate() {
                let mut best = layer_scores.index_axis_mut(Axis(0), head / group);
                for row in head_rows.outer_iter() {
                    let sum = |range: Range<usize>| -> f64 {
                        row.slice(s![range]).iter().map(|&p| f64::from(p)).sum()
                    };
                    let mass = sum(0..sinks) + sum(keys.clone()) + sum(prompt_len..row.len());
                    if mass <= 0.0 {
                        continue;
                    }
                    for j in keys.clone() {
                        let weight = (f64::from(row[j]) / mass) as f32;
                        if weight > best[j] {
                            best[j] = weight;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use ndarray::{Array3, Array4};

    use super::*;

    fn template() -> RepeatTemplate {
        RepeatTemplate {
            prefix_len: 3,
            first: vec![900, 901],
            later: vec![910, 911, 912],
            suffix: vec![990],
        }
    }

    #[test]
    fn chunks_follow_kvpress_with_the_eight_token_carry() {
        let prompt: Vec<u32> = (0..30).collect();
        let chunks = chunks(&prompt, &template(), 10).unwrap();
        let ranges: Vec<Range<usize>> = chunks.iter().map(|c| c.keys.clone()).collect();
        assert_eq!(ranges, [3..13, 13..23, 23..30]);
        let first: Vec<u32> = [900, 901, 990].into_iter().chain(3..13).collect();
        assert_eq!(chunks[0].ids, first);
        // The instruction, the last 8 tokens of the chunk before, the suffix, the chunk.
        let second: Vec<u32> = [910, 911, 912]
            .into_iter()
            .chain(5..13)
            .chain([990])
            .chain(13..23)
            .collect();
        assert_eq!(chunks[1].ids, second);
        let third: Vec<u32> = [910, 911, 912]
            .into_iter()
            .chain(15..23)
            .chain([990])
            .chain(23..30)
            .collect();
        assert_eq!(chunks[2].ids, third);

        // A chunk shorter than the carry carries all of itself.
        let short = super::chunks(&prompt[..12], &template(), 5).unwrap();
        assert_eq!(short[1].ids[3..8], [3, 4, 5, 6, 7]);
        assert_eq!(short[1].ids[8], 990);
        assert_eq!(short.len(), 2);
        assert_eq!(short[1].keys, 8..12);
        // One chunk when the context fits; none when only the prefix is there.
        assert_eq!(super::chunks(&prompt, &template(), 2048).unwrap().len(), 1);
        assert!(
            super::chunks(&prompt[..3], &template(), 4)
                .unwrap()
                .is_empty()
        );
        assert!(super::chunks(&prompt, &template(), 0).is_err());
    }

    #[test]
    fn panel_rows_are_evenly_spaced_and_bounded() {
        assert_eq!(panel_stride(0), 1);
        assert_eq!(panel_stride(PANEL_ROWS), 1);
        assert_eq!(panel_stride(PANEL_ROWS + 1), 2);
        for tokens in [1usize, 31, 32, 33, 100, 4099] {
            assert!(
                tokens.div_ceil(panel_stride(tokens)) <= PANEL_ROWS,
                "{tokens}"
            );
        }
    }

    /// Softmax of `logits` over the positions where `seen` holds (0 elsewhere), in f64.
    fn softmax_over(logits: &[f64], seen: impl Fn(usize) -> bool) -> Vec<f64> {
        let max = (0..logits.len())
            .filter(|&j| seen(j))
            .map(|j| logits[j])
            .fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = (0..logits.len())
            .map(|j| {
                if seen(j) {
                    (logits[j] - max).exp()
                } else {
                    0.0
                }
            })
            .collect();
        let total: f64 = exps.iter().sum();
        exps.iter().map(|e| e / total).collect()
    }

    #[test]
    fn folded_scores_equal_the_softmax_over_the_key_subset() {
        // Two layers, four query heads in two groups, a prompt of 12 keys, 5 repeat queries.
        let (layers, heads, kv_heads, n, r) = (2, 4, 2, 12, 5);
        let logit = |l: usize, h: usize, q: usize, k: usize| {
            (((l * 131 + h * 37 + q * 11 + k * 7) % 23) as f64 - 11.0) * 0.31
        };
        let key_limit = n + r;
        // What the forward captures: each query's softmax over the prompt and the repeat keys
        // up to its own (causal), as f32.
        let rows = Array4::from_shape_fn((layers, heads, r, key_limit), |(l, h, q, k)| {
            let logits: Vec<f64> = (0..key_limit).map(|k| logit(l, h, q, k)).collect();
            softmax_over(&logits, |j| j < n + q + 1)[k] as f32
        });
        for (keys, n_sink) in [(5..9, 4), (2..12, 4), (0..6, 4), (6..12, 0)] {
            let mut got = Array3::<f32>::zeros((layers, kv_heads, n));
            fold_scores(got.view_mut(), rows.view(), n, keys.clone(), n_sink);
            let sinks = n_sink.min(keys.start);
            for l in 0..layers {
                for g in 0..kv_heads {
                    for j in 0..n {
                        let mut want = 0.0f64;
                        if keys.contains(&j) {
                            for h in g * 2..g * 2 + 2 {
                                for q in 0..r {
                                    let logits: Vec<f64> =
                                        (0..key_limit).map(|k| logit(l, h, q, k)).collect();
                                    let subset = softmax_over(&logits, |k| {
                                        k < sinks || keys.contains(&k) || (n..=n + q).contains(&k)
                                    });
                                    want = want.max(subset[j]);
                                }
                            }
                        }
                        let diff = (f64::from(got[[l, g, j]]) - want).abs();
                        assert!(
                            diff < 1e-6,
                            "keys {keys:?}, sinks {n_sink}: [{l}, {g}, {j}] {} vs {want}",
                            got[[l, g, j]]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn folding_keeps_the_largest_score_seen() {
        let mut scores = Array3::<f32>::from_elem((1, 1, 4), 0.0);
        scores[[0, 0, 2]] = 0.9;
        // One row: half its mass on key 2, half on its own key.
        let mut rows = Array4::<f32>::zeros((1, 1, 1, 5));
        rows[[0, 0, 0, 2]] = 0.5;
        rows[[0, 0, 0, 3]] = 0.25;
        rows[[0, 0, 0, 4]] = 0.25;
        fold_scores(scores.view_mut(), rows.view(), 4, 2..4, 4);
        // Sinks [0, 2) hold nothing; the subset's mass is 1: key 3 gets 0.25, key 2 keeps 0.9.
        assert_eq!(scores.as_slice().unwrap(), &[0.0, 0.0, 0.9, 0.25]);
    }
}

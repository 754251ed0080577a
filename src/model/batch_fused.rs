//! Attention of one batched decoding step on the CPU in f32.
//!
//! Every row of the batch has one query per head, all at the same position. A row attends to
//! the shared prompt keys its keep mask leaves and to the keys of its own generated tokens only.
//! One task per KV head and block of rows: the block's queries of that head's GQA group are
//! scored against the prompt keys with one `gemm` (the keys are read once for the whole block)
//! and against each row's own generated keys with dot products, then each score row is masked
//! and normalised, multiplied by the prompt values with a second `gemm` and by the row's own
//! values. Nothing is copied from the prompt cache.

use std::cell::RefCell;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::error::{ModelError, Result};
use super::mask::KeepColumns;
use super::probabilities::{RowBlock, normalise_rows};
use super::simd::dot;

/// Queries times keys of one block are kept near this many scores (4 MiB per thread).
const BLOCK_SCORES: usize = 1 << 20;
/// Blocks per rayon thread the rows are cut into when the batch is large enough.
const BLOCKS_PER_THREAD: usize = 4;

/// Sizes of one layer's batched attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchDims {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Dimension of a head.
    pub head_dim: usize,
    /// Rows of the batch.
    pub rows: usize,
    /// Prompt positions every row may attend to (subject to its mask).
    pub prompt: usize,
    /// Positions each KV head's prompt buffer holds (row stride between KV heads, in rows).
    pub prompt_capacity: usize,
    /// Generated tokens per row, this step's included.
    pub generated: usize,
    /// Tokens each row's generated-key buffer holds.
    pub generated_capacity: usize,
}

/// Borrowed inputs, all f32 and contiguous.
pub(crate) struct BatchInputs<'a> {
    /// Rotated queries `[rows, heads, head_dim]`.
    pub queries: &'a [f32],
    /// Rotated prompt keys `[kv_heads, prompt_capacity, head_dim]`.
    pub prompt_keys: &'a [f32],
    /// Prompt values, same layout as the keys.
    pub prompt_values: &'a [f32],
    /// Rotated generated keys `[rows, kv_heads, generated_capacity, head_dim]`.
    pub generated_keys: &'a [f32],
    /// Generated values, same layout as the keys.
    pub generated_values: &'a [f32],
    /// Each row's keep mask.
    pub masks: &'a [KeepColumns],
    /// The layer, for the masks.
    pub layer: usize,
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs attention; `out` is `[kv_heads, rows, group, head_dim]`. Slice lengths that do not
/// match `dims` are an error (callers build both from the same tensors, so it would be a bug).
pub(crate) fn attend(
    dims: &BatchDims,
    inputs: &BatchInputs,
    out: &mut [f32],
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<()> {
    check_lengths(dims, inputs, out)?;
    let group = dims.heads / dims.kv_heads;
    let block_rows = block_rows(dims, group);
    let per_kv_head = dims.rows * group * dims.head_dim;
    let blocks: Vec<(usize, usize, &mut [f32])> = out
        .chunks_mut(per_kv_head)
        .enumerate()
        .flat_map(|(kv_head, head_out)| {
            head_out
                .chunks_mut(block_rows * group * dims.head_dim)
                .enumerate()
                .map(move |(index, block_out)| (kv_head, index * block_rows, block_out))
        })
        .collect();
    let stopped = blocks
        .into_par_iter()
        .any(|(kv_head, first_row, block_out)| {
            if cancelled() {
                return true;
            }
            SCRATCH.with_borrow_mut(|scratch| {
                run_block(dims, inputs, kv_head, first_row, block_out, scratch)
            });
            false
        });
    if stopped {
        return Err(ModelError::Cancelled);
    }
    Ok(())
}

/// Rows per block: few enough that the scores stay near [`BLOCK_SCORES`] and that every thread
/// gets several blocks, at least one.
fn block_rows(dims: &BatchDims, group: usize) -> usize {
    let by_size = BLOCK_SCORES / (group * (dims.prompt + dims.generated)).max(1);
    let blocks_wanted = rayon::current_num_threads() * BLOCKS_PER_THREAD;
    let by_spread = dims.rows * dims.kv_heads / blocks_wanted;
    by_size.min(by_spread).max(1)
}

fn check_lengths(dims: &BatchDims, inputs: &BatchInputs, out: &[f32]) -> Result<()> {
    let d = dims.head_dim;
    let consistent = dims.kv_heads > 0
        && dims.heads.is_multiple_of(dims.kv_heads)
        && dims.prompt > 0
        && dims.prompt <= dims.prompt_capacity
        && dims.generated > 0
        && dims.generated <= dims.generated_capacity
        && inputs.queries.len() == dims.rows * dims.heads * d
        && inputs.prompt_keys.len() == dims.kv_heads * dims.prompt_capacity * d
        && inputs.prompt_values.len() == inputs.prompt_keys.len()
        && inputs.generated_keys.len() == dims.rows * dims.kv_heads * dims.generated_capacity * d
        && inputs.generated_values.len() == inputs.generated_keys.len()
        && inputs.masks.len() == dims.rows
        && inputs.masks.iter().all(|m| m.columns() <= dims.prompt)
        && out.len() == dims.rows * dims.heads * d;
    if consistent {
        Ok(())
    } else {
        Err(ModelError::InvalidArgument(format!(
            "batched attention called with inconsistent buffers for {dims:?}"
        )))
    }
}

/// Attention of the rows from `first_row` on (as many as `out` holds) for the query heads of
/// `kv_head`; `out` is their `[rows, group, head_dim]` piece of the output.
fn run_block(
    dims: &BatchDims,
    inputs: &BatchInputs,
    kv_head: usize,
    first_row: usize,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let d = dims.head_dim;
    let group = dims.heads / dims.kv_heads;
    let queries_count = out.len() / d;
    let keys = dims.prompt + dims.generated;
    let scale = 1.0 / (d as f32).sqrt();
    scratch.resize(queries_count * (d + keys), 0.0);
    let (queries, scores) = scratch.split_at_mut(queries_count * d);
    // Query `i` of the block is head `kv_head * group + i % group` of row `first_row + i / group`.
    let row_head = |i: usize| (first_row + i / group, kv_head * group + i % group);
    for (i, query) in queries.chunks_exact_mut(d).enumerate() {
        let (row, head) = row_head(i);
        let at = (row * dims.heads + head) * d;
        query.copy_from_slice(&inputs.queries[at..at + d]);
    }
    let prompt_offset = kv_head * dims.prompt_capacity * d;
    let generated_offset =
        |row: usize| (row * dims.kv_heads + kv_head) * dims.generated_capacity * d;

    // SAFETY: every pointer and stride stays inside its slice: the lhs is the `queries_count x
    // d` gathered queries; the rhs reads the first `prompt <= prompt_capacity` key rows of one KV
    // head; dst is the first `prompt` columns of each `keys`-long row of the scores, sized above.
    unsafe {
        gemm(
            queries_count,
            dims.prompt,
            d,
            scores.as_mut_ptr(),
            1,
            keys as isize,
            false,
            queries.as_ptr(),
            1,
            d as isize,
            inputs.prompt_keys[prompt_offset..].as_ptr(),
            d as isize,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            Parallelism::None,
        );
    }

    for (i, (query, row_scores)) in queries
        .chunks_exact(d)
        .zip(scores.chunks_exact_mut(keys))
        .enumerate()
    {
        let (row, head) = row_head(i);
        let own_keys = &inputs.generated_keys[generated_offset(row)..];
        for (score, key) in row_scores[dims.prompt..]
            .iter_mut()
            .zip(own_keys.chunks_exact(d))
        {
            *score = dot(query, key) * scale;
        }
        normalise_rows(RowBlock {
            scores: row_scores,
            keys,
            first_visible: keys,
            keep: Some(inputs.masks[row].head(inputs.layer, head)),
            first_captured: 0,
            key_limit: 0,
            captured: &mut [],
            column_sums: None,
        });
    }

    // SAFETY: lhs is the first `prompt` probabilities of each `keys`-long score row; rhs the
    // first `prompt` value rows of one KV head; dst the block's own `queries_count x d` output.
    unsafe {
        gemm(
            queries_count,
            d,
            dims.prompt,
            out.as_mut_ptr(),
            1,
            d as isize,
            false,
            scores.as_ptr(),
            1,
            keys as isize,
            inputs.prompt_values[prompt_offset..].as_ptr(),
            1,
            d as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }

    for (i, (output, row_probs)) in out
        .chunks_exact_mut(d)
        .zip(scores.chunks_exact(keys))
        .enumerate()
    {
        let (row, _) = row_head(i);
        let own_values = &inputs.generated_values[generated_offset(row)..];
        for (&p, value) in row_probs[dims.prompt..]
            .iter()
            .zip(own_values.chunks_exact(d))
        {
            for (o, v) in output.iter_mut().zip(value) {
                *o += p * v;
            }
        }
    }
}

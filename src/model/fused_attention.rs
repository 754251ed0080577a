//! Causal attention of one layer on the CPU in f32, fused per block of query rows.
//!
//! For each query head and block of rows `[s, e)` (the rows' keys being `[0, past + e)`), one
//! task computes the scaled scores into a reused scratch buffer with one `gemm`, turns each row
//! into probabilities in place (causal cut, eviction mask, softmax), copies the captured rows and
//! column sums out, and multiplies by the values with a second `gemm` straight into the output.
//! Nothing of size `L x L` exists; the scratch is `block rows x keys` per thread. Query heads of
//! one GQA group read the same key/value rows, so K and V are never repeated.

use std::cell::RefCell;
use std::sync::Mutex;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::capture::LayerSink;
use super::error::{ModelError, Result};
use super::mask::KeepColumns;
use super::probabilities::{RowBlock, normalise_rows};

/// Sizes of one layer's attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionDims {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Dimension of a head.
    pub head_dim: usize,
    /// Positions each KV head's buffer holds (row stride between KV heads, in rows).
    pub capacity: usize,
    /// Cache positions before the first query row.
    pub past: usize,
    /// Query rows.
    pub n: usize,
    /// Query rows per block.
    pub chunk: usize,
}

/// Borrowed inputs, all f32 and contiguous.
pub(crate) struct AttentionInputs<'a> {
    /// Rotated queries `[n, heads, head_dim]`.
    pub queries: &'a [f32],
    /// Rotated keys `[kv_heads, capacity, head_dim]`, valid up to `past + n`.
    pub keys: &'a [f32],
    /// Values, same layout as keys.
    pub values: &'a [f32],
    /// Eviction mask of this layer, if decoding under eviction.
    pub keep: Option<(&'a KeepColumns, usize)>,
}

/// One task: rows `[start, end)` of query head `head`.
struct Block<'a> {
    head: usize,
    start: usize,
    end: usize,
    /// `[end - start, head_dim]` of the head-major output.
    out: &'a mut [f32],
    /// Captured rows `[max(start, rows_from), end)`, `key_limit` each.
    rows: &'a mut [f32],
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs attention; `out` is `[heads, n, head_dim]` (head-major). Slice lengths that do not match
/// `dims` are an error (callers build both from the same tensors, so it would be a bug).
pub(crate) fn attend(
    dims: &AttentionDims,
    inputs: &AttentionInputs,
    sink: Option<LayerSink>,
    out: &mut [f32],
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<()> {
    check_lengths(dims, inputs, sink.as_ref(), out)?;
    let (rows_from, key_limit, rows, accumulated) = match sink {
        Some(s) => (s.rows_from.min(dims.n), s.key_limit, s.rows, s.accumulated),
        None => (dims.n, 0, Default::default(), None),
    };
    let accumulators: Option<Vec<Mutex<Vec<f32>>>> = accumulated.as_ref().map(|_| {
        (0..dims.heads)
            .map(|_| Mutex::new(vec![0f32; key_limit]))
            .collect()
    });

    let blocks = split_blocks(dims, rows_from, key_limit, rows, out);
    let stopped = blocks.into_par_iter().any(|block| {
        if cancelled() {
            return true;
        }
        let accumulator = accumulators.as_ref().map(|a| &a[block.head]);
        SCRATCH.with_borrow_mut(|scratch| {
            run_block(
                dims,
                inputs,
                rows_from,
                key_limit,
                block,
                scratch,
                accumulator,
            )
        });
        false
    });
    if stopped {
        return Err(ModelError::Cancelled);
    }
    if let (Some(accumulators), Some(target)) = (accumulators, accumulated) {
        for (head, sums) in accumulators.into_iter().enumerate() {
            let sums = sums
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            target[head * key_limit..(head + 1) * key_limit].copy_from_slice(&sums);
        }
    }
    Ok(())
}

fn check_lengths(
    dims: &AttentionDims,
    inputs: &AttentionInputs,
    sink: Option<&LayerSink>,
    out: &[f32],
) -> Result<()> {
    let d = dims.head_dim;
    let total = dims.past + dims.n;
    let captured = sink.map_or(0, |s| dims.n.saturating_sub(s.rows_from));
    let key_limit = sink.map_or(0, |s| s.key_limit);
    let consistent = dims.chunk > 0
        && dims.kv_heads > 0
        && dims.heads.is_multiple_of(dims.kv_heads)
        && total <= dims.capacity
        && inputs.queries.len() == dims.n * dims.heads * d
        && inputs.keys.len() == dims.kv_heads * dims.capacity * d
        && inputs.values.len() == inputs.keys.len()
        && out.len() == dims.heads * dims.n * d
        && key_limit <= total
        && sink.is_none_or(|s| {
            s.rows.len() == dims.heads * captured * key_limit
                && s.accumulated
                    .as_ref()
                    .is_none_or(|a| a.len() == dims.heads * key_limit)
        })
        && inputs
            .keep
            .is_none_or(|(mask, _)| mask.columns() <= dims.past);
    if consistent {
        Ok(())
    } else {
        Err(ModelError::InvalidArgument(format!(
            "fused attention called with inconsistent buffers for {dims:?}"
        )))
    }
}

/// Cuts the output and the capture buffer into disjoint per-task pieces.
fn split_blocks<'a>(
    dims: &AttentionDims,
    rows_from: usize,
    key_limit: usize,
    mut rows: &'a mut [f32],
    out: &'a mut [f32],
) -> Vec<Block<'a>> {
    let (n, d, chunk) = (dims.n, dims.head_dim, dims.chunk);
    let per_head = (n - rows_from) * key_limit;
    let mut blocks = Vec::with_capacity(dims.heads * n.div_ceil(chunk));
    for (head, head_out) in out.chunks_mut(n * d).enumerate() {
        let (mut remaining, rest) = std::mem::take(&mut rows).split_at_mut(per_head);
        rows = rest;
        for (index, block_out) in head_out.chunks_mut(chunk * d).enumerate() {
            let start = index * chunk;
            let end = (start + chunk).min(n);
            let taken = end.saturating_sub(start.max(rows_from)) * key_limit;
            let (block_rows, rest) = std::mem::take(&mut remaining).split_at_mut(taken);
            remaining = rest;
            blocks.push(Block {
                head,
                start,
                end,
                out: block_out,
                rows: block_rows,
            });
        }
    }
    blocks
}

fn run_block(
    dims: &AttentionDims,
    inputs: &AttentionInputs,
    rows_from: usize,
    key_limit: usize,
    block: Block,
    scratch: &mut Vec<f32>,
    accumulator: Option<&Mutex<Vec<f32>>>,
) {
    let d = dims.head_dim;
    let rows = block.end - block.start;
    let keys = dims.past + block.end;
    let group = dims.heads / dims.kv_heads;
    let kv_offset = (block.head / group) * dims.capacity * d;
    let q_offset = (block.start * dims.heads + block.head) * d;
    scratch.resize(rows * keys, 0.0);
    let scale = 1.0 / (d as f32).sqrt();

    // SAFETY: every pointer and stride stays inside its slice: the lhs reads rows
    // `start..end` of head `head` in `[n, heads, d]` queries; the rhs reads the first `keys <=
    // capacity` rows of one KV head; dst is `rows x keys` of the scratch resized above.
    unsafe {
        gemm(
            rows,
            keys,
            d,
            scratch.as_mut_ptr(),
            1,
            keys as isize,
            false,
            inputs.queries[q_offset..].as_ptr(),
            1,
            (dims.heads * d) as isize,
            inputs.keys[kv_offset..].as_ptr(),
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

    let limit = key_limit.min(keys);
    let mut sums = accumulator.map(|_| vec![0f32; limit]);
    normalise_rows(RowBlock {
        scores: &mut scratch[..rows * keys],
        keys,
        first_visible: dims.past + block.start + 1,
        keep: inputs
            .keep
            .map(|(mask, layer)| mask.head(layer, block.head)),
        first_captured: rows_from.saturating_sub(block.start),
        key_limit,
        captured: block.rows,
        column_sums: sums.as_deref_mut(),
    });
    if let (Some(sums), Some(accumulator)) = (sums, accumulator) {
        let mut total = accumulator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (t, s) in total.iter_mut().zip(sums) {
            *t += s;
        }
    }

    // SAFETY: lhs is the `rows x keys` scratch; rhs the first `keys` value rows of one KV head;
    // dst the block's own `rows x d` piece of the output.
    unsafe {
        gemm(
            rows,
            d,
            keys,
            block.out.as_mut_ptr(),
            1,
            d as isize,
            false,
            scratch.as_ptr(),
            1,
            keys as isize,
            inputs.values[kv_offset..].as_ptr(),
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
}

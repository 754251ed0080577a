//! Causal attention of one layer with candle tensor ops, chunked over query rows: the portable
//! path (any device, any dtype), and the helpers the differentiable soft-token path shares.

use candle_core::{D, DType, Device, Tensor};

use super::cache::LayerCache;
use super::capture::LayerSink;
use super::error::{ModelError, Result};
use super::mask::KeepColumns;

/// Dtype attention probabilities are computed in: f32, or f64 for an f64 model.
pub(crate) fn probability_dtype(model: DType) -> DType {
    if model == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Additive causal bias `[rows, keys]` for query rows at positions `first..first + rows` over keys
/// `0..keys`: 0 where the key is at or before the query, `-inf` after.
pub(crate) fn causal_bias(
    first: usize,
    rows: usize,
    keys: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let values: Vec<f32> = (0..rows)
        .flat_map(|i| {
            (0..keys).map(move |j| {
                if j <= first + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(values, (rows, keys), device)?.to_dtype(dtype)?)
}

/// Everything one portable attention call needs.
pub(crate) struct PortableCall<'a> {
    /// Rotated queries `[1, n, heads, head_dim]`.
    pub queries: &'a Tensor,
    /// The layer's cache, already holding this input's keys and values at `past..past + n`.
    pub cache: &'a LayerCache,
    /// Cache positions before the first query.
    pub past: usize,
    /// Query rows per chunk.
    pub chunk: usize,
    /// Eviction mask and layer index, when decoding under eviction.
    pub keep: Option<(&'a KeepColumns, usize)>,
}

/// Runs attention; returns `[n, heads * head_dim]` in the model dtype.
pub(crate) fn portable_attention(
    call: &PortableCall,
    mut sink: Option<LayerSink>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Tensor> {
    let (_, n, heads, d) = call.queries.dims4()?;
    let kv_heads = call.cache.keys.dim(0)?;
    let group = heads / kv_heads;
    let dtype = call.queries.dtype();
    let device = call.queries.device();
    let p_dtype = probability_dtype(dtype);
    let scale = 1.0 / (d as f64).sqrt();
    let queries = call
        .queries
        .squeeze(0)?
        .transpose(0, 1)?
        .reshape((kv_heads, group, n, d))?;
    let keep_bias = match call.keep {
        Some((mask, layer)) => Some(mask.bias(layer, kv_heads, p_dtype, device)?),
        None => None,
    };

    let mut outputs = Vec::with_capacity(n.div_ceil(call.chunk));
    for start in (0..n).step_by(call.chunk) {
        if cancelled() {
            return Err(ModelError::Cancelled);
        }
        let rows = call.chunk.min(n - start);
        let first = call.past + start;
        let keys_seen = first + rows;
        let q =
            queries
                .narrow(2, start, rows)?
                .contiguous()?
                .reshape((kv_heads, group * rows, d))?;
        let keys = call.cache.keys.narrow(1, 0, keys_seen)?;
        let values = call.cache.values.narrow(1, 0, keys_seen)?;
        let scores = (q.matmul(&keys.t()?)? * scale)?
            .to_dtype(p_dtype)?
            .reshape((kv_heads, group, rows, keys_seen))?;
        let mut scores = if rows > 1 {
            scores.broadcast_add(&causal_bias(first, rows, keys_seen, p_dtype, device)?)?
        } else {
            scores
        };
        if let (Some(bias), Some((mask, _))) = (&keep_bias, call.keep) {
            let pad = Tensor::zeros(
                (kv_heads, group, 1, keys_seen - mask.columns()),
                p_dtype,
                device,
            )?;
            scores = scores.broadcast_add(&Tensor::cat(&[bias, &pad], D::Minus1)?)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        if let Some(sink) = sink.as_mut() {
            record(&probs, start, sink)?;
        }
        let out = probs
            .to_dtype(dtype)?
            .reshape((kv_heads, group * rows, keys_seen))?
            .matmul(&values)?;
        outputs.push(out.reshape((heads, rows, d))?);
    }
    let out = Tensor::cat(&outputs, 1)?;
    Ok(out.transpose(0, 1)?.contiguous()?.reshape((n, heads * d))?)
}

/// Copies captured rows and column sums of one chunk of probabilities `[kv, group, rows, keys]`.
fn record(probs: &Tensor, start: usize, sink: &mut LayerSink) -> Result<()> {
    let (kv_heads, group, rows, keys) = probs.dims4()?;
    let heads = kv_heads * group;
    let limit = sink.key_limit.min(keys);
    if limit == 0 {
        return Ok(());
    }
    let probs = probs.reshape((heads, rows, keys))?.narrow(2, 0, limit)?;
    if let Some(accumulated) = sink.accumulated.as_deref_mut() {
        let sums = probs.sum(1)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        for (dst, src) in accumulated.chunks_exact_mut(sink.key_limit).zip(sums) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
    }
    let from = sink.rows_from.max(start);
    if from >= start + rows {
        return Ok(());
    }
    let captured_rows = sink.rows.len() / (heads * sink.key_limit);
    let taken = probs
        .narrow(1, from - start, start + rows - from)?
        .to_dtype(DType::F32)?
        .to_vec3::<f32>()?;
    for (head_dst, head_rows) in sink
        .rows
        .chunks_exact_mut(captured_rows * sink.key_limit)
        .zip(taken)
    {
        for (offset, row) in head_rows.into_iter().enumerate() {
            let at = (from - sink.rows_from + offset) * sink.key_limit;
            head_dst[at..at + limit].copy_from_slice(&row);
        }
    }
    Ok(())
}

//! ExpectedAttention's query statistics, reduced during the prefill: each layer's pre-RoPE
//! queries become their first rows (kept one by one), the mean of the rest and the scatter
//! matrix about that mean, per query head ([`crate::session::QueryStatistics`]). The reduction
//! runs with candle ops on the model's device, one layer at a time, so it costs one centred copy
//! of a layer's queries and never an `L × L` matrix.

use candle_core::{DType, Tensor};
use ndarray::{Array3, Array4};

use super::config::ModelConfig;
use super::error::{ModelError, Result};
use super::rope::inverse_frequencies;
use crate::session::{FIRST_QUERY_ROWS, QueryStatistics};

/// One layer's reduced queries, flat and row-major.
pub(crate) struct LayerMoments {
    /// `[heads, first, head_dim]`.
    first_rows: Vec<f32>,
    /// `[heads, head_dim]`.
    tail_mean: Vec<f32>,
    /// `[heads, head_dim, head_dim]`.
    tail_scatter: Vec<f32>,
}

/// Reduces one layer's pre-RoPE queries `[1, n, heads, head_dim]`.
pub(crate) fn layer_moments(queries: &Tensor) -> Result<LayerMoments> {
    let (_, n, heads, d) = queries.dims4()?;
    let first = n.min(FIRST_QUERY_ROWS);
    // [heads, n, d] in f32.
    let q = queries
        .squeeze(0)?
        .to_dtype(DType::F32)?
        .transpose(0, 1)?
        .contiguous()?;
    let first_rows = q.narrow(1, 0, first)?.flatten_all()?.to_vec1::<f32>()?;
    let tail = n - first;
    if tail == 0 {
        return Ok(LayerMoments {
            first_rows,
            tail_mean: vec![0.0; heads * d],
            tail_scatter: vec![0.0; heads * d * d],
        });
    }
    let rest = q.narrow(1, first, tail)?;
    let mean = rest.mean_keepdim(1)?;
    let centred = rest.broadcast_sub(&mean)?;
    let scatter = centred.transpose(1, 2)?.contiguous()?.matmul(&centred)?;
    Ok(LayerMoments {
        first_rows,
        tail_mean: mean.flatten_all()?.to_vec1::<f32>()?,
        tail_scatter: scatter.flatten_all()?.to_vec1::<f32>()?,
    })
}

/// The statistics of an input of `n` rows from every layer's moments, in layer order.
pub(crate) fn assemble(
    config: &ModelConfig,
    n: usize,
    layers: Vec<LayerMoments>,
) -> Result<QueryStatistics> {
    let (heads, d) = (config.num_heads, config.head_dim);
    let count = layers.len();
    let first = n.min(FIRST_QUERY_ROWS);
    let mut first_rows = Vec::with_capacity(count * heads * first * d);
    let mut tail_mean = Vec::with_capacity(count * heads * d);
    let mut tail_scatter = Vec::with_capacity(count * heads * d * d);
    for layer in layers {
        first_rows.extend(layer.first_rows);
        tail_mean.extend(layer.tail_mean);
        tail_scatter.extend(layer.tail_scatter);
    }
    let shape_error = |what: &str, e: ndarray::ShapeError| {
        ModelError::InvalidArgument(format!("query statistics ({what}): {e}"))
    };
    Ok(QueryStatistics {
        first_rows: Array4::from_shape_vec((count, heads, first, d), first_rows)
            .map_err(|e| shape_error("first rows", e))?,
        tail_rows: n - first,
        tail_mean: Array3::from_shape_vec((count, heads, d), tail_mean)
            .map_err(|e| shape_error("tail mean", e))?,
        tail_scatter: Array4::from_shape_vec((count, heads, d, d), tail_scatter)
            .map_err(|e| shape_error("tail scatter", e))?,
        inverse_frequencies: inverse_frequencies(config),
    })
}

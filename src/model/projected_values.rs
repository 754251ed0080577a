//! CriticalKV's value-aware weights: how large each prompt value is once the attention block's
//! output projection has mapped it back to the residual stream, per query head.
//!
//! Query head `h` reads its KV head's value `v_j` (`head_dim` numbers) and the output projection
//! maps the head's output through its own `head_dim` columns `W_o^h` (`[hidden, head_dim]`), so
//! the entry's contribution is `v_j W_o^hᵀ` (`hidden` numbers) and its weight is the L1 norm of
//! that vector (kvpress's `CriticalKVPress.vwl1norm`, before its mean over the GQA group).
//!
//! Read from the prefilled cache, one layer and query head at a time: the transient extra is one
//! head's `[n, hidden]` product plus the layer's values and output projection in f32 (18.9 MB
//! and 134 MB for the product at 8,192 tokens with SmolLM2-135M's and Llama-3.1-8B's shapes); the
//! result is `[layers, query_heads, n]` f32 (8.4 MiB and 32 MiB).

use candle_core::{D, DType};
use ndarray::Array3;

use super::cache::KvCache;
use super::error::{ModelError, Result};
use super::transformer::Transformer;

impl Transformer {
    /// `‖v_j W_o^hᵀ‖₁` for the first `len` cached positions `j`, every layer and query head
    /// `h` (query head `h` reads KV head `h / (query_heads / kv_heads)`), computed in f32:
    /// `[layers, query_heads, len]`.
    pub fn projected_value_norms(&self, cache: &KvCache, len: usize) -> Result<Array3<f32>> {
        if len > cache.len() {
            return Err(ModelError::InvalidArgument(format!(
                "the KV cache holds {} positions, not the {len} asked for",
                cache.len()
            )));
        }
        let c = &self.config;
        let (heads, d) = (c.num_heads, c.head_dim);
        let group = heads / c.num_kv_heads.max(1);
        let mut data = Vec::with_capacity(c.num_layers * heads * len);
        for (l, weights) in self.weights.layers.iter().enumerate() {
            let values = cache
                .layer(l)?
                .values
                .narrow(1, 0, len)?
                .to_dtype(DType::F32)?;
            let output = weights.attn.o.weight().to_dtype(DType::F32)?;
            for h in 0..heads {
                let head_columns = output.narrow(1, h * d, d)?.t()?.contiguous()?;
                let value = values.get(h / group.max(1))?;
                let norms = value.matmul(&head_columns)?.abs()?.sum(D::Minus1)?;
                data.extend(norms.to_vec1::<f32>()?);
            }
        }
        Array3::from_shape_vec((c.num_layers, heads, len), data)
            .map_err(|e| ModelError::InvalidArgument(format!("projected value norms: {e}")))
    }
}

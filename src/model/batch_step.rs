//! One step of batched decoding: a token per live row through every layer together, at the
//! same position for all rows.
//!
//! Norms, projections, rotary embeddings and the MLP run on all rows at once (one matmul per
//! projection, so the weights are read once per step for the batch); attention is per row,
//! over the shared prompt cache under the row's mask and over the row's own generated tokens.

use candle_core::{DType, Device, Tensor};

use super::batch_attention::{BatchCall, portable_batch_attention};
use super::batch_fused::{self, BatchDims, BatchInputs};
use super::batch_rows::LiveRows;
use super::cache::KvCache;
use super::cpu_slice::cpu_f32;
use super::elementwise::{add_residual, swiglu};
use super::error::{ModelError, Result};
use super::few_rows::{linear_batch, project_batch};
use super::forward::rms_norm;
use super::rope::RotaryTables;
use super::transformer::Transformer;
use super::weights::LayerWeights;
use crate::progress::Progress;

impl Transformer {
    /// Runs `tokens` (one per live row) at position `prompt.len() + rows.generated()`, stores
    /// their keys and values in `rows` and returns the logits `[rows, vocab]` in f32.
    pub(crate) fn batch_step(
        &self,
        tokens: &[u32],
        prompt: &KvCache,
        rows: &mut LiveRows,
        progress: &dyn Progress,
    ) -> Result<Tensor> {
        if tokens.len() != rows.len() {
            return Err(ModelError::InvalidArgument(format!(
                "{} tokens for {} live rows",
                tokens.len(),
                rows.len()
            )));
        }
        let c = &self.config;
        let position = prompt.len() + rows.generated();
        let rope = RotaryTables::new(c, position, 1, self.dtype, &self.device)?;
        let mut x = self.embed(tokens)?;
        for (index, weights) in self.weights.layers.iter().enumerate() {
            if progress.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let layer = BatchLayer {
                index,
                weights,
                rope: &rope,
                prompt,
            };
            x = self.batch_layer(&x, &layer, rows, progress)?;
        }
        rows.advance();
        let x = rms_norm(&x, &self.weights.final_norm, c.rms_norm_eps)?;
        Ok(project_batch(&x, &self.weights.lm_head)?.to_dtype(DType::F32)?)
    }

    /// One transformer block over all live rows.
    fn batch_layer(
        &self,
        x: &Tensor,
        layer: &BatchLayer,
        rows: &LiveRows,
        progress: &dyn Progress,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (n, _) = x.dims2()?;
        let (heads, kv_heads, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let w = layer.weights;
        let eps = c.rms_norm_eps;
        let h = rms_norm(x, &w.attn_norm, eps)?;
        let q = linear_batch(&h, &w.attn.q)?.reshape((n, 1, heads, d))?;
        let k = linear_batch(&h, &w.attn.k)?.reshape((n, 1, kv_heads, d))?;
        let v = linear_batch(&h, &w.attn.v)?.reshape((n, kv_heads, d))?;
        let q = layer.rope.apply_thd(&q)?.reshape((n, heads, d))?;
        let k = layer.rope.apply_thd(&k)?.reshape((n, kv_heads, d))?;
        rows.write(layer.index, &k, &v)?;

        let attended = if rows.fused() {
            let cancelled = || progress.is_cancelled();
            self.batch_fused_attention(&q, layer, rows, &cancelled)?
        } else {
            portable_batch_attention(&BatchCall {
                queries: &q,
                prompt: layer.prompt.layer(layer.index)?,
                prompt_len: layer.prompt.len(),
                generated: rows.suffix(layer.index)?,
                generated_len: rows.generated() + 1,
                bias: rows.bias(layer.index)?,
            })?
        };
        let x = add_residual(linear_batch(&attended, &w.attn.o)?, x)?;
        let h = rms_norm(&x, &w.mlp_norm, eps)?;
        let gated = swiglu(
            linear_batch(&h, &w.mlp.gate)?,
            &linear_batch(&h, &w.mlp.up)?,
        )?;
        add_residual(linear_batch(&gated, &w.mlp.down)?, &x)
    }

    /// Attention of one layer with the fused CPU kernel; returns `[rows, heads * head_dim]`.
    fn batch_fused_attention(
        &self,
        queries: &Tensor,
        layer: &BatchLayer,
        rows: &LiveRows,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Tensor> {
        let c = &self.config;
        let (n, heads, d) = queries.dims3()?;
        let prompt = layer.prompt.layer(layer.index)?;
        let generated = rows.suffix(layer.index)?;
        let (q_storage, q_layout) = queries.storage_and_layout();
        let (pk_storage, pk_layout) = prompt.keys.storage_and_layout();
        let (pv_storage, pv_layout) = prompt.values.storage_and_layout();
        let (gk_storage, gk_layout) = generated.keys.storage_and_layout();
        let (gv_storage, gv_layout) = generated.values.storage_and_layout();
        let inputs = BatchInputs {
            queries: cpu_f32(&q_storage, q_layout)?,
            prompt_keys: cpu_f32(&pk_storage, pk_layout)?,
            prompt_values: cpu_f32(&pv_storage, pv_layout)?,
            generated_keys: cpu_f32(&gk_storage, gk_layout)?,
            generated_values: cpu_f32(&gv_storage, gv_layout)?,
            masks: rows.masks(),
            layer: layer.index,
        };
        let dims = BatchDims {
            heads,
            kv_heads: c.num_kv_heads,
            head_dim: d,
            rows: n,
            prompt: layer.prompt.len(),
            prompt_capacity: prompt.keys.dim(1)?,
            generated: rows.generated() + 1,
            generated_capacity: generated.keys.dim(2)?,
        };
        let mut out = vec![0f32; heads * n * d];
        batch_fused::attend(&dims, &inputs, &mut out, cancelled)?;
        let group = heads / c.num_kv_heads;
        let out = Tensor::from_vec(out, (c.num_kv_heads, n, group, d), &Device::Cpu)?;
        Ok(out.transpose(0, 1)?.contiguous()?.reshape((n, heads * d))?)
    }
}

/// What one block of a batched step needs besides its input.
struct BatchLayer<'a> {
    index: usize,
    weights: &'a LayerWeights,
    rope: &'a RotaryTables,
    prompt: &'a KvCache,
}

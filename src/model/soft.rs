//! The differentiable soft-token pass used to train Judge Q soft tokens.
//!
//! Runs `n` soft embeddings after a prompt held in a [`KvCache`] with ops that all have a
//! backward pass in candle (composed softmax, `rms_norm_slow`, `rope_slow`), so gradients reach
//! the soft embeddings through their queries and through the keys and values later soft tokens
//! attend to. The prompt's cache is a constant: no gradient flows into it and it is not written.

use candle_core::{D, Module, Tensor};

use super::attention::{causal_bias, probability_dtype};
use super::cache::KvCache;
use super::error::{ModelError, Result};
use super::rope::RotaryTables;
use super::transformer::Transformer;

impl Transformer {
    /// Attention probabilities of `soft` (`[n, hidden]`, typically a `Var`) appended after the
    /// `prompt.len()` cached positions, with the autograd graph attached.
    ///
    /// Returns one tensor per layer, `[query_heads, n, prompt.len()]` (f32, or f64 for an f64
    /// model): row `i` is soft token `i`'s softmax over the prompt keys and soft tokens `0..=i`,
    /// restricted to the prompt keys and not renormalised. Equal to the rows
    /// [`Transformer::forward`] captures for the same input.
    pub fn soft_token_attention(&self, prompt: &KvCache, soft: &Tensor) -> Result<Vec<Tensor>> {
        let c = &self.config;
        let (n, hidden) = soft.dims2().map_err(|_| {
            ModelError::InvalidArgument(format!(
                "soft tokens must be [n, {}], got {:?}",
                c.hidden_size,
                soft.dims()
            ))
        })?;
        let p = prompt.len();
        if n == 0 || hidden != c.hidden_size || p == 0 {
            return Err(ModelError::InvalidArgument(format!(
                "soft tokens must be [n >= 1, {}] after a non-empty prompt, got [{n}, {hidden}] after {p} positions",
                c.hidden_size
            )));
        }
        if p + n > c.max_position_embeddings {
            return Err(ModelError::PromptTooLong {
                prompt_tokens: p,
                extra_tokens: n,
                max_context: c.max_position_embeddings,
                model: c.architecture.name().to_string(),
            });
        }
        let (heads, kv_heads, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let group = c.group_size();
        let eps = c.rms_norm_eps as f32;
        let p_dtype = probability_dtype(self.dtype);
        let scale = 1.0 / (d as f64).sqrt();
        let rope = RotaryTables::new(c, p, n, self.dtype, &self.device)?;
        let causal = causal_bias(p, n, p + n, p_dtype, &self.device)?;

        let mut x = soft.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mut probabilities = Vec::with_capacity(c.num_layers);
        for (index, w) in self.weights.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm_slow(&x, &w.attn_norm, eps)?;
            let q = rope.apply_differentiable(
                &w.attn
                    .q
                    .forward(&h)?
                    .reshape((1, n, heads, d))?
                    .transpose(1, 2)?,
            )?;
            let k = rope.apply_differentiable(
                &w.attn
                    .k
                    .forward(&h)?
                    .reshape((1, n, kv_heads, d))?
                    .transpose(1, 2)?,
            )?;
            let v = w
                .attn
                .v
                .forward(&h)?
                .reshape((n, kv_heads, d))?
                .transpose(0, 1)?;
            let cached = prompt.layer(index)?;
            let keys = Tensor::cat(&[&cached.keys.narrow(1, 0, p)?.detach(), &k.squeeze(0)?], 1)?;
            let values = Tensor::cat(&[&cached.values.narrow(1, 0, p)?.detach(), &v], 1)?;

            let q = q
                .squeeze(0)?
                .contiguous()?
                .reshape((kv_heads, group * n, d))?;
            let scores = (q.matmul(&keys.t()?)? * scale)?
                .to_dtype(p_dtype)?
                .reshape((kv_heads, group, n, p + n))?;
            let probs = candle_nn::ops::softmax(&scores.broadcast_add(&causal)?, D::Minus1)?;
            probabilities.push(probs.reshape((heads, n, p + n))?.narrow(2, 0, p)?);
            if index + 1 == c.num_layers {
                break;
            }
            let attended = probs
                .to_dtype(self.dtype)?
                .reshape((kv_heads, group * n, p + n))?
                .matmul(&values)?
                .reshape((heads, n, d))?
                .transpose(0, 1)?
                .reshape((n, heads * d))?;
            x = (x + w.attn.o.forward(&attended)?)?;
            let h = candle_nn::ops::rms_norm_slow(&x, &w.mlp_norm, eps)?;
            let gated = (w.mlp.gate.forward(&h)?.silu()? * w.mlp.up.forward(&h)?)?;
            x = (x + w.mlp.down.forward(&gated)?)?;
        }
        Ok(probabilities)
    }
}

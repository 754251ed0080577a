//! Attention of one batched decoding step with candle tensor ops: the portable path (any
//! device, any dtype).
//!
//! Scores against the shared prompt keys are one matmul for all rows (the rows' queries of one
//! KV head's group side by side), plus each row's keep-mask bias; scores against each row's own
//! generated keys are a batched matmul over rows. Both are concatenated, normalised, and
//! multiplied by the prompt values and the row's own values the same way.

use candle_core::Tensor;

use super::attention::probability_dtype;
use super::cache::LayerCache;
use super::error::Result;

/// Everything one portable batched attention call needs.
pub(crate) struct BatchCall<'a> {
    /// Rotated queries `[rows, heads, head_dim]`.
    pub queries: &'a Tensor,
    /// The layer's prompt cache (`[kv_heads, capacity, head_dim]` each).
    pub prompt: &'a LayerCache,
    /// Prompt positions.
    pub prompt_len: usize,
    /// The rows' generated keys and values (`[rows, kv_heads, capacity, head_dim]` each).
    pub generated: &'a LayerCache,
    /// Generated tokens per row, this step's included.
    pub generated_len: usize,
    /// Additive keep-mask bias `[kv_heads, rows, group, prompt_len]` in the probability dtype.
    pub bias: &'a Tensor,
}

/// Runs attention; returns `[rows, heads * head_dim]` in the model dtype.
pub(crate) fn portable_batch_attention(call: &BatchCall) -> Result<Tensor> {
    let (rows, heads, d) = call.queries.dims3()?;
    let kv_heads = call.prompt.keys.dim(0)?;
    let group = heads / kv_heads;
    let (n, s) = (call.prompt_len, call.generated_len);
    let dtype = call.queries.dtype();
    let p_dtype = probability_dtype(dtype);
    let scale = 1.0 / (d as f64).sqrt();

    let queries = call.queries.reshape((rows, kv_heads, group, d))?;
    let by_kv_head = queries
        .transpose(0, 1)?
        .contiguous()?
        .reshape((kv_heads, rows * group, d))?;
    let prompt_keys = call.prompt.keys.narrow(1, 0, n)?;
    let prompt_scores = (by_kv_head.matmul(&prompt_keys.t()?)? * scale)?
        .to_dtype(p_dtype)?
        .reshape((kv_heads, rows, group, n))?
        .broadcast_add(call.bias)?;
    let own_keys = call.generated.keys.narrow(2, 0, s)?.contiguous()?;
    let own_scores = (queries.matmul(&own_keys.t()?)? * scale)?
        .to_dtype(p_dtype)?
        .transpose(0, 1)?;
    let scores = Tensor::cat(&[&prompt_scores, &own_scores], 3)?.contiguous()?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?;

    let prompt_values = call.prompt.values.narrow(1, 0, n)?;
    let from_prompt = probs
        .narrow(3, 0, n)?
        .contiguous()?
        .reshape((kv_heads, rows * group, n))?
        .matmul(&prompt_values)?
        .reshape((kv_heads, rows, group, d))?
        .transpose(0, 1)?;
    let own_values = call.generated.values.narrow(2, 0, s)?.contiguous()?;
    let from_own = probs
        .narrow(3, n, s)?
        .transpose(0, 1)?
        .contiguous()?
        .matmul(&own_values)?;
    Ok((from_prompt + from_own)?.reshape((rows, heads * d))?)
}

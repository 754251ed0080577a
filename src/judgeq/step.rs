//! One training step made cheap: the prompt's keys and values do not depend on the soft tokens
//! (attention is causal), so the prompt runs once through the fast inference path without a
//! graph, and the forward and backward passes cover only the `n` soft positions attending to
//! that cache ([`Transformer::soft_token_attention`]).

use candle_core::{Tensor, Var};

use crate::judgeq::error::{Result, TrainError};
use crate::judgeq::objective::{ObjectiveSettings, objective};
use crate::model::{Capture, KvCache, RunPlan, Transformer};
use crate::progress::Progress;

/// The prompt's KV cache, from one plain prefill (no capture, no graph).
pub fn prefill_prompt(
    transformer: &Transformer,
    prompt_ids: &[u32],
    progress: &dyn Progress,
) -> Result<KvCache> {
    let n = prompt_ids.len();
    transformer.check_memory(&RunPlan::prefill(n, n, &Capture::NONE))?;
    let mut cache = transformer.new_cache(n)?;
    transformer.forward(
        &transformer.embed(prompt_ids)?,
        &mut cache,
        &Capture::NONE,
        progress,
    )?;
    Ok(cache)
}

/// `[layers, query_heads, n_prompt]` target as a tensor on the model's device.
pub fn target_tensor(
    transformer: &Transformer,
    attention: &ndarray::Array3<f32>,
) -> Result<Tensor> {
    let values: Vec<f32> = attention.iter().copied().collect();
    Ok(Tensor::from_vec(
        values,
        attention.dim(),
        &transformer.device,
    )?)
}

/// The objective of `soft` after the prompt held in `cache`, graph attached.
pub fn soft_loss(
    transformer: &Transformer,
    cache: &KvCache,
    soft: &Tensor,
    target: &Tensor,
    settings: &ObjectiveSettings,
) -> Result<Tensor> {
    let rows = transformer.soft_token_attention(cache, soft)?;
    objective(&rows, target, settings, transformer.config.num_kv_heads)
}

/// Loss and its gradient with respect to the soft embeddings.
#[derive(Debug)]
pub struct LossAndGradient {
    /// The objective.
    pub loss: f64,
    /// d loss / d soft, the shape of the soft embeddings.
    pub gradient: Tensor,
}

/// The objective of `soft` after the prompt in `cache` and its gradient.
pub fn loss_and_gradient(
    transformer: &Transformer,
    cache: &KvCache,
    soft: &Var,
    target: &Tensor,
    settings: &ObjectiveSettings,
) -> Result<LossAndGradient> {
    let loss = soft_loss(transformer, cache, soft.as_tensor(), target, settings)?;
    let grads = loss.backward()?;
    let gradient = grads.get(soft.as_tensor()).cloned().ok_or_else(|| {
        TrainError::InvalidSetting("the loss does not depend on the soft tokens".into())
    })?;
    Ok(LossAndGradient {
        loss: loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?,
        gradient,
    })
}

//! KeyDiff (kvpress 0.5.5's `KeyDiffPress`, after arXiv 2504.15364): keys unlike the average
//! key are kept. Per layer and KV head, the anchor is the mean of the unit-normalised
//! post-RoPE keys of the whole prompt; each key scores minus its cosine similarity to the anchor,
//! and the top `B` of the whole prompt are kept; nothing is protected. kvpress applies it in one
//! shot over the prompt (the paper's block-wise form is kvpress's `BlockPress` around it, not
//! this). Norms are clamped as torch's `F.normalize` (`1e-12`) and `F.cosine_similarity`
//! (`1e-8`) clamp them.
//!
//! The scores are per KV head; per query head every head of a group keeps its KV head's set.

use ndarray::{Array3, ArrayView1, Axis};

use crate::attention::ScoreGrid;

use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};

/// The keys least similar to the mean key direction.
pub struct KeyDiff;

impl Policy for KeyDiff {
    fn id(&self) -> &'static str {
        "keydiff"
    }

    fn label(&self) -> &'static str {
        "KeyDiff"
    }

    fn summary(&self) -> &'static str {
        "The keys least similar to the mean key direction (kvpress's KeyDiffPress)"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Keys]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        Order::scored(ctx.prompt_len(), Protected::Nothing, 0, scores(ctx)?)
    }
}

/// Minus each prompt key's cosine similarity to the mean unit key of its head,
/// `[layers, heads, n_prompt]` at the settings' granularity.
pub(crate) fn scores(ctx: &OrderContext) -> Result<ScoreGrid, PolicyError> {
    let keys = ctx.inputs().keys(KeyDiff.label())?;
    let (layers, kv_heads, n, d) = keys.dim();
    let mut scores = Array3::<f32>::zeros((layers, kv_heads, n));
    for l in 0..layers {
        for g in 0..kv_heads {
            let head = keys.index_axis(Axis(0), l).index_axis_move(Axis(0), g);
            let mut anchor = vec![0f64; d];
            for key in head.outer_iter() {
                let norm = norm(key).max(1e-12);
                for (a, &v) in anchor.iter_mut().zip(key) {
                    *a += f64::from(v) / norm;
                }
            }
            anchor.iter_mut().for_each(|a| *a /= n as f64);
            let anchor_norm = anchor.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-8);
            for (j, key) in head.outer_iter().enumerate() {
                let dot: f64 = key
                    .iter()
                    .zip(&anchor)
                    .map(|(&k, a)| f64::from(k) * a)
                    .sum();
                let cosine = dot / (norm(key).max(1e-8) * anchor_norm);
                scores[[l, g, j]] = -cosine as f32;
            }
        }
    }
    Ok(ctx.inputs().kv_head_scores_at(scores, ctx.settings()))
}

/// L2 norm of a key, in f64.
fn norm(key: ArrayView1<f32>) -> f64 {
    key.iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

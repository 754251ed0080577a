//! Knorm (kvpress 0.5.5's `KnormPress`, after arXiv 2406.11430): keys with a small L2 norm
//! draw the most attention, so each key scores `−‖k‖` (its post-RoPE key, per KV head) and the
//! top `B` of the whole prompt are kept; nothing is protected. No parameter besides the budget
//! (kvpress's `compression_ratio`).
//!
//! The scores are per KV head; per query head every head of a group keeps its KV head's set.

use ndarray::Axis;

use crate::attention::ScoreGrid;

use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};

/// The keys with the smallest L2 norm.
pub struct Knorm;

impl Policy for Knorm {
    fn id(&self) -> &'static str {
        "knorm"
    }

    fn label(&self) -> &'static str {
        "Knorm"
    }

    fn summary(&self) -> &'static str {
        "The keys with the smallest L2 norm (kvpress's KnormPress)"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Keys]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        Order::scored(ctx.prompt_len(), Protected::Nothing, 0, scores(ctx)?)
    }
}

/// `−‖k‖` of every prompt key, `[layers, heads, n_prompt]` at the settings' granularity.
pub(crate) fn scores(ctx: &OrderContext) -> Result<ScoreGrid, PolicyError> {
    let keys = ctx.inputs().keys(Knorm.label())?;
    let scores: ScoreGrid = keys.map_axis(Axis(3), |key| {
        let norm = key
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        -norm as f32
    });
    Ok(ctx.inputs().kv_head_scores_at(scores, ctx.settings()))
}

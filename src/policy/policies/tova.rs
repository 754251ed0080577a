//! TOVA (kvpress 0.5.5's `TOVAPress`, after arXiv 2401.06104): the last prompt query's
//! attention, **averaged over every query head of the layer** (kvpress's
//! `attn_weights.mean(1)`), scores every earlier key, the same score in every head; the last
//! position is always kept (kvpress pads it with the maximum score plus one) and the top
//! `B − 1` of the rest are added. The last query's row is the last window row, which every
//! inspection captures. The window setting does not apply: TOVA's window is that one query.

use ndarray::Array3;

use crate::attention::ScoreGrid;

use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};

/// The last position plus the keys the last query attends to most, averaged over heads.
pub struct Tova;

impl Policy for Tova {
    fn id(&self) -> &'static str {
        "tova"
    }

    fn label(&self) -> &'static str {
        "TOVA"
    }

    fn summary(&self) -> &'static str {
        "The last position plus the keys the last query attends to most, averaged over the layer's heads (kvpress's TOVAPress)"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Window]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        Order::scored(ctx.prompt_len(), Protected::Window(1), 0, scores(ctx)?)
    }
}

/// The last query's attention to every earlier key, averaged over the layer's query heads, in
/// every head: `[layers, heads, n_prompt − 1]`.
pub(crate) fn scores(ctx: &OrderContext) -> Result<ScoreGrid, PolicyError> {
    let row = ctx.inputs().last_query_row(Tova.label())?;
    let (layers, query_heads, n) = row.dim();
    let scored = n.saturating_sub(1);
    let mut per_layer = vec![0f32; layers * scored];
    for l in 0..layers {
        for j in 0..scored {
            let sum: f64 = (0..query_heads).map(|h| f64::from(row[[l, h, j]])).sum();
            per_layer[l * scored + j] = (sum / query_heads as f64) as f32;
        }
    }
    let heads = ctx.heads();
    Ok(Array3::from_shape_fn(
        (layers, heads, scored),
        |(l, _, j)| per_layer[l * scored + j],
    ))
}

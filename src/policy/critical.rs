//! CriticalKV (arXiv 2502.03805; kvpress 0.5.5's `CriticalKVPress`): value-aware rescaling of a
//! base policy's scores and a two-stage selection. `criticalkv-snapkv` wraps SnapKV's scores,
//! `criticalkv-judgeq` Judge Q's.
//!
//! With `s_j` the base score of entry `j` on kvpress's scale (the mean over the source's query
//! rows, pooled and reduced per head as the base policy does; an entry the base always keeps
//! scores its layer's highest score plus one, as kvpress pads SnapKV's window) and `‖W_o v_j‖₁`
//! the L1 norm of its value through the output projection (per query head; the mean over the
//! GQA group at KV-head granularity, as `vwl1norm`):
//! 1. at a count `c`, the first `max(1, ⌊c · first_stage_ratio⌋)` entries are the top by `s_j`;
//! 2. the rest of the `c` are the top of the remaining entries by `(s_j + ε) · ‖W_o v_j‖₁`.
//!
//! Ties go to the earlier position in both stages. The kept set is not a prefix of one ranking,
//! so the order is two-stage ([`Order::two_stage`]).

use ndarray::{Axis, Zip};

use super::params::Number;
use super::{Order, OrderContext, PolicyError, Protected};
use crate::attention::{Granularity, ScoreGrid};

/// kvpress's `epsilon`: added to the base score before the rescaling. Default 1e-4.
pub static EPSILON: Number = Number {
    key: "criticalkv_epsilon",
    label: "CriticalKV ε",
    help: "Added to the base score before it is multiplied by the value's output-projected L1 norm (kvpress's CriticalKVPress epsilon, default 1e-4)",
    default: 1e-4,
    min: 0.0,
    max: 1.0,
    step: 1e-5,
    invalid: "CriticalKV's epsilon must lie in [0, 1] (default 1e-4)",
};

/// kvpress's `first_stage_ratio`: the share of the budget chosen by the base scores alone.
/// Default 0.5.
pub static FIRST_STAGE_RATIO: Number = Number {
    key: "criticalkv_first_stage_ratio",
    label: "CriticalKV first-stage ratio",
    help: "Share of the budget kept by the base scores alone; the rest by the value-rescaled scores (kvpress's CriticalKVPress first_stage_ratio, default 0.5)",
    default: 0.5,
    min: 0.0,
    max: 1.0,
    step: 0.05,
    invalid: "CriticalKV's first-stage ratio must lie in [0, 1] (default 0.5)",
};

/// The base scores over the whole prompt on kvpress's scale: `scored` (`[layers, heads, m]`,
/// sums over `rows(layer)` query rows of positions `0..m`) divided by the rows, and the `n − m`
/// positions after them (what the base policy always keeps) at their layer's highest score
/// plus one.
pub(crate) fn full_scores(
    n: usize,
    scored: &ScoreGrid,
    rows: impl Fn(usize) -> usize,
) -> ScoreGrid {
    let (layers, heads, m) = scored.dim();
    let mut full = ScoreGrid::zeros((layers, heads, n));
    for (l, mut layer) in full.axis_iter_mut(Axis(0)).enumerate() {
        let divisor = rows(l).max(1) as f32;
        let source = scored.index_axis(Axis(0), l);
        let highest = source
            .iter()
            .map(|&s| s / divisor)
            .fold(f32::NEG_INFINITY, f32::max);
        let kept_score = if highest.is_finite() {
            highest + 1.0
        } else {
            1.0
        };
        for h in 0..heads {
            for j in 0..n {
                layer[[h, j]] = if j < m {
                    source[[h, j]] / divisor
                } else {
                    kept_score
                };
            }
        }
    }
    full
}

/// The output-projected value norms per head of the settings' granularity: as captured per
/// query head, or their mean over each GQA group.
fn head_norms(ctx: &OrderContext, needed_by: &str) -> Result<ScoreGrid, PolicyError> {
    let norms = ctx.inputs().projected_value_norms(needed_by)?;
    match ctx.settings().granularity {
        Granularity::QueryHead => Ok(norms.to_owned()),
        Granularity::KvHead(_) => {
            let (layers, query_heads, n) = norms.dim();
            let kv_heads = ctx.inputs().kv_heads().max(1);
            let group = query_heads / kv_heads;
            Ok(ScoreGrid::from_shape_fn(
                (layers, kv_heads, n),
                |(l, g, j)| {
                    (0..group)
                        .map(|q| norms[[l, g * group + q, j]])
                        .sum::<f32>()
                        / group as f32
                },
            ))
        }
    }
}

/// CriticalKV's two-stage order over the base scores `base` (`[layers, heads, n]`, kvpress's
/// scale, from [`full_scores`]).
pub(crate) fn two_stage_order(
    ctx: &OrderContext,
    base: ScoreGrid,
    needed_by: &str,
) -> Result<Order, PolicyError> {
    let settings = ctx.settings();
    let epsilon = settings.get(&EPSILON) as f32;
    let norms = head_norms(ctx, needed_by)?;
    if norms.dim() != base.dim() {
        return Err(PolicyError::Shape {
            what: format!("{needed_by}'s value norms per head"),
            expected: base.shape().to_vec(),
            found: norms.shape().to_vec(),
        });
    }
    let mut rescaled = base.clone();
    Zip::from(&mut rescaled)
        .and(&norms)
        .for_each(|s, &norm| *s = (*s + epsilon) * norm);
    let n = ctx.prompt_len();
    let first = Order::scored(n, Protected::Nothing, 0, base)?;
    let second = Order::scored(n, Protected::Nothing, 0, rescaled)?;
    Order::two_stage(&first, &second, settings.get(&FIRST_STAGE_RATIO))
}

//! LagKV (kvpress 0.5.5's `LagKVPress`, after arXiv 2504.04704): each partition of the prompt
//! is scored against the next one, from keys and values alone.
//!
//! Per layer and KV head, after the first `n_sink` tokens the prompt is cut into partitions of
//! `lag_size` tokens. A token of partition `p` is scored against partition `p + 1` (its "lag"
//! reference): every dimension of its key is min-max normalised by that reference's per-dimension
//! minimum and maximum, the sample standard deviation over the dimensions is taken, and a softmax
//! over the partition's tokens turns these into shares; the same for the values, and the two are
//! averaged. Unless `lagkv_cross_scoring` is on, each token then scores its rank within its
//! partition divided by `lag_size` (kvpress's `argsort().argsort() / lag_size`). The sinks, the
//! last whole partition and the remainder after it have no reference and score 1, above every
//! ranked token. A prompt shorter than `n_sink + 2·lag_size` scores its sinks 1 and every later
//! token `i / (n − n_sink)` by its offset `i` after the sinks (so the most recent are kept).
//! The top `B` by score are kept; nothing else is protected.
//!
//! The scores are per KV head; per query head every head of a group keeps its KV head's set.

use ndarray::{Array3, ArrayView2, Axis, s};

use crate::attention::ScoreGrid;
use crate::policy::params::{Count, Param, Switch};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};

/// kvpress's `n_sink`: the first tokens always scored highest. Default 4.
pub static SINKS: Count = Count {
    key: "lagkv_sinks",
    label: "LagKV sink tokens",
    help: "The first this many prompt tokens score highest, as attention sinks (kvpress's LagKVPress n_sink, default 4)",
    default: 4,
};

/// kvpress's `lag_size`: the tokens of one partition. Default 128.
pub static LAG_SIZE: Count = Count {
    key: "lagkv_lag_size",
    label: "LagKV lag size",
    help: "Tokens per partition; each partition is scored against the next one (kvpress's LagKVPress lag_size, default 128; at least 1)",
    default: 128,
};

/// kvpress's `cross_scoring`: the softmax shares themselves instead of their ranks within each
/// partition. Default off.
pub static CROSS_SCORING: Switch = Switch {
    key: "lagkv_cross_scoring",
    label: "LagKV cross scoring",
    help: "Score by the partition's softmax shares rather than by ranks within the partition (kvpress's LagKVPress cross_scoring, default off)",
    default: false,
};

static PARAMS: [Param; 3] = [
    Param::Count(&SINKS),
    Param::Count(&LAG_SIZE),
    Param::Switch(&CROSS_SCORING),
];

/// The tokens whose keys and values stand out most against the next partition's range.
pub struct LagKv;

impl Policy for LagKv {
    fn id(&self) -> &'static str {
        "lagkv"
    }

    fn label(&self) -> &'static str {
        "LagKV"
    }

    fn summary(&self) -> &'static str {
        "The sinks, the last partition, and the tokens whose keys and values vary most against the next partition's range (kvpress's LagKVPress)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Keys, Input::Values]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        Order::scored(ctx.prompt_len(), Protected::Nothing, 0, scores(ctx)?)
    }
}

/// LagKV's score of every prompt token, `[layers, heads, n_prompt]` at the settings'
/// granularity.
pub(crate) fn scores(ctx: &OrderContext) -> Result<ScoreGrid, PolicyError> {
    let settings = ctx.settings();
    let lag = usize::try_from(settings.get(&LAG_SIZE)).unwrap_or(usize::MAX);
    if lag == 0 {
        return Err(PolicyError::Settings(format!(
            "{} must be at least 1 (kvpress's default is 128)",
            LAG_SIZE.key
        )));
    }
    let sinks = usize::try_from(settings.get(&SINKS)).unwrap_or(usize::MAX);
    let cross = settings.get(&CROSS_SCORING);
    let keys = ctx.inputs().keys(LagKv.label())?;
    let values = ctx.inputs().values(LagKv.label())?;
    let (layers, kv_heads, n, _) = keys.dim();
    let mut scores = Array3::<f32>::zeros((layers, kv_heads, n));
    for l in 0..layers {
        for g in 0..kv_heads {
            let head_scores = head_scores(
                keys.slice(s![l, g, .., ..]),
                values.slice(s![l, g, .., ..]),
                Lag { sinks, lag, cross },
            );
            scores
                .slice_mut(s![l, g, ..])
                .assign(&ndarray::ArrayView1::from(&head_scores));
        }
    }
    Ok(ctx.inputs().kv_head_scores_at(scores, settings))
}

/// LagKV's settings.
#[derive(Clone, Copy)]
struct Lag {
    sinks: usize,
    lag: usize,
    cross: bool,
}

/// The scores of one head's `n` tokens from its keys and values `[n, head_dim]`.
fn head_scores(keys: ArrayView2<f32>, values: ArrayView2<f32>, lag: Lag) -> Vec<f32> {
    let n = keys.nrows();
    let Lag { sinks, lag, cross } = lag;
    let mut scores = vec![1f32; n];
    if n < sinks.saturating_add(lag.saturating_mul(2)) {
        let after = n.saturating_sub(sinks);
        for (i, score) in scores.iter_mut().skip(sinks).enumerate() {
            *score = i as f32 / after as f32;
        }
        return scores;
    }
    let partitions = (n - sinks) / lag;
    for p in 0..partitions - 1 {
        let start = sinks + p * lag;
        let key_shares = partition_shares(keys, start, lag);
        let value_shares = partition_shares(values, start, lag);
        let shares: Vec<f64> = key_shares
            .iter()
            .zip(&value_shares)
            .map(|(k, v)| (k + v) / 2.0)
            .collect();
        let partition = &mut scores[start..start + lag];
        if cross {
            for (score, share) in partition.iter_mut().zip(&shares) {
                *score = *share as f32;
            }
        } else {
            let mut by_share: Vec<usize> = (0..lag).collect();
            by_share.sort_by(|&a, &b| shares[a].total_cmp(&shares[b]));
            for (rank, &t) in by_share.iter().enumerate() {
                partition[t] = rank as f32 / lag as f32;
            }
        }
    }
    scores
}

/// The softmax over partition `[start, start + lag)` of each token's standard deviation (over
/// dimensions, sample form) after min-max normalisation by the next partition's per-dimension
/// range.
fn partition_shares(states: ArrayView2<f32>, start: usize, lag: usize) -> Vec<f64> {
    let reference = states.slice(s![start + lag..start + 2 * lag, ..]);
    let low: Vec<f64> = reference
        .map_axis(Axis(0), |c| c.iter().fold(f32::INFINITY, |a, &v| a.min(v)))
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let high: Vec<f64> = reference
        .map_axis(Axis(0), |c| {
            c.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v))
        })
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let spreads: Vec<f64> = states
        .slice(s![start..start + lag, ..])
        .outer_iter()
        .map(|state| {
            let scaled: Vec<f64> = state
                .iter()
                .zip(low.iter().zip(&high))
                .map(|(&v, (lo, hi))| (f64::from(v) - lo) / (hi - lo))
                .collect();
            sample_deviation(&scaled)
        })
        .collect();
    let top = spreads.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = spreads.iter().map(|s| (s - top).exp()).collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// The standard deviation with Bessel's correction (torch's `std` default).
fn sample_deviation(xs: &[f64]) -> f64 {
    let m = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / m;
    (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (m - 1.0)).sqrt()
}

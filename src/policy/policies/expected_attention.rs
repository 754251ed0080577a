//! ExpectedAttention (kvpress 0.5.5's `ExpectedAttentionPress`): the attention future queries
//! are expected to pay each key, from the statistics of the prompt's queries.
//!
//! As kvpress computes it, per layer and query head `h`:
//! 1. the mean `μ` and covariance `Σ` (divided by the row count) of the **pre-RoPE** queries of
//!    every prompt position from `n_sink` on (the first `n_sink` rows hold outliers);
//! 2. the rotary matrix `R_p` of each future position `p ∈ [n, n + n_future_positions)`, averaged
//!    into `R̄` (cos and sin averaged per frequency, rotate-half layout), and `μ' = R̄μ`,
//!    `Σ' = R̄ΣR̄ᵀ`;
//! 3. for each post-RoPE key `k` after the sinks, `z = μ'·k/√d + ½·kᵀΣ'k/d` (the covariance term
//!    only with `use_covariance`), softmaxed over those keys;
//! 4. averaged over the query heads of a KV group (kvpress scores per KV head; the settings'
//!    granularity does that here: `kv-head-mean` is kvpress's), then `(score + ε)·‖v‖` with
//!    `use_vnorm`;
//! 5. the first `n_sink` positions are always kept (kvpress pads them with the maximum score
//!    plus one) and the top `B − n_sink` of the rest are added.
//!
//! Parameters and their kvpress defaults: `n_future_positions` 512, `n_sink` 4,
//! `use_covariance` on, `use_vnorm` on, `epsilon` 0.

use ndarray::{Array1, Array2, Array3, ArrayView2, Axis, s};
use rayon::prelude::*;

use crate::attention::{Pooling, ScoreGrid};
use crate::policy::params::{Count, Number, Param, Switch};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};
use crate::session::{FIRST_QUERY_ROWS, QueryStatistics};

/// Future positions whose rotations are averaged. kvpress's `n_future_positions`, default 512.
pub static FUTURE_POSITIONS: Count = Count {
    key: "ea_future_positions",
    label: "ExpectedAttention future positions",
    help: "Future positions after the prompt whose averaged RoPE rotation turns the query statistics (kvpress's n_future_positions, default 512)",
    default: 512,
};

/// First positions always kept and left out of the query statistics. kvpress's `n_sink`,
/// default 4; at most [`FIRST_QUERY_ROWS`].
pub static SINKS: Count = Count {
    key: "ea_sinks",
    label: "ExpectedAttention sinks",
    help: "First tokens always kept and left out of the query statistics (kvpress's n_sink, default 4; at most 32)",
    default: 4,
};

/// Whether the covariance term `½·kᵀΣ'k/d` is added. kvpress's `use_covariance`, default on.
pub static COVARIANCE: Switch = Switch {
    key: "ea_covariance",
    label: "ExpectedAttention covariance",
    help: "Add the query covariance term ½·kᵀΣk/d to the expected logit (kvpress's use_covariance, default on)",
    default: true,
};

/// Whether scores are multiplied by the value norms. kvpress's `use_vnorm`, default on.
pub static VALUE_NORMS: Switch = Switch {
    key: "ea_value_norms",
    label: "ExpectedAttention value norms",
    help: "Multiply each expected attention by its value's L2 norm (kvpress's use_vnorm, default on)",
    default: true,
};

/// Added to the expected attention before the value-norm rescaling. kvpress's `epsilon`,
/// default 0.
pub static EPSILON: Number = Number {
    key: "ea_epsilon",
    label: "ExpectedAttention ε",
    help: "Added to the expected attention before it is multiplied by the value norm (kvpress's epsilon, default 0)",
    default: 0.0,
    min: 0.0,
    max: 1.0,
    step: 0.0001,
    invalid: "ExpectedAttention's epsilon must lie in [0, 1] (default 0)",
};

/// ExpectedAttention's parameters (also listed by the policies that order as it does).
pub(crate) static PARAMS: [Param; 5] = [
    Param::Count(&FUTURE_POSITIONS),
    Param::Count(&SINKS),
    Param::Switch(&COVARIANCE),
    Param::Switch(&VALUE_NORMS),
    Param::Number(&EPSILON),
];

/// The sinks plus the keys future queries are expected to attend to most.
pub struct ExpectedAttention;

impl Policy for ExpectedAttention {
    fn id(&self) -> &'static str {
        "expected-attention"
    }

    fn label(&self) -> &'static str {
        "ExpectedAttention"
    }

    fn summary(&self) -> &'static str {
        "The sinks plus the keys future queries are expected to attend to most, from the prompt's query statistics (kvpress's ExpectedAttentionPress)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, settings: &PolicySettings) -> Vec<Input> {
        let mut needs = vec![Input::Keys, Input::QueryStatistics];
        if settings.get(&VALUE_NORMS) {
            needs.push(Input::ValueNorms);
        }
        needs
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let (sinks, scores) = scores(ctx)?;
        Order::scored(ctx.prompt_len(), Protected::Sinks(sinks), sinks, scores)
    }
}

/// The sinks `s` (at most the prompt) and the scores of positions `[s, n)`,
/// `[layers, heads, n − s]` at the settings' granularity (steps 1–4 of the module's
/// description).
pub(crate) fn scores(ctx: &OrderContext) -> Result<(usize, ScoreGrid), PolicyError> {
    let label = ExpectedAttention.label();
    let settings = ctx.settings();
    let n = ctx.prompt_len();
    let sinks = settings.get(&SINKS) as usize;
    if sinks > FIRST_QUERY_ROWS {
        return Err(PolicyError::Settings(format!(
            "ExpectedAttention's ea_sinks must be at most {FIRST_QUERY_ROWS} (the query rows the statistics keep one by one; kvpress's default 4), got {sinks}"
        )));
    }
    let future = settings.get(&FUTURE_POSITIONS) as usize;
    if future == 0 {
        return Err(PolicyError::Settings(
            "ExpectedAttention's ea_future_positions must be at least 1 (kvpress's default 512)"
                .to_owned(),
        ));
    }
    if sinks >= n {
        return Ok((n, Array3::zeros((ctx.layers(), ctx.heads(), 0))));
    }
    let inputs = ctx.inputs();
    let keys = inputs.keys(label)?;
    let stats = inputs.query_statistics(label)?;
    let mut scores =
        expected_attention(keys.view(), stats, sinks, future, settings.get(&COVARIANCE))?;
    if settings.get(&VALUE_NORMS) {
        let norms = inputs.value_norms(label)?;
        let epsilon = settings.get(&EPSILON) as f32;
        let group = inputs.query_heads() / inputs.kv_heads();
        for ((l, h, j), score) in scores.indexed_iter_mut() {
            *score = (*score + epsilon) * norms[[l, h / group, sinks + j]];
        }
    }
    let m = n - sinks;
    let ranked = inputs.ranked_scores(scores.view(), m, Pooling::None, settings)?;
    Ok((sinks, ranked))
}

/// The softmaxed expected attention of every key after the first `sinks`, per query head:
/// `[layers, query_heads, n − sinks]` (steps 1–3 of the module's description).
fn expected_attention(
    keys: ndarray::ArrayView4<f32>,
    stats: &QueryStatistics,
    sinks: usize,
    future: usize,
    covariance: bool,
) -> Result<Array3<f32>, PolicyError> {
    let (layers, kv_heads, n, d) = keys.dim();
    let (_, query_heads, stats_d) = stats.dim();
    if stats_d != d || d % 2 != 0 {
        return Err(PolicyError::Shape {
            what: "query statistics' head dimension".to_owned(),
            expected: vec![d],
            found: vec![stats_d],
        });
    }
    let group = query_heads / kv_heads.max(1);
    let rotation = AveragedRotation::new(&stats.inverse_frequencies, n, future);
    let m = n - sinks;
    let mut scores = Array3::<f32>::zeros((layers, query_heads, m));
    scores
        .outer_iter_mut()
        .into_par_iter()
        .enumerate()
        .try_for_each(|(l, mut layer)| {
            for (h, mut out) in layer.outer_iter_mut().enumerate() {
                let moments = stats.moments(l, h, sinks).ok_or_else(|| {
                    PolicyError::Settings(format!(
                        "the query statistics cannot leave out {sinks} rows of {n}"
                    ))
                })?;
                let mean = rotation.apply(&Array1::from(moments.mean));
                let head_keys = keys.slice(s![l, h / group, sinks.., ..]);
                let mut logits: Vec<f64> = head_keys
                    .dot(&mean.mapv(|v| v as f32))
                    .iter()
                    .map(|&z| f64::from(z) / (d as f64).sqrt())
                    .collect();
                if covariance {
                    let sigma =
                        Array2::from_shape_fn((d, d), |(i, j)| moments.covariance[i * d + j]);
                    let turned = rotation.conjugate(sigma.view()).mapv(|v| v as f32);
                    let projected = head_keys.dot(&turned);
                    for (logit, (key, row)) in logits
                        .iter_mut()
                        .zip(head_keys.outer_iter().zip(projected.outer_iter()))
                    {
                        let quadratic: f32 = key.iter().zip(row).map(|(a, b)| a * b).sum();
                        *logit += f64::from(quadratic) / d as f64 / 2.0;
                    }
                }
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = logits.iter().map(|z| (z - max).exp()).sum();
                for (slot, z) in out.iter_mut().zip(&logits) {
                    *slot = ((z - max).exp() / total) as f32;
                }
            }
            Ok::<(), PolicyError>(())
        })?;
    Ok(scores)
}

/// `R̄`: the rotary matrices of positions `[start, start + count)` averaged, kept as the
/// averaged cosine and sine of each frequency (dimension `i` paired with `i + d/2`).
struct AveragedRotation {
    cos: Vec<f64>,
    sin: Vec<f64>,
}

impl AveragedRotation {
    fn new(inverse_frequencies: &[f64], start: usize, count: usize) -> Self {
        let average = |f: &dyn Fn(f64) -> f64, freq: f64| {
            (start..start + count)
                .map(|p| f(p as f64 * freq))
                .sum::<f64>()
                / count as f64
        };
        Self {
            cos: inverse_frequencies
                .iter()
                .map(|&f| average(&f64::cos, f))
                .collect(),
            sin: inverse_frequencies
                .iter()
                .map(|&f| average(&f64::sin, f))
                .collect(),
        }
    }

    /// `R̄x`.
    fn apply(&self, x: &Array1<f64>) -> Array1<f64> {
        let half = self.cos.len();
        let mut out = Array1::zeros(2 * half);
        for i in 0..half {
            let (a, b) = (x[i], x[i + half]);
            out[i] = self.cos[i] * a - self.sin[i] * b;
            out[i + half] = self.sin[i] * a + self.cos[i] * b;
        }
        out
    }

    /// `R̄ M R̄ᵀ`: `R̄` applied to every column, then to every row.
    fn conjugate(&self, m: ArrayView2<f64>) -> Array2<f64> {
        let mut left = Array2::zeros(m.dim());
        for (j, column) in m.axis_iter(Axis(1)).enumerate() {
            left.column_mut(j).assign(&self.apply(&column.to_owned()));
        }
        let mut both = Array2::zeros(m.dim());
        for (i, row) in left.outer_iter().enumerate() {
            both.row_mut(i).assign(&self.apply(&row.to_owned()));
        }
        both
    }
}

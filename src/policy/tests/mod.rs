//! Tests of the policy room: hand-made score arrays with known answers, a naive SnapKV, the
//! trait's selections (plain and banked) against the per-policy reference, spreads, metrics, the
//! registry and its serialised forms.

mod bank;
mod chunks;
mod criticalkv;
mod kvpress;
mod kvzip;
mod lagkv;
mod lookahead;
mod metrics;
mod naive_snapkv;
mod policies;
mod reference;
mod registry;
mod spreads;

use ndarray::{Array3, Array4, Axis};

use super::{Budget, PolicyError, PolicyId, PolicySettings, ScoreInputs, Selection, select};
use crate::session::{PrefillInputs, QueryStatistics};

/// [`select`] with the budget given as a number (0 gives the error a budget of 0 gives).
pub(super) fn choose(
    policy: PolicyId,
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<Selection, PolicyError> {
    select(
        policy,
        inputs,
        Budget::new(budget, inputs.prompt_len())?,
        settings,
    )
}

/// Owned arrays behind a [`ScoreInputs`].
pub(super) struct Fixture {
    pub window: Array4<f32>,
    pub soft: Option<Array4<f32>>,
    pub decoded: Array4<f32>,
    /// Lookahead draft rows (none unless made by [`Fixture::random`] or set).
    pub lookahead: Option<Array4<f32>>,
    pub accumulated: Array3<f32>,
    pub kv_heads: usize,
    /// Keys, value norms and query statistics (none unless made by [`Fixture::random`] or set).
    pub prefill: PrefillInputs,
}

impl Fixture {
    /// Every source has one query row equal to the given scores, so a source's summed score is
    /// exactly that grid.
    pub fn from_scores(
        window: Array3<f32>,
        soft: Option<Array3<f32>>,
        decoded: Array3<f32>,
        accumulated: Array3<f32>,
        kv_heads: usize,
    ) -> Self {
        Self {
            window: window.insert_axis(Axis(2)),
            soft: soft.map(|s| s.insert_axis(Axis(2))),
            decoded: decoded.insert_axis(Axis(2)),
            lookahead: None,
            accumulated,
            kv_heads,
            prefill: PrefillInputs::default(),
        }
    }

    /// The same scores for every source.
    pub fn uniform(scores: Array3<f32>, kv_heads: usize) -> Self {
        Self::from_scores(
            scores.clone(),
            Some(scores.clone()),
            scores.clone(),
            scores,
            kv_heads,
        )
    }

    /// Random rows: `rows` query rows per source. With `levels > 0` values are quantised to
    /// that many levels, which makes many ties.
    pub fn random(
        seed: u64,
        shape: (usize, usize, usize, usize),
        rows: usize,
        levels: u32,
    ) -> Self {
        let (layers, query_heads, kv_heads, n) = shape;
        let mut rng = Rng(seed);
        let mut draw = |dim: (usize, usize, usize, usize)| {
            Array4::from_shape_fn(dim, |_| {
                let u = rng.unit();
                if levels > 0 {
                    (u * levels as f32).floor() / levels as f32
                } else {
                    u
                }
            })
        };
        let window = draw((layers, query_heads, rows, n));
        let soft = draw((layers, query_heads, rows, n));
        let decoded = draw((layers, query_heads, rows, n));
        let accumulated = draw((layers, query_heads, 1, n)).remove_axis(Axis(2));
        let lookahead = draw((layers, query_heads, rows, n));
        Self {
            window,
            soft: Some(soft),
            decoded,
            lookahead: Some(lookahead),
            accumulated,
            kv_heads,
            prefill: random_prefill(rng.next(), shape, 4, levels),
        }
    }

    pub fn inputs(&self) -> ScoreInputs<'_> {
        ScoreInputs::new(
            self.window.view(),
            self.soft.as_ref().map(|s| s.view()),
            self.decoded.view(),
            self.accumulated.view(),
            self.kv_heads,
            100,
        )
        .with_prefill_inputs(&self.prefill)
        .with_lookahead(self.lookahead.as_ref().map(|rows| rows.view()))
    }
}

/// Keys, values, value norms and query statistics drawn at random for `(layers, query_heads, kv_heads,
/// n)` with head dimension `d` (even); with `levels > 0` keys and value norms are quantised to
/// that many levels per unit, which makes ties. The statistics are those of random query rows.
pub(super) fn random_prefill(
    seed: u64,
    (layers, query_heads, kv_heads, n): (usize, usize, usize, usize),
    d: usize,
    levels: u32,
) -> PrefillInputs {
    let mut rng = Rng(seed);
    let mut value = |scale: f32| {
        let u = (rng.unit() - 0.5) * 2.0 * scale;
        if levels > 0 {
            (u * levels as f32).round() / levels as f32
        } else {
            u
        }
    };
    let keys = Array4::from_shape_fn((layers, kv_heads, n, d), |_| value(2.0));
    let values = Array4::from_shape_fn((layers, kv_heads, n, d), |_| value(1.0));
    let value_norms = Array3::from_shape_fn((layers, kv_heads, n), |_| value(1.0).abs() + 0.25);
    let projected_value_norms =
        Array3::from_shape_fn((layers, query_heads, n), |_| value(3.0).abs() + 0.5);
    let queries = Array4::from_shape_fn((layers, query_heads, n, d), |_| value(1.5) + 0.5);
    let repeat_scores = Array3::from_shape_fn((layers, kv_heads, n), |_| value(1.0).abs());
    PrefillInputs {
        keys: Some(keys),
        values: Some(values),
        value_norms: Some(value_norms),
        projected_value_norms: Some(projected_value_norms),
        query_statistics: Some(statistics_of(&queries, d)),
        repeat_scores: Some(repeat_scores),
    }
}

/// Query rows `[layers, heads, n, d]` reduced as the prefill reduces them, with the rotary
/// frequencies of θ = 10,000.
pub(super) fn statistics_of(queries: &Array4<f32>, d: usize) -> QueryStatistics {
    let frequencies = (0..d / 2)
        .map(|i| 10_000f64.powf(-(2.0 * i as f64) / d as f64))
        .collect();
    QueryStatistics::from_rows(queries.view(), frequencies)
}

/// The project's SplitMix64 ([`crate::rng`]) over a bare state, for reproducible random tests.
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        crate::rng::step(&mut self.0)
    }

    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Kept positions of row `[layer, head]` of a mask.
pub(super) fn kept(mask: &ndarray::Array3<bool>, layer: usize, head: usize) -> Vec<usize> {
    (0..mask.dim().2)
        .filter(|&j| mask[[layer, head, j]])
        .collect()
}

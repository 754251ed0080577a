//! What policies score with: the rows of the query sources, H2O's accumulated attention, and
//! the inputs beyond attention rows an inspection captures on request (keys, values, value
//! norms, query statistics, KVzip's repeat scores), borrowed from a [`Session`] (or from plain
//! arrays).

use std::sync::OnceLock;

use ndarray::{Array3, ArrayView3, ArrayView4, Axis, s};

use super::{Input, PolicyError, PolicySettings};
use crate::attention::{
    Granularity, Pooling, QuerySource, RowReduce, ScoreGrid, head_scores, source_scores,
};
use crate::session::{PrefillInputs, QueryStatistics, Session};

/// Borrowed score sources of one session. Source sums are computed on first use and cached,
/// so repeated selections over one `ScoreInputs` cost only the ranking.
#[derive(Debug)]
pub struct ScoreInputs<'a> {
    window: ArrayView4<'a, f32>,
    soft: Option<ArrayView4<'a, f32>>,
    decoded: ArrayView4<'a, f32>,
    lookahead: Option<ArrayView4<'a, f32>>,
    repeat: Option<ArrayView4<'a, f32>>,
    accumulated: ArrayView3<'a, f32>,
    kv_heads: usize,
    kv_entry_bytes: usize,
    prefill: Option<&'a PrefillInputs>,
    sums: [OnceLock<ScoreGrid>; QuerySource::COUNT],
}

impl<'a> ScoreInputs<'a> {
    /// The score sources of `session`.
    pub fn from_session(session: &'a Session) -> ScoreInputs<'a> {
        ScoreInputs::new(
            session.window.view(),
            session.soft.as_ref().map(|rows| rows.view()),
            session.decoded.view(),
            session.accumulated.view(),
            session.model.kv_heads,
            session.model.kv_entry_bytes,
        )
        .with_prefill_inputs(&session.prefill_inputs)
        .with_lookahead(session.lookahead.as_ref().map(|rows| rows.view()))
        .with_repeat(session.repeat.as_ref().map(|rows| rows.view()))
    }

    /// Score sources from plain arrays: rows `[layers, query_heads, n_queries, n_prompt]`,
    /// `accumulated` `[layers, query_heads, n_prompt]`. Shapes are checked when a policy runs.
    pub fn new(
        window: ArrayView4<'a, f32>,
        soft: Option<ArrayView4<'a, f32>>,
        decoded: ArrayView4<'a, f32>,
        accumulated: ArrayView3<'a, f32>,
        kv_heads: usize,
        kv_entry_bytes: usize,
    ) -> ScoreInputs<'a> {
        ScoreInputs {
            window,
            soft,
            decoded,
            lookahead: None,
            repeat: None,
            accumulated,
            kv_heads,
            kv_entry_bytes,
            prefill: None,
            sums: Default::default(),
        }
    }

    /// The same sources with the keys, values, value norms and query statistics of `prefill` (those it
    /// has). Shapes are checked when a policy asks for them.
    pub fn with_prefill_inputs(self, prefill: &'a PrefillInputs) -> ScoreInputs<'a> {
        ScoreInputs {
            prefill: Some(prefill),
            ..self
        }
    }

    /// The same sources with Lookahead Q-Cache's draft rows `[layers, query_heads, ℓ,
    /// n_prompt]`, when captured. Shapes are checked when a policy runs.
    pub fn with_lookahead(self, lookahead: Option<ArrayView4<'a, f32>>) -> ScoreInputs<'a> {
        ScoreInputs { lookahead, ..self }
    }

    /// The same sources with the sample of KVzip's repeat rows `[layers, query_heads, r,
    /// n_prompt]` (the panel's; KVzip itself scores with [`Input::Repeat`]), when captured.
    pub fn with_repeat(self, repeat: Option<ArrayView4<'a, f32>>) -> ScoreInputs<'a> {
        ScoreInputs { repeat, ..self }
    }

    /// Transformer layers.
    pub fn layers(&self) -> usize {
        self.window.dim().0
    }

    /// Query heads per layer.
    pub fn query_heads(&self) -> usize {
        self.window.dim().1
    }

    /// KV heads per layer.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Prompt tokens (the key axis).
    pub fn prompt_len(&self) -> usize {
        self.window.dim().3
    }

    /// Bytes of one KV entry of one head in one layer.
    pub fn kv_entry_bytes(&self) -> usize {
        self.kv_entry_bytes
    }

    /// Whether soft-token rows are present.
    pub fn has_soft(&self) -> bool {
        self.soft.is_some()
    }

    /// Whether the session has `input` at all (it may still have no rows of it).
    pub fn has(&self, input: Input) -> bool {
        let prefill = self.prefill;
        match input {
            Input::Soft => self.soft.is_some(),
            Input::Lookahead => self.lookahead.is_some(),
            Input::Window | Input::Decoded | Input::Accumulated => true,
            Input::Keys => prefill.is_some_and(|p| p.keys.is_some()),
            Input::Values => prefill.is_some_and(|p| p.values.is_some()),
            Input::ValueNorms => prefill.is_some_and(|p| p.value_norms.is_some()),
            Input::ProjectedValueNorms => {
                prefill.is_some_and(|p| p.projected_value_norms.is_some())
            }
            Input::QueryStatistics => prefill.is_some_and(|p| p.query_statistics.is_some()),
            Input::Repeat => prefill.is_some_and(|p| p.repeat_scores.is_some()),
        }
    }

    /// Errors when `input` is absent, has no rows or holds non-finite values; `needed_by` names
    /// what needs it in the message.
    pub(crate) fn require(&self, input: Input, needed_by: &str) -> Result<(), PolicyError> {
        match input {
            Input::Window => self.source_sums(QuerySource::Window, needed_by).map(|_| ()),
            Input::Soft => self.source_sums(QuerySource::Soft, needed_by).map(|_| ()),
            Input::Decoded => self
                .source_sums(QuerySource::Decoded, needed_by)
                .map(|_| ()),
            Input::Lookahead => self.lookahead(needed_by).map(|_| ()),
            Input::Accumulated => self.accumulated().map(|_| ()),
            Input::Keys => self.keys(needed_by).map(|_| ()),
            Input::Values => self.values(needed_by).map(|_| ()),
            Input::ValueNorms => self.value_norms(needed_by).map(|_| ()),
            Input::ProjectedValueNorms => self.projected_value_norms(needed_by).map(|_| ()),
            Input::QueryStatistics => self.query_statistics(needed_by).map(|_| ()),
            Input::Repeat => self.repeat_scores(needed_by).map(|_| ()),
        }
    }

    /// Checks that every array agrees on layers, query heads and prompt length, that the KV
    /// heads divide the query heads and that the prompt is not empty.
    pub(crate) fn check(&self) -> Result<(), PolicyError> {
        let (layers, heads, _, n) = self.window.dim();
        if n == 0 {
            return Err(PolicyError::EmptyPrompt);
        }
        if self.kv_heads == 0 || !heads.is_multiple_of(self.kv_heads) {
            return Err(PolicyError::Shape {
                what: format!(
                    "{} query heads grouped into {} KV heads",
                    heads, self.kv_heads
                ),
                expected: vec![heads],
                found: vec![self.kv_heads],
            });
        }
        let mut rows = vec![("decoded rows", self.decoded)];
        if let Some(soft) = self.soft {
            rows.push(("soft rows", soft));
        }
        if let Some(lookahead) = self.lookahead {
            rows.push(("lookahead rows", lookahead));
        }
        if let Some(repeat) = self.repeat {
            rows.push(("repeat rows", repeat));
        }
        for (what, array) in rows {
            let (l, h, q, k) = array.dim();
            if (l, h, k) != (layers, heads, n) {
                return Err(PolicyError::Shape {
                    what: what.to_owned(),
                    expected: vec![layers, heads, q, n],
                    found: vec![l, h, q, k],
                });
            }
        }
        if self.accumulated.dim() != (layers, heads, n) {
            return Err(PolicyError::Shape {
                what: "accumulated attention".to_owned(),
                expected: vec![layers, heads, n],
                found: self.accumulated.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// The summed attention of `source` per query head, `[layers, query_heads, n_prompt]`,
    /// computed once. Errors when the source is absent, has no rows, or holds non-finite values.
    pub(crate) fn source_sums(
        &self,
        source: QuerySource,
        needed_by: &str,
    ) -> Result<&ScoreGrid, PolicyError> {
        let (rows, slot) = match source {
            QuerySource::Window => (Some(self.window), &self.sums[0]),
            QuerySource::Soft => (self.soft, &self.sums[1]),
            QuerySource::Decoded => (Some(self.decoded), &self.sums[2]),
            QuerySource::Lookahead => (self.lookahead, &self.sums[3]),
            QuerySource::Repeat => (self.repeat, &self.sums[4]),
        };
        let rows = match (rows, source) {
            (Some(rows), _) => rows,
            (None, QuerySource::Lookahead) => return Err(missing(Input::Lookahead, needed_by)),
            (None, QuerySource::Repeat) => return Err(missing(Input::Repeat, needed_by)),
            (None, _) => return Err(PolicyError::NoSoftRows),
        };
        if rows.dim().2 == 0 {
            return Err(PolicyError::EmptySource {
                which: source.file_stem(),
                needed_by: needed_by.to_owned(),
            });
        }
        let sums = slot.get_or_init(|| source_scores(rows, RowReduce::Sum));
        if sums.iter().all(|v| v.is_finite()) {
            Ok(sums)
        } else {
            Err(PolicyError::NonFinite(source.file_stem()))
        }
    }

    /// Lookahead Q-Cache's draft rows `[layers, query_heads, ℓ, n_prompt]` (ℓ may be 0 when the
    /// drafting stopped at once), checked finite.
    pub(crate) fn lookahead(&self, needed_by: &str) -> Result<ArrayView4<'a, f32>, PolicyError> {
        let rows = self
            .lookahead
            .ok_or_else(|| missing(Input::Lookahead, needed_by))?;
        finite(rows, "lookahead")
    }

    /// Query rows of `source` (what its sums add up; 0 when absent).
    pub(crate) fn source_rows(&self, source: QuerySource) -> usize {
        match source {
            QuerySource::Window => self.window.dim().2,
            QuerySource::Soft => self.soft.map_or(0, |rows| rows.dim().2),
            QuerySource::Decoded => self.decoded.dim().2,
            QuerySource::Lookahead => self.lookahead.map_or(0, |rows| rows.dim().2),
            QuerySource::Repeat => self.repeat.map_or(0, |rows| rows.dim().2),
        }
    }

    /// H2O's accumulated attention, `[layers, query_heads, n_prompt]`, checked finite.
    pub(crate) fn accumulated(&self) -> Result<ArrayView3<'a, f32>, PolicyError> {
        if self.accumulated.iter().all(|v| v.is_finite()) {
            Ok(self.accumulated)
        } else {
            Err(PolicyError::NonFinite("accumulated"))
        }
    }

    /// The post-RoPE keys `[layers, kv_heads, n_prompt, head_dim]`, checked in shape and finite.
    pub(crate) fn keys(&self, needed_by: &str) -> Result<ArrayView4<'a, f32>, PolicyError> {
        let keys = self.prefill.and_then(|p| p.keys.as_ref());
        self.per_entry_vectors(keys, Input::Keys, needed_by)
    }

    /// The values `[layers, kv_heads, n_prompt, head_dim]`, checked in shape and finite.
    pub(crate) fn values(&self, needed_by: &str) -> Result<ArrayView4<'a, f32>, PolicyError> {
        let values = self.prefill.and_then(|p| p.values.as_ref());
        self.per_entry_vectors(values, Input::Values, needed_by)
    }

    /// `vectors` (keys or values, `[layers, kv_heads, n_prompt, head_dim]`) checked against the
    /// prompt and finite; `input` names them.
    fn per_entry_vectors(
        &self,
        vectors: Option<&'a ndarray::Array4<f32>>,
        input: Input,
        needed_by: &str,
    ) -> Result<ArrayView4<'a, f32>, PolicyError> {
        let vectors = vectors.ok_or_else(|| missing(input, needed_by))?;
        let (layers, kv_heads, n, d) = vectors.dim();
        if (layers, kv_heads, n) != (self.layers(), self.kv_heads, self.prompt_len()) || d == 0 {
            return Err(PolicyError::Shape {
                what: input.describe().to_owned(),
                expected: vec![self.layers(), self.kv_heads, self.prompt_len(), d.max(1)],
                found: vec![layers, kv_heads, n, d],
            });
        }
        finite(vectors.view(), input.describe())
    }

    /// The value norms `[layers, kv_heads, n_prompt]`, checked in shape and finite.
    pub(crate) fn value_norms(&self, needed_by: &str) -> Result<ArrayView3<'a, f32>, PolicyError> {
        let norms = self
            .prefill
            .and_then(|p| p.value_norms.as_ref())
            .ok_or_else(|| missing(Input::ValueNorms, needed_by))?;
        let expected = (self.layers(), self.kv_heads, self.prompt_len());
        if norms.dim() != expected {
            return Err(PolicyError::Shape {
                what: "value norms".to_owned(),
                expected: vec![expected.0, expected.1, expected.2],
                found: norms.shape().to_vec(),
            });
        }
        finite(norms.view(), "value norm")
    }

    /// KVzip's repeat scores `[layers, kv_heads, n_prompt]`, checked in shape and finite.
    pub(crate) fn repeat_scores(
        &self,
        needed_by: &str,
    ) -> Result<ArrayView3<'a, f32>, PolicyError> {
        let scores = self
            .prefill
            .and_then(|p| p.repeat_scores.as_ref())
            .ok_or_else(|| missing(Input::Repeat, needed_by))?;
        let expected = (self.layers(), self.kv_heads, self.prompt_len());
        if scores.dim() != expected {
            return Err(PolicyError::Shape {
                what: "KVzip repeat scores".to_owned(),
                expected: vec![expected.0, expected.1, expected.2],
                found: scores.shape().to_vec(),
            });
        }
        finite(scores.view(), "KVzip repeat score")
    }

    /// The output-projected value norms `[layers, query_heads, n_prompt]`, checked in shape and
    /// finite.
    pub(crate) fn projected_value_norms(
        &self,
        needed_by: &str,
    ) -> Result<ArrayView3<'a, f32>, PolicyError> {
        let norms = self
            .prefill
            .and_then(|p| p.projected_value_norms.as_ref())
            .ok_or_else(|| missing(Input::ProjectedValueNorms, needed_by))?;
        let expected = (self.layers(), self.query_heads(), self.prompt_len());
        if norms.dim() != expected {
            return Err(PolicyError::Shape {
                what: "output-projected value norms".to_owned(),
                expected: vec![expected.0, expected.1, expected.2],
                found: norms.shape().to_vec(),
            });
        }
        finite(norms.view(), "output-projected value norm")
    }

    /// The query statistics, checked against the prompt (its rows, layers and query heads) and
    /// finite.
    pub(crate) fn query_statistics(
        &self,
        needed_by: &str,
    ) -> Result<&'a QueryStatistics, PolicyError> {
        let stats = self
            .prefill
            .and_then(|p| p.query_statistics.as_ref())
            .ok_or_else(|| missing(Input::QueryStatistics, needed_by))?;
        let (layers, heads, d) = stats.dim();
        let fits = (layers, heads, stats.rows())
            == (self.layers(), self.query_heads(), self.prompt_len())
            && stats.inverse_frequencies.len() == d / 2
            && stats.tail_mean.dim() == (layers, heads, d)
            && stats.tail_scatter.dim() == (layers, heads, d, d);
        if !fits {
            return Err(PolicyError::Shape {
                what: "query statistics (layers, query heads, rows)".to_owned(),
                expected: vec![self.layers(), self.query_heads(), self.prompt_len()],
                found: vec![layers, heads, stats.rows()],
            });
        }
        let finite_values = stats.first_rows.iter().all(|v| v.is_finite())
            && stats.tail_mean.iter().all(|v| v.is_finite())
            && stats.tail_scatter.iter().all(|v| v.is_finite())
            && stats.inverse_frequencies.iter().all(|v| v.is_finite());
        if finite_values {
            Ok(stats)
        } else {
            Err(PolicyError::NonFinite("query statistic"))
        }
    }

    /// The last prompt query's attention row `[layers, query_heads, n_prompt]` (the last window
    /// row), checked finite.
    pub(crate) fn last_query_row(
        &self,
        needed_by: &str,
    ) -> Result<ArrayView3<'a, f32>, PolicyError> {
        let rows = self.window.dim().2;
        if rows == 0 {
            return Err(PolicyError::EmptySource {
                which: QuerySource::Window.file_stem(),
                needed_by: needed_by.to_owned(),
            });
        }
        finite(self.window.index_axis_move(Axis(2), rows - 1), "window")
    }

    /// Scores given per KV head, `[layers, kv_heads, m]`, at the settings' granularity: as they
    /// are per KV head, copied to every query head of the group per query head (so the group's
    /// heads keep the same set).
    pub(crate) fn kv_head_scores_at(
        &self,
        scores: ScoreGrid,
        settings: &PolicySettings,
    ) -> ScoreGrid {
        match settings.granularity {
            Granularity::KvHead(_) => scores,
            Granularity::QueryHead => {
                let (layers, kv_heads, m) = scores.dim();
                let group = self.query_heads() / kv_heads.max(1);
                Array3::from_shape_fn((layers, kv_heads * group, m), |(l, h, j)| {
                    scores[[l, h / group.max(1), j]]
                })
            }
        }
    }

    /// The grid a policy ranks with: `raw[.., .., ..end]` pooled and reduced to the settings'
    /// granularity, `[layers, heads, end]`.
    pub(crate) fn ranked_scores(
        &self,
        raw: ArrayView3<f32>,
        end: usize,
        pooling: Pooling,
        settings: &PolicySettings,
    ) -> Result<ScoreGrid, PolicyError> {
        head_scores(
            raw.slice(s![.., .., ..end]),
            pooling,
            settings.granularity,
            settings.group_order,
            self.kv_heads,
        )
        .ok_or_else(|| PolicyError::Shape {
            what: format!(
                "{} query heads grouped into {} KV heads",
                self.query_heads(),
                self.kv_heads
            ),
            expected: vec![self.query_heads()],
            found: vec![self.kv_heads],
        })
    }

    /// Heads that own a keep set under `settings`.
    pub(crate) fn heads(&self, settings: &PolicySettings) -> usize {
        settings
            .granularity
            .heads(self.query_heads(), self.kv_heads)
    }

    /// The window length policies use: the setting, at most the prompt length.
    pub(crate) fn window(&self, settings: &PolicySettings) -> usize {
        settings.window.min(self.prompt_len())
    }
}

/// The error for an input captured only on request that the session lacks.
fn missing(input: Input, needed_by: &str) -> PolicyError {
    PolicyError::MissingInput {
        input: input.describe(),
        needed_by: needed_by.to_owned(),
    }
}

/// `array` when every value is finite, else the error naming `what`.
fn finite<'v, A, D>(
    array: ndarray::ArrayView<'v, A, D>,
    what: &'static str,
) -> Result<ndarray::ArrayView<'v, A, D>, PolicyError>
where
    A: Copy + Into<f64>,
    D: ndarray::Dimension,
{
    if array.iter().all(|&v| v.into().is_finite()) {
        Ok(array)
    } else {
        Err(PolicyError::NonFinite(what))
    }
}

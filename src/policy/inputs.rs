//! What policies score with: the rows of the three query sources and H2O's accumulated
//! attention, borrowed from a [`Session`] (or from plain arrays).

use std::sync::OnceLock;

use ndarray::{ArrayView3, ArrayView4, s};

use super::{Input, PolicyError, PolicySettings};
use crate::attention::{Pooling, QuerySource, RowReduce, ScoreGrid, head_scores, source_scores};
use crate::session::Session;

/// Borrowed score sources of one session. Source sums are computed on first use and cached,
/// so repeated selections over one `ScoreInputs` cost only the ranking.
#[derive(Debug)]
pub struct ScoreInputs<'a> {
    window: ArrayView4<'a, f32>,
    soft: Option<ArrayView4<'a, f32>>,
    decoded: ArrayView4<'a, f32>,
    accumulated: ArrayView3<'a, f32>,
    kv_heads: usize,
    kv_entry_bytes: usize,
    sums: [OnceLock<ScoreGrid>; 3],
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
            accumulated,
            kv_heads,
            kv_entry_bytes,
            sums: Default::default(),
        }
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
        match input {
            Input::Soft => self.soft.is_some(),
            Input::Window | Input::Decoded | Input::Accumulated => true,
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
            Input::Accumulated => self.accumulated().map(|_| ()),
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
        };
        let rows = rows.ok_or(PolicyError::NoSoftRows)?;
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

    /// H2O's accumulated attention, `[layers, query_heads, n_prompt]`, checked finite.
    pub(crate) fn accumulated(&self) -> Result<ArrayView3<'a, f32>, PolicyError> {
        if self.accumulated.iter().all(|v| v.is_finite()) {
            Ok(self.accumulated)
        } else {
            Err(PolicyError::NonFinite("accumulated"))
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

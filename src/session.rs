//! One inspected prompt as plain data: what the model saw and where each query source looked.
//!
//! A [`Session`] is produced by [`crate::inspect`] (CLI and worker alike), drawn by the GUI,
//! scored by [`crate::policy`] and written by [`crate::export`]. It holds no candle tensors.

use serde::{Deserialize, Serialize};

use crate::attention::{AttentionRows, QuerySource, ScoreGrid};

pub mod prefill_inputs;
pub mod synthetic;

pub use prefill_inputs::{
    FIRST_QUERY_ROWS, LookaheadCapture, Moments, PrefillCapture, PrefillInputs, QueryStatistics,
    RepeatCapture,
};
pub use synthetic::{SyntheticError, SyntheticSpec, synthetic, synthetic_prefill_inputs};

/// The model a session was computed with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Human name, e.g. `SmolLM2-135M-Instruct` (GGUF `general.name` or the directory name).
    pub id: String,
    /// Architecture as named by the checkpoint (`llama`, `mistral`, `qwen2`).
    pub architecture: String,
    /// Where the weights were read from.
    pub path: String,
    /// sha256 of the weights file (GGUF) or of the concatenated safetensors files, hex.
    pub weights_sha256: String,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention query heads per layer.
    pub query_heads: usize,
    /// Key/value heads per layer (GQA groups).
    pub kv_heads: usize,
    /// Dimension of one head.
    pub head_dim: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Longest prompt plus answer the model accepts, in tokens.
    pub max_context: usize,
    /// Bytes one KV entry (key and value of one head in one layer) takes in the cache dtype.
    pub kv_entry_bytes: usize,
}

impl ModelInfo {
    /// Query heads that share one KV head.
    pub fn group_size(&self) -> usize {
        self.query_heads / self.kv_heads.max(1)
    }
}

/// What a span of prompt tokens is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// The user's document.
    Document,
    /// The user's question.
    Question,
    /// Chat-template tokens (system prompt, role headers, separators).
    Scaffold,
}

/// A half-open range `[start, end)` of prompt token positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// What the tokens are.
    pub kind: SpanKind,
    /// First position.
    pub start: usize,
    /// One past the last position.
    pub end: usize,
}

/// The rendered prompt, token by token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptLayout {
    /// The chat prompt as text, exactly as tokenised.
    pub text: String,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Each token as the text it decodes to.
    pub tokens: Vec<String>,
    /// Spans covering every position once, in order.
    pub spans: Vec<Span>,
}

impl PromptLayout {
    /// Number of prompt tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether the prompt has no tokens.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// The kind of span that holds position `pos`.
    pub fn kind_at(&self, pos: usize) -> Option<SpanKind> {
        self.spans
            .iter()
            .find(|s| s.start <= pos && pos < s.end)
            .map(|s| s.kind)
    }
}

/// Where the question goes relative to the document, and whether eviction sees it.
///
/// - [`QuestionPlacement::End`]: the user turn is the document, a blank line and the question;
///   the whole prompt is prefilled, scored and evicted (kvpress's and the Judge Q paper's layout).
/// - [`QuestionPlacement::Start`]: the user turn is the question, a blank line and the
///   document, so the question is far from the end (and from the last-window queries).
/// - [`QuestionPlacement::AfterEviction`]: the prompt is rendered as for `End` and cut where the
///   question starts. Only the part before the cut (chat scaffolding, the document, the blank
///   line) is prefilled, scored and evicted: the window, the soft tokens, accumulated
///   attention and every captured input see the document alone, and keep masks cover its keys.
///   The cut-off part (the question, the end of the turn, the assistant's header and any answer
///   prefix) is then fed under the kept cache, is never evicted, and decoding follows. The
///   oracle decodes with the full cache of the whole prompt; its queries' raw attention over
///   the scored keys is what eviction could have kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuestionPlacement {
    /// Document, then question; everything is scored (the default).
    #[default]
    End,
    /// Question, then document; everything is scored.
    Start,
    /// Document scored and evicted alone; the question is appended under the kept cache.
    AfterEviction,
}

impl QuestionPlacement {
    /// Every placement, in menu order.
    pub const ALL: [QuestionPlacement; 3] = [
        QuestionPlacement::End,
        QuestionPlacement::Start,
        QuestionPlacement::AfterEviction,
    ];

    /// The name used on the command line, in files and in tables: `end`, `start`,
    /// `after-eviction`.
    pub fn label(self) -> &'static str {
        match self {
            QuestionPlacement::End => "end",
            QuestionPlacement::Start => "start",
            QuestionPlacement::AfterEviction => "after-eviction",
        }
    }
}

impl std::fmt::Display for QuestionPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl std::str::FromStr for QuestionPlacement {
    type Err = String;

    /// Parses [`QuestionPlacement::label`]'s names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        QuestionPlacement::ALL
            .into_iter()
            .find(|p| p.label() == name)
            .ok_or_else(|| {
                format!("`{s}` is not a question placement: use end, start or after-eviction")
            })
    }
}

/// Settings an inspection ran with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InspectSettings {
    /// Last-window size `w`.
    pub window: usize,
    /// Tokens decoded greedily with the full cache.
    pub decode_tokens: usize,
    /// Soft-token file appended after the prompt, if any.
    pub soft_tokens: Option<String>,
    /// Number of soft tokens (0 when none).
    pub soft_count: usize,
    /// Set when the soft-token file is a checkpoint of a training run that had not finished:
    /// how far it had got ([`SoftTokens::unfinished_training`]).
    ///
    /// [`SoftTokens::unfinished_training`]: crate::judgeq::SoftTokens::unfinished_training
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_tokens_unfinished: Option<String>,
    /// Where the question was placed (`end` in exports written before the setting existed).
    #[serde(default)]
    pub placement: QuestionPlacement,
    /// How the lookahead drafts were made, when they were captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookahead: Option<LookaheadCapture>,
    /// How KVzip's repeat pass ran, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatCapture>,
}

/// The model's greedy answer with the full cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Generated token ids, stop token excluded.
    pub ids: Vec<u32>,
    /// Each generated token as text.
    pub tokens: Vec<String>,
    /// The whole answer as text.
    pub text: String,
}

/// One document and question run through a model, with the attention of every query source.
#[derive(Clone, Debug)]
pub struct Session {
    /// The model.
    pub model: ModelInfo,
    /// The prompt.
    pub prompt: PromptLayout,
    /// Settings of the run.
    pub settings: InspectSettings,
    /// Rows of the last `w` prompt queries.
    pub window: AttentionRows,
    /// Rows of the appended soft tokens, when soft tokens were given.
    pub soft: Option<AttentionRows>,
    /// Rows of the decoded answer tokens (the oracle's queries).
    pub decoded: AttentionRows,
    /// Rows of Lookahead Q-Cache's draft tokens, when a policy asked for them
    /// ([`InspectSettings::lookahead`] says how they were drafted).
    pub lookahead: Option<AttentionRows>,
    /// A bounded sample of KVzip's repeat query rows, when a policy asked for the repeat pass
    /// ([`InspectSettings::repeat`]; `inspect::repeat` says which rows).
    pub repeat: Option<AttentionRows>,
    /// Attention each prompt key received from every prompt query, summed (H2O's score):
    /// `[layers, query_heads, n_prompt]`.
    pub accumulated: ScoreGrid,
    /// The full-cache answer.
    pub answer: Answer,
    /// Keys, value norms and query statistics, when the inspection was asked to capture them.
    pub prefill_inputs: PrefillInputs,
}

impl Session {
    /// Rows of a query source, if the session has them.
    pub fn rows(&self, source: QuerySource) -> Option<&AttentionRows> {
        match source {
            QuerySource::Window => Some(&self.window),
            QuerySource::Soft => self.soft.as_ref(),
            QuerySource::Decoded => Some(&self.decoded),
            QuerySource::Lookahead => self.lookahead.as_ref(),
            QuerySource::Repeat => self.repeat.as_ref(),
        }
    }

    /// Number of prompt tokens (the key axis of every array).
    pub fn prompt_len(&self) -> usize {
        self.prompt.len()
    }
}

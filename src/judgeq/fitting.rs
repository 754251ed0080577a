//! Rendering prompts as chat tokens within a length limit: too-long prompts are truncated in
//! the middle (LongBench's rule: the start and the end carry the instructions and the
//! question) or skipped.

use std::str::FromStr;

use crate::judgeq::data::PromptText;
use crate::judgeq::error::{Result, TrainError};
use crate::model::Model;
use crate::model::prompt::{DOCUMENT_QUESTION_SEPARATOR, build_layout};
use crate::session::{PromptLayout, SpanKind};

/// What happens to a prompt longer than the limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TooLong {
    /// Cut tokens from the middle of the document (or of the message) until it fits.
    #[default]
    Truncate,
    /// Leave the prompt out.
    Skip,
}

impl FromStr for TooLong {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "truncate" => Ok(Self::Truncate),
            "skip" => Ok(Self::Skip),
            other => Err(format!("`{other}`: expected truncate or skip")),
        }
    }
}

impl TooLong {
    /// The name the CLI accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Truncate => "truncate",
            Self::Skip => "skip",
        }
    }
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A prompt rendered under the limit, or why not.
#[derive(Clone, Debug, PartialEq)]
pub enum Fitted {
    /// The prompt fits as it is.
    Whole(PromptLayout),
    /// The prompt was cut in the middle to fit; `original` is its length before.
    Truncated {
        /// The shortened prompt's text.
        text: PromptText,
        /// The shortened prompt.
        layout: PromptLayout,
        /// Tokens the whole prompt had.
        original: usize,
    },
    /// The prompt is too long and was left out.
    Skipped {
        /// Tokens the whole prompt has.
        tokens: usize,
    },
}

impl Fitted {
    /// The rendered prompt, unless it was skipped.
    pub fn layout(&self) -> Option<&PromptLayout> {
        match self {
            Fitted::Whole(layout) | Fitted::Truncated { layout, .. } => Some(layout),
            Fitted::Skipped { .. } => None,
        }
    }
}

/// Renders `text` with the model's chat template, as `judgeq inspect` does (document, blank
/// line, question; or the plain message), without checking the model's context.
pub fn render(model: &Model, text: &PromptText) -> Result<PromptLayout> {
    let layout = match text {
        PromptText::Chat(message) => build_layout(
            &model.tokenizer,
            &model.chat,
            &[(SpanKind::Question, message.trim())],
        )?,
        PromptText::Document { document, question } => build_layout(
            &model.tokenizer,
            &model.chat,
            &[
                (SpanKind::Document, document.trim()),
                (SpanKind::Scaffold, DOCUMENT_QUESTION_SEPARATOR),
                (SpanKind::Question, question.trim()),
            ],
        )?,
    };
    Ok(layout)
}

/// Renders `text` in at most `max_tokens` prompt tokens.
pub fn fit_prompt(
    model: &Model,
    text: &PromptText,
    max_tokens: usize,
    too_long: TooLong,
) -> Result<Fitted> {
    let whole = render(model, text)?;
    let original = whole.len();
    if original <= max_tokens {
        return Ok(Fitted::Whole(whole));
    }
    if too_long == TooLong::Skip {
        return Ok(Fitted::Skipped { tokens: original });
    }
    // Cut the document (or the message) in the middle; a cut can merge or split tokens at
    // the seam, so shorten a little more each time until the prompt fits.
    let (body, rebuild): (&str, Box<dyn Fn(String) -> PromptText>) = match text {
        PromptText::Chat(message) => (message.trim(), Box::new(PromptText::Chat)),
        PromptText::Document { document, question } => (
            document.trim(),
            Box::new(move |document| PromptText::Document {
                document,
                question: question.clone(),
            }),
        ),
    };
    let encoded = model.tokenizer.encode_text(body)?;
    let body_tokens = encoded.ids.len();
    let mut margin = 0;
    for _ in 0..8 {
        let excess = original - max_tokens + margin;
        let Some(keep) = body_tokens.checked_sub(excess).filter(|&k| k >= 2) else {
            break;
        };
        let head = keep / 2;
        let tail = keep - head;
        let head_end = encoded.offsets[head - 1].1;
        let tail_start = encoded.offsets[body_tokens - tail].0.max(head_end);
        let shortened = format!("{}{}", &body[..head_end], &body[tail_start..]);
        let text = rebuild(shortened);
        let layout = render(model, &text)?;
        if layout.len() <= max_tokens {
            return Ok(Fitted::Truncated {
                text,
                layout,
                original,
            });
        }
        margin += layout.len() - max_tokens + 2;
    }
    Err(TrainError::InvalidSetting(format!(
        "a prompt of {original} tokens cannot be cut to {max_tokens}: the chat template and the question alone take too much; raise --max-prompt-tokens"
    )))
}

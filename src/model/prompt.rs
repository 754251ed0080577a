//! Chat prompts with their token layout: which positions hold the document, the question,
//! and the chat template's scaffolding.

use super::chat::ChatTemplate;
use super::error::{ModelError, Result};
use super::load::Model;
use super::tokenizer::TextTokenizer;
use crate::session::{PromptLayout, Span, SpanKind};

/// Placeholder rendered in place of the user message to find where the template puts it.
const MARKER: &str = "\u{F8FF}judgeq-user-message\u{F8FF}";

/// Separates the document from the question in the user turn.
pub const DOCUMENT_QUESTION_SEPARATOR: &str = "\n\n";

impl Model {
    /// The chat prompt for a question about a document: one user turn whose content is the
    /// document, a blank line and the question (each trimmed of surrounding whitespace),
    /// followed by the assistant's header. Refuses an empty document or question, and a
    /// prompt longer than the model's context.
    pub fn prompt(&self, document: &str, question: &str) -> Result<PromptLayout> {
        let (document, question) = (document.trim(), question.trim());
        if document.is_empty() {
            return Err(ModelError::EmptyInput { what: "document" });
        }
        if question.is_empty() {
            return Err(ModelError::EmptyInput { what: "question" });
        }
        let layout = build_layout(
            &self.tokenizer,
            &self.chat,
            &[
                (SpanKind::Document, document),
                (SpanKind::Scaffold, DOCUMENT_QUESTION_SEPARATOR),
                (SpanKind::Question, question),
            ],
        )?;
        self.check_fits(layout.len(), 0)?;
        Ok(layout)
    }

    /// The chat prompt for a plain message (generation, training): the whole message is
    /// the [`SpanKind::Question`].
    pub fn chat_prompt(&self, user_message: &str) -> Result<PromptLayout> {
        let message = user_message.trim();
        if message.is_empty() {
            return Err(ModelError::EmptyInput { what: "question" });
        }
        let layout = build_layout(
            &self.tokenizer,
            &self.chat,
            &[(SpanKind::Question, message)],
        )?;
        self.check_fits(layout.len(), 0)?;
        Ok(layout)
    }

    /// Text of token ids (special tokens included).
    pub fn decode_tokens(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids)
    }

    /// Checks that `prompt_tokens` plus `extra_tokens` (soft tokens, tokens to decode) fit
    /// in the model's context.
    pub fn check_fits(&self, prompt_tokens: usize, extra_tokens: usize) -> Result<()> {
        let max_context = self.info.max_context;
        if prompt_tokens.saturating_add(extra_tokens) > max_context {
            return Err(ModelError::PromptTooLong {
                prompt_tokens,
                extra_tokens,
                max_context,
                model: self.info.id.clone(),
            });
        }
        Ok(())
    }
}

/// Renders one user turn made of `pieces` (concatenated), tokenises it, and labels every
/// token with the kind of the piece it overlaps (chat-template text is [`SpanKind::Scaffold`]).
pub fn build_layout(
    tokenizer: &TextTokenizer,
    chat: &ChatTemplate,
    pieces: &[(SpanKind, &str)],
) -> Result<PromptLayout> {
    let content: String = pieces.iter().map(|(_, text)| *text).collect();
    let text = chat.render_user_turn(&content)?;
    let start = locate_message(chat, &text, &content)?;

    let mut ranges = Vec::with_capacity(pieces.len());
    let mut at = start;
    for (kind, piece) in pieces {
        if *kind != SpanKind::Scaffold {
            ranges.push((*kind, at, at + piece.len()));
        }
        at += piece.len();
    }

    let encoded = tokenizer.encode(&text)?;
    let kinds: Vec<SpanKind> = encoded
        .offsets
        .iter()
        .map(|&(s, e)| kind_of(s, e, &ranges))
        .collect();
    let mut spans: Vec<Span> = Vec::new();
    for (pos, kind) in kinds.into_iter().enumerate() {
        match spans.last_mut() {
            Some(last) if last.kind == kind => last.end = pos + 1,
            _ => spans.push(Span {
                kind,
                start: pos,
                end: pos + 1,
            }),
        }
    }
    let tokens = tokenizer.token_strings(&encoded.ids)?;
    Ok(PromptLayout {
        text,
        ids: encoded.ids,
        tokens,
        spans,
    })
}

/// Byte offset of the user message in the rendered `text`. The template is rendered once
/// more with a marker as the message; the text before the marker must be where the message
/// starts. A template that rewrites the message is found by searching for it instead.
fn locate_message(chat: &ChatTemplate, text: &str, content: &str) -> Result<usize> {
    let with_marker = chat.render_user_turn(MARKER)?;
    if let Some(prefix_len) = with_marker.find(MARKER)
        && text
            .get(prefix_len..)
            .is_some_and(|rest| rest.starts_with(content))
        && text.get(..prefix_len) == with_marker.get(..prefix_len)
    {
        return Ok(prefix_len);
    }
    match (text.find(content), text.rfind(content)) {
        (Some(first), Some(last)) if first == last => Ok(first),
        _ => Err(ModelError::ChatTemplate(
            "the chat template does not place the user message verbatim in the prompt, so the document \
             and question cannot be located"
                .into(),
        )),
    }
}

/// The kind of the first range a token's bytes overlap (an empty token: the range holding
/// its position), else scaffold.
fn kind_of(start: usize, end: usize, ranges: &[(SpanKind, usize, usize)]) -> SpanKind {
    ranges
        .iter()
        .find(|&&(_, a, b)| {
            if start == end {
                a <= start && start < b
            } else {
                start < b && end > a
            }
        })
        .map_or(SpanKind::Scaffold, |&(kind, _, _)| kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_overlap() {
        let ranges = [(SpanKind::Document, 10, 20), (SpanKind::Question, 22, 30)];
        assert_eq!(kind_of(0, 10, &ranges), SpanKind::Scaffold);
        assert_eq!(kind_of(8, 11, &ranges), SpanKind::Document);
        assert_eq!(kind_of(19, 22, &ranges), SpanKind::Document);
        assert_eq!(kind_of(20, 22, &ranges), SpanKind::Scaffold);
        assert_eq!(kind_of(21, 23, &ranges), SpanKind::Question);
        assert_eq!(kind_of(25, 25, &ranges), SpanKind::Question);
        assert_eq!(kind_of(30, 35, &ranges), SpanKind::Scaffold);
    }
}

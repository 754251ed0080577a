//! Chat prompts with their token layout: which positions hold the document, the question,
//! and the chat template's scaffolding.

use std::ops::Range;

use super::chat::ChatTemplate;
use super::error::{ModelError, Result};
use super::load::Model;
use super::tokenizer::TextTokenizer;
use crate::session::{PromptLayout, QuestionPlacement, Span, SpanKind};

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
        Ok(self
            .placed_prompt(document, question, QuestionPlacement::End)?
            .scored)
    }

    /// [`Model::prompt`] with the question placed as `placement` says (see
    /// [`QuestionPlacement`]): `Start` puts it before the document, `AfterEviction` cuts it
    /// off (with the rest of the turn) as the part appended after eviction.
    pub fn placed_prompt(
        &self,
        document: &str,
        question: &str,
        placement: QuestionPlacement,
    ) -> Result<PlacedPrompt> {
        let (document, question) = (document.trim(), question.trim());
        if document.is_empty() {
            return Err(ModelError::EmptyInput { what: "document" });
        }
        if question.is_empty() {
            return Err(ModelError::EmptyInput { what: "question" });
        }
        let built = build_layout_marked(
            &self.tokenizer,
            &self.chat,
            &user_pieces(document, question, placement),
            "",
        )?;
        let placed = built.placed(placement)?;
        self.check_fits(placed.total_len(), 0)?;
        Ok(placed)
    }

    /// The prompt of a task sample (kvpress's layout): one user turn holding `context`, a blank
    /// line and `question`, the assistant's header, then `answer_prefix` (the start of the
    /// answer, possibly empty; labelled as question text). `marks` are byte ranges of
    /// `context` (e.g. a needle); they come back as the token ranges that overlap them, in the
    /// same order. Refuses an empty context or question, a mark outside the context, and a
    /// prompt longer than the model's context.
    pub fn task_prompt(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
        marks: &[Range<usize>],
    ) -> Result<(PromptLayout, Vec<Range<usize>>)> {
        let (placed, marked) = self.placed_task_prompt(
            context,
            question,
            answer_prefix,
            marks,
            QuestionPlacement::End,
        )?;
        Ok((placed.scored, marked))
    }

    /// [`Model::task_prompt`] with the question placed as `placement` says (see
    /// [`QuestionPlacement`]; with `AfterEviction` the answer prefix is part of the appended
    /// tokens). The marks' token ranges count from the prompt's start, so with
    /// `AfterEviction` they lie in the scored part.
    pub fn placed_task_prompt(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
        marks: &[Range<usize>],
        placement: QuestionPlacement,
    ) -> Result<(PlacedPrompt, Vec<Range<usize>>)> {
        let lead = context.len() - context.trim_start().len();
        let trimmed = context.trim();
        let question = question.trim();
        if trimmed.is_empty() {
            return Err(ModelError::EmptyInput { what: "document" });
        }
        if question.is_empty() {
            return Err(ModelError::EmptyInput { what: "question" });
        }
        if let Some(bad) = marks
            .iter()
            .find(|m| m.start > m.end || m.start < lead || m.end > lead + trimmed.len())
        {
            return Err(ModelError::InvalidArgument(format!(
                "the marked range {}..{} lies outside the context's text ({} bytes)",
                bad.start,
                bad.end,
                context.len()
            )));
        }
        let pieces = user_pieces(trimmed, question, placement);
        let built = build_layout_marked(&self.tokenizer, &self.chat, &pieces, answer_prefix)?;
        // Where the context starts in the rendered text.
        let context_start = built.message_start
            + pieces
                .iter()
                .take_while(|(kind, _)| *kind != SpanKind::Document)
                .map(|(_, text)| text.len())
                .sum::<usize>()
            - lead;
        let marked = marks
            .iter()
            .map(|m| built.tokens_over(context_start + m.start, context_start + m.end))
            .collect();
        let placed = built.placed(placement)?;
        self.check_fits(placed.total_len(), 0)?;
        Ok((placed, marked))
    }

    /// Tokens of [`Model::task_prompt`]'s prompt, without checking that it fits the context
    /// (generators probe lengths with it).
    pub fn task_prompt_tokens(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
    ) -> Result<usize> {
        let built = build_layout_marked(
            &self.tokenizer,
            &self.chat,
            &[
                (SpanKind::Document, context.trim()),
                (SpanKind::Scaffold, DOCUMENT_QUESTION_SEPARATOR),
                (SpanKind::Question, question.trim()),
            ],
            answer_prefix,
        )?;
        Ok(built.layout.len())
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

    /// The chat template's scaffolding around one user message, tokenised as kvpress 0.5.5's
    /// `KVzipPress` splits it: the text before the message, and the text after it up to and
    /// including the assistant's header (the template rendered with a placeholder message and
    /// the generation prompt, cut at the placeholder; special-token strings become their ids).
    pub fn turn_scaffold(&self) -> Result<TurnScaffold> {
        let text = self.chat.render_user_turn(MARKER)?;
        let Some((before, after)) = text.split_once(MARKER) else {
            return Err(ModelError::ChatTemplate(
                "the chat template does not place the user message verbatim in the prompt, so \
                 the text around it cannot be found"
                    .into(),
            ));
        };
        Ok(TurnScaffold {
            prefix: self.tokenizer.encode(before)?.ids,
            suffix: self.tokenizer.encode(after)?.ids,
        })
    }

    /// Token ids of plain text: special-token strings in it are spelled out as text.
    pub fn text_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode_text(text)?.ids)
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

/// The chat template's text around one user message, as token ids
/// ([`Model::turn_scaffold`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnScaffold {
    /// The tokens before the user message (system turn, user header).
    pub prefix: Vec<u32>,
    /// The tokens after it, up to and including the assistant's header.
    pub suffix: Vec<u32>,
}

/// A chat prompt split where eviction happens (see [`QuestionPlacement`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedPrompt {
    /// Where the question was placed.
    pub placement: QuestionPlacement,
    /// The tokens prefilled, scored and evicted: the whole prompt, or with
    /// [`QuestionPlacement::AfterEviction`] everything before the question's first token.
    pub scored: PromptLayout,
    /// The tokens fed under the kept cache after eviction and never evicted (the question, the
    /// end of the turn, the assistant's header and any answer prefix): empty unless
    /// [`QuestionPlacement::AfterEviction`]. Its spans count positions from its first token.
    pub appended: PromptLayout,
}

impl PlacedPrompt {
    /// A whole prompt scored as it is ([`QuestionPlacement::End`], nothing appended).
    pub fn whole(prompt: PromptLayout) -> Self {
        Self {
            placement: QuestionPlacement::End,
            scored: prompt,
            appended: PromptLayout::default(),
        }
    }

    /// Tokens of the whole prompt, scored and appended.
    pub fn total_len(&self) -> usize {
        self.scored.len() + self.appended.len()
    }
}

/// The user turn's pieces in `placement`'s order: the question after the document, or before
/// it with [`QuestionPlacement::Start`], separated by a blank line.
fn user_pieces<'a>(
    document: &'a str,
    question: &'a str,
    placement: QuestionPlacement,
) -> [(SpanKind, &'a str); 3] {
    let (first, last) = match placement {
        QuestionPlacement::Start => (
            (SpanKind::Question, question),
            (SpanKind::Document, document),
        ),
        QuestionPlacement::End | QuestionPlacement::AfterEviction => (
            (SpanKind::Document, document),
            (SpanKind::Question, question),
        ),
    };
    [
        first,
        (SpanKind::Scaffold, DOCUMENT_QUESTION_SEPARATOR),
        last,
    ]
}

/// Renders one user turn made of `pieces` (concatenated), tokenises it, and labels every
/// token with the kind of the piece it overlaps (chat-template text is [`SpanKind::Scaffold`]).
/// Special tokens come from the chat template only: the user turn's text is tokenised as
/// text (see [`TextTokenizer::encode_prompt`]).
pub fn build_layout(
    tokenizer: &TextTokenizer,
    chat: &ChatTemplate,
    pieces: &[(SpanKind, &str)],
) -> Result<PromptLayout> {
    Ok(build_layout_marked(tokenizer, chat, pieces, "")?.layout)
}

/// A layout with what is needed to map byte ranges of its text to tokens.
struct MarkedLayout {
    layout: PromptLayout,
    /// Byte range of the text each token covers.
    offsets: Vec<(usize, usize)>,
    /// Byte offset of the user message in the text.
    message_start: usize,
    /// Byte offset of the question in the text (the text's length when there is none).
    question_byte: usize,
}

impl MarkedLayout {
    /// The layout as `placement` scores it: whole, or with
    /// [`QuestionPlacement::AfterEviction`] cut before the first token that reaches into the
    /// question, the rest becoming the appended part.
    fn placed(self, placement: QuestionPlacement) -> Result<PlacedPrompt> {
        let whole = self.layout;
        if placement != QuestionPlacement::AfterEviction {
            return Ok(PlacedPrompt {
                placement,
                scored: whole,
                appended: PromptLayout::default(),
            });
        }
        let cut = self
            .offsets
            .iter()
            .position(|&(_, end)| end > self.question_byte)
            .unwrap_or(whole.len());
        let cut_byte = self
            .offsets
            .get(cut)
            .map_or(whole.text.len(), |&(start, _)| start);
        let (Some(scored_text), Some(appended_text)) =
            (whole.text.get(..cut_byte), whole.text.get(cut_byte..))
        else {
            return Err(ModelError::InvalidArgument(format!(
                "the prompt cannot be cut before its question: byte {cut_byte} is inside a character"
            )));
        };
        let split_spans = |from: usize, to: usize| -> Vec<Span> {
            whole
                .spans
                .iter()
                .filter(|span| span.end > from && span.start < to)
                .map(|span| Span {
                    kind: span.kind,
                    start: span.start.max(from) - from,
                    end: span.end.min(to) - from,
                })
                .collect()
        };
        let scored = PromptLayout {
            text: scored_text.to_owned(),
            ids: whole.ids[..cut].to_vec(),
            tokens: whole.tokens[..cut].to_vec(),
            spans: split_spans(0, cut),
        };
        let appended = PromptLayout {
            text: appended_text.to_owned(),
            ids: whole.ids[cut..].to_vec(),
            tokens: whole.tokens[cut..].to_vec(),
            spans: split_spans(cut, whole.len()),
        };
        Ok(PlacedPrompt {
            placement,
            scored,
            appended,
        })
    }

    /// The tokens whose bytes overlap `start..end` of the text (an empty range: the token
    /// holding `start`), as a token range.
    fn tokens_over(&self, start: usize, end: usize) -> Range<usize> {
        let overlaps = |&(a, b): &(usize, usize)| {
            if start == end {
                a <= start && start < b
            } else {
                a < end && b > start
            }
        };
        let first = self.offsets.iter().position(overlaps);
        let last = self.offsets.iter().rposition(overlaps);
        match (first, last) {
            (Some(first), Some(last)) => first..last + 1,
            _ => 0..0,
        }
    }
}

/// [`build_layout`] with `suffix` appended after the rendered turn (an answer prefix,
/// labelled [`SpanKind::Question`] and tokenised as text), keeping the token offsets.
fn build_layout_marked(
    tokenizer: &TextTokenizer,
    chat: &ChatTemplate,
    pieces: &[(SpanKind, &str)],
    suffix: &str,
) -> Result<MarkedLayout> {
    let content: String = pieces.iter().map(|(_, text)| *text).collect();
    let mut text = chat.render_user_turn(&content)?;
    let start = locate_message(chat, &text, &content)?;

    let mut ranges = Vec::with_capacity(pieces.len());
    let mut at = start;
    for (kind, piece) in pieces {
        if *kind != SpanKind::Scaffold {
            ranges.push((*kind, at, at + piece.len()));
        }
        at += piece.len();
    }
    let question_byte = ranges
        .iter()
        .find(|(kind, _, _)| *kind == SpanKind::Question)
        .map_or(text.len(), |&(_, at, _)| at);
    let message = start..start + content.len();
    let mut user_text = vec![message];
    if !suffix.is_empty() {
        ranges.push((SpanKind::Question, text.len(), text.len() + suffix.len()));
        user_text.push(text.len()..text.len() + suffix.len());
        text.push_str(suffix);
    }

    let encoded = tokenizer.encode_prompt(&text, &user_text)?;
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
    Ok(MarkedLayout {
        layout: PromptLayout {
            text,
            ids: encoded.ids,
            tokens,
            spans,
        },
        offsets: encoded.offsets,
        message_start: start,
        question_byte,
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

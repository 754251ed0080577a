//! A stand-in compute engine with synthetic attention: the hidden `--demo` mode and the GUI
//! tests run the whole explorer with it, without a model.
//!
//! It answers every [`Request`] the real engine answers. The prompt is the real document and
//! question split into word tokens inside a chat template; the attention is the policy room's
//! deterministic synthetic attention ([`crate::session::synthetic()`]). Decoding under eviction
//! answers with the full answer cut short in proportion to the decoded tokens' attention mass
//! the mask loses, so answers change with the budget as real ones do. Nothing it shows is a
//! model's output, and its model is named accordingly.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use ndarray::Axis;

use crate::attention::mask_head;
use crate::judgeq::SoftTokens;
use crate::judgeq::shipped::SoftTokenChoice;
use crate::progress::{Progress, Stage};
use crate::session::{
    Answer, ModelInfo, PromptLayout, Session, Span, SpanKind, SyntheticSpec, synthetic,
    synthetic_prefill_inputs,
};
use crate::worker::protocol::{
    Engine, Event, EventSink, EvictionAnswer, EvictionCase, Job, JobProgress, ModelSource, Request,
    SessionRequest,
};

/// Longest prompt the demo model takes, in tokens.
pub const DEMO_MAX_CONTEXT: usize = 16_384;

/// Soft-token rows every demo session has.
const DEMO_SOFT_TOKENS: usize = 16;

/// A question about [`crate::document::EXAMPLE_DOCUMENT`].
pub const EXAMPLE_QUESTION: &str =
    "When will the Harlow Street bridge reopen to traffic, and why was it closed?";

/// The canned answer the demo model "decodes".
const DEMO_ANSWER: &str = " The bridge reopens on 14 March, after the replacement of two corroded bearings found in the October inspection closed it.";

/// Shape of the demo model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoShape {
    /// Layers.
    pub layers: usize,
    /// Query heads per layer.
    pub query_heads: usize,
    /// KV heads per layer.
    pub kv_heads: usize,
}

impl Default for DemoShape {
    /// The default model's shape (SmolLM2-135M: 30 layers, 9 query heads, 3 KV heads).
    fn default() -> Self {
        Self {
            layers: 30,
            query_heads: 9,
            kv_heads: 3,
        }
    }
}

/// The synthetic engine.
pub struct DemoEngine {
    shape: DemoShape,
    step: Duration,
    model: Option<ModelInfo>,
}

impl DemoEngine {
    /// An engine with the default model's shape that pauses `step` between units of work (so
    /// progress and cancellation can be seen).
    pub fn new(shape: DemoShape, step: Duration) -> Self {
        Self {
            shape,
            step,
            model: None,
        }
    }

    /// Reports `steps` steps of `stage`, sleeping between them; `false` when cancelled.
    fn work(&self, progress: &JobProgress, stage: &Stage, steps: usize, total: usize) -> bool {
        for i in 0..=steps {
            if progress.is_cancelled() {
                return false;
            }
            progress.update(stage, total * i / steps.max(1), total);
            if i < steps {
                std::thread::sleep(self.step);
            }
        }
        !progress.is_cancelled()
    }

    fn load(&mut self, job: &Job, source: &ModelSource, sink: &EventSink) {
        let progress = sink.progress(job);
        let name = match source {
            ModelSource::Default => "SmolLM2-135M-Instruct".to_owned(),
            ModelSource::Path(path) => {
                if !path.exists() {
                    sink.send(Event::Failed {
                        job: job.id,
                        message: format!("{}: no such model file or folder", path.display()),
                    });
                    return;
                }
                crate::app::state::file_label(path)
            }
        };
        if !self.work(&progress, &Stage::Loading, 8, 8) {
            sink.send(Event::Cancelled { job: job.id });
            return;
        }
        let info = ModelInfo {
            id: format!("{name} (demo: synthetic attention)"),
            architecture: "llama".to_owned(),
            path: match source {
                ModelSource::Default => "demo".to_owned(),
                ModelSource::Path(p) => p.display().to_string(),
            },
            weights_sha256: "0".repeat(64),
            layers: self.shape.layers,
            query_heads: self.shape.query_heads,
            kv_heads: self.shape.kv_heads,
            head_dim: 64,
            hidden_size: self.shape.query_heads * 64,
            max_context: DEMO_MAX_CONTEXT,
            kv_entry_bytes: 2 * 64 * 2,
        };
        self.model = Some(info.clone());
        sink.send(Event::ModelReady {
            job: job.id,
            info,
            memory: None,
        });
    }

    fn inspect(&self, job: &Job, request: &SessionRequest, sink: &EventSink) {
        let fail = |message: String| {
            sink.send(Event::Failed {
                job: job.id,
                message,
            })
        };
        let Some(model) = &self.model else {
            fail("No model is loaded".to_owned());
            return;
        };
        let (prompt, marked) = task_chat_prompt(
            &request.document,
            &request.question,
            &request.answer_prefix,
            &request.marks,
        );
        let n = prompt.len();
        if n + request.decode_tokens + DEMO_SOFT_TOKENS > model.max_context {
            fail(format!(
                "The prompt is {n} tokens; with {} decoded and {DEMO_SOFT_TOKENS} soft tokens it exceeds the model's context of {} tokens",
                request.decode_tokens, model.max_context
            ));
            return;
        }
        let progress = sink.progress(job);
        let stages = [
            (Stage::Prefill, n),
            (Stage::SoftTokens, DEMO_SOFT_TOKENS),
            (Stage::Decoding, request.decode_tokens),
        ];
        for (stage, total) in &stages {
            if !self.work(&progress, stage, 6, *total) {
                sink.send(Event::Cancelled { job: job.id });
                return;
            }
        }
        let spec = SyntheticSpec {
            seed: 7,
            layers: self.shape.layers,
            query_heads: self.shape.query_heads,
            kv_heads: self.shape.kv_heads,
            n_prompt: n,
            window: request.window.clamp(1, n),
            soft: DEMO_SOFT_TOKENS,
            decoded: request.decode_tokens.max(1),
        };
        let mut session = match synthetic(&spec) {
            Ok(session) => session,
            Err(e) => {
                fail(e.to_string());
                return;
            }
        };
        session.model = model.clone();
        session.prompt = prompt;
        // Narrower heads than the model's keep the drawn keys and statistics quick to make.
        session.prefill_inputs = synthetic_prefill_inputs(&spec, 16, request.capture);
        if let SoftTokenChoice::File(path) = &request.soft_tokens {
            // The metadata a real run reads; the demo's soft rows stay synthetic.
            session.settings.soft_tokens_unfinished = SoftTokens::read(path)
                .ok()
                .and_then(|soft| soft.unfinished_training());
        }
        session.settings.soft_tokens = Some(match &request.soft_tokens {
            SoftTokenChoice::File(path) => path.display().to_string(),
            SoftTokenChoice::Shipped | SoftTokenChoice::None => {
                "demo soft tokens (synthetic)".to_owned()
            }
        });
        session.answer = demo_answer(spec.decoded);
        sink.send(Event::SessionReady {
            job: job.id,
            session: Arc::new(session),
            marked,
            memory: None,
        });
    }

    fn decode(
        &self,
        job: &Job,
        session: &Session,
        cases: &[EvictionCase],
        max_tokens: usize,
        sink: &EventSink,
    ) {
        let progress = sink.progress(job);
        let mut answers = Vec::with_capacity(cases.len());
        for case in cases {
            let stage = Stage::DecodingUnderEviction(case.policy.label().to_owned());
            if !self.work(&progress, &stage, 2, max_tokens) {
                sink.send(Event::Cancelled { job: job.id });
                return;
            }
            let kept = decoded_mass_kept(session, case);
            answers.push(EvictionAnswer {
                policy: case.policy,
                budget: case.budget,
                answer: truncated_answer(&session.answer, kept, max_tokens),
            });
        }
        sink.send(Event::Answers {
            job: job.id,
            answers,
        });
    }
}

impl Engine for DemoEngine {
    fn handle(&mut self, request: Request, sink: &EventSink) {
        match request {
            Request::LoadModel { job, source } => self.load(&job, &source, sink),
            Request::Inspect { job, request } => self.inspect(&job, &request, sink),
            Request::DecodeUnderEviction {
                job,
                session,
                cases,
                max_tokens,
            } => self.decode(&job, &session, &cases, max_tokens, sink),
        }
    }
}

/// Splits text into word-like tokens: a run of letters or digits (with the spaces before
/// it), a single other character, or a newline.
pub fn split_tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        if chars.get(i) == Some(&'\n') {
            i += 1;
        } else {
            while chars
                .get(i)
                .is_some_and(|&c| c == ' ' || c == '\t' || c == '\r')
            {
                i += 1;
            }
            if chars.get(i).is_some_and(|c| c.is_alphanumeric()) {
                while chars.get(i).is_some_and(|c| c.is_alphanumeric()) {
                    i += 1;
                }
            } else if chars.get(i).is_some_and(|&c| c != '\n') {
                i += 1;
            }
        }
        tokens.push(chars[start..i].iter().collect());
    }
    tokens
}

/// The document and question in a ChatML template, with the spans marked.
pub fn chat_prompt(document: &str, question: &str) -> PromptLayout {
    task_chat_prompt(document, question, "", &[]).0
}

/// [`chat_prompt`] with `answer_prefix` after the assistant's header (labelled as question
/// text, as [`crate::model::Model::task_prompt`] labels it), and the prompt tokens that overlap
/// each byte range of `document` in `marks` (empty for a range past the document's end).
pub fn task_chat_prompt(
    document: &str,
    question: &str,
    answer_prefix: &str,
    marks: &[Range<usize>],
) -> (PromptLayout, Vec<Range<usize>>) {
    let mut tokens: Vec<String> = Vec::new();
    let mut spans = Vec::new();
    let mut push = |kind: SpanKind, parts: Vec<String>, tokens: &mut Vec<String>| {
        let start = tokens.len();
        tokens.extend(parts);
        if tokens.len() > start {
            spans.push(Span {
                kind,
                start,
                end: tokens.len(),
            });
        }
    };
    let scaffold = |parts: &[&str]| parts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    push(
        SpanKind::Scaffold,
        scaffold(&[
            "<|im_start|>",
            "system",
            "\n",
            "You are a helpful assistant.",
            "<|im_end|>",
            "\n",
            "<|im_start|>",
            "user",
            "\n",
        ]),
        &mut tokens,
    );
    let document_start = tokens.len();
    let document_tokens = split_tokens(document.trim_end());
    let marked = token_ranges_over(&document_tokens, marks)
        .into_iter()
        .map(|r| r.start + document_start..r.end + document_start)
        .collect();
    push(SpanKind::Document, document_tokens, &mut tokens);
    push(SpanKind::Scaffold, scaffold(&["\n\n"]), &mut tokens);
    push(
        SpanKind::Question,
        split_tokens(question.trim()),
        &mut tokens,
    );
    push(
        SpanKind::Scaffold,
        scaffold(&["<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"]),
        &mut tokens,
    );
    push(SpanKind::Question, split_tokens(answer_prefix), &mut tokens);
    // Merge neighbouring spans of one kind (an empty question leaves two scaffolds adjacent).
    let mut merged: Vec<Span> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if last.kind == span.kind && last.end == span.start => last.end = span.end,
            _ => merged.push(span),
        }
    }
    let prompt = PromptLayout {
        text: tokens.concat(),
        ids: tokens.iter().map(|t| token_id(t)).collect(),
        tokens,
        spans: merged,
    };
    (prompt, marked)
}

/// For each byte range of the text `tokens` cover (in order, exactly), the tokens that
/// overlap it.
fn token_ranges_over(tokens: &[String], ranges: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut ends = Vec::with_capacity(tokens.len());
    let mut at = 0;
    for token in tokens {
        at += token.len();
        ends.push(at);
    }
    ranges
        .iter()
        .map(|range| {
            // Token i covers bytes ends[i - 1]..ends[i].
            let first = ends.partition_point(|&end| end <= range.start);
            let last = ends.partition_point(|&end| end < range.end);
            if range.start >= range.end || first >= tokens.len() {
                first..first
            } else {
                first..(last + 1).min(tokens.len())
            }
        })
        .collect()
}

/// A stable made-up id for a token.
fn token_id(token: &str) -> u32 {
    token.bytes().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16_777_619)
    }) % 49_152
}

/// The first `tokens` tokens of the canned answer.
fn demo_answer(tokens: usize) -> Answer {
    let words = split_tokens(DEMO_ANSWER);
    let tokens: Vec<String> = words
        .iter()
        .cycle()
        .take(tokens.min(words.len()))
        .cloned()
        .collect();
    Answer {
        ids: tokens.iter().map(|t| token_id(t)).collect(),
        text: tokens.concat(),
        tokens,
    }
}

/// Share of the decoded tokens' prompt attention that falls on entries the case's mask keeps,
/// averaged over layers and query heads.
fn decoded_mass_kept(session: &Session, case: &EvictionCase) -> f32 {
    let decoded = session.decoded.sum_axis(Axis(2));
    let (layers, query_heads, _) = decoded.dim();
    let (mask_layers, mask_heads, _) = case.mask.dim();
    let mut total = 0.0f32;
    let mut count = 0usize;
    for l in 0..layers.min(mask_layers) {
        for h in 0..query_heads {
            let weights = decoded.index_axis(Axis(0), l);
            let weights = weights.index_axis(Axis(0), h);
            let mask = case.mask.index_axis(Axis(0), l);
            let mask = mask.index_axis(Axis(0), mask_head(h, query_heads, mask_heads));
            let all: f32 = weights.sum();
            let kept: f32 = weights
                .iter()
                .zip(mask.iter())
                .filter(|(_, k)| **k)
                .map(|(w, _)| *w)
                .sum();
            total += if all > 0.0 { kept / all } else { 1.0 };
            count += 1;
        }
    }
    if count == 0 {
        1.0
    } else {
        total / count as f32
    }
}

/// The full answer when at least 95% of the attention mass is kept, else its first tokens in
/// proportion to the mass kept, then an ellipsis.
fn truncated_answer(full: &Answer, mass_kept: f32, max_tokens: usize) -> Answer {
    let limit = full.tokens.len().min(max_tokens.max(1));
    let keep = if mass_kept >= 0.95 {
        limit
    } else {
        ((limit as f32 * mass_kept * mass_kept).floor() as usize).min(limit)
    };
    let mut tokens: Vec<String> = full.tokens.iter().take(keep).cloned().collect();
    let mut ids: Vec<u32> = full.ids.iter().take(keep).copied().collect();
    if keep < limit {
        tokens.push(" …".to_owned());
        ids.push(token_id(" …"));
    }
    Answer {
        text: tokens.concat(),
        ids,
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cover_the_text_exactly() {
        let text = "The bridge, closed in 2024,\nreopens soon.\n\n  Done";
        let tokens = split_tokens(text);
        assert_eq!(tokens.concat(), text);
        assert_eq!(&tokens[..4], &["The", " bridge", ",", " closed"]);
        assert!(tokens.contains(&"\n".to_owned()));
        assert!(tokens.contains(&"  Done".to_owned()));
    }

    #[test]
    fn the_prompt_marks_document_question_and_scaffold() {
        let prompt = chat_prompt("A b.", "Why?");
        assert_eq!(prompt.tokens.len(), prompt.ids.len());
        let kinds: Vec<SpanKind> = prompt.spans.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            vec![
                SpanKind::Scaffold,
                SpanKind::Document,
                SpanKind::Scaffold,
                SpanKind::Question,
                SpanKind::Scaffold
            ]
        );
        assert_eq!(prompt.spans.last().map(|s| s.end), Some(prompt.len()));
        let doc = prompt.spans[1];
        assert_eq!(prompt.tokens[doc.start..doc.end].concat(), "A b.");
        // Without a question the scaffolds around it merge.
        assert_eq!(chat_prompt("A", "").spans.len(), 3);
    }

    #[test]
    fn marks_come_back_as_the_tokens_over_them_and_the_prefix_follows_the_header() {
        let document = "Alpha beta, gamma delta.";
        // Bytes 6..10 are "beta"; 11..18 are " gamma " (touching " gamma" and " delta"); 23..24
        // is ".".
        let marks = [6..10, 11..18, 23..24, 30..40];
        let (prompt, marked) = task_chat_prompt(document, "Which?", "It is", &marks);
        let words: Vec<String> = marked
            .iter()
            .map(|r| prompt.tokens[r.clone()].concat())
            .collect();
        assert_eq!(words, [" beta", " gamma delta", ".", ""]);
        assert_eq!(
            marked[3].len(),
            0,
            "a range past the document marks nothing"
        );
        let last = prompt.spans.last().unwrap();
        assert_eq!(last.kind, SpanKind::Question);
        assert_eq!(prompt.tokens[last.start..last.end].concat(), "It is");
        assert_eq!(prompt.tokens[last.start - 2], "assistant");
        // No prefix, no marks: the plain prompt.
        assert_eq!(
            task_chat_prompt(document, "Which?", "", &[]).0,
            chat_prompt(document, "Which?")
        );
    }

    #[test]
    fn answers_shrink_with_the_mass_lost() {
        let full = demo_answer(12);
        assert_eq!(truncated_answer(&full, 0.99, 64), full);
        let half = truncated_answer(&full, 0.5, 64);
        assert_eq!(half.tokens.len(), 12 / 4 + 1);
        assert!(half.text.ends_with('…'));
        assert_eq!(
            truncated_answer(&full, 0.0, 64).tokens,
            vec![" …".to_owned()]
        );
    }
}

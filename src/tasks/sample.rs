//! One sample of a task, as every generator and loader produces it and the runner consumes it.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// How a prediction is scored against the reference answers. Each variant is the official
/// metric of the task family that uses it; scores lie in `[0, 1]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Metric {
    /// RULER's `string_match_all`: the share of the reference answers that occur in the
    /// prediction (case-insensitive). Needle, variable-tracking and word-extraction tasks.
    StringMatchAll,
    /// RULER's `string_match_part`: 1 when any reference answer occurs in the prediction
    /// (case-insensitive). RULER's QA tasks.
    StringMatchPart,
    /// LongBench's `qa_f1_score`: token F1 after normalisation, best over the references.
    QaF1,
    /// LongBench's `rouge_score`: ROUGE-L F1, best over the references.
    RougeL,
    /// LongBench's `classification_score` over the task's label set.
    Classification {
        /// Every label of the task (`all_classes`).
        classes: Vec<String>,
    },
    /// LongBench's `retrieval_score` (`Paragraph N` found in the prediction).
    Retrieval,
    /// LongBench's `count_score` (the count among the numbers in the prediction).
    Count,
    /// LongBench's `code_sim_score` (fuzzy edit similarity of the first code line).
    CodeSim,
    /// LongBench's post-processing for trec, triviaqa, samsum and lsht: `metric` scores only
    /// the prediction's first line (after leading newlines).
    FirstLine {
        /// The metric applied to that line.
        metric: Box<Metric>,
    },
    /// L-Eval's `rouge`: the geometric mean of ROUGE-1, ROUGE-2 and ROUGE-L F1 as Google's
    /// `rouge_score` package computes them, best over the references.
    RougeGeometricMean,
    /// L-Eval's `exam`: exact match of the answer read from the prediction.
    Exam {
        /// How the answer is read.
        format: ExamFormat,
    },
    /// LongEval's line retrieval: 1 when the last number in the prediction equals the answer
    /// (as integers).
    LastNumber,
}

impl Metric {
    /// The metric's key in kvpress's `metrics.json` (`string_match` for RULER's, as kvpress
    /// writes it) and in the run's tables.
    pub fn key(&self) -> &'static str {
        match self {
            Metric::StringMatchAll | Metric::StringMatchPart => "string_match",
            Metric::QaF1 => "qa_f1_score",
            Metric::RougeL => "rouge_score",
            Metric::Classification { .. } => "classification_score",
            Metric::Retrieval => "retrieval_score",
            Metric::Count => "count_score",
            Metric::CodeSim => "code_sim_score",
            Metric::FirstLine { metric } => metric.key(),
            Metric::RougeGeometricMean => "rouge",
            Metric::Exam { .. } => "exam",
            Metric::LastNumber => "accuracy",
        }
    }
}

/// How L-Eval's `exam` metric reads an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExamFormat {
    /// Multiple choice with one correct option (QuALITY, TOEFL): the first of `A`–`D`.
    SingleChoice,
    /// Multiple choice with possibly several correct options (Coursera); a strict subset of
    /// the right letters scores 0.25.
    MultipleChoice,
    /// Free text (topic retrieval): the reference must occur in the prediction, ignoring case
    /// and spaces, or equal it as a number.
    FreeText,
}

/// One prompt of a task with what a correct answer must contain.
///
/// The prompt the model reads is the chat template's user turn holding `context`, a blank line
/// and `question`, then the assistant header and `answer_prefix` (kvpress's layout:
/// `context`, `question`, `answer_prefix`, `answer`, `max_new_tokens`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSample {
    /// Position of the sample in its generated or loaded set (shards split on it, tables are
    /// ordered by it).
    pub index: usize,
    /// Stable id within the set, e.g. `niah/2048/30/0` or a LongBench `_id`.
    pub id: String,
    /// Task name (`niah`, `niah_single_1`, `vt`, `qasper`, ...).
    pub task: String,
    /// What the model reads before the question (the haystack, the document).
    pub context: String,
    /// The question asked after the context.
    pub question: String,
    /// Text the assistant's answer starts with (may be empty); it is part of the prompt, so the
    /// prediction is what the model writes after it.
    pub answer_prefix: String,
    /// Reference answers; `metric` says how they are matched.
    pub answers: Vec<String>,
    /// Most tokens the model may generate for this sample.
    pub max_new_tokens: usize,
    /// How the prediction is scored.
    pub metric: Metric,
    /// Byte ranges of `context` that hold what the answer needs (the needles), sorted and
    /// disjoint; empty when the task does not know them. The runner reports the share of these
    /// tokens each policy keeps.
    pub evidence: Vec<Range<usize>>,
    /// Further columns written to `predictions.csv`, in order (e.g. `length`, `depth`).
    pub fields: Vec<(String, String)>,
}

/// The tokenizer view generators and loaders need: prompt lengths in tokens (to fill a
/// haystack to a length), token counts of plain text (to place a needle at a depth), and
/// middle truncation (LongBench's way of fitting a long context). The model implements it with
/// its tokenizer and chat template; tests use simple whitespace tokenizers.
pub trait TaskTokenizer {
    /// Tokens of the whole prompt (chat template included) for this context, question and
    /// answer prefix.
    fn prompt_tokens(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
    ) -> Result<usize, String>;

    /// Tokens of `text` on its own (no template).
    fn text_tokens(&self, text: &str) -> Result<usize, String>;

    /// `text` cut to at most `max_tokens` tokens by removing tokens from its middle, keeping
    /// the first and the last halves (LongBench's truncation).
    fn truncate_middle(&self, text: &str, max_tokens: usize) -> Result<String, String>;
}

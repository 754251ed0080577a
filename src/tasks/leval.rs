//! L-Eval (`OpenLMLab/LEval`, `LEval-data/`): the user's jsonl files as [`TaskSample`]s.
//!
//! `{dir}/{task}.jsonl` holds one document per line (`instructions`, `outputs`, `input`,
//! `source`, `evaluation`); every instruction becomes one sample, id
//! `{task}.jsonl:{line}:{instruction}`, whose answer is the matching output. Records that
//! L-Eval evaluates by people or by an LLM (`evaluation` `human` or `LLM`) are skipped, as its
//! `Evaluation/auto_eval.py` skips them.
//!
//! Prompts follow L-Eval's baselines (`Baselines/llama2-chat-test.py`, system prompts from
//! `Baselines/LEval_config.py`, written before the document since judgeq's prompt has no
//! system turn):
//! - `f1` and `rouge`: the general system prompt, `Document is as follows. {document}`, then
//!   `Instruction: {instruction} \nAnswer this question with {n} words.`, `n` the reference's
//!   word count;
//! - `exam`: the exam system prompt (Coursera's own for Coursera), the document, then
//!   `Question: {instruction}.  Please directly give the answer without any additional output
//!   or explanation`, answer prefix `Answer:`;
//! - topic retrieval: the topic system prompt, the document, then the instruction.
//!
//! Metrics: `f1` is [`Metric::QaF1`], `rouge` [`Metric::RougeGeometricMean`], `exam`
//! [`Metric::Exam`] with options for Coursera (several letters), QuALITY and TOEFL (`tpo`), free
//! text otherwise. L-Eval generates up to 512 tokens. A document too long for the model is cut
//! from the end as L-Eval cuts it: its first words are kept, 250 fewer at each try, until the
//! longest of its prompts fits. GSM-100, CodeU and SciFi are refused: L-Eval reads their
//! answers with task-specific rules (and SciFi with a second, document-free generation).

use std::path::Path;

use serde::Deserialize;

use super::jsonl;
use super::metrics::python;
use super::{DataError, ExamFormat, Metric, TaskSample, TaskTokenizer};

/// L-Eval's `max_new_tokens`.
const MAX_NEW_TOKENS: usize = 512;

/// Words dropped from the document at each further try (L-Eval's step).
const WORDS_STEP: usize = 250;

/// `get_sys_prompt`'s default, for the open-ended tasks.
const GENERAL_SYSTEM: &str = "Now you are given a very long document. Please follow the instruction after this document. These instructions may include summarizing a document, answering questions based on the document, or writing a required paragraph. ";

/// `get_sys_prompt` for exam runs.
const EXAM_SYSTEM: &str = "Now you are given a very long document. Please follow the instruction based on this document. For multi-choice questions, there is only a sinlge correct option. Please only provide the letter corresponding to the answer (like A or B) when answering. For other questions, please directly give the concise and accurate answer. ";

/// `get_sys_prompt` for Coursera.
const COURSERA_SYSTEM: &str = "Now you are given a very long document. Please follow the instruction based on this document. For multi-choice questions, there could be a sinlge correct option or multiple correct options. Please only provide the letter corresponding to the answer (like A or AB) when answering. ";

/// `get_sys_prompt` for topic retrieval.
const TOPIC_SYSTEM: &str = "Below is a record of our previous conversation on many different topics. You are the ASSISTANT, and I am the USER. At the beginning of each topic, the USER will say 'I would like to discuss the topic of <TOPIC>'. Memorize each <TOPIC>. At the end of the record, I will ask you to retrieve the first/second/third topic names. Now the record start. ";

/// Tasks whose answers L-Eval reads with its own rules, and why they are refused.
const UNSUPPORTED: [(&str, &str); 3] = [
    (
        "gsm100",
        "L-Eval reads its answers with a math-specific rule",
    ),
    (
        "codeU",
        "L-Eval reads its answers with a code-output-specific rule",
    ),
    (
        "sci_fi",
        "L-Eval scores it with a second generation without the document",
    ),
];

/// One line of an L-Eval file.
#[derive(Deserialize)]
struct Record {
    instructions: Vec<String>,
    outputs: Vec<String>,
    input: String,
    #[serde(default)]
    source: String,
    evaluation: String,
}

/// How the samples of one record are asked and scored.
struct Style {
    /// What precedes the document in the context.
    head: String,
    /// The answer prefix.
    answer_prefix: &'static str,
    /// The metric of every instruction.
    metric: Metric,
}

/// What L-Eval's prompts read before the document itself.
const DOCUMENT_LABEL: &str = "Document is as follows. ";

/// The samples of L-Eval task `task` (the file stem, e.g. `quality`) from `{dir}/{task}.jsonl`,
/// in file order, each document cut to fit `max_context` tokens of `tokenizer`'s model with
/// room for the answer.
pub fn load_leval(
    dir: &Path,
    task: &str,
    tokenizer: &dyn TaskTokenizer,
    max_context: usize,
) -> Result<Vec<TaskSample>, DataError> {
    if let Some((_, reason)) = UNSUPPORTED.iter().find(|(name, _)| task.contains(name)) {
        return Err(DataError::Unsupported {
            benchmark: "L-Eval",
            name: task.to_owned(),
            reason: (*reason).to_owned(),
        });
    }
    let path = jsonl::set_file(dir, task, "L-Eval files are named {task}.jsonl")?;
    let file = format!("{task}.jsonl");
    let mut samples = Vec::new();
    for (line, record) in jsonl::read_records::<Record>(&path)? {
        let bad = |reason: String| DataError::BadLine {
            path: path.clone(),
            line,
            reason,
        };
        if record.instructions.len() != record.outputs.len() {
            return Err(bad(format!(
                "{} instructions but {} outputs",
                record.instructions.len(),
                record.outputs.len()
            )));
        }
        let Some(style) = style(task, &record.evaluation).map_err(bad)? else {
            continue;
        };
        if record.instructions.is_empty() {
            continue;
        }
        let questions: Vec<String> = record
            .instructions
            .iter()
            .zip(&record.outputs)
            .map(|(instruction, output)| question(task, &record.evaluation, instruction, output))
            .collect();
        let id = format!("{file}:{line}");
        let head = |document: &str| format!("{}{document}", style.head);
        let fitted = fit_document(
            &record.input,
            &head,
            &questions,
            style.answer_prefix,
            tokenizer,
            max_context,
            &id,
        )?;
        let context = head(fitted.document);
        for (at, (question, output)) in questions.into_iter().zip(&record.outputs).enumerate() {
            samples.push(TaskSample {
                index: samples.len(),
                id: format!("{id}:{at}"),
                task: task.to_owned(),
                context: context.clone(),
                question,
                answer_prefix: style.answer_prefix.to_owned(),
                answers: vec![output.clone()],
                max_new_tokens: MAX_NEW_TOKENS,
                metric: style.metric.clone(),
                evidence: Vec::new(),
                fields: vec![
                    ("source".into(), record.source.clone()),
                    ("evaluation".into(), record.evaluation.clone()),
                    ("truncated".into(), fitted.truncated.to_string()),
                ],
            });
        }
    }
    if samples.is_empty() {
        return Err(DataError::NoSamples { path });
    }
    Ok(samples)
}

/// The style of a record by task and `evaluation`; `None` for the records L-Eval leaves to
/// people or an LLM.
fn style(task: &str, evaluation: &str) -> Result<Option<Style>, String> {
    let metric = match evaluation {
        "f1" => Metric::QaF1,
        "rouge" => Metric::RougeGeometricMean,
        "exam" => Metric::Exam {
            format: exam_format(task),
        },
        "human" | "LLM" => return Ok(None),
        other => {
            return Err(format!(
                "unknown evaluation `{other}` (expected f1, rouge, exam, human or LLM)"
            ));
        }
    };
    let style = if task.contains("topic") {
        Style {
            head: TOPIC_SYSTEM.to_owned(),
            answer_prefix: "",
            metric,
        }
    } else if evaluation == "exam" {
        let system = if task.contains("coursera") {
            COURSERA_SYSTEM
        } else {
            EXAM_SYSTEM
        };
        Style {
            head: format!("{system}{DOCUMENT_LABEL}"),
            answer_prefix: "Answer:",
            metric,
        }
    } else {
        Style {
            head: format!("{GENERAL_SYSTEM}{DOCUMENT_LABEL}"),
            answer_prefix: "",
            metric,
        }
    };
    Ok(Some(style))
}

/// How `exam` reads the answers of a task (L-Eval's `with_option_tasks`).
fn exam_format(task: &str) -> ExamFormat {
    if task.contains("coursera") {
        ExamFormat::MultipleChoice
    } else if task.contains("quality") || task.contains("tpo") {
        ExamFormat::SingleChoice
    } else {
        ExamFormat::FreeText
    }
}

/// The question of one instruction.
fn question(task: &str, evaluation: &str, instruction: &str, output: &str) -> String {
    if task.contains("topic") {
        instruction.to_owned()
    } else if evaluation == "exam" {
        format!(
            "Question: {instruction}.  Please directly give the answer without any additional output or explanation"
        )
    } else {
        let words = python::split(output).count();
        format!("Instruction: {instruction} \nAnswer this question with {words} words.")
    }
}

/// A document cut to fit, and whether it was cut.
struct Fitted<'a> {
    document: &'a str,
    truncated: bool,
}

/// The longest start of `document` (whole words, as L-Eval's `split(" ")` keeps them) with which
/// the longest of the record's prompts fits `max_context` less the generation length.
fn fit_document<'a>(
    document: &'a str,
    head: &dyn Fn(&str) -> String,
    questions: &[String],
    answer_prefix: &str,
    tokenizer: &dyn TaskTokenizer,
    max_context: usize,
    id: &str,
) -> Result<Fitted<'a>, DataError> {
    let does_not_fit = |reason: String| DataError::DoesNotFit {
        id: id.to_owned(),
        max_context,
        max_new_tokens: MAX_NEW_TOKENS,
        reason,
    };
    let tokens = |context: &str, question: &str| {
        tokenizer
            .prompt_tokens(context, question, answer_prefix)
            .map_err(|message| DataError::Tokenizer {
                id: id.to_owned(),
                message,
            })
    };
    let limit = max_context
        .checked_sub(MAX_NEW_TOKENS)
        .filter(|&limit| limit > 0)
        .ok_or_else(|| does_not_fit("the answer alone fills the context".into()))?;
    // The question that makes the prompt longest, measured without the document.
    let empty = head("");
    let mut longest = ("", 0);
    for question in questions {
        let overhead = tokens(&empty, question)?;
        if overhead > longest.1 {
            longest = (question, overhead);
        }
    }
    let (question, overhead) = longest;
    if tokens(&head(document), question)? <= limit {
        return Ok(Fitted {
            document,
            truncated: false,
        });
    }
    let budget = limit.saturating_sub(overhead);
    let mut dropped = 0;
    while let Some(words) = budget.checked_sub(dropped).filter(|&words| words > 0) {
        let cut = document
            .match_indices(' ')
            .nth(words - 1)
            .map_or(document, |(at, _)| &document[..at]);
        if tokens(&head(cut), question)? <= limit {
            return Ok(Fitted {
                document: cut,
                truncated: true,
            });
        }
        dropped += WORDS_STEP;
    }
    Err(does_not_fit(format!(
        "the prompt without its document takes {overhead} tokens"
    )))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::tasks::word_tokenizer::{TEMPLATE_TOKENS, WordTokenizer};

    /// A context large enough for every test document.
    const ROOMY: usize = 100_000;

    fn write_set(dir: &Path, task: &str, records: &[serde_json::Value]) {
        let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        std::fs::write(dir.join(format!("{task}.jsonl")), lines.join("\n")).unwrap();
    }

    fn record(evaluation: &str, input: &str, pairs: &[(&str, &str)]) -> serde_json::Value {
        let (instructions, outputs): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        json!({"instructions": instructions, "outputs": outputs, "input": input,
               "source": "src", "evaluation": evaluation})
    }

    #[test]
    fn exam_records_ask_one_question_per_instruction() {
        let dir = tempfile::tempdir().unwrap();
        let pairs = [("Why? (A) x (B) y", "(B) y"), ("Who? (A) p (B) q", "(A) p")];
        write_set(
            dir.path(),
            "quality",
            &[record("exam", "The story.", &pairs)],
        );
        let samples = load_leval(dir.path(), "quality", &WordTokenizer, ROOMY).unwrap();
        assert_eq!(samples.len(), 2);
        let first = &samples[0];
        assert_eq!((first.index, first.id.as_str()), (0, "quality.jsonl:1:0"));
        assert_eq!(first.task, "quality");
        assert_eq!(
            first.context,
            "Now you are given a very long document. Please follow the instruction based on \
             this document. For multi-choice questions, there is only a sinlge correct option. \
             Please only provide the letter corresponding to the answer (like A or B) when \
             answering. For other questions, please directly give the concise and accurate \
             answer. Document is as follows. The story."
        );
        assert_eq!(
            first.question,
            "Question: Why? (A) x (B) y.  Please directly give the answer without any \
             additional output or explanation"
        );
        assert_eq!(first.answer_prefix, "Answer:");
        assert_eq!(first.answers, vec!["(B) y".to_owned()]);
        assert_eq!(first.max_new_tokens, 512);
        assert_eq!(
            first.metric,
            Metric::Exam {
                format: ExamFormat::SingleChoice
            }
        );
        assert_eq!(
            first.fields,
            vec![
                ("source".to_owned(), "src".to_owned()),
                ("evaluation".to_owned(), "exam".to_owned()),
                ("truncated".to_owned(), "false".to_owned()),
            ]
        );
        assert_eq!(
            (samples[1].index, samples[1].id.as_str()),
            (1, "quality.jsonl:1:1")
        );
        assert_eq!(samples[1].answers, vec!["(A) p".to_owned()]);
    }

    #[test]
    fn open_ended_records_ask_for_the_references_length() {
        let dir = tempfile::tempdir().unwrap();
        write_set(
            dir.path(),
            "scientific_qa",
            &[
                record("human", "Skipped.", &[("Q0", "A0")]),
                record(
                    "f1",
                    "Paper text.",
                    &[("What data?", "public annotated tweets")],
                ),
                record("rouge", "Paper two.", &[("Summarize.", "A short one")]),
            ],
        );
        let samples = load_leval(dir.path(), "scientific_qa", &WordTokenizer, ROOMY).unwrap();
        assert_eq!(samples.len(), 2);
        let f1 = &samples[0];
        // The human-evaluated first line is skipped: index 0, line 2.
        assert_eq!((f1.index, f1.id.as_str()), (0, "scientific_qa.jsonl:2:0"));
        assert_eq!(
            f1.context,
            "Now you are given a very long document. Please follow the instruction after this \
             document. These instructions may include summarizing a document, answering \
             questions based on the document, or writing a required paragraph. Document is as \
             follows. Paper text."
        );
        // "public annotated tweets" has 3 words.
        assert_eq!(
            f1.question,
            "Instruction: What data? \nAnswer this question with 3 words."
        );
        assert_eq!((f1.answer_prefix.as_str(), &f1.metric), ("", &Metric::QaF1));
        assert_eq!(samples[1].metric, Metric::RougeGeometricMean);
        assert_eq!(samples[1].id, "scientific_qa.jsonl:3:0");
    }

    #[test]
    fn topic_retrieval_and_coursera_have_their_own_prompts() {
        let dir = tempfile::tempdir().unwrap();
        write_set(
            dir.path(),
            "topic_retrieval_longchat",
            &[record(
                "exam",
                "USER: topic one",
                &[("What is the first topic?", "topic one")],
            )],
        );
        let topic = &load_leval(
            dir.path(),
            "topic_retrieval_longchat",
            &WordTokenizer,
            ROOMY,
        )
        .unwrap()[0];
        assert!(
            topic
                .context
                .starts_with("Below is a record of our previous conversation")
        );
        assert!(
            topic
                .context
                .ends_with("Now the record start. USER: topic one")
        );
        assert_eq!(
            (topic.question.as_str(), topic.answer_prefix.as_str()),
            ("What is the first topic?", "")
        );
        assert_eq!(
            topic.metric,
            Metric::Exam {
                format: ExamFormat::FreeText
            }
        );
        write_set(
            dir.path(),
            "coursera",
            &[record("exam", "Lecture.", &[("Pick. A. x B. y", "AB")])],
        );
        let coursera = &load_leval(dir.path(), "coursera", &WordTokenizer, ROOMY).unwrap()[0];
        assert!(
            coursera
                .context
                .contains("there could be a sinlge correct option or multiple")
        );
        assert_eq!(
            coursera.metric,
            Metric::Exam {
                format: ExamFormat::MultipleChoice
            }
        );
    }

    #[test]
    fn long_documents_keep_their_first_words() {
        // Topic prompts: context = system prompt + document, question = the instruction, no
        // answer prefix; the word tokenizer adds 5 for the template.
        let system_words = TOPIC_SYSTEM.split_whitespace().count();
        let question = "Which topic?";
        let overhead = system_words + 2 + TEMPLATE_TOKENS;
        let dir = tempfile::tempdir().unwrap();
        let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
        write_set(
            dir.path(),
            "topic_x",
            &[record("exam", &words.join(" "), &[(question, "t")])],
        );
        // Room for 300 document words: the first try keeps exactly the first 300.
        let max_context = 512 + overhead + 300;
        let sample = &load_leval(dir.path(), "topic_x", &WordTokenizer, max_context).unwrap()[0];
        let expected = format!("{TOPIC_SYSTEM}{}", words[..300].join(" "));
        assert_eq!(sample.context, expected);
        assert_eq!(
            sample.fields[2],
            ("truncated".to_owned(), "true".to_owned())
        );
        // Words of two tokens each ("a\nb" is one word for L-Eval's split(" ")): with room for
        // 600 tokens the tries keep 600 words (1200 tokens), 350 (700), then 100 (200): fits.
        let pairs: Vec<String> = (0..1000).map(|i| format!("a{i}\nb{i}")).collect();
        write_set(
            dir.path(),
            "topic_y",
            &[record("exam", &pairs.join(" "), &[(question, "t")])],
        );
        let max_context = 512 + overhead + 600;
        let sample = &load_leval(dir.path(), "topic_y", &WordTokenizer, max_context).unwrap()[0];
        assert_eq!(
            sample.context,
            format!("{TOPIC_SYSTEM}{}", pairs[..100].join(" "))
        );
        // No room for any word.
        let err = load_leval(dir.path(), "topic_y", &WordTokenizer, 512 + overhead).unwrap_err();
        assert!(
            matches!(err, DataError::DoesNotFit { ref id, .. } if id == "topic_y.jsonl:1"),
            "{err}"
        );
    }

    #[test]
    fn bad_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_leval(dir.path(), "gsm100", &WordTokenizer, ROOMY).unwrap_err();
        assert!(matches!(err, DataError::Unsupported { .. }), "{err}");
        let err = load_leval(dir.path(), "quality", &WordTokenizer, ROOMY).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
        let mut uneven = record("f1", "Doc.", &[("Q", "A")]);
        uneven["outputs"] = json!(["A", "B"]);
        write_set(
            dir.path(),
            "uneven",
            &[record("f1", "Doc.", &[("Q", "A")]), uneven],
        );
        let err = load_leval(dir.path(), "uneven", &WordTokenizer, ROOMY).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("uneven.jsonl:2: 1 instructions but 2 outputs"),
            "{err}"
        );
        write_set(dir.path(), "odd", &[record("bleu", "Doc.", &[("Q", "A")])]);
        let err = load_leval(dir.path(), "odd", &WordTokenizer, ROOMY).unwrap_err();
        assert!(
            err.to_string()
                .contains("odd.jsonl:1: unknown evaluation `bleu`"),
            "{err}"
        );
        write_set(
            dir.path(),
            "judged",
            &[record("LLM", "Doc.", &[("Q", "A")])],
        );
        let err = load_leval(dir.path(), "judged", &WordTokenizer, ROOMY).unwrap_err();
        assert!(matches!(err, DataError::NoSamples { .. }), "{err}");
    }
}

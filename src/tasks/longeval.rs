//! LongChat's LongEval line retrieval (`DachengLi1/LongChat`, `longeval/`): the test-case jsonl
//! files (`{n}_lines.jsonl`) as [`TaskSample`]s.
//!
//! Each line's `prompt` is a header, `num_lines` lines `line <key>: REGISTER_CONTENT is <N>`,
//! then `Now the record is over. Tell me what is the <REGISTER_CONTENT> in line <key>? I need
//! the number.` The context is everything before `Now the record is over.`, the question the
//! rest; the answer is `expected_number`, scored as LongEval's `test_lines_one_sample` does (the
//! last number in the prediction, [`Metric::LastNumber`]); the evidence is the byte range of
//! `correct_line` (without its newline) in the context. LongEval generates up to 100 tokens.
//! Numbers may be JSON numbers or strings (the published files have both). Ids are
//! `{name}.jsonl:{line}`; fields `num_lines`, `token_size` (LongChat's LLaMA token count) and
//! `key` (the line asked for).

use std::path::Path;

use serde::Deserialize;

use super::jsonl;
use super::{DataError, Metric, TaskSample};

/// LongEval's `max_new_tokens` for line retrieval.
const MAX_NEW_TOKENS: usize = 100;

/// Where the question starts in a prompt.
const QUESTION_START: &str = "Now the record is over.";

/// A number written as a JSON number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Integer(u64),
    Text(String),
}

impl Number {
    fn text(&self) -> String {
        match self {
            Self::Integer(n) => n.to_string(),
            Self::Text(text) => text.trim().to_owned(),
        }
    }
}

/// One line of a LongEval file.
#[derive(Deserialize)]
struct Record {
    prompt: String,
    expected_number: Number,
    correct_line: String,
    #[serde(default)]
    num_lines: Option<Number>,
    #[serde(default)]
    token_size: Option<Number>,
}

/// The samples of LongEval file `{dir}/{name}.jsonl` (e.g. `200_lines`), in file order.
pub fn load_longeval(dir: &Path, name: &str) -> Result<Vec<TaskSample>, DataError> {
    let path = jsonl::set_file(dir, name, "LongEval files are named {n}_lines.jsonl")?;
    let mut samples = Vec::new();
    for (line, record) in jsonl::read_records::<Record>(&path)? {
        let sample =
            sample(&record, samples.len(), name, line).map_err(|reason| DataError::BadLine {
                path: path.clone(),
                line,
                reason,
            })?;
        samples.push(sample);
    }
    if samples.is_empty() {
        return Err(DataError::NoSamples { path });
    }
    Ok(samples)
}

/// The sample of one record, or what is wrong with it.
fn sample(record: &Record, index: usize, name: &str, line: usize) -> Result<TaskSample, String> {
    let answer = record.expected_number.text();
    if answer.is_empty() || !answer.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`expected_number` is not a number: `{answer}`"));
    }
    let split = record
        .prompt
        .rfind(QUESTION_START)
        .ok_or_else(|| format!("the prompt has no `{QUESTION_START}` before its question"))?;
    let (context, question) = record.prompt.split_at(split);
    let correct = record.correct_line.trim_end_matches('\n');
    let start = context
        .find(correct)
        .filter(|_| !correct.is_empty())
        .ok_or_else(|| format!("`correct_line` ({correct:?}) is not in the prompt's record"))?;
    let line_range = start..start + correct.len();
    let key = correct
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(':'))
        .map_or("", |(key, _)| key);
    let mut fields = Vec::new();
    if let Some(lines) = &record.num_lines {
        fields.push(("num_lines".to_owned(), lines.text()));
    }
    if let Some(tokens) = &record.token_size {
        fields.push(("token_size".to_owned(), tokens.text()));
    }
    fields.push(("key".to_owned(), key.to_owned()));
    Ok(TaskSample {
        index,
        id: format!("{name}.jsonl:{line}"),
        task: name.to_owned(),
        context: context.to_owned(),
        question: question.to_owned(),
        answer_prefix: String::new(),
        answers: vec![answer],
        max_new_tokens: MAX_NEW_TOKENS,
        metric: Metric::LastNumber,
        evidence: vec![line_range],
        fields,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PROMPT: &str = "Below is a record of lines.\n\nline a-one: REGISTER_CONTENT is <100>\nline b-two: REGISTER_CONTENT is <2416>\nline c-three: REGISTER_CONTENT is <300>\n\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line b-two? I need the number. ";

    fn write(dir: &Path, name: &str, records: &[serde_json::Value]) {
        let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        std::fs::write(dir.join(format!("{name}.jsonl")), lines.join("\n") + "\n").unwrap();
    }

    fn record() -> serde_json::Value {
        json!({"random_idx": ["b-two", 1], "expected_number": 2416, "num_lines": 3,
               "token_size": 77, "correct_line": "line b-two: REGISTER_CONTENT is <2416>\n",
               "prompt": PROMPT, "prompt_length": -1})
    }

    #[test]
    fn the_prompt_splits_before_the_question_and_marks_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut second = record();
        // The README's form: every value a string.
        for key in ["expected_number", "num_lines", "token_size"] {
            second[key] = json!(second[key].to_string());
        }
        write(dir.path(), "3_lines", &[record(), second]);
        let samples = load_longeval(dir.path(), "3_lines").unwrap();
        assert_eq!(samples.len(), 2);
        let first = &samples[0];
        assert_eq!(
            (first.index, first.id.as_str(), first.task.as_str()),
            (0, "3_lines.jsonl:1", "3_lines")
        );
        // "Below is a record of lines.\n\n" is 29 bytes, "line a-one: ... <100>\n" 38 more:
        // the asked line starts at 67 and is 38 bytes long.
        assert_eq!(first.evidence, vec![67..105]);
        assert_eq!(
            &first.context[67..105],
            "line b-two: REGISTER_CONTENT is <2416>"
        );
        assert!(first.context.ends_with("<300>\n\n"));
        assert_eq!(
            first.question,
            "Now the record is over. Tell me what is the <REGISTER_CONTENT> in line b-two? I \
             need the number. "
        );
        assert_eq!(first.answer_prefix, "");
        assert_eq!(first.answers, vec!["2416".to_owned()]);
        assert_eq!(
            (first.max_new_tokens, &first.metric),
            (100, &Metric::LastNumber)
        );
        let fields = vec![
            ("num_lines".to_owned(), "3".to_owned()),
            ("token_size".to_owned(), "77".to_owned()),
            ("key".to_owned(), "b-two".to_owned()),
        ];
        assert_eq!(first.fields, fields);
        assert_eq!(samples[1].answers, first.answers);
        assert_eq!(samples[1].fields, fields);
        assert_eq!(samples[1].id, "3_lines.jsonl:2");
    }

    #[test]
    fn bad_records_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut no_question = record();
        no_question["prompt"] = json!("line b-two: REGISTER_CONTENT is <2416>\nWhat is it?");
        let mut missing_line = record();
        missing_line["correct_line"] = json!("line z-nine: REGISTER_CONTENT is <1>\n");
        let mut not_a_number = record();
        not_a_number["expected_number"] = json!("24x");
        for (name, bad, reason) in [
            (
                "a",
                no_question,
                "the prompt has no `Now the record is over.`",
            ),
            (
                "b",
                missing_line,
                "`correct_line` (\"line z-nine: REGISTER_CONTENT is <1>\") is not in",
            ),
            (
                "c",
                not_a_number,
                "`expected_number` is not a number: `24x`",
            ),
        ] {
            write(dir.path(), name, &[record(), bad]);
            let err = load_longeval(dir.path(), name).unwrap_err().to_string();
            assert!(err.contains(&format!("{name}.jsonl:2: {reason}")), "{err}");
        }
        let err = load_longeval(dir.path(), "200_lines").unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
    }
}

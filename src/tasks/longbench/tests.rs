use std::path::Path;

use serde_json::json;

use super::*;
use crate::tasks::word_tokenizer::{TEMPLATE_TOKENS, WordTokenizer};

/// Writes `records` (one JSON value per line) to `{dir}/{name}.jsonl`.
fn write_set(dir: &Path, name: &str, records: &[serde_json::Value]) {
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(dir.join(format!("{name}.jsonl")), lines.join("\n") + "\n").unwrap();
}

fn record(id: &str, input: &str, context: &str, answers: &[&str]) -> serde_json::Value {
    json!({
        "input": input, "context": context, "answers": answers, "length": 1234,
        "dataset": "x", "language": "en", "all_classes": null, "_id": id,
    })
}

/// A context large enough for every test set.
const ROOMY: usize = 100_000;

#[test]
fn qasper_splits_like_kvpress() {
    let dir = tempfile::tempdir().unwrap();
    write_set(
        dir.path(),
        "qasper",
        &[
            record(
                "id-a",
                "What is X?",
                "X is a dataset.",
                &["a dataset", "data"],
            ),
            record("id-b", "Is it big?", "It is small.", &["no"]),
        ],
    );
    let samples = load_longbench(dir.path(), "qasper", &WordTokenizer, ROOMY).unwrap();
    assert_eq!(samples.len(), 2);
    let first = &samples[0];
    assert_eq!(
        (first.index, first.id.as_str(), first.task.as_str()),
        (0, "id-a", "qasper")
    );
    let rules = "Answer the question as concisely as you can, using a single phrase or sentence \
                 if possible. If the question cannot be answered based on the information in the \
                 article, write \"unanswerable\". If the question is a yes/no question, answer \
                 \"yes\", \"no\", or \"unanswerable\". Do not provide any explanation.";
    assert_eq!(
        first.context,
        format!(
            "You are given a scientific article and a question. {rules}\n\nArticle: X is a \
             dataset.\n\n Answer the question based on the above article as concisely as you \
             can, using a single phrase or sentence if possible. If the question cannot be \
             answered based on the information in the article, write \"unanswerable\". If the \
             question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not \
             provide any explanation.\n\n"
        )
    );
    assert_eq!(first.question, "Question: What is X?\n\n");
    assert_eq!(first.answer_prefix, "Answer:");
    assert_eq!(
        first.answers,
        vec!["a dataset".to_owned(), "data".to_owned()]
    );
    assert_eq!((first.max_new_tokens, &first.metric), (128, &Metric::QaF1));
    assert!(first.evidence.is_empty());
    assert_eq!(
        first.fields,
        vec![
            ("dataset".to_owned(), "qasper".to_owned()),
            ("length".to_owned(), "1234".to_owned()),
            ("truncated".to_owned(), "false".to_owned()),
        ]
    );
    assert_eq!((samples[1].index, samples[1].id.as_str()), (1, "id-b"));
}

#[test]
fn the_three_parts_rebuild_longbenchs_prompt() {
    // LongBench's passage_retrieval_en template, written out: context + question + prefix
    // must give it back around the record's fields.
    let dir = tempfile::tempdir().unwrap();
    write_set(
        dir.path(),
        "passage_retrieval_en",
        &[record("p", "ABSTRACT", "PARAS", &["Paragraph 3"])],
    );
    let sample =
        &load_longbench(dir.path(), "passage_retrieval_en", &WordTokenizer, ROOMY).unwrap()[0];
    let longbench = "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine \
                     which paragraph the abstract is from.\n\nPARAS\n\nThe following is an \
                     abstract.\n\nABSTRACT\n\nPlease enter the number of the paragraph that the \
                     abstract is from. The answer format must be like \"Paragraph 1\", \
                     \"Paragraph 2\", etc.\n\nThe answer is: ";
    let joined = format!(
        "{}{}{}",
        sample.context, sample.question, sample.answer_prefix
    );
    assert_eq!(joined, longbench);
    assert_eq!(
        sample.question,
        "ABSTRACT\n\nPlease enter the number of the paragraph that the abstract is from. The answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\n"
    );
    assert_eq!(
        (sample.max_new_tokens, &sample.metric),
        (32, &Metric::Retrieval)
    );
}

#[test]
fn trec_moves_the_type_cue_to_the_answer_prefix_and_scores_the_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut trec = record(
        "t",
        "Question: Who wrote Hamlet?\nType:",
        "Question: What is a cat?\nType: Entity",
        &["Human being"],
    );
    trec["all_classes"] = json!(["Entity", "Human being"]);
    write_set(dir.path(), "trec", &[trec]);
    let sample = &load_longbench(dir.path(), "trec", &WordTokenizer, ROOMY).unwrap()[0];
    assert_eq!(
        sample.context,
        "Please determine the type of the question below. Here are some examples of \
         questions.\n\nQuestion: What is a cat?\nType: Entity\n"
    );
    assert_eq!(sample.question, "Question: Who wrote Hamlet?\n");
    assert_eq!(sample.answer_prefix, "Type:");
    assert_eq!(
        sample.metric,
        Metric::FirstLine {
            metric: Box::new(Metric::Classification {
                classes: vec!["Entity".into(), "Human being".into()]
            })
        }
    );
    assert_eq!(sample.max_new_tokens, 64);
}

#[test]
fn lcc_asks_its_answer_prefix_as_the_question() {
    let dir = tempfile::tempdir().unwrap();
    write_set(
        dir.path(),
        "lcc",
        &[record("c", "", "int x = 1;\n", &["int y = 2;"])],
    );
    let sample = &load_longbench(dir.path(), "lcc", &WordTokenizer, ROOMY).unwrap()[0];
    assert_eq!(
        sample.context,
        "Please complete the code given below. \nint x = 1;\n"
    );
    assert_eq!(sample.question, "Next line of code:");
    assert_eq!(sample.answer_prefix, "");
    assert_eq!(sample.metric, Metric::CodeSim);
}

#[test]
fn longbench_e_files_add_the_length_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut short = record("s", "Q?", "C.", &["a"]);
    short["length"] = json!(3999);
    let mut middle = record("m", "Q?", "C.", &["a"]);
    middle["length"] = json!(4000);
    let mut long = record("l", "Q?", "C.", &["a"]);
    long["length"] = json!(8000);
    write_set(dir.path(), "hotpotqa_e", &[short, middle, long]);
    let samples = load_longbench(dir.path(), "hotpotqa_e", &WordTokenizer, ROOMY).unwrap();
    let buckets: Vec<&str> = samples
        .iter()
        .map(|s| {
            s.fields
                .iter()
                .find(|(k, _)| k == "length_bucket")
                .unwrap()
                .1
                .as_str()
        })
        .collect();
    assert_eq!(buckets, ["0-4k", "4-8k", "8k+"]);
    assert_eq!(samples[0].task, "hotpotqa_e");
    assert_eq!(
        samples[0].fields[0],
        ("dataset".to_owned(), "hotpotqa".to_owned())
    );
}

#[test]
fn long_contexts_lose_their_middle() {
    // hotpotqa: max_new_tokens 32. The template's context part has 45 words around the
    // record's context; the question "Question: Q?" 2 words; the prefix "Answer:" 1; the
    // template 7. With 100 context words the prompt takes 45 + 100 + 2 + 1 + 7 = 155 tokens.
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
    write_set(
        dir.path(),
        "hotpotqa",
        &[record("h", "Q?", &words.join(" "), &["a"])],
    );
    let full = &load_longbench(dir.path(), "hotpotqa", &WordTokenizer, ROOMY).unwrap()[0];
    let prompt = |s: &TaskSample| {
        WordTokenizer
            .prompt_tokens(&s.context, &s.question, &s.answer_prefix)
            .unwrap()
    };
    assert_eq!(prompt(full), 155);
    assert_eq!(WordTokenizer.text_tokens(&full.context).unwrap(), 145);
    // Context 132 → limit 132 - 32 = 100 prompt tokens: the context keeps 100 - 10 = 90 of
    // its 145 words, 45 from each end: 25 template words and w0..=w19, then w75..=w99 and
    // 20 template words.
    let cut = &load_longbench(dir.path(), "hotpotqa", &WordTokenizer, 132).unwrap()[0];
    assert_eq!(prompt(cut), 100);
    let kept: Vec<&str> = cut.context.split_whitespace().collect();
    let original: Vec<&str> = full.context.split_whitespace().collect();
    assert_eq!(kept.len(), 90);
    assert_eq!(kept[..45], original[..45]);
    assert_eq!(kept[45..], original[145 - 45..]);
    assert!(cut.context.contains("w19 w75"));
    assert!(
        cut.context
            .starts_with("Answer the question based on the given passages.")
    );
    assert!(cut.context.contains("w99\n\nAnswer the question"));
    assert!(!cut.context.contains(" w50 "));
    assert_eq!(cut.question, full.question);
    assert_eq!(
        cut.fields.last().unwrap(),
        &("truncated".to_owned(), "true".to_owned())
    );
}

#[test]
fn a_prompt_that_cannot_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_set(
        dir.path(),
        "hotpotqa",
        &[record("h", "Q?", "some context", &["a"])],
    );
    // The answer alone (32) fills a 32-token context.
    let err = load_longbench(dir.path(), "hotpotqa", &WordTokenizer, 32).unwrap_err();
    assert!(
        matches!(err, DataError::DoesNotFit { ref id, .. } if id == "h"),
        "{err}"
    );
    // 32 + the question, prefix and template (10 tokens) leave no room for any context word.
    let err = load_longbench(
        dir.path(),
        "hotpotqa",
        &WordTokenizer,
        32 + 2 + 1 + TEMPLATE_TOKENS,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the prompt without its context takes 10 tokens"),
        "{err}"
    );
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // Unknown and Chinese names.
    let err = load_longbench(dir.path(), "qasperr", &WordTokenizer, ROOMY).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("unknown LongBench set `qasperr` (known: narrativeqa, qasper,"),
        "{err}"
    );
    let err = load_longbench(dir.path(), "dureader", &WordTokenizer, ROOMY).unwrap_err();
    assert!(matches!(err, DataError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("Chinese"), "{err}");
    // Missing file.
    let err = load_longbench(dir.path(), "qasper_e", &WordTokenizer, ROOMY).unwrap_err();
    assert!(
        matches!(err, DataError::MissingFile { ref path, .. } if path.ends_with("qasper_e.jsonl")),
        "{err}"
    );
    // A bad second line.
    std::fs::write(
        dir.path().join("qasper.jsonl"),
        format!("{}\n{{\"input\": 1}}\n", record("a", "Q", "C", &["x"])),
    )
    .unwrap();
    let err = load_longbench(dir.path(), "qasper", &WordTokenizer, ROOMY).unwrap_err();
    assert!(matches!(err, DataError::BadLine { line: 2, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("qasper.jsonl:2: not a valid record"),
        "{err}"
    );
    // trec without labels.
    write_set(
        dir.path(),
        "trec",
        &[record("t", "Q\nType:", "C", &["Entity"])],
    );
    let err = load_longbench(dir.path(), "trec", &WordTokenizer, ROOMY).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("trec.jsonl:1: trec needs the labels in `all_classes`"),
        "{err}"
    );
    // An empty file.
    std::fs::write(dir.path().join("musique.jsonl"), "\n").unwrap();
    let err = load_longbench(dir.path(), "musique", &WordTokenizer, ROOMY).unwrap_err();
    assert!(matches!(err, DataError::NoSamples { .. }), "{err}");
}

//! LongBench and LongBench-E (`THUDM/LongBench`, `LongBench/`): the user's jsonl files as
//! [`TaskSample`]s.
//!
//! `{dir}/{dataset}.jsonl` holds LongBench's records (`input`, `context`, `answers`, `length`,
//! `dataset`, `language`, `all_classes`, `_id`); `{dataset}_e.jsonl` is the same dataset in
//! LongBench-E. Each record becomes one sample with LongBench's prompt split as kvpress splits
//! it (see `datasets`), LongBench's generation length and metric (trec, triviaqa and samsum
//! score the prediction's first line only). The model reads no empty question, so when a
//! record's question is empty (lcc, whose `input` is always empty) its answer prefix,
//! `Next line of code:`, becomes the question.
//!
//! A prompt longer than the model's context less the generation length is cut as LongBench's
//! `pred.py` cuts it: tokens removed from the middle, keeping the first and last halves, here
//! of the context (which holds the instructions before and after the document) so that the
//! question stays whole. Fields: `dataset`, `length` (LongBench's word or character count),
//! LongBench-E's `length_bucket` (`0-4k`, `4-8k`, `8k+`, as its `scorer_e` groups), and
//! `truncated`.
//!
//! LongBench's Chinese datasets (multifieldqa_zh, dureader, vcsum, lsht, passage_retrieval_zh)
//! are refused: their metrics segment words with jieba, which judgeq does not have.

mod datasets;
mod fit;

use std::path::Path;

use serde::Deserialize;

use super::jsonl;
use super::{DataError, Metric, TaskSample, TaskTokenizer};
use datasets::{CHINESE, DATASETS, Dataset, Scoring};

/// One line of a LongBench file.
#[derive(Deserialize)]
struct Record {
    input: String,
    context: String,
    answers: Vec<String>,
    #[serde(default)]
    length: Option<u64>,
    #[serde(default)]
    all_classes: Option<Vec<String>>,
    #[serde(rename = "_id")]
    id: String,
}

/// The samples of LongBench set `name` (`qasper`, or `qasper_e` for LongBench-E) from
/// `{dir}/{name}.jsonl`, in file order, each cut to fit `max_context` tokens of `tokenizer`'s
/// model with room for its answer.
pub fn load_longbench(
    dir: &Path,
    name: &str,
    tokenizer: &dyn TaskTokenizer,
    max_context: usize,
) -> Result<Vec<TaskSample>, DataError> {
    let (dataset, extended) = find_dataset(name)?;
    let path = jsonl::set_file(
        dir,
        name,
        "LongBench files are named {dataset}.jsonl, LongBench-E files {dataset}_e.jsonl",
    )?;
    let mut samples = Vec::new();
    for (line, record) in jsonl::read_records::<Record>(&path)? {
        let metric = metric(dataset, &record).map_err(|reason| DataError::BadLine {
            path: path.clone(),
            line,
            reason,
        })?;
        let mut sample = prompt(dataset, samples.len(), name, &record, metric);
        let truncated = fit::fit_middle(&mut sample, tokenizer, max_context)?;
        if let Some(length) = record.length {
            sample.fields.push(("length".into(), length.to_string()));
            if extended {
                sample
                    .fields
                    .push(("length_bucket".into(), length_bucket(length).into()));
            }
        }
        sample
            .fields
            .push(("truncated".into(), truncated.to_string()));
        samples.push(sample);
    }
    if samples.is_empty() {
        return Err(DataError::NoSamples { path });
    }
    Ok(samples)
}

/// The dataset a set name names, and whether it is LongBench-E's.
fn find_dataset(name: &str) -> Result<(&'static Dataset, bool), DataError> {
    let (base, extended) = match name.strip_suffix("_e") {
        Some(base) => (base, true),
        None => (name, false),
    };
    if CHINESE.contains(&base) {
        return Err(DataError::Unsupported {
            benchmark: "LongBench",
            name: name.to_owned(),
            reason: "it is one of LongBench's Chinese datasets, whose metrics segment words \
                     with jieba; judgeq loads the English ones"
                .into(),
        });
    }
    match DATASETS.iter().find(|dataset| dataset.name == base) {
        Some(dataset) => Ok((dataset, extended)),
        None => Err(DataError::UnknownSet {
            benchmark: "LongBench",
            name: name.to_owned(),
            known: format!(
                "{}; add _e for LongBench-E",
                DATASETS.map(|dataset| dataset.name).join(", ")
            ),
        }),
    }
}

/// The record's metric, or why the record cannot be scored.
fn metric(dataset: &Dataset, record: &Record) -> Result<Metric, String> {
    let metric = match dataset.scoring {
        Scoring::QaF1 => Metric::QaF1,
        Scoring::RougeL => Metric::RougeL,
        Scoring::Retrieval => Metric::Retrieval,
        Scoring::Count => Metric::Count,
        Scoring::CodeSim => Metric::CodeSim,
        Scoring::Classification => match &record.all_classes {
            Some(classes) if !classes.is_empty() => Metric::Classification {
                classes: classes.clone(),
            },
            _ => {
                return Err(format!(
                    "{} needs the labels in `all_classes`",
                    dataset.name
                ));
            }
        },
    };
    Ok(if dataset.first_line {
        Metric::FirstLine {
            metric: Box::new(metric),
        }
    } else {
        metric
    })
}

/// The untruncated sample of a record.
fn prompt(
    dataset: &Dataset,
    index: usize,
    task: &str,
    record: &Record,
    metric: Metric,
) -> TaskSample {
    let input = record
        .input
        .strip_suffix(dataset.input_suffix)
        .unwrap_or(&record.input);
    let question = dataset.question.replace("{input}", input);
    let (question, answer_prefix) = if question.trim().is_empty() {
        (dataset.answer_prefix.trim().to_owned(), String::new())
    } else {
        (question, dataset.answer_prefix.to_owned())
    };
    TaskSample {
        index,
        id: record.id.clone(),
        task: task.to_owned(),
        context: dataset.context.replace("{context}", &record.context),
        question,
        answer_prefix,
        answers: record.answers.clone(),
        max_new_tokens: dataset.max_new_tokens,
        metric,
        evidence: Vec::new(),
        fields: vec![("dataset".into(), dataset.name.into())],
    }
}

/// LongBench-E's length groups.
fn length_bucket(length: u64) -> &'static str {
    match length {
        0..4000 => "0-4k",
        4000..8000 => "4-8k",
        _ => "8k+",
    }
}

#[cfg(test)]
mod tests;

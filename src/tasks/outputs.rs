//! The files of a run, all derived from its journal and rewritten whole whenever the run stops:
//! kvpress's evaluation layout (a folder per method and budget with `predictions.csv`,
//! `metrics.json` and `config.yaml`), the summary in the paper's layout (`summary.md`,
//! `summary.csv`), the per-sample hit rates and scores (`samples.csv`), per layer the evidence
//! kept (`evidence_by_layer.csv`) and the hit rate (`hit_rate_by_layer.csv`), and each method
//! against SnapKV sample by sample (`paired.csv`, also a section of `summary.md`).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::export::{Overwrite, write_new};
use crate::policy::{AskedBudget, Ratio};
use crate::session::QuestionPlacement;
use crate::tasks::journal::{MethodRecord, RunHeader, SampleResult};
use crate::tasks::paired::{paired_csv, paired_markdown, paired_rows};
use crate::tasks::run_error::RunError;
use crate::tasks::tables::{
    FULL_KV, Summary, TaskSummaryRow, by_length_markdown, summarize, summary_markdown,
};

/// Summary file names, besides the per-method folders.
pub const SUMMARY_FILES: [&str; 6] = [
    "summary.md",
    "summary.csv",
    "samples.csv",
    "evidence_by_layer.csv",
    "hit_rate_by_layer.csv",
    "paired.csv",
];

/// Writes every derived file of the run into `dir` (replacing earlier versions of them) and
/// returns the summary.
pub fn write_outputs(
    dir: &Path,
    header: &RunHeader,
    results: &[SampleResult],
) -> Result<Summary, RunError> {
    let summary = summarize(header, results);
    let mut sorted: Vec<&SampleResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.index);
    let replace = Overwrite::Replace;
    let paired = paired_rows(header, results);
    let markdown = summary_markdown(header, &summary)
        + &paired_markdown(header, &paired)
        + &by_length_markdown(header, results);
    write_new(&dir.join("summary.md"), markdown.as_bytes(), replace)?;
    write_new(
        &dir.join("paired.csv"),
        paired_csv(&paired).as_bytes(),
        replace,
    )?;
    write_new(&dir.join("summary.csv"), &summary_csv(&summary)?, replace)?;
    write_new(&dir.join("samples.csv"), &samples_csv(&sorted)?, replace)?;
    write_new(
        &dir.join("evidence_by_layer.csv"),
        &by_layer_csv(&summary, "evidence_kept", |row| &row.evidence_kept_by_layer)?,
        replace,
    )?;
    write_new(
        &dir.join("hit_rate_by_layer.csv"),
        &by_layer_csv(&summary, "hit_rate", |row| &row.hit_rate_by_layer)?,
        replace,
    )?;
    let full = MethodRecord {
        id: FULL_KV.into(),
        label: "Full KV".into(),
        policy: crate::policy::PolicyId::FULL_KV,
        settings: crate::policy::PolicySettings::default(),
    };
    write_press_folder(dir, header, &sorted, &full, None)?;
    for method in &header.methods {
        for budget in header.asked() {
            write_press_folder(dir, header, &sorted, method, Some(budget))?;
        }
    }
    Ok(summary)
}

/// kvpress's folder name for one method at one budget:
/// `{task_set}__{data_dir}__{model}__{method}__b{budget}__query_aware`, or `__{ratio}` (two
/// decimals, as kvpress writes its compression ratio) when budgets were asked as ratios. The
/// `__query_aware` suffix says that the question is inside the compressed prompt; it is left out
/// when the question is placed after eviction, as kvpress leaves it out when it compresses the
/// context alone.
pub fn press_folder_name(header: &RunHeader, method: &str, budget: Option<AskedBudget>) -> String {
    let model = header.model.id.replace(['/', '\\'], "--");
    let budget = match budget {
        None => String::new(),
        Some(AskedBudget::Entries(b)) => format!("__b{b}"),
        Some(AskedBudget::Removed(r)) => format!("__{r}"),
    };
    let query_aware = if header.placement == QuestionPlacement::AfterEviction {
        ""
    } else {
        "__query_aware"
    };
    format!(
        "{}__{}__{}__{}{}{query_aware}",
        header.task_set, header.data_dir, model, method, budget
    )
}

/// One method's folder: predictions, metrics and config.
fn write_press_folder(
    dir: &Path,
    header: &RunHeader,
    results: &[&SampleResult],
    method: &MethodRecord,
    budget: Option<AskedBudget>,
) -> Result<PathBuf, RunError> {
    let folder = dir.join(press_folder_name(header, &method.id, budget));
    std::fs::create_dir_all(&folder).map_err(|e| RunError::io(&folder, e))?;
    let replace = Overwrite::Replace;
    write_new(
        &folder.join("predictions.csv"),
        &predictions_csv(results, &method.id, budget)?,
        replace,
    )?;
    let metrics = press_metrics(results, &method.id, budget);
    let metrics =
        serde_json::to_vec_pretty(&metrics).map_err(|e| RunError::Table(e.to_string()))?;
    write_new(&folder.join("metrics.json"), &metrics, replace)?;
    write_new(
        &folder.join("config.yaml"),
        config_yaml(header, method, budget).as_bytes(),
        replace,
    )?;
    Ok(folder)
}

/// A method's prediction and score on one sample, with its cell when it has one.
fn prediction<'a>(
    result: &'a SampleResult,
    method: &str,
    budget: Option<AskedBudget>,
) -> Option<(&'a str, f64, Option<&'a crate::tasks::journal::CellResult>)> {
    match budget {
        None => result
            .full
            .as_ref()
            .map(|p| (p.predicted_answer.as_str(), p.score, None)),
        Some(b) => result
            .cells
            .iter()
            .find(|c| c.method == method && c.asked() == b)
            .map(|c| (c.predicted_answer.as_str(), c.score, Some(c))),
    }
}

/// `predictions.csv`: every column of the sample but the context, then the prediction (its
/// budget the entries kept on that sample, `ratio` the ratio asked, if one was).
fn predictions_csv(
    results: &[&SampleResult],
    method: &str,
    budget: Option<AskedBudget>,
) -> Result<Vec<u8>, RunError> {
    let field_names: Vec<String> = results
        .first()
        .map(|r| r.fields.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["index", "id", "task"];
    head.extend(field_names.iter().map(String::as_str));
    head.extend([
        "question",
        "answer_prefix",
        "answer",
        "predicted_answer",
        "score",
        "compression_ratio",
        "budget",
        "hit_rate",
        "evidence_kept",
        "ratio",
    ]);
    out.write_record(&head).map_err(csv_error)?;
    for result in results {
        let Some((predicted, score, cell)) = prediction(result, method, budget) else {
            continue;
        };
        let mut record = vec![
            result.index.to_string(),
            result.id.clone(),
            result.task.clone(),
        ];
        for name in &field_names {
            let value = result
                .fields
                .iter()
                .find(|(k, _)| k == name)
                .map_or(String::new(), |(_, v)| v.clone());
            record.push(value);
        }
        record.extend([
            result.question.clone(),
            result.answer_prefix.clone(),
            serde_json::to_string(&result.answers).unwrap_or_default(),
            predicted.to_owned(),
            score.to_string(),
            cell.map_or("0".into(), |c| c.compression_ratio.to_string()),
            cell.map_or(String::new(), |c| c.budget.to_string()),
            cell.map_or(String::new(), |c| c.hit_rate.to_string()),
            cell.and_then(|c| c.evidence_kept)
                .map_or(String::new(), |e| e.to_string()),
            ratio_cell(budget.and_then(AskedBudget::ratio)),
        ]);
        out.write_record(&record).map_err(csv_error)?;
    }
    out.into_inner().map_err(|e| RunError::Table(e.to_string()))
}

/// kvpress's `metrics.json`: `{task: {metric: score × 100, "samples": n}}`.
fn press_metrics(
    results: &[&SampleResult],
    method: &str,
    budget: Option<AskedBudget>,
) -> serde_json::Value {
    let mut tasks: Vec<&str> = results.iter().map(|r| r.task.as_str()).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let mut map = serde_json::Map::new();
    for task in tasks {
        let of_task: Vec<&&SampleResult> = results
            .iter()
            .filter(|r| r.task == task && r.skipped.is_none())
            .collect();
        let scores: Vec<f64> = of_task
            .iter()
            .filter_map(|r| prediction(r, method, budget).map(|(_, s, _)| s))
            .collect();
        let Some(key) = of_task.first().map(|r| r.metric.as_str()) else {
            continue;
        };
        if scores.is_empty() {
            continue;
        }
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        map.insert(
            task.to_owned(),
            json!({ key: mean * 100.0, "samples": scores.len() }),
        );
    }
    serde_json::Value::Object(map)
}

/// kvpress's `config.yaml`: the run's settings as flat `key: value` lines. Strings are written
/// as JSON strings, which YAML reads as double-quoted scalars.
fn config_yaml(header: &RunHeader, method: &MethodRecord, budget: Option<AskedBudget>) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut lines = vec![
        format!("dataset: {}", quote(&header.task_set)),
        format!("data_dir: {}", quote(&header.data_dir)),
        format!("model: {}", quote(&header.model.id)),
        format!("model_sha256: {}", quote(&header.model.weights_sha256)),
        format!("press_name: {}", quote(&method.id)),
        format!("press_label: {}", quote(&method.label)),
        format!("policy: {}", quote(method.policy.id())),
        format!(
            "budget: {}",
            match budget {
                Some(AskedBudget::Entries(b)) => b.to_string(),
                _ => "null".into(),
            }
        ),
        format!(
            "compression_ratio: {}",
            budget
                .and_then(AskedBudget::ratio)
                .map_or("null".into(), |r| r.removed().to_string())
        ),
        // kvpress's flag: whether the question is in the context when it is compressed.
        format!(
            "query_aware: {}",
            header.placement != QuestionPlacement::AfterEviction
        ),
        format!("question_placement: {}", quote(header.placement.label())),
        format!("window: {}", header.window),
        format!(
            "soft_tokens: {}",
            header
                .soft_tokens
                .as_ref()
                .map_or("null".into(), |s| quote(&format!(
                    "{} (sha256 {})",
                    s.source, s.sha256
                )))
        ),
        format!("samples: {}", header.samples),
        format!("shard: {}", quote(&header.shard.to_string())),
        format!("program_version: {}", quote(&header.program_version)),
    ];
    if budget.is_some()
        && let Ok(serde_json::Value::Object(settings)) = serde_json::to_value(&method.settings)
    {
        for (key, value) in settings {
            lines.push(format!("policy_{key}: {value}"));
        }
    }
    if let serde_json::Value::Object(spec) = &header.spec {
        for (key, value) in spec {
            lines.push(format!("task_{key}: {value}"));
        }
    }
    lines.join("\n") + "\n"
}

/// A ratio's CSV cell: the number, or empty when the budget was asked in entries.
fn ratio_cell(ratio: Option<Ratio>) -> String {
    ratio.map_or(String::new(), |r| r.removed().to_string())
}

/// `summary.csv`: one row per method, budget and task, plus the average over tasks (with a
/// ratio, `budget` is the mean kept and `ratio` the row's key).
fn summary_csv(summary: &Summary) -> Result<Vec<u8>, RunError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "method",
        "label",
        "budget",
        "task",
        "score",
        "hit_rate",
        "hit_rate_pooled_oracle",
        "mass_kept",
        "evidence_kept",
        "matched_prefix",
        "samples",
        "ratio",
    ])
    .map_err(csv_error)?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for row in &summary.rows {
        let tasks = row
            .by_task
            .iter()
            .map(|(t, s)| (t.as_str(), *s))
            .chain([("average", row.score)]);
        for (task, score) in tasks {
            out.write_record([
                row.method.clone(),
                row.label.clone(),
                row.budget.to_string(),
                task.to_owned(),
                score.to_string(),
                opt(row.hit_rate),
                opt(row.hit_rate_pooled_oracle),
                opt(row.mass_kept),
                opt(row.evidence_kept),
                opt(row.matched_prefix),
                row.samples.to_string(),
                ratio_cell(row.ratio),
            ])
            .map_err(csv_error)?;
        }
    }
    out.into_inner().map_err(|e| RunError::Table(e.to_string()))
}

/// `samples.csv`: every sample × method × budget with its score and hit rates.
fn samples_csv(results: &[&SampleResult]) -> Result<Vec<u8>, RunError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "index",
        "id",
        "task",
        "prompt_tokens",
        "method",
        "budget",
        "score",
        "hit_rate",
        "hit_rate_pooled_oracle",
        "mass_kept",
        "evidence_kept",
        "matched_prefix",
        "skipped",
        "ratio",
    ])
    .map_err(csv_error)?;
    for r in results {
        let base = [
            r.index.to_string(),
            r.id.clone(),
            r.task.clone(),
            r.prompt_tokens.to_string(),
        ];
        if let Some(why) = &r.skipped {
            let mut record = base.to_vec();
            record.extend([
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                why.clone(),
                "".into(),
            ]);
            out.write_record(&record).map_err(csv_error)?;
            continue;
        }
        if let Some(full) = &r.full {
            let mut record = base.to_vec();
            record.extend([
                FULL_KV.into(),
                "".into(),
                full.score.to_string(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
            ]);
            out.write_record(&record).map_err(csv_error)?;
        }
        for c in &r.cells {
            let mut record = base.to_vec();
            record.extend([
                c.method.clone(),
                c.budget.to_string(),
                c.score.to_string(),
                c.hit_rate.to_string(),
                c.hit_rate_pooled_oracle.to_string(),
                c.mass_kept.to_string(),
                c.evidence_kept.map_or(String::new(), |e| e.to_string()),
                c.matched_prefix.to_string(),
                String::new(),
                ratio_cell(c.ratio),
            ]);
            out.write_record(&record).map_err(csv_error)?;
        }
    }
    out.into_inner().map_err(|e| RunError::Table(e.to_string()))
}

/// A per-layer table: `method, budget, layer, {column}, ratio`, one line per method, budget and
/// layer of `by_layer` (`evidence_by_layer.csv`: the mean share of evidence tokens kept;
/// `hit_rate_by_layer.csv`: the mean hit rate against the raw oracle).
fn by_layer_csv(
    summary: &Summary,
    column: &str,
    by_layer: impl Fn(&TaskSummaryRow) -> &Vec<f64>,
) -> Result<Vec<u8>, RunError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["method", "budget", "layer", column, "ratio"])
        .map_err(csv_error)?;
    for row in &summary.rows {
        for (layer, value) in by_layer(row).iter().enumerate() {
            out.write_record([
                row.method.clone(),
                row.budget.to_string(),
                layer.to_string(),
                value.to_string(),
                ratio_cell(row.ratio),
            ])
            .map_err(csv_error)?;
        }
    }
    out.into_inner().map_err(|e| RunError::Table(e.to_string()))
}

fn csv_error(e: csv::Error) -> RunError {
    RunError::Table(e.to_string())
}

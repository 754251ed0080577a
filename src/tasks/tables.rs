//! The tables of a run, computed from its journal: scores in the paper's layout (rows methods,
//! columns budgets, Full KV as the upper bound), per task, hit rates against the oracle, and the
//! share of the evidence (needle) tokens each method keeps, overall and per layer.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::policy::{AskedBudget, Ratio};
use crate::tasks::journal::{RunHeader, SampleResult};

/// The method id under which the full-cache answers are reported.
pub const FULL_KV: &str = "full";

/// Mean of a set of values, or `None` for none.
fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (count > 0).then(|| sum / count as f64)
}

/// One method at one budget over the run (Full KV has one row per budget, all equal).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskSummaryRow {
    /// Method id (`full` for Full KV).
    pub method: String,
    /// Method name for people.
    pub label: String,
    /// KV entries kept per layer and head (0 for Full KV); with a ratio, the mean over the
    /// samples (rounded), as each sample keeps its own share.
    pub budget: usize,
    /// The ratio removed, when budgets were asked as ratios (the row's grouping key).
    pub ratio: Option<Ratio>,
    /// Mean score per task, in `[0, 1]`.
    pub by_task: BTreeMap<String, f64>,
    /// Mean over tasks of the per-task means (RULER's average), in `[0, 1]`.
    pub score: f64,
    /// Mean hit rate against the raw oracle (`None` for Full KV).
    pub hit_rate: Option<f64>,
    /// The same per layer (empty for Full KV and for journals that did not record it).
    pub hit_rate_by_layer: Vec<f64>,
    /// Mean hit rate against the pooled oracle (a variant).
    pub hit_rate_pooled_oracle: Option<f64>,
    /// Mean share of the decoded tokens' attention kept.
    pub mass_kept: Option<f64>,
    /// Mean share of evidence tokens kept, over samples that have evidence.
    pub evidence_kept: Option<f64>,
    /// The same per layer.
    pub evidence_kept_by_layer: Vec<f64>,
    /// Mean leading tokens shared with the full-cache answer.
    pub matched_prefix: Option<f64>,
    /// Samples behind the row.
    pub samples: usize,
}

impl TaskSummaryRow {
    /// The budget as it was asked (Full KV's row reads as 0 entries).
    pub fn asked(&self) -> AskedBudget {
        AskedBudget::of(self.budget, self.ratio)
    }

    /// The budget for people: `64`, or `ratio 0.50 (kept 742)` (the mean kept).
    pub fn budget_label(&self) -> String {
        self.asked().label_kept(self.budget)
    }
}

/// Everything the summary files show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Samples evaluated.
    pub evaluated: usize,
    /// Samples skipped, with their ids and reasons.
    pub skipped: Vec<(String, String)>,
    /// Tasks in the run, sorted.
    pub tasks: Vec<String>,
    /// Full KV first (one row, budget 0), then every method at every budget, in the header's
    /// order.
    pub rows: Vec<TaskSummaryRow>,
}

/// The summary of `results` (any order) for the run `header` describes.
pub fn summarize(header: &RunHeader, results: &[SampleResult]) -> Summary {
    let mut sorted: Vec<&SampleResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.index);
    let evaluated: Vec<&SampleResult> = sorted
        .iter()
        .copied()
        .filter(|r| r.skipped.is_none() && r.full.is_some())
        .collect();
    let skipped = sorted
        .iter()
        .filter_map(|r| r.skipped.as_ref().map(|why| (r.id.clone(), why.clone())))
        .collect();
    let mut tasks: Vec<String> = evaluated.iter().map(|r| r.task.clone()).collect();
    tasks.sort();
    tasks.dedup();

    let by_task = |score_of: &dyn Fn(&SampleResult) -> Option<f64>| -> BTreeMap<String, f64> {
        tasks
            .iter()
            .filter_map(|task| {
                let m = mean(
                    evaluated
                        .iter()
                        .filter(|r| &r.task == task)
                        .filter_map(|r| score_of(r)),
                )?;
                Some((task.clone(), m))
            })
            .collect()
    };
    let average =
        |per_task: &BTreeMap<String, f64>| mean(per_task.values().copied()).unwrap_or(0.0);

    let mut rows = Vec::new();
    let full_by_task = by_task(&|r| r.full.as_ref().map(|p| p.score));
    rows.push(TaskSummaryRow {
        method: FULL_KV.into(),
        label: "Full KV".into(),
        budget: 0,
        ratio: None,
        score: average(&full_by_task),
        by_task: full_by_task,
        hit_rate: None,
        hit_rate_by_layer: Vec::new(),
        hit_rate_pooled_oracle: None,
        mass_kept: None,
        evidence_kept: None,
        evidence_kept_by_layer: Vec::new(),
        matched_prefix: None,
        samples: evaluated.len(),
    });
    for method in &header.methods {
        for asked in header.asked() {
            let cells: Vec<_> = evaluated
                .iter()
                .filter_map(|r| {
                    r.cells
                        .iter()
                        .find(|c| c.method == method.id && c.asked() == asked)
                        .map(|c| (*r, c))
                })
                .collect();
            let per_task = by_task(&|r| {
                r.cells
                    .iter()
                    .find(|c| c.method == method.id && c.asked() == asked)
                    .map(|c| c.score)
            });
            let with_evidence: Vec<_> = cells
                .iter()
                .filter_map(|(_, c)| c.evidence_kept.map(|e| (e, &c.evidence_kept_by_layer)))
                .collect();
            let evidence_kept_by_layer =
                mean_per_layer(with_evidence.iter().map(|(_, by)| by.as_slice()));
            let hit_rate_by_layer =
                mean_per_layer(cells.iter().map(|(_, c)| c.hit_rate_by_layer.as_slice()));
            rows.push(TaskSummaryRow {
                method: method.id.clone(),
                label: method.label.clone(),
                budget: mean(cells.iter().map(|(_, c)| c.budget as f64))
                    .map_or(0, |m| m.round() as usize),
                ratio: asked.ratio(),
                score: average(&per_task),
                by_task: per_task,
                hit_rate: mean(cells.iter().map(|(_, c)| f64::from(c.hit_rate))),
                hit_rate_by_layer,
                hit_rate_pooled_oracle: mean(
                    cells
                        .iter()
                        .map(|(_, c)| f64::from(c.hit_rate_pooled_oracle)),
                ),
                mass_kept: mean(cells.iter().map(|(_, c)| f64::from(c.mass_kept))),
                evidence_kept: mean(with_evidence.iter().map(|(e, _)| f64::from(*e))),
                evidence_kept_by_layer,
                matched_prefix: mean(cells.iter().map(|(_, c)| c.matched_prefix as f64)),
                samples: cells.len(),
            });
        }
    }
    Summary {
        evaluated: evaluated.len(),
        skipped,
        tasks,
        rows,
    }
}

/// The mean over `samples` of each layer's value, as many layers as the first sample has (an
/// empty list without samples).
fn mean_per_layer<'a>(samples: impl Iterator<Item = &'a [f32]> + Clone) -> Vec<f64> {
    let layers = samples.clone().next().map_or(0, <[f32]>::len);
    (0..layers)
        .map(|l| {
            mean(
                samples
                    .clone()
                    .filter_map(|by| by.get(l).map(|&v| f64::from(v))),
            )
            .unwrap_or(0.0)
        })
        .collect()
}

/// The scores of runs whose samples have several `length` values, one table per length (rows
/// methods, columns budgets, Full KV first); empty otherwise.
pub fn by_length_markdown(header: &RunHeader, results: &[SampleResult]) -> String {
    let length_of = |r: &SampleResult| {
        r.fields
            .iter()
            .find(|(k, _)| k == "length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let mut lengths: Vec<usize> = results.iter().filter_map(length_of).collect();
    lengths.sort_unstable();
    lengths.dedup();
    if lengths.len() < 2 {
        return String::new();
    }
    let mut out = String::from("## Score by context length (×100)\n\n");
    for length in lengths {
        let subset: Vec<SampleResult> = results
            .iter()
            .filter(|r| length_of(r) == Some(length))
            .cloned()
            .collect();
        let summary = summarize(header, &subset);
        out.push_str(&format!(
            "### {length} tokens ({} samples)\n\n| method |",
            summary.evaluated
        ));
        let budgets = header.asked();
        for b in &budgets {
            out.push_str(&format!(" {b} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(budgets.len()));
        out.push('\n');
        if let Some(full) = summary.rows.first() {
            out.push_str(&format!("| {} |", full.label));
            for _ in &budgets {
                out.push_str(&format!(" {} |", percent(Some(full.score))));
            }
            out.push('\n');
        }
        for method in &header.methods {
            out.push_str(&format!("| {} |", method.label));
            for &b in &budgets {
                let row = summary
                    .rows
                    .iter()
                    .find(|r| r.method == method.id && r.asked() == b);
                out.push_str(&format!(" {} |", percent(row.map(|r| r.score))));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// A value in `[0, 1]` as a percentage with one decimal, or a dash.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1}", v * 100.0))
}

/// The summary as Markdown: the paper's table (rows methods, columns budgets) for the score,
/// the hit rates and the evidence kept, then the per-task scores.
pub fn summary_markdown(header: &RunHeader, summary: &Summary) -> String {
    let mut out = format!(
        "# {} {} on {}\n\n{} samples evaluated, {} skipped; shard {}; soft tokens: {}; question \
         placement: {}.\n\n",
        header.task_set,
        header.data_dir,
        header.model.id,
        summary.evaluated,
        summary.skipped.len(),
        header.shard,
        header.soft_tokens.as_ref().map_or("none".to_owned(), |s| {
            match &s.unfinished_training {
                Some(note) => format!("{} (warning: {note})", s.source),
                None => s.source.clone(),
            }
        }),
        header.placement,
    );
    let budgets = header.asked();
    let table = |title: &str, value: &dyn Fn(&TaskSummaryRow) -> Option<f64>, with_full: bool| {
        let mut t = format!("## {title}\n\n| method |");
        for b in &budgets {
            t.push_str(&format!(" {b} |"));
        }
        t.push_str("\n|---|");
        t.push_str(&"---:|".repeat(budgets.len()));
        t.push('\n');
        if with_full && let Some(full) = summary.rows.first() {
            t.push_str(&format!("| {} (upper bound) |", full.label));
            for _ in &budgets {
                t.push_str(&format!(" {} |", percent(value(full))));
            }
            t.push('\n');
        }
        for method in &header.methods {
            t.push_str(&format!("| {} |", method.label));
            for &b in &budgets {
                let row = summary
                    .rows
                    .iter()
                    .find(|r| r.method == method.id && r.asked() == b);
                t.push_str(&format!(" {} |", percent(row.and_then(value))));
            }
            t.push('\n');
        }
        t.push('\n');
        t
    };
    out.push_str(&table(
        &format!(
            "Score (×100, mean over tasks), by {}",
            if header.ratios.is_empty() {
                "KV budget per layer and head"
            } else {
                "ratio of each prompt's KV entries removed"
            }
        ),
        &|r| Some(r.score),
        true,
    ));
    out.push_str(&table(
        "Hit rate against the oracle (%; the decoded tokens' raw attention, the Judge Q paper's critical-KV hit rate)",
        &|r| r.hit_rate,
        false,
    ));
    out.push_str(&table(
        "Hit rate against the pooled oracle (%; a variant: the oracle pooled like each method)",
        &|r| r.hit_rate_pooled_oracle,
        false,
    ));
    if summary.rows.iter().any(|r| r.evidence_kept.is_some()) {
        out.push_str(&table(
            "Evidence (needle) tokens kept (%, over layers and heads)",
            &|r| r.evidence_kept,
            false,
        ));
    }
    if summary.tasks.len() > 1 {
        out.push_str("## Score per task (×100)\n\n| method | budget |");
        for task in &summary.tasks {
            out.push_str(&format!(" {task} |"));
        }
        out.push_str(" average |\n|---|---:|");
        out.push_str(&"---:|".repeat(summary.tasks.len() + 1));
        out.push('\n');
        for row in &summary.rows {
            let budget = if row.method == FULL_KV {
                "–".to_owned()
            } else {
                row.budget_label()
            };
            out.push_str(&format!("| {} | {budget} |", row.label));
            for task in &summary.tasks {
                out.push_str(&format!(" {} |", percent(row.by_task.get(task).copied())));
            }
            out.push_str(&format!(" {} |\n", percent(Some(row.score))));
        }
        out.push('\n');
    }
    if !summary.skipped.is_empty() {
        out.push_str("## Skipped samples\n\n");
        for (id, why) in &summary.skipped {
            out.push_str(&format!("- `{id}`: {why}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::journal::Shard;
    use crate::tasks::journal::tests::{header, result};

    #[test]
    fn scores_average_per_task_then_over_tasks() {
        // Samples 0, 2, 4 are task a, 1 and 3 task b; at budget 8 the score is 1 when the index
        // is even: task a 3/3, task b 0/2 → average 0.5. At budget 16 likewise (16 is even).
        let results: Vec<_> = (0..5).map(result).collect();
        let summary = summarize(&header(Shard::WHOLE), &results);
        let at = |budget| {
            summary
                .rows
                .iter()
                .find(|r| r.method == "snapkv" && r.budget == budget)
                .unwrap()
        };
        assert_eq!(at(8).by_task["a"], 1.0);
        assert_eq!(at(8).by_task["b"], 0.0);
        assert_eq!(at(8).score, 0.5);
        // Hit rates 0, 0.25, 0.5, 0.75, 0 → mean 0.3.
        assert!((at(8).hit_rate.unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(at(16).evidence_kept_by_layer, vec![0.25, 0.75]);
        // Per layer 0.125 and 0.375 times (0, 1, 2, 3, 0) → means 0.15 and 0.45.
        let by_layer = &at(8).hit_rate_by_layer;
        assert_eq!(by_layer.len(), 2);
        assert!((by_layer[0] - 0.15).abs() < 1e-7 && (by_layer[1] - 0.45).abs() < 1e-7);
        assert!(summary.rows[0].hit_rate_by_layer.is_empty());
        let full = &summary.rows[0];
        assert_eq!(
            (full.method.as_str(), full.score, full.samples),
            (FULL_KV, 1.0, 5)
        );

        let markdown = summary_markdown(&header(Shard::WHOLE), &summary);
        assert!(
            markdown.contains("| Full KV (upper bound) | 100.0 | 100.0 |"),
            "{markdown}"
        );
        assert!(markdown.contains("| SnapKV | 50.0 | 50.0 |"), "{markdown}");
    }

    #[test]
    fn runs_over_several_lengths_get_a_table_per_length() {
        let with_length = |index: usize, length: &str| {
            let mut r = result(index);
            r.fields.push(("length".into(), length.into()));
            r
        };
        // Length 1024: samples 0 and 1 (budget 8 scores 1 and 0); 2048: sample 2 (scores 1).
        let results = [
            with_length(0, "1024"),
            with_length(1, "1024"),
            with_length(2, "2048"),
        ];
        let markdown = by_length_markdown(&header(Shard::WHOLE), &results);
        assert!(
            markdown.contains("### 1024 tokens (2 samples)"),
            "{markdown}"
        );
        assert!(
            markdown.contains("### 2048 tokens (1 samples)"),
            "{markdown}"
        );
        // Per task (a: sample 0 → 1; b: sample 1 → 0) then averaged: 50.
        let first = markdown.split("### 2048").next().unwrap();
        assert!(first.contains("| SnapKV | 50.0 | 50.0 |"), "{markdown}");
        assert!(by_length_markdown(&header(Shard::WHOLE), &results[..2]).is_empty());
    }

    #[test]
    fn ratio_runs_group_by_ratio_whatever_each_sample_kept() {
        let ratio = Ratio::new(0.5).unwrap();
        let mut h = header(Shard::WHOLE);
        h.budgets.clear();
        h.ratios = vec![ratio];
        // Each sample kept its own count (10 + index) at the one ratio; scores as in
        // `result`: 1 for even indices (task a 3/3), 0 for odd (task b 0/2).
        let results: Vec<_> = (0..5)
            .map(|index| {
                let mut r = result(index);
                r.cells.truncate(1);
                r.cells[0].budget = 10 + index;
                r.cells[0].ratio = Some(ratio);
                r.cells[0].score = if index % 2 == 0 { 1.0 } else { 0.0 };
                r
            })
            .collect();
        let summary = summarize(&h, &results);
        assert_eq!(summary.rows.len(), 2, "Full KV and SnapKV at the one ratio");
        let row = &summary.rows[1];
        // Mean of 10..=14 kept: 12.
        assert_eq!((row.samples, row.budget, row.ratio), (5, 12, Some(ratio)));
        assert_eq!(row.score, 0.5);
        assert_eq!(row.budget_label(), "ratio 0.50 (kept 12)");
        let markdown = summary_markdown(&h, &summary);
        assert!(markdown.contains("| method | ratio 0.50 |"), "{markdown}");
        assert!(markdown.contains("| SnapKV | 50.0 |"), "{markdown}");
        assert!(
            markdown.contains("by ratio of each prompt's KV entries removed"),
            "{markdown}"
        );
    }

    #[test]
    fn skipped_samples_are_listed_not_scored() {
        let mut skipped = result(1);
        skipped.skipped = Some("too long".into());
        skipped.full = None;
        skipped.cells.clear();
        let summary = summarize(&header(Shard::WHOLE), &[result(0), skipped]);
        assert_eq!(summary.evaluated, 1);
        assert_eq!(
            summary.skipped,
            vec![("niah/1024/1".to_owned(), "too long".to_owned())]
        );
        assert_eq!(summary.tasks, vec!["a".to_owned()]);
    }
}

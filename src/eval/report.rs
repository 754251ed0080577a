//! The evaluation's tables: means over prompts per method and budget, as a readable table and
//! as CSV files (`summary.csv`, `prompts.csv`, `layers.csv`), and each method's paired
//! comparison with the reference method (`paired.csv`).

use std::path::{Path, PathBuf};

use crate::eval::error::EvalError;
use crate::eval::paired::{paired_rows, reference};
use crate::eval::runner::EvalRun;
use crate::export::{Overwrite, check_outputs, write_new};
use crate::policy::{AskedBudget, Ratio};

/// Files [`write_report`] writes.
pub const REPORT_FILES: [&str; 4] = ["summary.csv", "prompts.csv", "layers.csv", "paired.csv"];

/// Means of one method at one budget over the prompts.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSummaryRow {
    /// Method id.
    pub method: String,
    /// Method name.
    pub label: String,
    /// Budget: KV entries kept per layer and head; with a ratio, the mean over the prompts
    /// (rounded), as each prompt keeps its own share.
    pub budget: usize,
    /// The ratio removed, when budgets were asked as ratios (the row's grouping key).
    pub ratio: Option<Ratio>,
    /// Prompts averaged.
    pub prompts: usize,
    /// Mean hit rate against the unpooled oracle.
    pub hit_rate: f64,
    /// Mean hit rate against the oracle pooled like the method.
    pub hit_rate_pooled_oracle: f64,
    /// Mean attention mass kept.
    pub mass_kept: f64,
    /// Share of prompts whose answer under eviction equals the full-cache answer.
    pub exact_match: Option<f64>,
    /// Mean matched-prefix length in tokens.
    pub matched_prefix: Option<f64>,
}

/// Means per method and budget (per ratio when budgets were asked as ratios), in method then
/// budget order.
pub fn summarize(run: &EvalRun) -> Vec<EvalSummaryRow> {
    let mut rows = Vec::new();
    for (index, method) in run.methods.iter().enumerate() {
        for asked in run.settings.asked() {
            let cells: Vec<_> = run
                .prompts
                .iter()
                .flat_map(|p| p.cells.iter())
                .filter(|c| c.method == index && c.asked() == asked)
                .collect();
            if cells.is_empty() {
                continue;
            }
            let n = cells.len() as f64;
            let mean = |f: &dyn Fn(&crate::eval::runner::Cell) -> f64| {
                cells.iter().map(|c| f(c)).sum::<f64>() / n
            };
            let agreements: Vec<_> = cells.iter().filter_map(|c| c.agreement.as_ref()).collect();
            let (exact_match, matched_prefix) = if agreements.is_empty() {
                (None, None)
            } else {
                let k = agreements.len() as f64;
                (
                    Some(agreements.iter().filter(|a| a.exact_match).count() as f64 / k),
                    Some(
                        agreements
                            .iter()
                            .map(|a| a.matched_prefix as f64)
                            .sum::<f64>()
                            / k,
                    ),
                )
            };
            rows.push(EvalSummaryRow {
                method: method.id.clone(),
                label: method.label.clone(),
                budget: mean(&|c| c.budget as f64).round() as usize,
                ratio: asked.ratio(),
                prompts: cells.len(),
                hit_rate: mean(&|c| f64::from(c.hit_rate)),
                hit_rate_pooled_oracle: mean(&|c| f64::from(c.hit_rate_pooled_oracle)),
                mass_kept: mean(&|c| f64::from(c.mass_kept)),
                exact_match,
                matched_prefix,
            });
        }
    }
    rows
}

/// The summary as a Markdown table.
pub fn summary_table(rows: &[EvalSummaryRow]) -> String {
    let percent = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.1}", 100.0 * v));
    let mut out = String::from(
        "| method | budget | hit rate | hit rate, pooled oracle | mass kept | exact match % | matched prefix |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {} | {} |\n",
            r.label,
            budget_label(r),
            r.hit_rate,
            r.hit_rate_pooled_oracle,
            r.mass_kept,
            percent(r.exact_match),
            r.matched_prefix.map_or("–".into(), |v| format!("{v:.1}"))
        ));
    }
    out
}

/// The budget cell of the Markdown table: `64`, or `ratio 0.50 (kept 742)` (the mean kept).
fn budget_label(row: &EvalSummaryRow) -> String {
    AskedBudget::of(row.budget, row.ratio).label_kept(row.budget)
}

/// A ratio's CSV cell: the number, or empty when the budget was asked in entries.
fn ratio_cell(ratio: Option<Ratio>) -> String {
    ratio.map_or(String::new(), |r| r.removed().to_string())
}

/// Writes the CSV files into `dir` (created when missing); refuses to replace existing ones
/// unless `overwrite` says so.
pub fn write_report(
    run: &EvalRun,
    dir: &Path,
    overwrite: Overwrite,
) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    check_outputs(dir, &REPORT_FILES, overwrite)?;

    let mut summary = String::from(
        "method,budget,prompts,hit_rate,hit_rate_pooled_oracle,mass_kept,exact_match,matched_prefix,ratio\n",
    );
    let optional = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in summarize(run) {
        summary.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            r.method,
            r.budget,
            r.prompts,
            r.hit_rate,
            r.hit_rate_pooled_oracle,
            r.mass_kept,
            optional(r.exact_match),
            optional(r.matched_prefix),
            ratio_cell(r.ratio)
        ));
    }

    let mut prompts = String::from(
        "line,prompt_tokens,truncated,method,budget,hit_rate,hit_rate_pooled_oracle,mass_kept,exact_match,matched_prefix,answer,note,ratio\n",
    );
    let mut layers = String::from("line,method,budget,layer,hit_rate,ratio\n");
    for p in &run.prompts {
        prompts.push_str(&format!(
            "{},{},{},full,,,,,,,{},,\n",
            p.line,
            p.prompt_tokens,
            p.truncated,
            quote(&p.answer)
        ));
        for c in &p.cells {
            let method = &run.methods[c.method].id;
            prompts.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                p.line,
                p.prompt_tokens,
                p.truncated,
                method,
                c.budget,
                c.hit_rate,
                c.hit_rate_pooled_oracle,
                c.mass_kept,
                c.agreement
                    .as_ref()
                    .map_or(String::new(), |a| a.exact_match.to_string()),
                c.agreement
                    .as_ref()
                    .map_or(String::new(), |a| a.matched_prefix.to_string()),
                c.agreement
                    .as_ref()
                    .map_or(String::new(), |a| quote(&a.answer)),
                c.note.as_deref().map_or(String::new(), quote),
                ratio_cell(c.ratio)
            ));
            for (layer, hit) in c.layer_hit_rate.iter().enumerate() {
                layers.push_str(&format!(
                    "{},{method},{},{layer},{hit},{}\n",
                    p.line,
                    c.budget,
                    ratio_cell(c.ratio)
                ));
            }
        }
    }
    let mut paired = String::from(
        "method,reference,budget,ratio,metric,prompts,mean_difference,ci_low,ci_high,wins,losses,ties\n",
    );
    for r in reference(run).map_or_else(Vec::new, |reference| paired_rows(run, reference)) {
        let budget = match r.asked {
            AskedBudget::Entries(b) => b.to_string(),
            AskedBudget::Removed(_) => String::new(),
        };
        paired.push_str(&format!(
            "{},{},{budget},{},{},{}\n",
            r.method,
            r.reference,
            ratio_cell(r.ratio()),
            r.metric.name(),
            r.stats.csv_fields()
        ));
    }
    let mut written = Vec::new();
    for (name, text) in REPORT_FILES.iter().zip([summary, prompts, layers, paired]) {
        let path = dir.join(name);
        write_new(&path, text.as_bytes(), overwrite)?;
        written.push(path);
    }
    Ok(written)
}

/// A CSV field, quoted (RFC 4180).
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::methods::Method;
    use crate::eval::runner::{Cell, EvalSettings, PromptResult};
    use crate::policy::{PolicyId, PolicySettings};

    fn cell(budget: usize, ratio: Option<Ratio>, hit_rate: f32) -> Cell {
        Cell {
            method: 0,
            budget,
            ratio,
            hit_rate,
            hit_rate_pooled_oracle: hit_rate,
            mass_kept: 0.5,
            layer_hit_rate: vec![hit_rate],
            agreement: None,
            note: None,
        }
    }

    fn prompt(line: usize, prompt_tokens: usize, cells: Vec<Cell>) -> PromptResult {
        PromptResult {
            line,
            prompt_tokens,
            truncated: false,
            answer: "Paris.".into(),
            answer_tokens: 2,
            cells,
        }
    }

    #[test]
    fn ratios_group_prompts_that_kept_different_counts() {
        let half = Ratio::new(0.5).unwrap();
        let run = EvalRun {
            methods: vec![Method {
                id: "snapkv".into(),
                label: "SnapKV".into(),
                policy: PolicyId::SNAPKV,
                settings: PolicySettings::default(),
            }],
            settings: EvalSettings {
                ratios: vec![half],
                ..EvalSettings::default()
            },
            // Prompts of 100 and 301 tokens keep int(50) = 50 and int(150.5) = 150.
            prompts: vec![
                prompt(1, 100, vec![cell(50, Some(half), 0.25)]),
                prompt(2, 301, vec![cell(150, Some(half), 0.75)]),
            ],
            skipped_too_long: 0,
            skipped: Vec::new(),
            cancelled: false,
        };
        let rows = summarize(&run);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].prompts, rows[0].budget, rows[0].ratio),
            (2, 100, Some(half))
        );
        assert_eq!(rows[0].hit_rate, 0.5);
        assert!(
            summary_table(&rows).contains("| SnapKV | ratio 0.50 (kept 100) | 0.500 |"),
            "{}",
            summary_table(&rows)
        );

        let dir = tempfile::tempdir().unwrap();
        write_report(&run, dir.path(), Overwrite::Refuse).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let summary = read("summary.csv");
        let lines: Vec<&str> = summary.lines().collect();
        assert!(lines[0].ends_with(",matched_prefix,ratio"), "{summary}");
        assert_eq!(lines[1], "snapkv,100,2,0.5,0.5,0.5,,,0.5");
        let prompts = read("prompts.csv");
        assert!(
            prompts.contains("\n2,301,false,snapkv,150,0.75,"),
            "{prompts}"
        );
        assert!(
            prompts
                .lines()
                .all(|l| l.ends_with(",0.5") || l.contains(",full,") || l.ends_with(",ratio")),
            "{prompts}"
        );
        assert!(read("layers.csv").contains("\n2,snapkv,150,0,0.75,0.5\n"));
        // One method: nothing to compare, so paired.csv holds only its header.
        assert_eq!(read("paired.csv").lines().count(), 1);
    }
}

//! The figures of a run, from its journal: score against budget for every method (Full KV as
//! the reference line), and for needle tasks a heatmap of length × depth per method and budget
//! plus one page with all of them, as in the Judge Q paper. Written under `figures/` in the run
//! folder as SVG, PNG and a JSON sidecar (the sidecar names the samples behind each cell).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::export::task_figures::{BudgetCurves, NeedleGrid, TaskFigure, write_task_figure};
use crate::export::{Overwrite, PRINT_DPI};
use crate::policy::AskedBudget;
use crate::tasks::journal::{RunHeader, SampleResult};
use crate::tasks::run_error::RunError;
use crate::tasks::tables::{FULL_KV, summarize};

/// Folder of the figures inside a run's folder.
pub const FIGURES_DIR: &str = "figures";

/// Every figure of the run, with the file stem it is written under.
pub fn run_figures(header: &RunHeader, results: &[SampleResult]) -> Vec<(String, TaskFigure)> {
    let mut figures = vec![("scores_by_budget".to_owned(), score_curves(header, results))];
    let grids = needle_grids(header, results);
    if !grids.is_empty() {
        for grid in &grids {
            let budget = match grid.asked() {
                None => "full".to_owned(),
                Some(AskedBudget::Entries(b)) => format!("b{b}"),
                Some(AskedBudget::Removed(r)) => format!("r{r}"),
            };
            let stem = format!("needle_{}_{}", grid.method, budget);
            figures.push((
                stem,
                TaskFigure::NeedleHeatmap {
                    title: format!(
                        "{} on {}: {} at {}",
                        header.task_set,
                        header.model.id,
                        label_of(header, &grid.method),
                        grid.budget_label()
                    ),
                    grid: grid.clone(),
                },
            ));
        }
        figures.push((
            "needle_overview".to_owned(),
            TaskFigure::NeedleOverview {
                title: format!("{} on {}", header.task_set, header.model.id),
                grids,
            },
        ));
    }
    figures
}

/// Writes [`run_figures`] under `dir/figures/`, replacing earlier versions; returns the SVG
/// paths.
pub fn write_run_figures(
    dir: &Path,
    header: &RunHeader,
    results: &[SampleResult],
) -> Result<Vec<PathBuf>, RunError> {
    let folder = dir.join(FIGURES_DIR);
    std::fs::create_dir_all(&folder).map_err(|e| RunError::io(&folder, e))?;
    let mut written = Vec::new();
    for (stem, figure) in run_figures(header, results) {
        let path = folder.join(format!("{stem}.svg"));
        write_task_figure(&path, &figure, dir, PRINT_DPI, Overwrite::Replace)?;
        written.push(path);
    }
    Ok(written)
}

/// The method's label in the run, or its id.
fn label_of(header: &RunHeader, method: &str) -> String {
    if method == FULL_KV {
        return "Full KV".into();
    }
    header
        .methods
        .iter()
        .find(|m| m.id == method)
        .map_or_else(|| method.to_owned(), |m| m.label.clone())
}

/// Mean score (over tasks) against budget (or ratio removed, increasing) for every method.
fn score_curves(header: &RunHeader, results: &[SampleResult]) -> TaskFigure {
    let summary = summarize(header, results);
    let mut asked = header.asked();
    asked.sort_by(|a, b| {
        let key = |x: &AskedBudget| x.ratio().map_or(x.size(), |r| r.removed());
        key(a).total_cmp(&key(b))
    });
    let methods = header
        .methods
        .iter()
        .map(|method| {
            let scores = asked
                .iter()
                .map(|&b| {
                    summary
                        .rows
                        .iter()
                        .find(|r| r.method == method.id && r.asked() == b && r.samples > 0)
                        .map(|r| r.score)
                })
                .collect();
            (method.label.clone(), scores)
        })
        .collect();
    let full = summary
        .rows
        .first()
        .filter(|r| r.samples > 0)
        .map(|r| r.score);
    TaskFigure::BudgetCurves(BudgetCurves {
        title: format!(
            "{} {} on {}",
            header.task_set, header.data_dir, header.model.id
        ),
        metric: "score (mean over tasks)".into(),
        budgets: asked
            .iter()
            .filter_map(|a| match a {
                AskedBudget::Entries(b) => Some(*b),
                AskedBudget::Removed(_) => None,
            })
            .collect(),
        ratios: asked.iter().filter_map(|a| a.ratio()).collect(),
        methods,
        full_kv: full,
    })
}

/// The value of a sample's field.
fn field<'a>(result: &'a SampleResult, name: &str) -> Option<&'a str> {
    result
        .fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Length × depth grids of every method at every budget, and of Full KV, for runs whose samples
/// have `length` and `depth` fields; empty otherwise.
fn needle_grids(header: &RunHeader, results: &[SampleResult]) -> Vec<NeedleGrid> {
    let placed: Vec<(&SampleResult, usize, u32)> = results
        .iter()
        .filter(|r| r.skipped.is_none())
        .filter_map(|r| {
            let length = field(r, "length")?.parse().ok()?;
            let depth = field(r, "depth")?.parse().ok()?;
            Some((r, length, depth))
        })
        .collect();
    if placed.is_empty() {
        return Vec::new();
    }
    let lengths: Vec<usize> = placed
        .iter()
        .map(|p| p.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let depths: Vec<u32> = placed
        .iter()
        .map(|p| p.2)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let grid = |method: &str, budget: Option<AskedBudget>| {
        let mut scores = vec![vec![None; depths.len()]; lengths.len()];
        let mut ids = vec![vec![Vec::new(); depths.len()]; lengths.len()];
        for (li, &length) in lengths.iter().enumerate() {
            for (di, &depth) in depths.iter().enumerate() {
                let cell: Vec<(f64, String)> = placed
                    .iter()
                    .filter(|p| p.1 == length && p.2 == depth)
                    .filter_map(|(r, _, _)| {
                        let score = match budget {
                            None => r.full.as_ref().map(|f| f.score),
                            Some(b) => r
                                .cells
                                .iter()
                                .find(|c| c.method == method && c.asked() == b)
                                .map(|c| c.score),
                        };
                        score.map(|s| (s, r.id.clone()))
                    })
                    .collect();
                if !cell.is_empty() {
                    scores[li][di] =
                        Some(cell.iter().map(|c| c.0).sum::<f64>() / cell.len() as f64);
                    ids[li][di] = cell.into_iter().map(|c| c.1).collect();
                }
            }
        }
        NeedleGrid {
            method: method.to_owned(),
            budget: budget.map(|b| mean_kept(&placed, method, b)),
            ratio: budget.and_then(AskedBudget::ratio),
            lengths: lengths.clone(),
            depths: depths.clone(),
            scores,
            sample_ids: ids,
        }
    };
    let mut grids = Vec::new();
    for method in &header.methods {
        for budget in header.asked() {
            grids.push(grid(&method.id, Some(budget)));
        }
    }
    grids.push(grid(FULL_KV, None));
    grids
}

/// The entries `method` kept at `budget` over the placed samples: the budget itself, or the
/// mean (rounded) of what a ratio kept on each.
fn mean_kept(placed: &[(&SampleResult, usize, u32)], method: &str, budget: AskedBudget) -> usize {
    if let AskedBudget::Entries(entries) = budget {
        return entries;
    }
    let kept: Vec<usize> = placed
        .iter()
        .filter_map(|(r, _, _)| {
            r.cells
                .iter()
                .find(|c| c.method == method && c.asked() == budget)
                .map(|c| c.budget)
        })
        .collect();
    if kept.is_empty() {
        return 0;
    }
    (kept.iter().sum::<usize>() as f64 / kept.len() as f64).round() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::journal::Shard;
    use crate::tasks::journal::tests::{header, result};

    #[test]
    fn needle_grids_place_each_sample_by_length_and_depth() {
        // The test results have a depth field (index × 10) but no length: no grid.
        let results: Vec<_> = (0..4).map(result).collect();
        assert!(needle_grids(&header(Shard::WHOLE), &results).is_empty());

        let with_length: Vec<_> = results
            .into_iter()
            .map(|mut r| {
                let length = if r.index < 2 { "1024" } else { "2048" };
                r.fields.push(("length".into(), length.into()));
                r
            })
            .collect();
        let grids = needle_grids(&header(Shard::WHOLE), &with_length);
        // One method at two budgets, and Full KV.
        assert_eq!(grids.len(), 3);
        let at8 = &grids[0];
        assert_eq!((at8.method.as_str(), at8.budget), ("snapkv", Some(8)));
        assert_eq!(at8.lengths, vec![1024, 2048]);
        assert_eq!(at8.depths, vec![0, 10, 20, 30]);
        // Sample 2 (length 2048, depth 20) scores 1 at budget 8 (even index); sample 1 scores 0.
        assert_eq!(at8.scores[1][2], Some(1.0));
        assert_eq!(at8.scores[0][1], Some(0.0));
        assert_eq!(at8.scores[0][2], None);
        assert_eq!(at8.sample_ids[1][2], vec!["niah/1024/2".to_owned()]);
        let full = &grids[2];
        assert_eq!((full.method.as_str(), full.budget), (FULL_KV, None));
        for figure in run_figures(&header(Shard::WHOLE), &with_length) {
            figure.1.validate().unwrap();
        }
    }

    #[test]
    fn ratio_runs_plot_against_the_ratio_and_name_grids_by_it() {
        use crate::policy::Ratio;
        let (half, most) = (Ratio::new(0.5).unwrap(), Ratio::new(0.75).unwrap());
        let mut h = header(Shard::WHOLE);
        h.budgets.clear();
        h.ratios = vec![most, half];
        // Sample i kept 40 + i entries at 0.5 and 20 + i at 0.75.
        let results: Vec<_> = (0..4)
            .map(|index| {
                let mut r = result(index);
                r.fields.push(("length".into(), "1024".into()));
                for (cell, (ratio, kept)) in r.cells.iter_mut().zip([(most, 20), (half, 40)]) {
                    cell.ratio = Some(ratio);
                    cell.budget = kept + index;
                }
                r
            })
            .collect();
        let figures = run_figures(&h, &results);
        let stems: Vec<&str> = figures.iter().map(|(s, _)| s.as_str()).collect();
        assert!(stems.contains(&"needle_snapkv_r0.50"), "{stems:?}");
        assert!(stems.contains(&"needle_snapkv_r0.75"), "{stems:?}");
        let TaskFigure::BudgetCurves(curves) = &figures[0].1 else {
            panic!("the first figure is the curves");
        };
        // Ratios increase along the axis, whatever order they were asked in.
        assert_eq!(
            (curves.budgets.len(), curves.ratios.clone()),
            (0, vec![half, most])
        );
        let grids = needle_grids(&h, &results);
        // Mean of 40..=43 is 41.5, rounded to 42; of 20..=23, 22.
        assert_eq!((grids[0].ratio, grids[0].budget), (Some(most), Some(22)));
        assert_eq!((grids[1].ratio, grids[1].budget), (Some(half), Some(42)));
        for (_, figure) in &figures {
            figure.validate().unwrap();
        }
    }
}

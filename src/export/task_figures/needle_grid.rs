//! The input of the needle-in-a-haystack figures: one method at one budget over a grid of
//! context lengths and needle depths, with the samples behind each cell.

use serde::{Deserialize, Serialize};

use crate::export::ExportError;
use crate::policy::{AskedBudget, Ratio};

/// One method at one budget over a needle grid: the mean score per (length, depth) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeedleGrid {
    /// The method, as shown (`SnapKV`, `Judge Q`, `Full KV`).
    pub method: String,
    /// KV entries kept per layer and head; `None` for the full cache. With a ratio, the mean
    /// over the samples (rounded), as each keeps its own share.
    pub budget: Option<usize>,
    /// The ratio removed, when budgets were asked as ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
    /// Context lengths in tokens, strictly increasing: the rows, top to bottom.
    pub lengths: Vec<usize>,
    /// Needle depths in percent of the context (0 to 100), strictly increasing: the columns,
    /// left to right.
    pub depths: Vec<u32>,
    /// `[length][depth]` mean score in `0..=1`; `None` where no sample ran.
    pub scores: Vec<Vec<Option<f64>>>,
    /// `[length][depth]` ids of the samples behind each cell (empty where none ran).
    pub sample_ids: Vec<Vec<Vec<String>>>,
}

impl NeedleGrid {
    /// "budget 256", "ratio 0.50 (kept 742)" (the mean kept), or "full cache".
    pub fn budget_label(&self) -> String {
        match (self.asked(), self.budget) {
            (Some(asked @ AskedBudget::Removed(_)), Some(kept)) => asked.label_kept(kept),
            (asked, _) => budget_label(asked),
        }
    }

    /// The budget as asked: entries or a ratio; `None` for the full cache. Grids of several
    /// methods at one ratio share it (their mean kept counts differ).
    pub fn asked(&self) -> Option<AskedBudget> {
        self.budget.map(|b| AskedBudget::of(b, self.ratio))
    }

    /// Checks the grid: a method name, increasing lengths and depths within 0–100, and scores
    /// (finite, within 0–1) and sample ids for exactly every cell.
    pub fn validate(&self) -> Result<(), ExportError> {
        let invalid = |reason: String| {
            Err(ExportError::InvalidFigure(format!(
                "the needle grid of {:?} at {}: {reason}",
                self.method,
                self.budget_label()
            )))
        };
        if self.method.trim().is_empty() {
            return invalid("the method has no name".to_owned());
        }
        if self.lengths.is_empty() || self.depths.is_empty() {
            return invalid(format!(
                "it needs at least one length and one depth, not {} and {}",
                self.lengths.len(),
                self.depths.len()
            ));
        }
        if self.lengths.contains(&0) || !self.lengths.is_sorted_by(|a, b| a < b) {
            return invalid(format!(
                "the lengths {:?} must be positive and strictly increasing",
                self.lengths
            ));
        }
        if self.depths.iter().any(|&d| d > 100) || !self.depths.is_sorted_by(|a, b| a < b) {
            return invalid(format!(
                "the depths {:?} must be percentages (0 to 100), strictly increasing",
                self.depths
            ));
        }
        let (rows, columns) = (self.lengths.len(), self.depths.len());
        if self.scores.len() != rows {
            return invalid(format!(
                "{} rows of scores for {rows} lengths",
                self.scores.len()
            ));
        }
        if self.sample_ids.len() != rows {
            return invalid(format!(
                "{} rows of sample ids for {rows} lengths",
                self.sample_ids.len()
            ));
        }
        for (i, (scores, ids)) in self.scores.iter().zip(&self.sample_ids).enumerate() {
            let length = self.lengths[i];
            if scores.len() != columns {
                return invalid(format!(
                    "the scores at length {length} have {} entries for {columns} depths",
                    scores.len()
                ));
            }
            if ids.len() != columns {
                return invalid(format!(
                    "the sample ids at length {length} have {} entries for {columns} depths",
                    ids.len()
                ));
            }
            for (j, score) in scores.iter().enumerate() {
                if let Some(score) = score
                    && !(0.0..=1.0).contains(score)
                {
                    return invalid(format!(
                        "the score {score} at length {length}, depth {}% is not within 0 to 1",
                        self.depths[j]
                    ));
                }
            }
        }
        Ok(())
    }
}

/// "budget 256", "ratio 0.50", or "full cache" for `None`.
pub(super) fn budget_label(budget: Option<AskedBudget>) -> String {
    match budget {
        Some(AskedBudget::Entries(b)) => format!("budget {b}"),
        Some(ratio) => ratio.to_string(),
        None => "full cache".to_owned(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A 3 × 4 grid whose scores are `(i + j) / 5`, with the cell at (1, 2) empty.
    pub(crate) fn grid(method: &str, budget: Option<usize>) -> NeedleGrid {
        let lengths = vec![1000, 2000, 4000];
        let depths = vec![0, 33, 67, 100];
        let scores = (0..3)
            .map(|i| {
                (0..4)
                    .map(|j| ((i, j) != (1, 2)).then_some((i + j) as f64 / 5.0))
                    .collect()
            })
            .collect();
        let sample_ids = (0..3)
            .map(|i| {
                (0..4)
                    .map(|j| {
                        if (i, j) == (1, 2) {
                            Vec::new()
                        } else {
                            vec![format!("niah-{i}-{j}-a"), format!("niah-{i}-{j}-b")]
                        }
                    })
                    .collect()
            })
            .collect();
        NeedleGrid {
            method: method.to_owned(),
            budget,
            ratio: None,
            lengths,
            depths,
            scores,
            sample_ids,
        }
    }

    fn reason(grid: &NeedleGrid) -> String {
        grid.validate().unwrap_err().to_string()
    }

    #[test]
    fn bad_grids_are_refused_with_the_reason() {
        let good = grid("SnapKV", Some(128));
        good.validate().unwrap();

        let mut ragged = good.clone();
        ragged.scores[2].pop();
        let err = reason(&ragged);
        assert!(
            err.contains("\"SnapKV\" at budget 128")
                && err.contains("at length 4000 have 3 entries for 4 depths"),
            "{err}"
        );

        let mut ragged_ids = good.clone();
        ragged_ids.sample_ids[0].push(Vec::new());
        assert!(reason(&ragged_ids).contains("sample ids at length 1000 have 5 entries"));

        let mut missing_row = good.clone();
        missing_row.sample_ids.pop();
        assert!(reason(&missing_row).contains("2 rows of sample ids for 3 lengths"));

        let mut above = good.clone();
        above.scores[0][1] = Some(1.5);
        let err = reason(&above);
        assert!(
            err.contains("1.5 at length 1000, depth 33%") && err.contains("within 0 to 1"),
            "{err}"
        );

        let mut nan = good.clone();
        nan.scores[2][3] = Some(f64::NAN);
        assert!(reason(&nan).contains("NaN at length 4000, depth 100%"));

        let mut negative = good.clone();
        negative.scores[0][0] = Some(-0.01);
        assert!(reason(&negative).contains("-0.01"));

        let mut deep = good.clone();
        deep.depths[3] = 101;
        assert!(reason(&deep).contains("percentages"));

        let mut unsorted = good.clone();
        unsorted.lengths = vec![1000, 4000, 2000];
        assert!(reason(&unsorted).contains("strictly increasing"));

        let mut empty = good.clone();
        empty.depths.clear();
        assert!(reason(&empty).contains("at least one length and one depth"));

        let mut nameless = good;
        nameless.method = " ".into();
        nameless.budget = None;
        let err = reason(&nameless);
        assert!(
            err.contains("full cache") && err.contains("no name"),
            "{err}"
        );
    }
}

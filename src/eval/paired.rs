//! `judgeq eval`'s paired comparisons with a reference method: on the prompts both were
//! evaluated on, the statistics of [`crate::paired`] for the hit rate, the mass kept and the
//! matched prefix.

use crate::eval::runner::{Cell, EvalRun};
use crate::paired::{PairedStats, reference_index};
use crate::policy::{AskedBudget, Ratio};

/// A metric compared per prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairedMetric {
    /// Hit rate against the raw (unpooled) oracle, the paper's.
    HitRate,
    /// Share of the decoded tokens' attention on kept entries.
    MassKept,
    /// Tokens of the answer under eviction that match the full-cache answer.
    MatchedPrefix,
}

impl PairedMetric {
    /// Every metric, in report order.
    pub const ALL: [Self; 3] = [Self::HitRate, Self::MassKept, Self::MatchedPrefix];

    /// The metric's column name in `summary.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Self::HitRate => "hit_rate",
            Self::MassKept => "mass_kept",
            Self::MatchedPrefix => "matched_prefix",
        }
    }

    /// The cell's value, `None` when it was not measured (no answer decoded under eviction).
    fn of(self, cell: &Cell) -> Option<f64> {
        match self {
            Self::HitRate => Some(f64::from(cell.hit_rate)),
            Self::MassKept => Some(f64::from(cell.mass_kept)),
            Self::MatchedPrefix => cell.agreement.as_ref().map(|a| a.matched_prefix as f64),
        }
    }
}

/// One method against the reference at one budget on one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedRow {
    /// Method id.
    pub method: String,
    /// Reference method id.
    pub reference: String,
    /// The budget as asked (entries, or a ratio removed).
    pub asked: AskedBudget,
    /// The metric.
    pub metric: PairedMetric,
    /// Method − reference over the prompts both were measured on.
    pub stats: PairedStats,
}

impl PairedRow {
    /// The ratio removed, when budgets were asked as ratios.
    pub fn ratio(&self) -> Option<Ratio> {
        self.asked.ratio()
    }
}

/// Index of the reference method ([`reference_index`]: SnapKV when it ran, else the first);
/// `None` when fewer than two methods ran.
pub fn reference(run: &EvalRun) -> Option<usize> {
    reference_index(run.methods.iter().map(|m| m.id.as_str()))
}

/// Every other method against `reference` at every asked budget and metric measured on at
/// least one prompt by both, in method, budget, metric order.
pub fn paired_rows(run: &EvalRun, reference: usize) -> Vec<PairedRow> {
    let mut rows = Vec::new();
    for (index, method) in run.methods.iter().enumerate() {
        if index == reference {
            continue;
        }
        for asked in run.settings.asked() {
            for metric in PairedMetric::ALL {
                let differences: Vec<f64> = run
                    .prompts
                    .iter()
                    .filter_map(|p| {
                        let value = |m: usize| {
                            p.cells
                                .iter()
                                .find(|c| c.method == m && c.asked() == asked)
                                .and_then(|c| metric.of(c))
                        };
                        Some(value(index)? - value(reference)?)
                    })
                    .collect();
                if let Some(stats) = PairedStats::of(&differences) {
                    rows.push(PairedRow {
                        method: method.id.clone(),
                        reference: run.methods[reference].id.clone(),
                        asked,
                        metric,
                        stats,
                    });
                }
            }
        }
    }
    rows
}

/// The comparisons as a Markdown table.
pub fn paired_table(rows: &[PairedRow]) -> String {
    let mut out = String::from(
        "| method − reference | budget | metric | mean difference | 95% interval | wins / losses / ties |\n|---|---:|---|---:|---|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} − {} | {} | {} | {} |\n",
            r.method,
            r.reference,
            r.asked,
            r.metric.name(),
            r.stats.markdown_cells(1.0, 3)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::methods::Method;
    use crate::eval::runner::{EvalSettings, PromptResult};
    use crate::export::AnswerAgreement;
    use crate::policy::{PolicyId, PolicySettings};

    fn method(id: &str, policy: PolicyId) -> Method {
        Method {
            id: id.into(),
            label: id.into(),
            policy,
            settings: PolicySettings::default(),
        }
    }

    fn cell(method: usize, hit_rate: f32, prefix: Option<usize>) -> Cell {
        Cell {
            method,
            budget: 64,
            ratio: None,
            hit_rate,
            hit_rate_pooled_oracle: hit_rate,
            mass_kept: 0.5,
            layer_hit_rate: vec![hit_rate],
            agreement: prefix.map(|p| AnswerAgreement {
                answer: String::new(),
                exact_match: false,
                matched_prefix: p,
            }),
            note: None,
        }
    }

    fn prompt(line: usize, cells: Vec<Cell>) -> PromptResult {
        PromptResult {
            line,
            prompt_tokens: 100,
            truncated: false,
            answer: "Paris.".into(),
            answer_tokens: 2,
            cells,
        }
    }

    /// SnapKV is the reference even when listed second; the differences, wins, losses and ties
    /// are counted per prompt, and a prompt without answers leaves the matched prefix out.
    #[test]
    fn methods_are_compared_with_snapkv_prompt_by_prompt() {
        let run = EvalRun {
            methods: vec![
                method("judgeq", PolicyId::JUDGEQ),
                method("snapkv", PolicyId::SNAPKV),
            ],
            settings: EvalSettings {
                budgets: vec![64],
                ..EvalSettings::default()
            },
            prompts: vec![
                prompt(1, vec![cell(0, 0.5, Some(4)), cell(1, 0.25, Some(6))]),
                prompt(2, vec![cell(0, 0.5, Some(3)), cell(1, 0.75, Some(3))]),
                prompt(3, vec![cell(0, 1.0, None), cell(1, 0.5, None)]),
            ],
            skipped_too_long: 0,
            skipped: Vec::new(),
            cancelled: false,
        };
        assert_eq!(reference(&run), Some(1));
        let rows = paired_rows(&run, 1);
        let metrics: Vec<_> = rows.iter().map(|r| r.metric).collect();
        assert_eq!(metrics, PairedMetric::ALL);
        let hit = &rows[0];
        assert_eq!(
            (hit.method.as_str(), hit.reference.as_str()),
            ("judgeq", "snapkv")
        );
        // Differences +0.25, −0.25, +0.5.
        assert_eq!(hit.stats.items, 3);
        assert!((hit.stats.mean_difference - 0.5 / 3.0).abs() < 1e-12);
        assert_eq!(
            (hit.stats.wins, hit.stats.losses, hit.stats.ties),
            (2, 1, 0)
        );
        assert!(
            hit.stats.interval.0 <= hit.stats.mean_difference
                && hit.stats.mean_difference <= hit.stats.interval.1
        );
        assert_eq!(
            rows[1].stats.interval,
            (0.0, 0.0),
            "equal mass kept everywhere"
        );
        let prefix = &rows[2];
        // Differences −2 and 0; prompt 3 decoded no answer.
        assert_eq!(prefix.stats.items, 2);
        assert_eq!(prefix.stats.mean_difference, -1.0);
        assert_eq!(
            (prefix.stats.wins, prefix.stats.losses, prefix.stats.ties),
            (0, 1, 1)
        );
        assert!(paired_table(&rows).contains("| judgeq − snapkv | 64 | hit_rate | +0.167 |"));

        let alone = EvalRun {
            methods: vec![method("judgeq", PolicyId::JUDGEQ)],
            ..run
        };
        assert_eq!(reference(&alone), None);
    }
}

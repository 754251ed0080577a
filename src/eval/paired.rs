//! Paired comparisons with a reference method: on the prompts both were evaluated on, the mean
//! per-prompt difference of a metric, its 95% percentile-bootstrap interval, and how many
//! prompts it wins, loses and ties. Means over 24–32 prompts move by a point or two between
//! neighbouring runs; the interval says whether a difference is larger than that.

use crate::eval::runner::{Cell, EvalRun};
use crate::policy::{AskedBudget, Ratio};
use crate::rng::SplitMix64;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 10_000;
/// Seed of the resampling, so that a report is reproduced exactly.
pub const SEED: u64 = 0;

/// The method every other one is compared with: SnapKV when it ran, else the first method.
pub const PREFERRED_REFERENCE: &str = "snapkv";

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
    /// Prompts where both were measured.
    pub prompts: usize,
    /// Mean of method − reference over those prompts.
    pub mean_difference: f64,
    /// 95% percentile-bootstrap interval of that mean.
    pub interval: (f64, f64),
    /// Prompts where the method scored more, less, the same.
    pub wins: usize,
    /// See `wins`.
    pub losses: usize,
    /// See `wins`.
    pub ties: usize,
}

impl PairedRow {
    /// The ratio removed, when budgets were asked as ratios.
    pub fn ratio(&self) -> Option<Ratio> {
        self.asked.ratio()
    }
}

/// Index of the reference method: [`PREFERRED_REFERENCE`] when it ran, else the first method;
/// `None` when fewer than two methods ran (nothing to compare).
pub fn reference(run: &EvalRun) -> Option<usize> {
    if run.methods.len() < 2 {
        return None;
    }
    Some(
        run.methods
            .iter()
            .position(|m| m.id == PREFERRED_REFERENCE)
            .unwrap_or(0),
    )
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
                if differences.is_empty() {
                    continue;
                }
                let n = differences.len();
                rows.push(PairedRow {
                    method: method.id.clone(),
                    reference: run.methods[reference].id.clone(),
                    asked,
                    metric,
                    prompts: n,
                    mean_difference: differences.iter().sum::<f64>() / n as f64,
                    interval: bootstrap_interval(&differences, RESAMPLES, SEED),
                    wins: differences.iter().filter(|&&d| d > 0.0).count(),
                    losses: differences.iter().filter(|&&d| d < 0.0).count(),
                    ties: differences.iter().filter(|&&d| d == 0.0).count(),
                });
            }
        }
    }
    rows
}

/// The 95% percentile-bootstrap interval of the mean of `values` (not empty: [`paired_rows`]
/// leaves out a comparison without prompts): the 2.5th and 97.5th percentiles of the means of
/// `resamples` draws of `values.len()` values with replacement, from `seed`.
fn bootstrap_interval(values: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    let mut rng = SplitMix64::new(seed);
    let n = values.len();
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

/// The comparisons as a Markdown table.
pub fn paired_table(rows: &[PairedRow]) -> String {
    let mut out = String::from(
        "| method − reference | budget | metric | mean difference | 95% interval | wins / losses / ties |\n|---|---:|---|---:|---|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} − {} | {} | {} | {:+.3} | [{:+.3}, {:+.3}] | {} / {} / {} |\n",
            r.method,
            r.reference,
            r.asked,
            r.metric.name(),
            r.mean_difference,
            r.interval.0,
            r.interval.1,
            r.wins,
            r.losses,
            r.ties
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

    /// Equal values leave no spread: the interval is the value itself.
    #[test]
    fn equal_differences_give_a_point_interval() {
        assert_eq!(bootstrap_interval(&[0.25; 7], 1000, 3), (0.25, 0.25));
    }

    /// Two values 0 and 1: a resampled mean is 0, 1/2 or 1 with chances 1/4, 1/2, 1/4, so the
    /// 2.5th percentile is 0 and the 97.5th is 1 (each tail holds about a quarter).
    #[test]
    fn two_values_give_the_hand_computed_percentiles() {
        assert_eq!(bootstrap_interval(&[0.0, 1.0], RESAMPLES, SEED), (0.0, 1.0));
        // Forty values: the interval is inside the range and holds the mean.
        let values: Vec<f64> = (0..40).map(|i| f64::from(i % 5)).collect();
        let (low, high) = bootstrap_interval(&values, RESAMPLES, SEED);
        assert!(
            0.0 < low && low < 2.0 && 2.0 < high && high < 4.0,
            "{low} {high}"
        );
    }

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
        assert_eq!(hit.prompts, 3);
        assert!((hit.mean_difference - 0.5 / 3.0).abs() < 1e-12);
        assert_eq!((hit.wins, hit.losses, hit.ties), (2, 1, 0));
        assert!(hit.interval.0 <= hit.mean_difference && hit.mean_difference <= hit.interval.1);
        assert_eq!(rows[1].interval, (0.0, 0.0), "equal mass kept everywhere");
        let prefix = &rows[2];
        // Differences −2 and 0; prompt 3 decoded no answer.
        assert_eq!(prefix.prompts, 2);
        assert_eq!(prefix.mean_difference, -1.0);
        assert_eq!((prefix.wins, prefix.losses, prefix.ties), (0, 1, 1));
        assert!(paired_table(&rows).contains("| judgeq − snapkv | 64 | hit_rate | +0.167 |"));

        let alone = EvalRun {
            methods: vec![method("judgeq", PolicyId::JUDGEQ)],
            ..run
        };
        assert_eq!(reference(&alone), None);
    }
}

//! `judgeq tasks`' paired comparisons: each method against the reference (SnapKV when it ran),
//! sample by sample, at each budget, with the statistics of [`crate::paired`]. The means are
//! over samples (every task's samples together), where the summary's score averages the tasks'
//! means; the two agree when the tasks have as many samples each, as the generated sets do.

use crate::paired::{PairedStats, reference_index};
use crate::policy::AskedBudget;
use crate::tasks::journal::{CellResult, RunHeader, SampleResult};

/// A per-sample value compared between two methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleMetric {
    /// The task's score (the needle found, RULER's recall...), in `[0, 1]`.
    Score,
    /// Hit rate against the raw oracle, the paper's.
    HitRate,
    /// Share of the decoded tokens' attention on kept entries.
    MassKept,
    /// Share of the evidence (needle) tokens kept; samples without evidence are left out.
    EvidenceKept,
    /// Leading tokens the answer shares with the full-cache answer.
    MatchedPrefix,
}

impl SampleMetric {
    /// Every metric, in report order.
    pub const ALL: [Self; 5] = [
        Self::Score,
        Self::HitRate,
        Self::MassKept,
        Self::EvidenceKept,
        Self::MatchedPrefix,
    ];

    /// The metric's name in `paired.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::HitRate => "hit_rate",
            Self::MassKept => "mass_kept",
            Self::EvidenceKept => "evidence_kept",
            Self::MatchedPrefix => "matched_prefix",
        }
    }

    /// The factor and decimals the Markdown table writes differences with: percentage points
    /// for shares, tokens for the prefix.
    fn display(self) -> (f64, usize, &'static str) {
        match self {
            Self::MatchedPrefix => (1.0, 2, "tokens"),
            _ => (100.0, 1, "points"),
        }
    }

    /// The cell's value, `None` when the sample has none (no evidence).
    fn of(self, cell: &CellResult) -> Option<f64> {
        match self {
            Self::Score => Some(cell.score),
            Self::HitRate => Some(f64::from(cell.hit_rate)),
            Self::MassKept => Some(f64::from(cell.mass_kept)),
            Self::EvidenceKept => cell.evidence_kept.map(f64::from),
            Self::MatchedPrefix => Some(cell.matched_prefix as f64),
        }
    }
}

/// One method against the reference at one budget on one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPairedRow {
    /// Method id.
    pub method: String,
    /// Reference method id.
    pub reference: String,
    /// The budget as asked.
    pub asked: AskedBudget,
    /// The metric.
    pub metric: SampleMetric,
    /// Method − reference over the samples both were measured on.
    pub stats: PairedStats,
}

/// Every method but the reference against it, at every asked budget and every metric measured
/// on at least one sample by both, in method, budget, metric order; empty when fewer than two
/// methods ran.
pub fn paired_rows(header: &RunHeader, results: &[SampleResult]) -> Vec<TaskPairedRow> {
    let Some(reference) = reference_index(header.methods.iter().map(|m| m.id.as_str())) else {
        return Vec::new();
    };
    let reference = &header.methods[reference].id;
    let mut sorted: Vec<&SampleResult> = results.iter().filter(|r| r.skipped.is_none()).collect();
    sorted.sort_by_key(|r| r.index);
    let mut rows = Vec::new();
    for method in header.methods.iter().filter(|m| &m.id != reference) {
        for asked in header.asked() {
            for metric in SampleMetric::ALL {
                let value = |sample: &SampleResult, id: &str| {
                    sample
                        .cells
                        .iter()
                        .find(|c| c.method == id && c.asked() == asked)
                        .and_then(|c| metric.of(c))
                };
                let differences: Vec<f64> = sorted
                    .iter()
                    .filter_map(|s| Some(value(s, &method.id)? - value(s, reference)?))
                    .collect();
                if let Some(stats) = PairedStats::of(&differences) {
                    rows.push(TaskPairedRow {
                        method: method.id.clone(),
                        reference: reference.clone(),
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

/// `paired.csv`: one line per row, shares as fractions and the prefix in tokens.
pub fn paired_csv(rows: &[TaskPairedRow]) -> String {
    let mut out = String::from(
        "method,reference,budget,ratio,metric,samples,mean_difference,ci_low,ci_high,wins,losses,ties\n",
    );
    for r in rows {
        let (budget, ratio) = match r.asked {
            AskedBudget::Entries(b) => (b.to_string(), String::new()),
            AskedBudget::Removed(ratio) => (String::new(), ratio.removed().to_string()),
        };
        out.push_str(&format!(
            "{},{},{budget},{ratio},{},{}\n",
            r.method,
            r.reference,
            r.metric.name(),
            r.stats.csv_fields()
        ));
    }
    out
}

/// The comparisons as a section of `summary.md`, methods named by their labels; empty when
/// there are none.
pub fn paired_markdown(header: &RunHeader, rows: &[TaskPairedRow]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let label = |id: &str| {
        header
            .methods
            .iter()
            .find(|m| m.id == id)
            .map_or(id.to_owned(), |m| m.label.clone())
    };
    let mut out = format!(
        "## Against {}, sample by sample\n\nMean difference over the samples both were measured \
         on (percentage points; tokens for the matched prefix), its 95% bootstrap interval \
         (10,000 resamples), and the samples won, lost and tied.\n\n| method | budget | metric \
         | mean difference | 95% interval | wins / losses / ties |\n|---|---:|---|---:|---|---:|\n",
        label(&first.reference)
    );
    for r in rows {
        let (scale, decimals, unit) = r.metric.display();
        out.push_str(&format!(
            "| {} | {} | {} ({unit}) | {} |\n",
            label(&r.method),
            r.asked,
            r.metric.name(),
            r.stats.markdown_cells(scale, decimals)
        ));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyId;
    use crate::tasks::journal::tests::{header, result};
    use crate::tasks::journal::{MethodRecord, Shard};

    /// Judge Q listed first, SnapKV second (the reference); samples 0–3 evaluated, sample 4
    /// skipped. At budget 8 Judge Q scores 1, hits 0.5, keeps the prefix one token longer than
    /// SnapKV and has no evidence on sample 3; SnapKV's values are `result`'s.
    #[test]
    fn methods_are_compared_with_snapkv_sample_by_sample() {
        let mut h = header(Shard::WHOLE);
        h.methods.insert(
            0,
            MethodRecord {
                id: "judgeq".into(),
                label: "Judge Q".into(),
                policy: PolicyId::JUDGEQ,
                settings: Default::default(),
            },
        );
        let results: Vec<SampleResult> = (0..5)
            .map(|index| {
                let mut r = result(index);
                let judged: Vec<CellResult> = r
                    .cells
                    .iter()
                    .map(|c| CellResult {
                        method: "judgeq".into(),
                        score: 1.0,
                        hit_rate: 0.5,
                        matched_prefix: c.matched_prefix + 1,
                        evidence_kept: (index != 3).then_some(0.75),
                        ..c.clone()
                    })
                    .collect();
                r.cells.extend(judged);
                if index == 4 {
                    r.skipped = Some("too long".into());
                }
                r
            })
            .collect();
        let rows = paired_rows(&h, &results);
        assert_eq!(rows.len(), 2 * SampleMetric::ALL.len());
        let at = |budget: usize, metric| {
            rows.iter()
                .find(|r| r.asked == AskedBudget::Entries(budget) && r.metric == metric)
                .unwrap()
        };
        let score = at(8, SampleMetric::Score);
        assert_eq!(
            (score.method.as_str(), score.reference.as_str()),
            ("judgeq", "snapkv")
        );
        // SnapKV scores 1, 0, 1, 0 at budget 8: differences 0, 1, 0, 1.
        assert_eq!(score.stats.items, 4);
        assert_eq!(score.stats.mean_difference, 0.5);
        assert_eq!(
            (score.stats.wins, score.stats.losses, score.stats.ties),
            (2, 0, 2)
        );
        // SnapKV hits 0, 0.25, 0.5, 0.75: differences 0.5, 0.25, 0, −0.25.
        let hit = &at(8, SampleMetric::HitRate).stats;
        assert_eq!(hit.mean_difference, 0.125);
        assert_eq!((hit.wins, hit.losses, hit.ties), (2, 1, 1));
        // Sample 3 has no evidence under Judge Q: three samples, each +0.25.
        let evidence = &at(8, SampleMetric::EvidenceKept).stats;
        assert_eq!((evidence.items, evidence.interval), (3, (0.25, 0.25)));
        assert_eq!(
            at(16, SampleMetric::MatchedPrefix).stats.interval,
            (1.0, 1.0)
        );

        let csv = paired_csv(&rows);
        assert!(csv.starts_with("method,reference,budget,ratio,metric,samples,"));
        assert!(csv.contains("\njudgeq,snapkv,8,,score,4,0.5,"), "{csv}");
        let markdown = paired_markdown(&h, &rows);
        assert!(markdown.starts_with("## Against SnapKV, sample by sample"));
        assert!(
            markdown.contains("| Judge Q | 8 | hit_rate (points) | +12.5 | ["),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "| Judge Q | 16 | matched_prefix (tokens) | +1.00 | [+1.00, +1.00] | 4 / 0 / 0 |"
            ),
            "{markdown}"
        );

        // One method: nothing to compare.
        assert!(paired_rows(&header(Shard::WHOLE), &results).is_empty());
        assert!(paired_markdown(&h, &[]).is_empty());
    }
}

//! The metrics table: one row per policy × budget, as `metrics.csv` and as a readable table.

use serde::{Deserialize, Serialize};

use crate::policy::{AskedBudget, PolicyMetrics, Ratio};
use crate::session::Answer;

/// How an answer decoded under eviction compares with the full-cache answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerAgreement {
    /// The answer under eviction equals the full-cache answer token for token.
    pub exact_match: bool,
    /// Number of leading tokens the two answers share.
    pub matched_prefix: usize,
    /// The answer decoded under eviction, as text.
    pub answer: String,
}

impl AnswerAgreement {
    /// Compares `answer` (decoded under eviction) with `reference` (the full-cache answer).
    pub fn between(reference: &Answer, answer: &Answer) -> Self {
        let matched_prefix = reference
            .ids
            .iter()
            .zip(&answer.ids)
            .take_while(|(a, b)| a == b)
            .count();
        Self {
            exact_match: reference.ids == answer.ids,
            matched_prefix,
            answer: answer.text.clone(),
        }
    }
}

/// One policy at one budget.
///
/// Filled from the policy room's [`PolicyMetrics`] by [`MetricsRow::new`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Policy id, as in file names (`snapkv`).
    pub policy: String,
    /// Policy name for people (`SnapKV`).
    pub label: String,
    /// KV entries kept per layer and head.
    pub budget: usize,
    /// The ratio removed that `budget` was resolved from, when the budget was asked as one
    /// (`--ratios`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
    /// Mean over layers and heads of |kept ∩ oracle| / |oracle|.
    pub hit_rate: f32,
    /// Mean over layers and heads of the decoded tokens' attention mass on kept entries.
    pub mass_kept: f32,
    /// Bytes of KV cache the kept entries take.
    pub kv_bytes: usize,
    /// Agreement with the full-cache answer, when decoding under eviction ran.
    pub agreement: Option<AnswerAgreement>,
    /// A remark from the policy (a clamped budget, a missing source), when there is one.
    pub note: Option<String>,
}

impl MetricsRow {
    /// The row of one policy's metrics (means over layers and heads), with the answer's
    /// agreement when decoding under eviction ran.
    pub fn new(metrics: &PolicyMetrics, agreement: Option<AnswerAgreement>) -> Self {
        Self {
            policy: metrics.policy.id().to_owned(),
            label: metrics.policy.label().to_owned(),
            budget: metrics.budget.asked(),
            ratio: None,
            hit_rate: metrics.mean_hit_rate,
            mass_kept: metrics.mean_mass_kept,
            kv_bytes: metrics.kv_bytes,
            agreement,
            note: metrics.note.clone(),
        }
    }

    /// The same row, its budget asked as `ratio` removed.
    pub fn with_ratio(self, ratio: Option<Ratio>) -> Self {
        Self { ratio, ..self }
    }

    /// The budget column: `64`, or `ratio 0.50 (kept 742)`.
    pub fn budget_label(&self) -> String {
        AskedBudget::of(self.budget, self.ratio).label_kept(self.budget)
    }
}

/// Column names of `metrics.csv`, in order (`ratio` is empty unless the budget was asked as a
/// ratio removed).
pub const METRICS_COLUMNS: [&str; 10] = [
    "policy",
    "budget",
    "hit_rate",
    "mass_kept",
    "kv_bytes",
    "exact_match",
    "matched_prefix",
    "answer",
    "note",
    "ratio",
];

/// `metrics.csv`: a header line, then one line per row (RFC 4180 quoting, `\n` line ends).
///
/// Floats are written in Rust's shortest round-trip form, so reading them back gives the same
/// f32; unknown agreement fields are empty cells.
pub fn metrics_csv(rows: &[MetricsRow]) -> String {
    let mut out = METRICS_COLUMNS.join(",");
    out.push('\n');
    for row in rows {
        let (exact, prefix, answer) = match &row.agreement {
            Some(a) => (
                a.exact_match.to_string(),
                a.matched_prefix.to_string(),
                a.answer.as_str(),
            ),
            None => (String::new(), String::new(), ""),
        };
        let ratio = row.ratio.map_or(String::new(), |r| r.removed().to_string());
        let cells = [
            row.policy.as_str(),
            &row.budget.to_string(),
            &row.hit_rate.to_string(),
            &row.mass_kept.to_string(),
            &row.kv_bytes.to_string(),
            &exact,
            &prefix,
            answer,
            row.note.as_deref().unwrap_or(""),
            &ratio,
        ];
        let line: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// The rows as an aligned plain-text table for a terminal, one line per row.
///
/// Rates are percentages, KV sizes human units, answers on one line and shortened.
pub fn metrics_table(rows: &[MetricsRow]) -> String {
    let header = [
        "policy",
        "budget",
        "hit rate",
        "mass kept",
        "KV kept",
        "same answer",
        "answer",
    ];
    let right_aligned = [false, true, true, true, true, true, false];
    let body: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            let (same, answer) = match &row.agreement {
                Some(a) if a.exact_match => ("yes".to_owned(), one_line(&a.answer, 48)),
                Some(a) => (format!("{} tok", a.matched_prefix), one_line(&a.answer, 48)),
                None => ("–".to_owned(), String::new()),
            };
            let answer = match &row.note {
                Some(note) if answer.is_empty() => format!("({note})"),
                Some(note) => format!("{answer} ({note})"),
                None => answer,
            };
            [
                row.label.clone(),
                row.budget_label(),
                percent(row.hit_rate),
                percent(row.mass_kept),
                human_bytes(row.kv_bytes),
                same,
                answer,
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for cells in &body {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(right_aligned)
            .map(|((cell, width), right)| {
                let pad = " ".repeat(width - cell.chars().count());
                if right {
                    format!("{pad}{cell}")
                } else {
                    format!("{cell}{pad}")
                }
            })
            .collect();
        let mut line = padded.join("  ");
        line.truncate(line.trim_end().len());
        line.push('\n');
        line
    };
    let mut out = render(&header.map(str::to_owned));
    for cells in &body {
        out.push_str(&render(cells));
    }
    out
}

/// One CSV cell, quoted when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn percent(rate: f32) -> String {
    if rate.is_finite() {
        format!("{:.1}%", rate * 100.0)
    } else {
        "–".to_owned()
    }
}

/// Bytes in B, KiB, MiB or GiB with three significant digits.
fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ if value < 10.0 => format!("{value:.2} {}", UNITS[unit]),
        _ if value < 100.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

/// `text` on one line (line breaks shown as `⏎`), cut to `max_chars` with an ellipsis.
fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| {
            if c == '\n' {
                '⏎'
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let mut cut: String = flat.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(ids: &[u32], text: &str) -> Answer {
        Answer {
            ids: ids.to_vec(),
            tokens: Vec::new(),
            text: text.into(),
        }
    }

    #[test]
    fn agreement_counts_the_shared_leading_tokens() {
        let full = answer(&[5, 6, 7, 8], "full");
        let same = AnswerAgreement::between(&full, &answer(&[5, 6, 7, 8], "same"));
        assert!(same.exact_match);
        assert_eq!(same.matched_prefix, 4);
        let diverged = AnswerAgreement::between(&full, &answer(&[5, 6, 9, 8], "diverged"));
        assert!(!diverged.exact_match);
        assert_eq!(diverged.matched_prefix, 2);
        assert_eq!(diverged.answer, "diverged");
        let shorter = AnswerAgreement::between(&full, &answer(&[5, 6], "shorter"));
        assert!(!shorter.exact_match);
        assert_eq!(shorter.matched_prefix, 2);
        assert_eq!(
            AnswerAgreement::between(&full, &answer(&[], "")).matched_prefix,
            0
        );
    }

    /// A small RFC 4180 reader, written independently of the writer above.
    fn parse_csv(text: &str) -> Vec<Vec<String>> {
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => cell.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut cell)),
                (false, '\n') => {
                    record.push(std::mem::take(&mut cell));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => cell.push(c),
            }
        }
        assert!(
            cell.is_empty() && record.is_empty(),
            "file must end with a newline"
        );
        records
    }

    fn rows() -> Vec<MetricsRow> {
        vec![
            MetricsRow {
                policy: "snapkv".into(),
                label: "SnapKV".into(),
                budget: 64,
                ratio: None,
                hit_rate: 0.812_345_7,
                mass_kept: 1.0 / 3.0,
                kv_bytes: 1_572_864,
                agreement: Some(AnswerAgreement {
                    exact_match: false,
                    matched_prefix: 3,
                    answer: "Paris, \"the\" capital\nof France".into(),
                }),
                note: None,
            },
            MetricsRow {
                policy: "streaming_llm".into(),
                label: "StreamingLLM".into(),
                budget: 4096,
                ratio: Some(Ratio::new(0.5).unwrap()),
                hit_rate: 1.0,
                mass_kept: 0.999_999_9,
                kv_bytes: 512,
                agreement: None,
                note: Some("budget clamped to 36, sinks + window".into()),
            },
        ]
    }

    #[test]
    fn csv_reads_back_exactly() {
        let rows = rows();
        let records = parse_csv(&metrics_csv(&rows));
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], METRICS_COLUMNS);
        for (record, row) in records[1..].iter().zip(&rows) {
            assert_eq!(record.len(), METRICS_COLUMNS.len());
            assert_eq!(record[0], row.policy);
            assert_eq!(record[1].parse::<usize>().unwrap(), row.budget);
            assert_eq!(record[2].parse::<f32>().unwrap(), row.hit_rate);
            assert_eq!(record[3].parse::<f32>().unwrap(), row.mass_kept);
            assert_eq!(record[4].parse::<usize>().unwrap(), row.kv_bytes);
            match &row.agreement {
                Some(a) => {
                    assert_eq!(record[5].parse::<bool>().unwrap(), a.exact_match);
                    assert_eq!(record[6].parse::<usize>().unwrap(), a.matched_prefix);
                    assert_eq!(record[7], a.answer);
                }
                None => assert_eq!(&record[5..8], ["", "", ""]),
            }
            assert_eq!(record[8], row.note.clone().unwrap_or_default());
            assert_eq!(
                record[9].parse::<f64>().ok(),
                row.ratio.map(|r| r.removed())
            );
        }
    }

    #[test]
    fn table_is_aligned_and_readable() {
        let table = metrics_table(&rows());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("policy"), "{table}");
        assert!(lines[1].starts_with("SnapKV "), "{table}");
        assert!(
            lines[1].contains("81.2%")
                && lines[1].contains("33.3%")
                && lines[1].contains("1.50 MiB"),
            "{table}"
        );
        assert!(
            lines[1].contains("3 tok") && lines[1].contains("Paris, \"the\" capital⏎of France"),
            "{table}"
        );
        assert!(
            lines[2].contains("100.0%")
                && lines[2].contains("512 B")
                && lines[2].contains("(budget clamped")
        );
        // Right-aligned numeric columns end at the same character column.
        let end_of = |line: &str, cell: &str| line.find(cell).unwrap() + cell.len();
        assert_eq!(end_of(lines[0], "budget"), end_of(lines[1], "64"));
        assert_eq!(
            end_of(lines[0], "budget"),
            end_of(lines[2], "ratio 0.50 (kept 4096)")
        );
        assert_eq!(end_of(lines[1], "81.2%"), end_of(lines[2], "100.0%"));
    }

    #[test]
    fn helpers_format_as_documented() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.00 KiB");
        assert_eq!(human_bytes(150 * 1024 * 1024), "150 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.00 GiB");
        assert_eq!(one_line("  a\nb  ", 10), "a⏎b");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}

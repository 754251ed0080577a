//! `manifest.json`: what a data export contains and how it was made.
//!
//! The manifest is the contract other tools read (see the design's "Contracts other tools
//! depend on"): the model and its weights hash, every prompt token with its text, the spans
//! of document, question and chat scaffolding, the settings, the answer, and for every file
//! its array dtype, shape and what each axis means.

use serde::{Deserialize, Serialize};

use crate::policy::Ratio;
use crate::session::{Answer, InspectSettings, ModelInfo, PromptLayout};

/// Version of the manifest layout; bumped when a field changes meaning or disappears.
pub const MANIFEST_FORMAT: u32 = 1;

/// The program that wrote a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramInfo {
    /// `judgeq`.
    pub name: String,
    /// The crate version, e.g. `0.1.0`.
    pub version: String,
}

impl ProgramInfo {
    /// This build of judgeq.
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Eviction settings of an `evict` run or of the GUI's current view, when there are any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvictionSettings {
    /// Policy ids, as in the file names (`snapkv`, `judgeq`, …).
    pub policies: Vec<String>,
    /// Budgets: KV entries kept per layer and head, window included.
    pub budgets: Vec<usize>,
    /// The ratios removed the budgets were resolved from, in the same order, when they were
    /// asked as ratios (`--ratios`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// The policy settings as the policy room serialises them (window, pooling, granularity,
    /// sinks, …), kept verbatim.
    pub settings: serde_json::Value,
}

/// The array inside an `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayInfo {
    /// NumPy type descriptor: `<f4` or `|u1`.
    pub dtype: String,
    /// Shape, C order.
    pub shape: Vec<usize>,
    /// What each axis indexes, one name per axis (`layer`, `query_head`, `query`, `key`, …).
    pub axes: Vec<String>,
}

/// One file of the export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the export directory.
    pub name: String,
    /// What the file holds, in a sentence.
    pub description: String,
    /// Dtype, shape and axes, for `.npy` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<ArrayInfo>,
}

/// The whole `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`] at the time of writing.
    pub format: u32,
    /// The program and version that wrote the export.
    pub program: ProgramInfo,
    /// When the export was written, UTC, RFC 3339 (`2026-11-28T14:03:07Z`).
    pub created: String,
    /// The model: id, architecture, path, weights sha256 and dimensions.
    pub model: ModelInfo,
    /// Number of prompt tokens: the key axis of every array.
    pub n_prompt: usize,
    /// The prompt text, token ids, token strings and spans.
    pub prompt: PromptLayout,
    /// Window, decoded tokens and soft-token file of the inspection.
    pub settings: InspectSettings,
    /// Policies, budgets and policy settings, when the export has eviction results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction: Option<EvictionSettings>,
    /// The full-cache answer.
    pub answer: Answer,
    /// Every file written, the manifest excepted.
    pub files: Vec<FileEntry>,
}

/// The current time as RFC 3339 UTC with seconds, from the system clock.
pub(crate) fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_timestamp(seconds)
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
fn utc_timestamp(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let rest = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month and day of the `days`-th day after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_known_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        // `date -u -d @951782400` and friends.
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(utc_timestamp(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_798_761_599), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous_one() {
        let mut previous = civil_from_days(0);
        for days in 1..(146_097 * 2) {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = (y, m, d) == (py, pm + 1, 1);
            let next_year = (y, m, d) == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{previous:?} -> {:?}",
                (y, m, d)
            );
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            if m == 2 && d == 29 {
                assert!(leap, "{y}-02-29");
            }
            previous = (y, m, d);
        }
    }
}

//! Budgets asked as a ratio removed ([`Ratio`], kvpress's `compression_ratio`) and the two ways
//! a budget can be asked ([`AskedBudget`]), resolved to entries per prompt.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Budget, PolicyError};

/// A share of a prompt's KV entries removed, in `[0, 1)`: kvpress's `compression_ratio`.
///
/// On a prompt of `n` tokens (every key the policies rank, the question included) it keeps
/// `int(n · (1 − r))` entries per layer and head, kvpress's rule, truncation and floating point
/// included (`n = 1000, r = 0.9` keeps 99, as Python's `int(1000 * (1 - 0.9))` does), and at
/// least 1: a cache is never empty.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Ratio(f64);

impl Ratio {
    /// The ratio `removed`; refused outside `[0, 1)` (1 would remove every entry).
    pub fn new(removed: f64) -> Result<Self, PolicyError> {
        if (0.0..1.0).contains(&removed) {
            Ok(Self(removed))
        } else {
            Err(PolicyError::BadRatio(removed))
        }
    }

    /// The share removed.
    pub fn removed(self) -> f64 {
        self.0
    }

    /// Entries kept per layer and head on a prompt of `prompt_len` tokens:
    /// `max(1, int(n · (1 − r)))`.
    pub fn kept(self, prompt_len: usize) -> usize {
        // `as` truncates toward zero, like Python's `int`.
        ((prompt_len as f64 * (1.0 - self.0)) as usize).max(1)
    }

    /// The ratio removed by keeping `kept` of `prompt_len` entries (the slider's reading).
    pub fn of_kept(kept: usize, prompt_len: usize) -> f64 {
        if prompt_len == 0 {
            0.0
        } else {
            1.0 - kept.min(prompt_len) as f64 / prompt_len as f64
        }
    }
}

impl TryFrom<f64> for Ratio {
    type Error = PolicyError;

    fn try_from(removed: f64) -> Result<Self, Self::Error> {
        Self::new(removed)
    }
}

impl From<Ratio> for f64 {
    fn from(ratio: Ratio) -> Self {
        ratio.0
    }
}

impl FromStr for Ratio {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let removed = text
            .trim()
            .parse::<f64>()
            .map_err(|_| PolicyError::RatioText(text.to_owned()))?;
        Self::new(removed)
    }
}

impl fmt::Display for Ratio {
    /// Two decimals (`0.50`), more when the ratio needs them (`0.125`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = format!("{:.2}", self.0);
        if short.parse::<f64>() == Ok(self.0) {
            f.write_str(&short)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// A budget as it was asked: entries per layer and head (`--budgets`), or a ratio removed
/// (`--ratios`) that each prompt resolves to its own entries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AskedBudget {
    /// KV entries kept per layer and head, whatever the prompt.
    Entries(usize),
    /// A share of each prompt's entries removed.
    Removed(Ratio),
}

impl AskedBudget {
    /// The budgets of a run: the ratios when any were given, the entries otherwise.
    pub fn list(entries: &[usize], ratios: &[Ratio]) -> Vec<Self> {
        if ratios.is_empty() {
            entries.iter().map(|&b| Self::Entries(b)).collect()
        } else {
            ratios.iter().map(|&r| Self::Removed(r)).collect()
        }
    }

    /// The budget one result was computed at: `ratio` when one was asked, else `entries`.
    pub fn of(entries: usize, ratio: Option<Ratio>) -> Self {
        ratio.map_or(Self::Entries(entries), Self::Removed)
    }

    /// Entries asked per layer and head on a prompt of `prompt_len` tokens.
    pub fn entries_for(self, prompt_len: usize) -> usize {
        match self {
            Self::Entries(b) => b,
            Self::Removed(r) => r.kept(prompt_len),
        }
    }

    /// The [`Budget`] on a prompt of `prompt_len` tokens.
    pub fn budget(self, prompt_len: usize) -> Result<Budget, PolicyError> {
        Budget::new(self.entries_for(prompt_len), prompt_len)
    }

    /// The ratio, when one was asked.
    pub fn ratio(self) -> Option<Ratio> {
        match self {
            Self::Entries(_) => None,
            Self::Removed(r) => Some(r),
        }
    }

    /// A label with what was kept: `64`, or `ratio 0.50 (kept 742)`.
    pub fn label_kept(self, kept: usize) -> String {
        match self {
            Self::Entries(b) => b.to_string(),
            Self::Removed(r) => format!("ratio {r} (kept {kept})"),
        }
    }

    /// A number that orders budgets from the smallest cache to the largest (entries, or the
    /// share kept), for sorting and for a figure's x axis.
    pub fn size(self) -> f64 {
        match self {
            Self::Entries(b) => b as f64,
            Self::Removed(r) => 1.0 - r.removed(),
        }
    }
}

impl fmt::Display for AskedBudget {
    /// `64`, or `ratio 0.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entries(b) => write!(f, "{b}"),
            Self::Removed(r) => write!(f, "ratio {r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(r: f64) -> Ratio {
        Ratio::new(r).unwrap()
    }

    #[test]
    fn kept_is_kvpress_int_of_n_times_one_minus_r() {
        // Hand-computed: int(1000 * 0.25) = 250, int(7 * 0.5) = int(3.5) = 3,
        // int(1484 * 0.5) = 742, and Python's int(1000 * (1 - 0.9)) = 99 because 1 - 0.9 is
        // 0.09999999999999998 in binary floating point.
        assert_eq!(ratio(0.75).kept(1000), 250);
        assert_eq!(ratio(0.5).kept(7), 3);
        assert_eq!(ratio(0.5).kept(1484), 742);
        assert_eq!(ratio(0.9).kept(1000), 99);
        assert_eq!(ratio(0.25).kept(10), 7); // 7.5 → 7
        assert_eq!(ratio(0.0).kept(37), 37);
    }

    #[test]
    fn kept_is_at_least_one() {
        // int(7 * 0.1) = 0: the cache keeps 1 entry instead of none.
        assert_eq!(ratio(0.9).kept(7), 1);
        assert_eq!(ratio(0.5).kept(1), 1);
    }

    #[test]
    fn ratios_outside_zero_to_one_are_refused() {
        for bad in [1.0, 1.5, -0.1, f64::NAN, f64::INFINITY] {
            let err = Ratio::new(bad).unwrap_err();
            assert!(err.to_string().contains("[0, 1)"), "{bad}: {err}");
        }
        assert_eq!("0.5".parse::<Ratio>(), Ok(ratio(0.5)));
        assert!(matches!(
            "half".parse::<Ratio>(),
            Err(PolicyError::RatioText(t)) if t == "half"
        ));
        assert_eq!("1".parse::<Ratio>(), Err(PolicyError::BadRatio(1.0)));
    }

    #[test]
    fn display_has_two_decimals_or_as_many_as_needed() {
        assert_eq!(ratio(0.5).to_string(), "0.50");
        assert_eq!(ratio(0.0).to_string(), "0.00");
        assert_eq!(ratio(0.125).to_string(), "0.125");
        assert_eq!(
            AskedBudget::Removed(ratio(0.5)).label_kept(742),
            "ratio 0.50 (kept 742)"
        );
        assert_eq!(AskedBudget::Entries(64).label_kept(64), "64");
        assert_eq!(AskedBudget::Removed(ratio(0.75)).to_string(), "ratio 0.75");
    }

    #[test]
    fn asked_budgets_resolve_per_prompt() {
        let asked = AskedBudget::list(&[64], &[ratio(0.5), ratio(0.75)]);
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0].entries_for(100), 50);
        assert_eq!(asked[1].entries_for(100), 25);
        assert_eq!(asked[1].entries_for(1000), 250);
        assert_eq!(asked[1].budget(1000).unwrap().asked(), 250);
        let entries = AskedBudget::list(&[64, 128], &[]);
        assert_eq!(
            entries,
            vec![AskedBudget::Entries(64), AskedBudget::Entries(128)]
        );
        assert_eq!(entries[0].entries_for(1000), 64);
        assert_eq!(AskedBudget::of(250, Some(ratio(0.75))), asked[1]);
        assert_eq!(AskedBudget::of(64, None), entries[0]);
    }

    #[test]
    fn the_slider_reads_the_ratio_removed() {
        assert_eq!(Ratio::of_kept(250, 1000), 0.75);
        assert_eq!(Ratio::of_kept(2000, 1000), 0.0);
        assert_eq!(Ratio::of_kept(3, 0), 0.0);
    }

    #[test]
    fn ratios_serialise_as_numbers_and_refuse_bad_ones() {
        assert_eq!(serde_json::to_string(&ratio(0.5)).unwrap(), "0.5");
        assert_eq!(serde_json::from_str::<Ratio>("0.25").unwrap(), ratio(0.25));
        assert!(serde_json::from_str::<Ratio>("1.0").is_err());
    }
}

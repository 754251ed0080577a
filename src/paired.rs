//! Paired comparisons of two methods measured on the same items (prompts, samples): the mean
//! per-item difference, its 95% percentile-bootstrap interval, and how many items each side
//! wins. Means over a few dozen items move by a point or two between neighbouring runs; the
//! interval says whether a difference is larger than that. `judgeq eval` and `judgeq tasks`
//! both report their methods this way against [`PREFERRED_REFERENCE`].

use crate::rng::SplitMix64;

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 10_000;
/// Seed of the resampling, so that a report is reproduced exactly.
pub const SEED: u64 = 0;

/// The method every other one is compared with when it ran: SnapKV.
pub const PREFERRED_REFERENCE: &str = "snapkv";

/// Index of the reference among the methods' ids: [`PREFERRED_REFERENCE`] when it is there,
/// else the first; `None` when fewer than two methods ran (nothing to compare).
pub fn reference_index<'a>(ids: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    let ids: Vec<&str> = ids.into_iter().collect();
    (ids.len() >= 2).then(|| {
        ids.iter()
            .position(|&id| id == PREFERRED_REFERENCE)
            .unwrap_or(0)
    })
}

/// The statistics of one method's per-item differences from the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct PairedStats {
    /// Items measured by both.
    pub items: usize,
    /// Mean of method − reference over those items.
    pub mean_difference: f64,
    /// 95% percentile-bootstrap interval of that mean.
    pub interval: (f64, f64),
    /// Items where the method scored more.
    pub wins: usize,
    /// Items where it scored less.
    pub losses: usize,
    /// Items where both scored the same.
    pub ties: usize,
}

impl PairedStats {
    /// The statistics of `differences` (method − reference, one per item); `None` when there
    /// are none.
    pub fn of(differences: &[f64]) -> Option<Self> {
        if differences.is_empty() {
            return None;
        }
        let count = |keep: fn(f64) -> bool| differences.iter().filter(|&&d| keep(d)).count();
        Some(Self {
            items: differences.len(),
            mean_difference: differences.iter().sum::<f64>() / differences.len() as f64,
            interval: bootstrap_interval(differences, RESAMPLES, SEED),
            wins: count(|d| d > 0.0),
            losses: count(|d| d < 0.0),
            ties: count(|d| d == 0.0),
        })
    }

    /// The CSV columns `items,mean_difference,ci_low,ci_high,wins,losses,ties` (the first
    /// named by the caller: prompts, samples).
    pub fn csv_fields(&self) -> String {
        format!(
            "{},{},{},{},{},{},{}",
            self.items,
            self.mean_difference,
            self.interval.0,
            self.interval.1,
            self.wins,
            self.losses,
            self.ties
        )
    }

    /// The Markdown cells `mean | [low, high] | wins / losses / ties`, the values multiplied
    /// by `scale` (100 for percentage points) and written with `decimals` decimals.
    pub fn markdown_cells(&self, scale: f64, decimals: usize) -> String {
        format!(
            "{:+.d$} | [{:+.d$}, {:+.d$}] | {} / {} / {}",
            self.mean_difference * scale,
            self.interval.0 * scale,
            self.interval.1 * scale,
            self.wins,
            self.losses,
            self.ties,
            d = decimals
        )
    }
}

/// The 95% percentile-bootstrap interval of the mean of `values` (not empty): the 2.5th and
/// 97.5th percentiles of the means of `resamples` draws of `values.len()` values with
/// replacement, from `seed`.
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Differences +0.25, −0.25, +0.5, 0: mean 0.125, two wins, one loss, one tie; nothing to
    /// compare gives no statistics.
    #[test]
    fn statistics_count_wins_losses_and_ties() {
        let stats = PairedStats::of(&[0.25, -0.25, 0.5, 0.0]).unwrap();
        assert_eq!(stats.items, 4);
        assert_eq!(stats.mean_difference, 0.125);
        assert_eq!((stats.wins, stats.losses, stats.ties), (2, 1, 1));
        assert!(stats.interval.0 <= 0.125 && 0.125 <= stats.interval.1);
        assert!(stats.csv_fields().starts_with("4,0.125,"));
        assert!(stats.markdown_cells(100.0, 1).starts_with("+12.5 | ["));
        assert!(stats.markdown_cells(100.0, 1).ends_with("| 2 / 1 / 1"));
        assert_eq!(PairedStats::of(&[]), None);
    }

    /// SnapKV wherever it is listed, else the first method; one method has nothing to compare.
    #[test]
    fn the_reference_is_snapkv_when_it_ran() {
        assert_eq!(reference_index(["judgeq", "snapkv"]), Some(1));
        assert_eq!(reference_index(["judgeq", "h2o"]), Some(0));
        assert_eq!(reference_index(["snapkv"]), None);
    }
}

//! Axis ticks at "nice" steps (1, 2 or 5 times a power of ten) and their labels.

/// The step among 1, 2, 5 × 10^k that puts at most `max_ticks` ticks on `[lo, hi]`.
fn nice_step(lo: f64, hi: f64, max_ticks: usize) -> f64 {
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    let raw = span / max_ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Multiples of a nice step inside `[lo, hi]`, at most `max_ticks + 1` of them.
pub(crate) fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi < lo {
        return Vec::new();
    }
    let step = nice_step(lo, hi, max_ticks);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Integer ticks for a key or query axis over the positions `[first, last]`, at a step of
/// 1, 2 or 5 × 10^k chosen so that at most `max_ticks` fit.
pub(crate) fn integer_ticks(first: usize, last: usize, max_ticks: usize) -> Vec<usize> {
    let step = nice_step(first as f64, last as f64, max_ticks)
        .max(1.0)
        .round() as usize;
    let start = first.div_ceil(step) * step;
    (start..=last).step_by(step).collect()
}

/// A tick label with as many decimals as the step between ticks needs.
pub(crate) fn format_tick(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 {
        (-step.log10().floor()).max(0.0) as usize
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    // Avoid "-0" and use a true minus sign.
    if text.trim_start_matches(['-', '0', '.']).is_empty() {
        text.trim_start_matches('-').to_owned()
    } else {
        text.replacen('-', "−", 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_fall_on_round_numbers() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice_ticks(0.0, 0.037, 4), vec![0.0, 0.01, 0.02, 0.03]);
        assert_eq!(nice_ticks(3.0, 97.0, 5), vec![20.0, 40.0, 60.0, 80.0]);
        assert!(nice_ticks(1.0, 0.0, 5).is_empty());
        assert!(nice_ticks(0.0, f64::NAN, 5).is_empty());
    }

    #[test]
    fn integer_ticks_use_steps_of_one_two_or_five() {
        assert_eq!(integer_ticks(0, 8191, 5), vec![0, 2000, 4000, 6000, 8000]);
        assert_eq!(
            integer_ticks(100, 107, 8),
            vec![100, 101, 102, 103, 104, 105, 106, 107]
        );
        assert_eq!(integer_ticks(380, 411, 3), vec![380, 400]);
        assert_eq!(integer_ticks(5, 5, 4), vec![5]);
        for (first, last, max) in [(0, 8191, 6), (17, 4100, 4), (1, 3, 2), (0, 1, 10)] {
            let ticks = integer_ticks(first, last, max);
            assert!(
                !ticks.is_empty() && ticks.len() <= max + 1,
                "{first}..{last}: {ticks:?}"
            );
            assert!(ticks.iter().all(|t| (first..=last).contains(t)));
        }
    }

    #[test]
    fn labels_have_the_decimals_the_step_needs() {
        assert_eq!(format_tick(0.2, 0.2), "0.2");
        assert_eq!(format_tick(0.6000000000000001, 0.2), "0.6");
        assert_eq!(format_tick(0.03, 0.01), "0.03");
        assert_eq!(format_tick(40.0, 20.0), "40");
        assert_eq!(format_tick(-0.0, 0.1), "0.0");
        assert_eq!(format_tick(-1.5, 0.5), "−1.5");
    }
}

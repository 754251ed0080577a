//! LongEval's line-retrieval check, as `DachengLi1/LongChat` computes it in
//! `longeval/utils.py` (`test_lines_one_sample`): the last run of digits in the prediction,
//! read as an integer, must equal the expected number.

use super::python;

/// 1 when the last number in `prediction` equals `truth` as an integer, else 0 (also when
/// `truth` is not an integer).
pub fn last_number(prediction: &str, truth: &str) -> f64 {
    let last = python::digit_runs(prediction)
        .last()
        .and_then(|run| python::integer_digits(run));
    let expected = python::integer_digits(python::strip(truth));
    match (last, expected) {
        (Some(last), Some(expected)) if last == expected => 1.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_number_decides() {
        assert_eq!(
            last_number("The <REGISTER_CONTENT> is <2416>.", "2416"),
            1.0
        );
        // Two numbers: only the last counts.
        assert_eq!(last_number("line 7 holds 2416", "2416"), 1.0);
        assert_eq!(last_number("2416, not 7", "2416"), 0.0);
        // Integers: leading zeros do not matter.
        assert_eq!(last_number("02416", "2416"), 1.0);
        // Digits inside a word are still a number: "abc2416" → 2416.
        assert_eq!(last_number("abc2416", "2416"), 1.0);
        assert_eq!(last_number("no number", "2416"), 0.0);
        assert_eq!(last_number("", "2416"), 0.0);
        assert_eq!(last_number("2416", "not a number"), 0.0);
        // Any script's digits: "٢٤١٦" is 2416.
        assert_eq!(last_number("٢٤١٦", "2416"), 1.0);
    }
}

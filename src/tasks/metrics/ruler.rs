//! RULER's metrics, as `NVIDIA/RULER` defines them in `scripts/eval/synthetic/constants.py`
//! (`string_match_all`, `string_match_part`) after `scripts/eval/evaluate.py`'s
//! `postprocess_pred`. RULER reports percentages; these scores are the same fractions in
//! `[0, 1]`.

use super::python;

/// RULER's `postprocess_pred`: strip, turn every control character `\x00`–`\x1f` into a
/// newline, strip again.
pub fn postprocess(prediction: &str) -> String {
    let replaced: String = python::strip(prediction)
        .chars()
        .map(|c| if c <= '\u{1f}' { '\n' } else { c })
        .collect();
    python::strip(&replaced).to_owned()
}

/// `string_match_all` for one sample: the share of the references that occur in the
/// prediction, ignoring case (0 without references, where RULER would divide by zero).
pub fn string_match_all(prediction: &str, answers: &[String]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    let prediction = postprocess(prediction).to_lowercase();
    let found = answers
        .iter()
        .filter(|answer| prediction.contains(&answer.to_lowercase()))
        .count();
    found as f64 / answers.len() as f64
}

/// `string_match_part` for one sample: 1 when any reference occurs in the prediction, ignoring
/// case (0 without references).
pub fn string_match_part(prediction: &str, answers: &[String]) -> f64 {
    let prediction = postprocess(prediction).to_lowercase();
    let any = answers
        .iter()
        .any(|answer| prediction.contains(&answer.to_lowercase()));
    if any { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn postprocess_strips_and_turns_control_characters_into_newlines() {
        // strip → "a\tb\x00c"; \t (0x09) and \x00 become "\n"; nothing left to strip.
        assert_eq!(postprocess("  a\tb\u{0}c \n"), "a\nb\nc");
        // "\x01x\x02" → strip keeps it (\x01 is not whitespace) → "\nx\n" → strip → "x".
        assert_eq!(postprocess("\u{1}x\u{2}"), "x");
        assert_eq!(postprocess(""), "");
    }

    #[test]
    fn match_all_counts_the_share_of_references_found() {
        let answers = strings(&["7421", "Paris", "blue"]);
        // "7421" and "paris" (case folded) occur, "blue" does not: 2 / 3.
        let score = string_match_all("The numbers are 7421 and PARIS.", &answers);
        assert!((score - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(string_match_all("7421 paris BLUE", &answers), 1.0);
        assert_eq!(string_match_all("", &answers), 0.0);
        assert_eq!(string_match_all("anything", &[]), 0.0);
    }

    #[test]
    fn match_part_needs_one_reference() {
        let answers = strings(&["Ottawa", "the capital"]);
        assert_eq!(string_match_part("it is ottawa", &answers), 1.0);
        assert_eq!(string_match_part("Toronto", &answers), 0.0);
        assert_eq!(string_match_part("x", &[]), 0.0);
    }

    #[test]
    fn unicode_case_folding_and_control_characters() {
        // "ÉTÉ".lower() == "été" in Python; the \x0b inside the prediction becomes "\n", which
        // breaks the reference "a b" only if the reference spans it.
        assert_eq!(string_match_part("L'ÉTÉ", &strings(&["été"])), 1.0);
        assert_eq!(string_match_part("a\u{b}b", &strings(&["a b"])), 0.0);
        assert_eq!(string_match_part("a\u{b}b", &strings(&["a\nb"])), 1.0);
    }
}

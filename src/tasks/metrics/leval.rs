//! L-Eval's `exam` metric, as `OpenLMLab/LEval` computes it in `Evaluation/auto_eval.py`
//! (`process_output_mc`, `process_gt_mc`) and `Evaluation/em.py` (`exact_match_score`, the
//! best over the references). L-Eval's `f1` is LongBench's `qa_f1_score` (same normalisation
//! and token F1); its `rouge` is in `leval_rouge`.
//!
//! Multiple-choice tasks (QuALITY, TOEFL, Coursera) first reduce the prediction to option
//! letters and the reference to the letters of its first word; free-text tasks (topic
//! retrieval) compare the raw texts.

use super::{longbench, python};
use crate::tasks::sample::ExamFormat;

/// The exam score of `prediction` against one reference.
pub fn exam(format: ExamFormat, prediction: &str, truth: &str) -> f64 {
    match format {
        ExamFormat::SingleChoice | ExamFormat::MultipleChoice => {
            let several = format == ExamFormat::MultipleChoice;
            exact_match(
                &chosen_options(prediction, several),
                &reference_options(truth),
            )
        }
        ExamFormat::FreeText => exact_match(prediction, truth),
    }
}

/// `process_output_mc`: the option letters a prediction chooses. `"None"` for a blank
/// prediction, the prediction itself when it is a substring of `ABCD`, else (one correct
/// option) its first `A`–`D`, or (several, Coursera) the sorted letters of its leading run of
/// `A`–`D` or of the capitals followed by whitespace, `.` or `)` before any `Question`, or its
/// first run of `A`–`D`; `"A"` (L-Eval's guess) when nothing is found.
fn chosen_options(prediction: &str, several: bool) -> String {
    let is_option = |c: char| matches!(c, 'A'..='D');
    if python::strip(prediction).is_empty() {
        return "None".to_owned();
    }
    if "ABCD".contains(prediction) {
        return prediction.to_owned();
    }
    if !several {
        return prediction
            .chars()
            .find(|&c| is_option(c))
            .map_or_else(|| "A".to_owned(), String::from);
    }
    let leading: String = prediction.chars().take_while(|&c| is_option(c)).collect();
    if leading.chars().count() > 1 {
        return sorted_unique(&leading);
    }
    let rest = &prediction[leading.len()..];
    let before_question = rest.split("Question").next().unwrap_or(rest);
    let mut letters = leading;
    letters.extend(capitals_before_a_stop(before_question).filter(|&c| is_option(c)));
    let mut chosen = sorted_unique(&letters);
    if chosen.is_empty() {
        chosen = before_question
            .chars()
            .skip_while(|&c| !is_option(c))
            .take_while(|&c| is_option(c))
            .collect();
    }
    if chosen.is_empty() {
        chosen = "A".to_owned();
    }
    chosen
}

/// The capitals `[A-Z]` followed by whitespace, `.` or `)` (`re.findall(r"\s*[A-Z](?=[\s.)])")`
/// keeps exactly these letters).
fn capitals_before_a_stop(text: &str) -> impl Iterator<Item = char> + '_ {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).filter_map(move |at| {
        let next = chars.get(at + 1).copied()?;
        let stop = python::is_space(next) || next == '.' || next == ')';
        (chars[at].is_ascii_uppercase() && stop).then_some(chars[at])
    })
}

/// The distinct characters of `text`, sorted (`"".join(sorted(set(text)))`).
fn sorted_unique(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    chars.into_iter().collect()
}

/// `process_gt_mc`: the `A`–`D` letters of the reference's first word (`"(B) text"` → `"B"`),
/// `"A"` when there are none (also for an empty reference, where L-Eval would fail).
fn reference_options(truth: &str) -> String {
    let letters: String = python::split(truth)
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| matches!(c, 'A'..='D'))
        .collect();
    if letters.is_empty() {
        "A".to_owned()
    } else {
        letters
    }
}

/// `em.py`'s `exact_match_score`. A reference made of option letters only (after
/// normalisation) needs the same letters (1) or a subset of them (0.25); any other reference
/// must equal the prediction as a number, or else occur in it ignoring case and spaces.
fn exact_match(prediction: &str, truth: &str) -> f64 {
    let normal_truth = normalize_keep_case(truth);
    if normal_truth.chars().all(|c| matches!(c, 'A'..='D')) {
        let normal_prediction = normalize_keep_case(prediction);
        return if normal_prediction == normal_truth {
            1.0
        } else if normal_prediction.chars().all(|c| normal_truth.contains(c)) {
            0.25
        } else {
            0.0
        };
    }
    match (python::parse_float(prediction), python::parse_float(truth)) {
        (Some(p), Some(t)) => f64::from(u8::from(p == t)),
        _ => {
            let squeeze = |s: &str| s.to_lowercase().replace(' ', "");
            f64::from(u8::from(squeeze(prediction).contains(&squeeze(truth))))
        }
    }
}

/// `em.py`'s `normalize_answer`, which does not lower the case: drop ASCII punctuation,
/// replace the words `a`, `an`, `the` by a space, collapse whitespace.
fn normalize_keep_case(text: &str) -> String {
    let without_punctuation: String = text.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    python::collapse_spaces(&longbench::remove_articles(&without_punctuation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_choice_reads_the_first_option_letter() {
        let exam = |p: &str, t: &str| exam(ExamFormat::SingleChoice, p, t);
        // "B" is a substring of "ABCD": taken as is; the reference "(B) ..." reads "B".
        assert_eq!(exam("B", "(B) She was upset"), 1.0);
        // First A–D in "The answer is (C).": "C" ≠ "B".
        assert_eq!(exam("The answer is (C).", "(B) She was upset"), 0.0);
        // L-Eval's quirk: the capital A of "Answer" is the first option letter.
        assert_eq!(exam("Answer: B", "(B)"), 0.0);
        // Blank → "None": no letter in common with "B".
        assert_eq!(exam("  \n", "(B)"), 0.0);
        // No letter → L-Eval guesses "A".
        assert_eq!(exam("no idea", "(A) yes"), 1.0);
        // "BC" is a substring of "ABCD": kept whole; {B, C} is not within {B}.
        assert_eq!(exam("BC", "(B)"), 0.0);
        // A strict subset of the reference's letters scores 0.25: "A" within "AB".
        assert_eq!(exam("A", "(AB) both"), 0.25);
    }

    #[test]
    fn multiple_choice_reads_several_letters() {
        let exam = |p: &str, t: &str| exam(ExamFormat::MultipleChoice, p, t);
        // Leading run "ABD" (3 letters) → "ABD".
        assert_eq!(chosen_options("ABD", true), "ABD");
        assert_eq!(exam("ABD", "ABD"), 1.0);
        // Leading "A" (one letter), then capitals before a stop: "B" (before "."): "AB".
        assert_eq!(chosen_options("A. first B. second", true), "AB");
        // "T" is followed by "h": no; "B" before " ", "D" before ".": "BD".
        assert_eq!(chosen_options("The answers are B and D.", true), "BD");
        assert_eq!(exam("The answers are B and D.", "BD are right"), 1.0);
        // Only "D" (before " ") counts in "Options BD are": {D} within {B, D} → 0.25.
        assert_eq!(chosen_options("Options BD are right", true), "D");
        assert_eq!(exam("Options BD are right", "BD"), 0.25);
        // No capital before a stop: the first run of A–D, "BC".
        assert_eq!(chosen_options("xxBCxx A", true), "BC");
        // Letters after "Question" are ignored: nothing before it → guess "A".
        assert_eq!(chosen_options("see Question A. B.", true), "A");
    }

    #[test]
    fn free_text_matches_as_number_or_substring() {
        let exam = |p: &str, t: &str| exam(ExamFormat::FreeText, p, t);
        // Lower-cased, spaces removed: "thehistoryofrome" occurs in the prediction.
        assert_eq!(
            exam(
                "The first topic was The History of Rome",
                "The history of Rome"
            ),
            1.0
        );
        // Both parse as floats: 12.0 == 12.
        assert_eq!(exam("12.0", "12"), 1.0);
        // Both floats but different: 0, although "12" occurs in "112".
        assert_eq!(exam("112", "12"), 0.0);
        // The prediction is no number: substring test.
        assert_eq!(exam("It is 12", "12"), 1.0);
        assert_eq!(exam("twelve", "12"), 0.0);
        assert_eq!(exam("", "12"), 0.0);
        // Unicode case folding: "ÉCOLE" lowers to "école".
        assert_eq!(exam("ÉCOLE normale", "école"), 1.0);
    }

    #[test]
    fn letter_only_references_use_the_option_rule_even_in_free_text() {
        // "a" normalises to "" (an article): a reference of no letters at all. An empty
        // prediction equals it (1); any other has a character outside it (0).
        assert_eq!(exam(ExamFormat::FreeText, "", "a"), 1.0);
        assert_eq!(exam(ExamFormat::FreeText, "x", "a"), 0.0);
        // "C" (case kept, no article): "C." normalises to "C" too.
        assert_eq!(exam(ExamFormat::FreeText, "C.", "C"), 1.0);
    }
}

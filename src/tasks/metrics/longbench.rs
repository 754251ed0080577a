//! LongBench's metrics, as `THUDM/LongBench` defines them in `LongBench/metrics.py`
//! (`normalize_answer`, `qa_f1_score`, `classification_score`, `retrieval_score`,
//! `count_score`) and `LongBench/eval.py` (the first line of the prediction for trec, triviaqa,
//! samsum and lsht; the best score over the reference answers, starting from 0). ROUGE-L is in
//! `longbench_rouge`, the code similarity in `code_sim`.

use std::collections::HashMap;

use super::python;

/// `eval.py`'s `prediction.lstrip('\n').split('\n')[0]`.
pub fn first_line(prediction: &str) -> &str {
    let rest = prediction.trim_start_matches('\n');
    rest.split('\n').next().unwrap_or(rest)
}

/// `eval.py`'s rule: the best of `metric` over the references, 0 when there are none.
pub fn best_over(answers: &[String], metric: impl Fn(&str) -> f64) -> f64 {
    answers
        .iter()
        .fold(0.0, |best, answer| f64::max(best, metric(answer)))
}

/// `normalize_answer`: lower case, drop ASCII punctuation, replace the words `a`, `an`, `the`
/// by a space, collapse whitespace.
pub fn normalize_answer(text: &str) -> String {
    let without_punctuation: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    python::collapse_spaces(&remove_articles(&without_punctuation))
}

/// `re.sub(r"\b(a|an|the)\b", " ", text)`: a maximal run of word characters that is exactly
/// an article becomes a space.
pub fn remove_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        let is_word = python::is_word_char(first);
        let end = rest
            .find(|c: char| python::is_word_char(c) != is_word)
            .unwrap_or(rest.len());
        let run = &rest[..end];
        if is_word && matches!(run, "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(run);
        }
        rest = &rest[end..];
    }
    out
}

/// `qa_f1_score`: the F1 of the normalised tokens shared by prediction and reference (counted
/// with multiplicity).
pub fn qa_f1(prediction: &str, truth: &str) -> f64 {
    let prediction = normalize_answer(prediction);
    let truth = normalize_answer(truth);
    let predicted: Vec<&str> = python::split(&prediction).collect();
    let expected: Vec<&str> = python::split(&truth).collect();
    token_f1(&predicted, &expected)
}

/// `f1_score` over two token lists, with Python's order of operations.
pub fn token_f1(predicted: &[&str], expected: &[&str]) -> f64 {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for token in expected {
        *counts.entry(token).or_default() += 1;
    }
    let mut same = 0usize;
    for token in predicted {
        if let Some(left) = counts.get_mut(token).filter(|left| **left > 0) {
            *left -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = 1.0 * same as f64 / predicted.len() as f64;
    let recall = 1.0 * same as f64 / expected.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// `classification_score`: the labels found in the prediction, less those that are part of the
/// reference without being it (with Python's skip-after-remove iteration), score
/// `1 / found` when the reference is among them.
pub fn classification(prediction: &str, truth: &str, classes: &[String]) -> f64 {
    let mut found: Vec<&str> = classes
        .iter()
        .map(String::as_str)
        .filter(|class| prediction.contains(class))
        .collect();
    // Python removes from the list it iterates over: after a removal the next label shifts
    // into the current slot and is skipped.
    let mut at = 0;
    while at < found.len() {
        let term = found[at];
        if truth.contains(term)
            && term != truth
            && let Some(first) = found.iter().position(|t| *t == term)
        {
            found.remove(first);
        }
        at += 1;
    }
    if found.contains(&truth) {
        1.0 / found.len() as f64
    } else {
        0.0
    }
}

/// `retrieval_score`: the share of the numbers in the prediction that equal the reference's
/// `Paragraph N` (0 when the reference names no paragraph, where LongBench would fail).
pub fn retrieval(prediction: &str, truth: &str) -> f64 {
    match paragraph_number(truth) {
        Some(id) => share_equal_to(prediction, id),
        None => 0.0,
    }
}

/// The digits of the first `Paragraph (\d+)` in `text`.
fn paragraph_number(text: &str) -> Option<&str> {
    const MARK: &str = "Paragraph ";
    text.match_indices(MARK).find_map(|(at, _)| {
        let rest = &text[at + MARK.len()..];
        let end = rest
            .find(|c: char| python::decimal_value(c).is_none())
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// `count_score`: the share of the numbers in the prediction that are the reference.
pub fn count(prediction: &str, truth: &str) -> f64 {
    share_equal_to(prediction, truth)
}

/// The share of the digit runs of `prediction` equal (as text) to `target`; 0 without runs.
fn share_equal_to(prediction: &str, target: &str) -> f64 {
    let numbers = python::digit_runs(prediction);
    if numbers.is_empty() {
        return 0.0;
    }
    let right = numbers.iter().filter(|n| **n == target).count();
    right as f64 / numbers.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn normalize_lowers_drops_punctuation_and_articles() {
        // lower: "the cat's a-ok, an apple!" → no punctuation: "the cats aok an apple"
        // → articles: " cats aok   apple" → collapsed: "cats aok apple".
        assert_eq!(
            normalize_answer("The Cat's A-OK, an apple!"),
            "cats aok apple"
        );
        // "another", "theme" and "a1" are not articles (\b needs a non-word neighbour).
        assert_eq!(normalize_answer("another theme a1"), "another theme a1");
        // Punctuation goes first, so "a." and "(the)" become articles; "_a" loses "_".
        assert_eq!(normalize_answer("a. (the) _a"), "");
        // Unicode: "été" is a word; "à" is not the article "a"; "l'a" → "la".
        assert_eq!(normalize_answer("ÉTÉ à l'a"), "été à la");
        assert_eq!(normalize_answer(""), "");
    }

    #[test]
    fn qa_f1_matches_hand_computed_values() {
        // pred tokens [barack, obama, was, president] (articles/punctuation gone),
        // truth tokens [barack, obama]: same = 2, precision = 2/4, recall = 2/2,
        // F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
        assert!(close(
            qa_f1("Barack Obama was the president.", "barack obama"),
            2.0 / 3.0
        ));
        // Repeated tokens count with multiplicity: pred [a1, a1, b], truth [a1, b, b]:
        // common = min(2,1) + min(1,2) = 2, P = 2/3, R = 2/3, F1 = 2/3.
        assert!(close(qa_f1("a1 a1 b", "a1 b b"), 2.0 / 3.0));
        assert_eq!(qa_f1("Paris", "paris!"), 1.0);
        assert_eq!(qa_f1("", "paris"), 0.0);
        assert_eq!(qa_f1("the", "the"), 0.0);
        assert_eq!(qa_f1("London", "Paris"), 0.0);
    }

    #[test]
    fn best_over_references_starts_at_zero() {
        let answers = strings(&["Paris", "the city of Paris"]);
        // vs "Paris": 1; vs "city of paris": P = 1/1, R = 1/3, F1 = 2 * (1/3) / (4/3) = 0.5.
        assert_eq!(best_over(&answers, |a| qa_f1("Paris", a)), 1.0);
        assert_eq!(best_over(&[], |a| qa_f1("Paris", a)), 0.0);
    }

    #[test]
    fn first_line_skips_leading_newlines_only() {
        assert_eq!(first_line("\n\nDescription\nmore"), "Description");
        assert_eq!(first_line("  Answer: x\ny"), "  Answer: x");
        assert_eq!(first_line(""), "");
        assert_eq!(first_line("\n\n"), "");
    }

    #[test]
    fn classification_divides_by_the_labels_found() {
        let classes = strings(&["Description", "Entity", "Abbreviation", "Human being"]);
        assert_eq!(classification("Entity", "Entity", &classes), 1.0);
        // Two labels found, the reference among them: 1/2.
        assert_eq!(
            classification("Entity or Description", "Entity", &classes),
            0.5
        );
        assert_eq!(classification("Human being", "Entity", &classes), 0.0);
        assert_eq!(classification("", "Entity", &classes), 0.0);
    }

    #[test]
    fn classification_keeps_pythons_remove_while_iterating() {
        // Found = [b, ab, abc]; truth "abc". Slot 0: "b" is in "abc" and is not it → removed,
        // list [ab, abc]; slot 1: "abc" is the truth → kept. "ab" was skipped, so it stays:
        // found = [ab, abc], score 1/2 (a clean filter would give 1/1).
        let classes = strings(&["b", "ab", "abc"]);
        assert_eq!(classification("abc", "abc", &classes), 0.5);
    }

    #[test]
    fn retrieval_counts_the_right_paragraph_among_all_numbers() {
        // Numbers [3, 12]; the reference is paragraph 12: 1/2.
        assert_eq!(
            retrieval("Paragraph 3 or Paragraph 12", "Paragraph 12"),
            0.5
        );
        assert_eq!(retrieval("Paragraph 12", "Paragraph 12"), 1.0);
        // "012" is not "12": LongBench compares the digit strings.
        assert_eq!(retrieval("Paragraph 012", "Paragraph 12"), 0.0);
        assert_eq!(retrieval("no idea", "Paragraph 12"), 0.0);
        assert_eq!(retrieval("Paragraph 12", "no paragraph here"), 0.0);
        // Arabic-Indic digits are \d: "١٢" is one more (wrong) number, so 1/2.
        assert_eq!(retrieval("12 or ١٢", "Paragraph 12"), 0.5);
    }

    #[test]
    fn count_is_the_share_of_numbers_equal_to_the_reference() {
        // Numbers [3, 15, 15]: 2/3.
        assert!(close(count("between 3 and 15, I say 15", "15"), 2.0 / 3.0));
        assert_eq!(count("fifteen", "15"), 0.0);
        assert_eq!(count("", "15"), 0.0);
    }
}

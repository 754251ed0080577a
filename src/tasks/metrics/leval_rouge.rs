//! L-Eval's `rouge` metric (`OpenLMLab/LEval`, `Evaluation/auto_eval.py` and
//! `Evaluation/rouge.py`): ROUGE-1, ROUGE-2 and ROUGE-L F1 from Google's `rouge_score`
//! package (`RougeScorer(use_stemmer=False)`), each the best over the references, combined as
//! their geometric mean.
//!
//! `rouge_score`'s tokens are the runs of `[a-z0-9]` in the lower-cased text (everything else,
//! non-ASCII letters included, separates tokens), so L-Eval's sentence splitting with NLTK
//! before scoring changes nothing. ROUGE-N counts n-grams with multiplicity
//! (`P = overlap / max(predicted, 1)`, `R = overlap / max(reference, 1)`); ROUGE-L uses the
//! length of the tokens' longest common subsequence (0 when either side has no token);
//! `F = 2PR / (P + R)`, 0 when `P + R = 0`.
//!
//! L-Eval averages each of the three over the samples before taking the geometric mean; a
//! per-sample score can only take it per sample, so the mean of these scores is close to,
//! not equal to, L-Eval's number for a set.

use std::collections::HashMap;

/// The geometric mean of ROUGE-1, ROUGE-2 and ROUGE-L F1 for one sample, each best over
/// `answers` (0 without references).
pub fn rouge_geometric_mean(prediction: &str, answers: &[String]) -> f64 {
    let predicted = tokens(prediction);
    let mut best = [0.0f64; 3];
    for answer in answers {
        let expected = tokens(answer);
        let scores = [
            ngram_f1(&expected, &predicted, 1),
            ngram_f1(&expected, &predicted, 2),
            lcs_f1(&expected, &predicted),
        ];
        for (best, score) in best.iter_mut().zip(scores) {
            *best = best.max(score);
        }
    }
    // L-Eval multiplies the percentages: (100·r1 · 100·r2 · 100·rL)^(1/3), here back in [0, 1].
    let [one, two, longest] = best.map(|score| score * 100.0);
    (one * two * longest).powf(1.0 / 3.0) / 100.0
}

/// `rouge_score`'s default tokenizer without stemming.
fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `F = 2PR / (P + R)`, 0 when both are 0.
fn f_measure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

/// ROUGE-N F1 with n-gram counts.
fn ngram_f1(expected: &[String], predicted: &[String], n: usize) -> f64 {
    let (expected, predicted) = (ngram_counts(expected, n), ngram_counts(predicted, n));
    let overlap: usize = expected
        .iter()
        .map(|(gram, &count)| count.min(predicted.get(gram).copied().unwrap_or(0)))
        .sum();
    let expected_total: usize = expected.values().sum();
    let predicted_total: usize = predicted.values().sum();
    let precision = overlap as f64 / predicted_total.max(1) as f64;
    let recall = overlap as f64 / expected_total.max(1) as f64;
    f_measure(precision, recall)
}

/// How often each n-gram of `tokens` occurs.
fn ngram_counts(tokens: &[String], n: usize) -> HashMap<&[String], usize> {
    let mut counts = HashMap::new();
    for gram in tokens.windows(n) {
        *counts.entry(gram).or_default() += 1;
    }
    counts
}

/// ROUGE-L F1 from the longest common subsequence's length.
fn lcs_f1(expected: &[String], predicted: &[String]) -> f64 {
    if expected.is_empty() || predicted.is_empty() {
        return 0.0;
    }
    let mut previous = vec![0usize; predicted.len() + 1];
    for token in expected {
        let mut row = vec![0usize; predicted.len() + 1];
        for (j, other) in predicted.iter().enumerate() {
            row[j + 1] = if token == other {
                previous[j] + 1
            } else {
                previous[j + 1].max(row[j])
            };
        }
        previous = row;
    }
    let lcs = previous[predicted.len()] as f64;
    f_measure(lcs / predicted.len() as f64, lcs / expected.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn tokens_are_lowercase_ascii_alphanumeric_runs() {
        // "Café" → "café" → "caf" (é separates); "U.S." → "u", "s"; "3rd" stays.
        assert_eq!(
            tokens("Café U.S. 3rd-place!"),
            strings(&["caf", "u", "s", "3rd", "place"])
        );
        assert!(tokens(" ¿¡ ").is_empty());
    }

    #[test]
    fn hand_computed_sample() {
        // Reference [the, cat, sat, on, the, mat] (6), prediction [the, cat, on, the, mat] (5).
        // ROUGE-1: overlap the 2, cat 1, on 1, mat 1 = 5; P = 5/5, R = 5/6, F = 10/11.
        // ROUGE-2: reference bigrams the-cat, cat-sat, sat-on, on-the, the-mat; prediction
        // the-cat, cat-on, on-the, the-mat: overlap 3; P = 3/4, R = 3/5, F = 2/3.
        // ROUGE-L: LCS [the, cat, on, the, mat] = 5: same as ROUGE-1, 10/11.
        // Geometric mean (in percent, then back): (100·10/11 · 100·2/3 · 100·10/11)^(1/3)/100.
        let score =
            rouge_geometric_mean("The cat on the mat.", &strings(&["the cat sat on the mat"]));
        let expected = (100.0_f64 * 10.0 / 11.0 * (100.0 * 2.0 / 3.0) * (100.0 * 10.0 / 11.0))
            .powf(1.0 / 3.0)
            / 100.0;
        assert!((score - expected).abs() < 1e-12, "{score} vs {expected}");
    }

    #[test]
    fn each_rouge_takes_its_own_best_reference() {
        // Reference 1 "a b" vs prediction "a b": all three 1.
        // Reference 2 "b a": ROUGE-1 1, ROUGE-2 0, ROUGE-L 1/2. Best per kind: 1, 1, 1.
        let score = rouge_geometric_mean("a b", &strings(&["b a", "a b"]));
        assert!((score - 1.0).abs() < 1e-12);
        // With only "b a": ROUGE-2 is 0, so the geometric mean is 0.
        assert_eq!(rouge_geometric_mean("a b", &strings(&["b a"])), 0.0);
    }

    #[test]
    fn empty_sides_score_zero() {
        assert_eq!(rouge_geometric_mean("", &strings(&["a b"])), 0.0);
        assert_eq!(rouge_geometric_mean("a b", &strings(&[""])), 0.0);
        assert_eq!(rouge_geometric_mean("a b", &[]), 0.0);
    }
}

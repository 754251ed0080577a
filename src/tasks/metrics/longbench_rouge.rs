//! LongBench's `rouge_score`: ROUGE-L F as the `rouge` Python package (pltrdy, 1.0.1) computes
//! it in `Rouge().get_scores([prediction], [reference], avg=True)["rouge-l"]["f"]`, and 0 where
//! that call raises (LongBench catches every exception).
//!
//! The package's own definitions, written here from its behaviour:
//! - sentences are the non-empty pieces of the text split on `.`, each with its whitespace
//!   collapsed (`" ".join(piece.split())`); words are a sentence split on single spaces, so a
//!   blank piece is one empty word. Case and other punctuation are kept. No sentence on either
//!   side raises (an empty or all-`.` text scores 0).
//! - `m` and `n` count the *distinct* words of the reference and of the prediction;
//! - for every reference sentence and every predicted sentence, one longest common
//!   subsequence is read back from the LCS table (from the end: take a match, else step back
//!   in the reference when that keeps a strictly longer LCS, else in the prediction); the
//!   union of the words of all these subsequences has `llcs` distinct words;
//! - `P = llcs / n`, `R = llcs / m`, `F = 2 · P·R / (P + R + 1e-8)` (the package's epsilon, so
//!   identical texts score just under 1).
//!
//! The package reads the subsequence back recursively, so Python gives up (and LongBench
//! scores 0) on a sentence pair of about a thousand words together; this implementation does
//! not.

use std::collections::HashSet;

use super::python;

/// ROUGE-L F of `prediction` against `truth` (see the module doc).
pub fn rouge_l(prediction: &str, truth: &str) -> f64 {
    let predicted = sentences(prediction);
    let expected = sentences(truth);
    if predicted.is_empty() || expected.is_empty() {
        return 0.0;
    }
    let predicted: Vec<Vec<&str>> = predicted.iter().map(|s| words(s)).collect();
    let expected: Vec<Vec<&str>> = expected.iter().map(|s| words(s)).collect();
    let m = distinct(&expected);
    let n = distinct(&predicted);
    let mut union: HashSet<&str> = HashSet::new();
    for reference in &expected {
        for candidate in &predicted {
            union.extend(lcs_words(reference, candidate));
        }
    }
    let llcs = union.len() as f64;
    let recall = llcs / m as f64;
    let precision = llcs / n as f64;
    2.0 * ((precision * recall) / (precision + recall + 1e-8))
}

/// The package's sentences: non-empty pieces between `.`, whitespace collapsed.
fn sentences(text: &str) -> Vec<String> {
    text.split('.')
        .filter(|piece| !piece.is_empty())
        .map(python::collapse_spaces)
        .collect()
}

/// A sentence's words, split on single spaces (`"".split(" ") == [""]`).
fn words(sentence: &str) -> Vec<&str> {
    sentence.split(' ').collect()
}

/// Distinct words over all sentences.
fn distinct(sentences: &[Vec<&str>]) -> usize {
    sentences.iter().flatten().collect::<HashSet<_>>().len()
}

/// The words of the longest common subsequence of `reference` and `candidate` that the
/// package reads back from its table.
fn lcs_words<'a>(reference: &[&'a str], candidate: &[&str]) -> Vec<&'a str> {
    let (rows, cols) = (reference.len(), candidate.len());
    let width = cols + 1;
    let mut table = vec![0u32; (rows + 1) * width];
    for i in 1..=rows {
        for j in 1..=cols {
            table[i * width + j] = if reference[i - 1] == candidate[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (rows, cols);
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            out.push(reference[i - 1]);
            i -= 1;
            j -= 1;
        } else if table[(i - 1) * width + j] > table[i * width + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's F from its counts.
    fn f(llcs: f64, m: f64, n: f64) -> f64 {
        let (p, r) = (llcs / n, llcs / m);
        2.0 * ((p * r) / (p + r + 1e-8))
    }

    #[test]
    fn one_sentence_each() {
        // Reference words [the, cat, sat, on, the, mat]: 5 distinct (m = 5).
        // Prediction words [the, cat, lay, on, a, mat]: 6 distinct (n = 6).
        // LCS = [the, cat, on, mat]: 4 distinct words (llcs = 4).
        // P = 4/6, R = 4/5, F = 2·(8/15)/(22/15 + 1e-8) ≈ 0.72727.
        let score = rouge_l("the cat lay on a mat", "the cat sat on the mat");
        assert_eq!(score, f(4.0, 5.0, 6.0));
        assert!((score - 8.0 / 11.0).abs() < 1e-8);
    }

    #[test]
    fn identical_texts_score_just_under_one() {
        // P = R = 1: F = 2 / (2 + 1e-8).
        assert_eq!(rouge_l("Hello world", "Hello world"), 2.0 / (2.0 + 1e-8));
    }

    #[test]
    fn case_and_commas_are_kept() {
        // [The, cat,] vs [the, cat]: no word in common.
        assert_eq!(rouge_l("The cat,", "the cat"), 0.0);
    }

    #[test]
    fn sentences_split_on_periods_and_share_one_union() {
        // Prediction sentences: [a, b] and [c, d]; reference: [a, b, c, d] (one sentence).
        // LCS with the first: {a, b}; with the second: {c, d}; union 4 words.
        // m = 4, n = 4: P = R = 1.
        assert_eq!(rouge_l("a b. c d", "a b c d"), f(4.0, 4.0, 4.0));
        // Distinct words: a repeated word counts once in m, n and the union.
        // Reference [x, x, y] → m = 2; prediction [x, y, y] → n = 2; LCS [x, y] → 2.
        assert_eq!(rouge_l("x y y", "x x y"), f(2.0, 2.0, 2.0));
    }

    #[test]
    fn the_readback_prefers_the_candidate_on_ties() {
        // Reference [a, b], prediction [b, a]: at the last cell the mismatch ties (1 up, 1
        // left), so the package steps back in the prediction, then matches "b": it reads [b]
        // (stepping back in the reference would have read [a]). llcs = 1; m = n = 2.
        assert_eq!(lcs_words(&["a", "b"], &["b", "a"]), vec!["b"]);
        assert_eq!(rouge_l("b a", "a b"), f(1.0, 2.0, 2.0));
        // The choice shows in the union: with a second predicted sentence [a], the reads are
        // [b] and [a], llcs = 2 (reading [a] twice would give 1). m = n = 2.
        assert_eq!(rouge_l("b a. a", "a b"), f(2.0, 2.0, 2.0));
    }

    #[test]
    fn blank_pieces_are_one_empty_word() {
        // Prediction ". ." → pieces [" ", " "] → two sentences "" → words [""], n = 1.
        // Reference "x" → m = 1. No common word: F = 0 (and no failure).
        assert_eq!(rouge_l(". .", "x"), 0.0);
        // Both blank: the empty word is common: llcs = 1, m = n = 1.
        assert_eq!(rouge_l(" ", " "), f(1.0, 1.0, 1.0));
    }

    #[test]
    fn empty_texts_score_zero() {
        assert_eq!(rouge_l("", "a summary"), 0.0);
        assert_eq!(rouge_l("...", "a summary"), 0.0);
        assert_eq!(rouge_l("a summary", ""), 0.0);
    }

    #[test]
    fn unicode_words_compare_exactly() {
        // [café, au, lait] vs [cafe, au, lait]: llcs = 2, m = n = 3.
        assert_eq!(rouge_l("café au lait", "cafe au lait"), f(2.0, 3.0, 3.0));
    }
}

//! RULER's frequent-words extraction (`fwe`, `scripts/data/synthetic/freq_words_extraction.py`):
//! a text of random six-letter "coded" words whose counts follow a Zipf law (the most frequent
//! one replaced by the noise `...`); the answer is the three most frequent coded words.

use std::collections::HashSet;
use std::f64::consts::PI;

use super::template::{FWE_ANSWER_PREFIX, FWE_INTRO, FWE_QUESTION};
use crate::rng::SplitMix64;
use crate::tasks::fit::{Draft, FittedDraft, LengthBudget, fill};
use crate::tasks::{TaskError, TaskTokenizer};

/// Letters of a coded word (RULER's `coded_wordlen`).
const WORD_LETTERS: usize = 6;
/// Tokens of budget per vocabulary word (RULER's `vocab_size = max_seq_length // 50`).
const TOKENS_PER_VOCABULARY_WORD: usize = 50;
/// Smallest vocabulary: the noise word, the three answers and one word after them.
const MIN_VOCABULARY: usize = 5;
/// The word that takes the most frequent rank.
const NOISE_WORD: &str = "...";
/// Words answered (the ranks after the noise word).
const ANSWERS: usize = 3;
/// Smallest word-count scale: from here the word after the answers is always rarer than the
/// last answer (`floor(n / (16 ζ(2))) > floor(n / (25 ζ(2)))` holds for every `n >= 74`), so
/// the answer is unique.
const MIN_SCALE: usize = 100;
/// ζ(2), the normaliser of RULER's Zipf law with its `alpha = 2`.
const ZETA_2: f64 = PI * PI / 6.0;

/// `size` distinct random coded words in random order, the first replaced by [`NOISE_WORD`].
fn vocabulary(rng: &mut SplitMix64, size: usize) -> Vec<String> {
    let mut seen = HashSet::with_capacity(size);
    let mut vocabulary = Vec::with_capacity(size);
    while vocabulary.len() < size {
        let word: String = (0..WORD_LETTERS)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        if seen.insert(word.clone()) {
            vocabulary.push(word);
        }
    }
    rng.shuffle(&mut vocabulary);
    vocabulary[0] = NOISE_WORD.to_owned();
    vocabulary
}

/// Word `k` (from 0) of the vocabulary appears `floor(scale / ((k + 1)² ζ(2)))` times.
fn count(scale: usize, k: usize) -> usize {
    let rank = (k + 1) as f64;
    (scale as f64 / (rank * rank * ZETA_2)) as usize
}

/// One sample seeded with `seed`, filled to `budget`. Units are the Zipf law's scale (about
/// the number of words).
pub(crate) fn sample(
    tok: &dyn TaskTokenizer,
    budget: LengthBudget,
    seed: u64,
    hint: Option<usize>,
) -> Result<FittedDraft, TaskError> {
    let size = (budget.prompt_tokens() / TOKENS_PER_VOCABULARY_WORD).max(MIN_VOCABULARY);
    let vocabulary = vocabulary(&mut SplitMix64::stream(seed, 0), size);
    let answers = vocabulary[1..=ANSWERS].to_vec();
    let mut build = |scale: usize| {
        let mut words: Vec<&str> = vocabulary
            .iter()
            .enumerate()
            .flat_map(|(k, w)| std::iter::repeat_n(w.as_str(), count(scale, k)))
            .collect();
        SplitMix64::stream(seed, 1).shuffle(&mut words);
        Ok(Draft {
            context: format!("{FWE_INTRO} {}\n", words.join(" ")),
            question: FWE_QUESTION.to_owned(),
            answer_prefix: FWE_ANSWER_PREFIX.to_owned(),
            answers: answers.clone(),
            evidence: Vec::new(),
        })
    };
    fill(tok, budget, MIN_SCALE, hint, &mut build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_counts_follow_rulers_formula() {
        // 1000 / (k² · 1.644934) for k = 1..5.
        assert_eq!(
            (0..5).map(|k| count(1000, k)).collect::<Vec<_>>(),
            [607, 151, 67, 37, 24]
        );
        for scale in 74..3000 {
            assert!(count(scale, 3) > count(scale, 4), "{scale}");
        }
    }
}

//! RULER's common-words extraction (`cwe`, `scripts/data/synthetic/common_words_extraction.py`):
//! a numbered list of words in which ten words appear many times and the others a few times,
//! after one solved example; the answer is the ten common words.
//!
//! Words come from the project's own lists ([`super::words`]): single nouns and adjectives while
//! they suffice, `adjective-noun` pairs when a length needs more distinct words (RULER likewise
//! switches to a larger English word list).

use super::draw::{ADJECTIVE_NOUNS, adjective_noun_at, sample_distinct};
use super::template::{CWE_ANSWER_PREFIX, CWE_INTRO, CWE_QUESTION};
use super::words::{ADJECTIVES, NOUNS};
use crate::rng::SplitMix64;
use crate::tasks::fit::{Draft, FittedDraft, LengthBudget, fill};
use crate::tasks::{TaskError, TaskTokenizer};

/// Common words to find (RULER's `num_cw`).
const COMMON: usize = 10;
/// Distinct words in the solved example below and from [`LONG`] tokens.
const EXAMPLE_WORDS: [usize; 2] = [20, 40];
/// Lengths from which RULER uses its long-context repetitions.
const LONG: usize = 4096;

/// How often common and other words appear (RULER's `freq_cw` / `freq_ucw`, smaller below
/// 4096 tokens).
#[derive(Clone, Copy, Debug)]
struct Repeats {
    common: usize,
    other: usize,
}

impl Repeats {
    /// `(example, task)` repetitions for a length.
    fn for_length(length: usize) -> (Self, Self) {
        if length < LONG {
            (
                Self {
                    common: 3,
                    other: 1,
                },
                Self {
                    common: 6,
                    other: 1,
                },
            )
        } else {
            (
                Self {
                    common: 10,
                    other: 3,
                },
                Self {
                    common: 30,
                    other: 3,
                },
            )
        }
    }
}

/// Word `index` of a pool: single nouns then adjectives, or `adjective-noun` pairs.
fn word(index: usize, pairs: bool) -> String {
    if pairs {
        adjective_noun_at(index)
    } else if index < NOUNS.len() {
        NOUNS[index].to_owned()
    } else {
        ADJECTIVES[index - NOUNS.len()].to_owned()
    }
}

/// `distinct` random words repeated as `repeats` says, shuffled and numbered
/// (`1. w 2. w ...`), and the common ones.
fn numbered_list(rng: &mut SplitMix64, distinct: usize, repeats: Repeats) -> (String, Vec<String>) {
    let pairs = distinct > NOUNS.len() + ADJECTIVES.len();
    let pool = if pairs {
        ADJECTIVE_NOUNS
    } else {
        NOUNS.len() + ADJECTIVES.len()
    };
    let words: Vec<String> = sample_distinct(rng, pool, distinct)
        .into_iter()
        .map(|i| word(i, pairs))
        .collect();
    let (common, other) = words.split_at(COMMON.min(words.len()));
    let mut list: Vec<&str> =
        Vec::with_capacity(common.len() * repeats.common + other.len() * repeats.other);
    for _ in 0..repeats.common {
        list.extend(common.iter().map(String::as_str));
    }
    for _ in 0..repeats.other {
        list.extend(other.iter().map(String::as_str));
    }
    rng.shuffle(&mut list);
    (numbered(&list), common.to_vec())
}

/// `1. a 2. b ...`.
fn numbered(words: &[impl AsRef<str>]) -> String {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{}. {}", i + 1, w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One sample seeded with `seed`, filled to `budget`. Units are distinct words.
pub(crate) fn sample(
    tok: &dyn TaskTokenizer,
    budget: LengthBudget,
    seed: u64,
    hint: Option<usize>,
) -> Result<FittedDraft, TaskError> {
    let (example_repeats, repeats) = Repeats::for_length(budget.length);
    let example_words = EXAMPLE_WORDS[usize::from(budget.length >= LONG)];
    let (example_list, example_answer) = numbered_list(
        &mut SplitMix64::stream(seed, 0),
        example_words,
        example_repeats,
    );
    // The solved example is the task's whole prompt, a space and the numbered answer.
    let lead = format!(
        "{CWE_INTRO}\n{example_list}\n{CWE_QUESTION} {CWE_ANSWER_PREFIX} {}\n",
        numbered(&example_answer)
    );
    let mut build = |distinct: usize| {
        let (list, common) = numbered_list(&mut SplitMix64::stream(seed, 1), distinct, repeats);
        Ok(Draft {
            context: format!("{lead}{CWE_INTRO}\n{list}\n"),
            question: CWE_QUESTION.to_owned(),
            answer_prefix: CWE_ANSWER_PREFIX.to_owned(),
            answers: common,
            evidence: Vec::new(),
        })
    };
    fill(tok, budget, COMMON + 1, hint, &mut build)
}

//! Filling a prompt to a length: the largest haystack whose whole prompt (chat template,
//! context, question and answer prefix) fits in `length - max_new_tokens` tokens, found by
//! search as RULER's generators do.

use std::ops::Range;

use super::{TaskError, TaskTokenizer};

/// The text parts of one sample built around a haystack of some size.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Draft {
    /// What the model reads before the question.
    pub context: String,
    /// The question after the context.
    pub question: String,
    /// The start of the assistant's answer.
    pub answer_prefix: String,
    /// Reference answers.
    pub answers: Vec<String>,
    /// Byte ranges of `context` holding the evidence, sorted and disjoint.
    pub evidence: Vec<Range<usize>>,
}

/// The length a task fills and what it reserves for the answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LengthBudget<'a> {
    /// The task's name, for errors.
    pub task: &'a str,
    /// The requested length in tokens (prompt plus answer).
    pub length: usize,
    /// Tokens reserved for the answer.
    pub max_new_tokens: usize,
}

impl LengthBudget<'_> {
    /// Most prompt tokens a sample may have.
    pub(crate) fn prompt_tokens(&self) -> usize {
        self.length.saturating_sub(self.max_new_tokens)
    }

    /// The error for a length whose shortest prompt needs `needed` tokens.
    pub(crate) fn too_small(&self, needed: usize) -> TaskError {
        TaskError::LengthTooSmall {
            task: self.task.to_owned(),
            length: self.length,
            needed,
            max_new_tokens: self.max_new_tokens,
        }
    }
}

/// A draft that fits, with its haystack size.
#[derive(Debug)]
pub(crate) struct FittedDraft {
    /// Haystack units (words, lines, ...) of the draft.
    pub units: usize,
    /// The sample's text.
    pub draft: Draft,
}

/// Tokens of a draft's whole prompt.
pub(crate) fn prompt_tokens(tok: &dyn TaskTokenizer, draft: &Draft) -> Result<usize, TaskError> {
    tok.prompt_tokens(&draft.context, &draft.question, &draft.answer_prefix)
        .map_err(TaskError::Tokenizer)
}

/// Tokens of plain text.
pub(crate) fn text_tokens(tok: &dyn TaskTokenizer, text: &str) -> Result<usize, TaskError> {
    tok.text_tokens(text).map_err(TaskError::Tokenizer)
}

/// The draft with the most haystack units (at least `min_units`) whose whole prompt fits
/// `budget` (see [`fill_measured`]).
pub(crate) fn fill(
    tok: &dyn TaskTokenizer,
    budget: LengthBudget,
    min_units: usize,
    hint: Option<usize>,
    build: &mut dyn FnMut(usize) -> Result<Draft, TaskError>,
) -> Result<FittedDraft, TaskError> {
    fill_measured(
        &|draft| prompt_tokens(tok, draft),
        budget,
        min_units,
        hint,
        build,
    )
}

/// The draft with the most haystack units (at least `min_units`) whose size by `measure`
/// fits `budget`, assuming sizes grow with units. `build` must be a function of the units
/// alone (draw anything random from a generator seeded afresh on every call), so that the
/// result does not depend on the search path.
///
/// Sizes grow about linearly with units, so the search interpolates: it starts at `hint` (a
/// previous sample's size, usually right to a unit or two) and steps one unit, or starts at
/// `min_units` and steps [`FIRST_STEP`] units; from then on the tokens per unit seen between
/// the last two probes predict the largest fitting size, which is probed next (one unit
/// further after a fitting probe, so that near the end the bracket closes). Probes stay
/// between the largest fitting and the smallest overflowing sizes found; without a usable
/// rate, or after [`INTERPOLATIONS`] predictions, the search doubles the size until one
/// overflows, then bisects. Units stop at four per token of budget
/// (every unit holds at least one word).
pub(crate) fn fill_measured(
    measure: &dyn Fn(&Draft) -> Result<usize, TaskError>,
    budget: LengthBudget,
    min_units: usize,
    hint: Option<usize>,
    build: &mut dyn FnMut(usize) -> Result<Draft, TaskError>,
) -> Result<FittedDraft, TaskError> {
    let target = budget.prompt_tokens();
    let max_units = target.saturating_mul(4).max(min_units);
    let fits = |tokens: usize| budget.length > budget.max_new_tokens && tokens <= target;

    // The largest fitting probe, the smallest overflowing size, and the latest probe.
    let mut low: Option<FittedDraft> = None;
    let mut high: Option<usize> = None;
    let mut last: Option<(usize, usize)> = None;
    let mut next = hint.unwrap_or(min_units).clamp(min_units, max_units);
    let mut round = 0;
    loop {
        let draft = build(next)?;
        let tokens = measure(&draft)?;
        if fits(tokens) {
            if high == Some(next + 1) || next == max_units {
                return Ok(FittedDraft { units: next, draft });
            }
            low = Some(FittedDraft { units: next, draft });
        } else {
            if let Some(fitted) = low.take_if(|f| f.units + 1 == next) {
                return Ok(fitted);
            }
            if next == min_units {
                return Err(budget.too_small(tokens));
            }
            high = Some(next);
        }
        let floor = low.as_ref().map_or(min_units, |f| f.units + 1);
        let ceiling = high.map_or(max_units, |units| units - 1);
        let per_unit = last
            .filter(|&(units, previous)| units != next && previous != tokens)
            .map(|(units, previous)| {
                (tokens as f64 - previous as f64) / (next as f64 - units as f64)
            })
            .filter(|&rate| rate > 0.0);
        last = Some((next, tokens));
        next = match per_unit {
            None if round == 0 => next + if hint.is_some() { 1 } else { FIRST_STEP },
            Some(rate) if round < INTERPOLATIONS => {
                // From a fitting probe, aim one unit past the prediction so that the next
                // probe either closes the bracket or gains at least as much.
                let predicted =
                    (next as f64 + (target as f64 - tokens as f64) / rate).max(0.0) as usize;
                predicted + usize::from(fits(tokens))
            }
            _ if high.is_none() => next.saturating_mul(2),
            _ => floor + (ceiling - floor) / 2,
        }
        .clamp(floor, ceiling);
        round += 1;
    }
}

/// Units [`fill_measured`] adds after its first probe when it has no hint.
const FIRST_STEP: usize = 16;

/// Predictions [`fill_measured`] makes before it only bisects.
const INTERPOLATIONS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::word_tokenizer::{TEMPLATE_TOKENS, WordTokenizer};

    fn words(units: usize) -> Result<Draft, TaskError> {
        Ok(Draft {
            context: vec!["w"; units].join(" "),
            question: "q q".to_owned(),
            answer_prefix: "a".to_owned(),
            answers: vec![],
            evidence: vec![],
        })
    }

    #[test]
    fn finds_the_largest_fitting_size_from_any_start() {
        // Prompt = units + 3 + the test template's tokens.
        let overhead = 3 + TEMPLATE_TOKENS;
        let budget = LengthBudget {
            task: "t",
            length: 1000,
            max_new_tokens: 100,
        };
        for hint in [None, Some(1), Some(5), Some(880), Some(3000), Some(100_000)] {
            let fitted = fill(&WordTokenizer, budget, 1, hint, &mut words).unwrap();
            assert_eq!(fitted.units, 900 - overhead, "hint {hint:?}");
            assert_eq!(prompt_tokens(&WordTokenizer, &fitted.draft).unwrap(), 900);
        }
    }

    #[test]
    fn plateaus_and_jumps_in_the_size_still_give_the_largest_fitting_size() {
        // One word per three units, and ten more words from 1000 units on.
        let mut stepped = |units: usize| {
            let words = units / 3 + if units >= 1000 { 10 } else { 0 };
            super::tests::words(words)
        };
        // Prompts hold 10 tokens besides the words: 10 + 380 + 10 words fill 400 tokens at
        // 3 * 380 + 2 units; with 350 tokens the jump overflows, so 999 units is the largest.
        for (length, expected) in [(500, 1142), (450, 999)] {
            let budget = LengthBudget {
                task: "t",
                length,
                max_new_tokens: 100,
            };
            for hint in [None, Some(1), Some(990), Some(1001), Some(9000)] {
                let fitted = fill(&WordTokenizer, budget, 1, hint, &mut stepped).unwrap();
                assert_eq!(fitted.units, expected, "length {length}, hint {hint:?}");
            }
        }
    }

    #[test]
    fn a_length_below_the_smallest_prompt_is_an_error() {
        let budget = LengthBudget {
            task: "t",
            length: 110,
            max_new_tokens: 100,
        };
        for hint in [None, Some(50)] {
            let error = fill(&WordTokenizer, budget, 5, hint, &mut words).unwrap_err();
            let needed = 5 + 3 + TEMPLATE_TOKENS;
            assert!(
                matches!(error, TaskError::LengthTooSmall { needed: n, length: 110, .. } if n == needed),
                "{error}"
            );
        }
        let none_left = LengthBudget {
            task: "t",
            length: 100,
            max_new_tokens: 100,
        };
        assert!(fill(&WordTokenizer, none_left, 1, None, &mut words).is_err());
    }
}

//! RULER's variable tracking (`vt`, `scripts/data/synthetic/variable_tracking.py`): a chain of
//! assignments `VAR A = 12345`, `VAR B = VAR A`, ... hidden between lines of noise sentences,
//! after one solved example; the answer is every variable that holds the value.

use std::ops::Range;

use super::draw::sample_distinct;
use super::niah::insert_lines;
use super::template::{VT_INTRO, vt_prompt};
use crate::rng::SplitMix64;
use crate::tasks::fit::{Draft, FittedDraft, LengthBudget, fill, fill_measured, text_tokens};
use crate::tasks::haystack::NOISE;
use crate::tasks::{TaskError, TaskTokenizer};

/// Assignments after the first in a chain (RULER's `num_hops`).
const HOPS: usize = 4;
/// Letters of a variable name in the task; the example's names have [`EXAMPLE_NAME_LETTERS`].
const NAME_LETTERS: usize = 5;
/// Letters of a variable name in the solved example.
const EXAMPLE_NAME_LETTERS: usize = 3;
/// Most tokens of the solved example's prompt (RULER builds it at `max_seq_length=500`).
const EXAMPLE_TOKENS: usize = 500;

/// One chain: its variable names (first holds the value) and its lines.
struct Chain {
    names: Vec<String>,
    value: String,
    lines: Vec<String>,
}

impl Chain {
    /// RULER's `generate_chains` for one chain: distinct upper-case names and a value in
    /// `10000..99999`. The lines after the first keep RULER's trailing space.
    fn draw(rng: &mut SplitMix64, letters: usize) -> Self {
        let mut names: Vec<String> = Vec::with_capacity(HOPS + 1);
        while names.len() < HOPS + 1 {
            let name: String = (0..letters)
                .map(|_| char::from(b'A' + rng.below(26) as u8))
                .collect();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let value = (10_000 + rng.below(89_999)).to_string();
        let mut lines = vec![format!("VAR {} = {value}", names[0])];
        lines.extend(
            names
                .windows(2)
                .map(|w| format!("VAR {} = VAR {} ", w[1], w[0])),
        );
        Self {
            names,
            value,
            lines,
        }
    }

    /// The intro, then `noise_lines` noise lines with the chain's lines between them at random
    /// places (in chain order), then a newline; and the byte ranges of the chain's lines.
    fn haystack(&self, noise_lines: usize, rng: &mut SplitMix64) -> (String, Vec<Range<usize>>) {
        let lines = vec![NOISE.to_owned(); noise_lines];
        let mut at = sample_distinct(rng, noise_lines, self.lines.len());
        at.sort_unstable();
        let (body, ranges) = insert_lines(&lines, &at, self.lines.iter().map(String::as_str));
        let head = format!("{VT_INTRO}\n\n");
        let shift = |r: Range<usize>| r.start + head.len()..r.end + head.len();
        (
            format!("{head}{body}\n"),
            ranges.into_iter().map(shift).collect(),
        )
    }
}

/// Noise lines of the solved example: the most whose prompt (intro, haystack, question and
/// answer prefix, without the chat template) fits [`EXAMPLE_TOKENS`], measured on an example
/// drawn from `seed`.
pub(crate) fn example_lines(tok: &dyn TaskTokenizer, seed: u64) -> Result<usize, TaskError> {
    let chain = Chain::draw(&mut SplitMix64::stream(seed, 0), EXAMPLE_NAME_LETTERS);
    let budget = LengthBudget {
        task: "vt (solved example)",
        length: EXAMPLE_TOKENS,
        max_new_tokens: 0,
    };
    let mut build = |lines: usize| {
        let (context, _) = example_text(&chain, lines, &mut SplitMix64::stream(seed, 1));
        Ok(Draft {
            context,
            question: String::new(),
            answer_prefix: String::new(),
            answers: Vec::new(),
            evidence: Vec::new(),
        })
    };
    let measure = |draft: &Draft| text_tokens(tok, &draft.context);
    Ok(fill_measured(&measure, budget, HOPS + 1, None, &mut build)?.units)
}

/// The solved example's prompt (without the answer) and the answer.
fn example_text(chain: &Chain, lines: usize, rng: &mut SplitMix64) -> (String, String) {
    let (haystack, _) = chain.haystack(lines, rng);
    let (question, answer_prefix) = vt_prompt(&chain.value, HOPS + 1);
    (
        format!("{haystack}{question} {answer_prefix}"),
        chain.names.join(" "),
    )
}

/// One sample seeded with `seed`, filled to `budget`, after a solved example of
/// `example_lines` noise lines.
pub(crate) fn sample(
    tok: &dyn TaskTokenizer,
    budget: LengthBudget,
    seed: u64,
    example_lines: usize,
    hint: Option<usize>,
) -> Result<FittedDraft, TaskError> {
    let mut rng = SplitMix64::stream(seed, 0);
    let example = Chain::draw(&mut rng, EXAMPLE_NAME_LETTERS);
    let chain = Chain::draw(&mut rng, NAME_LETTERS);
    let (example_prompt, example_answer) = example_text(&example, example_lines, &mut rng);
    // RULER appends " " and the answer to the example's prompt, then a newline, and puts a
    // newline between the example and the task.
    let lead = format!("{example_prompt} {example_answer}\n\n");
    let (question, answer_prefix) = vt_prompt(&chain.value, HOPS + 1);
    let mut build = |lines: usize| {
        let (haystack, ranges) = chain.haystack(lines, &mut SplitMix64::stream(seed, 1));
        let shift = |r: Range<usize>| r.start + lead.len()..r.end + lead.len();
        Ok(Draft {
            context: format!("{lead}{haystack}"),
            question: question.clone(),
            answer_prefix: answer_prefix.clone(),
            answers: chain.names.clone(),
            evidence: ranges.into_iter().map(shift).collect(),
        })
    };
    fill(tok, budget, HOPS + 1, hint, &mut build)
}

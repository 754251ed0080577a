//! RULER's needle tasks (`niah_single_*`, `niah_multikey_*`, `niah_multivalue`,
//! `niah_multiquery`), as `scripts/data/synthetic/niah.py` builds them: needles
//! "One of the special magic {kind} for {key} is: {value}." hidden in the noise sentences, an
//! essay, or other needles, and a question about one or more keys.

use std::collections::HashSet;
use std::ops::Range;

use super::draw::{Kind, sample_distinct};
use super::template::{join_keys, needle, niah_prompt};
use crate::rng::SplitMix64;
use crate::tasks::fit::{Draft, FittedDraft, LengthBudget, fill};
use crate::tasks::haystack::{Haystack, NOISE};
use crate::tasks::sentences::Sentences;
use crate::tasks::{TaskError, TaskTokenizer};

/// RULER's needle depths for essay haystacks: 40 evenly spaced percentages from 0 to 100,
/// rounded (`np.round(np.linspace(0, 100, num=40))`).
fn essay_depths() -> [usize; 40] {
    std::array::from_fn(|i| (200 * i + 39) / 78)
}

/// What surrounds the needles (RULER's `type_haystack`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Surround {
    /// Lines of RULER's noise sentences; needles go between random lines.
    Noise,
    /// Words of an essay; needles go at sentence boundaries at random depths from
    /// [`essay_depths`].
    Essay,
    /// Lines of distractor needles with other keys; needles go between random lines.
    Needle,
}

/// One needle task's settings (RULER's `synthetic.yaml`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NiahConfig {
    /// The haystack type.
    pub surround: Surround,
    /// What keys are.
    pub key: Kind,
    /// What values are.
    pub value: Kind,
    /// Keys hidden (`num_needle_k`; at least `queries`).
    pub keys: usize,
    /// Values per key (`num_needle_v`).
    pub values: usize,
    /// Keys asked about (`num_needle_q`).
    pub queries: usize,
}

/// Draws of a sample that do not depend on the haystack's size.
struct Plan {
    keys: Vec<String>,
    /// `(key index, needle sentence)`, in RULER's shuffled order.
    needles: Vec<(usize, String)>,
    queried: Vec<usize>,
    /// Percentages where the needles go in an essay, sorted.
    depths: Vec<usize>,
    answers: Vec<String>,
}

impl NiahConfig {
    fn plan(&self, rng: &mut SplitMix64) -> Plan {
        let key_count = self.keys.max(self.queries);
        let mut keys: Vec<String> = Vec::with_capacity(key_count);
        while keys.len() < key_count {
            let key = self.key.draw(rng);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let plural = self.value.plural();
        let mut values = Vec::with_capacity(key_count);
        let mut needles = Vec::with_capacity(key_count * self.values);
        for (k, key) in keys.iter().enumerate() {
            let drawn: Vec<String> = (0..self.values).map(|_| self.value.draw(rng)).collect();
            needles.extend(drawn.iter().map(|value| (k, needle(plural, key, value))));
            values.push(drawn);
        }
        rng.shuffle(&mut needles);
        let queried = sample_distinct(rng, key_count, self.queries);
        let answers = queried.iter().flat_map(|&q| values[q].clone()).collect();
        let all_depths = essay_depths();
        let mut depths: Vec<usize> = sample_distinct(rng, all_depths.len(), needles.len())
            .into_iter()
            .map(|i| all_depths[i])
            .collect();
        depths.sort_unstable();
        Plan {
            keys,
            needles,
            queried,
            depths,
            answers,
        }
    }

    /// The haystack lines of a noise or needle haystack of `lines` lines.
    fn lines(&self, plan: &Plan, lines: usize, rng: &mut SplitMix64) -> Vec<String> {
        match self.surround {
            Surround::Needle => {
                let taken: HashSet<&String> = plan.keys.iter().collect();
                (0..lines)
                    .map(|_| {
                        let key = loop {
                            let key = self.key.draw(rng);
                            if !taken.contains(&key) {
                                break key;
                            }
                        };
                        needle(self.value.plural(), &key, &self.value.draw(rng))
                    })
                    .collect()
            }
            _ => vec![NOISE.to_owned(); lines],
        }
    }

    /// The context for a haystack of `units` (essay words or lines), with the byte ranges of
    /// every needle in `plan.needles` order.
    fn context(
        &self,
        plan: &Plan,
        haystack: &Haystack,
        intro: &str,
        units: usize,
        rng: &mut SplitMix64,
    ) -> (String, Vec<Range<usize>>) {
        let head = format!("{intro}\n");
        let (body, ranges) = match self.surround {
            Surround::Essay => {
                let text = haystack.first_words(units);
                let sentences = Sentences::split(&text);
                let inserts: Vec<(usize, &str)> = plan
                    .depths
                    .iter()
                    .zip(&plan.needles)
                    .map(|(depth, (_, needle))| (sentences.len() * depth / 100, needle.as_str()))
                    .collect();
                sentences.with_inserted(&inserts)
            }
            Surround::Noise | Surround::Needle => {
                let lines = self.lines(plan, units, rng);
                let at = sample_distinct(rng, units, plan.needles.len());
                insert_lines(&lines, &at, plan.needles.iter().map(|(_, n)| n.as_str()))
            }
        };
        let shift = |r: Range<usize>| r.start + head.len()..r.end + head.len();
        (
            format!("{head}{body}\n"),
            ranges.into_iter().map(shift).collect(),
        )
    }

    /// One sample seeded with `seed`, filled to `budget`.
    pub(crate) fn sample(
        &self,
        haystack: &Haystack,
        tok: &dyn TaskTokenizer,
        budget: LengthBudget,
        seed: u64,
        hint: Option<usize>,
    ) -> Result<FittedDraft, TaskError> {
        let plan = self.plan(&mut SplitMix64::stream(seed, 0));
        let queried_keys: Vec<String> =
            plan.queried.iter().map(|&q| plan.keys[q].clone()).collect();
        let single = self.queries * self.values == 1;
        let (intro, question, answer_prefix) =
            niah_prompt(self.value.plural(), &join_keys(&queried_keys), single);
        let min_units = match self.surround {
            Surround::Essay => 1,
            Surround::Noise | Surround::Needle => plan.needles.len(),
        };
        let mut build = |units: usize| {
            let mut rng = SplitMix64::stream(seed, 1);
            let (context, ranges) = self.context(&plan, haystack, &intro, units, &mut rng);
            let mut evidence: Vec<Range<usize>> = ranges
                .into_iter()
                .zip(&plan.needles)
                .filter(|(_, (k, _))| plan.queried.contains(k))
                .map(|(range, _)| range)
                .collect();
            evidence.sort_by_key(|r| r.start);
            Ok(Draft {
                context,
                question: question.clone(),
                answer_prefix: answer_prefix.clone(),
                answers: plan.answers.clone(),
                evidence,
            })
        };
        fill(tok, budget, min_units, hint, &mut build)
    }
}

/// `lines` joined by newlines with `inserts[i]` placed just before line `at[i]` (the `at` are
/// distinct), and the byte range of every insert, in the order given.
pub(crate) fn insert_lines<'a>(
    lines: &[String],
    at: &[usize],
    inserts: impl Iterator<Item = &'a str>,
) -> (String, Vec<Range<usize>>) {
    let mut before: Vec<Option<(usize, &str)>> = vec![None; lines.len()];
    for (order, (&line, insert)) in at.iter().zip(inserts).enumerate() {
        before[line] = Some((order, insert));
    }
    let mut out = String::new();
    let mut ranges = vec![0..0; at.len()];
    for (line, insert) in lines.iter().zip(before) {
        if let Some((order, text)) = insert {
            ranges[order] = out.len()..out.len() + text.len();
            out.push_str(text);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out.pop();
    (out, ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essay_depths_are_rulers() {
        let depths = essay_depths();
        assert_eq!(depths[..6], [0, 3, 5, 8, 10, 13]);
        assert_eq!(depths[19..21], [49, 51]);
        assert_eq!(depths[39], 100);
        for (i, &d) in depths.iter().enumerate() {
            assert_eq!(d, (100.0 * i as f64 / 39.0).round() as usize);
        }
    }

    #[test]
    fn lines_get_their_inserts_before_them() {
        let lines: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (text, ranges) = insert_lines(&lines, &[2, 0], ["X", "Y"].into_iter());
        assert_eq!(text, "Y\na\nb\nX\nc");
        assert_eq!(
            (&text[ranges[0].clone()], &text[ranges[1].clone()]),
            ("X", "Y")
        );
    }
}

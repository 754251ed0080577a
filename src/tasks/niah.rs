//! Needle-in-a-haystack over a grid of lengths and depths: one needle "One of the special
//! magic numbers for {key} is: {value}." (RULER's `niah_single_2` wording, a random
//! `adjective-noun` key and a random 7-digit value) placed in the haystack at the sentence
//! boundary nearest to a depth measured in tokens, with RULER's question and answer prefix.

use super::fit::{Draft, LengthBudget, fill, prompt_tokens, text_tokens};
use super::ruler::draw::{adjective_noun, number, sample_seed};
use super::ruler::{needle, niah_prompt};
use super::sentences::Sentences;
use super::{Haystack, Metric, TaskError, TaskSample, TaskTokenizer};
use crate::rng::SplitMix64;

/// Tokens the model may generate (RULER's `tokens_to_generate` for its needle tasks).
pub const NIAH_MAX_NEW_TOKENS: usize = 128;

/// Which needle-in-a-haystack samples to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct NiahSpec {
    /// Lengths in tokens (prompt and generated answer).
    pub lengths: Vec<usize>,
    /// Needle depths in percent of the haystack's tokens (0 = before the first sentence,
    /// 100 = after the last).
    pub depths: Vec<u32>,
    /// Samples per length and depth.
    pub samples: usize,
    /// The run's seed: the same seed gives the same samples.
    pub seed: u64,
}

impl Default for NiahSpec {
    /// Lengths 1024, 2048, 4096 and 8192; depths 0, 10, ..., 100; one sample per cell; seed 0.
    fn default() -> Self {
        Self {
            lengths: vec![1024, 2048, 4096, 8192],
            depths: (0..=100).step_by(10).collect(),
            samples: 1,
            seed: 0,
        }
    }
}

/// Every sample of `spec`, ordered by length, then depth, then sample number; `id` is
/// `niah/{length}/{depth}/{sample}`, `fields` hold `length`, `depth` and `haystack`, and
/// `evidence` is the needle. Each sample's whole prompt, as `tok` counts it, is at most
/// `length - NIAH_MAX_NEW_TOKENS` tokens and as close to it as whole haystack words allow.
pub fn niah_samples(
    spec: &NiahSpec,
    haystack: &Haystack,
    tok: &dyn TaskTokenizer,
) -> Result<Vec<TaskSample>, TaskError> {
    if spec.lengths.is_empty() || spec.depths.is_empty() || spec.samples == 0 {
        return Err(TaskError::InvalidSpec(
            "needle-in-a-haystack needs at least one length, one depth and one sample".to_owned(),
        ));
    }
    if let Some(depth) = spec.depths.iter().find(|&&d| d > 100) {
        return Err(TaskError::InvalidSpec(format!(
            "needle depth {depth}% is not between 0 and 100"
        )));
    }
    let mut samples = Vec::with_capacity(spec.lengths.len() * spec.depths.len() * spec.samples);
    for &length in &spec.lengths {
        let budget = LengthBudget {
            task: "niah",
            length,
            max_new_tokens: NIAH_MAX_NEW_TOKENS,
        };
        let mut hint = None;
        for &depth in &spec.depths {
            for number in 0..spec.samples {
                let seed = sample_seed(spec.seed, &[length as u64, depth.into(), number as u64]);
                let (words, draft) = sample(haystack, tok, budget, depth, seed, hint)?;
                hint = Some(words);
                samples.push(TaskSample {
                    index: samples.len(),
                    id: format!("niah/{length}/{depth}/{number}"),
                    task: "niah".to_owned(),
                    context: draft.context,
                    question: draft.question,
                    answer_prefix: draft.answer_prefix,
                    answers: draft.answers,
                    max_new_tokens: NIAH_MAX_NEW_TOKENS,
                    metric: Metric::StringMatchAll,
                    evidence: draft.evidence,
                    fields: vec![
                        ("length".to_owned(), length.to_string()),
                        ("depth".to_owned(), depth.to_string()),
                        ("haystack".to_owned(), haystack.label().to_owned()),
                    ],
                });
            }
        }
    }
    Ok(samples)
}

/// One sample and its haystack size in words. The size is searched with the needle at the
/// boundary nearest to `depth` counted in sentences (cheap), then the needle moves to the
/// boundary nearest to `depth` counted in tokens, dropping words while that no longer fits
/// (the needle's tokens hardly depend on where it goes, so this rarely drops any).
fn sample(
    haystack: &Haystack,
    tok: &dyn TaskTokenizer,
    budget: LengthBudget,
    depth: u32,
    seed: u64,
    hint: Option<usize>,
) -> Result<(usize, Draft), TaskError> {
    let mut rng = SplitMix64::new(seed);
    let key = adjective_noun(&mut rng);
    let value = number(&mut rng);
    let needle = needle("numbers", &key, &value);
    let (intro, question, answer_prefix) = niah_prompt("numbers", &key, true);
    let assemble = |sentences: &Sentences, boundary: usize| {
        let (body, ranges) = sentences.with_inserted(&[(boundary, needle.as_str())]);
        let shift = intro.len() + 1;
        Draft {
            context: format!("{intro}\n{body}\n"),
            question: question.clone(),
            answer_prefix: answer_prefix.clone(),
            answers: vec![value.clone()],
            evidence: ranges
                .into_iter()
                .map(|r| r.start + shift..r.end + shift)
                .collect(),
        }
    };
    let depth = depth as usize;
    let mut by_sentences = |words: usize| {
        let text = haystack.first_words(words);
        let sentences = Sentences::split(&text);
        Ok(assemble(&sentences, (sentences.len() * depth + 50) / 100))
    };
    let mut words = fill(tok, budget, 1, hint, &mut by_sentences)?.units;
    loop {
        let text = haystack.first_words(words);
        let sentences = Sentences::split(&text);
        let draft = assemble(&sentences, boundary_at_depth(tok, &sentences, depth)?);
        let tokens = prompt_tokens(tok, &draft)?;
        if tokens <= budget.prompt_tokens() {
            return Ok((words, draft));
        }
        if words == 1 {
            return Err(budget.too_small(tokens));
        }
        words -= 1;
    }
}

/// The sentence boundary whose prefix has the token count nearest to `depth`% of the text's
/// tokens (the earlier one on a tie). A prefix's count is the sum of its sentences' counts:
/// one pass over the text instead of one tokenisation per probed prefix, and the same count
/// for tokenizers that split words at spaces (byte-level BPE, SentencePiece).
fn boundary_at_depth(
    tok: &dyn TaskTokenizer,
    sentences: &Sentences,
    depth: usize,
) -> Result<usize, TaskError> {
    let mut prefix_tokens = Vec::with_capacity(sentences.len() + 1);
    prefix_tokens.push(0);
    for i in 0..sentences.len() {
        prefix_tokens.push(prefix_tokens[i] + text_tokens(tok, sentences.sentence(i))?);
    }
    let total = prefix_tokens[sentences.len()];
    let target = total as f64 * depth as f64 / 100.0;
    let distance = |i: usize| (prefix_tokens[i] as f64 - target).abs();
    Ok((0..prefix_tokens.len()).fold(0, |best, i| {
        if distance(i) < distance(best) {
            i
        } else {
            best
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::word_tokenizer::WordTokenizer;

    /// Sentences of 2 to 12 words, so that depths fall between boundaries.
    fn made_up_haystack() -> Haystack {
        let text: String = (0..300)
            .map(|i| {
                let words = 2 + (i * 7) % 11;
                let mut sentence: Vec<String> = (0..words).map(|w| format!("w{i}x{w}")).collect();
                sentence[words - 1].push('.');
                sentence.join(" ")
            })
            .collect::<Vec<_>>()
            .join(" ");
        Haystack::from_text("made-up", &text).unwrap()
    }

    fn spec(seed: u64) -> NiahSpec {
        NiahSpec {
            lengths: vec![400, 1500, 5000],
            depths: vec![0, 10, 25, 33, 50, 77, 90, 100],
            samples: 2,
            seed,
        }
    }

    #[test]
    fn needles_sit_at_the_requested_token_depth_and_prompts_fill_the_length() {
        let spec = spec(5);
        let samples = niah_samples(&spec, &made_up_haystack(), &WordTokenizer).unwrap();
        assert_eq!(samples.len(), 3 * 8 * 2);
        let intro = "A special magic number is hidden within the following text. Make sure to \
                     memorize it. I will quiz you about the number afterwards.\n";
        for (i, s) in samples.iter().enumerate() {
            let length: usize = s.fields[0].1.parse().unwrap();
            let depth: f64 = s.fields[1].1.parse().unwrap();
            assert_eq!(s.index, i);
            assert_eq!(s.id, format!("niah/{length}/{depth}/{}", i % 2));
            assert_eq!(s.fields[2], ("haystack".to_owned(), "made-up".to_owned()));

            // Every word is one token, so whole words fill the budget exactly.
            let tokens = WordTokenizer
                .prompt_tokens(&s.context, &s.question, &s.answer_prefix)
                .unwrap();
            assert_eq!(tokens, length - NIAH_MAX_NEW_TOKENS, "{}", s.id);

            // The needle holds the answer and the question's key.
            let [evidence] = s.evidence.as_slice() else {
                panic!("{:?}", s.evidence)
            };
            let needle = &s.context[evidence.clone()];
            let [value] = s.answers.as_slice() else {
                panic!()
            };
            assert!(value.len() == 7 && value.bytes().all(|b| b.is_ascii_digit()));
            let key = needle
                .strip_prefix("One of the special magic numbers for ")
                .and_then(|rest| rest.strip_suffix(&format!(" is: {value}.")))
                .unwrap();
            assert_eq!(
                s.question,
                format!(
                    "What is the special magic number for {key} mentioned in the provided text?"
                )
            );
            assert_eq!(
                s.answer_prefix,
                format!("The special magic number for {key} mentioned in the provided text is")
            );

            // Word counts of the haystack before the needle and at every sentence boundary.
            let haystack = s
                .context
                .strip_prefix(intro)
                .unwrap()
                .strip_suffix('\n')
                .unwrap();
            let start = evidence.start - intro.len();
            let before = haystack[..start].split_whitespace().count();
            let rest = &haystack[start + needle.len()..];
            let words: Vec<&str> = haystack[..start]
                .split_whitespace()
                .chain(rest.split_whitespace())
                .collect();
            let mut boundaries = vec![0];
            boundaries.extend(
                words
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.ends_with('.'))
                    .map(|(i, _)| i + 1),
            );
            if *boundaries.last().unwrap() != words.len() {
                boundaries.push(words.len());
            }
            assert!(
                boundaries.contains(&before),
                "{}: not at a sentence boundary",
                s.id
            );
            let target = words.len() as f64 * depth / 100.0;
            let nearest = boundaries
                .iter()
                .map(|&b| (b as f64 - target).abs())
                .fold(f64::INFINITY, f64::min);
            assert_eq!(
                (before as f64 - target).abs(),
                nearest,
                "{}: {before} words before, target {target}",
                s.id
            );
            if depth == 0.0 {
                assert_eq!(before, 0);
            }
            if depth == 100.0 {
                assert_eq!(before, words.len());
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_samples() {
        let haystack = made_up_haystack();
        let a = niah_samples(&spec(1), &haystack, &WordTokenizer).unwrap();
        let b = niah_samples(&spec(1), &haystack, &WordTokenizer).unwrap();
        let c = niah_samples(&spec(2), &haystack, &WordTokenizer).unwrap();
        assert_eq!(a, b);
        assert!(
            a.iter()
                .zip(&c)
                .all(|(a, c)| a.answers != c.answers && a.context != c.context)
        );
        // A sample does not depend on the rest of the grid.
        let alone = NiahSpec {
            lengths: vec![1500],
            depths: vec![77],
            samples: 2,
            seed: 1,
        };
        let single = niah_samples(&alone, &haystack, &WordTokenizer).unwrap();
        let same = a.iter().find(|s| s.id == "niah/1500/77/1").unwrap();
        assert_eq!(
            (&single[1].context, &single[1].answers),
            (&same.context, &same.answers)
        );
    }

    #[test]
    fn noise_fills_in_for_a_missing_haystack() {
        let noise = NiahSpec {
            lengths: vec![600],
            depths: vec![50],
            samples: 1,
            seed: 0,
        };
        let samples = niah_samples(&noise, &Haystack::noise(), &WordTokenizer).unwrap();
        assert!(
            samples[0]
                .context
                .contains("The grass is green. The sky is blue.")
        );
        assert_eq!(samples[0].fields[2].1, "noise");
    }

    #[test]
    fn bad_lengths_and_depths_are_errors() {
        let haystack = made_up_haystack();
        let tiny = NiahSpec {
            lengths: vec![NIAH_MAX_NEW_TOKENS + 40],
            ..spec(0)
        };
        let error = niah_samples(&tiny, &haystack, &WordTokenizer).unwrap_err();
        assert!(
            matches!(error, TaskError::LengthTooSmall { length, .. } if length == NIAH_MAX_NEW_TOKENS + 40),
            "{error}"
        );
        let deep = NiahSpec {
            depths: vec![50, 101],
            ..spec(0)
        };
        assert!(
            niah_samples(&deep, &haystack, &WordTokenizer)
                .unwrap_err()
                .to_string()
                .contains("101%")
        );
        let empty = NiahSpec {
            lengths: vec![],
            ..spec(0)
        };
        assert!(matches!(
            niah_samples(&empty, &haystack, &WordTokenizer),
            Err(TaskError::InvalidSpec(_))
        ));
    }
}

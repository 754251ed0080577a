//! RULER's synthetic tasks (Hsieh et al. 2024, NVIDIA/RULER) as its repository defines them:
//! the eight needle tasks, variable tracking (`vt`), common-words extraction (`cwe`) and
//! frequent-words extraction (`fwe`), each with RULER's haystack type, key and value types,
//! needle counts, wording, tokens to generate and metric (`string_match_all`).
//!
//! Prompts are split as kvpress's RULER dataset splits them: `context` up to the last
//! question, then `question`, then `answer_prefix`. Essay tasks read the `--haystack`
//! directory when one is given, otherwise the noise sentences (their `haystack` field then
//! says `noise`). RULER's QA tasks (`qa_1`, `qa_2`) need the SQuAD and HotpotQA files, which
//! judgeq does not have; they are left out. Keys and words come from the project's own word
//! lists ([`words`]), so scores are comparable in kind with RULER's, not identical draws.

mod cwe;
pub(crate) mod draw;
mod fwe;
mod niah;
mod template;
mod vt;
mod words;

use std::fmt;
use std::str::FromStr;

use draw::{Kind, sample_seed};
use niah::{NiahConfig, Surround};

use super::fit::{FittedDraft, LengthBudget};
use super::{Haystack, Metric, TaskError, TaskSample, TaskTokenizer};

pub(crate) use template::{needle, niah_prompt};

/// One of RULER's synthetic tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RulerTask {
    /// One number hidden in noise sentences under a word key.
    NiahSingle1,
    /// One number hidden in an essay under a word key.
    NiahSingle2,
    /// One UUID hidden in an essay under a word key.
    NiahSingle3,
    /// Four numbers under four word keys in an essay; one key asked.
    NiahMultikey1,
    /// One number among lines of distractor needles (word keys).
    NiahMultikey2,
    /// One UUID among lines of distractor needles (UUID keys).
    NiahMultikey3,
    /// Four numbers under one word key in an essay; all four asked.
    NiahMultivalue,
    /// Four numbers under four word keys in an essay; all four keys asked.
    NiahMultiquery,
    /// Variable tracking: a chain of five variables holding one value.
    Vt,
    /// Common-words extraction: the ten most common words of a list.
    Cwe,
    /// Frequent-words extraction: the three most frequent coded words.
    Fwe,
}

impl RulerTask {
    /// Every task, in RULER's order.
    pub const ALL: [RulerTask; 11] = [
        Self::NiahSingle1,
        Self::NiahSingle2,
        Self::NiahSingle3,
        Self::NiahMultikey1,
        Self::NiahMultikey2,
        Self::NiahMultikey3,
        Self::NiahMultivalue,
        Self::NiahMultiquery,
        Self::Vt,
        Self::Cwe,
        Self::Fwe,
    ];

    /// RULER's name of the task (`niah_single_1`, ..., `vt`, `cwe`, `fwe`).
    pub fn id(self) -> &'static str {
        match self {
            Self::NiahSingle1 => "niah_single_1",
            Self::NiahSingle2 => "niah_single_2",
            Self::NiahSingle3 => "niah_single_3",
            Self::NiahMultikey1 => "niah_multikey_1",
            Self::NiahMultikey2 => "niah_multikey_2",
            Self::NiahMultikey3 => "niah_multikey_3",
            Self::NiahMultivalue => "niah_multivalue",
            Self::NiahMultiquery => "niah_multiquery",
            Self::Vt => "vt",
            Self::Cwe => "cwe",
            Self::Fwe => "fwe",
        }
    }

    /// Tokens the model may generate (RULER's `tokens_to_generate`).
    pub fn max_new_tokens(self) -> usize {
        match self {
            Self::Vt => 30,
            Self::Cwe => 120,
            Self::Fwe => 50,
            _ => 128,
        }
    }

    /// Whether the task hides its needles in an essay (the `--haystack` text).
    pub fn uses_essay(self) -> bool {
        self.niah_config()
            .is_some_and(|c| c.surround == Surround::Essay)
    }

    /// The needle task's settings (RULER's `synthetic.yaml`); `None` for the other tasks.
    fn niah_config(self) -> Option<NiahConfig> {
        let config = |surround, key, value, keys, values, queries| NiahConfig {
            surround,
            key,
            value,
            keys,
            values,
            queries,
        };
        use Kind::{Numbers, Uuids, Words};
        use Surround::{Essay, Needle, Noise};
        Some(match self {
            Self::NiahSingle1 => config(Noise, Words, Numbers, 1, 1, 1),
            Self::NiahSingle2 => config(Essay, Words, Numbers, 1, 1, 1),
            Self::NiahSingle3 => config(Essay, Words, Uuids, 1, 1, 1),
            Self::NiahMultikey1 => config(Essay, Words, Numbers, 4, 1, 1),
            Self::NiahMultikey2 => config(Needle, Words, Numbers, 1, 1, 1),
            Self::NiahMultikey3 => config(Needle, Uuids, Uuids, 1, 1, 1),
            Self::NiahMultivalue => config(Essay, Words, Numbers, 1, 4, 1),
            Self::NiahMultiquery => config(Essay, Words, Numbers, 1, 1, 4),
            Self::Vt | Self::Cwe | Self::Fwe => return None,
        })
    }

    /// What the sample's `haystack` field says for this task.
    fn haystack_label(self, haystack: &Haystack) -> &str {
        match self.niah_config().map(|c| c.surround) {
            Some(Surround::Essay) => haystack.label(),
            Some(Surround::Needle) => "needle",
            Some(Surround::Noise) => super::haystack::NOISE_LABEL,
            None if self == Self::Vt => super::haystack::NOISE_LABEL,
            None => "none",
        }
    }
}

impl fmt::Display for RulerTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for RulerTask {
    type Err = TaskError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|task| task.id() == name)
            .ok_or_else(|| TaskError::UnknownTask {
                name: name.to_owned(),
                known: Self::ALL.map(Self::id).join(", "),
            })
    }
}

/// Which RULER samples to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct RulerSpec {
    /// The tasks.
    pub tasks: Vec<RulerTask>,
    /// Lengths in tokens (prompt and generated answer, RULER's `max_seq_length`).
    pub lengths: Vec<usize>,
    /// Samples per task and length.
    pub samples: usize,
    /// The run's seed: the same seed gives the same samples.
    pub seed: u64,
}

/// Every sample of `spec`, ordered by task, then length, then sample number; `id` is
/// `{task}/{length}/{sample}` and `fields` hold `length` and `haystack`. Each sample's whole
/// prompt, as `tok` counts it, is at most `length - max_new_tokens` tokens and as close to it
/// as the haystack allows.
pub fn ruler_samples(
    spec: &RulerSpec,
    haystack: &Haystack,
    tok: &dyn TaskTokenizer,
) -> Result<Vec<TaskSample>, TaskError> {
    if spec.tasks.is_empty() || spec.lengths.is_empty() || spec.samples == 0 {
        return Err(TaskError::InvalidSpec(
            "RULER needs at least one task, one length and one sample".to_owned(),
        ));
    }
    let mut samples = Vec::with_capacity(spec.tasks.len() * spec.lengths.len() * spec.samples);
    for &task in &spec.tasks {
        let ordinal = task as u64;
        let vt_example_lines = match task {
            RulerTask::Vt => vt::example_lines(tok, sample_seed(spec.seed, &[ordinal]))?,
            _ => 0,
        };
        for &length in &spec.lengths {
            let budget = LengthBudget {
                task: task.id(),
                length,
                max_new_tokens: task.max_new_tokens(),
            };
            let mut hint = None;
            for number in 0..spec.samples {
                let seed = sample_seed(spec.seed, &[ordinal, length as u64, number as u64]);
                let fitted = match (task.niah_config(), task) {
                    (Some(config), _) => config.sample(haystack, tok, budget, seed, hint)?,
                    (None, RulerTask::Vt) => vt::sample(tok, budget, seed, vt_example_lines, hint)?,
                    (None, RulerTask::Cwe) => cwe::sample(tok, budget, seed, hint)?,
                    (None, _) => fwe::sample(tok, budget, seed, hint)?,
                };
                hint = Some(fitted.units);
                samples.push(to_sample(
                    samples.len(),
                    task,
                    length,
                    number,
                    haystack,
                    fitted,
                ));
            }
        }
    }
    Ok(samples)
}

fn to_sample(
    index: usize,
    task: RulerTask,
    length: usize,
    number: usize,
    haystack: &Haystack,
    fitted: FittedDraft,
) -> TaskSample {
    let draft = fitted.draft;
    TaskSample {
        index,
        id: format!("{task}/{length}/{number}"),
        task: task.id().to_owned(),
        context: draft.context,
        question: draft.question,
        answer_prefix: draft.answer_prefix,
        answers: draft.answers,
        max_new_tokens: task.max_new_tokens(),
        metric: Metric::StringMatchAll,
        evidence: draft.evidence,
        fields: vec![
            ("length".to_owned(), length.to_string()),
            (
                "haystack".to_owned(),
                task.haystack_label(haystack).to_owned(),
            ),
        ],
    }
}

#[cfg(test)]
mod tests;

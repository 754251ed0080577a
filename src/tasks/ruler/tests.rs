//! RULER generators against the whitespace test tokenizer: lengths, answers recounted from
//! the generated text, RULER's wording, reproducibility.

use std::collections::HashMap;

use super::template::{CWE_INTRO, FWE_INTRO, VT_INTRO};
use super::*;
use crate::tasks::word_tokenizer::WordTokenizer;

const LENGTHS: [usize; 2] = [1500, 4500];

fn essay() -> Haystack {
    let text: String = (0..400)
        .map(|i| {
            format!(
                "Essay sentence {i} has {} plain words.",
                ["a few", "several more", "some"][i % 3]
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    Haystack::from_text("essay", &text).unwrap()
}

fn spec(tasks: &[RulerTask], seed: u64) -> RulerSpec {
    RulerSpec {
        tasks: tasks.to_vec(),
        lengths: LENGTHS.to_vec(),
        samples: 2,
        seed,
    }
}

fn generate(task: RulerTask, haystack: &Haystack) -> Vec<TaskSample> {
    ruler_samples(&spec(&[task], 7), haystack, &WordTokenizer).unwrap()
}

fn prompt_tokens(s: &TaskSample) -> usize {
    WordTokenizer
        .prompt_tokens(&s.context, &s.question, &s.answer_prefix)
        .unwrap()
}

/// Tokens one more haystack unit may add: a word, a noise line, a distractor needle, a
/// chain-free noise line, three list entries, or one more word of every rank whose Zipf count
/// steps up at once.
fn granularity(task: RulerTask) -> usize {
    match task {
        RulerTask::NiahSingle1 | RulerTask::Vt => 19,
        RulerTask::NiahMultikey2 | RulerTask::NiahMultikey3 => 9,
        RulerTask::Cwe => 6,
        RulerTask::Fwe => 64,
        _ => 1,
    }
}

#[test]
fn every_task_fills_its_length_with_rulers_settings() {
    let haystack = essay();
    for task in RulerTask::ALL {
        let samples = generate(task, &haystack);
        assert_eq!(samples.len(), LENGTHS.len() * 2);
        for (i, s) in samples.iter().enumerate() {
            let length = LENGTHS[i / 2];
            assert_eq!(s.index, i);
            assert_eq!(s.id, format!("{task}/{length}/{}", i % 2));
            assert_eq!(s.task, task.id());
            assert_eq!(s.metric, Metric::StringMatchAll);
            assert_eq!(s.fields[0], ("length".to_owned(), length.to_string()));
            let budget = length - s.max_new_tokens;
            let tokens = prompt_tokens(s);
            assert!(
                tokens <= budget && tokens + granularity(task) > budget,
                "{}: {tokens} tokens for a budget of {budget}",
                s.id
            );
            assert!(!s.answers.is_empty());
            for answer in &s.answers {
                assert!(
                    s.context.contains(answer.as_str()),
                    "{}: {answer} is not in the context",
                    s.id
                );
            }
            assert!(
                s.evidence.windows(2).all(|w| w[0].end <= w[1].start),
                "{}",
                s.id
            );
            assert!(s.evidence.iter().all(|r| r.end <= s.context.len()));
        }
    }
    let tokens: Vec<usize> = RulerTask::ALL.map(RulerTask::max_new_tokens).to_vec();
    assert_eq!(
        tokens,
        [128, 128, 128, 128, 128, 128, 128, 128, 30, 120, 50]
    );
}

/// `(key, value)` of a needle sentence.
fn parse_needle(needle: &str, plural: &str) -> (String, String) {
    let rest = needle
        .strip_prefix(&format!("One of the special magic {plural} for "))
        .and_then(|r| r.strip_suffix('.'))
        .unwrap_or_else(|| panic!("not a needle: {needle}"));
    let (key, value) = rest.split_once(" is: ").unwrap();
    (key.to_owned(), value.to_owned())
}

#[test]
fn needle_tasks_hide_what_they_ask_for() {
    let haystack = essay();
    // (task, value kind, needles in the context, needles asked, answers, singular wording)
    let cases = [
        (RulerTask::NiahSingle1, "numbers", 1, 1, 1, true),
        (RulerTask::NiahSingle2, "numbers", 1, 1, 1, true),
        (RulerTask::NiahSingle3, "uuids", 1, 1, 1, true),
        (RulerTask::NiahMultikey1, "numbers", 4, 1, 1, true),
        (RulerTask::NiahMultivalue, "numbers", 4, 4, 4, false),
        (RulerTask::NiahMultiquery, "numbers", 4, 4, 4, false),
    ];
    for (task, plural, hidden, asked, answers, single) in cases {
        for s in generate(task, &haystack) {
            let marker = format!("One of the special magic {plural} for ");
            assert_eq!(s.context.matches(&marker).count(), hidden, "{}", s.id);
            assert_eq!(
                (s.evidence.len(), s.answers.len()),
                (asked, answers),
                "{}",
                s.id
            );
            for range in &s.evidence {
                let (key, value) = parse_needle(&s.context[range.clone()], plural);
                assert!(
                    s.question.contains(&key) && s.answer_prefix.contains(&key),
                    "{}",
                    s.id
                );
                assert!(s.answers.contains(&value), "{}", s.id);
            }
            if single {
                let kind = plural.trim_end_matches('s');
                assert!(s.context.starts_with(&format!(
                    "A special magic {kind} is hidden within the following text."
                )));
                assert!(
                    s.question
                        .starts_with(&format!("What is the special magic {kind} for "))
                );
                assert!(
                    s.answer_prefix
                        .ends_with("mentioned in the provided text is")
                );
            } else {
                assert!(
                    s.context
                        .starts_with("Some special magic numbers are hidden")
                );
                assert!(
                    s.question
                        .starts_with("What are all the special magic numbers for ")
                );
                assert!(
                    s.answer_prefix
                        .ends_with("mentioned in the provided text are")
                );
            }
            if task == RulerTask::NiahMultiquery {
                assert_eq!(s.question.matches(", ").count(), 3, "{}", s.question);
                assert!(s.question.contains(", and "));
            }
            if task == RulerTask::NiahSingle1 {
                // Noise lines, the needle on a line of its own.
                let lines: Vec<&str> = s.context.lines().skip(1).collect();
                assert!(
                    lines
                        .iter()
                        .all(|l| *l == crate::tasks::haystack::NOISE || l.starts_with(&marker))
                );
                assert_eq!(s.fields[1].1, "noise");
            } else {
                // Essay needles sit at sentence boundaries.
                // (or after the haystack's last, unfinished, sentence).
                for range in &s.evidence {
                    let before = s.context[..range.start].trim_end();
                    let at_end = s.context[range.end..].trim().is_empty();
                    assert!(
                        before.ends_with('.') || at_end,
                        "{}: ...{:?}",
                        s.id,
                        &before[before.len() - 40..]
                    );
                }
                assert_eq!(s.fields[1].1, "essay");
            }
        }
    }
}

#[test]
fn multikey_needle_haystacks_ask_for_a_unique_key() {
    for (task, plural) in [
        (RulerTask::NiahMultikey2, "numbers"),
        (RulerTask::NiahMultikey3, "uuids"),
    ] {
        for s in generate(task, &essay()) {
            let lines: Vec<&str> = s.context.lines().skip(1).collect();
            let pairs: Vec<(String, String)> =
                lines.iter().map(|l| parse_needle(l, plural)).collect();
            assert!(pairs.len() > 20, "{}", s.id);
            let [range] = s.evidence.as_slice() else {
                panic!()
            };
            let (key, value) = parse_needle(&s.context[range.clone()], plural);
            assert_eq!(
                pairs.iter().filter(|(k, _)| *k == key).count(),
                1,
                "{}",
                s.id
            );
            assert_eq!(s.answers, [value]);
            if task == RulerTask::NiahMultikey3 {
                assert_eq!(key.len(), 36);
                assert_eq!(key.matches('-').count(), 4);
            }
            assert_eq!(s.fields[1].1, "needle");
        }
    }
}

/// Variables whose value resolves to `value`, following `VAR X = ...` lines.
fn variables_holding(lines: &str, value: &str) -> Vec<String> {
    let mut holds: HashMap<String, String> = HashMap::new();
    let assignments: Vec<(String, String)> = lines
        .lines()
        .filter_map(|l| l.strip_prefix("VAR "))
        .map(|l| {
            let (name, source) = l.split_once(" = ").unwrap();
            (name.to_owned(), source.trim().to_owned())
        })
        .collect();
    // Chains run in order of appearance, so one pass resolves them.
    for (name, source) in &assignments {
        let resolved = match source.strip_prefix("VAR ") {
            Some(other) => holds.get(other).cloned().unwrap_or_default(),
            None => source.clone(),
        };
        holds.insert(name.clone(), resolved);
    }
    let mut names: Vec<String> = holds
        .into_iter()
        .filter(|(_, v)| v == value)
        .map(|(n, _)| n)
        .collect();
    names.sort();
    names
}

#[test]
fn variable_tracking_answers_follow_the_chain() {
    for s in generate(RulerTask::Vt, &essay()) {
        let value = s
            .question
            .strip_prefix("Question: Find all variables that are assigned the value ")
            .and_then(|q| q.strip_suffix(" in the text above."))
            .unwrap();
        assert_eq!(
            s.answer_prefix,
            format!(
                "Answer: According to the chain(s) of variable assignment in the text above, 5 variables \
                 are assigned the value {value}, they are: "
            )
        );
        let task_start = s.context.rfind(VT_INTRO).unwrap();
        let (example, task) = s.context.split_at(task_start);
        let mut expected = s.answers.clone();
        expected.sort();
        assert_eq!(variables_holding(task, value), expected, "{}", s.id);
        assert!(
            s.answers
                .iter()
                .all(|a| a.len() == 5 && a.bytes().all(|b| b.is_ascii_uppercase()))
        );
        assert_eq!(s.evidence.len(), 5);
        for (range, name) in s.evidence.iter().zip(&s.answers) {
            assert!(s.context[range.clone()].starts_with(&format!("VAR {name} = ")));
        }

        // The solved example: its own chain, its answer after the prompt.
        assert!(example.starts_with(VT_INTRO));
        let answer_at = example.rfind("they are:  ").unwrap();
        let example_answer: Vec<String> = example[answer_at + 11..]
            .split_whitespace()
            .map(String::from)
            .collect();
        let example_value = example
            .rsplit("are assigned the value ")
            .next()
            .and_then(|rest| rest.split(',').next())
            .unwrap();
        let mut sorted = example_answer.clone();
        sorted.sort();
        assert_eq!(
            variables_holding(&example[..answer_at], example_value),
            sorted
        );
        assert!(example_answer.iter().all(|a| a.len() == 3));
        assert!(WordTokenizer.text_tokens(&example[..answer_at]).unwrap() <= 500);
        assert_eq!(s.fields[1].1, "noise");
    }
}

/// Word counts of a numbered list `1. a 2. b ...`, checking the numbering.
fn numbered_counts(list: &str) -> HashMap<&str, usize> {
    let items: Vec<&str> = list.split_whitespace().collect();
    let mut counts = HashMap::new();
    for (i, pair) in items.chunks(2).enumerate() {
        assert_eq!(pair[0], format!("{}.", i + 1));
        *counts.entry(pair[1]).or_insert(0) += 1;
    }
    counts
}

/// The `n` most frequent words (sorted) and the count after them.
fn top(counts: &HashMap<&str, usize>, n: usize) -> (Vec<String>, usize, usize) {
    let mut by_count: Vec<(&str, usize)> = counts.iter().map(|(w, c)| (*w, *c)).collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut words: Vec<String> = by_count[..n].iter().map(|(w, _)| w.to_string()).collect();
    words.sort();
    (words, by_count[n - 1].1, by_count.get(n).map_or(0, |p| p.1))
}

#[test]
fn common_words_answers_are_the_most_common_words() {
    for s in generate(RulerTask::Cwe, &essay()) {
        let list = s
            .context
            .rsplit(&format!("{CWE_INTRO}\n"))
            .next()
            .unwrap()
            .trim_end();
        let counts = numbered_counts(list);
        let (common, last_common, next) = top(&counts, 10);
        let mut answers = s.answers.clone();
        answers.sort();
        assert_eq!(common, answers, "{}", s.id);
        let long = s.fields[0].1 == "4500";
        assert_eq!(
            (last_common, next),
            if long { (30, 3) } else { (6, 1) },
            "{}",
            s.id
        );
        assert!(s.evidence.is_empty());
        // The solved example before the task: its list and its ten answers.
        let example = s.context.strip_prefix(&format!("{CWE_INTRO}\n")).unwrap();
        let (example_list, rest) = example.split_once('\n').unwrap();
        let example_counts = numbered_counts(example_list);
        assert_eq!(example_counts.len(), if long { 40 } else { 20 });
        let (example_common, _, _) = top(&example_counts, 10);
        let shown = rest
            .split_once("appear most often in the list are: ")
            .unwrap()
            .1
            .split_once('\n')
            .unwrap()
            .0;
        let mut listed: Vec<String> = numbered_counts(shown)
            .keys()
            .map(|w| w.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, example_common);
        assert_eq!(
            s.question,
            "Question: What are the 10 most common words in the above list?"
        );
    }
}

#[test]
fn common_words_switch_to_word_pairs_when_single_words_run_out() {
    let many = RulerSpec {
        tasks: vec![RulerTask::Cwe],
        lengths: vec![16_000],
        samples: 1,
        seed: 3,
    };
    let s = &ruler_samples(&many, &essay(), &WordTokenizer).unwrap()[0];
    let list = s
        .context
        .rsplit(&format!("{CWE_INTRO}\n"))
        .next()
        .unwrap()
        .trim_end();
    let counts = numbered_counts(list);
    assert!(counts.len() > words::NOUNS.len() + words::ADJECTIVES.len());
    assert!(counts.keys().all(|w| w.contains('-')));
    let (common, _, _) = top(&counts, 10);
    let mut answers = s.answers.clone();
    answers.sort();
    assert_eq!(common, answers);
}

#[test]
fn frequent_words_answers_are_the_most_frequent_coded_words() {
    for s in generate(RulerTask::Fwe, &essay()) {
        let text = s.context.strip_prefix(FWE_INTRO).unwrap();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for word in text.split_whitespace() {
            *counts.entry(word).or_insert(0) += 1;
        }
        let dots = counts.remove("...").unwrap();
        let (frequent, third, fourth) = top(&counts, 3);
        let mut answers = s.answers.clone();
        answers.sort();
        assert_eq!(frequent, answers, "{}", s.id);
        assert!(third > fourth && dots > third);
        assert!(
            counts
                .keys()
                .all(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
        assert!(
            s.question
                .starts_with("Question: Do not provide any explanation.")
        );
        assert_eq!(s.fields[1].1, "none");
    }
}

#[test]
fn the_same_seed_gives_the_same_samples() {
    let haystack = essay();
    let a = ruler_samples(&spec(&RulerTask::ALL, 1), &haystack, &WordTokenizer).unwrap();
    let b = ruler_samples(&spec(&RulerTask::ALL, 1), &haystack, &WordTokenizer).unwrap();
    let c = ruler_samples(&spec(&RulerTask::ALL, 2), &haystack, &WordTokenizer).unwrap();
    assert_eq!(a, b);
    for (a, c) in a.iter().zip(&c) {
        assert_eq!(a.id, c.id);
        assert_ne!(a.context, c.context, "{}", a.id);
    }
    // A sample does not depend on the rest of the grid.
    let alone = ruler_samples(&spec(&[RulerTask::Vt], 1), &haystack, &WordTokenizer).unwrap();
    let same: Vec<TaskSample> = a
        .iter()
        .filter(|s| s.task == "vt")
        .zip(0..)
        .map(|(s, index)| TaskSample { index, ..s.clone() })
        .collect();
    assert!(alone == same, "vt samples differ when generated alone");
}

#[test]
fn essay_tasks_fall_back_to_noise() {
    let s = &ruler_samples(
        &spec(&[RulerTask::NiahSingle2], 0),
        &Haystack::noise(),
        &WordTokenizer,
    )
    .unwrap()[0];
    assert_eq!(s.fields[1].1, "noise");
    assert!(s.context.contains("The grass is green. The sky is blue."));
    assert!(RulerTask::NiahSingle2.uses_essay() && !RulerTask::NiahSingle1.uses_essay());
}

#[test]
fn names_parse_and_bad_settings_are_errors() {
    for task in RulerTask::ALL {
        assert_eq!(task.id().parse::<RulerTask>().unwrap(), task);
        assert_eq!(task.to_string(), task.id());
    }
    let error = "qa_1".parse::<RulerTask>().unwrap_err().to_string();
    assert!(
        error.contains("qa_1") && error.contains("niah_single_1") && error.contains("fwe"),
        "{error}"
    );
    for task in RulerTask::ALL {
        let tiny = RulerSpec {
            tasks: vec![task],
            lengths: vec![task.max_new_tokens() + 30],
            samples: 1,
            seed: 0,
        };
        let error = ruler_samples(&tiny, &essay(), &WordTokenizer).unwrap_err();
        assert!(
            matches!(error, TaskError::LengthTooSmall { .. }),
            "{task}: {error}"
        );
        assert!(error.to_string().starts_with(task.id()), "{error}");
    }
    let none = RulerSpec {
        samples: 0,
        ..spec(&[RulerTask::Vt], 0)
    };
    assert!(matches!(
        ruler_samples(&none, &essay(), &WordTokenizer),
        Err(TaskError::InvalidSpec(_))
    ));
}

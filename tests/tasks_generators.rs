//! Task generators measured with the real default model's tokenizer and chat template
//! (SmolLM2-135M-Instruct, fetched through `default_model_path`): needle-in-a-haystack prompts
//! fill their length and put the needle at the requested depth in tokens; RULER's tasks fit
//! their lengths.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::time::Instant;

use judgeq::model::fetch::default_model_path;
use judgeq::model::{LoadOptions, Model};
use judgeq::progress::Silent;
use judgeq::tasks::{
    Haystack, ModelTokenizer, NIAH_MAX_NEW_TOKENS, NiahSpec, RulerSpec, RulerTask, niah_samples,
    ruler_samples,
};

fn model() -> Model {
    let path = default_model_path(&Silent).expect("the default model downloads");
    Model::load(&path, &LoadOptions::default(), &Silent).unwrap()
}

/// Sentences of varied length and vocabulary, written to a haystack directory.
fn haystack_sentences() -> Vec<String> {
    let subjects = [
        "The old ferry",
        "A quiet neighbour",
        "Every spring, the orchard",
        "Nobody",
    ];
    let middles = [
        "crossed the river",
        "kept a ledger of unusual weather, including hail in July,",
        "remembered",
        "argued about copper prices and the price of bread",
    ];
    (0..900)
        .map(|i| {
            format!(
                "{} {} on day {}{}",
                subjects[i % 4],
                middles[(i / 4) % 4],
                i,
                if i % 7 == 3 { "!" } else { "." }
            )
        })
        .collect()
}

fn tokens(model: &Model, text: &str) -> usize {
    model.tokenizer.encode(text).unwrap().ids.len()
}

#[test]
fn niah_fills_lengths_and_places_needles_by_tokens_with_the_real_tokenizer() {
    let model = model();
    let tok = ModelTokenizer::new(&model);
    let dir = tempfile::tempdir().unwrap();
    let sentences = haystack_sentences();
    std::fs::write(dir.path().join("essay.txt"), sentences.join(" ")).unwrap();
    let haystack = Haystack::from_dir(dir.path()).unwrap();
    let longest_sentence = sentences.iter().map(|s| tokens(&model, s)).max().unwrap();

    let spec = NiahSpec {
        lengths: vec![1024, 4096, 8192],
        depths: vec![0, 25, 50, 75, 100],
        samples: 1,
        seed: 3,
    };
    let started = Instant::now();
    let samples = niah_samples(&spec, &haystack, &tok).unwrap();
    let per_sample = started.elapsed().as_secs_f64() / samples.len() as f64;
    eprintln!("{} samples, {per_sample:.3} s each", samples.len());
    assert!(per_sample < 1.0, "{per_sample:.3} s per sample");
    assert_eq!(samples.len(), 15);

    let intro_end = samples[0].context.find('\n').unwrap() + 1;
    for s in &samples {
        let length: usize = s.fields[0].1.parse().unwrap();
        let depth: f64 = s.fields[1].1.parse().unwrap();

        // The whole prompt, chat template included, as the model will build it.
        let (layout, marked) = model
            .task_prompt(&s.context, &s.question, &s.answer_prefix, &s.evidence)
            .unwrap();
        let budget = length - NIAH_MAX_NEW_TOKENS;
        assert!(
            layout.len() <= budget && layout.len() + 8 > budget,
            "{}: {} prompt tokens for a budget of {budget}",
            s.id,
            layout.len()
        );
        assert_eq!(marked.len(), 1);
        assert!(!marked[0].is_empty());

        // Tokens of the haystack before the needle against the depth's share of all its tokens.
        let needle = s.evidence[0].clone();
        let body = &s.context[intro_end..s.context.len() - 1];
        let before = s.context[intro_end..needle.start].trim_end();
        let after = s.context[needle.end..s.context.len() - 1].trim_start();
        let without_needle = [before, after]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(body.contains(&s.context[needle.clone()]));
        let target = tokens(&model, &without_needle) as f64 * depth / 100.0;
        let placed = tokens(&model, before) as f64;
        assert!(
            (placed - target).abs() <= longest_sentence as f64,
            "{}: needle after {placed} tokens, target {target:.1}",
            s.id
        );
        assert!(
            before.is_empty() || after.is_empty() || before.ends_with(['.', '!']),
            "{}",
            s.id
        );
        if depth == 0.0 {
            assert!(before.is_empty());
        }
        if depth == 100.0 {
            assert!(after.is_empty());
        }
    }
}

#[test]
fn ruler_tasks_fit_their_lengths_with_the_real_tokenizer() {
    let model = model();
    let tok = ModelTokenizer::new(&model);
    let spec = RulerSpec {
        tasks: RulerTask::ALL.to_vec(),
        lengths: vec![4096],
        samples: 1,
        seed: 11,
    };
    let samples = ruler_samples(&spec, &Haystack::noise(), &tok).unwrap();
    for s in &samples {
        let budget = 4096 - s.max_new_tokens;
        let (layout, marked) = model
            .task_prompt(&s.context, &s.question, &s.answer_prefix, &s.evidence)
            .unwrap();
        // One more unit adds at most a noise line, a needle, three list entries or a few
        // Zipf-law words.
        assert!(
            layout.len() <= budget && layout.len() + 64 > budget,
            "{}: {} prompt tokens for a budget of {budget}",
            s.id,
            layout.len()
        );
        assert_eq!(marked.len(), s.evidence.len());
        assert!(s.answers.iter().all(|a| s.context.contains(a.as_str())));
    }
}

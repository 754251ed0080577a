//! `judgeq eval` on a tiny random checkpoint: the table's structure and invariants, answers
//! under eviction checked against the model run by hand, and the result files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use common::tiny_checkpoint::{TinySpec, write_hf};
use judgeq::attention::Pooling;
use judgeq::eval::report::{REPORT_FILES, summarize, write_report};
use judgeq::eval::{EvalSettings, evaluate, paper_methods};
use judgeq::export::Overwrite;
use judgeq::judgeq::data::read_prompts;
use judgeq::judgeq::{SoftTokenMeta, SoftTokens};
use judgeq::model::{Capture, GenerateOptions, LoadOptions, Model};
use judgeq::policy::{Budget, PolicyId, PolicySettings};
use judgeq::progress::Silent;
use ndarray::Array2;

const HELD: &str = concat!(
    "{\"document\": \"the cat is on the mat and the hen is in the hut, this is the end of it\", \"question\": \"where is the cat?\"}\n",
    "{\"document\": \"this the sun is hot, the sea is wide and the sky is high above us\", \"question\": \"is the sea wide?\"}\n",
);

fn setup() -> (
    common::tiny_checkpoint::TinyCheckpoint,
    Model,
    tempfile::TempDir,
) {
    let ck = write_hf(&TinySpec {
        max_positions: 512,
        seed: 51,
        vocab: common::tiny_checkpoint::tiny_tokenizer().get_vocab_size(true),
        ..TinySpec::llama()
    });
    let model = Model::load(&ck.path, &LoadOptions::default(), &Silent).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("held.jsonl"), HELD).unwrap();
    (ck, model, dir)
}

fn soft_for(model: &Model) -> SoftTokens {
    let hidden = model.info.hidden_size;
    SoftTokens {
        embeddings: Array2::from_shape_fn((4, hidden), |(i, j)| ((i * 7 + j) as f32 * 0.3).sin()),
        meta: SoftTokenMeta::for_model(&model.info, serde_json::json!({})),
    }
}

#[test]
fn every_method_at_every_budget_with_sound_numbers() {
    let (_ck, model, dir) = setup();
    let data = read_prompts(&dir.path().join("held.jsonl")).unwrap();
    let soft = soft_for(&model);
    let soft_path = dir.path().join("soft.safetensors");
    let methods = paper_methods(&PolicySettings::default(), true);
    let settings = EvalSettings {
        budgets: vec![8, 16, 10_000],
        window: 4,
        decode_tokens: 5,
        ..EvalSettings::default()
    };
    let methods: Vec<_> = methods
        .into_iter()
        .map(|mut m| {
            m.settings.window = 4;
            m
        })
        .collect();
    let run = evaluate(
        &model,
        &data,
        Some((&soft, &soft_path)),
        &methods,
        &settings,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(run.prompts.len(), 2);
    assert!(!run.cancelled);
    for prompt in &run.prompts {
        assert_eq!(prompt.cells.len(), methods.len() * 3);
        for cell in &prompt.cells {
            let method = &methods[cell.method];
            assert!((0.0..=1.0).contains(&cell.hit_rate), "{cell:?}");
            assert!((0.0..=1.0 + 1e-5).contains(&cell.mass_kept), "{cell:?}");
            let agreement = cell.agreement.as_ref().expect("every method decodes");
            if cell.budget >= prompt.prompt_tokens {
                // Everything kept: every method is the oracle and answers as the full cache.
                assert_eq!(cell.hit_rate, 1.0);
                assert!(agreement.exact_match, "{} at {}", method.id, cell.budget);
            }
            if method.policy == PolicyId::ORACLE {
                assert_eq!(cell.hit_rate, 1.0);
            }
            if method.settings.pooling == Pooling::None {
                assert_eq!(cell.hit_rate, cell.hit_rate_pooled_oracle, "{}", method.id);
            }
            assert_eq!(cell.layer_hit_rate.len(), model.info.layers);
            let mean = cell.layer_hit_rate.iter().sum::<f32>() / cell.layer_hit_rate.len() as f32;
            assert!((mean - cell.hit_rate).abs() < 1e-5);
        }
    }

    let summary = summarize(&run);
    assert_eq!(summary.len(), methods.len() * 3);
    let snap_16 = summary
        .iter()
        .find(|r| r.method == "snapkv" && r.budget == 16)
        .unwrap();
    let index = methods.iter().position(|m| m.id == "snapkv").unwrap();
    let by_hand: f64 = run
        .prompts
        .iter()
        .map(|p| {
            let c = p
                .cells
                .iter()
                .find(|c| c.method == index && c.budget == 16)
                .unwrap();
            f64::from(c.hit_rate)
        })
        .sum::<f64>()
        / 2.0;
    assert!((snap_16.hit_rate - by_hand).abs() < 1e-9);
    assert_eq!(snap_16.prompts, 2);
}

#[test]
fn answers_under_eviction_match_the_model_run_by_hand() {
    let (_ck, model, dir) = setup();
    let data = read_prompts(&dir.path().join("held.jsonl")).unwrap();
    let base = PolicySettings {
        window: 4,
        ..PolicySettings::default()
    };
    let methods: Vec<_> = paper_methods(&base, false)
        .into_iter()
        .filter(|m| m.id == "snapkv")
        .collect();
    let settings = EvalSettings {
        budgets: vec![8],
        window: 4,
        decode_tokens: 6,
        limit: Some(1),
        ..EvalSettings::default()
    };
    let run = evaluate(
        &model,
        &data,
        None,
        &methods,
        &settings,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    let prompt = &run.prompts[0];
    let cell = &prompt.cells[0];

    // The same prompt by hand: SnapKV's mask from the policy room, decoded under it.
    let record = &data.records[0];
    let judgeq::judgeq::data::PromptText::Document { document, question } = &record.text else {
        panic!()
    };
    let layout = model.prompt(document, question).unwrap();
    assert_eq!(layout.len(), prompt.prompt_tokens);
    let t = &model.transformer;
    let p = layout.len();
    let mut cache = t.new_cache(p + 8).unwrap();
    let prefill = t
        .forward(
            &t.embed(&layout.ids).unwrap(),
            &mut cache,
            &Capture::rows(p - 4, p).with_accumulation(),
            &Silent,
        )
        .unwrap();
    let full = t
        .generate(
            &mut cache,
            &prefill.last_logits,
            &GenerateOptions {
                max_tokens: 6,
                stop_ids: model.stop_ids.clone(),
                capture_keys: Some(p),
                ..GenerateOptions::default()
            },
            &Silent,
        )
        .unwrap();
    assert_eq!(model.decode_tokens(&full.ids).unwrap(), prompt.answer);
    cache.truncate(p).unwrap();
    let window = prefill.rows.unwrap();
    let decoded = full.rows.unwrap();
    let accumulated = prefill.accumulated.unwrap();
    let inputs = judgeq::policy::ScoreInputs::new(
        window.view(),
        None,
        decoded.view(),
        accumulated.view(),
        model.info.kv_heads,
        model.info.kv_entry_bytes,
    );
    let budget = Budget::new(8, inputs.prompt_len()).unwrap();
    let mask = judgeq::policy::select(PolicyId::SNAPKV, &inputs, budget, &base)
        .unwrap()
        .mask;
    let evicted = t
        .generate(
            &mut cache,
            &prefill.last_logits,
            &GenerateOptions {
                max_tokens: 6,
                stop_ids: model.stop_ids.clone(),
                keep: Some(mask),
                ..GenerateOptions::default()
            },
            &Silent,
        )
        .unwrap();
    let agreement = cell.agreement.as_ref().unwrap();
    assert_eq!(agreement.answer, model.decode_tokens(&evicted.ids).unwrap());
    let prefix = full
        .ids
        .iter()
        .zip(&evicted.ids)
        .take_while(|(a, b)| a == b)
        .count();
    assert_eq!(agreement.matched_prefix, prefix);
    assert_eq!(agreement.exact_match, full.ids == evicted.ids);
}

#[test]
fn results_are_written_once_and_soft_tokens_of_another_model_refused() {
    let (_ck, model, dir) = setup();
    let data = read_prompts(&dir.path().join("held.jsonl")).unwrap();
    let methods = paper_methods(&PolicySettings::default(), false);
    let settings = EvalSettings {
        budgets: vec![8],
        decode_tokens: 4,
        decode_under_eviction: false,
        ..EvalSettings::default()
    };
    let run = evaluate(
        &model,
        &data,
        None,
        &methods,
        &settings,
        &Silent,
        &|_, _| {},
    )
    .unwrap();
    assert!(run.prompts[0].cells.iter().all(|c| c.agreement.is_none()));
    assert!(!methods.iter().any(|m| m.policy == PolicyId::JUDGEQ));

    let out = dir.path().join("results");
    let written = write_report(&run, &out, Overwrite::Refuse).unwrap();
    assert_eq!(written.len(), REPORT_FILES.len());
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.starts_with("method,budget,prompts,hit_rate"));
    assert_eq!(summary.lines().count(), 1 + methods.len());
    assert!(
        write_report(&run, &out, Overwrite::Refuse).is_err(),
        "results must not be replaced silently"
    );
    write_report(&run, &out, Overwrite::Replace).unwrap();

    let mut foreign = soft_for(&model);
    foreign.meta.weights_sha256 = "f".repeat(64);
    let path = dir.path().join("foreign.safetensors");
    let err = evaluate(
        &model,
        &data,
        Some((&foreign, &path)),
        &paper_methods(&PolicySettings::default(), true),
        &settings,
        &Silent,
        &|_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("the weights differ"), "{err}");

    let zero = EvalSettings {
        budgets: vec![0],
        ..settings.clone()
    };
    assert!(evaluate(&model, &data, None, &methods, &zero, &Silent, &|_, _| {}).is_err());
    let no_answer = EvalSettings {
        decode_tokens: 0,
        ..settings
    };
    assert!(
        evaluate(
            &model,
            &data,
            None,
            &methods,
            &no_answer,
            &Silent,
            &|_, _| {}
        )
        .is_err()
    );
}

//! The forward pass on the real default model (SmolLM2-135M-Instruct, fetched through
//! `default_model_path`): a chat answer, and captured rows that behave like attention.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::sync::OnceLock;

use judgeq::model::fetch::default_model_path;
use judgeq::model::{Capture, GenerateOptions, LoadOptions, Model};
use judgeq::progress::Silent;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = default_model_path(&Silent).expect("the default model downloads");
        Model::load(&path, &LoadOptions::default(), &Silent).unwrap()
    })
}

#[test]
fn the_default_model_knows_the_capital_of_france() {
    let m = model();
    let prompt = m.chat_prompt("What is the capital of France?").unwrap();
    let t = &m.transformer;
    let n = prompt.ids.len();
    let mut cache = t.new_cache(n + 24).unwrap();
    let window = 8;
    let out = t
        .forward(
            &t.embed(&prompt.ids).unwrap(),
            &mut cache,
            &Capture::rows(n - window, n),
            &Silent,
        )
        .unwrap();
    let options = GenerateOptions {
        max_tokens: 24,
        stop_ids: m.stop_ids.clone(),
        capture_keys: Some(n),
        ..Default::default()
    };
    let answer = t
        .generate(&mut cache, &out.last_logits, &options, &Silent)
        .unwrap();
    let text = m.decode_tokens(&answer.ids).unwrap();
    assert!(text.contains("Paris"), "answer: {text:?}");

    // Window rows: causal, each summing to 1 over the prompt (nothing else was seen yet).
    let rows = out.rows.unwrap();
    assert_eq!(rows.dim(), (30, 9, window, n));
    for ((_, _, q, k), &p) in rows.indexed_iter() {
        assert!(p >= 0.0);
        if k > n - window + q {
            assert_eq!(p, 0.0);
        }
    }
    for row in rows.rows() {
        assert!(
            (row.sum() - 1.0).abs() < 1e-4,
            "window row sums to {}",
            row.sum()
        );
    }
    // Decoded rows: over the prompt only, so at most 1 (the rest went to generated tokens).
    let decoded = answer.rows.unwrap();
    assert_eq!(decoded.dim(), (30, 9, answer.ids.len(), n));
    for row in decoded.rows() {
        assert!(row.sum() <= 1.0 + 1e-4 && row.sum() > 0.0);
    }
}

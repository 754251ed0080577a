//! Lookahead Q-Cache's drafts on tiny random models: the draft tokens equal a plain greedy
//! decode (`Transformer::generate`) under the same SnapKV keep set, and their captured rows equal
//! the rows of one forward of the prompt followed by the drafts with the full cache.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use common::naive::{ids, rows_after_prompt, tiny_config, tiny_model, tiny_qwen2_config};
use judgeq::attention::Pooling;
use judgeq::inspect::lookahead::draft;
use judgeq::model::{Capture, GenerateOptions, Transformer};
use judgeq::policy::policies::lookahead::draft_mask;
use judgeq::progress::Silent;
use judgeq::session::LookaheadCapture;

const PROMPT: usize = 40;
const WINDOW: usize = 8;

fn check(model: &Transformer, capture: LookaheadCapture, salt: u64) {
    let prompt = ids(PROMPT, model.config.vocab_size, salt);
    let mut cache = model.new_cache(PROMPT + capture.tokens).unwrap();
    let prefill = model
        .forward(
            &model.embed(&prompt).unwrap(),
            &mut cache,
            &Capture::rows(PROMPT - WINDOW, PROMPT).with_accumulation(),
            &Silent,
        )
        .unwrap();
    let window = prefill.rows.unwrap();
    let accumulated = prefill.accumulated.unwrap();
    let mask = draft_mask(
        window.view(),
        accumulated.view(),
        model.config.num_kv_heads,
        &capture,
    )
    .unwrap();
    let kept = mask.iter().filter(|&&k| k).count();
    let rows_of_mask = mask.dim().0 * mask.dim().1;
    assert_eq!(
        kept,
        rows_of_mask * capture.draft_budget.min(PROMPT),
        "the draft cache keeps the draft budget per row"
    );
    assert!(kept < rows_of_mask * PROMPT, "the draft cache evicts");

    let drafts = draft(
        model,
        &mut cache,
        &prefill.last_logits,
        &mask,
        capture.tokens,
        &[],
        &Silent,
    )
    .unwrap();
    assert_eq!(cache.len(), PROMPT, "the cache holds the prompt again");

    let plain = model
        .generate(
            &mut cache,
            &prefill.last_logits,
            &GenerateOptions {
                max_tokens: capture.tokens,
                keep: Some(mask.clone()),
                ..GenerateOptions::default()
            },
            &Silent,
        )
        .unwrap();
    assert_eq!(
        drafts.ids, plain.ids,
        "drafts against a plain masked decode"
    );
    assert_eq!(drafts.ids.len(), capture.tokens);

    // One forward of the prompt and the drafts with the full cache, rows of the drafts.
    let mut all = prompt.clone();
    all.extend_from_slice(&drafts.ids);
    let reference = rows_after_prompt(model, &all, PROMPT);
    let (layers, heads) = (model.config.num_layers, model.config.num_heads);
    assert_eq!(drafts.rows.dim(), (layers, heads, capture.tokens, PROMPT));
    let worst = (&drafts.rows - &reference)
        .iter()
        .fold(0.0f32, |m, d| m.max(d.abs()));
    assert!(worst < 1e-4, "rows differ by {worst}");
    // Each draft row's mass over the prompt is at most 1 (the drafts before it take the rest).
    for row in drafts.rows.lanes(ndarray::Axis(3)) {
        assert!(row.sum() <= 1.0 + 1e-4);
    }
}

#[test]
fn drafts_equal_a_plain_greedy_decode_under_the_snapkv_mask() {
    for (name, config) in [("llama", tiny_config()), ("qwen2", tiny_qwen2_config())] {
        let model = tiny_model(config, 5);
        for (salt, budget, draft_window, pooling) in [
            (1, 12, 8, Pooling::Max { kernel: 7 }),
            (2, 20, 4, Pooling::None),
        ] {
            let capture = LookaheadCapture {
                tokens: 6,
                draft_window,
                draft_budget: budget,
                pooling,
            };
            eprintln!("{name}: budget {budget}, window {draft_window}");
            check(&model, capture, salt);
        }
    }
}

#[test]
fn no_drafts_asked_gives_no_rows() {
    let model = tiny_model(tiny_config(), 7);
    let prompt = ids(PROMPT, model.config.vocab_size, 3);
    let mut cache = model.new_cache(PROMPT).unwrap();
    let prefill = model
        .forward(
            &model.embed(&prompt).unwrap(),
            &mut cache,
            &Capture::NONE,
            &Silent,
        )
        .unwrap();
    let mask = ndarray::Array3::from_elem(
        (model.config.num_layers, model.config.num_heads, PROMPT),
        true,
    );
    let drafts = draft(
        &model,
        &mut cache,
        &prefill.last_logits,
        &mask,
        0,
        &[],
        &Silent,
    )
    .unwrap();
    assert!(drafts.ids.is_empty());
    assert_eq!(drafts.rows.dim().2, 0);
}

//! bf16 against f32 on the CPU, on a tiny random model (the same weights, rounded to bf16):
//! logits, greedy tokens and captured attention rows (window and decoded) agree within what
//! bf16's 8 significant bits allow.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use candle_core::{DType, Device};
use common::naive::{ids, tiny_config, tiny_qwen2_config};
use judgeq::model::agreement::{AgreementRequest, compare_runs};
use judgeq::model::{ModelConfig, Transformer};
use judgeq::progress::Silent;

fn request(vocab: usize) -> AgreementRequest {
    AgreementRequest {
        prompt: ids(48, vocab, 5),
        window: 8,
        decode_tokens: 12,
        top_k: 8,
    }
}

fn pair(config: ModelConfig, seed: u64, other: DType) -> (Transformer, Transformer) {
    let reference = Transformer::random(config.clone(), seed, Device::Cpu, DType::F32).unwrap();
    let rounded = Transformer::random(config, seed, Device::Cpu, other).unwrap();
    (reference, rounded)
}

#[test]
fn a_run_agrees_exactly_with_itself() {
    let (reference, again) = pair(tiny_config(), 3, DType::F32);
    let agreement = compare_runs(&reference, &again, &request(64), &Silent).unwrap();
    assert_eq!(agreement.steps, 13);
    assert_eq!(agreement.logits_max_abs, 0.0);
    assert_eq!(agreement.greedy_agree, 13);
    assert_eq!(agreement.window_rows.rows, 2 * 4 * 8);
    assert_eq!(agreement.decoded_rows.rows, 2 * 4 * 12);
    for rows in [agreement.window_rows, agreement.decoded_rows] {
        assert_eq!(rows.max_abs, 0.0);
        assert_eq!(rows.k, 8);
        assert_eq!(rows.min_top_k_overlap, 1.0);
    }
}

/// Tolerances of bf16 against f32. bf16 keeps 8 significant bits: every rounding (weights,
/// each activation the pass stores, the probabilities before the value product) is within
/// 2^-9 = 0.2% of the value. Roundings of independent values add up like a random walk, so the
/// ~20 rounded steps of a 2-layer pass leave the logits within a few percent of their scale
/// (5% allowed: `logits_max_rel`; measured 1.2% and 2.8%). A score `s` rounded by `|s| 2^-9` moves its probability `p`
/// by about `p |s| 2^-9`; with scores of a few units and the rounded queries, keys and hidden
/// states upstream, a probability moves by about a percent at most (0.03 allowed; measured
/// 0.006 to 0.012). Ranks swap only between keys whose probabilities are that close, so
/// nearly all of each row's top 8 stays (mean overlap 0.9 allowed; measured 0.99). A greedy choice may differ only where the reference's top two logits are
/// closer than twice the logits' error.
struct Tolerance {
    logits_rel: f32,
    probability: f32,
    mean_overlap: f64,
}

const BF16: Tolerance = Tolerance {
    logits_rel: 0.05,
    probability: 0.03,
    mean_overlap: 0.9,
};

fn check_bf16_against_f32(name: &str, config: ModelConfig, seed: u64) {
    let vocab = config.vocab_size;
    let (reference, rounded) = pair(config, seed, DType::BF16);
    let a = compare_runs(&reference, &rounded, &request(vocab), &Silent).unwrap();
    eprintln!("{name}: {a:#?}");
    assert_eq!(a.steps, 13, "{name}");
    assert!(a.logits_max_abs > 0.0, "{name}: bf16 changed nothing");
    assert!(a.logits_max_rel <= BF16.logits_rel, "{name}: {a:?}");
    for d in &a.disagreements {
        assert!(
            d.reference_margin <= 2.0 * a.logits_max_abs,
            "{name}: bf16 picked another token where f32's choice was clear: {d:?}"
        );
    }
    for (which, rows) in [("window", a.window_rows), ("decoded", a.decoded_rows)] {
        assert!(rows.max_abs > 0.0, "{name} {which}: identical rows");
        assert!(rows.max_abs <= BF16.probability, "{name} {which}: {rows:?}");
        assert!(
            rows.mean_top_k_overlap >= BF16.mean_overlap,
            "{name} {which}: {rows:?}"
        );
    }
}

#[test]
fn bf16_agrees_with_f32_on_a_tiny_llama() {
    check_bf16_against_f32("llama", tiny_config(), 7);
}

#[test]
fn bf16_agrees_with_f32_on_a_tiny_qwen2() {
    check_bf16_against_f32("qwen2", tiny_qwen2_config(), 11);
}

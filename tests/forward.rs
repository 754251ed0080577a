//! The forward pass against a naive f64 reference, and its invariants (causality, chunking,
//! soft tokens, cancellation, bad input).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use common::naive::{
    Naive, NaiveRun, ids, logits_error, tiny_config, tiny_llama3_config, tiny_model,
    tiny_qwen2_config,
};
use judgeq::model::{
    AttentionKernel, Capture, ForwardOptions, ForwardOutput, ModelConfig, ModelError, Transformer,
};
use judgeq::progress::{Progress, Silent, Stage};

const KERNELS: [AttentionKernel; 2] = [AttentionKernel::Fused, AttentionKernel::Portable];

fn options(kernel: AttentionKernel, chunk: Option<usize>) -> ForwardOptions {
    ForwardOptions {
        query_chunk: chunk,
        kernel,
        ..ForwardOptions::default()
    }
}

/// Runs `ids` as one prefill from an empty cache.
fn prefill(
    model: &Transformer,
    ids: &[u32],
    capture: &Capture,
    options: &ForwardOptions,
) -> ForwardOutput {
    let mut cache = model.new_cache(ids.len() + 8).unwrap();
    model
        .forward_with(
            &model.embed(ids).unwrap(),
            &mut cache,
            capture,
            options,
            &Silent,
        )
        .unwrap()
}

fn max_diff(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Compares captured rows `[layers, heads, rows, keys]` for query positions `first..` with the
/// reference's probabilities.
fn rows_error(rows: &ndarray::Array4<f32>, reference: &NaiveRun, first: usize) -> f64 {
    let mut worst = 0f64;
    for ((l, h, q, k), &got) in rows.indexed_iter() {
        let want = reference.probs[l][h][first + q][k];
        worst = worst.max((got as f64 - want).abs());
    }
    worst
}

#[test]
fn logits_rows_and_accumulated_attention_match_the_naive_reference() {
    for (name, config) in [
        ("llama", tiny_config()),
        ("llama3 scaling", tiny_llama3_config()),
        ("qwen2", tiny_qwen2_config()),
    ] {
        let model = tiny_model(config, 7);
        let naive = Naive::from(&model);
        let tokens = ids(23, model.config.vocab_size, 1);
        let reference = naive.run_causal(&naive.embed(&tokens));
        for kernel in KERNELS {
            let capture = Capture::rows(0, 23).with_accumulation();
            let out = prefill(&model, &tokens, &capture, &options(kernel, Some(5)));
            let logits = logits_error(&out.last_logits, &reference.logits[22]);
            assert!(
                logits < 1e-5,
                "{name} {kernel:?}: logits differ by {logits}"
            );
            let rows = out.rows.unwrap();
            assert_eq!(rows.dim(), (2, model.config.num_heads, 23, 23));
            let err = rows_error(&rows, &reference, 0);
            assert!(err < 1e-5, "{name} {kernel:?}: rows differ by {err}");
            let sums = out.accumulated.unwrap();
            for ((l, h, k), &got) in sums.indexed_iter() {
                let want: f64 = (0..23).map(|q| reference.probs[l][h][q][k]).sum();
                assert!(
                    (got as f64 - want).abs() < 1e-5,
                    "{name} {kernel:?}: column sum {l},{h},{k}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn captured_rows_are_causal_and_full_rows_sum_to_one() {
    let model = tiny_model(tiny_config(), 3);
    let prompt = ids(17, 64, 2);
    for kernel in KERNELS {
        let mut cache = model.new_cache(32).unwrap();
        let options = options(kernel, Some(4));
        let out = model
            .forward_with(
                &model.embed(&prompt).unwrap(),
                &mut cache,
                &Capture::rows(0, 17),
                &options,
                &Silent,
            )
            .unwrap();
        let rows = out.rows.unwrap();
        for ((_, _, q, k), &p) in rows.indexed_iter() {
            if k > q {
                assert_eq!(p, 0.0, "{kernel:?}: query {q} attends to later key {k}");
            }
        }
        for row in rows.rows() {
            assert!(
                (row.sum() - 1.0).abs() < 1e-5,
                "{kernel:?}: prompt row sums to {}",
                row.sum()
            );
        }

        // Five appended rows (not token embeddings) over every key, then over the prompt only.
        let soft = (Tensor::arange(0f32, 160.0, &Device::Cpu)
            .unwrap()
            .reshape((5, 32))
            .unwrap()
            * 0.37)
            .unwrap()
            .sin()
            .unwrap();
        let full = model
            .forward_with(&soft, &mut cache, &Capture::rows(0, 22), &options, &Silent)
            .unwrap();
        cache.truncate(17).unwrap();
        let restricted = model
            .forward_with(&soft, &mut cache, &Capture::rows(0, 17), &options, &Silent)
            .unwrap();
        let (full, restricted) = (full.rows.unwrap(), restricted.rows.unwrap());
        assert_eq!(full.dim(), (2, 4, 5, 22));
        for ((l, h, i, k), &p) in full.indexed_iter() {
            if k > 17 + i {
                assert_eq!(p, 0.0);
            }
            if k < 17 {
                assert!((restricted[[l, h, i, k]] - p).abs() < 1e-6);
            }
        }
        for (row, kept) in full.rows().into_iter().zip(restricted.rows()) {
            assert!(
                (row.sum() - 1.0).abs() < 1e-5,
                "{kernel:?}: appended row sums to {}",
                row.sum()
            );
            assert!(kept.sum() < 1.0 + 1e-5);
        }
        assert_eq!(cache.len(), 22);
    }
}

#[test]
fn soft_embeddings_equal_to_tokens_give_the_rows_of_a_continuation() {
    let model = tiny_model(tiny_config(), 11);
    let prompt = ids(15, 64, 3);
    let continuation = ids(6, 64, 9);
    let whole: Vec<u32> = prompt.iter().chain(&continuation).copied().collect();
    for kernel in KERNELS {
        let options = options(kernel, None);
        let together = prefill(&model, &whole, &Capture::rows(15, 15), &options);

        let mut cache = model.new_cache(40).unwrap();
        let prompt_out = model
            .forward_with(
                &model.embed(&prompt).unwrap(),
                &mut cache,
                &Capture::NONE,
                &options,
                &Silent,
            )
            .unwrap();
        let soft = model.embed(&continuation).unwrap();
        let appended = model
            .forward_with(&soft, &mut cache, &Capture::rows(0, 15), &options, &Silent)
            .unwrap();

        let diff = max_diff(
            &together.rows.unwrap().into_dyn(),
            &appended.rows.unwrap().into_dyn(),
        );
        assert!(diff < 1e-6, "{kernel:?}: rows differ by {diff}");
        let logits = (together.last_logits - &appended.last_logits)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(logits.to_scalar::<f32>().unwrap() < 1e-5);

        // Judge Q's flow: drop the soft tokens, continue from the prompt as if they never were.
        cache.truncate(15).unwrap();
        let next = model.embed(&[5]).unwrap();
        let after = model
            .forward_with(&next, &mut cache, &Capture::NONE, &options, &Silent)
            .unwrap();
        let plain = prefill(
            &model,
            &[prompt.clone(), vec![5]].concat(),
            &Capture::NONE,
            &options,
        );
        let diff = (after.last_logits - plain.last_logits)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        assert_ne!(
            prompt_out.last_logits.to_vec1::<f32>().unwrap(),
            appended.last_logits.to_vec1::<f32>().unwrap()
        );
    }
}

#[test]
fn chunked_prefill_equals_a_single_chunk() {
    let model = tiny_model(tiny_config(), 5);
    let tokens = ids(29, 64, 4);
    let capture = Capture::rows(10, 29).with_accumulation();
    for kernel in KERNELS {
        let single = prefill(&model, &tokens, &capture, &options(kernel, Some(29)));
        for chunk in [1, 3, 7, 16] {
            let chunked = prefill(&model, &tokens, &capture, &options(kernel, Some(chunk)));
            let rows = max_diff(
                &single.rows.clone().unwrap().into_dyn(),
                &chunked.rows.unwrap().into_dyn(),
            );
            let sums = max_diff(
                &single.accumulated.clone().unwrap().into_dyn(),
                &chunked.accumulated.unwrap().into_dyn(),
            );
            let logits = (&single.last_logits - chunked.last_logits)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert!(
                rows < 1e-6 && sums < 1e-5,
                "{kernel:?} chunk {chunk}: rows {rows}, sums {sums}"
            );
            assert!(logits.to_scalar::<f32>().unwrap() < 1e-5);
        }
    }
}

#[test]
fn kernels_agree() {
    let model = tiny_model(tiny_qwen2_config(), 8);
    let tokens = ids(40, 64, 6);
    let capture = Capture::rows(30, 35).with_accumulation();
    let fused = prefill(
        &model,
        &tokens,
        &capture,
        &options(AttentionKernel::Fused, None),
    );
    let portable = prefill(
        &model,
        &tokens,
        &capture,
        &options(AttentionKernel::Portable, None),
    );
    assert!(
        max_diff(
            &fused.rows.unwrap().into_dyn(),
            &portable.rows.unwrap().into_dyn()
        ) < 1e-6
    );
    assert!(
        max_diff(
            &fused.accumulated.unwrap().into_dyn(),
            &portable.accumulated.unwrap().into_dyn()
        ) < 1e-5
    );
}

#[test]
fn prefill_split_over_two_calls_equals_one_call() {
    let model = tiny_model(tiny_llama3_config(), 9);
    let tokens = ids(26, 64, 5);
    for kernel in KERNELS {
        let options = options(kernel, Some(4));
        let one = prefill(&model, &tokens, &Capture::rows(10, 26), &options);
        let mut cache = model.new_cache(26).unwrap();
        let first = model
            .forward_with(
                &model.embed(&tokens[..10]).unwrap(),
                &mut cache,
                &Capture::NONE,
                &options,
                &Silent,
            )
            .unwrap();
        assert!(first.rows.is_none() && first.accumulated.is_none());
        let second = model
            .forward_with(
                &model.embed(&tokens[10..]).unwrap(),
                &mut cache,
                &Capture::rows(0, 26),
                &options,
                &Silent,
            )
            .unwrap();
        let diff = max_diff(
            &one.rows.unwrap().into_dyn(),
            &second.rows.unwrap().into_dyn(),
        );
        assert!(diff < 1e-6, "{kernel:?}: {diff}");
        let logits = (one.last_logits - second.last_logits)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(logits.to_scalar::<f32>().unwrap() < 1e-5);
        assert_eq!(cache.len(), 26);
    }
}

#[test]
fn accumulation_alone_returns_no_rows() {
    let model = tiny_model(tiny_config(), 12);
    let naive = Naive::from(&model);
    let tokens = ids(19, 64, 8);
    let reference = naive.run_causal(&naive.embed(&tokens));
    let capture = Capture {
        rows_from: 19,
        key_limit: 12,
        accumulate: true,
        query_statistics: false,
    };
    let out = prefill(
        &model,
        &tokens,
        &capture,
        &options(AttentionKernel::Auto, Some(6)),
    );
    assert!(out.rows.is_none());
    let sums = out.accumulated.unwrap();
    assert_eq!(sums.dim(), (2, 4, 12));
    for ((l, h, k), &got) in sums.indexed_iter() {
        let want: f64 = (0..19).map(|q| reference.probs[l][h][q][k]).sum();
        assert!((got as f64 - want).abs() < 1e-5);
    }
}

/// Cancels once `after` progress updates have arrived; counts updates.
struct CancelAfter {
    after: usize,
    updates: AtomicUsize,
}

impl Progress for CancelAfter {
    fn update(&self, stage: &Stage, _done: usize, _total: usize) {
        assert_eq!(stage, &Stage::SoftTokens);
        self.updates.fetch_add(1, Ordering::SeqCst);
    }
    fn is_cancelled(&self) -> bool {
        self.updates.load(Ordering::SeqCst) >= self.after
    }
}

#[test]
fn cancellation_stops_at_the_next_layer_and_leaves_the_cache_unchanged() {
    let model = tiny_model(tiny_config(), 4);
    let input = model.embed(&ids(50, 64, 1)).unwrap();
    for kernel in KERNELS {
        for after in [0, 1] {
            let progress = CancelAfter {
                after,
                updates: AtomicUsize::new(0),
            };
            let mut cache = model.new_cache(64).unwrap();
            let options = ForwardOptions {
                stage: Stage::SoftTokens,
                ..options(kernel, Some(8))
            };
            let result = model.forward_with(
                &input,
                &mut cache,
                &Capture::rows(40, 50),
                &options,
                &progress,
            );
            assert!(
                matches!(result, Err(ModelError::Cancelled)),
                "{kernel:?}: {result:?}"
            );
            assert_eq!(
                progress.updates.load(Ordering::SeqCst),
                after,
                "work went on after cancellation"
            );
            assert_eq!(cache.len(), 0);
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let model = tiny_model(tiny_config(), 2);
    let mut cache = model.new_cache(10).unwrap();
    let invalid =
        |r: Result<ForwardOutput, ModelError>| matches!(r, Err(ModelError::InvalidArgument(_)));

    let wrong_width = Tensor::zeros((3, 31), DType::F32, &Device::Cpu).unwrap();
    assert!(invalid(model.forward(
        &wrong_width,
        &mut cache,
        &Capture::NONE,
        &Silent
    )));
    let empty = Tensor::zeros((0, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(invalid(model.forward(
        &empty,
        &mut cache,
        &Capture::NONE,
        &Silent
    )));
    let too_long = model.embed(&ids(11, 64, 0)).unwrap();
    assert!(invalid(model.forward(
        &too_long,
        &mut cache,
        &Capture::NONE,
        &Silent
    )));
    let four = model.embed(&ids(4, 64, 0)).unwrap();
    assert!(invalid(model.forward(
        &four,
        &mut cache,
        &Capture::rows(0, 5),
        &Silent
    )));
    assert!(matches!(
        model.embed(&[64]),
        Err(ModelError::InvalidArgument(_))
    ));
    assert!(matches!(
        cache.truncate(1),
        Err(ModelError::InvalidArgument(_))
    ));
    assert!(matches!(
        model.new_cache(257),
        Err(ModelError::InvalidArgument(_))
    ));

    let other = tiny_model(
        ModelConfig {
            num_layers: 3,
            ..tiny_config()
        },
        2,
    );
    let mut foreign = other.new_cache(10).unwrap();
    assert!(invalid(model.forward(
        &four,
        &mut foreign,
        &Capture::NONE,
        &Silent
    )));

    let wide = Transformer::random(tiny_config(), 2, Device::Cpu, DType::F64).unwrap();
    let mut wide_cache = wide.new_cache(10).unwrap();
    let fused = options(AttentionKernel::Fused, None);
    let input = wide.embed(&[1, 2]).unwrap();
    assert!(invalid(wide.forward_with(
        &input,
        &mut wide_cache,
        &Capture::NONE,
        &fused,
        &Silent
    )));

    assert_eq!(cache.len(), 0);
    model
        .forward(&four, &mut cache, &Capture::rows(0, 4), &Silent)
        .unwrap();
    assert_eq!(cache.len(), 4);
}

#[test]
fn half_precision_runs_the_portable_path_with_f32_probabilities() {
    // bf16 against f32 is measured in tests/dtype_agreement.rs.
    let model = Transformer::random(tiny_config(), 13, Device::Cpu, DType::F16).unwrap();
    let naive = Naive::from(&model);
    let tokens = ids(21, 64, 2);
    let reference = naive.run_causal(&naive.embed(&tokens));
    let capture = Capture::rows(0, 21).with_accumulation();
    let out = prefill(
        &model,
        &tokens,
        &capture,
        &options(AttentionKernel::Auto, Some(6)),
    );
    assert_eq!(out.last_logits.dtype(), DType::F32);
    let err = rows_error(&out.rows.unwrap(), &reference, 0);
    assert!(err < 1e-2, "f16 rows differ by {err}");
    assert!(logits_error(&out.last_logits, &reference.logits[20]) < 0.1);
}

#[test]
fn a_capture_too_large_to_allocate_is_an_error_not_an_abort() {
    // 64 layers x 64 heads x 2^15 rows x 2^15 keys x 4 bytes = 16 TiB.
    let config = ModelConfig {
        num_layers: 64,
        num_heads: 64,
        num_kv_heads: 64,
        hidden_size: 8,
        head_dim: 2,
        max_position_embeddings: 1 << 16,
        ..tiny_config()
    };
    let model = Transformer::random(config, 1, Device::Cpu, DType::F32).unwrap();
    let mut cache = model.new_cache(1 << 15).unwrap();
    let input = Tensor::zeros((1 << 15, 8), DType::F32, &Device::Cpu).unwrap();
    let result = model.forward(&input, &mut cache, &Capture::rows(0, 1 << 15), &Silent);
    match result {
        Err(ModelError::InvalidArgument(message)) => assert!(message.contains("GB"), "{message}"),
        other => panic!("expected a clear error, got {other:?}"),
    }
}

//! Decoding many keep masks as one batch over a shared prefilled cache, against one-mask
//! decoding (`Transformer::generate`, `PrefilledPrompt::decode_under`) for the token ids and
//! against the naive reference, with evicted entries physically removed, for every logit.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::sync::Mutex;

use candle_core::Tensor;
use common::naive::{Naive, ids, tiny_config, tiny_model, tiny_qwen2_config};
use common::tiny_checkpoint::{TinySpec, tiny_tokenizer, write_hf};
use judgeq::attention::KeepMask;
use judgeq::inspect::PrefilledPrompt;
use judgeq::model::{
    AttentionKernel, BatchOptions, Capture, GenerateOptions, KvCache, LoadOptions,
    MaskedGeneration, Model, ModelError, Transformer,
};
use judgeq::progress::{Progress, Silent, Stage};

const PROMPT: usize = 14;
const TOKENS: usize = 8;

/// Prefills `prompt` into a cache with room for `room` more tokens; returns the cache and the
/// last-row logits.
fn prefill(model: &Transformer, prompt: &[u32], room: usize) -> (KvCache, Tensor) {
    let mut cache = model.new_cache(prompt.len() + room).unwrap();
    let out = model
        .forward(
            &model.embed(prompt).unwrap(),
            &mut cache,
            &Capture::NONE,
            &Silent,
        )
        .unwrap();
    (cache, out.last_logits)
}

/// A seeded mask over `keys` prompt keys keeping about one entry in `one_in`.
fn random_mask(shape: (usize, usize, usize), one_in: u64, seed: u64) -> KeepMask {
    let mut state = seed;
    KeepMask::from_shape_fn(shape, |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33).is_multiple_of(one_in)
    })
}

/// Masks of every kind for a model: all kept, about half kept per query head and per KV head,
/// very few kept, nothing kept, and a mask over only the first keys with one head keeping none.
fn masks_for(model: &Transformer) -> Vec<KeepMask> {
    let c = &model.config;
    let (layers, heads, kv_heads) = (c.num_layers, c.num_heads, c.num_kv_heads);
    let mut partial = random_mask((layers, heads, 9), 2, 7);
    partial.slice_mut(ndarray::s![0, 1, ..]).fill(false);
    let mut first_only = KeepMask::from_elem((layers, kv_heads, PROMPT), false);
    first_only.slice_mut(ndarray::s![.., .., 0]).fill(true);
    vec![
        KeepMask::from_elem((layers, heads, PROMPT), true),
        random_mask((layers, heads, PROMPT), 2, 1),
        random_mask((layers, kv_heads, PROMPT), 2, 2),
        random_mask((layers, heads, PROMPT), 7, 3),
        first_only,
        KeepMask::from_elem((layers, heads, PROMPT), false),
        partial,
        random_mask((layers, kv_heads, PROMPT), 5, 4),
    ]
}

/// Whether query head `head` of `layer` may attend to prompt key `key` under `mask`.
fn kept(model: &Transformer, mask: &KeepMask, layer: usize, head: usize, key: usize) -> bool {
    let (_, mask_heads, columns) = mask.dim();
    let mask_head = if mask_heads == model.config.num_heads {
        head
    } else {
        head / model.config.group_size()
    };
    key >= columns || mask[[layer, mask_head, key]]
}

/// The one-mask decode of `generate`, on the shared cache (truncated back afterwards).
fn one_mask(
    model: &Transformer,
    cache: &mut KvCache,
    first: &Tensor,
    mask: &KeepMask,
    stop_ids: &[u32],
) -> (Vec<u32>, bool) {
    let options = GenerateOptions {
        max_tokens: TOKENS,
        stop_ids: stop_ids.to_vec(),
        keep: Some(mask.clone()),
        ..GenerateOptions::default()
    };
    let generation = model.generate(cache, first, &options, &Silent).unwrap();
    cache.truncate(PROMPT).unwrap();
    (generation.ids, generation.stopped)
}

fn batch(
    model: &Transformer,
    cache: &KvCache,
    first: &Tensor,
    masks: &[KeepMask],
    options: &BatchOptions,
) -> Vec<MaskedGeneration> {
    let refs: Vec<&KeepMask> = masks.iter().collect();
    model
        .generate_batch(cache, first, &refs, options, &Silent)
        .unwrap()
}

/// Checks every recorded logit of `got` against the naive model fed the same tokens, with the
/// evicted prompt entries physically removed for the generated queries.
fn check_logits(model: &Transformer, prompt: &[u32], mask: &KeepMask, got: &MaskedGeneration) {
    let naive = Naive::from(model);
    let p = prompt.len();
    let allowed =
        |l: usize, h: usize, q: usize, k: usize| q < p || k >= p || kept(model, mask, l, h, k);
    let tokens: Vec<u32> = prompt.iter().chain(&got.ids).copied().collect();
    let run = naive.run(&naive.embed(&tokens), &allowed);
    let logits = got.logits.as_ref().unwrap();
    let expected = got.ids.len() + usize::from(got.stopped);
    assert_eq!(logits.len(), expected);
    for (step, row) in logits.iter().enumerate() {
        let want = &run.logits[p - 1 + step];
        assert_eq!(row.len(), want.len());
        for (token, (g, w)) in row.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() < 1e-4,
                "step {step}, token {token}: {g} vs {w}"
            );
        }
    }
}

fn check_batch_against_one_mask_decodes(
    model: &Transformer,
    masks: &[KeepMask],
    kernel: AttentionKernel,
) {
    let prompt = ids(PROMPT, model.config.vocab_size, 3);
    let (mut cache, first) = prefill(model, &prompt, TOKENS);
    let options = BatchOptions {
        max_tokens: TOKENS,
        kernel,
        record_logits: true,
        ..BatchOptions::default()
    };
    let batched = batch(model, &cache, &first, masks, &options);
    assert_eq!(batched.len(), masks.len());
    for (mask, got) in masks.iter().zip(&batched) {
        let (want_ids, want_stopped) = one_mask(model, &mut cache, &first, mask, &[]);
        assert_eq!(got.ids, want_ids);
        assert_eq!(got.stopped, want_stopped);
        check_logits(model, &prompt, mask, got);
    }
    // The masks lead to different answers, so rows cannot have leaked into each other unseen.
    let mut answers: Vec<&Vec<u32>> = batched.iter().map(|g| &g.ids).collect();
    answers.sort();
    answers.dedup();
    assert!(
        answers.len() >= 3,
        "only {} distinct answers",
        answers.len()
    );
    assert_eq!(cache.len(), PROMPT);
}

/// The tiny GQA llama and the tiny Qwen2, with seeds whose answers differ between the masks.
fn models() -> [Transformer; 2] {
    [
        tiny_model(tiny_config(), 41),
        tiny_model(tiny_qwen2_config(), 42),
    ]
}

#[test]
fn batched_answers_equal_one_mask_decodes_with_the_fused_kernel() {
    for model in models() {
        check_batch_against_one_mask_decodes(&model, &masks_for(&model), AttentionKernel::Fused);
    }
}

#[test]
fn batched_answers_equal_one_mask_decodes_with_the_portable_kernel() {
    for model in models() {
        let masks = masks_for(&model);
        check_batch_against_one_mask_decodes(&model, &masks, AttentionKernel::Portable);
    }
}

/// More rows than the projections take as dot products (16): candle's matmul runs them.
#[test]
fn a_batch_of_twenty_four_rows_equals_one_mask_decodes() {
    let model = tiny_model(tiny_qwen2_config(), 42);
    let c = &model.config;
    let mut masks = masks_for(&model);
    masks.extend((0..16).map(|seed| {
        let heads = if seed % 2 == 0 {
            c.num_heads
        } else {
            c.num_kv_heads
        };
        random_mask((c.num_layers, heads, PROMPT), 2 + seed % 4, 100 + seed)
    }));
    for kernel in [AttentionKernel::Fused, AttentionKernel::Portable] {
        check_batch_against_one_mask_decodes(&model, &masks, kernel);
    }
}

/// Every token the rows produce except those of the row with the fewest distinct tokens: that
/// row never stops, the others stop at their first token it lacks.
fn stop_tokens(rows: &[MaskedGeneration]) -> Vec<u32> {
    let distinct = |ids: &[u32]| {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        ids
    };
    let survivor = rows
        .iter()
        .map(|r| distinct(&r.ids))
        .min_by_key(Vec::len)
        .unwrap_or_default();
    let all: Vec<u32> = rows.iter().flat_map(|r| r.ids.iter().copied()).collect();
    distinct(&all)
        .into_iter()
        .filter(|t| !survivor.contains(t))
        .collect()
}

#[test]
fn rows_that_stop_early_leave_the_others_unchanged() {
    for (model, kernel) in models().into_iter().flat_map(|m| {
        [
            (m.clone(), AttentionKernel::Fused),
            (m, AttentionKernel::Portable),
        ]
    }) {
        let prompt = ids(PROMPT, model.config.vocab_size, 3);
        let (mut cache, first) = prefill(&model, &prompt, TOKENS);
        let masks = masks_for(&model);
        let options = BatchOptions {
            max_tokens: TOKENS,
            kernel,
            record_logits: true,
            ..BatchOptions::default()
        };
        let free = batch(&model, &cache, &first, &masks, &options);
        let stops = stop_tokens(&free);
        let stopping = BatchOptions {
            stop_ids: stops.clone(),
            ..options.clone()
        };
        let stopped = batch(&model, &cache, &first, &masks, &stopping);
        for ((mask, free), got) in masks.iter().zip(&free).zip(&stopped) {
            match free.ids.iter().position(|t| stops.contains(t)) {
                Some(at) => {
                    assert_eq!(got.ids, free.ids[..at]);
                    assert!(got.stopped);
                }
                None => {
                    assert_eq!(got.ids, free.ids);
                    assert!(!got.stopped);
                }
            }
            let (want_ids, want_stopped) = one_mask(&model, &mut cache, &first, mask, &stops);
            assert_eq!((&got.ids, got.stopped), (&want_ids, want_stopped));
            // The logits up to where the row ended are those of the batch nobody left.
            let (got_logits, free_logits) = (got.logits.as_ref(), free.logits.as_ref());
            for (g, f) in got_logits.unwrap().iter().zip(free_logits.unwrap()) {
                let diff = g
                    .iter()
                    .zip(f)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(diff < 1e-5, "{diff}");
            }
            check_logits(&model, &prompt, mask, got);
        }
        let mut stop_steps: Vec<usize> = stopped
            .iter()
            .filter(|g| g.stopped)
            .map(|g| g.ids.len())
            .collect();
        stop_steps.sort();
        stop_steps.dedup();
        assert!(stop_steps.len() >= 2, "rows stop at steps {stop_steps:?}");
        assert!(stopped.iter().any(|g| !g.stopped));
    }
}

#[test]
fn one_row_equals_generate_and_no_rows_decode_nothing() {
    let model = tiny_model(tiny_config(), 47);
    let prompt = ids(PROMPT, 64, 6);
    let (mut cache, first) = prefill(&model, &prompt, TOKENS);
    let options = BatchOptions {
        max_tokens: TOKENS,
        ..BatchOptions::default()
    };
    for mask in masks_for(&model) {
        let got = batch(
            &model,
            &cache,
            &first,
            std::slice::from_ref(&mask),
            &options,
        );
        let (want_ids, want_stopped) = one_mask(&model, &mut cache, &first, &mask, &[]);
        assert_eq!(got.len(), 1);
        assert_eq!((&got[0].ids, got[0].stopped), (&want_ids, want_stopped));
        assert!(got[0].logits.is_none());
    }
    assert!(batch(&model, &cache, &first, &[], &options).is_empty());
    let none = BatchOptions {
        max_tokens: 0,
        ..options
    };
    let empty = batch(&model, &cache, &first, &masks_for(&model), &none);
    assert!(empty.iter().all(|g| g.ids.is_empty() && !g.stopped));
}

/// Records every update and cancels once `cancel_at` have arrived.
struct Recorder {
    updates: Mutex<Vec<(Stage, usize, usize)>>,
    cancel_at: usize,
}

impl Progress for Recorder {
    fn update(&self, stage: &Stage, done: usize, total: usize) {
        if let Ok(mut updates) = self.updates.lock() {
            updates.push((stage.clone(), done, total));
        }
    }
    fn is_cancelled(&self) -> bool {
        self.updates
            .lock()
            .map_or(true, |u| u.len() >= self.cancel_at)
    }
}

#[test]
fn progress_counts_tokens_of_the_batch_and_cancellation_stops_it() {
    let model = tiny_model(tiny_config(), 48);
    let prompt = ids(PROMPT, 64, 4);
    let (cache, first) = prefill(&model, &prompt, TOKENS);
    let masks = masks_for(&model);
    let refs: Vec<&KeepMask> = masks.iter().collect();
    let stage = Stage::DecodingUnderEviction("8 masks".into());
    let options = BatchOptions {
        max_tokens: TOKENS,
        stage: stage.clone(),
        ..BatchOptions::default()
    };
    let recorder = Recorder {
        updates: Mutex::new(Vec::new()),
        cancel_at: usize::MAX,
    };
    let done = model
        .generate_batch(&cache, &first, &refs, &options, &recorder)
        .unwrap();
    assert!(done.iter().all(|g| g.ids.len() == TOKENS));
    let want: Vec<_> = (1..=TOKENS).map(|t| (stage.clone(), t, TOKENS)).collect();
    assert_eq!(*recorder.updates.lock().unwrap(), want);

    let cancelling = Recorder {
        updates: Mutex::new(Vec::new()),
        cancel_at: 3,
    };
    let result = model.generate_batch(&cache, &first, &refs, &options, &cancelling);
    assert!(matches!(result, Err(ModelError::Cancelled)));
    assert_eq!(cancelling.updates.lock().unwrap().len(), 3);
}

#[test]
fn bad_batches_are_clear_errors() {
    let model = tiny_model(tiny_config(), 49);
    let prompt = ids(PROMPT, 64, 4);
    let (cache, first) = prefill(&model, &prompt, TOKENS);
    let good = KeepMask::from_elem((2, 4, PROMPT), true);
    let options = BatchOptions {
        max_tokens: 2,
        ..BatchOptions::default()
    };
    let message = |masks: &[&KeepMask], first: &Tensor, options: &BatchOptions| match model
        .generate_batch(&cache, first, masks, options, &Silent)
    {
        Err(ModelError::InvalidArgument(message)) => message,
        other => panic!("expected an invalid-argument error, got {other:?}"),
    };
    let wrong_heads = KeepMask::from_elem((2, 3, PROMPT), true);
    assert!(message(&[&good, &wrong_heads], &first, &options).contains("keep mask 1"));
    let too_long = KeepMask::from_elem((2, 4, PROMPT + 1), true);
    assert!(message(&[&too_long], &first, &options).contains("keep mask 0"));
    let short_logits = first.narrow(0, 0, 10).unwrap();
    assert!(message(&[&good], &short_logits, &options).contains("first logits"));
    let beyond_context = BatchOptions {
        max_tokens: 256,
        ..options.clone()
    };
    assert!(message(&[&good], &first, &beyond_context).contains("context"));
    let f64_model = Transformer::random(
        tiny_config(),
        49,
        candle_core::Device::Cpu,
        candle_core::DType::F64,
    )
    .unwrap();
    let fused = BatchOptions {
        kernel: AttentionKernel::Fused,
        ..options
    };
    let (f64_cache, f64_first) = prefill(&f64_model, &prompt, 2);
    assert!(matches!(
        f64_model.generate_batch(&f64_cache, &f64_first, &[&good], &fused, &Silent),
        Err(ModelError::InvalidArgument(_))
    ));
    let empty = model.new_cache(4).unwrap();
    assert!(matches!(
        model.generate_batch(&empty, &first, &[&good], &BatchOptions::default(), &Silent),
        Err(ModelError::InvalidArgument(_))
    ));
}

#[test]
fn decode_batch_returns_the_answers_of_decode_under() {
    let ck = write_hf(&TinySpec {
        max_positions: 256,
        seed: 52,
        vocab: tiny_tokenizer().get_vocab_size(true),
        ..TinySpec::llama()
    });
    let model = Model::load(&ck.path, &LoadOptions::default(), &Silent).unwrap();
    let prompt = model
        .prompt(
            "the cat is on the mat and the hen is in the hut",
            "where is the cat?",
        )
        .unwrap();
    let mut prefilled = PrefilledPrompt::prefill(&model, &prompt.ids, TOKENS, &Silent).unwrap();
    let c = &model.transformer.config;
    let n = prompt.ids.len();
    let masks: Vec<(String, KeepMask)> = [
        KeepMask::from_elem((c.num_layers, c.num_heads, n), true),
        random_mask((c.num_layers, c.num_heads, n), 2, 11),
        random_mask((c.num_layers, c.num_kv_heads, n), 3, 12),
        random_mask((c.num_layers, c.num_heads, n), 9, 13),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, mask)| (format!("mask {i}"), mask))
    .collect();
    let want: Vec<_> = masks
        .iter()
        .map(|(label, mask)| {
            prefilled
                .decode_under(&model, mask, TOKENS, label, &Silent)
                .unwrap()
        })
        .collect();
    let got = prefilled
        .decode_batch(&model, &masks, TOKENS, &Silent)
        .unwrap();
    assert_eq!(got, want);
    let one = prefilled
        .decode_batch(&model, &masks[1..2], TOKENS, &Silent)
        .unwrap();
    assert_eq!(one, want[1..2]);
    assert!(
        prefilled
            .decode_batch(&model, &[], TOKENS, &Silent)
            .unwrap()
            .is_empty()
    );
    // Beyond the room the prompt's cache was made with, as for one decode.
    assert!(matches!(
        prefilled.decode_batch(&model, &masks, TOKENS + 1, &Silent),
        Err(ModelError::InvalidArgument(_))
    ));
}

//! Decoding with the full cache and under keep masks, against the naive reference with evicted
//! entries physically removed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::naive::{Naive, argmax, ids, tiny_config, tiny_model, tiny_qwen2_config};
use judgeq::attention::KeepMask;
use judgeq::model::{Capture, GenerateOptions, Generation, ModelError, Sampling, Transformer};
use judgeq::progress::{Progress, Silent, Stage};

const PROMPT: usize = 14;

/// One generated token's rows, `[layer][head][key]`.
type RowsPerToken = Vec<Vec<Vec<f64>>>;

/// Prefills `prompt` and decodes with `options`.
fn decode(model: &Transformer, prompt: &[u32], options: &GenerateOptions) -> Generation {
    let mut cache = model.new_cache(prompt.len() + options.max_tokens).unwrap();
    let out = model
        .forward(
            &model.embed(prompt).unwrap(),
            &mut cache,
            &Capture::NONE,
            &Silent,
        )
        .unwrap();
    model
        .generate(&mut cache, &out.last_logits, options, &Silent)
        .unwrap()
}

/// Greedy decoding by the reference: prompt queries see every earlier key; a generated query
/// `q` of head `h` in layer `l` sees prompt key `k` only where `kept(l, h, k)`, and every
/// generated key. Returns the ids and, per generated token, `[layer][head][key]` rows over the
/// prompt keys.
fn naive_decode(
    naive: &Naive,
    prompt: &[u32],
    steps: usize,
    kept: &dyn Fn(usize, usize, usize) -> bool,
) -> (Vec<u32>, Vec<RowsPerToken>) {
    let p = prompt.len();
    let allowed = |l: usize, h: usize, q: usize, k: usize| q < p || k >= p || kept(l, h, k);
    let mut tokens = prompt.to_vec();
    let mut rows = Vec::new();
    for step in 0..steps {
        let run = naive.run(&naive.embed(&tokens), &allowed);
        if step > 0 {
            let q = tokens.len() - 1;
            rows.push(
                run.probs
                    .iter()
                    .map(|layer| layer.iter().map(|head| head[q][..p].to_vec()).collect())
                    .collect(),
            );
        }
        tokens.push(argmax(&run.logits[tokens.len() - 1]) as u32);
    }
    let run = naive.run(&naive.embed(&tokens), &allowed);
    let q = tokens.len() - 1;
    rows.push(
        run.probs
            .iter()
            .map(|layer| layer.iter().map(|head| head[q][..p].to_vec()).collect())
            .collect(),
    );
    (tokens[p..].to_vec(), rows)
}

/// A seeded mask over the prompt keys with about half the entries kept.
fn random_mask(layers: usize, heads: usize, keys: usize, seed: u64) -> KeepMask {
    let mut state = seed;
    KeepMask::from_shape_fn((layers, heads, keys), |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33).is_multiple_of(2)
    })
}

fn check_against_reference(model: &Transformer, keep: Option<KeepMask>, steps: usize) {
    let naive = Naive::from(model);
    let prompt = ids(PROMPT, model.config.vocab_size, 2);
    let group = model.config.group_size();
    let kept = |l: usize, h: usize, k: usize| match &keep {
        None => true,
        Some(mask) if mask.dim().1 == model.config.num_heads => mask[[l, h, k]],
        Some(mask) => mask[[l, h / group, k]],
    };
    let (want_ids, want_rows) = naive_decode(&naive, &prompt, steps, &kept);
    let options = GenerateOptions {
        max_tokens: steps,
        keep: keep.clone(),
        capture_keys: Some(PROMPT),
        ..Default::default()
    };
    let got = decode(model, &prompt, &options);
    assert_eq!(got.ids, want_ids);
    assert!(!got.stopped);
    let rows = got.rows.unwrap();
    assert_eq!(
        rows.dim(),
        (
            model.config.num_layers,
            model.config.num_heads,
            steps,
            PROMPT
        )
    );
    for ((l, h, i, k), &p) in rows.indexed_iter() {
        let want = want_rows[i][l][h][k];
        assert!(
            (p as f64 - want).abs() < 1e-5,
            "row {l},{h},{i},{k}: {p} vs {want}"
        );
        if !kept(l, h, k) {
            assert_eq!(p, 0.0, "evicted entry {l},{h},{k} was attended");
        }
    }
}

#[test]
fn full_cache_decoding_matches_the_reference() {
    check_against_reference(&tiny_model(tiny_config(), 21), None, 6);
    check_against_reference(&tiny_model(tiny_qwen2_config(), 22), None, 5);
}

#[test]
fn decoding_under_a_query_head_mask_equals_physically_removed_entries() {
    let model = tiny_model(tiny_config(), 23);
    check_against_reference(&model, Some(random_mask(2, 4, PROMPT, 1)), 6);
    let qwen = tiny_model(tiny_qwen2_config(), 24);
    check_against_reference(&qwen, Some(random_mask(2, 6, PROMPT, 2)), 5);
}

#[test]
fn decoding_under_a_kv_head_mask_equals_physically_removed_entries() {
    let model = tiny_model(tiny_config(), 25);
    check_against_reference(&model, Some(random_mask(2, 2, PROMPT, 3)), 6);
    let qwen = tiny_model(tiny_qwen2_config(), 26);
    check_against_reference(&qwen, Some(random_mask(2, 2, PROMPT, 4)), 5);
}

#[test]
fn a_mask_covering_only_the_first_keys_and_a_head_with_nothing_kept() {
    let model = tiny_model(tiny_config(), 27);
    // Mask over the first 9 of 14 prompt keys; head 1 of layer 0 keeps none of them.
    let mut mask = random_mask(2, 4, 9, 5);
    mask.slice_mut(ndarray::s![0, 1, ..]).fill(false);
    let naive = Naive::from(&model);
    let prompt = ids(PROMPT, 64, 2);
    let kept = |l: usize, h: usize, k: usize| k >= 9 || mask[[l, h, k]];
    let (want_ids, _) = naive_decode(&naive, &prompt, 5, &kept);
    let options = GenerateOptions {
        max_tokens: 5,
        keep: Some(mask.clone()),
        capture_keys: Some(PROMPT),
        ..Default::default()
    };
    let got = decode(&model, &prompt, &options);
    assert_eq!(got.ids, want_ids);
    let rows = got.rows.unwrap();
    assert!(
        rows.slice(ndarray::s![0, 1, .., ..9])
            .iter()
            .all(|&p| p == 0.0)
    );
}

#[test]
fn an_all_keep_mask_decodes_like_the_full_cache() {
    let model = tiny_model(tiny_qwen2_config(), 28);
    let prompt = ids(PROMPT, 64, 7);
    let full = GenerateOptions {
        max_tokens: 8,
        capture_keys: Some(PROMPT),
        ..Default::default()
    };
    let reference = decode(&model, &prompt, &full);
    for heads in [6, 2] {
        let keep = KeepMask::from_elem((2, heads, PROMPT), true);
        let masked = decode(
            &model,
            &prompt,
            &GenerateOptions {
                keep: Some(keep),
                ..full.clone()
            },
        );
        assert_eq!(masked.ids, reference.ids);
        let diff = (masked.rows.unwrap() - reference.rows.as_ref().unwrap()).mapv(f32::abs);
        assert!(diff.iter().all(|&d| d < 1e-6));
    }
}

#[test]
fn stop_ids_end_the_answer_and_are_not_returned() {
    let model = tiny_model(tiny_config(), 29);
    let prompt = ids(PROMPT, 64, 1);
    let free = decode(
        &model,
        &prompt,
        &GenerateOptions {
            max_tokens: 6,
            ..Default::default()
        },
    );
    assert_eq!(free.ids.len(), 6);
    assert!(!free.stopped);
    let stop = free.ids[3];
    let first = free.ids.iter().position(|&t| t == stop).unwrap();
    let stopped = decode(
        &model,
        &prompt,
        &GenerateOptions {
            max_tokens: 6,
            stop_ids: vec![stop],
            ..Default::default()
        },
    );
    assert_eq!(stopped.ids, free.ids[..first]);
    assert!(stopped.stopped);
    let none = decode(&model, &prompt, &GenerateOptions::default());
    assert!(none.ids.is_empty() && !none.stopped);
}

#[test]
fn sampling_is_reproducible_from_its_seed() {
    let model = tiny_model(tiny_config(), 30);
    let prompt = ids(PROMPT, 64, 4);
    let sampled = |seed| {
        let sampling = Sampling::TopP {
            temperature: 1.5,
            top_p: 0.95,
            seed,
        };
        decode(
            &model,
            &prompt,
            &GenerateOptions {
                max_tokens: 12,
                sampling,
                ..Default::default()
            },
        )
        .ids
    };
    assert_eq!(sampled(1), sampled(1));
    let greedy = decode(
        &model,
        &prompt,
        &GenerateOptions {
            max_tokens: 12,
            ..Default::default()
        },
    )
    .ids;
    assert!([1, 2, 3].iter().any(|&seed| sampled(seed) != greedy));
}

struct CancelAfterTokens(AtomicUsize);

impl Progress for CancelAfterTokens {
    fn update(&self, stage: &Stage, _done: usize, _total: usize) {
        assert_eq!(stage, &Stage::DecodingUnderEviction("snapkv".into()));
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) >= 3
    }
}

#[test]
fn decoding_can_be_cancelled() {
    let model = tiny_model(tiny_config(), 31);
    let prompt = ids(PROMPT, 64, 4);
    let mut cache = model.new_cache(40).unwrap();
    let out = model
        .forward(
            &model.embed(&prompt).unwrap(),
            &mut cache,
            &Capture::NONE,
            &Silent,
        )
        .unwrap();
    let progress = CancelAfterTokens(AtomicUsize::new(0));
    let options = GenerateOptions {
        max_tokens: 20,
        keep: Some(KeepMask::from_elem((2, 2, PROMPT), true)),
        stage: Stage::DecodingUnderEviction("snapkv".into()),
        ..Default::default()
    };
    let result = model.generate(&mut cache, &out.last_logits, &options, &progress);
    assert!(matches!(result, Err(ModelError::Cancelled)));
    assert_eq!(progress.0.load(Ordering::SeqCst), 3);
}

#[test]
fn bad_decoding_requests_are_clear_errors() {
    let model = tiny_model(tiny_config(), 32);
    let prompt = ids(PROMPT, 64, 4);
    let mut cache = model.new_cache(20).unwrap();
    let out = model
        .forward(
            &model.embed(&prompt).unwrap(),
            &mut cache,
            &Capture::NONE,
            &Silent,
        )
        .unwrap();
    let logits = out.last_logits;
    let invalid = |options: GenerateOptions, cache: &mut judgeq::model::KvCache| {
        matches!(
            model.generate(cache, &logits, &options, &Silent),
            Err(ModelError::InvalidArgument(_))
        )
    };
    let mask = |l, h, k| Some(KeepMask::from_elem((l, h, k), true));
    assert!(invalid(
        GenerateOptions {
            max_tokens: 2,
            keep: mask(2, 3, PROMPT),
            ..Default::default()
        },
        &mut cache
    ));
    assert!(invalid(
        GenerateOptions {
            max_tokens: 2,
            keep: mask(1, 4, PROMPT),
            ..Default::default()
        },
        &mut cache
    ));
    assert!(invalid(
        GenerateOptions {
            max_tokens: 2,
            keep: mask(2, 4, PROMPT + 1),
            ..Default::default()
        },
        &mut cache
    ));
    assert!(invalid(
        GenerateOptions {
            max_tokens: 2,
            capture_keys: Some(PROMPT + 1),
            ..Default::default()
        },
        &mut cache
    ));
    assert!(invalid(
        GenerateOptions {
            max_tokens: 7,
            ..Default::default()
        },
        &mut cache
    ));
    let sampling = Sampling::TopP {
        temperature: 0.0,
        top_p: 0.9,
        seed: 1,
    };
    assert!(invalid(
        GenerateOptions {
            max_tokens: 2,
            sampling,
            ..Default::default()
        },
        &mut cache
    ));
    assert_eq!(cache.len(), PROMPT);
}

//! KVzip's repeat pass on tiny random models: the scores equal a naive f64 recomputation from the
//! post-RoPE queries and keys of the prompt followed by each chunk's repeat input (the softmax
//! over the sinks, the chunk's keys and the repeat keys, the maximum over the repeat queries and
//! the group's query heads), whatever the pieces the chunks run in; the panel's rows are the
//! repeat rows at their stride; the cache holds the prompt afterwards. On a tiny checkpoint
//! with a chat template, an inspection asking for it gives the session the scores and rows
//! under every question placement, over the scored prompt only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use common::naive::{Naive, ids, rows_after_prompt, tiny_config, tiny_model, tiny_qwen2_config};
use common::tiny_checkpoint::{TinySpec, tiny_tokenizer, write_hf};
use judgeq::inspect::repeat::{
    PIECE_FLOATS, RepeatChunk, RepeatTemplate, chunks, panel_stride, repeat,
};
use judgeq::inspect::{InspectRequest, inspect};
use judgeq::model::{Capture, LoadOptions, Model, Transformer};
use judgeq::progress::Silent;
use judgeq::session::{PrefillCapture, QuestionPlacement, RepeatCapture};
use ndarray::Array3;

const PROMPT: usize = 40;
const SINKS: usize = 4;

/// The naive scores `[layers, kv_heads, PROMPT]` of `chunks` after `prompt`.
fn naive_scores(model: &Transformer, prompt: &[u32], chunks: &[RepeatChunk]) -> Array3<f64> {
    let c = &model.config;
    let (d, group) = (c.head_dim, c.num_heads / c.num_kv_heads);
    let naive = Naive::from(model);
    let mut scores = Array3::<f64>::zeros((c.num_layers, c.num_kv_heads, PROMPT));
    for chunk in chunks {
        let all: Vec<u32> = prompt.iter().chain(&chunk.ids).copied().collect();
        let run = naive.run_causal(&naive.embed(&all));
        let queries = naive.post_rope_queries(&run);
        let sinks = SINKS.min(chunk.keys.start);
        for l in 0..c.num_layers {
            for h in 0..c.num_heads {
                let g = h / group;
                for (p, query) in queries[l].iter().enumerate().skip(PROMPT) {
                    let subset: Vec<usize> = (0..sinks)
                        .chain(chunk.keys.clone())
                        .chain(PROMPT..=p)
                        .collect();
                    let q = &query[h * d..(h + 1) * d];
                    let logits: Vec<f64> = subset
                        .iter()
                        .map(|&k| {
                            let key = &run.keys[l][k][g * d..(g + 1) * d];
                            q.iter().zip(key).map(|(a, b)| a * b).sum::<f64>() / (d as f64).sqrt()
                        })
                        .collect();
                    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = logits.iter().map(|x| (x - max).exp()).sum();
                    for (&k, x) in subset.iter().zip(&logits) {
                        if chunk.keys.contains(&k) {
                            let weight = (x - max).exp() / total;
                            scores[[l, g, k]] = scores[[l, g, k]].max(weight);
                        }
                    }
                }
            }
        }
    }
    scores
}

fn check(model: &Transformer, salt: u64) {
    let vocab = model.config.vocab_size;
    let prompt = ids(PROMPT, vocab, salt);
    let template = RepeatTemplate {
        prefix_len: 6,
        first: ids(3, vocab, salt + 1),
        later: ids(4, vocab, salt + 2),
        suffix: ids(2, vocab, salt + 3),
    };
    let chunks = chunks(&prompt, &template, 13).unwrap();
    assert_eq!(chunks.len(), 3, "34 context tokens in chunks of 13");
    let longest = chunks.iter().map(|c| c.ids.len()).max().unwrap();
    let mut cache = model.new_cache(PROMPT + longest).unwrap();
    model
        .forward(
            &model.embed(&prompt).unwrap(),
            &mut cache,
            &Capture::NONE,
            &Silent,
        )
        .unwrap();
    let whole = repeat(model, &mut cache, &chunks, SINKS, PIECE_FLOATS, &Silent).unwrap();
    assert_eq!(cache.len(), PROMPT, "the cache holds the prompt again");
    // One row per piece: the same scores and rows.
    let pieces = repeat(model, &mut cache, &chunks, SINKS, 1, &Silent).unwrap();
    let worst = (&whole.scores - &pieces.scores)
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(worst < 1e-5, "pieces change the scores by {worst}");
    assert!((&whole.rows - &pieces.rows).iter().all(|v| v.abs() < 1e-5));

    let want = naive_scores(model, &prompt, &chunks);
    let c = &model.config;
    assert_eq!(whole.scores.dim(), (c.num_layers, c.num_kv_heads, PROMPT));
    for ((index, got), want) in whole.scores.indexed_iter().zip(want.iter()) {
        assert!(
            (f64::from(*got) - want).abs() < 1e-4,
            "{index:?}: {got} vs naive {want}"
        );
    }
    // Keys no chunk covers (after the sinks, before the context) score 0; the others do not.
    assert!(whole.scores.iter().any(|&v| v > 0.0));
    for j in 0..6 {
        assert!(
            whole
                .scores
                .slice(ndarray::s![.., .., j])
                .iter()
                .all(|&v| v == 0.0)
        );
    }

    // The panel: every stride-th repeat row over the prompt, as a full forward gives it.
    assert_eq!(
        whole.tokens,
        chunks.iter().map(|c| c.ids.len()).sum::<usize>()
    );
    let stride = panel_stride(whole.tokens);
    let mut t = 0;
    let mut panel_row = 0;
    for chunk in &chunks {
        let all: Vec<u32> = prompt.iter().chain(&chunk.ids).copied().collect();
        let rows = rows_after_prompt(model, &all, PROMPT);
        for row in 0..chunk.ids.len() {
            if t % stride == 0 {
                let got = whole.rows.slice(ndarray::s![.., .., panel_row, ..]);
                let want = rows.slice(ndarray::s![.., .., row, ..]);
                let worst = (&got - &want).iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(worst < 1e-4, "panel row {panel_row} differs by {worst}");
                panel_row += 1;
            }
            t += 1;
        }
    }
    assert_eq!(panel_row, whole.rows.dim().2);
}

#[test]
fn repeat_scores_equal_the_naive_subset_softmax() {
    for (salt, config) in [(1, tiny_config()), (2, tiny_qwen2_config())] {
        check(&tiny_model(config, 9), salt);
    }
}

#[test]
fn an_inspection_runs_the_repeat_pass_over_the_scored_prompt() {
    let ck = write_hf(&TinySpec {
        max_positions: 512,
        seed: 52,
        vocab: tiny_tokenizer().get_vocab_size(true),
        ..TinySpec::llama()
    });
    let model = Model::load(&ck.path, &LoadOptions::default(), &Silent).unwrap();
    let template = RepeatTemplate::of(&model).unwrap();
    let scaffold = model.turn_scaffold().unwrap();
    assert_eq!(template.prefix_len, scaffold.prefix.len());
    assert!(
        !template.suffix.is_empty(),
        "the assistant's header follows the message"
    );
    for placement in QuestionPlacement::ALL {
        let request = InspectRequest {
            document: "the cat is on the mat and the hen is in the hut, this is the end".into(),
            question: "where is the cat?".into(),
            placement,
            window: 4,
            decode_tokens: 3,
            soft: None,
            capture: PrefillCapture {
                repeat: Some(RepeatCapture {
                    n_sink: SINKS,
                    chunk_size: 16,
                }),
                ..PrefillCapture::default()
            },
        };
        let (session, _) = inspect(&model, &request, &Silent).unwrap();
        let n = session.prompt_len();
        // The prompt starts with the template's prefix, which is not repeated.
        assert_eq!(&session.prompt.ids[..template.prefix_len], scaffold.prefix);
        let scores = session.prefill_inputs.repeat_scores.as_ref().unwrap();
        assert_eq!(scores.dim(), (model.info.layers, model.info.kv_heads, n));
        let rows = session.repeat.as_ref().unwrap();
        let planned = chunks(&session.prompt.ids, &template, 16).unwrap();
        let tokens: usize = planned.iter().map(|c| c.ids.len()).sum();
        assert_eq!(
            rows.dim(),
            (
                model.info.layers,
                model.info.query_heads,
                tokens.div_ceil(panel_stride(tokens)),
                n
            ),
            "{placement:?}"
        );
        assert_eq!(
            planned.last().unwrap().keys.end,
            n,
            "the scored prompt is repeated"
        );
        assert_eq!(session.settings.repeat, request.capture.repeat);
        // Every key of the context is scored in some layer and head.
        for j in template.prefix_len..n {
            assert!(
                scores
                    .slice(ndarray::s![.., .., j])
                    .iter()
                    .any(|&v| v > 0.0),
                "{placement:?}: key {j} unscored"
            );
        }
    }
}

//! `--question-placement` on tiny random models: `start` renders the question before the
//! document; `after-eviction` scores the document alone, appends the question under the kept
//! cache (checked against the naive reference), decodes the full-cache answer under an
//! all-keep mask, and measures its metrics over the document part's keys only.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use candle_core::{DType, Device};
use common::naive::{Naive, argmax, ids, tiny_config, tiny_model};
use common::tiny_checkpoint::{TinySpec, tiny_tokenizer, write_hf};
use judgeq::attention::KeepMask;
use judgeq::eval::Method;
use judgeq::inspect::{InspectRequest, inspect, inspect_prompt};
use judgeq::judgeq::{SoftTokenMeta, SoftTokens};
use judgeq::model::{
    BatchOptions, Capture, GenerateOptions, LoadOptions, Model, PlacedPrompt, Transformer,
};
use judgeq::policy::{PolicyBank, PolicyId, PolicySettings, ScoreInputs};
use judgeq::progress::Silent;
use judgeq::session::{PrefillCapture, QuestionPlacement, SpanKind};
use judgeq::tasks::runner::{RunSettings, evaluate_sample};
use judgeq::tasks::{Metric, TaskSample};
use ndarray::Array2;

const DOCUMENT: &str = "the cat is on the mat and the hen is in the hut, this is the end of it";
const QUESTION: &str = "where is the cat?";
const DECODE: usize = 6;

fn tiny() -> (common::tiny_checkpoint::TinyCheckpoint, Model) {
    let ck = write_hf(&TinySpec {
        max_positions: 512,
        seed: 51,
        vocab: tiny_tokenizer().get_vocab_size(true),
        ..TinySpec::llama()
    });
    let model = Model::load(&ck.path, &LoadOptions::default(), &Silent).unwrap();
    (ck, model)
}

fn soft_for(model: &Model) -> SoftTokens {
    let hidden = model.info.hidden_size;
    SoftTokens {
        embeddings: Array2::from_shape_fn((3, hidden), |(i, j)| ((i * 5 + j) as f32 * 0.4).cos()),
        meta: SoftTokenMeta::for_model(&model.info, serde_json::json!({})),
    }
}

/// A request capturing everything, with soft tokens.
fn request(model: &Model, placement: QuestionPlacement) -> InspectRequest {
    InspectRequest {
        document: DOCUMENT.to_owned(),
        question: QUESTION.to_owned(),
        placement,
        window: 4,
        decode_tokens: DECODE,
        soft: Some(("soft.safetensors".into(), soft_for(model))),
        capture: PrefillCapture {
            keys: true,
            values: true,
            value_norms: true,
            query_statistics: true,
            projected_value_norms: true,
            lookahead: None,
            repeat: None,
        },
    }
}

fn first_span(layout: &judgeq::session::PromptLayout, kind: SpanKind) -> Option<usize> {
    layout
        .spans
        .iter()
        .find(|s| s.kind == kind)
        .map(|s| s.start)
}

#[test]
fn start_renders_the_question_before_the_document() {
    let (_ck, model) = tiny();
    for (placement, question_first) in [
        (QuestionPlacement::Start, true),
        (QuestionPlacement::End, false),
    ] {
        let placed = model.placed_prompt(DOCUMENT, QUESTION, placement).unwrap();
        assert!(
            placed.appended.is_empty(),
            "{placement}: nothing is appended"
        );
        let text = model.decode_tokens(&placed.scored.ids).unwrap();
        let (q, d) = (text.find(QUESTION).unwrap(), text.find(DOCUMENT).unwrap());
        if question_first {
            assert_eq!(q + QUESTION.len() + 2, d, "{placement}: {text:?}");
            assert_eq!(&text[q + QUESTION.len()..d], "\n\n");
        } else {
            assert_eq!(d + DOCUMENT.len() + 2, q, "{placement}: {text:?}");
        }
        let (qs, ds) = (
            first_span(&placed.scored, SpanKind::Question).unwrap(),
            first_span(&placed.scored, SpanKind::Document).unwrap(),
        );
        assert_eq!(
            qs < ds,
            question_first,
            "{placement}: {:?}",
            placed.scored.spans
        );
    }
    // A task prompt's marks follow the document wherever it is.
    let needle = "the hen is in the hut";
    let at = DOCUMENT.find(needle).unwrap();
    let mark = at..at + needle.len();
    let (placed, marked) = model
        .placed_task_prompt(
            DOCUMENT,
            QUESTION,
            "It is",
            std::slice::from_ref(&mark),
            QuestionPlacement::Start,
        )
        .unwrap();
    let tokens = &placed.scored.ids[marked[0].clone()];
    assert_eq!(model.decode_tokens(tokens).unwrap().trim(), needle);
}

#[test]
fn after_eviction_cuts_the_whole_prompt_before_the_question() {
    let (_ck, model) = tiny();
    let whole = model
        .placed_prompt(DOCUMENT, QUESTION, QuestionPlacement::End)
        .unwrap()
        .scored;
    let cut = model
        .placed_prompt(DOCUMENT, QUESTION, QuestionPlacement::AfterEviction)
        .unwrap();
    assert_eq!(
        [cut.scored.ids.clone(), cut.appended.ids.clone()].concat(),
        whole.ids
    );
    assert_eq!(
        format!("{}{}", cut.scored.text, cut.appended.text),
        whole.text
    );
    assert!(cut.scored.text.contains(DOCUMENT));
    assert!(!cut.scored.text.contains(QUESTION));
    assert!(
        cut.appended.text.starts_with(QUESTION),
        "{:?}",
        cut.appended.text
    );
    assert_eq!(first_span(&cut.scored, SpanKind::Question), None);
    assert_eq!(whole.kind_at(cut.scored.len()), Some(SpanKind::Question));
    assert_eq!(cut.appended.kind_at(0), Some(SpanKind::Question));
    assert_eq!(cut.total_len(), whole.len());

    // A task prompt: marks stay in the scored part, the answer prefix is appended.
    let needle = "the hen is in the hut";
    let at = DOCUMENT.find(needle).unwrap();
    let mark = at..at + needle.len();
    let marks = std::slice::from_ref(&mark);
    let (end, end_marks) = model
        .placed_task_prompt(DOCUMENT, QUESTION, "It is", marks, QuestionPlacement::End)
        .unwrap();
    let (after, after_marks) = model
        .placed_task_prompt(
            DOCUMENT,
            QUESTION,
            "It is",
            marks,
            QuestionPlacement::AfterEviction,
        )
        .unwrap();
    assert_eq!(after_marks, end_marks);
    assert!(after_marks[0].end <= after.scored.len());
    assert!(after.appended.text.ends_with("It is"));
    assert_eq!(
        [after.scored.ids, after.appended.ids].concat(),
        end.scored.ids
    );
}

#[test]
fn after_eviction_with_every_entry_kept_decodes_the_full_cache_answer() {
    let (_ck, model) = tiny();
    let (session, mut prefilled) = inspect(
        &model,
        &request(&model, QuestionPlacement::AfterEviction),
        &Silent,
    )
    .unwrap();
    assert!(!session.answer.ids.is_empty());
    assert_eq!(session.settings.placement, QuestionPlacement::AfterEviction);
    let info = &model.info;
    let all = KeepMask::from_elem((info.layers, info.query_heads, session.prompt_len()), true);
    let one = prefilled
        .decode_under(&model, &all, DECODE, "all", &Silent)
        .unwrap();
    assert_eq!(one, session.answer);
    let batch = prefilled
        .decode_batch(&model, &[("all".to_owned(), all)], DECODE, &Silent)
        .unwrap();
    assert_eq!(batch, vec![session.answer.clone()]);
    // The full-cache answer is the whole prompt's, as with the question at the end.
    let (end, _) = inspect(&model, &request(&model, QuestionPlacement::End), &Silent).unwrap();
    assert_eq!(end.answer, session.answer);
}

#[test]
fn after_eviction_policies_see_the_document_part_only() {
    let (_ck, model) = tiny();
    let cut = model
        .placed_prompt(DOCUMENT, QUESTION, QuestionPlacement::AfterEviction)
        .unwrap();
    let req = request(&model, QuestionPlacement::AfterEviction);
    let (after, _) = inspect_prompt(&model, cut.clone(), &req, &Silent).unwrap();
    // The same scored tokens inspected as a whole prompt of their own, nothing appended.
    let (alone, _) = inspect_prompt(
        &model,
        PlacedPrompt::whole(cut.scored.clone()),
        &req,
        &Silent,
    )
    .unwrap();
    assert_eq!(after.prompt, cut.scored);
    let n = cut.scored.len();
    assert_eq!(after.window.dim().3, n);
    assert_eq!(after.decoded.dim().3, n);
    // The window rows are the document part's last rows; soft tokens, accumulated attention
    // and the captured inputs saw the same tokens and nothing else.
    assert_eq!(after.window, alone.window);
    assert_eq!(after.soft, alone.soft);
    assert_eq!(after.accumulated, alone.accumulated);
    assert_eq!(after.prefill_inputs, alone.prefill_inputs);
    assert!(after.prefill_inputs.keys.is_some());
}

#[test]
fn after_eviction_oracle_and_metrics_cover_the_document_keys() {
    let (_ck, model) = tiny();
    let (after, _) = inspect(
        &model,
        &request(&model, QuestionPlacement::AfterEviction),
        &Silent,
    )
    .unwrap();
    let (end, _) = inspect(&model, &request(&model, QuestionPlacement::End), &Silent).unwrap();
    assert_eq!(after.answer, end.answer);
    // The oracle's rows: the whole prompt's full-cache decode, over the scored keys.
    let n = after.prompt_len();
    assert_eq!(
        after.decoded.dim(),
        (
            end.decoded.dim().0,
            end.decoded.dim().1,
            end.decoded.dim().2,
            n
        )
    );
    for ((l, h, i, k), &p) in after.decoded.indexed_iter() {
        let want = end.decoded[[l, h, i, k]];
        assert!((p - want).abs() < 1e-5, "{l},{h},{i},{k}: {p} vs {want}");
    }

    let settings = PolicySettings {
        window: 4,
        ..PolicySettings::default()
    };
    let inputs = ScoreInputs::from_session(&after);
    let bank = PolicyBank::new(&inputs, &settings, &[PolicyId::SNAPKV, PolicyId::ORACLE]).unwrap();
    let metrics = bank.evaluate(bank.budget(12).unwrap()).unwrap();
    for m in &metrics {
        let mask = bank.select(m.policy, m.budget).unwrap().mask;
        assert_eq!(mask.dim().2, n);
        for ((l, h), &got) in m.mass_kept.indexed_iter() {
            let (mut kept, mut total) = (0.0f64, 0.0f64);
            for k in 0..n {
                let d: f64 = (0..after.decoded.dim().2)
                    .map(|i| f64::from(after.decoded[[l, h, i, k]]))
                    .sum();
                total += d;
                if mask[[l, h, k]] {
                    kept += d;
                }
            }
            let want = kept / total;
            assert!(
                (f64::from(got) - want).abs() < 1e-4,
                "{}: {got} vs {want}",
                m.policy
            );
        }
    }
    let oracle = metrics
        .iter()
        .find(|m| m.policy == PolicyId::ORACLE)
        .unwrap();
    assert_eq!(oracle.mean_hit_rate, 1.0);
}

/// What the naive reference decodes after eviction.
struct NaiveAnswer {
    /// The generated ids.
    ids: Vec<u32>,
    /// The logits the first token is picked from (after the last appended token).
    first_logits: Vec<f64>,
    /// Per generated token, its attention rows over the prompt keys, `[layer][head][key]`.
    rows: Vec<Vec<Vec<Vec<f64>>>>,
}

/// Greedy decoding by the naive reference after `prompt`: `appended` is fed first, then the
/// argmax tokens; a query after the prompt sees prompt key `k` only where `kept(l, h, k)`.
fn naive_after_eviction(
    naive: &Naive,
    prompt: &[u32],
    appended: &[u32],
    steps: usize,
    kept: &dyn Fn(usize, usize, usize) -> bool,
) -> NaiveAnswer {
    let p = prompt.len();
    let allowed = |l: usize, h: usize, q: usize, k: usize| q < p || k >= p || kept(l, h, k);
    let mut tokens = [prompt, appended].concat();
    let mut first_logits = Vec::new();
    for step in 0..steps {
        let run = naive.run(&naive.embed(&tokens), &allowed);
        let logits = &run.logits[tokens.len() - 1];
        if step == 0 {
            first_logits = logits.clone();
        }
        tokens.push(argmax(logits) as u32);
    }
    let run = naive.run(&naive.embed(&tokens), &allowed);
    let start = p + appended.len();
    let rows = (start..tokens.len())
        .map(|q| {
            run.probs
                .iter()
                .map(|layer| layer.iter().map(|head| head[q][..p].to_vec()).collect())
                .collect()
        })
        .collect();
    NaiveAnswer {
        ids: tokens[start..].to_vec(),
        first_logits,
        rows,
    }
}

fn seeded_mask(layers: usize, heads: usize, keys: usize, seed: u64) -> KeepMask {
    let mut state = seed;
    KeepMask::from_shape_fn((layers, heads, keys), |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        !(state >> 33).is_multiple_of(3)
    })
}

fn prefilled(
    model: &Transformer,
    prompt: &[u32],
    room: usize,
) -> (judgeq::model::KvCache, candle_core::Tensor) {
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

#[test]
fn appended_tokens_attend_under_the_mask_like_the_naive_reference() {
    // f32 on the CPU runs the fused kernel, f64 the portable one (as other devices do).
    check_appended_against_reference(&tiny_model(tiny_config(), 7));
    check_appended_against_reference(
        &Transformer::random(tiny_config(), 7, Device::Cpu, DType::F64).unwrap(),
    );
}

fn check_appended_against_reference(model: &Transformer) {
    let c = &model.config;
    let naive = Naive::from(model);
    let prompt = ids(14, c.vocab_size, 3);
    let appended = ids(5, c.vocab_size, 11);
    let steps = 4;
    let masks = [
        seeded_mask(c.num_layers, c.num_heads, prompt.len(), 5),
        seeded_mask(c.num_layers, c.num_kv_heads, prompt.len(), 9),
    ];
    let mut batch_masks = Vec::new();
    let mut one_by_one = Vec::new();
    let mut first_logits = Vec::new();
    for mask in &masks {
        let group = c.num_heads / mask.dim().1;
        let kept = |l: usize, h: usize, k: usize| mask[[l, h / group, k]];
        let want = naive_after_eviction(&naive, &prompt, &appended, steps, &kept);
        let (mut cache, first) = prefilled(model, &prompt, appended.len() + steps);
        let options = GenerateOptions {
            max_tokens: steps,
            keep: Some(mask.clone()),
            appended: appended.clone(),
            capture_keys: Some(prompt.len()),
            ..Default::default()
        };
        let got = model
            .generate(&mut cache, &first, &options, &Silent)
            .unwrap();
        assert_eq!(got.ids, want.ids);
        // The generated tokens' rows depend on the appended tokens' keys and values, so they
        // tell whether the appended tokens ran under the mask.
        for ((l, h, i, k), &p) in got.rows.unwrap().indexed_iter() {
            let want = want.rows[i][l][h][k];
            assert!(
                (f64::from(p) - want).abs() < 1e-5,
                "row {l},{h},{i},{k}: {p} vs {want}"
            );
        }
        batch_masks.push(mask);
        one_by_one.push(got.ids);
        first_logits.push(want.first_logits);
    }
    let (cache, first) = prefilled(model, &prompt, 0);
    let options = BatchOptions {
        max_tokens: steps,
        appended,
        record_logits: true,
        ..Default::default()
    };
    let batched = model
        .generate_batch(&cache, &first, &batch_masks, &options, &Silent)
        .unwrap();
    for (row, want) in batched.iter().zip(&first_logits) {
        let got = &row.logits.as_ref().unwrap()[0];
        let error = got
            .iter()
            .zip(want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        assert!(
            error < 1e-3,
            "first logits after the appended tokens differ by {error}"
        );
    }
    let batched: Vec<Vec<u32>> = batched.into_iter().map(|g| g.ids).collect();
    assert_eq!(batched, one_by_one);
}

#[test]
fn the_task_runner_evaluates_after_eviction() {
    let (_ck, model) = tiny();
    let needle = "the hen is in the hut";
    let at = DOCUMENT.find(needle).unwrap();
    let sample = TaskSample {
        index: 0,
        id: "toy/0".into(),
        task: "toy".into(),
        evidence: std::iter::once(at..at + needle.len()).collect(),
        context: DOCUMENT.into(),
        question: QUESTION.into(),
        answer_prefix: "It is".into(),
        answers: vec!["mat".into()],
        max_new_tokens: 4,
        metric: Metric::StringMatchAll,
        fields: Vec::new(),
    };
    let base = PolicySettings {
        window: 4,
        ..PolicySettings::default()
    };
    let settings = RunSettings {
        methods: vec![Method {
            id: "snapkv".into(),
            label: "SnapKV".into(),
            policy: PolicyId::SNAPKV,
            settings: base,
        }],
        budgets: vec![8, 10_000],
        ratios: Vec::new(),
        window: 4,
        placement: QuestionPlacement::AfterEviction,
    };
    let result = evaluate_sample(&model, &sample, None, &settings, &Silent).unwrap();
    assert_eq!(result.skipped, None);
    let (placed, _) = model
        .placed_task_prompt(
            DOCUMENT,
            QUESTION,
            "It is",
            &sample.evidence,
            QuestionPlacement::AfterEviction,
        )
        .unwrap();
    assert_eq!(result.prompt_tokens, placed.total_len());
    assert!(!placed.appended.is_empty());
    assert_eq!(result.cells.len(), 2);
    // A budget over the scored part keeps every entry: the full-cache answer.
    let full = result.full.unwrap();
    assert_eq!(result.cells[1].predicted_answer, full.predicted_answer);
    assert_eq!(result.cells[1].evidence_kept, Some(1.0));
}

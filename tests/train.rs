//! Soft-token training on tiny random models: the objective's gradient against finite
//! differences and against a full differentiable forward, loss going down, checkpoints,
//! resume, cancellation, the target cache, prompt fitting, and wrong-model refusal.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{D, DType, Device, Module, Tensor, Var};
use common::naive::{ids, tiny_config, tiny_model};
use common::tiny_checkpoint::{TinySpec, write_hf};
use judgeq::attention::Pooling;
use judgeq::judgeq::checkpoint::{TrainState, state_path};
use judgeq::judgeq::data::{PromptText, read_prompts};
use judgeq::judgeq::fitting::{Fitted, TooLong, fit_prompt};
use judgeq::judgeq::objective::{LayerSet, LossKind, ObjectiveSettings};
use judgeq::judgeq::optimizer::{Adam, AdamSettings, AdamState};
use judgeq::judgeq::step::{loss_and_gradient, prefill_prompt, soft_loss, target_tensor};
use judgeq::judgeq::targets::{Target, TargetCache, TargetKey, TargetSettings, compute_target};
use judgeq::judgeq::{
    SoftTokens, Start, TrainError, TrainEvent, TrainJob, TrainObserver, TrainSettings, train,
};
use judgeq::model::{LoadOptions, Model, Transformer};
use judgeq::progress::{CancelFlag, Progress, Silent, Stage};

const PROMPT: usize = 13;
const SOFT: usize = 4;

/// Deterministic soft embeddings `[SOFT, hidden]` in `dtype`.
fn soft_values(hidden: usize, dtype: DType) -> Tensor {
    let t = Tensor::arange(0.0, (SOFT * hidden) as f64, &Device::Cpu)
        .unwrap()
        .reshape((SOFT, hidden))
        .unwrap();
    (t * 0.37).unwrap().sin().unwrap().to_dtype(dtype).unwrap()
}

/// The model's own target for the test prompt (6 answer tokens, no stop token).
fn own_target(model: &Transformer) -> Tensor {
    let prompt = ids(PROMPT, model.config.vocab_size, 5);
    let target = compute_target(
        model,
        &prompt,
        &[],
        &TargetSettings {
            max_response_tokens: 6,
            ..TargetSettings::default()
        },
        &Silent,
    )
    .unwrap();
    assert_eq!(target.response_ids.len(), 6);
    target_tensor(model, &target.attention)
        .unwrap()
        .to_dtype(model.dtype)
        .unwrap()
}

/// The paper's plain MSE (no length normalisation).
fn plain_mse() -> ObjectiveSettings {
    ObjectiveSettings {
        length_normalised: false,
        ..ObjectiveSettings::default()
    }
}

fn settings_to_check() -> Vec<ObjectiveSettings> {
    vec![
        ObjectiveSettings::default(),
        plain_mse(),
        ObjectiveSettings {
            renormalise: true,
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            loss: LossKind::Kl,
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            layers: LayerSet::Only(vec![0]),
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            renormalise: true,
            skip_first_keys: 2,
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            loss: LossKind::TopK,
            top_k: 3,
            skip_first_keys: 1,
            pooling: Pooling::Max { kernel: 3 },
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            pooling: Pooling::Avg { kernel: 3 },
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            loss: LossKind::TopK,
            top_k: 3,
            layer_weights: vec!["1=3".parse().unwrap()],
            ..ObjectiveSettings::default()
        },
    ]
}

#[test]
fn objective_gradient_matches_finite_differences() {
    let model = Transformer::random(tiny_config(), 21, Device::Cpu, DType::F64).unwrap();
    let prompt = ids(PROMPT, model.config.vocab_size, 5);
    let cache = prefill_prompt(&model, &prompt, &Silent).unwrap();
    let target = own_target(&model);
    let hidden = model.config.hidden_size;
    for settings in settings_to_check() {
        let soft = Var::from_tensor(&soft_values(hidden, DType::F64)).unwrap();
        let analytic = loss_and_gradient(&model, &cache, &soft, &target, &settings).unwrap();
        let gradient = analytic.gradient.to_vec2::<f64>().unwrap();
        let scale = gradient.iter().flatten().fold(0f64, |m, g| m.max(g.abs()));
        assert!(scale > 0.0, "{settings:?}: zero gradient");
        let base = soft.as_tensor().to_vec2::<f64>().unwrap();
        let step = 1e-6;
        for (i, j) in [(0, 0), (0, 9), (1, 17), (2, 3), (3, 31), (3, 12)] {
            let at = |delta: f64| {
                let mut values = base.clone();
                values[i][j] += delta;
                let t = Tensor::new(values, &Device::Cpu).unwrap();
                soft_loss(&model, &cache, &t, &target, &settings)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            };
            let numeric = (at(step) - at(-step)) / (2.0 * step);
            assert!(
                (numeric - gradient[i][j]).abs() <= 1e-6 * scale,
                "{settings:?} d/d soft[{i}][{j}]: analytic {}, numeric {numeric}",
                gradient[i][j]
            );
        }
    }
}

/// Rotary embedding in "rotate half" layout for positions `0..len`, written out here.
fn rotate(x: &Tensor, theta: f64) -> Tensor {
    let (_, len, d) = x.dims3().unwrap();
    let half = d / 2;
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    for pos in 0..len {
        for i in 0..half {
            let angle = pos as f64 / theta.powf(2.0 * i as f64 / d as f64);
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let cos = Tensor::from_vec(cos, (1, len, half), &Device::Cpu).unwrap();
    let sin = Tensor::from_vec(sin, (1, len, half), &Device::Cpu).unwrap();
    let x1 = x.narrow(2, 0, half).unwrap();
    let x2 = x.narrow(2, half, half).unwrap();
    let a = (x1.broadcast_mul(&cos).unwrap() - x2.broadcast_mul(&sin).unwrap()).unwrap();
    let b = (x2.broadcast_mul(&cos).unwrap() + x1.broadcast_mul(&sin).unwrap()).unwrap();
    Tensor::cat(&[a, b], 2).unwrap()
}

/// The plain MSE objective from one differentiable forward over prompt and soft tokens together
/// (no cache, nothing detached), written with plain tensor ops.
fn full_forward_loss(
    model: &Transformer,
    prompt: &[u32],
    soft: &Tensor,
    target: &Tensor,
) -> Tensor {
    let c = &model.config;
    let (p, n) = (prompt.len(), soft.dim(0).unwrap());
    let total = p + n;
    let (heads, kv_heads, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
    let mut mask = vec![0f64; total * total];
    for q in 0..total {
        for k in q + 1..total {
            mask[q * total + k] = f64::NEG_INFINITY;
        }
    }
    let mask = Tensor::from_vec(mask, (total, total), &Device::Cpu).unwrap();
    let mut x = Tensor::cat(&[&model.embed(prompt).unwrap(), soft], 0).unwrap();
    let mut terms = Vec::new();
    for (layer, w) in model.weights.layers.iter().enumerate() {
        let h = candle_nn::ops::rms_norm_slow(&x, &w.attn_norm, c.rms_norm_eps as f32).unwrap();
        let q = w
            .attn
            .q
            .forward(&h)
            .unwrap()
            .reshape((total, heads, d))
            .unwrap();
        let k = w
            .attn
            .k
            .forward(&h)
            .unwrap()
            .reshape((total, kv_heads, d))
            .unwrap();
        let v = w
            .attn
            .v
            .forward(&h)
            .unwrap()
            .reshape((total, kv_heads, d))
            .unwrap();
        let q = rotate(
            &q.transpose(0, 1).unwrap().contiguous().unwrap(),
            c.rope_theta,
        );
        let k = rotate(
            &k.transpose(0, 1).unwrap().contiguous().unwrap(),
            c.rope_theta,
        );
        let v = v.transpose(0, 1).unwrap().contiguous().unwrap();
        let group = heads / kv_heads;
        let mut outputs = Vec::new();
        let mut probs_per_head = Vec::new();
        for head in 0..heads {
            let kv = head / group;
            let scores = (q
                .get(head)
                .unwrap()
                .matmul(&k.get(kv).unwrap().t().unwrap())
                .unwrap()
                / (d as f64).sqrt())
            .unwrap();
            let probs =
                candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
            outputs.push(probs.matmul(&v.get(kv).unwrap()).unwrap());
            probs_per_head.push(probs.narrow(0, p, n).unwrap().narrow(1, 0, p).unwrap());
        }
        let soft_mean = Tensor::stack(&probs_per_head, 0).unwrap().mean(1).unwrap();
        let diff = (soft_mean - target.get(layer).unwrap()).unwrap();
        terms.push(diff.sqr().unwrap().mean(D::Minus1).unwrap());
        let attended = Tensor::stack(&outputs, 1)
            .unwrap()
            .reshape((total, heads * d))
            .unwrap();
        x = (x + w.attn.o.forward(&attended).unwrap()).unwrap();
        let h = candle_nn::ops::rms_norm_slow(&x, &w.mlp_norm, c.rms_norm_eps as f32).unwrap();
        let gated = (w.mlp.gate.forward(&h).unwrap().silu().unwrap()
            * w.mlp.up.forward(&h).unwrap())
        .unwrap();
        x = (x + w.mlp.down.forward(&gated).unwrap()).unwrap();
    }
    Tensor::stack(&terms, 0).unwrap().mean_all().unwrap()
}

#[test]
fn cached_prefix_step_equals_a_full_differentiable_forward() {
    let model = Transformer::random(tiny_config(), 22, Device::Cpu, DType::F64).unwrap();
    let prompt = ids(PROMPT, model.config.vocab_size, 5);
    let target = own_target(&model);
    let soft = Var::from_tensor(&soft_values(model.config.hidden_size, DType::F64)).unwrap();

    let cache = prefill_prompt(&model, &prompt, &Silent).unwrap();
    let cached = loss_and_gradient(&model, &cache, &soft, &target, &plain_mse()).unwrap();

    let full = full_forward_loss(&model, &prompt, soft.as_tensor(), &target);
    let full_gradient = full
        .backward()
        .unwrap()
        .get(soft.as_tensor())
        .unwrap()
        .clone();
    let full_loss = full.to_scalar::<f64>().unwrap();
    assert!(
        (cached.loss - full_loss).abs() <= 1e-12 * full_loss.abs().max(1e-12),
        "loss {} vs {full_loss}",
        cached.loss
    );
    let a = cached
        .gradient
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let b = full_gradient
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-9 * scale, "gradient {x} vs {y}");
    }
}

#[test]
fn a_few_adam_steps_lower_the_loss() {
    let model = tiny_model(tiny_config(), 23);
    let prompt = ids(PROMPT, model.config.vocab_size, 5);
    let target = own_target(&model);
    let cache = prefill_prompt(&model, &prompt, &Silent).unwrap();
    let soft = Var::from_tensor(&soft_values(model.config.hidden_size, DType::F32)).unwrap();
    let settings = ObjectiveSettings::default();
    let mut adam = Adam::new(
        AdamSettings {
            learning_rate: 0.05,
            ..AdamSettings::default()
        },
        &AdamState::zeros(SOFT, model.config.hidden_size),
        &Device::Cpu,
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..40 {
        let step = loss_and_gradient(&model, &cache, &soft, &target, &settings).unwrap();
        losses.push(step.loss);
        adam.step(&soft, &step.gradient).unwrap();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.5 * first, "loss went from {first} to {last}");
}

// ---- Runs through `train` on a tiny Hugging Face checkpoint ----

/// A tiny llama checkpoint with room for the test prompts.
fn tiny_checkpoint(seed: u64) -> common::tiny_checkpoint::TinyCheckpoint {
    write_hf(&TinySpec {
        max_positions: 512,
        seed,
        ..TinySpec::llama()
    })
}

fn load(path: &Path) -> Model {
    Model::load(path, &LoadOptions::default(), &Silent).unwrap()
}

const DATA: &str = concat!(
    "{\"prompt\": \"the cat is on the mat\"}\n",
    "{\"document\": \"this is the story of a hen and her eggs\", \"question\": \"is it?\"}\n",
    "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi there, this is a test\"}]}\n",
    "{\"prompt\": \"the sun is hot and the sea is wide\"}\n",
    "{\"prompt\": \"this the this the this\"}\n",
    "{\"conversations\": [{\"from\": \"gpt\", \"value\": \"no human turn here\"}]}\n",
    "{\"prompt\": \"is this the end of the test data\"}\n",
);

fn small_settings() -> TrainSettings {
    TrainSettings {
        soft_tokens: 3,
        epochs: 2,
        accumulate: 2,
        val_fraction: 0.25,
        max_prompt_tokens: 200,
        target: TargetSettings {
            max_response_tokens: 5,
            ..TargetSettings::default()
        },
        adam: AdamSettings {
            learning_rate: 0.05,
            ..AdamSettings::default()
        },
        checkpoint_every: 1,
        ..TrainSettings::default()
    }
}

/// Counts events and cancels after a chosen number of optimizer steps.
struct Recorder {
    cancel: CancelFlag,
    cancel_after: Option<usize>,
    events: Mutex<Vec<TrainEvent>>,
}

impl Recorder {
    fn new(cancel_after: Option<usize>) -> Self {
        Self {
            cancel: CancelFlag::new(),
            cancel_after,
            events: Mutex::new(Vec::new()),
        }
    }
    fn steps(&self) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, TrainEvent::Step { .. }))
            .count()
    }
}

impl TrainObserver for Recorder {
    /// Cancels once `cancel_after` steps are taken (0: as soon as training starts).
    fn event(&self, event: &TrainEvent) {
        let steps = match event {
            TrainEvent::Step {
                optimizer_steps, ..
            } => Some(*optimizer_steps),
            TrainEvent::Started { .. } => Some(0),
            _ => None,
        };
        if steps.is_some() && steps == self.cancel_after {
            self.cancel.cancel();
        }
        self.events.lock().unwrap().push(event.clone());
    }
}

impl Progress for Recorder {
    fn update(&self, _stage: &Stage, _done: usize, _total: usize) {}
    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

struct Workspace {
    dir: tempfile::TempDir,
    data: PathBuf,
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prompts.jsonl");
    std::fs::write(&data, DATA).unwrap();
    Workspace { dir, data }
}

fn run(
    model: &Model,
    ws: &Workspace,
    out: &Path,
    settings: TrainSettings,
    start: Start,
    recorder: &Recorder,
) -> Result<judgeq::judgeq::TrainSummary, TrainError> {
    let data = read_prompts(&ws.data).unwrap();
    let cache = TargetCache::new(&ws.dir.path().join("targets")).unwrap();
    let job = TrainJob {
        model,
        data: &data,
        settings,
        out: out.to_path_buf(),
        start,
        cache: &cache,
    };
    train(&job, recorder, recorder)
}

#[test]
fn a_run_writes_a_loadable_soft_token_file_with_its_provenance() {
    let ck = tiny_checkpoint(31);
    let model = load(&ck.path);
    let ws = workspace();
    let out = ws.dir.path().join("soft.safetensors");
    let recorder = Recorder::new(None);
    let summary = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: false },
        &recorder,
    )
    .unwrap();

    assert!(!summary.cancelled);
    assert_eq!(summary.data.records, 6);
    assert_eq!(summary.data.skipped_no_human_turn, 1);
    assert_eq!(
        summary.data.val_examples + summary.data.train_examples + summary.data.empty_answers,
        6
    );
    assert_eq!(summary.data.val_examples, 2);
    let epochs: Vec<usize> = summary.history.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, vec![0, 1, 2]);
    assert!(
        summary
            .history
            .iter()
            .all(|r| r.val_loss.is_some_and(f64::is_finite))
    );
    let steps_per_epoch = summary.data.train_examples.div_ceil(2);
    assert_eq!(summary.optimizer_steps, 2 * steps_per_epoch);
    assert_eq!(recorder.steps(), summary.optimizer_steps);

    let soft = SoftTokens::read(&out).unwrap();
    assert_eq!(soft.embeddings.dim(), (3, model.info.hidden_size));
    soft.check_model(&out, &model.info).unwrap();
    let training = &soft.meta.training;
    assert_eq!(training["data"]["file_name"], "prompts.jsonl");
    assert_eq!(
        training["data"]["sha256"],
        read_prompts(&ws.data).unwrap().sha256
    );
    assert_eq!(training["settings"]["soft_tokens"], 3);
    assert_eq!(training["finished"], true);
    assert_eq!(training["history"].as_array().unwrap().len(), 3);

    // The embeddings moved away from their initialisation.
    let state = TrainState::load(&out).unwrap();
    assert_eq!(state.embeddings, soft.embeddings);
    assert_eq!(state.adam.steps as usize, summary.optimizer_steps);

    // Nothing the user made is replaced silently.
    let again = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: false },
        &Recorder::new(None),
    );
    assert!(
        matches!(again, Err(TrainError::OutputExists { .. })),
        "{again:?}"
    );
}

#[test]
fn cancelling_keeps_a_loadable_checkpoint_and_resuming_finishes_the_same_run() {
    let ck = tiny_checkpoint(32);
    let model = load(&ck.path);
    let ws = workspace();

    let straight = ws.dir.path().join("straight.safetensors");
    run(
        &model,
        &ws,
        &straight,
        small_settings(),
        Start::Fresh { force: false },
        &Recorder::new(None),
    )
    .unwrap();

    let stopped = ws.dir.path().join("stopped.safetensors");
    let recorder = Recorder::new(Some(2));
    let summary = run(
        &model,
        &ws,
        &stopped,
        small_settings(),
        Start::Fresh { force: false },
        &recorder,
    )
    .unwrap();
    assert!(summary.cancelled);
    assert_eq!(summary.optimizer_steps, 2);
    let checkpoint = SoftTokens::read(&stopped).unwrap();
    checkpoint.check_model(&stopped, &model.info).unwrap();
    assert_eq!(checkpoint.meta.training["finished"], false);
    assert_eq!(
        TrainState::load(&stopped).unwrap().progress.optimizer_steps,
        2
    );

    let resumed = run(
        &model,
        &ws,
        &stopped,
        small_settings(),
        Start::Resume,
        &Recorder::new(None),
    )
    .unwrap();
    assert!(!resumed.cancelled);
    let a = SoftTokens::read(&straight).unwrap().embeddings;
    let b = SoftTokens::read(&stopped).unwrap().embeddings;
    let largest = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(largest < 1e-5, "resumed run differs by {largest}");
    let history_a = TrainState::load(&straight).unwrap().progress.history;
    let history_b = TrainState::load(&stopped).unwrap().progress.history;
    assert_eq!(history_a.len(), history_b.len());
    for (x, y) in history_a.iter().zip(&history_b) {
        assert_eq!(x.optimizer_steps, y.optimizer_steps);
        let (vx, vy) = (x.val_loss.unwrap(), y.val_loss.unwrap());
        assert!((vx - vy).abs() <= 1e-5 * vx.abs(), "{vx} vs {vy}");
    }
}

#[test]
fn resume_refuses_other_settings_data_or_model() {
    let ck = tiny_checkpoint(33);
    let model = load(&ck.path);
    let ws = workspace();
    let out = ws.dir.path().join("soft.safetensors");
    let nothing = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Resume,
        &Recorder::new(None),
    );
    assert!(
        matches!(nothing, Err(TrainError::ResumeMismatch { .. })),
        "{nothing:?}"
    );

    run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: false },
        &Recorder::new(Some(1)),
    )
    .unwrap();
    let other = TrainSettings {
        seed: 9,
        ..small_settings()
    };
    let err = run(
        &model,
        &ws,
        &out,
        other,
        Start::Resume,
        &Recorder::new(None),
    )
    .unwrap_err();
    assert!(err.to_string().contains("seed is 9 now but 0"), "{err}");

    let other_ck = tiny_checkpoint(34);
    let other_model = load(&other_ck.path);
    let err = run(
        &other_model,
        &ws,
        &out,
        small_settings(),
        Start::Resume,
        &Recorder::new(None),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("trained on another model"),
        "{err}"
    );

    std::fs::write(&ws.data, format!("{DATA}{{\"prompt\": \"one more\"}}\n")).unwrap();
    let err = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Resume,
        &Recorder::new(None),
    )
    .unwrap_err();
    assert!(err.to_string().contains("trained on other data"), "{err}");

    let longer = TrainSettings {
        epochs: 3,
        ..small_settings()
    };
    std::fs::write(&ws.data, DATA).unwrap();
    let resumed = run(
        &model,
        &ws,
        &out,
        longer,
        Start::Resume,
        &Recorder::new(None),
    )
    .unwrap();
    assert_eq!(resumed.history.last().unwrap().epoch, 3);
}

#[test]
fn soft_tokens_for_another_model_are_refused_by_name() {
    let ck = tiny_checkpoint(35);
    let model = load(&ck.path);
    let ws = workspace();
    let out = ws.dir.path().join("soft.safetensors");
    run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: false },
        &Recorder::new(Some(1)),
    )
    .unwrap();
    let soft = SoftTokens::read(&out).unwrap();

    let qwen = write_hf(&TinySpec {
        max_positions: 512,
        ..TinySpec::qwen2()
    });
    let err = soft.check_model(&out, &load(&qwen.path).info).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("architecture llama vs qwen2"), "{message}");
    assert!(message.contains("not for the loaded model"), "{message}");

    let same_shape = tiny_checkpoint(36);
    let err = soft
        .check_model(&out, &load(&same_shape.path).info)
        .unwrap_err();
    assert!(err.to_string().contains("the weights differ"), "{err}");
}

#[test]
fn targets_are_cached_and_invalidated_by_model_or_settings() {
    let ck = tiny_checkpoint(37);
    let model = load(&ck.path);
    let dir = tempfile::tempdir().unwrap();
    let cache = TargetCache::new(dir.path()).unwrap();
    let prompt = model.chat_prompt("the cat").unwrap().ids;
    let settings = TargetSettings {
        max_response_tokens: 4,
        ..TargetSettings::default()
    };
    let t = &model.transformer;
    let hash = &model.info.weights_sha256;
    let (first, hit) = cache
        .get_or_compute(t, hash, &prompt, &model.stop_ids, &settings, &Silent)
        .unwrap();
    assert!(!hit);
    let (second, hit) = cache
        .get_or_compute(t, hash, &prompt, &model.stop_ids, &settings, &Silent)
        .unwrap();
    assert!(hit);
    assert_eq!(first, second);
    let key = TargetKey::new(hash, t, &prompt, &settings);
    assert!(cache.path(&key).exists());

    let weighted = TargetSettings {
        half_life: Some(2.0),
        ..settings.clone()
    };
    let (_, hit) = cache
        .get_or_compute(t, hash, &prompt, &model.stop_ids, &weighted, &Silent)
        .unwrap();
    assert!(!hit, "a weighted target must not reuse the plain one");
    let longer = TargetSettings {
        max_response_tokens: 5,
        ..TargetSettings::default()
    };
    let (_, hit) = cache
        .get_or_compute(t, hash, &prompt, &model.stop_ids, &longer, &Silent)
        .unwrap();
    assert!(!hit, "other settings must not reuse the target");
    let other_hash = "0".repeat(64);
    let (_, hit) = cache
        .get_or_compute(t, &other_hash, &prompt, &model.stop_ids, &settings, &Silent)
        .unwrap();
    assert!(!hit, "another model must not reuse the target");
    let other_prompt = model.chat_prompt("the hen").unwrap().ids;
    let (_, hit) = cache
        .get_or_compute(t, hash, &other_prompt, &model.stop_ids, &settings, &Silent)
        .unwrap();
    assert!(!hit);

    // A damaged entry is recomputed, not trusted.
    std::fs::write(cache.path(&key), b"garbage").unwrap();
    let (third, hit) = cache
        .get_or_compute(t, hash, &prompt, &model.stop_ids, &settings, &Silent)
        .unwrap();
    assert!(!hit);
    assert_eq!(third, first);

    // The target is the mean of the decoded rows: each row sums to at most 1 over the prompt.
    let sums = first.attention.sum_axis(ndarray::Axis(2));
    assert!(sums.iter().all(|&s| s > 0.0 && s <= 1.0 + 1e-5), "{sums:?}");
}

#[test]
fn long_prompts_are_truncated_in_the_middle_or_skipped_and_counted() {
    let ck = tiny_checkpoint(38);
    let model = load(&ck.path);
    let document: String = (0..60).map(|i| format!("word{i} ")).collect();
    let text = PromptText::Document {
        document: document.clone(),
        question: "is this the end?".into(),
    };
    let whole = match fit_prompt(&model, &text, 10_000, TooLong::Truncate).unwrap() {
        Fitted::Whole(layout) => layout,
        other => panic!("{other:?}"),
    };
    let limit = whole.len() / 2;
    match fit_prompt(&model, &text, limit, TooLong::Truncate).unwrap() {
        Fitted::Truncated {
            layout, original, ..
        } => {
            assert_eq!(original, whole.len());
            assert!(
                layout.len() <= limit && layout.len() > limit - 8,
                "{} vs {limit}",
                layout.len()
            );
            assert!(layout.text.contains("word0 "), "the start is kept");
            assert!(layout.text.contains("word59"), "the end is kept");
            assert!(!layout.text.contains("word30 "), "the middle is cut");
            assert!(
                layout.text.contains("is this the end?<|im_end|>"),
                "the question is kept whole"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fit_prompt(&model, &text, limit, TooLong::Skip).unwrap(),
        Fitted::Skipped {
            tokens: whole.len()
        }
    );

    // In a run, both are counted.
    let ws = workspace();
    let long = format!("{{\"prompt\": \"{document}\"}}\n");
    std::fs::write(&ws.data, format!("{DATA}{long}{long}")).unwrap();
    let limit = 100;
    for (too_long, truncated, skipped) in [(TooLong::Truncate, 2, 0), (TooLong::Skip, 0, 2)] {
        let out = ws
            .dir
            .path()
            .join(format!("{}.safetensors", too_long.name()));
        let settings = TrainSettings {
            max_prompt_tokens: limit,
            too_long,
            epochs: 1,
            ..small_settings()
        };
        let summary = run(
            &model,
            &ws,
            &out,
            settings,
            Start::Fresh { force: false },
            &Recorder::new(None),
        )
        .unwrap();
        assert_eq!(summary.data.truncated, truncated);
        assert_eq!(summary.data.skipped_too_long, skipped);
    }
}

#[test]
fn zero_steps_write_the_initialisation() {
    let ck = tiny_checkpoint(39);
    let model = load(&ck.path);
    let ws = workspace();
    let out = ws.dir.path().join("init.safetensors");
    let settings = TrainSettings {
        max_steps: Some(0),
        ..small_settings()
    };
    let summary = run(
        &model,
        &ws,
        &out,
        settings,
        Start::Fresh { force: false },
        &Recorder::new(None),
    )
    .unwrap();
    assert_eq!(summary.optimizer_steps, 0);
    assert_eq!(summary.history.len(), 1);
    let init = SoftTokens::read(&out).unwrap();
    assert_eq!(init.meta.training["finished"], true);

    // A real run with the same seed starts there and moves away.
    let trained = ws.dir.path().join("trained.safetensors");
    let recorder = Recorder::new(None);
    run(
        &model,
        &ws,
        &trained,
        small_settings(),
        Start::Fresh { force: false },
        &recorder,
    )
    .unwrap();
    let first_checkpoint = recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, TrainEvent::Checkpoint(_)));
    assert!(first_checkpoint);
    assert_ne!(
        SoftTokens::read(&trained).unwrap().embeddings,
        init.embeddings
    );
    let row = init.embeddings.row(0).to_vec();
    let embed = model.transformer.weights.embed.to_vec2::<f32>().unwrap();
    assert!(
        embed.contains(&row),
        "vocab initialisation copies a token embedding"
    );
}

#[test]
fn a_run_stopped_before_its_first_step_writes_nothing_and_blocks_nothing() {
    let ck = tiny_checkpoint(40);
    let model = load(&ck.path);
    let ws = workspace();
    let out = ws.dir.path().join("soft.safetensors");
    let state = state_path(&out);
    let recorder = Recorder::new(Some(0));
    let summary = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: false },
        &recorder,
    )
    .unwrap();
    assert!(summary.cancelled);
    assert!(!summary.saved);
    assert_eq!(summary.optimizer_steps, 0);
    assert!(!out.exists() && !state.exists());
    assert_eq!(recorder.steps(), 0);

    // With --force, an earlier run's files stay as they were until a step is taken.
    std::fs::write(&out, b"an earlier run").unwrap();
    std::fs::write(&state, b"its state").unwrap();
    let summary = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: true },
        &Recorder::new(Some(0)),
    )
    .unwrap();
    assert!(!summary.saved);
    assert_eq!(std::fs::read(&out).unwrap(), b"an earlier run");
    assert_eq!(std::fs::read(&state).unwrap(), b"its state");
    std::fs::remove_file(&out).unwrap();
    std::fs::remove_file(&state).unwrap();

    // The rerun is not blocked, and its first checkpoint follows its first step.
    let recorder = Recorder::new(Some(1));
    let summary = run(
        &model,
        &ws,
        &out,
        small_settings(),
        Start::Fresh { force: false },
        &recorder,
    )
    .unwrap();
    assert!(summary.saved);
    assert_eq!(summary.optimizer_steps, 1);
    let events = recorder.events.lock().unwrap();
    let first_checkpoint = events
        .iter()
        .position(|e| matches!(e, TrainEvent::Checkpoint(_)))
        .unwrap();
    let first_step = events
        .iter()
        .position(|e| matches!(e, TrainEvent::Step { .. }))
        .unwrap();
    assert!(first_step < first_checkpoint);
    assert_eq!(TrainState::load(&out).unwrap().progress.optimizer_steps, 1);
}

#[test]
fn the_state_file_sits_beside_the_soft_tokens() {
    assert_eq!(
        state_path(Path::new("assets/model.judgeq.safetensors")),
        Path::new("assets/model.judgeq.train-state.safetensors")
    );
    assert_eq!(
        state_path(Path::new("soft")),
        Path::new("soft.train-state.safetensors")
    );
}

/// A target weighted almost entirely on the first answer token is that token's row (the
/// target of a one-token answer); a very long half-life is the plain mean.
#[test]
fn weighted_targets_lean_on_the_first_answer_tokens() {
    let ck = tiny_checkpoint(38);
    let model = load(&ck.path);
    let prompt = model.chat_prompt("the cat sat").unwrap().ids;
    let t = &model.transformer;
    let target = |max: usize, half_life: Option<f64>| {
        let settings = TargetSettings {
            max_response_tokens: max,
            half_life,
        };
        compute_target(t, &prompt, &[], &settings, &Silent).unwrap()
    };
    let first_only = target(1, None);
    let steep = target(4, Some(1e-3));
    let plain = target(4, None);
    let flat = target(4, Some(1e9));
    assert_eq!(plain.response_ids.len(), 4);
    let max_diff = |a: &Target, b: &Target| {
        a.attention
            .iter()
            .zip(b.attention.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    assert!(max_diff(&steep, &first_only) < 1e-6);
    assert!(max_diff(&flat, &plain) < 1e-6);
    assert!(
        max_diff(&plain, &first_only) > 1e-4,
        "the test needs rows that differ"
    );
}

#[test]
fn a_layer_the_model_lacks_is_refused_before_any_target_is_made() {
    let ck = tiny_checkpoint(41);
    let model = load(&ck.path);
    let ws = workspace();
    let out = ws.dir.path().join("soft.safetensors");
    for objective in [
        ObjectiveSettings {
            layers: LayerSet::Only(vec![5]),
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            layer_weights: vec!["1-5=3".parse().unwrap()],
            ..ObjectiveSettings::default()
        },
        ObjectiveSettings {
            top_k_mass_share: 0.5,
            top_k_mass_share_layers: LayerSet::Only(vec![0, 4]),
            ..ObjectiveSettings::default()
        },
    ] {
        let recorder = Recorder::new(None);
        let error = run(
            &model,
            &ws,
            &out,
            TrainSettings {
                objective,
                ..small_settings()
            },
            Start::Fresh { force: false },
            &recorder,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("does not exist: the model has layers 0 to 1"),
            "{error}"
        );
        let targets = ws.dir.path().join("targets");
        let made = std::fs::read_dir(&targets).map_or(0, |d| d.count());
        assert_eq!(made, 0, "no target may be made before the check");
        assert!(!out.exists());
    }
}

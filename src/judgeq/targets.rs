//! Training targets: the model's own greedy answer to a prompt, and the attention its tokens
//! pay to the prompt keys, averaged over the answer tokens, per layer and query head.
//!
//! Answer and attention come from one greedy decode with the full cache, so the target is
//! exactly what the oracle of `judgeq evict` would score with. Targets are cached on disk,
//! keyed by the model's weights hash and dtype, the prompt's token ids and the decode settings,
//! so that epochs and restarted runs never decode a prompt twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::{Array3, Axis};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};

use crate::atomic_write::{Overwrite, write_new};
use crate::judgeq::error::{Result, TrainError};
use crate::model::hashing::hex;
use crate::model::{Capture, GenerateOptions, RunPlan, Transformer};
use crate::progress::{Progress, Stage};

/// Version of the target recipe; part of every cache key.
const RECIPE: &str =
    "judgeq-target/1: greedy decode, full cache, mean decoded row over prompt keys";

/// How a target is made.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TargetSettings {
    /// Most answer tokens decoded (the stop token excluded).
    pub max_response_tokens: usize,
    /// Weighting of the answer tokens' rows toward the first ones: token `j` (0-based) weighs
    /// `0.5^(j / half_life)`. `None` (the paper's plain mean) weighs them alike.
    pub half_life: Option<f64>,
}

impl Default for TargetSettings {
    fn default() -> Self {
        Self {
            max_response_tokens: 128,
            half_life: None,
        }
    }
}

impl TargetSettings {
    /// Weights of the rows of an answer of `tokens` tokens, summing to 1.
    pub fn row_weights(&self, tokens: usize) -> Vec<f32> {
        let raw: Vec<f64> = (0..tokens)
            .map(|j| match self.half_life {
                Some(h) if h > 0.0 => 0.5f64.powf(j as f64 / h),
                _ => 1.0,
            })
            .collect();
        let total: f64 = raw.iter().sum();
        raw.iter().map(|w| (w / total) as f32).collect()
    }
}

/// The model's greedy answer to a prompt and its attention over the prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The greedy answer's token ids, stop token excluded (may be empty).
    pub response_ids: Vec<u32>,
    /// Whether a stop token ended the answer (rather than the token limit).
    pub stopped: bool,
    /// `[layers, query_heads, n_prompt]`: each answer token's attention row over the prompt
    /// keys (softmax over every key it saw, not renormalised), averaged over the answer.
    /// Zero when the answer is empty.
    pub attention: Array3<f32>,
}

impl Target {
    /// Whether the target can be trained on (the answer has at least one token).
    pub fn is_usable(&self) -> bool {
        !self.response_ids.is_empty()
    }
}

/// Decodes the greedy answer to `prompt_ids` with the full cache and averages its tokens'
/// attention rows over the prompt keys (weighted as `settings` says).
pub fn compute_target(
    transformer: &Transformer,
    prompt_ids: &[u32],
    stop_ids: &[u32],
    settings: &TargetSettings,
    progress: &dyn Progress,
) -> Result<Target> {
    let p = prompt_ids.len();
    if p == 0 {
        return Err(TrainError::InvalidSetting(
            "an empty prompt has no target".into(),
        ));
    }
    transformer.check_memory(&RunPlan {
        input_rows: p,
        cache_positions: p + settings.max_response_tokens,
        captured_rows: settings.max_response_tokens,
        key_limit: p,
        accumulate: false,
    })?;
    let mut cache = transformer.new_cache(p + settings.max_response_tokens)?;
    let prefill = transformer.forward(
        &transformer.embed(prompt_ids)?,
        &mut cache,
        &Capture::NONE,
        progress,
    )?;
    let options = GenerateOptions {
        max_tokens: settings.max_response_tokens,
        stop_ids: stop_ids.to_vec(),
        capture_keys: Some(p),
        stage: Stage::Decoding,
        ..GenerateOptions::default()
    };
    let generation = transformer.generate(&mut cache, &prefill.last_logits, &options, progress)?;
    let c = &transformer.config;
    let attention = match &generation.rows {
        Some(rows) if rows.dim().2 > 0 => {
            let weights = settings.row_weights(rows.dim().2);
            let mut mean = Array3::zeros((c.num_layers, c.num_heads, p));
            for (row, &weight) in rows.axis_iter(Axis(2)).zip(&weights) {
                mean.scaled_add(weight, &row);
            }
            mean
        }
        _ => Array3::zeros((c.num_layers, c.num_heads, p)),
    };
    Ok(Target {
        prompt_ids: prompt_ids.to_vec(),
        response_ids: generation.ids,
        stopped: generation.stopped,
        attention,
    })
}

/// Targets on disk, one safetensors file per prompt, named by its key.
#[derive(Clone, Debug)]
pub struct TargetCache {
    dir: PathBuf,
}

/// What a cached target must have been made with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetKey {
    /// The key: sha256 of the recipe, weights hash, dtype, settings and prompt ids.
    pub digest: String,
    /// sha256 of the model's weights.
    pub weights_sha256: String,
}

impl TargetKey {
    /// The key of the target of `prompt_ids` under `transformer` (weights `weights_sha256`).
    pub fn new(
        weights_sha256: &str,
        transformer: &Transformer,
        prompt_ids: &[u32],
        settings: &TargetSettings,
    ) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(RECIPE.as_bytes());
        hasher.update([0]);
        hasher.update(weights_sha256.as_bytes());
        hasher.update([0]);
        hasher.update(format!("{:?}", transformer.dtype).as_bytes());
        hasher.update([0]);
        hasher.update(settings.max_response_tokens.to_le_bytes());
        if let Some(half_life) = settings.half_life {
            // Absent for the plain mean, so its keys (and cached targets) stay as they were.
            hasher.update(b"half-life");
            hasher.update(half_life.to_le_bytes());
        }
        for id in prompt_ids {
            hasher.update(id.to_le_bytes());
        }
        Self {
            digest: hex(&hasher.finalize()),
            weights_sha256: weights_sha256.to_owned(),
        }
    }
}

impl TargetCache {
    /// A cache in `dir`, created when missing.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// `targets/` in judgeq's per-user cache directory.
    pub fn default_dir() -> Option<PathBuf> {
        crate::model::fetch::user_cache_dir().map(|d| d.join("targets"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// File of the target with `key`.
    pub fn path(&self, key: &TargetKey) -> PathBuf {
        self.dir.join(format!("{}.safetensors", key.digest))
    }

    /// The cached target with `key`, if there is one that reads back and matches it.
    /// A damaged entry counts as absent (it is recomputed and replaced).
    pub fn load(&self, key: &TargetKey) -> Option<Target> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        decode_entry(&bytes, key).ok()
    }

    /// Stores `target` under `key`, atomically.
    pub fn store(&self, key: &TargetKey, target: &Target) -> Result<()> {
        let path = self.path(key);
        let bytes = encode_entry(target, key).map_err(|m| TrainError::bad_file(&path, m))?;
        Ok(write_new(&path, &bytes, Overwrite::Replace)?)
    }

    /// The cached target of `prompt_ids`, or a freshly computed one (then stored). The flag
    /// says whether it came from the cache.
    pub fn get_or_compute(
        &self,
        transformer: &Transformer,
        weights_sha256: &str,
        prompt_ids: &[u32],
        stop_ids: &[u32],
        settings: &TargetSettings,
        progress: &dyn Progress,
    ) -> Result<(Target, bool)> {
        let key = TargetKey::new(weights_sha256, transformer, prompt_ids, settings);
        if let Some(target) = self.load(&key).filter(|t| t.prompt_ids == prompt_ids) {
            return Ok((target, true));
        }
        let target = compute_target(transformer, prompt_ids, stop_ids, settings, progress)?;
        self.store(&key, &target)?;
        Ok((target, false))
    }
}

fn le_bytes_u32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn encode_entry(target: &Target, key: &TargetKey) -> Result<Vec<u8>, String> {
    let attention: Vec<u8> = target
        .attention
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let prompt = le_bytes_u32(&target.prompt_ids);
    let response = le_bytes_u32(&target.response_ids);
    let views = [
        (
            "attention",
            TensorView::new(Dtype::F32, target.attention.shape().to_vec(), &attention),
        ),
        (
            "prompt_ids",
            TensorView::new(Dtype::U32, vec![target.prompt_ids.len()], &prompt),
        ),
        (
            "response_ids",
            TensorView::new(Dtype::U32, vec![target.response_ids.len()], &response),
        ),
    ];
    let mut tensors = Vec::with_capacity(views.len());
    for (name, view) in views {
        tensors.push((name, view.map_err(|e| e.to_string())?));
    }
    let metadata = HashMap::from([
        ("format".to_string(), "judgeq-target/1".to_string()),
        ("key".to_string(), key.digest.clone()),
        ("weights_sha256".to_string(), key.weights_sha256.clone()),
        ("stopped".to_string(), target.stopped.to_string()),
    ]);
    safetensors::serialize(tensors, Some(metadata)).map_err(|e| e.to_string())
}

fn decode_entry(bytes: &[u8], key: &TargetKey) -> Result<Target, String> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let metadata = header.metadata().clone().ok_or("no metadata")?;
    if metadata.get("key") != Some(&key.digest)
        || metadata.get("weights_sha256") != Some(&key.weights_sha256)
    {
        return Err("made for another model or prompt".into());
    }
    let stopped = metadata.get("stopped").map(String::as_str) == Some("true");
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let u32s = |name: &str| -> Result<Vec<u32>, String> {
        let view = tensors.tensor(name).map_err(|e| e.to_string())?;
        if view.dtype() != Dtype::U32 {
            return Err(format!("{name} is not u32"));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let view = tensors.tensor("attention").map_err(|e| e.to_string())?;
    let &[layers, heads, keys] = view.shape() else {
        return Err("attention is not 3-D".into());
    };
    if view.dtype() != Dtype::F32 {
        return Err("attention is not f32".into());
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let attention =
        Array3::from_shape_vec((layers, heads, keys), values).map_err(|e| e.to_string())?;
    let prompt_ids = u32s("prompt_ids")?;
    if prompt_ids.len() != keys || attention.iter().any(|v| !v.is_finite()) {
        return Err("inconsistent entry".into());
    }
    Ok(Target {
        prompt_ids,
        response_ids: u32s("response_ids")?,
        stopped,
        attention,
    })
}

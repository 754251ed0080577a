//! Random weights written as a Hugging Face checkpoint (`config.json` and one safetensors shard
//! per layer, with `model.safetensors.index.json`), so that benchmarks of large shapes
//! (Llama-3.1-8B's) run through the real loading path with nothing to download. Read it back
//! with [`super::load::load_transformer`]; it has no tokenizer, so it is not a [`super::Model`].
//!
//! Values are uniform, scaled like [`super::random`]'s: projections `±sqrt(3 / inputs)`, norms
//! `1 ± 0.2`, embeddings `±1`. Each tensor draws from its own seeded stream, so shards are
//! generated in parallel and the same seed writes the same files.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde_json::{Value, json};

use super::config::{Architecture, ModelConfig};
use super::error::{ModelError, Result};
use super::safetensors::INDEX_FILE;
use super::weight_loader::{LAYER_ROLES, Naming, Role, expected_shape};
use crate::progress::{Progress, Stage};
use crate::rng::SplitMix64;

/// Writes `config`'s shape with random weights in `dtype` into `dir` (created if missing);
/// reports one unit of [`Stage::Loading`] per shard written.
pub fn write_random_checkpoint(
    dir: &Path,
    config: &ModelConfig,
    dtype: DType,
    seed: u64,
    progress: &dyn Progress,
) -> Result<()> {
    config.validate().map_err(ModelError::InvalidArgument)?;
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_json(&dir.join("config.json"), &config_json(config, dtype))?;

    let shards = shard_plan(config);
    let count = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut stream = 0u64;
    for (index, roles) in shards.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let file = format!("model-{:05}-of-{count:05}.safetensors", index + 1);
        let first_stream = stream;
        stream += roles.len() as u64;
        let tensors = roles
            .par_iter()
            .enumerate()
            .map(|(offset, &(role, layer))| {
                let name = Naming::HuggingFace.name(role, layer);
                let values = random_values(config, role, seed, first_stream + offset as u64);
                let tensor = Tensor::from_vec(values, expected_shape(config, role), &Device::Cpu)?
                    .to_dtype(dtype)?;
                Ok((name, tensor))
            })
            .collect::<Result<Vec<_>>>()?;
        for (name, _) in &tensors {
            weight_map.insert(name.clone(), Value::String(file.clone()));
        }
        let path = dir.join(&file);
        candle_core::safetensors::save(&tensors.into_iter().collect(), &path).map_err(|e| {
            ModelError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        progress.update(&Stage::Loading, index + 1, count);
    }
    write_json(
        &dir.join(INDEX_FILE),
        &json!({ "metadata": {}, "weight_map": weight_map }),
    )
}

/// The tensors of each shard: embeddings, final norm and LM head first, then one per layer.
fn shard_plan(config: &ModelConfig) -> Vec<Vec<(Role, usize)>> {
    let wanted = |role: Role| match role {
        Role::QBias | Role::KBias | Role::VBias => config.attention_bias,
        Role::LmHead => !config.tie_word_embeddings,
        _ => true,
    };
    let globals = [Role::Embed, Role::FinalNorm, Role::LmHead]
        .into_iter()
        .filter(|&r| wanted(r))
        .map(|r| (r, 0))
        .collect();
    let layers = (0..config.num_layers).map(|layer| {
        LAYER_ROLES
            .into_iter()
            .filter(|&r| wanted(r))
            .map(|r| (r, layer))
            .collect()
    });
    std::iter::once(globals).chain(layers).collect()
}

/// Uniform values for `role`, from stream `stream` of `seed`.
fn random_values(config: &ModelConfig, role: Role, seed: u64, stream: u64) -> Vec<f32> {
    let shape = expected_shape(config, role);
    let count: usize = shape.iter().product();
    let (center, spread) = match role {
        Role::AttnNorm | Role::MlpNorm | Role::FinalNorm => (1.0, 0.2),
        Role::Embed => (0.0, 1.0),
        Role::LmHead => (0.0, 0.1),
        Role::QBias | Role::KBias | Role::VBias => (0.0, 0.1),
        _ => {
            let inputs = shape.get(1).copied().unwrap_or(1) as f32;
            (0.0, (3.0 / inputs).sqrt())
        }
    };
    let mut rng = SplitMix64::stream(seed, stream);
    (0..count)
        .map(|_| {
            let unit = (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            center + spread * unit
        })
        .collect()
}

/// `config.json` as transformers writes it for the family.
fn config_json(config: &ModelConfig, dtype: DType) -> Value {
    let (model_type, class) = match config.architecture {
        Architecture::Llama => ("llama", "LlamaForCausalLM"),
        Architecture::Mistral => ("mistral", "MistralForCausalLM"),
        Architecture::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
    };
    let torch_dtype = match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        _ => "float32",
    };
    let mut json = json!({
        "architectures": [class],
        "model_type": model_type,
        "hidden_act": "silu",
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "vocab_size": config.vocab_size,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "max_position_embeddings": config.max_position_embeddings,
        "tie_word_embeddings": config.tie_word_embeddings,
        "attention_bias": config.attention_bias,
        "torch_dtype": torch_dtype,
    });
    if let (Some(scaling), Some(map)) = (config.rope_scaling, json.as_object_mut()) {
        map.insert(
            "rope_scaling".to_owned(),
            json!({
                "rope_type": "llama3",
                "factor": scaling.factor,
                "low_freq_factor": scaling.low_freq_factor,
                "high_freq_factor": scaling.high_freq_factor,
                "original_max_position_embeddings": scaling.original_max_position_embeddings,
            }),
        );
    }
    json
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| ModelError::InvalidArgument(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

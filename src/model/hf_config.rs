//! Hugging Face `config.json` of the Llama, Mistral and Qwen2 families, read into a
//! [`ModelConfig`].
//!
//! Read by hand from JSON rather than through candle-transformers' per-family structs: one
//! reader covers the three families, accepts both the `rope_scaling` (transformers 4) and
//! `rope_parameters` (transformers 5) spellings, and names the missing or malformed field.

use std::path::Path;

use serde_json::{Map, Value};

use super::config::{Architecture, Llama3RopeScaling, ModelConfig};
use super::error::{ModelError, Result};

/// A parsed `config.json`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HfConfig {
    /// The model's shape.
    pub config: ModelConfig,
    /// `eos_token_id` (one id or a list), possibly empty.
    pub eos_token_ids: Vec<u32>,
}

/// Reads and checks `path` (a `config.json`).
pub(crate) fn read_config(path: &Path) -> Result<HfConfig> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let fields = Fields {
        path,
        map: &Map::new(),
    };
    let json: Value = serde_json::from_slice(crate::bom::strip_bom(&bytes))
        .map_err(|e| fields.malformed(e.to_string()))?;
    let map = json
        .as_object()
        .ok_or_else(|| fields.malformed("the top level is not a JSON object".into()))?;
    let f = Fields { path, map };

    let model_type = f.str("model_type")?;
    let architecture = match model_type {
        "llama" => Architecture::Llama,
        "mistral" => Architecture::Mistral,
        "qwen2" => Architecture::Qwen2,
        other => {
            return Err(ModelError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                architecture: other.to_owned(),
            });
        }
    };
    if let Some(act) = f.opt_str("hidden_act")?
        && act != "silu"
    {
        return Err(f.unsupported(format!(
            "the MLP activation `{act}` (judgeq runs SwiGLU, `silu`)"
        )));
    }
    if f.opt_bool("mlp_bias")?.unwrap_or(false) {
        return Err(f.unsupported("biases on the MLP projections (`mlp_bias`)".into()));
    }

    let hidden_size = f.usize("hidden_size")?;
    let num_heads = f.usize("num_attention_heads")?;
    if num_heads == 0 {
        return Err(f.malformed("`num_attention_heads` is 0".into()));
    }
    let head_dim = f.opt_usize("head_dim")?.unwrap_or(hidden_size / num_heads);
    let rope = f
        .opt_object("rope_parameters")?
        .or(f.opt_object("rope_scaling")?);
    let rope_theta = match f.opt_f64("rope_theta")? {
        Some(theta) => theta,
        None => rope
            .map(|r| f.nested_f64(r, "rope_parameters", "rope_theta"))
            .transpose()?
            .flatten()
            .unwrap_or(10_000.0),
    };
    let mut max_position_embeddings = f.usize("max_position_embeddings")?;
    // Sliding-window attention is not implemented: a window shorter than the context caps
    // the context, so that every prompt judgeq accepts is attended to exactly.
    let window_applies = match architecture {
        Architecture::Mistral => true,
        Architecture::Qwen2 => f.opt_bool("use_sliding_window")?.unwrap_or(false),
        Architecture::Llama => false,
    };
    if window_applies && let Some(window) = f.opt_usize("sliding_window")? {
        max_position_embeddings = max_position_embeddings.min(window);
    }
    let config = ModelConfig {
        architecture,
        hidden_size,
        intermediate_size: f.usize("intermediate_size")?,
        num_layers: f.usize("num_hidden_layers")?,
        num_heads,
        num_kv_heads: f.opt_usize("num_key_value_heads")?.unwrap_or(num_heads),
        head_dim,
        vocab_size: f.usize("vocab_size")?,
        rms_norm_eps: f.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
        rope_theta,
        rope_scaling: rope.map(|r| f.rope_scaling(r)).transpose()?.flatten(),
        max_position_embeddings,
        tie_word_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
        attention_bias: match architecture {
            Architecture::Qwen2 => true,
            Architecture::Mistral => false,
            Architecture::Llama => f.opt_bool("attention_bias")?.unwrap_or(false),
        },
    };
    config.validate().map_err(|m| f.malformed(m))?;
    Ok(HfConfig {
        config,
        eos_token_ids: f.token_ids("eos_token_id")?,
    })
}

/// Reads `eos_token_id` (one id or a list) from a `generation_config.json`.
pub(crate) fn read_generation_eos(path: &Path) -> Result<Vec<u32>> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let fields = Fields {
        path,
        map: &Map::new(),
    };
    let json: Value = serde_json::from_slice(crate::bom::strip_bom(&bytes))
        .map_err(|e| fields.malformed(e.to_string()))?;
    let map = json
        .as_object()
        .ok_or_else(|| fields.malformed("the top level is not a JSON object".into()))?;
    Fields { path, map }.token_ids("eos_token_id")
}

/// Typed field access; errors name the file and the field.
struct Fields<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn malformed(&self, message: String) -> ModelError {
        let format = match self.path.file_name().and_then(|n| n.to_str()) {
            Some("generation_config.json") => "generation_config.json",
            _ => "config.json",
        };
        ModelError::Malformed {
            path: self.path.to_path_buf(),
            format,
            message,
        }
    }

    fn unsupported(&self, feature: String) -> ModelError {
        ModelError::Unsupported {
            path: self.path.to_path_buf(),
            feature,
        }
    }

    /// The field, with JSON `null` treated as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        self.malformed(format!(
                            "`{key}` should be a non-negative integer, found {v}"
                        ))
                    })
            })
            .transpose()
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| self.malformed(format!("`{key}` is missing")))
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.malformed(format!("`{key}` should be a number, found {v}")))
            })
            .transpose()
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    self.malformed(format!("`{key}` should be true or false, found {v}"))
                })
            })
            .transpose()
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.get(key)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.malformed(format!("`{key}` should be a string, found {v}")))
            })
            .transpose()
    }

    fn str(&self, key: &str) -> Result<&'a str> {
        self.opt_str(key)?
            .ok_or_else(|| self.malformed(format!("`{key}` is missing")))
    }

    fn opt_object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>> {
        self.get(key)
            .map(|v| {
                v.as_object().ok_or_else(|| {
                    self.malformed(format!("`{key}` should be an object, found {v}"))
                })
            })
            .transpose()
    }

    fn nested_f64(&self, map: &Map<String, Value>, outer: &str, key: &str) -> Result<Option<f64>> {
        map.get(key)
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    self.malformed(format!("`{outer}.{key}` should be a number, found {v}"))
                })
            })
            .transpose()
    }

    /// `rope_scaling` / `rope_parameters`: none, `default`, or Llama 3.1's `llama3`.
    fn rope_scaling(&self, rope: &Map<String, Value>) -> Result<Option<Llama3RopeScaling>> {
        let kind = rope
            .get("rope_type")
            .or_else(|| rope.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("default");
        match kind {
            "default" => Ok(None),
            "llama3" => {
                let number = |key: &str| {
                    self.nested_f64(rope, "rope_scaling", key)?.ok_or_else(|| {
                        self.malformed(format!(
                            "`rope_scaling.{key}` is missing for rope type llama3"
                        ))
                    })
                };
                let original = number("original_max_position_embeddings")?;
                if !(original >= 1.0 && original.fract() == 0.0) {
                    return Err(self.malformed(format!(
                        "`rope_scaling.original_max_position_embeddings` should be a positive integer, found {original}"
                    )));
                }
                let scaling = Llama3RopeScaling {
                    factor: number("factor")?,
                    low_freq_factor: number("low_freq_factor")?,
                    high_freq_factor: number("high_freq_factor")?,
                    original_max_position_embeddings: original as usize,
                };
                if !(scaling.factor > 0.0
                    && scaling.low_freq_factor > 0.0
                    && scaling.high_freq_factor > scaling.low_freq_factor)
                {
                    return Err(self.malformed(format!(
                        "`rope_scaling` needs factor > 0 and high_freq_factor > low_freq_factor > 0, found {scaling:?}"
                    )));
                }
                Ok(Some(scaling))
            }
            other => Err(self.unsupported(format!("rotary scaling `{other}`"))),
        }
    }

    /// A token id or a list of them.
    fn token_ids(&self, key: &str) -> Result<Vec<u32>> {
        let bad = |v: &Value| {
            self.malformed(format!(
                "`{key}` should be a token id or a list of them, found {v}"
            ))
        };
        let one = |v: &Value| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(v))
        };
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(one).collect(),
            Some(v) => Ok(vec![one(v)?]),
        }
    }
}

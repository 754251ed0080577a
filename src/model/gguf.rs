//! llama.cpp GGUF checkpoints (architectures `llama` and `qwen2`): the configuration from the
//! metadata, every tensor dequantised to f32, Q/K rows back in Hugging Face order, and the
//! tokenizer and chat template embedded in the metadata.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};

use super::config::{Architecture, ModelConfig};
use super::error::{ModelError, Result};
use super::gguf_alignment::stated_alignment;
use super::weight_loader::{self, Naming, TensorSource, WeightDestination};
use super::weights::Weights;
use crate::progress::Progress;

/// The first four bytes of every GGUF file.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Typed access to GGUF metadata; every error names the file and the key.
pub(crate) struct Metadata<'a> {
    path: &'a Path,
    map: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    pub(crate) fn new(path: &'a Path, map: &'a HashMap<String, Value>) -> Self {
        Self { path, map }
    }

    /// The file the metadata came from.
    pub(crate) fn path(&self) -> &Path {
        self.path
    }

    pub(crate) fn malformed(&self, message: String) -> ModelError {
        ModelError::Malformed {
            path: self.path.to_path_buf(),
            format: "GGUF",
            message,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn required(&self, key: &str) -> Result<&'a Value> {
        self.get(key)
            .ok_or_else(|| self.malformed(format!("metadata `{key}` is missing")))
    }

    pub(crate) fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.get(key).map(|v| self.as_usize(key, v)).transpose()
    }

    pub(crate) fn usize(&self, key: &str) -> Result<usize> {
        self.as_usize(key, self.required(key)?)
    }

    pub(crate) fn as_usize(&self, key: &str, value: &Value) -> Result<usize> {
        let n: Option<u64> = match value {
            Value::U8(v) => Some(u64::from(*v)),
            Value::U16(v) => Some(u64::from(*v)),
            Value::U32(v) => Some(u64::from(*v)),
            Value::U64(v) => Some(*v),
            Value::I8(v) => u64::try_from(*v).ok(),
            Value::I16(v) => u64::try_from(*v).ok(),
            Value::I32(v) => u64::try_from(*v).ok(),
            Value::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        };
        n.and_then(|n| usize::try_from(n).ok()).ok_or_else(|| {
            self.malformed(format!(
                "metadata `{key}` should be a non-negative integer, found {value:?}"
            ))
        })
    }

    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| match v {
                Value::F32(x) => Ok(f64::from(*x)),
                Value::F64(x) => Ok(*x),
                other => Err(self.malformed(format!(
                    "metadata `{key}` should be a number, found {other:?}"
                ))),
            })
            .transpose()
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.get(key)
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(self.malformed(format!(
                    "metadata `{key}` should be a string, found {}",
                    type_name(other)
                ))),
            })
            .transpose()
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str> {
        self.opt_str(key)?
            .ok_or_else(|| self.malformed(format!("metadata `{key}` is missing")))
    }

    pub(crate) fn array(&self, key: &str) -> Result<&'a [Value]> {
        match self.required(key)? {
            Value::Array(items) => Ok(items),
            other => Err(self.malformed(format!(
                "metadata `{key}` should be an array, found {}",
                type_name(other)
            ))),
        }
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Vec<&'a str>> {
        self.array(key)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(self.malformed(format!(
                    "metadata `{key}` should hold strings, found {}",
                    type_name(other)
                ))),
            })
            .collect()
    }
}

fn type_name(v: &Value) -> String {
    format!("{:?}", v.value_type())
}

/// An opened GGUF file whose header, configuration and tensor table were read and checked.
pub(crate) struct GgufFile {
    path: PathBuf,
    content: Content,
    reader: BufReader<File>,
    /// Model shape from the metadata.
    pub(crate) config: ModelConfig,
}

impl GgufFile {
    /// Reads the header and tensor table of `path` and derives the configuration. Refuses
    /// truncated files (a tensor extending past the end) before any weight is read.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut reader = BufReader::new(file);
        if stated_alignment(&mut reader) == Some(0) {
            return Err(ModelError::Malformed {
                path: path.to_path_buf(),
                format: "GGUF",
                message:
                    "metadata `general.alignment` is 0 (tensor data is aligned to at least 1 byte)"
                        .into(),
            });
        }
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        let content = Content::read(&mut reader).map_err(|e| ModelError::Malformed {
            path: path.to_path_buf(),
            format: "GGUF",
            message: format!("{e} (the file may be truncated or not a GGUF file)"),
        })?;
        check_extents(path, &content, file_len)?;
        let config = config_from_metadata(&Metadata::new(path, &content.metadata), &content)?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            reader,
            config,
        })
    }

    /// The metadata, for the tokenizer and chat template.
    pub(crate) fn metadata(&self) -> Metadata<'_> {
        Metadata::new(&self.path, &self.content.metadata)
    }

    /// Dequantises every weight to f32, puts Q/K rows in Hugging Face order (for `llama`),
    /// and converts to `dtype` on `device`.
    pub(crate) fn load_weights(
        &mut self,
        device: &Device,
        dtype: DType,
        progress: &dyn Progress,
    ) -> Result<Weights> {
        let config = self.config.clone();
        let destination = WeightDestination {
            device,
            dtype,
            interleaved_qk: config.architecture == Architecture::Llama,
        };
        weight_loader::load_weights(&config, Naming::Gguf, self, &destination, progress)
    }
}

impl TensorSource for GgufFile {
    fn file_of(&self, _name: &str) -> PathBuf {
        self.path.clone()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.content
            .tensor_infos
            .get(name)
            .map(|info| info.shape.dims().to_vec())
    }

    fn load(&mut self, name: &str, _device: &Device) -> Result<Tensor> {
        let malformed = |e: candle_core::Error| ModelError::Malformed {
            path: self.path.clone(),
            format: "GGUF",
            message: format!("tensor `{name}`: {e}"),
        };
        let q = self
            .content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(malformed)?;
        q.dequantize(&Device::Cpu).map_err(malformed)
    }
}

/// Every tensor's data must lie inside the file.
fn check_extents(path: &Path, content: &Content, file_len: u64) -> Result<()> {
    for (name, info) in &content.tensor_infos {
        let block = info.ggml_dtype.block_size() as u64;
        let bytes = info
            .shape
            .dims()
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .and_then(|elems| (elems / block).checked_mul(info.ggml_dtype.type_size() as u64))
            .ok_or_else(|| ModelError::Malformed {
                path: path.to_path_buf(),
                format: "GGUF",
                message: format!(
                    "tensor `{name}` has an impossible shape {:?}",
                    info.shape.dims()
                ),
            })?;
        let end = content
            .tensor_data_offset
            .saturating_add(info.offset)
            .saturating_add(bytes);
        if end > file_len {
            return Err(ModelError::Malformed {
                path: path.to_path_buf(),
                format: "GGUF",
                message: format!(
                    "truncated: tensor `{name}` ends at byte {end} but the file has {file_len} bytes"
                ),
            });
        }
    }
    Ok(())
}

/// Builds the configuration from `{arch}.*` metadata and the tensor table.
fn config_from_metadata(meta: &Metadata, content: &Content) -> Result<ModelConfig> {
    let arch_name = meta.str("general.architecture")?;
    let architecture = match arch_name {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        other => {
            return Err(ModelError::UnsupportedArchitecture {
                path: meta.path().to_path_buf(),
                architecture: other.to_owned(),
            });
        }
    };
    let key = |k: &str| format!("{arch_name}.{k}");
    let unsupported = |feature: String| ModelError::Unsupported {
        path: meta.path().to_path_buf(),
        feature,
    };

    let hidden_size = meta.usize(&key("embedding_length"))?;
    let num_heads = meta.usize(&key("attention.head_count"))?;
    if let Some(Value::Array(_)) = meta.get(&key("attention.head_count_kv")) {
        return Err(unsupported(
            "a different number of KV heads per layer".into(),
        ));
    }
    let num_kv_heads = meta
        .opt_usize(&key("attention.head_count_kv"))?
        .unwrap_or(num_heads);
    if num_heads == 0 {
        return Err(meta.malformed(format!("metadata `{}` is 0", key("attention.head_count"))));
    }
    let head_dim = meta
        .opt_usize(&key("attention.key_length"))?
        .unwrap_or(hidden_size / num_heads);
    if let Some(rot) = meta.opt_usize(&key("rope.dimension_count"))?
        && rot != head_dim
    {
        return Err(unsupported(format!(
            "partial rotary embeddings ({rot} of {head_dim} head dimensions)"
        )));
    }
    if let Some(kind) = meta.opt_str(&key("rope.scaling.type"))?
        && kind != "none"
    {
        return Err(unsupported(format!("rotary scaling `{kind}`")));
    }
    if content.tensor_infos.contains_key("rope_freqs.weight") {
        return Err(unsupported(
            "Llama 3.1 rotary frequency factors (`rope_freqs.weight`) in a GGUF file; open the model's Hugging Face directory instead".into(),
        ));
    }
    let vocab_size = match meta.opt_usize(&key("vocab_size"))? {
        Some(n) => n,
        None => meta.array("tokenizer.ggml.tokens")?.len(),
    };
    let config = ModelConfig {
        architecture,
        hidden_size,
        intermediate_size: meta.usize(&key("feed_forward_length"))?,
        num_layers: meta.usize(&key("block_count"))?,
        num_heads,
        num_kv_heads,
        head_dim,
        vocab_size,
        rms_norm_eps: meta
            .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                meta.malformed(format!(
                    "metadata `{}` is missing",
                    key("attention.layer_norm_rms_epsilon")
                ))
            })?,
        rope_theta: meta.opt_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        rope_scaling: None,
        max_position_embeddings: meta.usize(&key("context_length"))?,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
        attention_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
    };
    config.validate().map_err(|m| meta.malformed(m))?;
    Ok(config)
}

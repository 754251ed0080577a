//! The soft-token file: a safetensors file with one tensor `soft_tokens` `[n, hidden]` f32 and
//! metadata naming the model it was trained for and how.
//!
//! Plain data (no candle), so the GUI can show a file's metadata without touching the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::session::ModelInfo;

/// Name of the tensor that holds the soft-token embeddings.
pub const TENSOR_NAME: &str = "soft_tokens";
/// Value of the `format` metadata key of files this version writes.
pub const FORMAT: &str = "judgeq-soft-tokens/1";
/// Fewest soft tokens a file may hold.
pub const MIN_COUNT: usize = 1;
/// Most soft tokens a file may hold.
pub const MAX_COUNT: usize = 256;

/// Problems reading, writing or using a soft-token file.
#[derive(Debug, thiserror::Error)]
pub enum SoftTokenError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a soft-token safetensors file.
    #[error("{path}: not a judgeq soft-token file: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file was trained for another model.
    #[error(
        "{path}: these soft tokens were trained for {trained_for}, not for the loaded model {loaded}; {detail}"
    )]
    WrongModel {
        /// The file.
        path: PathBuf,
        /// Model named in the file.
        trained_for: String,
        /// Model loaded now.
        loaded: String,
        /// Which property differs.
        detail: String,
    },
    /// The embeddings could not be serialised.
    #[error("could not serialise soft tokens: {0}")]
    Serialise(String),
}

/// Which model a soft-token file belongs to, and how it was made.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftTokenMeta {
    /// Model name.
    pub model_id: String,
    /// Architecture (`llama`, `mistral`, `qwen2`).
    pub architecture: String,
    /// Width of the model (columns of the embeddings).
    pub hidden_size: usize,
    /// Transformer blocks of the model.
    pub layers: usize,
    /// sha256 of the model's weights.
    pub weights_sha256: String,
    /// Training settings, data and results, as JSON (free-form, shown to the user).
    pub training: serde_json::Value,
}

impl SoftTokenMeta {
    /// Metadata for soft tokens trained for `model`.
    pub fn for_model(model: &ModelInfo, training: serde_json::Value) -> Self {
        Self {
            model_id: model.id.clone(),
            architecture: model.architecture.clone(),
            hidden_size: model.hidden_size,
            layers: model.layers,
            weights_sha256: model.weights_sha256.clone(),
            training,
        }
    }
}

/// Soft-token embeddings with the metadata that ties them to a model.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftTokens {
    /// `[n, hidden]` input embeddings appended after the prompt.
    pub embeddings: Array2<f32>,
    /// Which model they are for.
    pub meta: SoftTokenMeta,
}

impl SoftTokens {
    /// Number of soft tokens.
    pub fn count(&self) -> usize {
        self.embeddings.nrows()
    }

    /// Reads and validates a soft-token file.
    pub fn read(path: &Path) -> Result<Self, SoftTokenError> {
        let bytes = std::fs::read(path).map_err(|source| SoftTokenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses and validates the bytes of the soft-token file `path` (named in the error), for
    /// callers that need the bytes as well, e.g. to hash exactly what they use.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, SoftTokenError> {
        Self::from_bytes(bytes).map_err(|message| SoftTokenError::Malformed {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Serialises to the safetensors bytes of the file format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SoftTokenError> {
        let data: Vec<u8> = self
            .embeddings
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F32, self.embeddings.shape().to_vec(), &data)
            .map_err(|e| SoftTokenError::Serialise(e.to_string()))?;
        let meta = &self.meta;
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("model_id".to_string(), meta.model_id.clone()),
            ("architecture".to_string(), meta.architecture.clone()),
            ("hidden_size".to_string(), meta.hidden_size.to_string()),
            ("layers".to_string(), meta.layers.to_string()),
            ("weights_sha256".to_string(), meta.weights_sha256.clone()),
            ("training".to_string(), meta.training.to_string()),
        ]);
        safetensors::serialize([(TENSOR_NAME, view)], Some(metadata))
            .map_err(|e| SoftTokenError::Serialise(e.to_string()))
    }

    /// Parses the bytes of a soft-token file; the error says what is wrong.
    pub(super) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let metadata = header
            .metadata()
            .clone()
            .ok_or("it has no metadata naming its model")?;
        let field = |key: &str| {
            metadata
                .get(key)
                .cloned()
                .ok_or_else(|| format!("metadata `{key}` is missing"))
        };
        let number = |key: &str| {
            field(key)?
                .parse::<usize>()
                .map_err(|_| format!("metadata `{key}` is not a number"))
        };
        let format = field("format")?;
        if format != FORMAT {
            return Err(format!("format is `{format}`, expected `{FORMAT}`"));
        }
        let training = serde_json::from_str(&field("training")?)
            .map_err(|e| format!("metadata `training` is not JSON: {e}"))?;
        let meta = SoftTokenMeta {
            model_id: field("model_id")?,
            architecture: field("architecture")?,
            hidden_size: number("hidden_size")?,
            layers: number("layers")?,
            weights_sha256: field("weights_sha256")?,
            training,
        };

        let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let embeddings = f32_matrix(&tensors, TENSOR_NAME)?;
        let (count, hidden) = embeddings.dim();
        if hidden != meta.hidden_size {
            return Err(format!(
                "tensor `{TENSOR_NAME}` has {hidden} columns but the metadata says hidden size {}",
                meta.hidden_size
            ));
        }
        if !(MIN_COUNT..=MAX_COUNT).contains(&count) {
            return Err(format!(
                "it holds {count} soft tokens; judgeq accepts {MIN_COUNT} to {MAX_COUNT}"
            ));
        }
        Ok(Self { embeddings, meta })
    }

    /// How far the training run that wrote this file had got, when its metadata says the run
    /// had not finished: `judgeq train` replaces its `--out` file at every checkpoint, so such a
    /// file is a run still in progress or one that was stopped. `None` for finished runs and for
    /// files whose metadata does not say.
    pub fn unfinished_training(&self) -> Option<String> {
        let training = &self.meta.training;
        if training.get("finished")?.as_bool()? {
            return None;
        }
        let count = |pointer: &str| {
            training
                .pointer(pointer)
                .and_then(serde_json::Value::as_u64)
        };
        let steps = count("/optimizer_steps").unwrap_or(0);
        let epochs = match (count("/epochs_completed"), count("/settings/epochs")) {
            (Some(done), Some(planned)) => format!(", {done} of {planned} epochs"),
            _ => String::new(),
        };
        Some(format!(
            "these soft tokens come from a training run that had not finished \
             ({steps} optimizer steps{epochs}): `judgeq train` may still be writing this file, \
             or the run was stopped"
        ))
    }

    /// Refuses soft tokens trained for another model than `model`.
    pub fn check_model(&self, path: &Path, model: &ModelInfo) -> Result<(), SoftTokenError> {
        let meta = &self.meta;
        let mismatch = if meta.architecture != model.architecture {
            Some(format!(
                "architecture {} vs {}",
                meta.architecture, model.architecture
            ))
        } else if meta.hidden_size != model.hidden_size {
            Some(format!(
                "hidden size {} vs {}",
                meta.hidden_size, model.hidden_size
            ))
        } else if meta.layers != model.layers {
            Some(format!("{} layers vs {}", meta.layers, model.layers))
        } else if meta.weights_sha256 != model.weights_sha256 {
            Some(format!(
                "the weights differ (sha256 {} vs {})",
                short_hash(&meta.weights_sha256),
                short_hash(&model.weights_sha256)
            ))
        } else {
            None
        };
        match mismatch {
            None => Ok(()),
            Some(detail) => Err(SoftTokenError::WrongModel {
                path: path.to_path_buf(),
                trained_for: meta.model_id.clone(),
                loaded: model.id.clone(),
                detail,
            }),
        }
    }
}

/// The first 12 hex digits of a sha256, enough to tell files apart in a message.
fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Reads the 2-D f32 tensor `name` of a safetensors file, refusing NaN and infinite values;
/// the error says what is wrong. Soft-token files and training states share it.
pub(super) fn f32_matrix(tensors: &SafeTensors, name: &str) -> Result<Array2<f32>, String> {
    let view = tensors
        .tensor(name)
        .map_err(|_| format!("tensor `{name}` is missing"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!(
            "tensor `{name}` is {:?}, expected F32",
            view.dtype()
        ));
    }
    let &[rows, columns] = view.shape() else {
        return Err(format!(
            "tensor `{name}` has shape {:?}, expected [rows, columns]",
            view.shape()
        ));
    };
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format!("tensor `{name}` holds NaN or infinite values"));
    }
    Array2::from_shape_vec((rows, columns), values).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(hash: &str, hidden: usize) -> ModelInfo {
        ModelInfo {
            id: "tiny".into(),
            architecture: "llama".into(),
            path: "/models/tiny".into(),
            weights_sha256: hash.into(),
            layers: 2,
            query_heads: 4,
            kv_heads: 2,
            head_dim: 8,
            hidden_size: hidden,
            max_context: 128,
            kv_entry_bytes: 64,
        }
    }

    fn soft(hidden: usize) -> SoftTokens {
        let embeddings = Array2::from_shape_fn((3, hidden), |(i, j)| i as f32 - 0.25 * j as f32);
        let meta = SoftTokenMeta::for_model(
            &model("ab".repeat(32).as_str(), hidden),
            serde_json::json!({"steps": 5}),
        );
        SoftTokens { embeddings, meta }
    }

    #[test]
    fn round_trips_through_bytes_and_files() {
        let original = soft(6);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soft.safetensors");
        std::fs::write(&path, original.to_bytes().unwrap()).unwrap();
        let read = SoftTokens::read(&path).unwrap();
        assert_eq!(read, original);
        assert_eq!(read.count(), 3);
        read.check_model(&path, &model(&"ab".repeat(32), 6))
            .unwrap();
    }

    #[test]
    fn a_checkpoint_of_an_unfinished_run_says_how_far_it_got() {
        let mut tokens = soft(6);
        assert_eq!(tokens.unfinished_training(), None, "no `finished` key");
        tokens.meta.training = serde_json::json!({
            "finished": false, "optimizer_steps": 100, "epochs_completed": 0,
            "settings": {"epochs": 1}
        });
        let note = tokens.unfinished_training().unwrap();
        assert!(
            note.contains("(100 optimizer steps, 0 of 1 epochs)"),
            "{note}"
        );
        tokens.meta.training["finished"] = serde_json::json!(true);
        assert_eq!(tokens.unfinished_training(), None);
    }

    #[test]
    fn refuses_another_model_with_the_difference_named() {
        let tokens = soft(6);
        let path = Path::new("soft.safetensors");
        let other_weights = tokens
            .check_model(path, &model(&"cd".repeat(32), 6))
            .unwrap_err();
        assert!(
            other_weights.to_string().contains("weights differ"),
            "{other_weights}"
        );
        let other_width = tokens
            .check_model(path, &model(&"ab".repeat(32), 8))
            .unwrap_err();
        assert!(
            other_width.to_string().contains("hidden size 6 vs 8"),
            "{other_width}"
        );
    }

    #[test]
    fn refuses_files_that_are_not_soft_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.safetensors");
        std::fs::write(&garbage, b"not a safetensors file at all").unwrap();
        assert!(matches!(
            SoftTokens::read(&garbage),
            Err(SoftTokenError::Malformed { .. })
        ));

        let data = [0u8; 16];
        let view = TensorView::new(Dtype::F32, vec![2, 2], &data).unwrap();
        let plain = safetensors::serialize([("weights", view)], None).unwrap();
        let no_meta = dir.path().join("plain.safetensors");
        std::fs::write(&no_meta, plain).unwrap();
        let err = SoftTokens::read(&no_meta).unwrap_err();
        assert!(err.to_string().contains("no metadata"), "{err}");

        let missing = dir.path().join("missing.safetensors");
        assert!(matches!(
            SoftTokens::read(&missing),
            Err(SoftTokenError::Io { .. })
        ));
    }
}

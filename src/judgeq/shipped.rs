//! The soft tokens judgeq ships for its default model (SmolLM2-135M-Instruct), built into the
//! binary so that the Judge Q panel and policy work out of the box, wherever the binary runs.
//!
//! They were trained by `judgeq train`; README's "Judge Q soft tokens" section gives the command,
//! the data, the seed and the loss curve.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::soft_tokens::{SoftTokenError, SoftTokens};
use crate::session::ModelInfo;

/// File name of the shipped soft tokens in the repository's `assets/`.
pub const FILE_NAME: &str = "smollm2-135m-instruct.judgeq.safetensors";

/// The shipped file's bytes.
static BYTES: &[u8] = include_bytes!("../../assets/smollm2-135m-instruct.judgeq.safetensors");

/// Where the shipped tokens say they came from, in manifests, errors and the GUI.
pub fn origin() -> PathBuf {
    Path::new("assets").join(FILE_NAME)
}

/// The shipped soft tokens.
pub fn shipped() -> Result<SoftTokens, SoftTokenError> {
    SoftTokens::parse(&origin(), BYTES)
}

/// sha256 of the shipped file's bytes, hex.
pub fn sha256() -> String {
    use sha2::{Digest, Sha256};
    crate::model::hashing::hex(&Sha256::digest(BYTES))
}

/// The shipped soft tokens with their origin when `model` is the model they were trained for
/// (same architecture, shape and weights), `None` for any other model.
pub fn for_model(model: &ModelInfo) -> Result<Option<(PathBuf, SoftTokens)>, SoftTokenError> {
    let soft = shipped()?;
    Ok(soft
        .check_model(&origin(), model)
        .is_ok()
        .then(|| (origin(), soft)))
}

/// Which soft tokens to append after the prompt: what the CLI's `--soft`/`--no-soft` and the
/// explorer's load panel choose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SoftTokenChoice {
    /// The shipped tokens when the model is the one they were trained for, none for any other.
    #[default]
    Shipped,
    /// A soft-token file (refused later if it was trained for another model).
    File(PathBuf),
    /// No soft tokens: no Judge Q queries.
    None,
}

impl SoftTokenChoice {
    /// The soft tokens this choice gives for `model`, with their origin.
    pub fn resolve(
        &self,
        model: &ModelInfo,
    ) -> Result<Option<(PathBuf, SoftTokens)>, SoftTokenError> {
        match self {
            Self::Shipped => for_model(model),
            Self::File(path) => Ok(Some((path.clone(), SoftTokens::read(path)?))),
            Self::None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_like(soft: &SoftTokens, weights_sha256: &str) -> ModelInfo {
        ModelInfo {
            id: "SmolLM2-135M-Instruct.Q4_1".into(),
            architecture: soft.meta.architecture.clone(),
            hidden_size: soft.meta.hidden_size,
            layers: soft.meta.layers,
            weights_sha256: weights_sha256.into(),
            path: "model.gguf".into(),
            query_heads: 9,
            kv_heads: 3,
            head_dim: 64,
            max_context: 8192,
            kv_entry_bytes: 512,
        }
    }

    #[test]
    fn shipped_tokens_are_thirty_two_finite_rows_for_the_default_model() {
        let soft = shipped().unwrap();
        assert_eq!(soft.embeddings.dim(), (32, 576));
        assert_eq!(soft.meta.architecture, "llama");
        assert_eq!(soft.meta.layers, 30);
        assert!(soft.embeddings.iter().all(|v| v.is_finite()));
        let training = &soft.meta.training;
        assert_eq!(training["finished"], true);
        assert_eq!(training["settings"]["soft_tokens"], 32);
    }

    #[test]
    fn they_apply_to_their_model_only() {
        let soft = shipped().unwrap();
        let own = model_like(&soft, &soft.meta.weights_sha256);
        let (origin, found) = for_model(&own).unwrap().unwrap();
        assert_eq!(origin, Path::new("assets").join(FILE_NAME));
        assert_eq!(found, soft);
        let other = model_like(&soft, "0".repeat(64).as_str());
        assert!(for_model(&other).unwrap().is_none());
        assert!(SoftTokenChoice::Shipped.resolve(&other).unwrap().is_none());
        assert!(SoftTokenChoice::None.resolve(&own).unwrap().is_none());
        let shipped_choice = SoftTokenChoice::Shipped.resolve(&own).unwrap().unwrap();
        assert_eq!(shipped_choice.1, soft);
    }
}

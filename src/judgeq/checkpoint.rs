//! Checkpoints. A run writes two files, each replaced atomically:
//! - the soft-token file (`--out`): the product, loadable by `inspect`, `evict` and the GUI at
//!   any time, its `training` metadata holding the settings, data and loss history so far;
//! - the training state beside it (`NAME.train-state.safetensors`): embeddings, Adam's moments
//!   and where the run stands, everything `--resume` needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::atomic_write::{Overwrite, write_new};
use crate::judgeq::error::{Result, TrainError};
use crate::judgeq::optimizer::AdamState;
use crate::judgeq::settings::{DataSummary, EpochRecord, TrainSettings};
use crate::judgeq::soft_tokens::{SoftTokenMeta, SoftTokens, f32_matrix};
use crate::session::ModelInfo;

/// `format` metadata of training-state files.
pub const STATE_FORMAT: &str = "judgeq-train-state/1";

/// Where a run stands, apart from the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    /// The epoch in progress (0-based); equals the epoch count when the run finished.
    pub epoch: usize,
    /// Examples of this epoch's order already trained on.
    pub position: usize,
    /// Optimizer steps taken.
    pub optimizer_steps: usize,
    /// Sum of this epoch's step losses so far.
    pub epoch_loss_sum: f64,
    /// Steps that sum holds.
    pub epoch_loss_steps: usize,
    /// Losses per finished epoch.
    pub history: Vec<EpochRecord>,
    /// Whether the run reached its end (rather than being stopped).
    pub finished: bool,
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// The settings of the run.
    pub settings: TrainSettings,
    /// sha256 of the model's weights.
    pub weights_sha256: String,
    /// The data the run trains on.
    pub data: DataSummary,
    /// Where the run stands.
    pub progress: RunProgress,
    /// Soft embeddings `[n, hidden]`.
    pub embeddings: Array2<f32>,
    /// Adam's state.
    pub adam: AdamState,
}

/// The JSON part of a state file.
#[derive(Serialize, Deserialize)]
struct StateHeader {
    settings: TrainSettings,
    weights_sha256: String,
    data: DataSummary,
    progress: RunProgress,
    adam_steps: u64,
}

/// Path of the training state that belongs to the soft-token file `out`:
/// `NAME.safetensors` → `NAME.train-state.safetensors`.
pub fn state_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".safetensors").unwrap_or(&name);
    out.with_file_name(format!("{stem}.train-state.safetensors"))
}

impl TrainState {
    /// The soft-token file's `training` metadata for this state.
    pub fn training_metadata(&self) -> serde_json::Value {
        let p = &self.progress;
        serde_json::json!({
            "program": format!("judgeq {}", env!("CARGO_PKG_VERSION")),
            "settings": self.settings,
            "data": self.data,
            "optimizer_steps": p.optimizer_steps,
            "epochs_completed": p.history.iter().filter(|r| r.epoch > 0).count(),
            "finished": p.finished,
            "history": p.history,
        })
    }

    /// The soft tokens of this state, tied to `model`.
    pub fn soft_tokens(&self, model: &ModelInfo) -> SoftTokens {
        SoftTokens {
            embeddings: self.embeddings.clone(),
            meta: SoftTokenMeta::for_model(model, self.training_metadata()),
        }
    }

    /// Writes the state file, then the soft-token file `out`, each atomically; `overwrite`
    /// says whether existing files are replaced (the run's own checkpoints are:
    /// [`crate::judgeq::trainer::train`] refuses to start over existing ones unless asked to).
    pub fn save(&self, out: &Path, model: &ModelInfo, overwrite: Overwrite) -> Result<()> {
        write_new(&state_path(out), &self.to_bytes()?, overwrite)?;
        write_new(out, &self.soft_tokens(model).to_bytes()?, overwrite)?;
        Ok(())
    }

    /// Reads the state file that belongs to `out`.
    pub fn load(out: &Path) -> Result<Self> {
        let path = state_path(out);
        let bytes = std::fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
        Self::from_bytes(&bytes).map_err(|message| TrainError::bad_file(&path, message))
    }

    fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = StateHeader {
            settings: self.settings.clone(),
            weights_sha256: self.weights_sha256.clone(),
            data: self.data.clone(),
            progress: self.progress.clone(),
            adam_steps: self.adam.steps,
        };
        let header = serde_json::to_string(&header)
            .map_err(|e| TrainError::InvalidSetting(format!("training state: {e}")))?;
        let arrays = [
            ("soft_tokens", &self.embeddings),
            ("adam_first", &self.adam.first),
            ("adam_second", &self.adam.second),
        ];
        let bytes: Vec<(&str, Vec<usize>, Vec<u8>)> = arrays
            .iter()
            .map(|(name, a)| {
                let data = a.iter().flat_map(|v| v.to_le_bytes()).collect();
                (*name, a.shape().to_vec(), data)
            })
            .collect();
        let mut views = Vec::with_capacity(bytes.len());
        for (name, shape, data) in &bytes {
            let view = TensorView::new(Dtype::F32, shape.clone(), data)
                .map_err(|e| TrainError::InvalidSetting(e.to_string()))?;
            views.push((*name, view));
        }
        let metadata = HashMap::from([
            ("format".to_string(), STATE_FORMAT.to_string()),
            ("state".to_string(), header),
        ]);
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| TrainError::InvalidSetting(e.to_string()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (_, file_header) = SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let metadata = file_header
            .metadata()
            .clone()
            .ok_or("not a judgeq training state (no metadata)")?;
        if metadata.get("format").map(String::as_str) != Some(STATE_FORMAT) {
            return Err(format!(
                "not a judgeq training state (format is not {STATE_FORMAT})"
            ));
        }
        let header: StateHeader = serde_json::from_str(metadata.get("state").ok_or("no state")?)
            .map_err(|e| format!("state metadata: {e}"))?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let array = |name: &str| f32_matrix(&tensors, name);
        let embeddings = array("soft_tokens")?;
        let adam = AdamState {
            first: array("adam_first")?,
            second: array("adam_second")?,
            steps: header.adam_steps,
        };
        if adam.first.dim() != embeddings.dim() || adam.second.dim() != embeddings.dim() {
            return Err("the optimizer state does not match the soft tokens' shape".into());
        }
        Ok(Self {
            settings: header.settings,
            weights_sha256: header.weights_sha256,
            data: header.data,
            progress: header.progress,
            embeddings,
            adam,
        })
    }
}

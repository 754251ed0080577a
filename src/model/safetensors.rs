//! Weights of a Hugging Face checkpoint: one `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`, memory-mapped so that loading copies each tensor once,
//! straight into the memory of the device it runs on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{Device, Tensor};

use super::error::{ModelError, Result};
use super::weight_loader::TensorSource;

/// The single-file weights name.
pub(crate) const SINGLE_FILE: &str = "model.safetensors";
/// The index of sharded weights.
pub(crate) const INDEX_FILE: &str = "model.safetensors.index.json";

/// The weight files of a checkpoint.
pub(crate) struct WeightFiles {
    /// The files, in a stable order (shards sorted by name).
    pub files: Vec<PathBuf>,
    /// For sharded checkpoints, the file (index into `files`) of each tensor.
    pub routing: Option<HashMap<String, usize>>,
}

/// The weight files of the checkpoint in `dir`.
pub(crate) fn weight_files(dir: &Path) -> Result<WeightFiles> {
    let single = dir.join(SINGLE_FILE);
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        let (files, routing) = read_index(&index)?;
        return Ok(WeightFiles {
            files,
            routing: Some(routing),
        });
    }
    if single.is_file() {
        return Ok(WeightFiles {
            files: vec![single],
            routing: None,
        });
    }
    Err(ModelError::Malformed {
        path: dir.to_path_buf(),
        format: "Hugging Face model directory",
        message: format!("it has neither {SINGLE_FILE} nor {INDEX_FILE}"),
    })
}

fn read_index(index: &Path) -> Result<(Vec<PathBuf>, HashMap<String, usize>)> {
    let malformed = |message: String| ModelError::Malformed {
        path: index.to_path_buf(),
        format: INDEX_FILE,
        message,
    };
    let bytes = std::fs::read(index).map_err(|source| ModelError::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_slice(crate::bom::strip_bom(&bytes))
        .map_err(|e| malformed(e.to_string()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| malformed("`weight_map` is missing or not an object".into()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut names: Vec<&str> = Vec::new();
    let mut routing = HashMap::with_capacity(map.len());
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| malformed(format!("the file of `{tensor}` is not a string")))?;
        let plain = Path::new(file).file_name().is_some_and(|n| n == file);
        if !plain {
            return Err(malformed(format!(
                "shard `{file}` is not a plain file name in the model directory"
            )));
        }
        let at = match names.iter().position(|n| *n == file) {
            Some(at) => at,
            None => {
                names.push(file);
                names.len() - 1
            }
        };
        routing.insert(tensor.clone(), at);
    }
    if names.is_empty() {
        return Err(malformed("`weight_map` lists no tensors".into()));
    }
    // Sort shards by name (model-00001-of-00004...) and renumber the routing to match.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&i| names[i]);
    let mut new_index = vec![0; names.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    for shard in routing.values_mut() {
        *shard = new_index[*shard];
    }
    let files = order.iter().map(|&i| dir.join(names[i])).collect();
    Ok((files, routing))
}

/// Memory-mapped safetensors files, open for the duration of one load.
pub(crate) struct SafetensorsSource {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    routing: Option<HashMap<String, usize>>,
}

impl SafetensorsSource {
    /// Maps the files and reads their headers.
    pub(crate) fn open(weights: WeightFiles) -> Result<Self> {
        let WeightFiles { files, routing } = weights;
        let mut mapped = Vec::with_capacity(files.len());
        for path in &files {
            if !path.is_file() {
                return Err(ModelError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "weight shard not found",
                    ),
                });
            }
            // SAFETY: mapping a file is unsafe because another process could modify or
            // truncate it while it is mapped, changing (or faulting on) bytes that Rust treats
            // as immutable. The mapping is read-only and lives only while `Model::load` runs:
            // every tensor is copied out of it into memory judgeq owns (candle's
            // `Tensor::from_raw_buffer` copies to the CPU or GPU), and it is unmapped when
            // loading ends, so no tensor refers to it afterwards. Checkpoints are not written
            // while they are being opened; this is the same contract every mmap-based loader
            // (candle, transformers, llama.cpp) relies on.
            let st =
                unsafe { MmapedSafetensors::new(path) }.map_err(|e| ModelError::Malformed {
                    path: path.clone(),
                    format: "safetensors",
                    message: format!("{e} (the file may be truncated)"),
                })?;
            mapped.push((path.clone(), st));
        }
        Ok(Self {
            files: mapped,
            routing,
        })
    }

    fn file_index(&self, name: &str) -> Option<usize> {
        match &self.routing {
            Some(routing) => routing.get(name).copied(),
            None => Some(0),
        }
    }
}

impl TensorSource for SafetensorsSource {
    fn file_of(&self, name: &str) -> PathBuf {
        let index = self.file_index(name).unwrap_or(0);
        self.files
            .get(index)
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let (_, st) = self.files.get(self.file_index(name)?)?;
        st.get(name).ok().map(|view| view.shape().to_vec())
    }

    fn load(&mut self, name: &str, device: &Device) -> Result<Tensor> {
        let path = self.file_of(name);
        let (_, st) = self
            .file_index(name)
            .and_then(|i| self.files.get(i))
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.clone(),
                name: name.to_owned(),
            })?;
        st.load(name, device).map_err(|e| ModelError::Malformed {
            path,
            format: "safetensors",
            message: format!("tensor `{name}`: {e}"),
        })
    }
}

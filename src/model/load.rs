//! [`Model`]: a checkpoint ready for inspection (transformer, tokenizer, chat template,
//! description and stop tokens), loaded from a GGUF file or a Hugging Face directory.

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use super::chat::ChatTemplate;
use super::config::ModelConfig;
use super::error::{ModelError, Result};
use super::fetch::user_cache_dir;
use super::gguf::{GGUF_MAGIC, GgufFile};
use super::gguf_tokenizer::tokenizer_from_gguf;
use super::hashing::cached_sha256_files;
use super::hf_config::read_config;
use super::hf_dir::read_chat_files;
use super::safetensors::{INDEX_FILE, SafetensorsSource, weight_files};
use super::tokenizer::TextTokenizer;
use super::transformer::Transformer;
use super::weight_loader::{Naming, WeightDestination, load_weights};
use crate::progress::{Progress, Stage};
use crate::session::ModelInfo;

/// Weight files at least this large have their digest cached (keyed by path, size and
/// modification time) in the user cache; smaller ones are simply hashed on every load.
const CACHE_DIGESTS_FROM: u64 = 64 << 20;

/// Special tokens that end an assistant turn in the chat formats judgeq knows.
const END_OF_TURN: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
];

/// Where and in which dtype to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Compute device.
    pub device: Device,
    /// Dtype of weights and activations.
    pub dtype: DType,
}

impl Default for LoadOptions {
    /// The CPU, in f32.
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
        }
    }
}

/// The two checkpoint layouts judgeq opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// A llama.cpp GGUF file.
    Gguf,
    /// A Hugging Face model directory (the path given may be the directory, its
    /// `config.json` or one of its weight files).
    HuggingFace(PathBuf),
}

/// Tells a GGUF file from a Hugging Face directory by looking at `path`.
pub fn detect_checkpoint(path: &Path) -> Result<CheckpointKind> {
    let meta = std::fs::metadata(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        if path.join("config.json").is_file() {
            return Ok(CheckpointKind::HuggingFace(path.to_path_buf()));
        }
        return Err(ModelError::Malformed {
            path: path.to_path_buf(),
            format: "Hugging Face model directory",
            message: "it has no config.json".into(),
        });
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|()| true)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(false)
            } else {
                Err(e)
            }
        })
        .map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if read && &magic == GGUF_MAGIC {
        return Ok(CheckpointKind::Gguf);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name == "config.json" || name.ends_with(".safetensors") || name == INDEX_FILE {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        return detect_checkpoint(dir);
    }
    Err(ModelError::Malformed {
        path: path.to_path_buf(),
        format: "GGUF",
        message: "the file does not start with `GGUF` (a model is a GGUF file or a Hugging Face directory)".into(),
    })
}

/// A loaded model with everything needed to build prompts and read its answers.
#[derive(Clone, Debug)]
pub struct Model {
    /// Configuration and weights on the compute device.
    pub transformer: Transformer,
    /// The model's tokenizer.
    pub tokenizer: TextTokenizer,
    /// The model's chat template.
    pub chat: ChatTemplate,
    /// Description of the checkpoint.
    pub info: ModelInfo,
    /// Token ids that end an answer (EOS and end-of-turn tokens), sorted.
    pub stop_ids: Vec<u32>,
}

impl Model {
    /// Loads a GGUF file or a Hugging Face directory (see [`detect_checkpoint`]).
    ///
    /// Reports [`Stage::Loading`]: first the MiB hashed for the weights' sha256, then the
    /// tensors loaded. Stops with [`ModelError::Cancelled`] when `progress` is cancelled.
    pub fn load(path: &Path, options: &LoadOptions, progress: &dyn Progress) -> Result<Self> {
        progress.update(&Stage::Loading, 0, 1);
        match detect_checkpoint(path)? {
            CheckpointKind::Gguf => load_gguf(path, options, progress),
            CheckpointKind::HuggingFace(dir) => load_hugging_face(&dir, options, progress),
        }
    }
}

fn load_gguf(path: &Path, options: &LoadOptions, progress: &dyn Progress) -> Result<Model> {
    let mut file = GgufFile::open(path)?;
    let config = file.config.clone();
    let meta = file.metadata();
    let tokenizer = tokenizer_from_gguf(&meta)?;
    check_vocab(&tokenizer, &config, path)?;
    let token = |key: &str| -> Result<Option<(u32, String)>> {
        let Some(id) = meta.opt_usize(key)? else {
            return Ok(None);
        };
        let id = u32::try_from(id)
            .map_err(|_| meta.malformed(format!("`{key}` {id} is not a token id")))?;
        let text = tokenizer
            .id_to_token(id)
            .ok_or_else(|| meta.malformed(format!("`{key}` {id} is outside the vocabulary")))?;
        Ok(Some((id, text)))
    };
    let bos = token("tokenizer.ggml.bos_token_id")?;
    let eos = token("tokenizer.ggml.eos_token_id")?;
    let mut eos_ids: Vec<u32> = eos.iter().map(|(id, _)| *id).collect();
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        eos_ids.extend(token(key)?.map(|(id, _)| id));
    }
    let template = meta
        .opt_str("tokenizer.chat_template")?
        .ok_or_else(|| no_template(path))?;
    let chat = ChatTemplate::new(
        template,
        bos.as_ref().map_or("", |(_, t)| t.as_str()),
        eos.as_ref().map_or("", |(_, t)| t.as_str()),
    )?;
    // The file name says which model and quantisation it is (`SmolLM2-135M-Instruct.Q4_1`);
    // `general.name` is often a training-run label.
    let id = file_stem(path);
    let sha256 = weights_digest(&[path.to_path_buf()], progress)?;
    let weights = file.load_weights(&options.device, options.dtype, progress)?;
    let transformer = Transformer::new(config, weights, options.device.clone(), options.dtype)?;
    let stop_ids = stop_ids(&tokenizer, eos_ids);
    let info = model_info(id, path, sha256, &transformer);
    Ok(Model {
        transformer,
        tokenizer,
        chat,
        info,
        stop_ids,
    })
}

fn load_hugging_face(dir: &Path, options: &LoadOptions, progress: &dyn Progress) -> Result<Model> {
    let hf = read_config(&dir.join("config.json"))?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(&tokenizer_path)?;
    check_vocab(&tokenizer, &hf.config, &tokenizer_path)?;
    let chat_files = read_chat_files(dir)?;
    let template = chat_files
        .template
        .as_deref()
        .ok_or_else(|| no_template(dir))?;
    let chat = ChatTemplate::new(
        template,
        chat_files.bos_token.as_deref().unwrap_or(""),
        chat_files.eos_token.as_deref().unwrap_or(""),
    )?;
    let mut eos_ids = chat_files.generation_eos_ids.clone();
    eos_ids.extend(&hf.eos_token_ids);
    eos_ids.extend(
        chat_files
            .eos_token
            .as_deref()
            .and_then(|t| tokenizer.token_to_id(t)),
    );

    let weight_files = weight_files(dir)?;
    let sha256 = weights_digest(&weight_files.files, progress)?;
    let weights = {
        let mut source = SafetensorsSource::open(weight_files)?;
        let destination = WeightDestination {
            device: &options.device,
            dtype: options.dtype,
            interleaved_qk: false,
        };
        load_weights(
            &hf.config,
            Naming::HuggingFace,
            &mut source,
            &destination,
            progress,
        )?
    };
    let transformer = Transformer::new(hf.config, weights, options.device.clone(), options.dtype)?;
    let stop_ids = stop_ids(&tokenizer, eos_ids);
    let id = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let info = model_info(id, dir, sha256, &transformer);
    Ok(Model {
        transformer,
        tokenizer,
        chat,
        info,
        stop_ids,
    })
}

/// Loads only the transformer of a Hugging Face directory (`config.json` and safetensors): no
/// tokenizer, chat template nor digest, for benchmarks on synthetic checkpoints such as
/// [`super::random_checkpoint::write_random_checkpoint`]'s.
pub fn load_transformer(
    dir: &Path,
    options: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Transformer> {
    let hf = read_config(&dir.join("config.json"))?;
    let mut source = SafetensorsSource::open(weight_files(dir)?)?;
    let target = WeightDestination {
        device: &options.device,
        dtype: options.dtype,
        interleaved_qk: false,
    };
    let weights = load_weights(
        &hf.config,
        Naming::HuggingFace,
        &mut source,
        &target,
        progress,
    )?;
    Transformer::new(hf.config, weights, options.device.clone(), options.dtype)
}

/// The tokenizer must not produce ids beyond the embedding matrix.
fn check_vocab(tokenizer: &TextTokenizer, config: &ModelConfig, path: &Path) -> Result<()> {
    let ids = tokenizer.vocab_size();
    if ids > config.vocab_size {
        return Err(ModelError::Malformed {
            path: path.to_path_buf(),
            format: "tokenizer",
            message: format!(
                "the tokenizer has {ids} tokens but the model embeds only {}",
                config.vocab_size
            ),
        });
    }
    Ok(())
}

fn no_template(path: &Path) -> ModelError {
    ModelError::ChatTemplate(format!(
        "{} has no chat template (GGUF `tokenizer.chat_template`, `chat_template` in tokenizer_config.json, or \
         chat_template.jinja); judgeq renders prompts with the model's own template, so it needs an \
         instruction-tuned (chat) model",
        path.display()
    ))
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

fn weights_digest(files: &[PathBuf], progress: &dyn Progress) -> Result<String> {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let stamps = (total >= CACHE_DIGESTS_FROM)
        .then(user_cache_dir)
        .flatten()
        .map(|d| d.join("digests"));
    cached_sha256_files(files, stamps.as_deref(), &Stage::Loading, progress)
}

/// EOS ids plus every end-of-turn special token the tokenizer has, sorted and unique.
fn stop_ids(tokenizer: &TextTokenizer, mut ids: Vec<u32>) -> Vec<u32> {
    ids.extend(
        END_OF_TURN
            .iter()
            .filter(|t| tokenizer.is_special(t))
            .filter_map(|t| tokenizer.token_to_id(t)),
    );
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn model_info(
    id: String,
    path: &Path,
    weights_sha256: String,
    transformer: &Transformer,
) -> ModelInfo {
    let c = &transformer.config;
    ModelInfo {
        id,
        architecture: c.architecture.name().to_owned(),
        path: path.display().to_string(),
        weights_sha256,
        layers: c.num_layers,
        query_heads: c.num_heads,
        kv_heads: c.num_kv_heads,
        head_dim: c.head_dim,
        hidden_size: c.hidden_size,
        max_context: c.max_position_embeddings,
        kv_entry_bytes: 2 * c.head_dim * transformer.dtype.size_in_bytes(),
    }
}

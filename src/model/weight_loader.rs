//! Builds [`Weights`] from a checkpoint's tensors, whatever the file format: every tensor the
//! configuration implies is looked up and shape-checked before any is loaded, then each is
//! converted to the requested dtype and placed on the device.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::Linear;

use super::config::ModelConfig;
use super::error::{ModelError, Result};
use super::weights::{AttentionWeights, LayerWeights, MlpWeights, Weights};
use crate::progress::{Progress, Stage};

/// A checkpoint's tensors, by name as stored in the file.
pub(crate) trait TensorSource {
    /// The file that holds (or would hold) `name`, for error messages.
    fn file_of(&self, name: &str) -> PathBuf;
    /// Shape of `name` as `[rows, cols]` (PyTorch order), or `None` when absent.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// Loads `name`, in any float dtype, on the CPU or on `device`.
    fn load(&mut self, name: &str, device: &Device) -> Result<Tensor>;
}

/// How a checkpoint names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Naming {
    /// llama.cpp: `token_embd.weight`, `blk.N.attn_q.weight`, ...
    Gguf,
    /// Hugging Face transformers: `model.embed_tokens.weight`, `model.layers.N.self_attn.q_proj.weight`, ...
    HuggingFace,
}

/// What a tensor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Embed,
    FinalNorm,
    LmHead,
    AttnNorm,
    Q,
    K,
    V,
    O,
    QBias,
    KBias,
    VBias,
    MlpNorm,
    Gate,
    Up,
    Down,
}

impl Naming {
    /// The stored name of `role` (in block `layer` for per-layer roles).
    pub(crate) fn name(self, role: Role, layer: usize) -> String {
        let (gguf, hf) = match role {
            Role::Embed => return self.global("token_embd.weight", "model.embed_tokens.weight"),
            Role::FinalNorm => return self.global("output_norm.weight", "model.norm.weight"),
            Role::LmHead => return self.global("output.weight", "lm_head.weight"),
            Role::AttnNorm => ("attn_norm.weight", "input_layernorm.weight"),
            Role::Q => ("attn_q.weight", "self_attn.q_proj.weight"),
            Role::K => ("attn_k.weight", "self_attn.k_proj.weight"),
            Role::V => ("attn_v.weight", "self_attn.v_proj.weight"),
            Role::O => ("attn_output.weight", "self_attn.o_proj.weight"),
            Role::QBias => ("attn_q.bias", "self_attn.q_proj.bias"),
            Role::KBias => ("attn_k.bias", "self_attn.k_proj.bias"),
            Role::VBias => ("attn_v.bias", "self_attn.v_proj.bias"),
            Role::MlpNorm => ("ffn_norm.weight", "post_attention_layernorm.weight"),
            Role::Gate => ("ffn_gate.weight", "mlp.gate_proj.weight"),
            Role::Up => ("ffn_up.weight", "mlp.up_proj.weight"),
            Role::Down => ("ffn_down.weight", "mlp.down_proj.weight"),
        };
        match self {
            Naming::Gguf => format!("blk.{layer}.{gguf}"),
            Naming::HuggingFace => format!("model.layers.{layer}.{hf}"),
        }
    }

    fn global(self, gguf: &str, hf: &str) -> String {
        match self {
            Naming::Gguf => gguf.to_owned(),
            Naming::HuggingFace => hf.to_owned(),
        }
    }
}

/// The shape `role` must have under `config`.
pub(crate) fn expected_shape(config: &ModelConfig, role: Role) -> Vec<usize> {
    let h = config.hidden_size;
    let q = config.num_heads * config.head_dim;
    let kv = config.num_kv_heads * config.head_dim;
    let i = config.intermediate_size;
    match role {
        Role::Embed | Role::LmHead => vec![config.vocab_size, h],
        Role::FinalNorm | Role::AttnNorm | Role::MlpNorm => vec![h],
        Role::Q => vec![q, h],
        Role::K | Role::V => vec![kv, h],
        Role::O => vec![h, q],
        Role::QBias => vec![q],
        Role::KBias | Role::VBias => vec![kv],
        Role::Gate | Role::Up => vec![i, h],
        Role::Down => vec![h, i],
    }
}

/// Where the weights go and how the file stores Q/K rows.
pub(crate) struct WeightDestination<'a> {
    /// Compute device.
    pub device: &'a Device,
    /// Dtype of every weight.
    pub dtype: DType,
    /// Q/K rows are in llama.cpp's interleaved order and must be put back in Hugging Face
    /// ("rotate half") order.
    pub interleaved_qk: bool,
}

/// The tensors of one block, in loading order (biases only when the configuration has them).
pub(crate) const LAYER_ROLES: [Role; 12] = [
    Role::AttnNorm,
    Role::Q,
    Role::K,
    Role::V,
    Role::O,
    Role::QBias,
    Role::KBias,
    Role::VBias,
    Role::MlpNorm,
    Role::Gate,
    Role::Up,
    Role::Down,
];

/// Checks and loads every weight of `config` from `source`.
///
/// Biases are read when `config.attention_bias` is set; the LM head is the embedding matrix
/// when `config.tie_word_embeddings` is set.
pub(crate) fn load_weights(
    config: &ModelConfig,
    naming: Naming,
    source: &mut dyn TensorSource,
    destination: &WeightDestination,
    progress: &dyn Progress,
) -> Result<Weights> {
    let wanted = |role: Role| match role {
        Role::QBias | Role::KBias | Role::VBias => config.attention_bias,
        Role::LmHead => !config.tie_word_embeddings,
        _ => true,
    };
    // Walked lazily and stopped at the first missing tensor: the layer count comes from the
    // file, and a plan collected up front for a claimed 16 million layers needs gigabytes
    // before the first check fails. Once every check passed, the count is at most the number
    // of tensors in the file.
    let plan = [Role::Embed, Role::FinalNorm, Role::LmHead]
        .into_iter()
        .filter(|&r| wanted(r))
        .map(|r| (r, 0))
        .chain((0..config.num_layers).flat_map(move |layer| {
            LAYER_ROLES
                .into_iter()
                .filter(move |&r| wanted(r))
                .map(move |r| (r, layer))
        }));
    let mut planned = 0;
    for (role, layer) in plan {
        planned += 1;
        let name = naming.name(role, layer);
        let expected = expected_shape(config, role);
        match source.shape(&name) {
            None => {
                return Err(ModelError::MissingTensor {
                    path: source.file_of(&name),
                    name,
                });
            }
            Some(got) if got != expected => {
                return Err(ModelError::ShapeMismatch {
                    path: source.file_of(&name),
                    name,
                    expected,
                    got,
                });
            }
            Some(_) => {}
        }
    }

    let mut loader = Loader {
        config,
        naming,
        source,
        destination,
        progress,
        done: 0,
        total: planned,
    };
    let embed = loader.tensor(Role::Embed, 0)?;
    let final_norm = loader.tensor(Role::FinalNorm, 0)?;
    let lm_head = if config.tie_word_embeddings {
        embed.clone()
    } else {
        loader.tensor(Role::LmHead, 0)?
    };
    let mut layers = Vec::with_capacity(config.num_layers);
    for layer in 0..config.num_layers {
        let attn_norm = loader.tensor(Role::AttnNorm, layer)?;
        let attn = AttentionWeights {
            q: loader.linear(Role::Q, Some(Role::QBias), layer)?,
            k: loader.linear(Role::K, Some(Role::KBias), layer)?,
            v: loader.linear(Role::V, Some(Role::VBias), layer)?,
            o: loader.linear(Role::O, None, layer)?,
        };
        let mlp_norm = loader.tensor(Role::MlpNorm, layer)?;
        let mlp = MlpWeights {
            gate: loader.linear(Role::Gate, None, layer)?,
            up: loader.linear(Role::Up, None, layer)?,
            down: loader.linear(Role::Down, None, layer)?,
        };
        layers.push(LayerWeights {
            attn_norm,
            attn,
            mlp_norm,
            mlp,
        });
    }
    Ok(Weights {
        embed,
        layers,
        final_norm,
        lm_head,
    })
}

/// Loads shape-checked tensors one by one, reporting progress.
struct Loader<'a> {
    config: &'a ModelConfig,
    naming: Naming,
    source: &'a mut dyn TensorSource,
    destination: &'a WeightDestination<'a>,
    progress: &'a dyn Progress,
    done: usize,
    total: usize,
}

impl Loader<'_> {
    fn tensor(&mut self, role: Role, layer: usize) -> Result<Tensor> {
        if self.progress.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let name = self.naming.name(role, layer);
        let mut t = self.source.load(&name, self.destination.device)?;
        if self.destination.interleaved_qk {
            match role {
                Role::Q | Role::QBias => t = deinterleave_rotary_rows(&t, self.config.num_heads)?,
                Role::K | Role::KBias => {
                    t = deinterleave_rotary_rows(&t, self.config.num_kv_heads)?
                }
                _ => {}
            }
        }
        let t = t
            .to_dtype(self.destination.dtype)?
            .to_device(self.destination.device)?;
        self.done += 1;
        self.progress.update(&Stage::Loading, self.done, self.total);
        Ok(t)
    }

    fn linear(&mut self, weight: Role, bias: Option<Role>, layer: usize) -> Result<Linear> {
        let w = self.tensor(weight, layer)?;
        let b = match bias {
            Some(b) if self.config.attention_bias => Some(self.tensor(b, layer)?),
            _ => None,
        };
        Ok(Linear::new(w, b))
    }
}

/// Undoes llama.cpp's Q/K row permutation.
///
/// llama.cpp's converter stores each head's rows as interleaved rotary pairs
/// `(0, d/2), (1, d/2+1), ...` (it computes `w.reshape(heads, 2, d/2, in).swapaxes(1, 2)`),
/// to suit its interleaved rotary kernel. This puts the rows back in Hugging Face order,
/// where rotary pairs are `(i, i + d/2)`: `w.reshape(heads, d/2, 2, in).swapaxes(1, 2)`.
/// Works on weights `[heads * d, in]` and biases `[heads * d]` alike.
pub(crate) fn deinterleave_rotary_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let rows = dims.first().copied().unwrap_or(0);
    if heads == 0 || rows == 0 || rows % heads != 0 || !(rows / heads).is_multiple_of(2) {
        return Err(ModelError::InvalidArgument(format!(
            "cannot split {rows} rows into {heads} rotary heads of even size"
        )));
    }
    let half = rows / heads / 2;
    let rest: usize = dims.iter().skip(1).product();
    Ok(w.reshape((heads, half, 2, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's forward permutation, as its converter writes it.
    fn interleave(w: &Tensor, heads: usize) -> Tensor {
        let dims = w.dims().to_vec();
        let half = dims[0] / heads / 2;
        let rest: usize = dims[1..].iter().product();
        w.reshape((heads, 2, half, rest))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape(dims)
            .unwrap()
    }

    #[test]
    fn deinterleave_inverts_llama_cpp_permutation() {
        let w = Tensor::arange(0f32, 2.0 * 8.0 * 3.0, &Device::Cpu)
            .unwrap()
            .reshape((16, 3))
            .unwrap();
        let back = deinterleave_rotary_rows(&interleave(&w, 2), 2).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        // Row order within one head of 8: HF rows 0..8 are stored as 0,4,1,5,2,6,3,7.
        let rows: Vec<f32> = interleave(&w, 2).get(0).unwrap().to_vec1().unwrap();
        assert_eq!(rows, vec![0.0, 1.0, 2.0]);
        let stored: Vec<u32> = (0..8)
            .map(|r| (interleave(&w, 2).get(r).unwrap().to_vec1::<f32>().unwrap()[0] / 3.0) as u32)
            .collect();
        assert_eq!(stored, vec![0, 4, 1, 5, 2, 6, 3, 7]);
        let bias = Tensor::arange(0f32, 8.0, &Device::Cpu).unwrap();
        let back = deinterleave_rotary_rows(&interleave(&bias, 1), 1).unwrap();
        assert_eq!(
            back.to_vec1::<f32>().unwrap(),
            bias.to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn deinterleave_refuses_odd_heads() {
        let w = Tensor::zeros((6, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(deinterleave_rotary_rows(&w, 2).is_err());
        assert!(deinterleave_rotary_rows(&w, 4).is_err());
        assert!(deinterleave_rotary_rows(&w, 0).is_err());
    }
}

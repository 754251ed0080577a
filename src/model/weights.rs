//! The weights of a model, by role, as candle tensors on the compute device.
//!
//! Q and K projection rows are in Hugging Face order (rotary pairs `(i, i + head_dim/2)`,
//! "rotate half"); loaders of llama.cpp GGUF files undo llama.cpp's interleaving permutation.

use candle_core::Tensor;
use candle_nn::Linear;

/// Projections of one attention block.
#[derive(Clone, Debug)]
pub struct AttentionWeights {
    /// `[num_heads * head_dim, hidden]`, optional bias.
    pub q: Linear,
    /// `[num_kv_heads * head_dim, hidden]`, optional bias.
    pub k: Linear,
    /// `[num_kv_heads * head_dim, hidden]`, optional bias.
    pub v: Linear,
    /// `[hidden, num_heads * head_dim]`, no bias.
    pub o: Linear,
}

/// SwiGLU MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Clone, Debug)]
pub struct MlpWeights {
    /// `[intermediate, hidden]`.
    pub gate: Linear,
    /// `[intermediate, hidden]`.
    pub up: Linear,
    /// `[hidden, intermediate]`.
    pub down: Linear,
}

/// One transformer block.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// RMSNorm weight before attention, `[hidden]`.
    pub attn_norm: Tensor,
    /// Attention projections.
    pub attn: AttentionWeights,
    /// RMSNorm weight before the MLP, `[hidden]`.
    pub mlp_norm: Tensor,
    /// MLP projections.
    pub mlp: MlpWeights,
}

/// All weights of a model.
#[derive(Clone, Debug)]
pub struct Weights {
    /// Token embeddings, `[vocab, hidden]`.
    pub embed: Tensor,
    /// Transformer blocks, first to last.
    pub layers: Vec<LayerWeights>,
    /// Final RMSNorm weight, `[hidden]`.
    pub final_norm: Tensor,
    /// LM head, `[vocab, hidden]` (the embedding matrix itself when tied).
    pub lm_head: Tensor,
}

//! Seeded random weights of any shape: tiny models for tests, full-size ones for benchmarks run
//! before (or without) a checkpoint.

use candle_core::{DType, Device, Tensor};
use candle_nn::Linear;

use super::config::ModelConfig;
use super::error::Result;
use super::transformer::Transformer;
use super::weights::{AttentionWeights, LayerWeights, MlpWeights, Weights};
use crate::rng::SplitMix64;

/// Builds tensors from one stream of random numbers.
struct Maker<'a> {
    rng: SplitMix64,
    device: &'a Device,
    dtype: DType,
}

impl Maker<'_> {
    /// Uniform in `[-1, 1)`, from the top 24 bits of a draw.
    fn symmetric(&mut self) -> f32 {
        (self.rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// `shape` filled uniformly in `center ± spread`.
    fn tensor(&mut self, shape: &[usize], center: f32, spread: f32) -> Result<Tensor> {
        let count = shape.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|_| center + spread * self.symmetric())
            .collect();
        Ok(Tensor::from_vec(values, shape, self.device)?.to_dtype(self.dtype)?)
    }

    /// A `[out, inp]` projection scaled like a trained one (`1/sqrt(inp)`), with an optional bias.
    fn linear(&mut self, out: usize, inp: usize, bias: bool) -> Result<Linear> {
        let weight = self.tensor(&[out, inp], 0.0, (3.0 / inp as f32).sqrt())?;
        let bias = if bias {
            Some(self.tensor(&[out], 0.0, 0.1)?)
        } else {
            None
        };
        Ok(Linear::new(weight, bias))
    }
}

/// Random weights for `config`, the same for the same seed on any device.
pub fn random_weights(
    config: &ModelConfig,
    seed: u64,
    device: &Device,
    dtype: DType,
) -> Result<Weights> {
    let c = config;
    let mut make = Maker {
        rng: SplitMix64::new(seed),
        device,
        dtype,
    };
    let (hidden, q_out, kv_out) = (
        c.hidden_size,
        c.num_heads * c.head_dim,
        c.num_kv_heads * c.head_dim,
    );
    let embed = make.tensor(&[c.vocab_size, hidden], 0.0, 1.0)?;
    let layers = (0..c.num_layers)
        .map(|_| {
            Ok(LayerWeights {
                attn_norm: make.tensor(&[hidden], 1.0, 0.2)?,
                attn: AttentionWeights {
                    q: make.linear(q_out, hidden, c.attention_bias)?,
                    k: make.linear(kv_out, hidden, c.attention_bias)?,
                    v: make.linear(kv_out, hidden, c.attention_bias)?,
                    o: make.linear(hidden, q_out, false)?,
                },
                mlp_norm: make.tensor(&[hidden], 1.0, 0.2)?,
                mlp: MlpWeights {
                    gate: make.linear(c.intermediate_size, hidden, false)?,
                    up: make.linear(c.intermediate_size, hidden, false)?,
                    down: make.linear(hidden, c.intermediate_size, false)?,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let final_norm = make.tensor(&[hidden], 1.0, 0.2)?;
    let lm_head = if c.tie_word_embeddings {
        embed.clone()
    } else {
        make.tensor(&[c.vocab_size, hidden], 0.0, 0.1)?
    };
    Ok(Weights {
        embed,
        layers,
        final_norm,
        lm_head,
    })
}

impl Transformer {
    /// A transformer with [`random_weights`].
    pub fn random(config: ModelConfig, seed: u64, device: Device, dtype: DType) -> Result<Self> {
        let weights = random_weights(&config, seed, &device, dtype)?;
        Transformer::new(config, weights, device, dtype)
    }
}

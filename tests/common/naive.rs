//! Tiny random models built in memory, and a naive f64 reference transformer written with plain
//! loops, independent of the library's tensor code (forward-pass tests).
//!
//! Use: `mod common;` then `common::naive::{Naive, tiny_model, ...}`.

#![allow(
    dead_code,
    reason = "each test binary uses only some of the shared helpers"
)]

use candle_core::{DType, Device, Tensor};
use judgeq::attention::AttentionRows;
use judgeq::model::{Architecture, Capture, Llama3RopeScaling, ModelConfig, Transformer};
use judgeq::progress::Silent;

/// A tiny GQA llama: 2 layers, hidden 32, 4 query heads over 2 KV heads of dimension 8.
pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        hidden_size: 32,
        intermediate_size: 48,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 8,
        vocab_size: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 256,
        tie_word_embeddings: true,
        attention_bias: false,
    }
}

/// The tiny model with Llama 3.1 rotary scaling. Its wavelengths (6.3, 63, 628, 6283) cover all
/// three bands of an original context of 1024: kept (< 256), interpolated, and scaled (> 1024).
pub fn tiny_llama3_config() -> ModelConfig {
    ModelConfig {
        rope_scaling: Some(Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 1024,
        }),
        ..tiny_config()
    }
}

/// The tiny model as Qwen2: q/k/v biases, untied LM head, 3 query heads per KV head.
pub fn tiny_qwen2_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Qwen2,
        num_heads: 6,
        num_kv_heads: 2,
        hidden_size: 48,
        attention_bias: true,
        tie_word_embeddings: false,
        rope_theta: 1_000_000.0,
        rms_norm_eps: 1e-6,
        ..tiny_config()
    }
}

pub fn tiny_model(config: ModelConfig, seed: u64) -> Transformer {
    Transformer::random(config, seed, Device::Cpu, DType::F32).unwrap()
}

/// Deterministic token ids.
pub fn ids(n: usize, vocab: usize, salt: u64) -> Vec<u32> {
    (0..n as u64)
        .map(|i| ((i * 37 + salt * 11 + 5) % vocab as u64) as u32)
        .collect()
}

/// The attention rows of every token of `ids` after the first `prompt`, over the first `prompt`
/// keys, from one forward of all of `ids` in a fresh cache: the reference for rows a test
/// captured after a cached prompt.
pub fn rows_after_prompt(model: &Transformer, ids: &[u32], prompt: usize) -> AttentionRows {
    let mut fresh = model.new_cache(ids.len()).unwrap();
    model
        .forward(
            &model.embed(ids).unwrap(),
            &mut fresh,
            &Capture::rows(prompt, prompt),
            &Silent,
        )
        .unwrap()
        .rows
        .unwrap()
}

type Mat = Vec<Vec<f64>>;

fn matrix(t: &Tensor) -> Mat {
    t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

fn vector(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

struct Projection {
    weight: Mat,
    bias: Option<Vec<f64>>,
}

impl Projection {
    fn from(linear: &candle_nn::Linear) -> Self {
        Self {
            weight: matrix(linear.weight()),
            bias: linear.bias().map(vector),
        }
    }

    fn apply(&self, x: &[f64]) -> Vec<f64> {
        self.weight
            .iter()
            .enumerate()
            .map(|(o, row)| {
                row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
                    + self.bias.as_ref().map_or(0.0, |b| b[o])
            })
            .collect()
    }
}

struct NaiveLayer {
    attn_norm: Vec<f64>,
    q: Projection,
    k: Projection,
    v: Projection,
    o: Projection,
    mlp_norm: Vec<f64>,
    gate: Projection,
    up: Projection,
    down: Projection,
}

/// Every probability and logit of one naive run.
pub struct NaiveRun {
    /// `[position][vocab]`.
    pub logits: Vec<Vec<f64>>,
    /// `[layer][query head][query position][key position]`, 0 where a key was not attended.
    pub probs: Vec<Vec<Vec<Vec<f64>>>>,
    /// Pre-RoPE queries `[layer][position][query_heads * head_dim]`.
    pub queries: Vec<Vec<Vec<f64>>>,
    /// Post-RoPE keys `[layer][position][kv_heads * head_dim]`.
    pub keys: Vec<Vec<Vec<f64>>>,
    /// Values `[layer][position][kv_heads * head_dim]`.
    pub values: Vec<Vec<Vec<f64>>>,
}

/// The reference transformer on f64 vectors.
pub struct Naive {
    config: ModelConfig,
    embed: Mat,
    layers: Vec<NaiveLayer>,
    final_norm: Vec<f64>,
    lm_head: Mat,
}

impl Naive {
    pub fn from(model: &Transformer) -> Self {
        let w = &model.weights;
        let layers = w
            .layers
            .iter()
            .map(|l| NaiveLayer {
                attn_norm: vector(&l.attn_norm),
                q: Projection::from(&l.attn.q),
                k: Projection::from(&l.attn.k),
                v: Projection::from(&l.attn.v),
                o: Projection::from(&l.attn.o),
                mlp_norm: vector(&l.mlp_norm),
                gate: Projection::from(&l.mlp.gate),
                up: Projection::from(&l.mlp.up),
                down: Projection::from(&l.mlp.down),
            })
            .collect();
        Self {
            config: model.config.clone(),
            embed: matrix(&w.embed),
            layers,
            final_norm: vector(&w.final_norm),
            lm_head: matrix(&w.lm_head),
        }
    }

    pub fn embed(&self, ids: &[u32]) -> Vec<Vec<f64>> {
        ids.iter()
            .map(|&i| self.embed[i as usize].clone())
            .collect()
    }

    /// Inverse frequencies written from the transformers formulas (default and `llama3`).
    fn inverse_frequencies(&self) -> Vec<f64> {
        let c = &self.config;
        let d = c.head_dim;
        (0..d / 2)
            .map(|i| {
                let base = 1.0 / c.rope_theta.powf((2 * i) as f64 / d as f64);
                let Some(s) = &c.rope_scaling else {
                    return base;
                };
                let old = s.original_max_position_embeddings as f64;
                let wavelen = 2.0 * std::f64::consts::PI / base;
                let scaled = if wavelen > old / s.low_freq_factor {
                    base / s.factor
                } else {
                    base
                };
                let smooth =
                    (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                let smoothed = (1.0 - smooth) * scaled / s.factor + smooth * scaled;
                let medium =
                    wavelen >= old / s.high_freq_factor && wavelen <= old / s.low_freq_factor;
                if medium { smoothed } else { scaled }
            })
            .collect()
    }

    fn rms_norm(&self, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mean = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let scale = 1.0 / (mean + self.config.rms_norm_eps).sqrt();
        x.iter().zip(w).map(|(v, w)| v * scale * w).collect()
    }

    /// Rotates each head of `x` (heads * d) at `position`, pairing `i` with `i + d/2`.
    fn rotate(&self, x: &mut [f64], position: usize, inv_freq: &[f64]) {
        let d = self.config.head_dim;
        for head in x.chunks_mut(d) {
            for (i, f) in inv_freq.iter().enumerate() {
                let (s, c) = (position as f64 * f).sin_cos();
                let (a, b) = (head[i], head[i + d / 2]);
                head[i] = a * c - b * s;
                head[i + d / 2] = a * s + b * c;
            }
        }
    }

    /// Runs `inputs` (embeddings) at positions `0..`; query `q` of head `h` in layer `l` attends
    /// to key `k <= q` only where `allowed(l, h, q, k)`; the kept keys are gathered and the
    /// softmax runs over them alone (entries physically removed, original positions kept).
    pub fn run(
        &self,
        inputs: &[Vec<f64>],
        allowed: &dyn Fn(usize, usize, usize, usize) -> bool,
    ) -> NaiveRun {
        let c = &self.config;
        let (d, heads, group) = (c.head_dim, c.num_heads, c.num_heads / c.num_kv_heads);
        let inv_freq = self.inverse_frequencies();
        let t = inputs.len();
        let mut x: Vec<Vec<f64>> = inputs.to_vec();
        let mut probs = Vec::new();
        let (mut all_queries, mut all_keys, mut all_values) = (Vec::new(), Vec::new(), Vec::new());
        for (l, layer) in self.layers.iter().enumerate() {
            let normed: Vec<Vec<f64>> = x
                .iter()
                .map(|r| self.rms_norm(r, &layer.attn_norm))
                .collect();
            let mut q: Vec<Vec<f64>> = normed.iter().map(|r| layer.q.apply(r)).collect();
            let mut k: Vec<Vec<f64>> = normed.iter().map(|r| layer.k.apply(r)).collect();
            let v: Vec<Vec<f64>> = normed.iter().map(|r| layer.v.apply(r)).collect();
            all_queries.push(q.clone());
            for p in 0..t {
                self.rotate(&mut q[p], p, &inv_freq);
                self.rotate(&mut k[p], p, &inv_freq);
            }
            all_keys.push(k.clone());
            all_values.push(v.clone());
            let mut layer_probs = vec![vec![vec![0.0; t]; t]; heads];
            let mut attended = vec![vec![0.0; heads * d]; t];
            for h in 0..heads {
                let g = h / group;
                for p in 0..t {
                    let kept: Vec<usize> = (0..=p).filter(|&j| allowed(l, h, p, j)).collect();
                    let qh = &q[p][h * d..(h + 1) * d];
                    let scores: Vec<f64> = kept
                        .iter()
                        .map(|&j| {
                            let kh = &k[j][g * d..(g + 1) * d];
                            qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f64>() / (d as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    for (&j, s) in kept.iter().zip(&scores) {
                        let pr = (s - max).exp() / total;
                        layer_probs[h][p][j] = pr;
                        for i in 0..d {
                            attended[p][h * d + i] += pr * v[j][g * d + i];
                        }
                    }
                }
            }
            probs.push(layer_probs);
            for p in 0..t {
                let o = layer.o.apply(&attended[p]);
                for (xi, oi) in x[p].iter_mut().zip(o) {
                    *xi += oi;
                }
                let h = self.rms_norm(&x[p], &layer.mlp_norm);
                let gate = layer.gate.apply(&h);
                let up = layer.up.apply(&h);
                let act: Vec<f64> = gate
                    .iter()
                    .zip(&up)
                    .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                    .collect();
                let down = layer.down.apply(&act);
                for (xi, di) in x[p].iter_mut().zip(down) {
                    *xi += di;
                }
            }
        }
        let logits = x
            .iter()
            .map(|r| {
                let h = self.rms_norm(r, &self.final_norm);
                self.lm_head
                    .iter()
                    .map(|row| row.iter().zip(&h).map(|(a, b)| a * b).sum())
                    .collect()
            })
            .collect();
        NaiveRun {
            logits,
            probs,
            queries: all_queries,
            keys: all_keys,
            values: all_values,
        }
    }

    /// `‖v_j W_o^hᵀ‖₁` of a run's values, `[layer][query head][position]`: query head `h`'s
    /// output for a single value `v_j` of its KV head, mapped through the head's `head_dim`
    /// columns of the output projection, summed in absolute value (CriticalKV's weight).
    pub fn projected_value_norms(&self, run: &NaiveRun) -> Vec<Vec<Vec<f64>>> {
        let c = &self.config;
        let (d, group) = (c.head_dim, c.num_heads / c.num_kv_heads);
        self.layers
            .iter()
            .zip(&run.values)
            .map(|(layer, values)| {
                (0..c.num_heads)
                    .map(|h| {
                        let g = h / group;
                        values
                            .iter()
                            .map(|v| {
                                layer
                                    .o
                                    .weight
                                    .iter()
                                    .map(|row| {
                                        (0..d)
                                            .map(|i| row[h * d + i] * v[g * d + i])
                                            .sum::<f64>()
                                            .abs()
                                    })
                                    .sum()
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    /// Full causal attention.
    pub fn run_causal(&self, inputs: &[Vec<f64>]) -> NaiveRun {
        self.run(inputs, &|_, _, _, _| true)
    }

    /// The run's queries after RoPE, `[layer][position][query_heads * head_dim]`.
    pub fn post_rope_queries(&self, run: &NaiveRun) -> Vec<Vec<Vec<f64>>> {
        let inv_freq = self.inverse_frequencies();
        run.queries
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .enumerate()
                    .map(|(position, q)| {
                        let mut q = q.clone();
                        self.rotate(&mut q, position, &inv_freq);
                        q
                    })
                    .collect()
            })
            .collect()
    }
}

/// Index of the largest logit (first on ties).
pub fn argmax(xs: &[f64]) -> usize {
    xs.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > xs[best] { i } else { best })
}

/// Largest absolute difference between library logits and reference logits.
pub fn logits_error(got: &Tensor, want: &[f64]) -> f64 {
    let got = got.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

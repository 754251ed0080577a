//! The memory a run needs, estimated from the model's shape before it starts, and the refusal
//! when the device has less free: a typed error naming both figures, instead of the allocator
//! aborting the process or the GPU failing halfway through a prefill.
//!
//! The estimate, in bytes (`b` the dtype's size, `L` layers, `H` hidden, `I` intermediate,
//! `Q = heads x head_dim`, `K = kv_heads x head_dim`, `n` input rows, `c` cache positions):
//!
//! - **weights**: every weight tensor, already resident (not allocated again);
//! - **KV cache**: `2 L c K b`;
//! - **activations** of one layer (the layers run one after the other): `n (5H + 3Q + 3K + 2I) b`
//!   on the CPU in f32 (SwiGLU and residuals in place), `n (6H + 3Q + 3K + 4I) b` elsewhere;
//!   on the CPU in f16/bf16 candle's matmul widens its operands to f32, adding
//!   `4 (largest weight + n (H + I))` for the duration of one product;
//! - **attention block**: the fused kernel's scratch, `4 x threads x rows x keys`; the portable
//!   path's chunk, `heads x rows x keys x (12 + 2b)` (scores, masked scores and probabilities in
//!   f32, the product and the probabilities in the model dtype), with `rows` from
//!   [`super::chunking`];
//! - **captured rows**: `4 L heads key_limit (captured rows + 1 when accumulating)`, in host
//!   memory whatever the device.

use candle_core::DType;

use super::capture::Capture;
use super::chunking::{block_rows, block_scores};
use super::config::ModelConfig;
use super::device_memory::{FreeMemory, free_memory};
use super::error::{ModelError, Result};
use super::transformer::Transformer;
use super::weights::Weights;

/// One run as the estimate sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Rows of the largest forward pass (the prompt, for a prefill).
    pub input_rows: usize,
    /// Positions the KV cache is made for.
    pub cache_positions: usize,
    /// Attention rows captured over the whole run (window, soft and decoded rows together).
    pub captured_rows: usize,
    /// Keys of every captured row.
    pub key_limit: usize,
    /// Whether the attention each key receives is summed too.
    pub accumulate: bool,
}

impl RunPlan {
    /// A prefill of `tokens` into a cache of `cache_positions`, recording what `capture` asks.
    pub fn prefill(tokens: usize, cache_positions: usize, capture: &Capture) -> Self {
        let records = capture.records_anything(tokens);
        Self {
            input_rows: tokens,
            cache_positions,
            captured_rows: capture.row_count(tokens),
            key_limit: if records { capture.key_limit } else { 0 },
            accumulate: capture.accumulate,
        }
    }
}

/// Bytes a run needs, by what holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The weights, already resident on the device.
    pub weights: u64,
    /// The KV cache.
    pub kv_cache: u64,
    /// Hidden states and projections of one layer over the input rows.
    pub activations: u64,
    /// One block of attention scores (see [`super::chunking`]).
    pub attention_block: u64,
    /// Captured rows and accumulated sums, in host memory.
    pub captured: u64,
    /// Whether the device is a GPU (captured rows then live in host memory, apart).
    pub on_gpu: bool,
}

impl MemoryEstimate {
    /// Bytes the run allocates on the compute device, the resident weights left out.
    pub fn device_bytes(&self) -> u64 {
        let captured = if self.on_gpu { 0 } else { self.captured };
        self.kv_cache + self.activations + self.attention_block + captured
    }

    /// Bytes the run allocates in host memory apart from the device (the captured rows of a
    /// GPU run; 0 on the CPU, where they count in [`MemoryEstimate::device_bytes`]).
    pub fn host_bytes(&self) -> u64 {
        if self.on_gpu { self.captured } else { 0 }
    }

    /// Everything the run holds at its peak on the device, weights included.
    pub fn device_total(&self) -> u64 {
        self.weights + self.device_bytes()
    }

    /// The parts of [`MemoryEstimate::device_bytes`], for messages: `KV cache 0.13 GB +
    /// activations 4.23 GB + attention block 0.02 GB + captured rows 0.07 GB` (captured rows
    /// only on the CPU).
    pub fn breakdown(&self) -> String {
        let parts = format!(
            "KV cache {} + activations {} + attention block {}",
            gigabytes(self.kv_cache),
            gigabytes(self.activations),
            gigabytes(self.attention_block),
        );
        if self.on_gpu {
            parts
        } else {
            format!("{parts} + captured rows {}", gigabytes(self.captured))
        }
    }

    /// Refuses the run when the device (or, for a GPU, the host) has less free than it
    /// needs; `device` names it in the message. Unknown free memory is not a refusal.
    pub fn check(&self, free: &FreeMemory, device: &str) -> Result<()> {
        let short =
            |needed: u64, available: Option<u64>, place: &str, detail: String| match available {
                Some(available) if needed > available => Err(ModelError::OutOfMemory {
                    device: place.to_owned(),
                    needed: Some(needed),
                    available: Some(available),
                    detail,
                }),
                _ => Ok(()),
            };
        short(self.device_bytes(), free.device, device, self.breakdown())?;
        if self.on_gpu {
            let detail = format!("captured rows {}", gigabytes(self.captured));
            short(self.host_bytes(), free.host, "the host", detail)?;
        }
        Ok(())
    }
}

/// `12.34 GB`.
pub fn gigabytes(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

impl Weights {
    /// Bytes of every weight tensor (a tied LM head counted once).
    pub fn bytes(&self) -> u64 {
        let size = |t: &candle_core::Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        let linear = |l: &candle_nn::Linear| size(l.weight()) + l.bias().map_or(0, size);
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                size(&l.attn_norm)
                    + size(&l.mlp_norm)
                    + [&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o]
                        .into_iter()
                        .chain([&l.mlp.gate, &l.mlp.up, &l.mlp.down])
                        .map(linear)
                        .sum::<u64>()
            })
            .sum();
        let head = if self.lm_head.id() == self.embed.id() {
            0
        } else {
            size(&self.lm_head)
        };
        size(&self.embed) + layers + size(&self.final_norm) + head
    }
}

/// Shapes and settings the estimate reads.
#[derive(Clone, Copy, Debug)]
pub struct EstimateShape<'a> {
    /// The model's shape.
    pub config: &'a ModelConfig,
    /// Dtype of weights and activations.
    pub dtype: DType,
    /// Whether the model runs on the CPU.
    pub cpu: bool,
    /// Threads the fused kernel runs on (each holds one block of scores).
    pub threads: usize,
}

impl EstimateShape<'_> {
    /// The estimate for `plan`, given `weights` bytes already resident.
    pub fn estimate(&self, plan: &RunPlan, weights: u64) -> MemoryEstimate {
        let c = self.config;
        let b = self.dtype.size_in_bytes() as u64;
        let (n, hidden, inter) = (
            plan.input_rows as u64,
            c.hidden_size as u64,
            c.intermediate_size as u64,
        );
        let q = (c.num_heads * c.head_dim) as u64;
        let kv = (c.num_kv_heads * c.head_dim) as u64;
        let fused = self.cpu && self.dtype == DType::F32;
        let row_width = if fused {
            5 * hidden + 3 * q + 3 * kv + 2 * inter
        } else {
            6 * hidden + 3 * q + 3 * kv + 4 * inter
        };
        let widened = if self.cpu && !fused {
            let largest = (hidden * inter)
                .max(hidden * q)
                .max(c.vocab_size as u64 * hidden);
            4 * (largest + n * (hidden + inter))
        } else {
            0
        };
        let keys = plan.cache_positions.max(plan.input_rows);
        let rows = block_rows(fused, keys, c.num_heads).min(plan.input_rows.max(1));
        let scores = block_scores(fused, rows, keys, c.num_heads) as u64;
        let attention_block = if fused {
            4 * self.threads.max(1) as u64 * scores
        } else {
            scores * (12 + 2 * b)
        };
        let sums = u64::from(plan.accumulate && plan.key_limit > 0);
        MemoryEstimate {
            weights,
            kv_cache: 2 * c.num_layers as u64 * plan.cache_positions as u64 * kv * b,
            activations: n * row_width * b + widened,
            attention_block,
            captured: 4
                * c.num_layers as u64
                * c.num_heads as u64
                * plan.key_limit as u64
                * (plan.captured_rows as u64 + sums),
            on_gpu: !self.cpu,
        }
    }
}

impl Transformer {
    /// The memory `plan` needs with this model on its device.
    pub fn memory_estimate(&self, plan: &RunPlan) -> MemoryEstimate {
        let shape = EstimateShape {
            config: &self.config,
            dtype: self.dtype,
            cpu: self.device.is_cpu(),
            threads: rayon::current_num_threads(),
        };
        shape.estimate(plan, self.weights.bytes())
    }

    /// Estimates `plan` and refuses it with [`ModelError::OutOfMemory`] when the device has
    /// less free memory than it needs; returns the estimate otherwise.
    pub fn check_memory(&self, plan: &RunPlan) -> Result<MemoryEstimate> {
        let estimate = self.memory_estimate(plan);
        estimate.check(&free_memory(&self.device), &device_name(&self.device))?;
        Ok(estimate)
    }
}

/// `the CPU` or `cuda:N`, for messages.
pub fn device_name(device: &candle_core::Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "the CPU".to_owned(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

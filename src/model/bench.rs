//! Prefill throughput and memory, and decoding under many keep masks batched against one by
//! one, for `judgeq bench`.

use std::time::Instant;

use super::batch_decode::BatchOptions;
use super::capture::Capture;
use super::config::{Architecture, Llama3RopeScaling, ModelConfig};
use super::device_memory::{PeakWatch, peak_resident_bytes, reset_peak_resident};
use super::error::Result;
use super::generate::GenerateOptions;
use super::memory::{MemoryEstimate, RunPlan};
use super::transformer::Transformer;
use crate::attention::KeepMask;
use crate::progress::{Progress, Stage};
use crate::rng::SplitMix64;

/// Window rows a benchmark with capture records (SnapKV's and Judge Q's 32).
pub const BENCH_WINDOW: usize = 32;

/// One measured prefill.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// Prompt length.
    pub tokens: usize,
    /// Whether window rows (the last [`BENCH_WINDOW`] over every key) and H2O's accumulated
    /// attention were captured.
    pub capture: bool,
    /// Wall time of the prefill.
    pub seconds: f64,
    /// `tokens / seconds`.
    pub tokens_per_second: f64,
    /// CPU time of the process (all threads) during the prefill, if known (Linux); on a machine
    /// shared with other jobs it shows the work done where wall time shows the share obtained.
    pub cpu_seconds: Option<f64>,
    /// Peak resident memory of the process during this prefill (`VmHWM`, reset before each
    /// length where the kernel allows it, else the peak since the process started), if known.
    pub peak_rss_bytes: Option<u64>,
    /// On a GPU, the peak memory in use on the device during this prefill (read every 2 ms,
    /// the whole device's), if known.
    pub peak_device_bytes: Option<u64>,
    /// What the run was estimated to need before it started (see [`super::memory`]).
    pub estimate: MemoryEstimate,
}

/// The shape of SmolLM2-135M-Instruct, the default model (30 layers, hidden 576, 9 query heads,
/// 3 KV heads, FFN 1536, vocabulary 49152): random weights of this shape run as fast as the real
/// ones.
pub fn default_model_shape() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        hidden_size: 576,
        intermediate_size: 1536,
        num_layers: 30,
        num_heads: 9,
        num_kv_heads: 3,
        head_dim: 64,
        vocab_size: 49152,
        rms_norm_eps: 1e-5,
        rope_theta: 100_000.0,
        rope_scaling: None,
        max_position_embeddings: 8192,
        tie_word_embeddings: true,
        attention_bias: false,
    }
}

/// A tiny llama (2 layers, hidden 64, 4 query heads over 2 KV heads of 16, FFN 128, vocabulary
/// 256) whose random weights check numbers, not speed: a GPU against the CPU in a second.
pub fn tiny_shape() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        hidden_size: 64,
        intermediate_size: 128,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 16,
        vocab_size: 256,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 4096,
        tie_word_embeddings: true,
        attention_bias: false,
    }
}

/// Llama-3.1-8B's shape with `layers` blocks and a vocabulary of `vocab`: hidden 4096, 32 query
/// heads over 8 KV heads of 128, FFN 14336, rotary base 500000 with Llama 3.1's scaling, context
/// 131072. The real model has 32 layers and 128256 tokens; a smaller vocabulary keeps a random
/// checkpoint small without changing a prefill's cost (the LM head runs on the last row only).
pub fn llama31_8b_shape(layers: usize, vocab: usize) -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        hidden_size: 4096,
        intermediate_size: 14336,
        num_layers: layers,
        num_heads: 32,
        num_kv_heads: 8,
        head_dim: 128,
        vocab_size: vocab,
        rms_norm_eps: 1e-5,
        rope_theta: 500_000.0,
        rope_scaling: Some(Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        }),
        max_position_embeddings: 131_072,
        tie_word_embeddings: false,
        attention_bias: false,
    }
}

/// The capture a benchmark prefill of `n` tokens records: the last [`BENCH_WINDOW`] rows over
/// every key and the accumulated attention, or nothing.
fn bench_capture(n: usize, capture: bool) -> Capture {
    if capture {
        Capture::rows(n.saturating_sub(BENCH_WINDOW), n).with_accumulation()
    } else {
        Capture::NONE
    }
}

/// Times one prefill of a token sequence of each length (deterministic ids), plain or with
/// capture. Each length runs once after a short warm-up prefill, and is refused before it
/// starts when the device has too little free memory for it ([`Transformer::check_memory`]).
pub fn prefill_benchmark(
    transformer: &Transformer,
    lengths: &[usize],
    capture: bool,
    progress: &dyn Progress,
) -> Result<Vec<BenchRow>> {
    let ids_of = |n: usize| bench_ids(n, transformer.config.vocab_size);
    let warm_up = transformer.embed(&ids_of(16))?;
    let mut cache = transformer.new_cache(16)?;
    transformer.forward(&warm_up, &mut cache, &Capture::NONE, progress)?;

    let mut rows = Vec::with_capacity(lengths.len());
    for &n in lengths {
        let wanted = bench_capture(n, capture);
        let estimate = transformer.check_memory(&RunPlan::prefill(n, n, &wanted))?;
        reset_peak_resident();
        let watch = PeakWatch::start(&transformer.device);
        let input = transformer.embed(&ids_of(n))?;
        let mut cache = transformer.new_cache(n)?;
        let cpu_before = process_cpu_seconds();
        let start = Instant::now();
        let output = transformer.forward(&input, &mut cache, &wanted, progress)?;
        transformer.device.synchronize()?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu_seconds = process_cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let peak_device_bytes = watch.and_then(PeakWatch::finish);
        let peak_rss_bytes = peak_resident_bytes();
        drop(output);
        rows.push(BenchRow {
            tokens: n,
            capture,
            seconds,
            tokens_per_second: n as f64 / seconds,
            cpu_seconds,
            peak_rss_bytes,
            peak_device_bytes,
            estimate,
        });
    }
    Ok(rows)
}

/// Tokens every answer of the decode benchmark produces.
pub const BENCH_DECODE_TOKENS: usize = 32;

/// One prompt length of the decode benchmark: the same masks decoded one by one and batched.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeBenchRow {
    /// Prompt length.
    pub tokens: usize,
    /// Keep masks decoded.
    pub masks: usize,
    /// Wall time of one decode per mask, one after the other.
    pub sequential_seconds: f64,
    /// Wall time of all masks decoded as one batch.
    pub batched_seconds: f64,
    /// CPU time of the process (all threads) during the one-by-one decodes, if known (Linux).
    pub sequential_cpu_seconds: Option<f64>,
    /// CPU time of the process during the batched decode, if known.
    pub batched_cpu_seconds: Option<f64>,
    /// Masks whose batched answer equals the one-by-one answer.
    pub equal_answers: usize,
}

/// For each length, prefills one prompt (deterministic ids), then times decoding
/// [`BENCH_DECODE_TOKENS`] tokens under `masks` seeded keep masks (a quarter of the entries of
/// each layer and query head): one decode per mask, then all masks as one batch. No token
/// stops an answer, so both do the same number of steps. A short warm-up runs both first.
pub fn decode_masks_benchmark(
    transformer: &Transformer,
    lengths: &[usize],
    masks: usize,
    progress: &dyn Progress,
) -> Result<Vec<DecodeBenchRow>> {
    decode_both_ways(transformer, 16, masks.min(2), 2, progress)?;
    lengths
        .iter()
        .map(|&n| decode_both_ways(transformer, n, masks, BENCH_DECODE_TOKENS, progress))
        .collect()
}

/// Prefills `n` tokens and decodes `tokens` under `count` masks one by one, then batched.
fn decode_both_ways(
    transformer: &Transformer,
    n: usize,
    count: usize,
    tokens: usize,
    progress: &dyn Progress,
) -> Result<DecodeBenchRow> {
    let c = &transformer.config;
    let ids = bench_ids(n, c.vocab_size);
    let mut cache = transformer.new_cache(n + tokens)?;
    let prefill = transformer.forward(
        &transformer.embed(&ids)?,
        &mut cache,
        &Capture::NONE,
        progress,
    )?;
    let masks: Vec<KeepMask> = (0..count as u64)
        .map(|stream| {
            let mut rng = SplitMix64::stream(n as u64, stream);
            KeepMask::from_shape_fn((c.num_layers, c.num_heads, n), |_| rng.below(4) == 0)
        })
        .collect();

    let cpu_before = process_cpu_seconds();
    let start = Instant::now();
    let mut sequential = Vec::with_capacity(count);
    for (index, mask) in masks.iter().enumerate() {
        let options = GenerateOptions {
            max_tokens: tokens,
            keep: Some(mask.clone()),
            stage: Stage::DecodingUnderEviction(format!("mask {} of {count}", index + 1)),
            ..GenerateOptions::default()
        };
        let generation = transformer.generate(&mut cache, &prefill.last_logits, &options, progress);
        cache.truncate(n)?;
        sequential.push(generation?.ids);
    }
    let sequential_seconds = start.elapsed().as_secs_f64();
    let cpu_between = process_cpu_seconds();

    let options = BatchOptions {
        max_tokens: tokens,
        stage: Stage::DecodingUnderEviction(format!("{count} masks batched")),
        ..BatchOptions::default()
    };
    let refs: Vec<&KeepMask> = masks.iter().collect();
    let start = Instant::now();
    let batched =
        transformer.generate_batch(&cache, &prefill.last_logits, &refs, &options, progress)?;
    let batched_seconds = start.elapsed().as_secs_f64();
    let cpu_after = process_cpu_seconds();
    let cpu_spent = |from: Option<f64>, to: Option<f64>| to.zip(from).map(|(t, f)| t - f);
    let equal_answers = sequential
        .iter()
        .zip(&batched)
        .filter(|(one, batch)| **one == batch.ids)
        .count();
    Ok(DecodeBenchRow {
        tokens: n,
        masks: count,
        sequential_seconds,
        batched_seconds,
        sequential_cpu_seconds: cpu_spent(cpu_before, cpu_between),
        batched_cpu_seconds: cpu_spent(cpu_between, cpu_after),
        equal_answers,
    })
}

/// Deterministic token ids spread over the vocabulary.
pub fn bench_ids(n: usize, vocab: usize) -> Vec<u32> {
    let vocab = vocab as u64;
    (0..n as u64)
        .map(|i| ((i * 2_654_435_761 + 17) % vocab) as u32)
        .collect()
}

/// User plus system time of this process in seconds (`/proc/self/stat`, clock ticks of 10 ms).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at the state, field 3.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

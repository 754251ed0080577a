//! Prefill throughput and memory, for `judgeq bench` (issue 2's benchmark).

use std::time::Instant;

use super::capture::Capture;
use super::config::{Architecture, ModelConfig};
use super::error::Result;
use super::transformer::Transformer;
use crate::progress::Progress;

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

/// Times one prefill of a token sequence of each length (deterministic ids), plain or with
/// capture. Each length runs once after a short warm-up prefill.
pub fn prefill_benchmark(
    transformer: &Transformer,
    lengths: &[usize],
    capture: bool,
    progress: &dyn Progress,
) -> Result<Vec<BenchRow>> {
    let vocab = transformer.config.vocab_size as u64;
    let ids_of = |n: usize| -> Vec<u32> {
        (0..n as u64)
            .map(|i| ((i * 2_654_435_761 + 17) % vocab) as u32)
            .collect()
    };
    let warm_up = transformer.embed(&ids_of(16))?;
    let mut cache = transformer.new_cache(16)?;
    transformer.forward(&warm_up, &mut cache, &Capture::NONE, progress)?;

    let mut rows = Vec::with_capacity(lengths.len());
    for &n in lengths {
        let input = transformer.embed(&ids_of(n))?;
        let mut cache = transformer.new_cache(n)?;
        let wanted = if capture {
            Capture::rows(n.saturating_sub(BENCH_WINDOW), n).with_accumulation()
        } else {
            Capture::NONE
        };
        reset_peak_rss();
        let cpu_before = process_cpu_seconds();
        let start = Instant::now();
        let output = transformer.forward(&input, &mut cache, &wanted, progress)?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu_seconds = process_cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let peak_rss_bytes = peak_rss_bytes();
        drop(output);
        rows.push(BenchRow {
            tokens: n,
            capture,
            seconds,
            tokens_per_second: n as f64 / seconds,
            cpu_seconds,
            peak_rss_bytes,
        });
    }
    Ok(rows)
}

/// Asks Linux to restart `VmHWM` from the current resident size (`clear_refs` value 5); where
/// that is not allowed the peak stays the process-wide one.
fn reset_peak_rss() {
    // Failure only means the peak is process-wide; BenchRow's doc says so.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` of this process in bytes (Linux).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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

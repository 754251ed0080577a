//! `judgeq train-bench`: one training step against one plain prefill, at chosen prompt lengths.

use std::path::PathBuf;

use clap::Args;
use judgeq::judgeq::bench::step_benchmark;
use judgeq::model::Transformer;
use judgeq::model::bench::default_model_shape;
use judgeq::model::device::{default_dtype, parse_device, parse_dtype};
use judgeq::progress::CancelFlag;

use crate::cli::terminal::{TerminalProgress, load_model};

/// Arguments of `judgeq train-bench`.
#[derive(Args, Debug, Clone)]
pub struct TrainBenchArgs {
    /// Model: a GGUF file or a Hugging Face directory (default: the default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, bf16 or f16 (default: f32 on the CPU, bf16 on a GPU).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Prompt lengths in tokens.
    #[arg(long, value_delimiter = ',', default_values_t = [1024, 4096])]
    pub lengths: Vec<usize>,
    /// Soft tokens.
    #[arg(long, default_value_t = 32)]
    pub soft_tokens: usize,
    /// Timed repeats per length (after one warm-up); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Use random weights in the default model's shape instead of loading a model (same
    /// speed; for machines without the model file).
    #[arg(long, conflicts_with = "model")]
    pub random_weights: bool,
}

/// Runs the benchmark and prints a Markdown table.
pub fn run(args: TrainBenchArgs) -> anyhow::Result<()> {
    let progress = TerminalProgress::new(CancelFlag::new());
    let transformer = if args.random_weights {
        let device = parse_device(&args.device)?;
        let dtype = match args.dtype.as_deref() {
            Some(name) => parse_dtype(name)?,
            None => default_dtype(&device),
        };
        Transformer::random(default_model_shape(), 1, device, dtype)?
    } else {
        let model = load_model(
            args.model.as_deref(),
            &args.device,
            args.dtype.as_deref(),
            &progress,
        )?;
        model.transformer
    };
    let rows = step_benchmark(
        &transformer,
        &args.lengths,
        args.soft_tokens,
        args.repeats,
        &progress,
    )?;
    println!(
        "| prompt tokens | plain prefill (s) | soft fwd+bwd+Adam (s) | training step (s) | step / prefill |\n|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.2} |",
            row.prompt_tokens,
            row.prefill_seconds,
            row.soft_seconds,
            row.step_seconds,
            row.ratio()
        );
    }
    Ok(())
}

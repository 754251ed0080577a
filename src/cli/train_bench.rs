//! `judgeq train-bench`: one training step against one plain prefill, at chosen prompt lengths.

use clap::Args;
use judgeq::judgeq::bench::step_benchmark;
use judgeq::judgeq::soft_tokens::{MAX_COUNT, MIN_COUNT};
use judgeq::model::Transformer;
use judgeq::model::bench::default_model_shape;

use super::checks;
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq train-bench`.
#[derive(Args, Debug, Clone)]
pub struct TrainBenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
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
    #[arg(long)]
    pub random_weights: bool,
}

/// Runs the benchmark and prints a Markdown table.
pub fn run(args: &TrainBenchArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    checks::lengths(&args.lengths)?;
    checks::at_least_one(args.repeats, "--repeats", "nothing would be timed")?;
    if !(MIN_COUNT..=MAX_COUNT).contains(&args.soft_tokens) {
        anyhow::bail!(
            "--soft-tokens {} is out of range: use {MIN_COUNT} to {MAX_COUNT}",
            args.soft_tokens
        );
    }
    args.model.check()?;
    let transformer = if args.random_weights {
        let options = args.model.load_options()?;
        Transformer::random(default_model_shape(), 1, options.device, options.dtype)?
    } else {
        args.model.load(&progress)?.transformer
    };
    progress.finish();
    let limit = transformer.config.max_position_embeddings;
    if let Some(too_long) = args.lengths.iter().find(|&&n| n + args.soft_tokens > limit) {
        anyhow::bail!(
            "a prompt of {too_long} tokens and {} soft tokens does not fit the model's context of {limit}",
            args.soft_tokens
        );
    }
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

//! `judgeq bench`: prefill throughput and peak memory of a model, with and without capture.

use clap::Args;
use judgeq::model::Transformer;
use judgeq::model::bench::{BenchRow, default_model_shape, prefill_benchmark};

use super::checks;
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// PyTorch's plain f32 prefill of SmolLM2-135M-Instruct (transformers, sdpa attention,
/// 2 threads) on the same kind of 2-core machine, tokens/s, as measured for issue 2.
const PYTORCH_TOKENS_PER_SECOND: &[(usize, f64)] = &[
    (512, 548.0),
    (1024, 560.0),
    (2048, 555.0),
    (4096, 310.0),
    (8192, 310.0),
];

/// Arguments of `judgeq bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Prompt lengths to time, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [512, 2048, 8192])]
    pub lengths: Vec<usize>,
    /// Random weights in the default model's shape instead of a checkpoint (same speed, no download)
    #[arg(long, conflicts_with = "model")]
    pub random_weights: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Times one prefill per length, plain then with capture, and prints a table.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    checks::lengths(&args.lengths)?;
    args.model.check()?;
    let (name, transformer) = if args.random_weights {
        let options = args.model.load_options()?;
        let shape = default_model_shape();
        let transformer = Transformer::random(shape, 1, options.device, options.dtype)?;
        (
            "random weights in the default model's shape".to_owned(),
            transformer,
        )
    } else {
        let model = args.model.load(&progress)?;
        (model.info.id, model.transformer)
    };
    let limit = transformer.config.max_position_embeddings;
    if let Some(too_long) = args.lengths.iter().find(|&&n| n == 0 || n > limit) {
        anyhow::bail!("cannot time a prefill of {too_long} tokens: lengths must be 1 to {limit}");
    }
    let plain = prefill_benchmark(&transformer, &args.lengths, false, &progress)?;
    let captured = prefill_benchmark(&transformer, &args.lengths, true, &progress)?;
    progress.finish();
    println!(
        "{name} on {:?}, {:?}",
        transformer.device, transformer.dtype
    );
    println!(
        "{:>7}  {:>10}  {:>11}  {:>12}  {:>10}  {:>11}  {:>6}",
        "tokens", "plain t/s", "capture t/s", "capture cost", "peak RSS", "PyTorch t/s", "ratio"
    );
    for (p, c) in plain.iter().zip(&captured) {
        let reference = PYTORCH_TOKENS_PER_SECOND
            .iter()
            .find(|(n, _)| *n == p.tokens)
            .map(|(_, t)| *t);
        println!(
            "{:>7}  {:>10.1}  {:>11.1}  {:>11.1}%  {:>10}  {:>11}  {:>6}",
            p.tokens,
            p.tokens_per_second,
            c.tokens_per_second,
            (c.seconds / p.seconds - 1.0) * 100.0,
            peak(c),
            reference.map_or("-".into(), |t| format!("{t:.0}")),
            reference.map_or("-".into(), |t| format!("{:.2}x", p.tokens_per_second / t)),
        );
    }
    Ok(())
}

/// Peak resident memory of a row, in GB.
fn peak(row: &BenchRow) -> String {
    row.peak_rss_bytes
        .map_or("?".into(), |b| format!("{:.2} GB", b as f64 / 1e9))
}

//! `judgeq bench`: prefill throughput and peak memory of a model, with and without capture;
//! with `--decode-masks`, decoding under many keep masks batched against one by one.

use clap::Args;
use judgeq::model::Transformer;
use judgeq::model::bench::{
    BENCH_DECODE_TOKENS, BenchRow, DecodeBenchRow, decode_masks_benchmark, default_model_shape,
    prefill_benchmark,
};

use super::checks;
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Prompt lengths to time, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [512, 2048, 8192])]
    pub lengths: Vec<usize>,
    /// Random weights in the default model's shape instead of a checkpoint (same speed, no download)
    #[arg(long, conflicts_with = "model")]
    pub random_weights: bool,
    /// Instead of prefills, time decoding 32 tokens under this many keep masks after one
    /// prefill per length: one decode per mask, then all masks as one batch
    #[arg(long, value_name = "MASKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub decode_masks: Option<u64>,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Times one prefill per length, plain then with capture, or the decode benchmark, and prints a
/// table.
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
    if let Some(masks) = args.decode_masks {
        if let Some(too_long) = args
            .lengths
            .iter()
            .find(|&&n| n + BENCH_DECODE_TOKENS > limit)
        {
            anyhow::bail!(
                "cannot decode {BENCH_DECODE_TOKENS} tokens after {too_long}: the model's context is {limit}"
            );
        }
        let rows = decode_masks_benchmark(&transformer, &args.lengths, masks as usize, &progress)?;
        progress.finish();
        print_decode_table(&name, &transformer, &rows);
        return Ok(());
    }
    let plain = prefill_benchmark(&transformer, &args.lengths, false, &progress)?;
    let captured = prefill_benchmark(&transformer, &args.lengths, true, &progress)?;
    progress.finish();
    println!(
        "{name} on {:?}, {:?}",
        transformer.device, transformer.dtype
    );
    println!(
        "{:>7}  {:>10}  {:>11}  {:>12}  {:>10}",
        "tokens", "plain t/s", "capture t/s", "capture cost", "peak RSS"
    );
    for (p, c) in plain.iter().zip(&captured) {
        println!(
            "{:>7}  {:>10.1}  {:>11.1}  {:>11.1}%  {:>10}",
            p.tokens,
            p.tokens_per_second,
            c.tokens_per_second,
            (c.seconds / p.seconds - 1.0) * 100.0,
            peak(c),
        );
    }
    Ok(())
}

/// The decode benchmark's table: wall and CPU times both ways, the speed-ups, and whether the
/// answers agree.
fn print_decode_table(name: &str, transformer: &Transformer, rows: &[DecodeBenchRow]) {
    println!(
        "{name} on {:?}, {:?}: {BENCH_DECODE_TOKENS} tokens per mask",
        transformer.device, transformer.dtype
    );
    println!(
        "{:>7}  {:>5}  {:>16}  {:>16}  {:>8}  {:>12}  {:>13}",
        "tokens",
        "masks",
        "one by one wall",
        "batched wall",
        "speed-up",
        "CPU speed-up",
        "equal answers"
    );
    for row in rows {
        let cpu = row
            .sequential_cpu_seconds
            .zip(row.batched_cpu_seconds)
            .map_or("-".into(), |(one, batch)| format!("{:.1}x", one / batch));
        println!(
            "{:>7}  {:>5}  {:>15.2}s  {:>15.2}s  {:>7.1}x  {:>12}  {:>13}",
            row.tokens,
            row.masks,
            row.sequential_seconds,
            row.batched_seconds,
            row.sequential_seconds / row.batched_seconds,
            cpu,
            format!("{} of {}", row.equal_answers, row.masks),
        );
    }
}

/// Peak resident memory of a row, in GB.
fn peak(row: &BenchRow) -> String {
    row.peak_rss_bytes
        .map_or("?".into(), |b| format!("{:.2} GB", b as f64 / 1e9))
}

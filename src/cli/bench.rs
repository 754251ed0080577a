//! `judgeq bench`: prefill throughput and peak memory of a model, with and without capture,
//! beside the memory estimate and, given the device's peak rate, the arithmetic floor; with
//! `--decode-masks`, decoding under many keep masks batched against one by one; with
//! `--agreement`, another dtype or device against the reference run.

use clap::{Args, ValueEnum};
use judgeq::model::Transformer;
use judgeq::model::bench::{
    BENCH_DECODE_TOKENS, BENCH_WINDOW, BenchRow, DecodeBenchRow, decode_masks_benchmark,
    prefill_benchmark,
};
use judgeq::model::flops::{block_parameters, floor_seconds, prefill_flops};
use judgeq::model::memory::gigabytes;

use super::bench_agreement::{self, AgreementArgs};
use super::bench_model::{Shape, load_bench_model};
use super::checks;
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Prompt lengths to time, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [512, 2048, 8192])]
    pub lengths: Vec<usize>,
    /// Random weights instead of a checkpoint (same speed, no download), in --shape
    #[arg(long, conflicts_with = "model")]
    pub random_weights: bool,
    /// Shape of the random weights
    #[arg(
        long,
        value_enum,
        default_value = "smollm2-135m",
        requires = "random_weights"
    )]
    pub shape: Shape,
    /// Blocks of the random weights [default: the shape's own, 30, 2 or 32]
    #[arg(long, requires = "random_weights", value_parser = clap::value_parser!(u64).range(1..))]
    pub layers: Option<u64>,
    /// Time only the plain prefills or only the prefills with capture [default: both]
    #[arg(long, value_enum, conflicts_with = "decode_masks")]
    pub only: Option<Runs>,
    /// Peak rate of the device in the model's dtype, in TFLOP/s (dense bf16: 989 on an H100
    /// or H200, 312 on an A100): each prefill is shown against its arithmetic floor
    #[arg(long, value_name = "TFLOPS")]
    pub peak_tflops: Option<f64>,
    /// Instead of prefills, time decoding 32 tokens under this many keep masks after one
    /// prefill per length: one decode per mask, then all masks as one batch
    #[arg(long, value_name = "MASKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub decode_masks: Option<u64>,
    #[command(flatten)]
    pub agreement: AgreementArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Which prefills to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runs {
    /// Without capture.
    Plain,
    /// With the last 32 rows and the accumulated attention captured.
    Capture,
}

/// Times one prefill per length, plain then with capture, or the decode benchmark, or compares
/// two runs, and prints a table.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    checks::lengths(&args.lengths)?;
    args.model.check()?;
    if let Some(rate) = args.peak_tflops
        && !(rate.is_finite() && rate > 0.0)
    {
        anyhow::bail!("--peak-tflops {rate}: give the device's peak rate, a positive number");
    }
    let shape = args.random_weights.then_some(args.shape);
    let layers = args.layers.map(|l| l as usize);
    if args.agreement.agreement {
        bench_agreement::run(
            &args.agreement,
            shape,
            layers,
            &args.lengths,
            &args.model,
            &progress,
        )?;
        progress.finish();
        return Ok(());
    }
    let (name, transformer) = load_bench_model(shape, layers, &args.model, &progress)?;
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
    let timed = |capture: bool| -> anyhow::Result<Vec<Option<BenchRow>>> {
        let wanted = match args.only {
            Some(Runs::Plain) => !capture,
            Some(Runs::Capture) => capture,
            None => true,
        };
        Ok(if wanted {
            prefill_benchmark(&transformer, &args.lengths, capture, &progress)?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None; args.lengths.len()]
        })
    };
    let plain = timed(false)?;
    let captured = timed(true)?;
    progress.finish();
    println!(
        "{name} on {:?}, {:?}",
        transformer.device, transformer.dtype
    );
    print_prefill_table(&plain, &captured);
    print_memory_table(&plain, &captured);
    if let Some(rate) = args.peak_tflops {
        print_floor_table(&transformer, rate, &plain, &captured);
    }
    Ok(())
}

/// Throughput plain and with capture, and the peak memory of the larger run.
fn print_prefill_table(plain: &[Option<BenchRow>], captured: &[Option<BenchRow>]) {
    println!(
        "{:>7}  {:>10}  {:>11}  {:>12}  {:>10}  {:>10}",
        "tokens", "plain t/s", "capture t/s", "capture cost", "peak RSS", "peak GPU"
    );
    for (p, c) in plain.iter().zip(captured) {
        let Some(any) = c.as_ref().or(p.as_ref()) else {
            continue;
        };
        let speed = |row: &Option<BenchRow>| {
            row.as_ref()
                .map_or("-".to_owned(), |r| format!("{:.1}", r.tokens_per_second))
        };
        let cost = match (p, c) {
            (Some(p), Some(c)) => format!("{:.1}%", (c.seconds / p.seconds - 1.0) * 100.0),
            _ => "-".to_owned(),
        };
        println!(
            "{:>7}  {:>10}  {:>11}  {:>12}  {:>10}  {:>10}",
            any.tokens,
            speed(p),
            speed(c),
            cost,
            bytes(any.peak_rss_bytes),
            bytes(any.peak_device_bytes),
        );
    }
}

/// The estimate's parts beside the measured peak, and how much the peak grows per 1,000 tokens
/// from one length to the next (constant when memory grows linearly with the prompt).
fn print_memory_table(plain: &[Option<BenchRow>], captured: &[Option<BenchRow>]) {
    let rows: Vec<&BenchRow> = plain
        .iter()
        .zip(captured)
        .filter_map(|(p, c)| c.as_ref().or(p.as_ref()))
        .collect();
    let Some(first) = rows.first() else {
        return;
    };
    let run = if first.capture {
        format!("with capture ({BENCH_WINDOW} window rows and the column sums)")
    } else {
        "plain".to_owned()
    };
    println!(
        "\nmemory of the prefills {run}: estimate = weights + KV cache + activations of one \
         layer + one attention block + captured rows (src/model/memory.rs); measured = peak \
         {}",
        if first.estimate.on_gpu {
            "GPU memory in use"
        } else {
            "resident set (VmHWM)"
        }
    );
    println!(
        "{:>7}  {:>9}  {:>9}  {:>11}  {:>10}  {:>9}  {:>9}  {:>9}  {:>14}",
        "tokens",
        "weights",
        "KV cache",
        "activations",
        "attn block",
        "captured",
        "estimate",
        "measured",
        "growth/1K tok"
    );
    let measured = |r: &BenchRow| {
        if r.estimate.on_gpu {
            r.peak_device_bytes
        } else {
            r.peak_rss_bytes
        }
    };
    let mut previous: Option<&BenchRow> = None;
    for row in rows {
        let e = &row.estimate;
        let growth = previous
            .and_then(|p| {
                let (now, before) = (measured(row)?, measured(p)?);
                let tokens = row.tokens.checked_sub(p.tokens).filter(|&t| t > 0)?;
                Some(format!(
                    "{:.3} GB",
                    (now as f64 - before as f64) / 1e9 / tokens as f64 * 1000.0
                ))
            })
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:>7}  {:>9}  {:>9}  {:>11}  {:>10}  {:>9}  {:>9}  {:>9}  {:>14}",
            row.tokens,
            gigabytes(e.weights),
            gigabytes(e.kv_cache),
            gigabytes(e.activations),
            gigabytes(e.attention_block),
            gigabytes(e.captured),
            gigabytes(e.device_total() + e.host_bytes()),
            bytes(measured(row)),
            growth,
        );
        previous = Some(row);
    }
}

/// Each prefill's time against the arithmetic floor at `rate` TFLOP/s.
fn print_floor_table(
    transformer: &Transformer,
    rate: f64,
    plain: &[Option<BenchRow>],
    captured: &[Option<BenchRow>],
) {
    let c = &transformer.config;
    println!(
        "\narithmetic floor at {rate} TFLOP/s (the rate assumed): 2 x {:.3} G block parameters \
         x tokens + causal attention 2 x {} layers x {} heads x {} x tokens x (tokens + 1)",
        block_parameters(c) as f64 / 1e9,
        c.num_layers,
        c.num_heads,
        c.head_dim
    );
    println!(
        "{:>7}  {:>10}  {:>9}  {:>9}  {:>13}  {:>9}  {:>13}",
        "tokens", "TFLOP", "floor", "plain", "plain/floor", "capture", "capture/floor"
    );
    for (p, cap) in plain.iter().zip(captured) {
        let Some(any) = cap.as_ref().or(p.as_ref()) else {
            continue;
        };
        let flops = prefill_flops(c, any.tokens);
        let floor = floor_seconds(flops, rate);
        let time = |row: &Option<BenchRow>| {
            row.as_ref().map_or(("-".to_owned(), "-".to_owned()), |r| {
                (
                    format!("{:.3} s", r.seconds),
                    format!("{:.1}x", r.seconds / floor),
                )
            })
        };
        let ((plain_s, plain_x), (cap_s, cap_x)) = (time(p), time(cap));
        println!(
            "{:>7}  {:>10.1}  {:>7.3} s  {:>9}  {:>13}  {:>9}  {:>13}",
            any.tokens,
            flops / 1e12,
            floor,
            plain_s,
            plain_x,
            cap_s,
            cap_x
        );
    }
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

/// Bytes in GB, or `-` when unknown.
fn bytes(value: Option<u64>) -> String {
    value.map_or("-".into(), gigabytes)
}

//! Prefill throughput of the default model's shape on random weights (same speed as the real
//! model): `cargo run --release --example prefill_bench -- 512 2048 8192`.

use candle_core::{DType, Device};
use judgeq::model::Transformer;
use judgeq::model::bench::{default_model_shape, prefill_benchmark};
use judgeq::progress::Silent;

fn main() -> anyhow::Result<()> {
    let lengths: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let lengths = if lengths.is_empty() {
        vec![512, 2048, 8192]
    } else {
        lengths
    };
    let model = Transformer::random(default_model_shape(), 1, Device::Cpu, DType::F32)?;
    for capture in [false, true] {
        for row in prefill_benchmark(&model, &lengths, capture, &Silent)? {
            let rss = row
                .peak_rss_bytes
                .map_or("?".into(), |b| format!("{:.2} GB", b as f64 / 1e9));
            let cpu = row.cpu_seconds.map_or("?".into(), |s| format!("{s:.1} s"));
            println!(
                "{:>6} tokens  capture {:<5}  {:>8.2} s  {:>7.1} tok/s  CPU {cpu}  peak RSS {rss}",
                row.tokens, row.capture, row.seconds, row.tokens_per_second
            );
        }
    }
    Ok(())
}

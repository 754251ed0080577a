//! `judgeq bench --agreement`: the same model and prompt run twice, on `--device` in `--dtype`
//! (the reference) and on `--against-device` in `--against-dtype`, compared: logits, greedy
//! tokens, and the captured window and decoded rows.

use std::path::PathBuf;

use clap::Args;
use judgeq::document::{EXAMPLE_DOCUMENT, read_document};
use judgeq::model::agreement::{Agreement, AgreementRequest, RowsAgreement, compare_runs};
use judgeq::model::bench::bench_ids;
use judgeq::model::memory::device_name;
use judgeq::model::{LoadOptions, Transformer};
use judgeq::progress::Progress;

use super::bench_model::{Shape, load_bench_model};
use super::checks;
use super::model_args::ModelArgs;

/// Options of the agreement mode.
#[derive(Args, Debug)]
pub struct AgreementArgs {
    /// Instead of timing, run the model twice and compare: on --device in --dtype (the
    /// reference, f32 on the CPU by default) and on --against-device in --against-dtype
    #[arg(long, conflicts_with = "decode_masks")]
    pub agreement: bool,
    /// Device of the compared run [default: --device]
    #[arg(long, value_name = "DEVICE", requires = "agreement")]
    pub against_device: Option<String>,
    /// Dtype of the compared run
    #[arg(
        long,
        value_name = "DTYPE",
        default_value = "bf16",
        requires = "agreement"
    )]
    pub against_dtype: String,
    /// Document of the prompt, for a checkpoint [default: the explorer's example document];
    /// random weights take deterministic token ids of each --lengths instead
    #[arg(long, value_name = "FILE", requires = "agreement")]
    pub doc: Option<PathBuf>,
    /// Question asked after the document
    #[arg(
        long,
        default_value = "What is this document about?",
        requires = "agreement"
    )]
    pub question: String,
    /// Last prompt rows whose attention is captured and compared
    #[arg(long, default_value_t = 32, requires = "agreement")]
    pub window: usize,
    /// Greedy tokens decoded after the prompt (the reference's, fed to both runs)
    #[arg(long = "decode", default_value_t = 16, requires = "agreement")]
    pub decode_tokens: usize,
    /// Keys compared per captured row by the top-k overlap
    #[arg(long, default_value_t = 32, requires = "agreement")]
    pub top_k: usize,
}

/// Loads both runs' models, builds the prompts and prints one comparison per prompt.
pub fn run(
    args: &AgreementArgs,
    shape: Option<Shape>,
    layers: Option<usize>,
    lengths: &[usize],
    model: &ModelArgs,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    checks::at_least_one(args.window, "--window", "no rows would be compared")?;
    checks::at_least_one(args.top_k, "--top-k", "no keys would be compared")?;
    let against = ModelArgs {
        device: args
            .against_device
            .clone()
            .unwrap_or_else(|| model.device.clone()),
        dtype: Some(args.against_dtype.clone()),
        ..model.clone()
    };
    against.check()?;
    let document = match &args.doc {
        Some(path) => Some(read_document(path)?),
        None => None,
    };
    let (name, reference, prompts) = match shape {
        Some(_) => {
            let (name, reference) = load_bench_model(shape, layers, model, progress)?;
            let prompts = lengths
                .iter()
                .map(|&n| bench_ids(n, reference.config.vocab_size))
                .collect();
            (name, reference, prompts)
        }
        None => {
            let loaded = model.load(progress)?;
            let text = document.as_deref().unwrap_or(EXAMPLE_DOCUMENT);
            let prompt = loaded.prompt(text, &args.question)?.ids;
            (loaded.info.id, loaded.transformer, vec![prompt])
        }
    };
    let (_, other) = load_bench_model(shape, layers, &against, progress)?;
    println!(
        "{name}: {} against {}",
        label(&against.load_options()?),
        label(&model.load_options()?)
    );
    for prompt in prompts {
        let request = AgreementRequest {
            window: args.window.min(prompt.len()),
            decode_tokens: args.decode_tokens,
            top_k: args.top_k,
            prompt,
        };
        let agreement = compare_runs(&reference, &other, &request, progress)?;
        print_agreement(&request, &agreement, &reference);
    }
    Ok(())
}

/// `bf16 on cuda:0`.
fn label(options: &LoadOptions) -> String {
    format!(
        "{} on {}",
        format!("{:?}", options.dtype).to_lowercase(),
        device_name(&options.device)
    )
}

fn print_agreement(request: &AgreementRequest, a: &Agreement, reference: &Transformer) {
    println!(
        "\n{}-token prompt, {} window rows, {} decoded tokens ({} layers x {} query heads)",
        request.prompt.len(),
        request.window,
        request.decode_tokens,
        reference.config.num_layers,
        reference.config.num_heads
    );
    println!(
        "  logits: max abs error {:.4}, max relative error {:.3}% (of the step's largest logit)",
        a.logits_max_abs,
        100.0 * a.logits_max_rel
    );
    println!(
        "  greedy tokens: the same at {} of {} steps",
        a.greedy_agree, a.steps
    );
    for d in &a.disagreements {
        println!(
            "    step {}: the reference picks {}, the compared run {} (reference margin {:.4})",
            d.step, d.reference_token, d.other_token, d.reference_margin
        );
    }
    print_rows("window rows", &a.window_rows);
    print_rows("decoded rows", &a.decoded_rows);
}

fn print_rows(what: &str, rows: &RowsAgreement) {
    println!(
        "  {what} ({} rows): max abs error {:.5}, top-{} overlap mean {:.1}%, min {:.1}%",
        rows.rows,
        rows.max_abs,
        rows.k,
        100.0 * rows.mean_top_k_overlap,
        100.0 * rows.min_top_k_overlap
    );
}

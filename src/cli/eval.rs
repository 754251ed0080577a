//! `judgeq eval`: hit rates against the oracle and answer agreement under eviction, for every
//! method of the Judge Q comparison, on held-out prompts.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use judgeq::attention::{Granularity, Pooling};
use judgeq::eval::report::{summarize, summary_table, write_report};
use judgeq::eval::{EvalSettings, evaluate, paper_methods};
use judgeq::export::Overwrite;
use judgeq::judgeq::SoftTokens;
use judgeq::judgeq::data::read_prompts;
use judgeq::judgeq::fitting::TooLong;
use judgeq::policy::PolicySettings;

use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Held-out prompts: JSON Lines of {"document","question"} (or any record `judgeq train`
    /// reads).
    #[arg(long)]
    pub data: PathBuf,
    /// Soft-token file for the Judge Q rows (without it, only the baselines run).
    #[arg(long)]
    pub soft: Option<PathBuf>,
    /// Directory for summary.csv, prompts.csv and layers.csv.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// KV entries kept per layer and head.
    #[arg(long, value_delimiter = ',', default_values_t = EvalSettings::default().budgets)]
    pub budgets: Vec<usize>,
    /// Last-window size of the window methods.
    #[arg(long, default_value_t = PolicySettings::default().window)]
    pub window: usize,
    /// Pooling of the pooled methods: none, maxK or avgK (K odd).
    #[arg(long, default_value = "max7")]
    pub pooling: Pooling,
    /// Which heads own a keep set: query-head, kv-head-mean or kv-head-max.
    #[arg(long, default_value = "query-head")]
    pub granularity: Granularity,
    /// Most answer tokens decoded with the full cache (the oracle) and under every kept set.
    #[arg(long, default_value_t = EvalSettings::default().decode_tokens)]
    pub decode: usize,
    /// Only the metrics: no answers decoded under eviction.
    #[arg(long)]
    pub metrics_only: bool,
    /// Longest prompt in tokens.
    #[arg(long, default_value_t = EvalSettings::default().max_prompt_tokens)]
    pub max_prompt_tokens: usize,
    /// What to do with longer prompts: truncate (cut in the middle) or skip.
    #[arg(long, default_value_t = EvalSettings::default().too_long)]
    pub too_long: TooLong,
    /// Evaluate only the first N prompts.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Replace existing result files in --out.
    #[arg(long)]
    pub force: bool,
}

/// Runs `judgeq eval`; the first Ctrl-C stops after the current prompt and writes what is
/// done.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    judgeq::export::check_outputs(&args.out, &judgeq::eval::report::REPORT_FILES, overwrite)?;
    let data = read_prompts(&args.data)?;
    let soft = args
        .soft
        .as_ref()
        .map(|p| SoftTokens::read(p))
        .transpose()?;
    let model = args.model.load(&progress)?;
    let base = PolicySettings {
        window: args.window,
        pooling: args.pooling,
        granularity: args.granularity,
        ..PolicySettings::default()
    };
    base.validate()?;
    let methods = paper_methods(&base, soft.is_some());
    let settings = EvalSettings {
        budgets: args.budgets.clone(),
        window: args.window,
        decode_tokens: args.decode,
        decode_under_eviction: !args.metrics_only,
        max_prompt_tokens: args.max_prompt_tokens,
        too_long: args.too_long,
        limit: args.limit,
    };
    let soft_arg = soft.as_ref().zip(args.soft.as_deref());
    let run = evaluate(
        &model,
        &data,
        soft_arg,
        &methods,
        &settings,
        &progress,
        &|done, total| eprintln!("prompt {done}/{total} done"),
    )?;
    progress.finish();
    println!("{}", summary_table(&summarize(&run)));
    let written = write_report(&run, &args.out, overwrite)?;
    eprintln!(
        "{} prompts evaluated{}{}{}; wrote {}",
        run.prompts.len(),
        if run.skipped.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = run
                .skipped
                .iter()
                .map(|(line, why)| format!("line {line}: {why}"))
                .collect();
            format!(", {} skipped ({})", run.skipped.len(), lines.join("; "))
        },
        if run.skipped_too_long > 0 {
            format!(
                ", {} skipped as longer than {} tokens",
                run.skipped_too_long, args.max_prompt_tokens
            )
        } else {
            String::new()
        },
        if run.cancelled {
            " (stopped early by Ctrl-C)"
        } else {
            ""
        },
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

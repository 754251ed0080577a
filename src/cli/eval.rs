//! `judgeq eval`: hit rates against the oracle and answer agreement under eviction, for every
//! method of the Judge Q comparison (or the methods asked for), on held-out prompts.

use std::path::PathBuf;

use clap::Args;
use judgeq::attention::{Granularity, Pooling};
use judgeq::eval::paired::{paired_rows, paired_table, reference};
use judgeq::eval::report::REPORT_FILES;
use judgeq::eval::report::{summarize, summary_table, write_report};
use judgeq::eval::{EvalError, EvalRun, EvalSettings, evaluate, paper_methods};
use judgeq::export::Overwrite;
use judgeq::export::check_outputs;
use judgeq::judgeq::data::{PromptFile, PromptText, read_prompts};
use judgeq::judgeq::fitting::TooLong;
use judgeq::judgeq::shipped;
use judgeq::policy::{Input, PolicySettings, Ratio};
use judgeq::session::QuestionPlacement;

use super::checks;
use super::methods::{methods_by_id, with_params};
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Held-out prompts: JSON Lines of {"document","question"} (or any record `judgeq train`
    /// reads).
    #[arg(long)]
    pub data: PathBuf,
    /// Soft-token file for the Judge Q rows (default: the shipped ones when the model is the
    /// default one; for another model without it, only the baselines run).
    #[arg(long)]
    pub soft: Option<PathBuf>,
    /// No soft tokens (and no Judge Q rows), even on the default model
    #[arg(long, conflicts_with = "soft")]
    pub no_soft: bool,
    /// Directory for summary.csv, prompts.csv, layers.csv and paired.csv.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// KV entries kept per layer and head.
    #[arg(long, value_delimiter = ',', default_values_t = EvalSettings::default().budgets)]
    pub budgets: Vec<usize>,
    /// Budgets as ratios removed (see `--help`); tables group by ratio.
    #[arg(long, value_delimiter = ',', conflicts_with = "budgets", long_help = super::policy_help::RATIOS_HELP)]
    pub ratios: Vec<Ratio>,
    /// Methods, comma-separated: policy ids or their named variants (see `--help`) [default:
    /// the Judge Q paper's comparison]
    #[arg(long, value_delimiter = ',', help = super::policy_help::eval_methods_help())]
    pub policies: Vec<String>,
    /// A policy parameter, KEY=VALUE, repeatable (the registry's parameters; see `--help`)
    #[arg(long = "param", value_name = "KEY=VALUE", help = super::policy_help::params_help())]
    pub params: Vec<String>,
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
    /// Where the question goes: end, start or after-eviction.
    #[arg(
        long,
        default_value = "end",
        value_name = "PLACEMENT",
        help = super::placement_help::PLACEMENT_HELP,
        long_help = super::placement_help::PLACEMENT_LONG_HELP
    )]
    pub question_placement: QuestionPlacement,
    /// Replace existing result files in --out.
    #[arg(long)]
    pub force: bool,
}

/// Runs `judgeq eval`; the first Ctrl-C stops after the current prompt and writes what is
/// done. Exits with an error, writing nothing, when no prompt was evaluated.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    let base = with_params(
        PolicySettings {
            window: args.window,
            pooling: args.pooling,
            granularity: args.granularity,
            ..PolicySettings::default()
        },
        &args.params,
    )?;
    base.validate()?;
    // The names are checked before any model work; soft tokens once their file is read.
    let ids: Vec<String> = args
        .policies
        .iter()
        .map(|id| id.trim().to_owned())
        .collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    checks::no_repeats(&id_refs, "--policies")?;
    let asks_for_soft = ids.is_empty()
        || methods_by_id(&ids, &base, true)?
            .iter()
            .any(|m| m.policy.needs(&m.settings).contains(&Input::Soft));
    check_numbers(args)?;
    args.model.check()?;
    checks::output_folder(&args.out, "--out")?;
    checks::clean_temporaries(&args.out)?;
    if args.out.is_dir() {
        check_outputs(&args.out, &REPORT_FILES, overwrite)
            .map_err(|e| checks::write_error(e, args.force))?;
    }
    let data = read_prompts(&args.data)?;
    check_data(&data)?;
    let soft = args
        .soft
        .as_ref()
        .map(|p| checks::read_soft_tokens(p))
        .transpose()?;
    let model = args.model.load(&progress)?;
    // Without --soft, the shipped tokens when a method asks for soft tokens (as inspect, evict
    // and tasks do); --no-soft leaves them out.
    let soft = match soft {
        Some(tokens) => args.soft.clone().map(|path| (tokens, path)),
        None if args.no_soft || !asks_for_soft => None,
        None => shipped::for_model(&model.info)?.map(|(origin, tokens)| (tokens, origin)),
    };
    let methods = if ids.is_empty() {
        paper_methods(&base, soft.is_some())
    } else {
        methods_by_id(&ids, &base, soft.is_some())?
    };
    let settings = EvalSettings {
        budgets: args.budgets.clone(),
        ratios: args.ratios.clone(),
        window: args.window,
        decode_tokens: args.decode,
        decode_under_eviction: !args.metrics_only,
        max_prompt_tokens: args.max_prompt_tokens,
        too_long: args.too_long,
        limit: args.limit,
        placement: args.question_placement,
    };
    if let Some((_, path)) = &soft
        && args.soft.is_none()
    {
        eprintln!("soft tokens: the shipped ones ({})", path.display());
    }
    let soft_arg = soft.as_ref().map(|(tokens, path)| (tokens, path.as_path()));
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
    if run.prompts.is_empty() {
        anyhow::bail!(
            "no prompt of {} was evaluated{}; nothing was written",
            args.data.display(),
            nothing_evaluated_because(&run, args.max_prompt_tokens)
        );
    }
    println!("question placement: {}", settings.placement);
    println!("{}", summary_table(&summarize(&run)));
    if let Some(reference) = reference(&run) {
        println!(
            "per prompt, against {} (mean difference, 95% bootstrap interval):\n{}",
            run.methods[reference].label,
            paired_table(&paired_rows(&run, reference))
        );
    }
    let written = write_report(&run, &args.out, overwrite).map_err(|e| match e {
        EvalError::Export(e) => checks::write_error(e, args.force),
        other => other.into(),
    })?;
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

/// Numbers that make the evaluation empty or degenerate, refused before any work.
fn check_numbers(args: &EvalArgs) -> anyhow::Result<()> {
    checks::budgets(&args.budgets)?;
    checks::ratios(&args.ratios)?;
    checks::at_least_one(
        args.window,
        "--window",
        "the window methods score with the last window's queries",
    )?;
    checks::at_least_one(
        args.decode,
        "--decode",
        "the oracle scores the cache with the decoded tokens",
    )?;
    if args.limit == Some(0) {
        anyhow::bail!(
            "--limit 0 evaluates nothing; give at least 1 (or leave it out for every prompt)"
        );
    }
    if args.max_prompt_tokens < args.window {
        anyhow::bail!(
            "--max-prompt-tokens {} is shorter than the window of {} tokens",
            args.max_prompt_tokens,
            args.window
        );
    }
    let kernel = args.pooling.kernel();
    if kernel > args.max_prompt_tokens {
        anyhow::bail!(
            "--pooling {}: the kernel spans {kernel} keys, more than the longest prompt (--max-prompt-tokens {})",
            args.pooling.label(),
            args.max_prompt_tokens
        );
    }
    Ok(())
}

/// Refuses a prompt file without a single document with a question (the only prompts `eval`
/// can score), naming the file.
fn check_data(data: &PromptFile) -> anyhow::Result<()> {
    if data.records.is_empty() {
        anyhow::bail!(
            "{} holds no usable prompt ({} record(s) skipped as empty or without a human turn)",
            data.path.display(),
            data.skipped.len()
        );
    }
    let documents = data
        .records
        .iter()
        .filter(|r| matches!(r.text, PromptText::Document { .. }))
        .count();
    if documents == 0 {
        anyhow::bail!(
            "{} holds {} prompt(s) but no {{\"document\", \"question\"}} record: eval scores eviction on documents with a question",
            data.path.display(),
            data.records.len()
        );
    }
    Ok(())
}

/// Why an evaluation came out empty, for the error message.
fn nothing_evaluated_because(run: &EvalRun, max_prompt_tokens: usize) -> String {
    if run.cancelled {
        return " (stopped by Ctrl-C before the first prompt was done)".into();
    }
    let mut reasons: Vec<String> = run
        .skipped
        .iter()
        .map(|(line, why)| format!("line {line}: {why}"))
        .collect();
    if run.skipped_too_long > 0 {
        reasons.push(format!(
            "{} longer than --max-prompt-tokens {max_prompt_tokens}",
            run.skipped_too_long
        ));
    }
    if reasons.is_empty() {
        String::new()
    } else {
        format!(": every prompt was skipped ({})", reasons.join("; "))
    }
}

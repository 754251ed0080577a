//! `judgeq tasks`: task scores of every method at every budget — needle-in-a-haystack, RULER,
//! LongBench, L-Eval, LongEval — in kvpress's evaluation layout, with figures; `tasks merge`
//! joins the shards of one sweep.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use judgeq::attention::{Granularity, Pooling};
use judgeq::eval::Method;
use judgeq::judgeq::{SoftTokens, shipped};
use judgeq::model::Model;
use judgeq::model::hashing::hex;
use judgeq::policy::{PolicyId, PolicySettings, Ratio};
use judgeq::session::QuestionPlacement;
use judgeq::tasks::figures::write_run_figures;
use judgeq::tasks::journal::{
    self, JOURNAL_FILE, JOURNAL_FORMAT, Journal, RunHeader, RunModel, RunSoftTokens, Shard,
    method_records,
};
use judgeq::tasks::merge::merge;
use judgeq::tasks::outputs::write_outputs;
use judgeq::tasks::runner::{RunSettings, run};
use judgeq::tasks::{TaskSample, tables::FULL_KV};
use sha2::{Digest, Sha256};

use super::checks;
use super::methods::{methods_by_id, with_params};
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;
use super::task_sets::{FileSetArgs, Leval, LongBench, LongEval, TaskSet};

/// The default methods: the Judge Q paper's comparison (Full KV is always reported).
const DEFAULT_METHODS: [&str; 7] = [
    "streamingllm",
    "h2o",
    "snapkv",
    "pyramidkv",
    "adakv",
    "judgeq",
    "oracle",
];

/// Arguments of `judgeq tasks`.
#[derive(Args, Debug)]
pub struct TasksArgs {
    #[command(subcommand)]
    pub command: TasksCommand,
}

/// A task set to run, or shards to merge.
#[derive(Subcommand, Debug)]
pub enum TasksCommand {
    /// Needle-in-a-haystack: a needle at depths 0-100% of haystacks of given lengths
    Niah(SetArgs<super::task_sets::NiahArgs>),
    /// RULER's synthetic tasks (needles, variable tracking, common and frequent words)
    Ruler(SetArgs<super::task_sets::RulerArgs>),
    /// LongBench or LongBench-E from its jsonl files (--data DIR)
    Longbench(SetArgs<FileSetArgs<LongBench>>),
    /// L-Eval from its jsonl files (--data DIR)
    Leval(SetArgs<FileSetArgs<Leval>>),
    /// LongChat's LongEval line retrieval from its jsonl files (--data DIR)
    Longeval(SetArgs<FileSetArgs<LongEval>>),
    /// Join the folders of a sweep run with --shard I/N into the tables of one run
    Merge(MergeArgs),
}

/// One task set's own options and the options every run shares.
#[derive(Args, Debug)]
pub struct SetArgs<T: Args> {
    #[command(flatten)]
    pub set: T,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options every task run shares.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Methods, comma-separated: policy ids or their named variants (the registry's; see
    /// `--help`); Full KV is always reported
    #[arg(long, value_delimiter = ',', help = super::policy_help::methods_help())]
    pub policies: Vec<String>,
    /// KV entries kept per layer and head, window included, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [64, 128, 256, 512])]
    pub budgets: Vec<usize>,
    /// Budgets as ratios removed (see `--help`); tables group by ratio
    #[arg(long, value_delimiter = ',', conflicts_with = "budgets", long_help = super::policy_help::RATIOS_HELP)]
    pub ratios: Vec<Ratio>,
    /// Last-window size of the window methods
    #[arg(long, default_value_t = PolicySettings::default().window)]
    pub window: usize,
    /// Score smoothing along the keys: none, maxK or avgK
    #[arg(long, default_value = "max7")]
    pub pooling: Pooling,
    /// Which heads own a keep set: query-head, kv-head-mean or kv-head-max
    #[arg(long, default_value = "query-head")]
    pub granularity: Granularity,
    /// Where the question goes: end, start or after-eviction
    #[arg(
        long,
        default_value = "end",
        value_name = "PLACEMENT",
        help = super::placement_help::PLACEMENT_HELP,
        long_help = super::placement_help::PLACEMENT_LONG_HELP
    )]
    pub question_placement: QuestionPlacement,
    /// A policy parameter, KEY=VALUE, repeatable (the registry's parameters; see `--help`)
    #[arg(long = "param", value_name = "KEY=VALUE", help = super::policy_help::params_help())]
    pub params: Vec<String>,
    /// Soft-token file for the Judge Q rows [default: the shipped ones, for the default model]
    #[arg(long, value_name = "FILE")]
    pub soft: Option<PathBuf>,
    /// No soft tokens (and no Judge Q rows)
    #[arg(long, conflicts_with = "soft")]
    pub no_soft: bool,
    /// Run only the samples whose index is I modulo N (0 <= I < N), e.g. one task of a job array
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Evaluate at most this many samples of the set (after the shard is taken)
    #[arg(long)]
    pub limit: Option<usize>,
    /// Directory of the run (created when missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Continue the run in --out after the samples it finished
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Start over in --out, replacing an earlier run there
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Arguments of `judgeq tasks merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The shards' run folders
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// Directory of the merged run (created when missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier run in --out
    #[arg(long)]
    pub force: bool,
}

/// Runs `judgeq tasks`.
pub fn run_tasks(args: &TasksArgs) -> anyhow::Result<()> {
    match &args.command {
        TasksCommand::Niah(a) => run_set(&a.set, &a.run),
        TasksCommand::Ruler(a) => run_set(&a.set, &a.run),
        TasksCommand::Longbench(a) => run_set(&a.set, &a.run),
        TasksCommand::Leval(a) => run_set(&a.set, &a.run),
        TasksCommand::Longeval(a) => run_set(&a.set, &a.run),
        TasksCommand::Merge(a) => run_merge(a),
    }
}

impl RunArgs {
    /// The settings every method starts from.
    fn base_settings(&self) -> anyhow::Result<PolicySettings> {
        let settings = PolicySettings {
            window: self.window,
            pooling: self.pooling,
            granularity: self.granularity,
            ..PolicySettings::default()
        };
        with_params(settings, &self.params)
    }

    /// The methods asked for (Full KV left out: it is always reported).
    fn methods(&self, with_soft: bool) -> anyhow::Result<Vec<Method>> {
        let base = self.base_settings()?;
        let ids: Vec<String> = if self.policies.is_empty() {
            DEFAULT_METHODS
                .iter()
                .filter(|id| with_soft || **id != "judgeq")
                .map(|id| id.to_string())
                .collect()
        } else {
            self.policies.clone()
        };
        let ids: Vec<String> = ids.into_iter().filter(|id| id.trim() != FULL_KV).collect();
        Ok(methods_by_id(&ids, &base, with_soft)?
            .into_iter()
            .filter(|m| m.policy != PolicyId::FULL_KV)
            .collect())
    }

    /// Checks the options and the output folder before any model work: budgets, window,
    /// limit and method names; a writable new or empty folder, or an earlier run with --resume
    /// or --force.
    fn check(&self) -> anyhow::Result<()> {
        checks::budgets(&self.budgets)?;
        checks::ratios(&self.ratios)?;
        checks::at_least_one(
            self.window,
            "--window",
            "the window methods score with the last window's queries",
        )?;
        if self.limit == Some(0) {
            anyhow::bail!("--limit 0 evaluates nothing; give at least 1 (or leave it out)");
        }
        let methods = self.methods(true)?;
        let ids: Vec<&str> = methods.iter().map(|m| m.id.as_str()).collect();
        checks::no_repeats(&ids, "--policies")?;
        checks::output_folder(&self.out, "--out")?;
        checks::clean_temporaries(&self.out)?;
        check_out_dir(&self.out, self.resume, self.force)
    }
}

/// A folder a run may write into: missing, empty, or holding an earlier run (which `resume` or
/// `force` must allow). A file, or a folder of other things, is refused.
fn check_out_dir(out: &Path, resume: bool, force: bool) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!("--out {} is a file, not a folder", out.display());
    }
    let has_run = out.join(JOURNAL_FILE).is_file();
    if resume && !has_run {
        anyhow::bail!("--resume: {} holds no run to continue", out.display());
    }
    if has_run && !resume && !force {
        anyhow::bail!(
            "{} holds a run already: pass --resume to continue it or --force to start over",
            out.display()
        );
    }
    if !has_run && out.is_dir() && std::fs::read_dir(out)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty and holds no run: choose a new or empty folder for --out",
            out.display()
        );
    }
    Ok(())
}

/// The soft tokens for the Judge Q rows: `--soft`, or the shipped ones for the default model.
fn soft_tokens(
    args: &RunArgs,
    model: &Model,
) -> anyhow::Result<Option<(PathBuf, SoftTokens, RunSoftTokens)>> {
    if args.no_soft {
        return Ok(None);
    }
    match &args.soft {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("could not read {}", path.display()))?;
            let tokens = checks::soft_tokens_from_bytes(path, &bytes)?;
            tokens.check_model(path, &model.info)?;
            let record = RunSoftTokens {
                source: path.display().to_string(),
                sha256: hex(&Sha256::digest(&bytes)),
                unfinished_training: tokens.unfinished_training(),
            };
            Ok(Some((path.clone(), tokens, record)))
        }
        None => Ok(shipped::for_model(&model.info)?.map(|(origin, tokens)| {
            let record = RunSoftTokens {
                source: "shipped".into(),
                sha256: shipped::sha256(),
                unfinished_training: tokens.unfinished_training(),
            };
            (origin, tokens, record)
        })),
    }
}

/// Generates or loads the set, then runs (or resumes) it and writes every file.
fn run_set(set: &dyn TaskSet, args: &RunArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    args.check()?;
    set.check()?;
    args.model.check()?;
    let model = args.model.load(&progress)?;
    let soft = soft_tokens(args, &model)?;
    let settings = RunSettings {
        methods: args.methods(soft.is_some())?,
        budgets: if args.ratios.is_empty() {
            args.budgets.clone()
        } else {
            Vec::new()
        },
        ratios: args.ratios.clone(),
        window: args.window,
        placement: args.question_placement,
    };
    settings.validate()?;

    let all = set.samples(&model)?;
    if all.is_empty() {
        anyhow::bail!("the {} set has no samples ({})", set.name(), set.data_dir());
    }
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let mut samples: Vec<TaskSample> = all
        .iter()
        .filter(|s| shard.holds(s.index))
        .cloned()
        .collect();
    samples.truncate(args.limit.unwrap_or(usize::MAX));
    if samples.is_empty() {
        anyhow::bail!(
            "shard {shard} holds none of the set's {} samples",
            all.len()
        );
    }
    for note in set.notes(&samples) {
        eprintln!("note: {note}");
    }
    let mut spec = set.spec();
    if let (Some(limit), serde_json::Value::Object(map)) = (args.limit, &mut spec) {
        map.insert("limit".into(), limit.into());
    }
    let header = RunHeader {
        format: JOURNAL_FORMAT,
        program_version: env!("CARGO_PKG_VERSION").into(),
        task_set: set.name().into(),
        data_dir: set.data_dir(),
        spec,
        model: RunModel {
            id: model.info.id.clone(),
            weights_sha256: model.info.weights_sha256.clone(),
        },
        soft_tokens: soft.as_ref().map(|(_, _, record)| record.clone()),
        methods: method_records(&settings.methods),
        budgets: settings.budgets.clone(),
        ratios: settings.ratios.clone(),
        window: settings.window,
        placement: settings.placement,
        samples: all.len(),
        shard,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("could not create {}", args.out.display()))?;
    let mut journal = if args.resume {
        Journal::resume(&args.out, header)?
    } else {
        Journal::create(&args.out, header, args.force)?
    };
    write_samples(&args.out, &samples)?;

    let started = Instant::now();
    let already = journal.done().len();
    let on_sample = |done: usize, total: usize| {
        let fresh = done.saturating_sub(already).max(1);
        let per = started.elapsed().as_secs_f64() / fresh as f64;
        eprintln!(
            "[{done}/{total}] samples done, {:.0} s each, about {:.0} min left",
            per,
            per * (total - done) as f64 / 60.0
        );
    };
    let soft_ref = soft
        .as_ref()
        .map(|(path, tokens, _)| (tokens, path.as_path()));
    let outcome = run(
        &model,
        &samples,
        soft_ref,
        &settings,
        &mut journal,
        &progress,
        &on_sample,
    )?;
    progress.finish();
    let header = journal.header().clone();
    drop(journal);
    finish(&args.out, &header)?;
    if outcome.cancelled {
        eprintln!(
            "stopped: {} samples are kept in {}; `--resume` continues",
            outcome.resumed + outcome.evaluated,
            args.out.display()
        );
    }
    Ok(())
}

/// Writes the tables and figures of the run in `dir` and prints its summary; an error when
/// every sample of the run was skipped (nothing was evaluated).
fn finish(dir: &Path, header: &RunHeader) -> anyhow::Result<()> {
    let (_, results) = journal::read(dir)?;
    write_outputs(dir, header, &results)?;
    write_run_figures(dir, header, &results)?;
    let summary_path = dir.join("summary.md");
    let summary = std::fs::read_to_string(&summary_path)
        .with_context(|| format!("could not read back {}", summary_path.display()))?;
    print!("{summary}");
    println!("wrote the run to {}", dir.display());
    if let Some(reason) = results
        .iter()
        .map(|r| r.skipped.as_deref())
        .collect::<Option<Vec<&str>>>()
        .and_then(|reasons| reasons.first().copied())
    {
        anyhow::bail!(
            "none of the run's {} samples was evaluated; every one was skipped (the first because {reason})",
            results.len()
        );
    }
    Ok(())
}

/// `samples.jsonl`: the samples of this run in full (context included), so that a sample can
/// be opened in the explorer. Equal samples on resume leave the file as it is.
fn write_samples(dir: &Path, samples: &[TaskSample]) -> anyhow::Result<()> {
    let mut text = String::new();
    for sample in samples {
        text.push_str(&serde_json::to_string(sample)?);
        text.push('\n');
    }
    let path = dir.join("samples.jsonl");
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    judgeq::export::write_new(&path, text.as_bytes(), judgeq::export::Overwrite::Replace)?;
    Ok(())
}

/// Joins shard folders into one run.
fn run_merge(args: &MergeArgs) -> anyhow::Result<()> {
    super::signals::install(None)?;
    checks::output_folder(&args.out, "--out")?;
    check_out_dir(&args.out, false, args.force)?;
    if let Some(missing) = args
        .runs
        .iter()
        .find(|run| !run.join(JOURNAL_FILE).is_file())
    {
        anyhow::bail!(
            "{} holds no run of judgeq tasks (no {JOURNAL_FILE})",
            missing.display()
        );
    }
    let merged = merge(&args.runs)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("could not create {}", args.out.display()))?;
    let mut journal = Journal::create(&args.out, merged.header.clone(), args.force)?;
    for result in &merged.results {
        journal.append(result.clone())?;
    }
    drop(journal);
    let mut samples: Vec<TaskSample> = Vec::new();
    for run in &args.runs {
        let text = std::fs::read_to_string(run.join("samples.jsonl")).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            samples.push(serde_json::from_str(line).with_context(|| {
                format!(
                    "{}: a line is not a sample",
                    run.join("samples.jsonl").display()
                )
            })?);
        }
    }
    samples.sort_by_key(|s| s.index);
    samples.dedup_by_key(|s| s.index);
    write_samples(&args.out, &samples)?;
    for shard in &merged.missing_shards {
        eprintln!("note: shard {shard} was not given");
    }
    if merged.missing_samples > 0 {
        eprintln!(
            "note: {} samples of the sweep are not finished in any given shard",
            merged.missing_samples
        );
    }
    finish(&args.out, &merged.header)
}

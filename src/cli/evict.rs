//! `judgeq evict`: every policy at every budget over one document, with metrics, keep masks
//! and the answers decoded under eviction.

use anyhow::Context;
use clap::Args;
use judgeq::attention::{Granularity, Pooling, QuerySource, RowReduce, source_scores};
use judgeq::export::{
    AnswerAgreement, DataExtras, EvictionSettings, HeadAxis, MetricsRow, PolicyKeep, SourceScores,
    export_file_names, metrics_table, row_sources, write_session_data,
};
use judgeq::inspect::{PrefilledPrompt, inspect_prompt};
use judgeq::model::Model;
use judgeq::policy::policies::{
    judgeq::KEEP_WINDOW, judgeq::WINDOW_LAYERS, oracle::POOLED, streaming_llm::SINKS,
};
use judgeq::policy::{
    AskedBudget, Input, PolicyBank, PolicyId, PolicySettings, Ratio, ScoreInputs, prefill_capture,
};
use judgeq::session::Session;

use super::checks;
use super::inspect::{DocumentArgs, OutputArgs, print_summary};
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq evict`.
#[derive(Args, Debug)]
pub struct EvictArgs {
    #[command(flatten)]
    pub document: DocumentArgs,
    /// Policies to compare, comma-separated (the registry's ids; see `--help`)
    #[arg(long, value_delimiter = ',', help = super::policy_help::policies_help())]
    pub policies: Vec<PolicyId>,
    /// KV entries kept per layer and head, window included, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [64, 128, 256])]
    pub budgets: Vec<usize>,
    /// Budgets as ratios removed (see `--help`)
    #[arg(long, value_delimiter = ',', conflicts_with = "budgets", long_help = super::policy_help::RATIOS_HELP)]
    pub ratios: Vec<Ratio>,
    /// Which heads own a keep set: query-head, kv-head-mean or kv-head-max
    #[arg(long, default_value = "query-head")]
    pub granularity: Granularity,
    /// Score smoothing along the keys: none, maxK or avgK
    #[arg(long, default_value = "max7")]
    pub pooling: Pooling,
    /// Attention-sink tokens StreamingLLM keeps
    #[arg(long, default_value_t = 4)]
    pub sinks: usize,
    /// Judge Q also keeps the last window (variant b) instead of the top entries of the whole prompt
    #[arg(long)]
    pub judgeq_keep_window: bool,
    /// Judge Q ranks the first N layers by the last window's attention instead (0: the paper's method)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub judgeq_window_layers: usize,
    /// Pool the Oracle's scores like the other methods' (a variant of the hit rate; by default the
    /// Oracle ranks the decoded tokens' raw attention, the Judge Q paper's definition)
    #[arg(long)]
    pub oracle_pooled: bool,
    /// A policy parameter, KEY=VALUE, repeatable (the registry's parameters; see `--help`)
    #[arg(long = "param", value_name = "KEY=VALUE", help = super::policy_help::params_help())]
    pub params: Vec<String>,
    /// Skip decoding under eviction (metrics only)
    #[arg(long)]
    pub no_answers: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

impl EvictArgs {
    /// The policy settings the flags describe: the named flags, then each `--param`.
    fn settings(&self) -> anyhow::Result<PolicySettings> {
        let mut settings = PolicySettings {
            window: self.document.window,
            pooling: self.pooling,
            granularity: self.granularity,
            ..PolicySettings::default()
        }
        .with(&SINKS, self.sinks as u64)
        .with(&KEEP_WINDOW, self.judgeq_keep_window)
        .with(&WINDOW_LAYERS, self.judgeq_window_layers as u64)
        .with(&POOLED, self.oracle_pooled);
        for assignment in &self.params {
            settings
                .assign(assignment)
                .with_context(|| format!("--param {assignment}"))?;
        }
        Ok(settings)
    }

    /// The policies asked for, or the default set (the registry's, those the session can rank).
    fn policies(&self, has_soft: bool, settings: &PolicySettings) -> anyhow::Result<Vec<PolicyId>> {
        let needs_soft = |p: &PolicyId| p.needs(settings).contains(&Input::Soft);
        if self.policies.is_empty() {
            return Ok(PolicyId::all()
                .into_iter()
                .filter(|p| p.compared_by_default() && (has_soft || !needs_soft(p)))
                .collect());
        }
        if let Some(policy) = self
            .policies
            .iter()
            .find(|p| needs_soft(p))
            .filter(|_| !has_soft)
        {
            anyhow::bail!(
                "the {} policy needs soft tokens: pass --soft FILE (without --no-soft, the default model gets the shipped ones; other models need a file)",
                policy.id()
            );
        }
        Ok(self.policies.clone())
    }
}

/// Runs the inspection, every policy at every budget, and writes arrays, masks and metrics.
pub fn run(args: &EvictArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    let settings = args.settings()?;
    settings.validate()?;
    checks::budgets(&args.budgets)?;
    checks::ratios(&args.ratios)?;
    let policy_ids: Vec<&str> = args.policies.iter().map(|p| p.id()).collect();
    checks::no_repeats(&policy_ids, "--policies")?;
    args.model.check()?;
    let mut request = args.document.request()?;
    let overwrite = args.output.overwrite()?;
    let model = args.model.load(&progress)?;
    args.document
        .add_shipped_soft_tokens(&mut request, &model.info)?;
    let policies = args.policies(request.soft.is_some(), &settings)?;
    request.capture = prefill_capture(policies.iter().map(|&p| (p, &settings)));
    let layers = model.info.layers;
    if args.judgeq_window_layers > layers {
        anyhow::bail!(
            "--judgeq-window-layers {} is more than the model's {layers} layers (0 to {layers}; 0 is the paper's method)",
            args.judgeq_window_layers
        );
    }
    let prompt = model.placed_prompt(&request.document, &request.question, request.placement)?;
    let kernel = settings.pooling.kernel();
    if kernel > prompt.scored.len() {
        anyhow::bail!(
            "--pooling {}: the kernel spans {kernel} keys but the prompt has only {} scored tokens; use a smaller kernel or --pooling none",
            settings.pooling.label(),
            prompt.scored.len()
        );
    }
    let asked = AskedBudget::list(&args.budgets, &args.ratios);
    let budgets = resolve(&asked, prompt.scored.len())?;
    let sources = row_sources(request.soft.is_some(), &request.capture);
    args.output
        .check_names(&planned_files(&policies, &budgets, &sources))?;
    let (session, mut prefilled) = inspect_prompt(&model, prompt, &request, &progress)?;

    let inputs = ScoreInputs::from_session(&session);
    let bank = PolicyBank::new(&inputs, &settings, &policies)?;
    let mut extras = DataExtras {
        scores: raw_scores(&session),
        eviction: Some(EvictionSettings {
            policies: policies.iter().map(|p| p.id().to_string()).collect(),
            budgets: budgets.clone(),
            ratios: args.ratios.clone(),
            settings: serde_json::to_value(&settings)?,
        }),
        ..DataExtras::default()
    };
    let heads = match settings.granularity {
        Granularity::QueryHead => HeadAxis::QueryHeads,
        Granularity::KvHead(_) => HeadAxis::KvHeads,
    };
    for (&asked, &entries) in asked.iter().zip(&budgets) {
        let budget = bank.budget(entries)?;
        for metrics in bank.evaluate(budget)? {
            let selection = bank.select(metrics.policy, budget)?;
            let agreement = if args.no_answers {
                None
            } else {
                Some(answer_under(
                    &model,
                    &mut prefilled,
                    &session,
                    &selection.mask,
                    metrics.policy,
                    &asked.label_kept(entries),
                    &progress,
                )?)
            };
            extras
                .metrics
                .push(MetricsRow::new(&metrics, agreement).with_ratio(asked.ratio()));
            extras.keeps.push(PolicyKeep {
                policy: metrics.policy.id().to_string(),
                budget: entries,
                heads,
                mask: selection.mask,
            });
        }
    }
    progress.finish();

    args.output.create()?;
    write_session_data(&args.output.out, &session, &extras, overwrite)
        .map_err(|e| checks::write_error(e, args.output.force))?;
    print_summary(&session);
    println!(
        "settings: window {}, pooling {}, {}, sinks {}; hit rate against {}",
        settings.window,
        settings.pooling.label(),
        settings.granularity.label(),
        settings.get(&SINKS),
        if settings.get(&POOLED) {
            "the pooled oracle (--oracle-pooled, a variant)"
        } else {
            "the raw oracle (the paper's definition)"
        }
    );
    print!("{}", metrics_table(&extras.metrics));
    println!("wrote results to {}", args.output.out.display());
    Ok(())
}

/// The entries each asked budget keeps on a prompt of `prompt_len` tokens; refuses two ratios
/// that keep the same number (they would write the same keep masks).
fn resolve(asked: &[AskedBudget], prompt_len: usize) -> anyhow::Result<Vec<usize>> {
    let budgets: Vec<usize> = asked.iter().map(|a| a.entries_for(prompt_len)).collect();
    for (i, entries) in budgets.iter().enumerate() {
        if let Some(j) = budgets[..i].iter().position(|e| e == entries) {
            anyhow::bail!(
                "{} and {} both keep {entries} of the prompt's {prompt_len} tokens; give --ratios further apart",
                asked[j],
                asked[i]
            );
        }
    }
    Ok(budgets)
}

/// The files the run will write: the rows and scores of every query source in `sources`, a
/// keep mask per policy and budget, the answer, the metrics and the manifest.
fn planned_files(policies: &[PolicyId], budgets: &[usize], sources: &[QuerySource]) -> Vec<String> {
    let keeps: Vec<(&str, usize)> = budgets
        .iter()
        .flat_map(|&budget| policies.iter().map(move |p| (p.id(), budget)))
        .collect();
    export_file_names(sources, sources, &keeps, true)
}

/// Each query source's scores (rows summed, per query head), for `scores_<source>.npy`.
fn raw_scores(session: &Session) -> Vec<SourceScores> {
    QuerySource::ALL
        .into_iter()
        .filter_map(|source| {
            let rows = session.rows(source)?;
            Some(SourceScores {
                source,
                heads: HeadAxis::QueryHeads,
                scores: source_scores(rows.view(), RowReduce::Sum),
            })
        })
        .collect()
}

/// Decodes under `mask` and compares the answer with the full-cache one.
fn answer_under(
    model: &Model,
    prefilled: &mut PrefilledPrompt,
    session: &Session,
    mask: &judgeq::attention::KeepMask,
    policy: PolicyId,
    budget: &str,
    progress: &StderrProgress,
) -> anyhow::Result<AnswerAgreement> {
    let label = format!("{} @ {budget}", policy.label());
    let answer = prefilled.decode_under(
        model,
        mask,
        session.settings.decode_tokens,
        &label,
        progress,
    )?;
    Ok(AnswerAgreement::between(&session.answer, &answer))
}

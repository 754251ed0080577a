//! `judgeq train`: trains Judge Q soft tokens for a model on a prompt file.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::checks;
use super::model_args::ModelArgs;
use super::train_progress::TrainProgress;
use judgeq::attention::{Granularity, Pooling};
use judgeq::judgeq::checkpoint::state_path;
use judgeq::judgeq::data::{PromptFile, SkipReason, read_prompts};
use judgeq::judgeq::fitting::TooLong;
use judgeq::judgeq::init::SoftInit;
use judgeq::judgeq::objective::{LayerSet, LayerWeight, LossKind, ObjectiveSettings};
use judgeq::judgeq::optimizer::AdamSettings;
use judgeq::judgeq::settings::EpochRecord;
use judgeq::judgeq::targets::{TargetCache, TargetSettings};
use judgeq::judgeq::{
    Start, TrainError, TrainEvent, TrainJob, TrainObserver, TrainSettings, train,
};

/// Arguments of `judgeq train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Prompt file: JSON Lines of {"prompt"}, {"document","question"}, ShareGPT
    /// {"conversations"} or {"messages"} records (or a JSON array of them).
    #[arg(long)]
    pub data: PathBuf,
    /// Soft-token file to write; its training state goes beside it
    /// (NAME.train-state.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Soft tokens to train (8–64 are sensible; the paper uses 32).
    #[arg(long, default_value_t = TrainSettings::default().soft_tokens)]
    pub soft_tokens: usize,
    /// Initialisation: vocab (copies of random token embeddings) or normal (noise with the
    /// embeddings' standard deviation).
    #[arg(long, default_value_t = TrainSettings::default().init)]
    pub init: SoftInit,
    /// Adam's learning rate.
    #[arg(long, default_value_t = AdamSettings::default().learning_rate)]
    pub lr: f64,
    /// Passes over the training examples.
    #[arg(long, default_value_t = TrainSettings::default().epochs)]
    pub epochs: usize,
    /// Stop after this many optimizer steps (before the epochs are done); 0 writes the
    /// initial soft tokens (an untrained baseline).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Examples whose gradients are averaged into one optimizer step.
    #[arg(long, default_value_t = TrainSettings::default().accumulate)]
    pub accumulate: usize,
    /// Seed of the split, the example order and the initialisation.
    #[arg(long, default_value_t = TrainSettings::default().seed)]
    pub seed: u64,
    /// Share of the prompts held out for the validation loss.
    #[arg(long, default_value_t = TrainSettings::default().val_fraction)]
    pub val_fraction: f64,
    /// Longest prompt in tokens (chat template included).
    #[arg(long, default_value_t = TrainSettings::default().max_prompt_tokens)]
    pub max_prompt_tokens: usize,
    /// What to do with longer prompts: truncate (cut in the middle) or skip.
    #[arg(long, default_value_t = TrainSettings::default().too_long)]
    pub too_long: TooLong,
    /// Most tokens of the model's greedy answer that make a target.
    #[arg(long, default_value_t = TargetSettings::default().max_response_tokens)]
    pub max_response_tokens: usize,
    /// Weigh the answer's first tokens more in the target: token j weighs 0.5^(j / N)
    /// (default: the plain mean over the answer, the paper's)
    #[arg(long, value_name = "N")]
    pub target_half_life: Option<f64>,
    /// Loss: mse (the paper's), kl, or topk (cross-entropy on the answer's --loss-top-k keys)
    #[arg(long, default_value_t = LossKind::default())]
    pub loss: LossKind,
    /// Layers in the loss: all, or a list such as 0-9,20.
    #[arg(long, default_value_t = LayerSet::default())]
    pub loss_layers: LayerSet,
    /// Weigh some layers in the loss's mean over layers: LAYERS=WEIGHT, e.g. `11-29=3` (layers
    /// without one weigh 1); repeat it for several groups (default: every layer alike)
    #[arg(long, value_name = "LAYERS=WEIGHT")]
    pub loss_layer_weight: Vec<LayerWeight>,
    /// Renormalise the averaged rows over the prompt keys before the MSE.
    #[arg(long)]
    pub renormalise: bool,
    /// Leave the first N prompt keys (the attention sinks) out of the loss (default 0, the
    /// paper's); with --renormalise the rows are renormalised over the keys that remain
    #[arg(long, default_value_t = ObjectiveSettings::default().skip_first_keys, value_name = "N")]
    pub loss_skip_first: usize,
    /// Keys per head the topk loss asks the soft tokens for
    #[arg(long, default_value_t = ObjectiveSettings::default().top_k, value_name = "K")]
    pub loss_top_k: usize,
    /// Share of the topk loss's weight spread over the top keys by the answer's attention on
    /// them (the rest evenly): 0 asks for the top keys alike, 1 for them in proportion to the
    /// answer's attention
    #[arg(long, default_value_t = ObjectiveSettings::default().top_k_mass_share, value_name = "SHARE")]
    pub loss_top_k_mass_share: f64,
    /// Layers the mass share applies to, e.g. `0-2,11-29` (default all); in the others the top
    /// keys weigh alike
    #[arg(long, default_value_t = LayerSet::default(), value_name = "LAYERS")]
    pub loss_top_k_mass_share_layers: LayerSet,
    /// Pool the soft tokens' averaged row along the keys before the loss, as eviction pools
    /// their scores: none (the paper's), maxK or avgK (e.g. max7, the policies' default)
    #[arg(long, default_value = "none", value_name = "POOLING")]
    pub loss_pooling: Pooling,
    /// Heads the loss compares: query-head (every query head's own rows, the paper's), or
    /// kv-head-mean / kv-head-max (each GQA group reduced to one row before the pooling, as
    /// eviction at `--granularity kv-head-mean` ranks them)
    #[arg(long, default_value = "query-head", value_name = "GRANULARITY")]
    pub loss_granularity: Granularity,
    /// Multiply the MSE by the squared prompt length (rows relative to uniform attention), so
    /// that short and long prompts weigh alike; `--length-normalised false` is the paper's
    /// plain MSE.
    #[arg(long, default_value_t = ObjectiveSettings::default().length_normalised,
          num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub length_normalised: bool,
    /// Write a checkpoint every this many optimizer steps (and at every epoch end).
    #[arg(long, default_value_t = TrainSettings::default().checkpoint_every)]
    pub checkpoint_every: usize,
    /// Continue the run whose training state is beside --out.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Start over, replacing an existing --out and its training state.
    #[arg(long)]
    pub force: bool,
    /// Directory of cached targets (default: targets/ in judgeq's per-user cache).
    #[arg(long)]
    pub target_cache: Option<PathBuf>,
}

impl TrainArgs {
    /// The library settings these arguments ask for.
    pub fn settings(&self) -> TrainSettings {
        TrainSettings {
            soft_tokens: self.soft_tokens,
            init: self.init,
            adam: AdamSettings {
                learning_rate: self.lr,
                ..AdamSettings::default()
            },
            epochs: self.epochs,
            max_steps: self.steps,
            accumulate: self.accumulate,
            seed: self.seed,
            val_fraction: self.val_fraction,
            max_prompt_tokens: self.max_prompt_tokens,
            too_long: self.too_long,
            target: TargetSettings {
                max_response_tokens: self.max_response_tokens,
                half_life: self.target_half_life,
            },
            objective: ObjectiveSettings {
                loss: self.loss,
                layers: self.loss_layers.clone(),
                layer_weights: self.loss_layer_weight.clone(),
                renormalise: self.renormalise,
                length_normalised: self.length_normalised,
                skip_first_keys: self.loss_skip_first,
                top_k: self.loss_top_k,
                top_k_mass_share: self.loss_top_k_mass_share,
                top_k_mass_share_layers: self.loss_top_k_mass_share_layers.clone(),
                pooling: self.loss_pooling,
                granularity: self.loss_granularity,
            },
            checkpoint_every: self.checkpoint_every,
        }
    }
}

/// Runs `judgeq train`; the first Ctrl-C stops at the next step boundary and keeps the
/// checkpoint (once there is one: nothing is written before the first optimizer step).
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let progress = TrainProgress::with_ctrl_c()?;
    args.settings().validate(usize::MAX)?;
    if !(args.lr.is_finite() && args.lr > 0.0) {
        anyhow::bail!(
            "--lr {} must be a positive number (the default is {})",
            args.lr,
            AdamSettings::default().learning_rate
        );
    }
    args.model.check()?;
    check_out(args)?;
    let data = read_prompts(&args.data)?;
    check_data(&data)?;
    let cache_dir = match &args.target_cache {
        Some(dir) => dir.clone(),
        None => TargetCache::default_dir()
            .context("there is no per-user cache directory; pass --target-cache DIR")?,
    };
    let cache = TargetCache::new(&cache_dir)?;
    let model = args.model.load(&progress)?;
    progress.finish();
    let job = TrainJob {
        model: &model,
        data: &data,
        settings: args.settings(),
        out: args.out.clone(),
        start: if args.resume {
            Start::Resume
        } else {
            Start::Fresh { force: args.force }
        },
        cache: &cache,
    };
    progress.note(&format!(
        "model {} ({}), targets cached in {}",
        model.info.id,
        short(&model.info.weights_sha256),
        cache.dir().display()
    ));
    let observer = TrainDisplay {
        progress: &progress,
    };
    match train(&job, &observer, &progress) {
        Ok(summary) if !summary.saved => {
            progress.finish();
            anyhow::bail!(
                "stopped before the first optimizer step; nothing was written to {} (cached targets are kept for the next run)",
                summary.out.display()
            )
        }
        Ok(summary) => {
            progress.finish();
            println!("{}", history_table(&summary.history));
            if summary.cancelled {
                eprintln!(
                    "stopped after {} optimizer steps; the checkpoint {} is kept (continue with --resume)",
                    summary.optimizer_steps,
                    summary.out.display()
                );
            } else {
                eprintln!(
                    "wrote {} ({} optimizer steps; training state in {})",
                    summary.out.display(),
                    summary.optimizer_steps,
                    summary.state.display()
                );
            }
            Ok(())
        }
        Err(TrainError::Cancelled) => {
            progress.finish();
            anyhow::bail!(
                "stopped before training began; nothing was written to {} (cached targets are kept for the next run)",
                args.out.display()
            )
        }
        Err(error) => {
            progress.finish();
            Err(error.into())
        }
    }
}

/// `--out` and its training state, before any model work: a file (not a folder) in a writable
/// folder; existing files only with `--resume` (which needs the state) or `--force`.
fn check_out(args: &TrainArgs) -> anyhow::Result<()> {
    checks::output_file(&args.out, "--out", false)?;
    let state = state_path(&args.out);
    if args.resume {
        if !state.is_file() {
            anyhow::bail!(
                "--resume: there is no training state {} to continue (start without --resume)",
                state.display()
            );
        }
        return Ok(());
    }
    if !args.force
        && let Some(existing) = [&args.out, &state].into_iter().find(|p| p.exists())
    {
        anyhow::bail!(
            "{} exists; pass --resume to continue that run or --force to start over and replace it",
            existing.display()
        );
    }
    if state.is_dir() {
        anyhow::bail!(
            "the training state {} would replace a folder; choose another --out",
            state.display()
        );
    }
    checks::clean_temporaries(&checks::folder(&args.out))
}

/// Refuses a prompt file with nothing to train on, naming it and what was skipped.
fn check_data(data: &PromptFile) -> anyhow::Result<()> {
    if data.records.is_empty() {
        anyhow::bail!(
            "{} holds no usable prompt ({} record(s) skipped: {} without a human turn, {} empty)",
            data.path.display(),
            data.skipped.len(),
            data.skipped_for(SkipReason::NoHumanTurn),
            data.skipped_for(SkipReason::Empty)
        );
    }
    Ok(())
}

/// The first 12 hex digits of a hash.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Per-epoch losses as a Markdown table (epoch 0 is before training).
pub fn history_table(history: &[EpochRecord]) -> String {
    let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.4e}"));
    let mut out = String::from(
        "| epoch | steps | train loss | val loss | seconds |\n|---:|---:|---:|---:|---:|\n",
    );
    for r in history {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} |\n",
            r.epoch,
            r.optimizer_steps,
            cell(r.train_loss),
            cell(r.val_loss),
            r.seconds
        ));
    }
    out
}

/// Shows training events on the terminal.
struct TrainDisplay<'a> {
    progress: &'a TrainProgress,
}

impl TrainObserver for TrainDisplay<'_> {
    fn event(&self, event: &TrainEvent) {
        let p = self.progress;
        match event {
            TrainEvent::Note(text) => p.note(text),
            TrainEvent::Targets {
                done,
                total,
                cached,
            } => p.bar(
                "targets",
                *done,
                *total,
                &format!("{cached} from cache"),
            ),
            TrainEvent::Started {
                total_steps,
                done_steps,
            } => p.bar("training", *done_steps, *total_steps, ""),
            TrainEvent::Step {
                epoch,
                optimizer_steps,
                loss,
                epoch_loss,
                tokens_per_second,
            } => p.advance(
                *optimizer_steps,
                &format!(
                    "epoch {epoch}  loss {loss:.3e}  mean {epoch_loss:.3e}  {tokens_per_second:.0} tok/s"
                ),
            ),
            TrainEvent::Epoch(record) => p.note(&format!(
                "epoch {}: train loss {}, val loss {} ({:.0} s)",
                record.epoch,
                record.train_loss.map_or("–".into(), |v| format!("{v:.4e}")),
                record.val_loss.map_or("–".into(), |v| format!("{v:.4e}")),
                record.seconds
            )),
            TrainEvent::Checkpoint(_) => {}
        }
    }
}

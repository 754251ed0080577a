//! The training run: prompts → targets (cached) → Adam on the soft embeddings, with a
//! validation loss every epoch, checkpoints, `--resume`, and a clean stop on cancellation that
//! leaves a loadable checkpoint.
//!
//! A fresh run writes nothing until it has something worth keeping: its first checkpoint
//! follows the first optimizer step (or the end of a run asked for zero steps). A run that
//! fails or is stopped before then leaves `--out` as it was, so the corrected rerun is not
//! blocked by an untrained file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{Tensor, Var};

use crate::atomic_write::Overwrite;
use crate::judgeq::checkpoint::{RunProgress, TrainState, state_path};
use crate::judgeq::data::{PromptFile, SkipReason};
use crate::judgeq::error::{Result, TrainError};
use crate::judgeq::fitting::{Fitted, fit_prompt};
use crate::judgeq::init::initial_embeddings;
use crate::judgeq::optimizer::{Adam, AdamState, to_array, to_tensor};
use crate::judgeq::settings::{DataSummary, EpochRecord, TrainSettings};
use crate::judgeq::step::{loss_and_gradient, prefill_prompt, soft_loss, target_tensor};
use crate::judgeq::targets::{Target, TargetCache, TargetKey};
use crate::model::Model;
use crate::progress::Progress;
use crate::rng::SplitMix64;

/// Random stream of the train/validation split.
const SPLIT_STREAM: u64 = 2;
/// Random streams of the epochs' example orders start here.
const ORDER_STREAM: u64 = 1000;

/// How a run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; `force` allows replacing existing output files.
    Fresh {
        /// Replace an existing soft-token or state file.
        force: bool,
    },
    /// Continue from the checkpoint beside the output file.
    Resume,
}

/// What happens during a run, for a progress display.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainEvent {
    /// A line for the log.
    Note(String),
    /// Targets ready: `done` of `total`, `cached` of them read from the cache.
    Targets {
        /// Prompts whose target is ready.
        done: usize,
        /// Prompts in all.
        total: usize,
        /// Of `done`, read from the cache.
        cached: usize,
    },
    /// Training starts or resumes.
    Started {
        /// Optimizer steps a full run takes.
        total_steps: usize,
        /// Steps already taken.
        done_steps: usize,
    },
    /// One optimizer step was taken.
    Step {
        /// Epoch in progress (1-based).
        epoch: usize,
        /// Optimizer steps taken so far.
        optimizer_steps: usize,
        /// Mean loss of the step's examples.
        loss: f64,
        /// Mean loss of the epoch so far.
        epoch_loss: f64,
        /// Prompt tokens per second of the training steps of this process (prefill and soft
        /// positions, validation excluded).
        tokens_per_second: f64,
    },
    /// An epoch ended (or the run's step limit was reached).
    Epoch(EpochRecord),
    /// A checkpoint was written.
    Checkpoint(PathBuf),
}

/// Receives [`TrainEvent`]s.
pub trait TrainObserver {
    /// Called for every event, on the training thread.
    fn event(&self, event: &TrainEvent);
}

/// An observer that ignores everything.
pub struct Quiet;

impl TrainObserver for Quiet {
    fn event(&self, _event: &TrainEvent) {}
}

/// A training job.
pub struct TrainJob<'a> {
    /// The frozen model.
    pub model: &'a Model,
    /// The prompts.
    pub data: &'a PromptFile,
    /// Settings.
    pub settings: TrainSettings,
    /// The soft-token file to write (its training state goes beside it).
    pub out: PathBuf,
    /// New run or resumed one.
    pub start: Start,
    /// Where targets are cached.
    pub cache: &'a TargetCache,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    /// The soft-token file.
    pub out: PathBuf,
    /// The training-state file.
    pub state: PathBuf,
    /// The data as used.
    pub data: DataSummary,
    /// Losses per epoch (epoch 0: before training).
    pub history: Vec<EpochRecord>,
    /// Optimizer steps taken in all.
    pub optimizer_steps: usize,
    /// Whether the run stopped early on cancellation (the checkpoint is the last state).
    pub cancelled: bool,
    /// Whether the soft-token and state files were written: not when a fresh run stopped
    /// before its first optimizer step.
    pub saved: bool,
}

/// One prompt ready for training.
struct Example {
    ids: Vec<u32>,
    key: TargetKey,
}

/// Runs (or resumes) a training job to its end, or until `progress` is cancelled; in both
/// cases the soft-token file and the training state on disk are the last state reached, once
/// there is one worth keeping (see the module documentation).
pub fn train(
    job: &TrainJob,
    observer: &dyn TrainObserver,
    progress: &dyn Progress,
) -> Result<TrainSummary> {
    let model = job.model;
    let settings = &job.settings;
    settings.validate(model.info.max_context)?;
    settings.objective.check_layers(model.info.layers)?;
    let state_file = state_path(&job.out);
    let saved = match job.start {
        Start::Resume => {
            if !state_file.exists() {
                return Err(TrainError::ResumeMismatch {
                    path: state_file,
                    message: "there is no training state to resume (start without --resume)".into(),
                });
            }
            Some(TrainState::load(&job.out)?)
        }
        Start::Fresh { force } => {
            for path in [&job.out, &state_file] {
                if !force && path.exists() {
                    return Err(TrainError::OutputExists { path: path.clone() });
                }
            }
            None
        }
    };
    if let Some(saved) = &saved {
        check_resumable(saved, job, &state_file)?;
    }

    let (train, val, data) = prepare_examples(job, observer, progress)?;
    if let Some(saved) = &saved
        && saved.data != data
    {
        return Err(TrainError::ResumeMismatch {
            path: state_file,
            message: "the prepared examples differ from the checkpoint's (another target cache or tokenizer?)".into(),
        });
    }

    let transformer = &model.transformer;
    let mut state = match saved {
        Some(saved) => TrainState {
            settings: settings.clone(),
            ..saved
        },
        None => fresh_state(model, settings, data)?,
    };
    let (overwrite, keep_untrained) = match job.start {
        Start::Resume => (Overwrite::Replace, true),
        Start::Fresh { force } => (
            if force {
                Overwrite::Replace
            } else {
                Overwrite::Refuse
            },
            settings.max_steps == Some(0),
        ),
    };
    let mut run = Run {
        job,
        observer,
        progress,
        train,
        val,
        soft: Var::from_tensor(&to_tensor(&state.embeddings, &transformer.device)?)?,
        adam: Adam::new(settings.adam, &state.adam, &transformer.device)?,
        tokens: 0,
        busy: Duration::ZERO,
        overwrite,
        keep_untrained,
        saved: false,
    };
    let cancelled = run.train_epochs(&mut state)?;
    Ok(TrainSummary {
        out: job.out.clone(),
        state: state_file,
        data: state.data,
        history: state.progress.history,
        optimizer_steps: state.progress.optimizer_steps,
        cancelled,
        saved: run.saved,
    })
}

/// The state before the first step: initial embeddings, Adam at zero.
fn fresh_state(model: &Model, settings: &TrainSettings, data: DataSummary) -> Result<TrainState> {
    let avoid: Vec<u32> = model
        .stop_ids
        .iter()
        .copied()
        .chain(special_ids(model))
        .collect();
    let embeddings = initial_embeddings(
        &model.transformer,
        settings.soft_tokens,
        settings.init,
        settings.seed,
        &avoid,
    )?;
    let (rows, columns) = embeddings.dim();
    Ok(TrainState {
        settings: settings.clone(),
        weights_sha256: model.info.weights_sha256.clone(),
        data,
        progress: RunProgress {
            epoch: 0,
            position: 0,
            optimizer_steps: 0,
            epoch_loss_sum: 0.0,
            epoch_loss_steps: 0,
            history: Vec::new(),
            finished: false,
        },
        embeddings,
        adam: AdamState::zeros(rows, columns),
    })
}

/// Refuses a checkpoint made for another model, data file or settings.
fn check_resumable(saved: &TrainState, job: &TrainJob, state_file: &Path) -> Result<()> {
    let mismatch = |message: String| {
        Err(TrainError::ResumeMismatch {
            path: state_file.to_path_buf(),
            message,
        })
    };
    if saved.weights_sha256 != job.model.info.weights_sha256 {
        return mismatch(format!(
            "it was trained on another model (weights sha256 {}…, loaded {}…)",
            saved
                .weights_sha256
                .get(..12)
                .unwrap_or(&saved.weights_sha256),
            job.model
                .info
                .weights_sha256
                .get(..12)
                .unwrap_or(&job.model.info.weights_sha256)
        ));
    }
    if saved.data.sha256 != job.data.sha256 {
        return mismatch(format!(
            "it was trained on other data ({} with sha256 {}…)",
            saved.data.file_name,
            saved.data.sha256.get(..12).unwrap_or(&saved.data.sha256)
        ));
    }
    if let Some(conflict) = job.settings.resume_conflict(&saved.settings) {
        return mismatch(format!("the settings differ: {conflict}"));
    }
    if saved.embeddings.ncols() != job.model.info.hidden_size {
        return mismatch("the soft tokens do not fit the model's width".into());
    }
    Ok(())
}

/// Ids of the tokenizer's special tokens (never used to initialise soft tokens).
fn special_ids(model: &Model) -> Vec<u32> {
    model
        .tokenizer
        .inner()
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, token)| token.special)
        .map(|(id, _)| *id)
        .collect()
}

/// Fits the prompts to the length limit, splits them, and makes sure every target is cached.
fn prepare_examples(
    job: &TrainJob,
    observer: &dyn TrainObserver,
    progress: &dyn Progress,
) -> Result<(Vec<Example>, Vec<Example>, DataSummary)> {
    let settings = &job.settings;
    let model = job.model;
    let mut data = DataSummary {
        file_name: job
            .data
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: job.data.sha256.clone(),
        records: job.data.records.len(),
        skipped_no_human_turn: job.data.skipped_for(SkipReason::NoHumanTurn),
        skipped_empty: job.data.skipped_for(SkipReason::Empty),
        ..DataSummary::default()
    };
    let mut prompts = Vec::new();
    for record in &job.data.records {
        match fit_prompt(
            model,
            &record.text,
            settings.max_prompt_tokens,
            settings.too_long,
        )? {
            Fitted::Whole(layout) => prompts.push(layout.ids),
            Fitted::Truncated { layout, .. } => {
                data.truncated += 1;
                prompts.push(layout.ids);
            }
            Fitted::Skipped { .. } => data.skipped_too_long += 1,
        }
    }
    observer.event(&TrainEvent::Note(format!(
        "{}: {} prompts ({} truncated, {} skipped as longer than {} tokens, {} without a human turn, {} empty)",
        data.file_name,
        prompts.len(),
        data.truncated,
        data.skipped_too_long,
        settings.max_prompt_tokens,
        data.skipped_no_human_turn,
        data.skipped_empty
    )));
    if prompts.is_empty() || (prompts.len() < 2 && settings.val_fraction > 0.0) {
        return Err(TrainError::NoData(format!(
            "{} has {} usable prompt(s): too few to train{}",
            data.file_name,
            prompts.len(),
            if settings.val_fraction > 0.0 {
                " and validate (or pass --val-fraction 0)"
            } else {
                ""
            }
        )));
    }

    let mut order: Vec<usize> = (0..prompts.len()).collect();
    SplitMix64::stream(settings.seed, SPLIT_STREAM).shuffle(&mut order);
    let val_count = if settings.val_fraction > 0.0 {
        ((prompts.len() as f64 * settings.val_fraction).ceil() as usize).clamp(1, prompts.len() - 1)
    } else {
        0
    };
    let mut is_val = vec![false; prompts.len()];
    for &index in &order[..val_count] {
        is_val[index] = true;
    }

    let transformer = &model.transformer;
    let (mut train, mut val) = (Vec::new(), Vec::new());
    let mut cached = 0;
    for (done, (ids, validation)) in prompts.into_iter().zip(is_val).enumerate() {
        if progress.is_cancelled() {
            return Err(TrainError::Cancelled);
        }
        let (target, hit): (Target, bool) = job.cache.get_or_compute(
            transformer,
            &model.info.weights_sha256,
            &ids,
            &model.stop_ids,
            &settings.target,
            progress,
        )?;
        cached += usize::from(hit);
        observer.event(&TrainEvent::Targets {
            done: done + 1,
            total: data.records - data.skipped_too_long,
            cached,
        });
        if !target.is_usable() {
            data.empty_answers += 1;
            continue;
        }
        let key = TargetKey::new(
            &model.info.weights_sha256,
            transformer,
            &ids,
            &settings.target,
        );
        let example = Example { ids, key };
        if validation {
            val.push(example);
        } else {
            data.train_prompt_tokens += example.ids.len();
            train.push(example);
        }
    }
    data.train_examples = train.len();
    data.val_examples = val.len();
    if train.is_empty() {
        return Err(TrainError::NoData(
            "no training example is left (every answer was empty)".into(),
        ));
    }
    Ok((train, val, data))
}

/// A run in progress.
struct Run<'a> {
    job: &'a TrainJob<'a>,
    observer: &'a dyn TrainObserver,
    progress: &'a dyn Progress,
    train: Vec<Example>,
    val: Vec<Example>,
    soft: Var,
    adam: Adam,
    /// Prompt tokens trained on by this process.
    tokens: usize,
    /// Time this process spent in optimizer steps.
    busy: Duration,
    /// How the next checkpoint treats existing files: a fresh run without `force` refuses to
    /// replace a file that appeared meanwhile; later checkpoints replace the run's own.
    overwrite: Overwrite,
    /// Whether a state without optimizer steps is worth a checkpoint (a resumed run, or one
    /// asked for zero steps).
    keep_untrained: bool,
    /// Whether a checkpoint was written.
    saved: bool,
}

impl Run<'_> {
    /// Optimizer steps in one epoch.
    fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.job.settings.accumulate)
    }

    /// Optimizer steps the whole run takes.
    fn total_steps(&self) -> usize {
        let s = &self.job.settings;
        let by_epochs = self.steps_per_epoch() * s.epochs;
        match s.max_steps {
            Some(max) if s.epochs == 0 || max < by_epochs => max,
            _ => by_epochs,
        }
    }

    /// Trains until the end of the run; returns whether it was cancelled. Every return leaves
    /// a checkpoint of the state reached.
    fn train_epochs(&mut self, state: &mut TrainState) -> Result<bool> {
        let settings = self.job.settings.clone();
        let total = self.total_steps();
        self.observer.event(&TrainEvent::Started {
            total_steps: total,
            done_steps: state.progress.optimizer_steps,
        });
        if state.progress.history.is_empty() {
            let start = Instant::now();
            let Some(val_loss) = cancellable(self.validation_loss())? else {
                return Ok(true);
            };
            state.progress.history.push(EpochRecord {
                epoch: 0,
                optimizer_steps: 0,
                train_loss: None,
                val_loss,
                seconds: start.elapsed().as_secs_f64(),
            });
            self.checkpoint(state)?;
        }
        let mut epoch_started = Instant::now();
        loop {
            let p = &state.progress;
            let epoch_done = p.position >= self.train.len();
            let run_done = p.optimizer_steps >= total;
            if epoch_done || (run_done && p.epoch_loss_steps > 0) {
                if !self.end_epoch(state, epoch_started.elapsed().as_secs_f64())? {
                    self.checkpoint(state)?;
                    return Ok(true);
                }
                epoch_started = Instant::now();
                continue;
            }
            if run_done {
                break;
            }
            let mut order: Vec<usize> = (0..self.train.len()).collect();
            SplitMix64::stream(settings.seed, ORDER_STREAM + p.epoch as u64).shuffle(&mut order);
            let end = (p.position + settings.accumulate).min(order.len());
            let batch: Vec<usize> = order[p.position..end].to_vec();
            let step_started = Instant::now();
            let outcome = self.optimizer_step(&batch, p.optimizer_steps)?;
            self.busy += step_started.elapsed();
            let Some(loss) = outcome else {
                self.checkpoint(state)?;
                return Ok(true);
            };
            let p = &mut state.progress;
            p.position = end;
            p.optimizer_steps += 1;
            p.epoch_loss_sum += loss;
            p.epoch_loss_steps += 1;
            self.observer.event(&TrainEvent::Step {
                epoch: p.epoch + 1,
                optimizer_steps: p.optimizer_steps,
                loss,
                epoch_loss: p.epoch_loss_sum / p.epoch_loss_steps as f64,
                tokens_per_second: self.tokens as f64 / self.busy.as_secs_f64().max(1e-9),
            });
            let at_boundary = p.position >= order.len() || p.optimizer_steps >= total;
            if !at_boundary && p.optimizer_steps.is_multiple_of(settings.checkpoint_every) {
                self.checkpoint(state)?;
            }
        }
        state.progress.finished = true;
        self.checkpoint(state)?;
        Ok(false)
    }

    /// Records the epoch's losses (with the validation loss), moves to the next epoch and
    /// writes a checkpoint. A run stopped by its step limit ends its epoch there. Returns
    /// `false` when cancelled during validation (nothing recorded then).
    fn end_epoch(&mut self, state: &mut TrainState, seconds: f64) -> Result<bool> {
        let start = Instant::now();
        let Some(val_loss) = cancellable(self.validation_loss())? else {
            return Ok(false);
        };
        let p = &mut state.progress;
        let record = EpochRecord {
            epoch: p.epoch + 1,
            optimizer_steps: p.optimizer_steps,
            train_loss: (p.epoch_loss_steps > 0)
                .then(|| p.epoch_loss_sum / p.epoch_loss_steps as f64),
            val_loss,
            seconds: seconds + start.elapsed().as_secs_f64(),
        };
        p.history.push(record.clone());
        p.epoch += 1;
        p.position = 0;
        p.epoch_loss_sum = 0.0;
        p.epoch_loss_steps = 0;
        self.observer.event(&TrainEvent::Epoch(record));
        self.checkpoint(state)?;
        Ok(true)
    }

    /// One optimizer step over `batch` (indices into the training examples): the mean loss,
    /// or `None` when cancelled before the step was complete (nothing changed then).
    fn optimizer_step(&mut self, batch: &[usize], step: usize) -> Result<Option<f64>> {
        let transformer = &self.job.model.transformer;
        let objective = &self.job.settings.objective;
        let mut gradient: Option<Tensor> = None;
        let mut loss_sum = 0.0;
        for &index in batch {
            if self.progress.is_cancelled() {
                return Ok(None);
            }
            let example = &self.train[index];
            let target = self.target(example)?;
            let cache = match prefill_prompt(transformer, &example.ids, self.progress) {
                Err(TrainError::Cancelled) => return Ok(None),
                other => other?,
            };
            let result = loss_and_gradient(transformer, &cache, &self.soft, &target, objective)?;
            if !result.loss.is_finite() {
                return Err(TrainError::NonFinite(result.loss as f32, step + 1));
            }
            loss_sum += result.loss;
            self.tokens += example.ids.len();
            gradient = Some(match gradient {
                None => result.gradient,
                Some(sum) => (sum + result.gradient)?,
            });
        }
        let Some(sum) = gradient else {
            return Ok(None);
        };
        let mean = (sum / batch.len() as f64)?;
        self.adam.step(&self.soft, &mean)?;
        Ok(Some(loss_sum / batch.len() as f64))
    }

    /// The target of `example` as a tensor (from the cache; recomputed if it vanished).
    fn target(&self, example: &Example) -> Result<Tensor> {
        let model = self.job.model;
        let target = match self.job.cache.load(&example.key) {
            Some(target) => target,
            None => {
                self.job
                    .cache
                    .get_or_compute(
                        &model.transformer,
                        &model.info.weights_sha256,
                        &example.ids,
                        &model.stop_ids,
                        &self.job.settings.target,
                        self.progress,
                    )?
                    .0
            }
        };
        target_tensor(&model.transformer, &target.attention)
    }

    /// Mean loss over the validation examples, without gradients.
    fn validation_loss(&self) -> Result<Option<f64>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let transformer = &self.job.model.transformer;
        let soft = self.soft.as_tensor().detach();
        let mut sum = 0.0;
        for example in &self.val {
            if self.progress.is_cancelled() {
                return Err(TrainError::Cancelled);
            }
            let target = self.target(example)?;
            let cache = prefill_prompt(transformer, &example.ids, self.progress)?;
            let loss = soft_loss(
                transformer,
                &cache,
                &soft,
                &target,
                &self.job.settings.objective,
            )?;
            sum += loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        }
        Ok(Some(sum / self.val.len() as f64))
    }

    /// Writes the soft-token file and the training state, once they are worth keeping: after
    /// the first optimizer step, or at once when untrained tokens are.
    fn checkpoint(&mut self, state: &mut TrainState) -> Result<()> {
        if state.progress.optimizer_steps == 0 && !self.keep_untrained {
            return Ok(());
        }
        state.embeddings = to_array(self.soft.as_tensor())?;
        state.adam = self.adam.state()?;
        state.save(&self.job.out, &self.job.model.info, self.overwrite)?;
        self.overwrite = Overwrite::Replace;
        self.saved = true;
        self.observer
            .event(&TrainEvent::Checkpoint(self.job.out.clone()));
        Ok(())
    }
}

/// `Ok(None)` for a cancelled computation, so that the caller can checkpoint and stop.
fn cancellable<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(TrainError::Cancelled) => Ok(None),
        Err(other) => Err(other),
    }
}

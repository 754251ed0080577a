//! Terminal plumbing shared by the training room's commands: an indicatif progress bar on
//! stderr that is also the job's [`Progress`] (cancelled by Ctrl-C), and model loading from
//! the common `--model/--device/--dtype` arguments.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use judgeq::model::device::{default_dtype, parse_device, parse_dtype};
use judgeq::model::fetch::default_model_path;
use judgeq::model::{LoadOptions, Model};
use judgeq::progress::{CancelFlag, Progress, Stage};

/// When stderr is not a terminal (a log file), progress is written as a line this often.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// A progress bar on stderr, one phase at a time, and the cancellation flag of the job.
/// When stderr is not a terminal the bar is hidden and progress becomes periodic log lines.
pub struct TerminalProgress {
    cancel: CancelFlag,
    bar: Mutex<Option<ProgressBar>>,
    last_line: Mutex<Option<Instant>>,
}

impl TerminalProgress {
    /// A display with no bar yet.
    pub fn new(cancel: CancelFlag) -> Self {
        Self {
            cancel,
            bar: Mutex::new(None),
            last_line: Mutex::new(None),
        }
    }

    /// Starts (or restarts) a bar for `phase` at `done` of `total`.
    pub fn bar(&self, phase: &str, done: usize, total: usize, message: &str) {
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        let bar = match slot.as_ref() {
            Some(bar) if bar.prefix() == phase => bar.clone(),
            _ => {
                if let Some(old) = slot.take() {
                    old.finish_and_clear();
                }
                let bar = ProgressBar::new(total as u64);
                let style = ProgressStyle::with_template(
                    "{prefix:>9} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(phase.to_string());
                *slot = Some(bar.clone());
                bar
            }
        };
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(message.to_string());
        self.log_line(&bar);
    }

    /// Moves the current bar to `done` with `message`.
    pub fn advance(&self, done: usize, message: &str) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.set_position(done as u64);
            bar.set_message(message.to_string());
            self.log_line(bar);
        }
    }

    /// For a hidden bar, writes its state as a line at most every [`LOG_EVERY`] (and at its end).
    fn log_line(&self, bar: &ProgressBar) {
        if !bar.is_hidden() {
            return;
        }
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        let finished = bar.length() == Some(bar.position());
        if finished || last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            eprintln!(
                "{} {}/{} [{:.0} s] {}",
                bar.prefix(),
                bar.position(),
                bar.length().unwrap_or(0),
                bar.elapsed().as_secs_f64(),
                bar.message()
            );
        }
    }

    /// Prints a line above the bar.
    pub fn note(&self, text: &str) {
        match self.bar.lock().ok().and_then(|slot| slot.clone()) {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl Progress for TerminalProgress {
    fn update(&self, stage: &Stage, done: usize, total: usize) {
        // Fetching and loading get a bar of their own; inner stages of a training step or an
        // evaluation (prefill layers, decoded tokens) are too fine to show.
        if matches!(stage, Stage::Fetching | Stage::Loading) {
            self.bar(&stage.to_string(), done, total, "");
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// A flag that the first Ctrl-C sets (the job stops at its next safe point and keeps its
/// checkpoint or results); a second Ctrl-C exits at once (files are replaced atomically, so
/// none is left half-written).
pub fn cancel_on_ctrl_c() -> anyhow::Result<CancelFlag> {
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    ctrlc::set_handler(move || {
        if flag.is_cancelled() {
            std::process::exit(130);
        }
        eprintln!("stopping at the next step boundary (Ctrl-C again to quit at once)");
        flag.cancel();
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(cancel)
}

/// Loads `--model` (or the default model, fetched when absent) on `--device` in `--dtype`.
pub fn load_model(
    model: Option<&Path>,
    device: &str,
    dtype: Option<&str>,
    progress: &TerminalProgress,
) -> anyhow::Result<Model> {
    let device = parse_device(device)?;
    let dtype = match dtype {
        Some(name) => parse_dtype(name)?,
        None => default_dtype(&device),
    };
    let path = match model {
        Some(path) => path.to_path_buf(),
        None => default_model_path(progress).context("fetching the default model")?,
    };
    let model = Model::load(&path, &LoadOptions { device, dtype }, progress)
        .with_context(|| format!("loading {}", path.display()))?;
    progress.finish();
    Ok(model)
}

//! Progress of `judgeq train`: one bar for the phase (targets, then training steps) with the
//! loss and tokens/s, notes above it, and Ctrl-C as a clean stop (through [`StderrProgress`],
//! which also draws the fetch and load bars). The model's inner stages (prefill layers,
//! decoded tokens) are too fine to show for every training step and are not drawn.
//!
//! When stderr is not a terminal (a log file) the bar is hidden and its state is written as a
//! line every [`LOG_EVERY`] instead.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use judgeq::progress::{Progress, Stage};

use super::progress_bar::StderrProgress;

/// How often a hidden bar writes its state as a line.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The phase bar of a training run.
pub struct TrainProgress {
    inner: StderrProgress,
    bar: Mutex<Option<ProgressBar>>,
    last_line: Mutex<Option<Instant>>,
}

impl TrainProgress {
    /// A display whose cancellation flag Ctrl-C sets.
    pub fn with_ctrl_c() -> anyhow::Result<Self> {
        Ok(Self {
            inner: StderrProgress::with_ctrl_c()?,
            bar: Mutex::new(None),
            last_line: Mutex::new(None),
        })
    }

    /// Shows `phase` at `done` of `total` (a new bar when the phase changes).
    pub fn bar(&self, phase: &str, done: usize, total: usize, message: &str) {
        self.inner.finish();
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
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix:>9} [{elapsed_precise}] [{bar:30}] {pos}/{len} eta {eta} {msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
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
        let bar = self.bar.lock().ok().and_then(|slot| slot.clone());
        if let Some(bar) = bar {
            bar.set_position(done as u64);
            bar.set_message(message.to_string());
            self.log_line(&bar);
        }
    }

    /// Prints a line above the bar.
    pub fn note(&self, text: &str) {
        match self.bar.lock().ok().and_then(|slot| slot.clone()) {
            Some(bar) if !bar.is_hidden() => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.inner.finish();
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
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
}

impl Progress for TrainProgress {
    fn update(&self, stage: &Stage, done: usize, total: usize) {
        if matches!(stage, Stage::Fetching | Stage::Loading) {
            self.inner.update(stage, done, total);
        }
    }

    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

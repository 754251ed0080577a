//! Progress on stderr for the CLI, and Ctrl-C (or SIGTERM) as cancellation.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use judgeq::progress::{CancelFlag, Progress, Stage};

/// Draws one indicatif bar per stage on stderr; cancelled by Ctrl-C.
pub struct StderrProgress {
    current: Mutex<Option<(Stage, ProgressBar)>>,
    cancel: CancelFlag,
}

impl StderrProgress {
    /// A progress display whose cancel flag Ctrl-C (or SIGTERM, SIGHUP) sets; a second signal
    /// ends the process (see [`signals`](super::signals)).
    pub fn with_ctrl_c() -> anyhow::Result<Self> {
        let cancel = CancelFlag::new();
        super::signals::install(Some(cancel.clone()))?;
        Ok(Self {
            current: Mutex::new(None),
            cancel,
        })
    }

    /// Finishes the bar on screen, if any.
    pub fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some((_, bar)) = current.take()
        {
            bar.finish();
        }
    }

    fn new_bar(stage: &Stage, total: usize) -> ProgressBar {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>24} [{bar:32}] {pos}/{len} {per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stage.to_string());
        bar
    }
}

impl Progress for StderrProgress {
    fn update(&self, stage: &Stage, done: usize, total: usize) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        let same_stage = matches!(&*current, Some((shown, _)) if shown == stage);
        if !same_stage {
            if let Some((_, bar)) = current.take() {
                bar.finish();
            }
            *current = Some((stage.clone(), Self::new_bar(stage, total)));
        }
        if let Some((_, bar)) = &*current {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

//! The load or inspection job the worker is running, as the progress bar shows it.

use crate::progress::Stage;
use crate::worker::protocol::{JobId, MemoryInUse, SessionRequest};

/// What a job does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Loading (or fetching) the model; the inspection to run once it is loaded, if any.
    LoadModel {
        /// Run this next.
        then: Option<Box<SessionRequest>>,
    },
    /// Running the document through the model.
    Inspect,
}

/// A running job and its latest progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningJob {
    /// Worker job id.
    pub id: JobId,
    /// What it does.
    pub kind: JobKind,
    /// Latest stage reported.
    pub stage: Option<Stage>,
    /// Units done in that stage.
    pub done: usize,
    /// Units in that stage (0 when unknown).
    pub total: usize,
    /// Whether Cancel was pressed.
    pub cancelling: bool,
    /// Memory in use on the compute device, as last reported.
    pub memory: Option<MemoryInUse>,
}

impl RunningJob {
    /// A job that has not reported yet.
    pub fn new(id: JobId, kind: JobKind) -> Self {
        Self {
            id,
            kind,
            stage: None,
            done: 0,
            total: 0,
            cancelling: false,
            memory: None,
        }
    }

    /// Share done in the current stage, in `[0, 1]`.
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f32 / self.total as f32).clamp(0.0, 1.0)
        }
    }

    /// One line for the progress bar: stage and counts, and the memory in use when known.
    pub fn describe(&self) -> String {
        if self.cancelling {
            return "Cancelling…".to_owned();
        }
        let line = self.stage_and_counts();
        match self.memory {
            Some(memory) => format!("{line} · {memory}"),
            None => line,
        }
    }

    fn stage_and_counts(&self) -> String {
        let unit = match self.stage {
            Some(Stage::Prefill) => " tokens",
            Some(Stage::SoftTokens) => " soft tokens",
            Some(Stage::Lookahead) => " draft tokens",
            Some(Stage::Repeat) => " repeat tokens",
            Some(Stage::Decoding | Stage::DecodingUnderEviction(_)) => " tokens",
            Some(Stage::Training) => " steps",
            Some(Stage::Fetching) => " bytes",
            Some(Stage::Loading) | None => "",
        };
        match (&self.stage, &self.kind) {
            (Some(stage), _) if self.total > 0 => {
                format!("{stage}: {} of {}{unit}", self.done, self.total)
            }
            (Some(stage), _) => format!("{stage}…"),
            (None, JobKind::LoadModel { .. }) => "Loading model…".to_owned(),
            (None, JobKind::Inspect) => "Starting…".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_as_stage_and_counts() {
        let mut job = RunningJob::new(3, JobKind::Inspect);
        assert_eq!(job.describe(), "Starting…");
        job.stage = Some(Stage::Prefill);
        job.done = 512;
        job.total = 2048;
        assert_eq!(job.describe(), "Prefill: 512 of 2048 tokens");
        assert!((job.fraction() - 0.25).abs() < 1e-6);
        job.memory = Some(MemoryInUse {
            bytes: 1_080_000_000,
            gpu: false,
        });
        assert_eq!(
            job.describe(),
            "Prefill: 512 of 2048 tokens · 1.08 GB resident"
        );
        job.cancelling = true;
        assert_eq!(job.describe(), "Cancelling…");
    }
}

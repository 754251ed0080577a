//! The messages between the explorer and the compute thread, and the handle that carries them.
//!
//! The app never runs the model. It sends a [`Request`] through a [`WorkerHandle`] and reads
//! [`Event`]s back once per frame. The compute thread is anything that implements [`Engine`]:
//! the real one (`worker::engine`) answers with the model, the demo engine in `app::demo` with
//! synthetic sessions. [`WorkerHandle::spawn`] runs an engine on its own thread, catches its
//! panics and turns them into [`Event::Failed`], and wakes the UI after every event.
//!
//! Cancellation does not travel through the request queue (the engine is busy while a job runs):
//! every [`Job`] carries a [`CancelFlag`] that [`WorkerHandle::cancel`] sets and the engine reads
//! through [`JobProgress::is_cancelled`] between units of work.
//!
//! What an engine owes the app, per request:
//! - exactly one final event ([`Event::is_final`]): the result, [`Event::Failed`] with a
//!   message written for the user, or [`Event::Cancelled`] once it saw the cancel flag;
//! - progress through `sink.progress(&job)` (a [`crate::progress::Progress`]: stage and counts,
//!   e.g. prefill tokens), which also answers `is_cancelled`;
//! - for [`Request::Inspect`], the document is text the app has already read and checked; the
//!   window and decode counts are the user's; soft tokens are a path to load and check;
//! - for [`Request::DecodeUnderEviction`], each mask is `[layers, heads, n_prompt]` over the
//!   session's prompt, heads being query heads or KV heads as the policy granularity says.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::attention::KeepMask;
use crate::judgeq::shipped::SoftTokenChoice;
use crate::policy::PolicyId;
use crate::progress::{CancelFlag, Progress, Stage};
use crate::session::{Answer, ModelInfo, PrefillCapture, QuestionPlacement, Session};

/// Identifies one request and every event it causes. Unique within one [`WorkerHandle`].
pub type JobId = u64;

/// One job as the engine sees it: its id and the flag that asks it to stop.
#[derive(Clone, Debug)]
pub struct Job {
    /// The id events about this job carry.
    pub id: JobId,
    /// Set by [`WorkerHandle::cancel`]; the engine stops at the next unit of work.
    pub cancel: CancelFlag,
}

/// Where the model comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// The default model (SmolLM2-135M-Instruct), downloaded on first use.
    Default,
    /// A GGUF file or a Hugging Face directory (config.json, tokenizer.json, safetensors).
    Path(PathBuf),
}

/// The explorer's request for a session: a document and question to run through the loaded
/// model, with the user's settings (the engine turns it into an
/// [`crate::inspect::InspectRequest`] once the soft tokens are loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    /// The document text, already read and checked by the app.
    pub document: String,
    /// Where the document was read from, for provenance; `None` for pasted or synthetic text.
    pub document_path: Option<PathBuf>,
    /// The question asked about the document.
    pub question: String,
    /// Where the question goes, and whether eviction sees it.
    pub placement: QuestionPlacement,
    /// Text the answer starts with, placed after the assistant's header as a task's runner
    /// places a sample's answer prefix ([`crate::model::Model::task_prompt`]); empty for a
    /// plain question.
    pub answer_prefix: String,
    /// Byte ranges of `document` to mark (a task sample's needles); the session comes back
    /// with the prompt tokens over each ([`Event::SessionReady`]'s `marked`).
    pub marks: Vec<Range<usize>>,
    /// Judge Q soft tokens to append after the prompt.
    pub soft_tokens: SoftTokenChoice,
    /// Last-window size `w` (queries of the SnapKV panel).
    pub window: usize,
    /// Tokens to decode greedily with the full cache (queries of the oracle panel).
    pub decode_tokens: usize,
    /// Inputs beyond attention rows to capture (keys, value norms, query statistics): what the
    /// policies chosen in the explorer need, nothing otherwise.
    pub capture: PrefillCapture,
}

/// One keep mask to decode under.
#[derive(Clone, Debug)]
pub struct EvictionCase {
    /// The policy that chose the mask.
    pub policy: PolicyId,
    /// Entries kept per head.
    pub budget: usize,
    /// `[layers, heads, n_prompt]`, heads being query heads or KV heads.
    pub mask: KeepMask,
}

/// What the app asks of the compute thread.
#[derive(Clone, Debug)]
pub enum Request {
    /// Load (or fetch, then load) a model; answered by [`Event::ModelReady`].
    LoadModel {
        /// This job.
        job: Job,
        /// Which model.
        source: ModelSource,
    },
    /// Run a document and question through the loaded model and capture the attention of the
    /// three query sources; answered by [`Event::SessionReady`].
    Inspect {
        /// This job.
        job: Job,
        /// What to run.
        request: SessionRequest,
    },
    /// Decode the session's prompt again with the cache restricted to each mask; answered by
    /// [`Event::Answers`].
    DecodeUnderEviction {
        /// This job.
        job: Job,
        /// The session whose prompt is decoded (the engine may reuse its cache when it still
        /// holds this session).
        session: Arc<Session>,
        /// One decode per case.
        cases: Vec<EvictionCase>,
        /// Longest answer, in tokens.
        max_tokens: usize,
    },
}

impl Request {
    /// The job this request belongs to.
    pub fn job(&self) -> &Job {
        match self {
            Request::LoadModel { job, .. }
            | Request::Inspect { job, .. }
            | Request::DecodeUnderEviction { job, .. } => job,
        }
    }
}

/// The answer one policy's mask gave.
#[derive(Clone, Debug, PartialEq)]
pub struct EvictionAnswer {
    /// The policy.
    pub policy: PolicyId,
    /// Entries kept per head.
    pub budget: usize,
    /// What the model decoded with only the kept entries.
    pub answer: Answer,
}

/// Memory the compute device holds, as the engine last read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryInUse {
    /// Bytes in use.
    pub bytes: u64,
    /// Whether they are a GPU's memory in use (the whole device's) rather than the process's
    /// resident memory on the CPU.
    pub gpu: bool,
}

impl std::fmt::Display for MemoryInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let where_ = if self.gpu {
            "in use on the GPU"
        } else {
            "resident"
        };
        write!(f, "{:.2} GB {where_}", self.bytes as f64 / 1e9)
    }
}

/// Reads the memory in use where the engine computes (`None` when unknown).
pub type MemoryProbe = Arc<dyn Fn() -> Option<MemoryInUse> + Send + Sync>;

/// What the compute thread reports back.
#[derive(Clone, Debug)]
pub enum Event {
    /// `done` of `total` units of `stage` are finished.
    Progress {
        /// The job reporting.
        job: JobId,
        /// What it is doing.
        stage: Stage,
        /// Units finished.
        done: usize,
        /// Units in all.
        total: usize,
        /// Memory in use on the compute device now, when the engine reports it.
        memory: Option<MemoryInUse>,
    },
    /// A model is loaded and ready for [`Request::Inspect`].
    ModelReady {
        /// The job that loaded it.
        job: JobId,
        /// What was loaded.
        info: ModelInfo,
        /// Memory in use on the compute device with the model loaded, when known.
        memory: Option<MemoryInUse>,
    },
    /// An inspection finished.
    SessionReady {
        /// The job that ran it.
        job: JobId,
        /// The result.
        session: Arc<Session>,
        /// The prompt tokens over each of the request's `marks`, in the same order.
        marked: Vec<Range<usize>>,
        /// Memory in use on the compute device with the session's cache held, when known.
        memory: Option<MemoryInUse>,
    },
    /// Decoding under eviction finished, one answer per case in request order.
    Answers {
        /// The job that ran it.
        job: JobId,
        /// The answers.
        answers: Vec<EvictionAnswer>,
    },
    /// The job failed; `message` is written for the user.
    Failed {
        /// The job that failed.
        job: JobId,
        /// What went wrong.
        message: String,
    },
    /// The job stopped because it was cancelled; nothing else will come from it.
    Cancelled {
        /// The job that stopped.
        job: JobId,
    },
}

impl Event {
    /// The job this event belongs to.
    pub fn job(&self) -> JobId {
        match self {
            Event::Progress { job, .. }
            | Event::ModelReady { job, .. }
            | Event::SessionReady { job, .. }
            | Event::Answers { job, .. }
            | Event::Failed { job, .. }
            | Event::Cancelled { job } => *job,
        }
    }

    /// Whether this is the last event of its job.
    pub fn is_final(&self) -> bool {
        !matches!(self, Event::Progress { .. })
    }
}

/// Called after every event so the UI wakes up to read it (the app passes
/// `ctx.request_repaint()`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The engine's end of the event channel.
#[derive(Clone)]
pub struct EventSink {
    events: Sender<Event>,
    waker: Waker,
}

impl EventSink {
    /// Sends an event and wakes the UI. An app that has gone away is not an error.
    pub fn send(&self, event: Event) {
        if self.events.send(event).is_ok() {
            (self.waker)();
        }
    }

    /// A [`Progress`] for `job` that reports through this sink.
    pub fn progress(&self, job: &Job) -> JobProgress {
        JobProgress {
            job: job.clone(),
            sink: self.clone(),
            memory: None,
        }
    }
}

/// Reports a job's progress as [`Event::Progress`] and reads its cancel flag.
pub struct JobProgress {
    job: Job,
    sink: EventSink,
    memory: Option<MemoryProbe>,
}

impl JobProgress {
    /// The same progress, with the memory `probe` reads in every report.
    pub fn reporting_memory(self, probe: MemoryProbe) -> Self {
        Self {
            memory: Some(probe),
            ..self
        }
    }
}

impl Progress for JobProgress {
    fn update(&self, stage: &Stage, done: usize, total: usize) {
        self.sink.send(Event::Progress {
            job: self.job.id,
            stage: stage.clone(),
            done,
            total,
            memory: self.memory.as_ref().and_then(|probe| probe()),
        });
    }

    fn is_cancelled(&self) -> bool {
        self.job.cancel.is_cancelled()
    }
}

/// The compute side: answers requests one at a time on the worker thread.
pub trait Engine: Send + 'static {
    /// Answers `request`, sending its events (at least one final event: ready, answers,
    /// failed or cancelled) through `sink`.
    fn handle(&mut self, request: Request, sink: &EventSink);
}

impl Engine for Box<dyn Engine> {
    fn handle(&mut self, request: Request, sink: &EventSink) {
        (**self).handle(request, sink);
    }
}

/// The app's end of the worker: sends requests, tracks running jobs, reads events.
///
/// Dropping the handle cancels every running job and closes the request channel; the worker
/// thread then stops at the engine's next cancellation check and exits on its own (the app does
/// not wait for it, so closing the window is never held up by a long job).
pub struct WorkerHandle {
    requests: Sender<Request>,
    events: Receiver<Event>,
    running: BTreeMap<JobId, CancelFlag>,
    next_job: JobId,
}

impl WorkerHandle {
    /// Runs `engine` on a new thread named `judgeq-worker`; `waker` is called after each event.
    pub fn spawn(engine: impl Engine, waker: Waker) -> std::io::Result<Self> {
        let (request_tx, request_rx) = crossbeam_channel::unbounded::<Request>();
        let (event_tx, event_rx) = crossbeam_channel::unbounded::<Event>();
        let sink = EventSink {
            events: event_tx,
            waker,
        };
        std::thread::Builder::new()
            .name("judgeq-worker".to_owned())
            .spawn(move || serve(engine, &request_rx, &sink))?;
        Ok(Self {
            requests: request_tx,
            events: event_rx,
            running: BTreeMap::new(),
            next_job: 1,
        })
    }

    /// Queues a request built around a fresh [`Job`] and returns its id.
    pub fn submit(&mut self, build: impl FnOnce(Job) -> Request) -> JobId {
        let job = Job {
            id: self.next_job,
            cancel: CancelFlag::new(),
        };
        self.next_job += 1;
        let id = job.id;
        self.running.insert(id, job.cancel.clone());
        // A worker that is gone is reported by `drain` as a failure of every running job.
        self.requests.send(build(job)).ok();
        id
    }

    /// Asks a job to stop. The engine answers with [`Event::Cancelled`] (or, if it had just
    /// finished, with its result).
    pub fn cancel(&self, job: JobId) {
        if let Some(flag) = self.running.get(&job) {
            flag.cancel();
        }
    }

    /// Whether a job was submitted and has not sent its final event yet.
    pub fn is_running(&self, job: JobId) -> bool {
        self.running.contains_key(&job)
    }

    /// Every event that has arrived, in order, without waiting. Jobs whose final event is
    /// among them stop counting as running. A worker that died (its thread ended) turns every
    /// running job into [`Event::Failed`].
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(event) => {
                    if event.is_final() {
                        self.running.remove(&event.job());
                    }
                    out.push(event);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    for job in std::mem::take(&mut self.running).into_keys() {
                        out.push(Event::Failed {
                            job,
                            message: "The compute thread stopped unexpectedly".to_owned(),
                        });
                    }
                    break;
                }
            }
        }
        out
    }

    /// Blocks until the next event arrives or `timeout` passes (tests and the CLI).
    pub fn wait(&mut self, timeout: std::time::Duration) -> Option<Event> {
        let event = self.events.recv_timeout(timeout).ok()?;
        if event.is_final() {
            self.running.remove(&event.job());
        }
        Some(event)
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        for flag in self.running.values() {
            flag.cancel();
        }
    }
}

/// The worker thread's loop: one request at a time until the app hangs up.
fn serve(mut engine: impl Engine, requests: &Receiver<Request>, sink: &EventSink) {
    while let Ok(request) = requests.recv() {
        let job = request.job().clone();
        if job.cancel.is_cancelled() {
            sink.send(Event::Cancelled { job: job.id });
            continue;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.handle(request, sink);
        }));
        if let Err(panic) = outcome {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            sink.send(Event::Failed {
                job: job.id,
                message: format!("Internal error in the compute thread: {detail}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Answers every load request after checking its cancel flag a few times.
    struct Echo;

    impl Engine for Echo {
        fn handle(&mut self, request: Request, sink: &EventSink) {
            let job = request.job().clone();
            let progress = sink.progress(&job);
            for step in 0..50 {
                if progress.is_cancelled() {
                    sink.send(Event::Cancelled { job: job.id });
                    return;
                }
                progress.update(&Stage::Loading, step, 50);
                std::thread::sleep(Duration::from_millis(2));
            }
            if let Request::Inspect { request, .. } = request {
                assert!(!request.document.is_empty(), "engine panics on empty text");
            }
            sink.send(Event::Failed {
                job: job.id,
                message: "echo".to_owned(),
            });
        }
    }

    fn final_event(handle: &mut WorkerHandle) -> Event {
        loop {
            let event = handle.wait(Duration::from_secs(10)).unwrap();
            if event.is_final() {
                return event;
            }
        }
    }

    fn inspect(job: Job, document: &str) -> Request {
        Request::Inspect {
            job,
            request: SessionRequest {
                document: document.to_owned(),
                document_path: None,
                question: "q".to_owned(),
                placement: QuestionPlacement::End,
                answer_prefix: String::new(),
                marks: Vec::new(),
                soft_tokens: SoftTokenChoice::None,
                window: 4,
                decode_tokens: 4,
                capture: PrefillCapture::default(),
            },
        }
    }

    #[test]
    fn jobs_report_progress_and_finish_in_order() {
        let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        let waker: Waker = Arc::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let mut handle = WorkerHandle::spawn(Echo, waker).unwrap();
        let first = handle.submit(|job| Request::LoadModel {
            job,
            source: ModelSource::Default,
        });
        let second = handle.submit(|job| inspect(job, "text"));
        assert_ne!(first, second);
        assert!(handle.is_running(first) && handle.is_running(second));
        let mut progress = 0;
        let mut finished = Vec::new();
        while finished.len() < 2 {
            match handle.wait(Duration::from_secs(10)).unwrap() {
                Event::Progress { .. } => progress += 1,
                event => finished.push(event.job()),
            }
        }
        assert_eq!(finished, vec![first, second]);
        assert_eq!(progress, 100);
        assert!(!handle.is_running(first) && !handle.is_running(second));
        // The sink wakes the UI right after each send, so the last wake may land just after the
        // last event was received: give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while wakes.load(std::sync::atomic::Ordering::Relaxed) < 102
            && std::time::Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        assert_eq!(wakes.load(std::sync::atomic::Ordering::Relaxed), 102);
    }

    #[test]
    fn cancel_stops_a_running_job_and_skips_a_queued_one() {
        let mut handle = WorkerHandle::spawn(Echo, Arc::new(|| {})).unwrap();
        let running = handle.submit(|job| inspect(job, "text"));
        let queued = handle.submit(|job| inspect(job, "text"));
        // Wait until the first job is under way, then cancel both.
        assert!(matches!(
            handle.wait(Duration::from_secs(10)),
            Some(Event::Progress { .. })
        ));
        handle.cancel(running);
        handle.cancel(queued);
        let mut cancelled = Vec::new();
        while cancelled.len() < 2 {
            match final_event(&mut handle) {
                Event::Cancelled { job } => cancelled.push(job),
                other => panic!("expected a cancellation, got {other:?}"),
            }
        }
        assert_eq!(cancelled, vec![running, queued]);
    }

    #[test]
    fn progress_carries_the_memory_its_probe_reads() {
        let (events, received) = crossbeam_channel::unbounded();
        let sink = EventSink {
            events,
            waker: Arc::new(|| {}),
        };
        let job = Job {
            id: 7,
            cancel: CancelFlag::new(),
        };
        let probe: MemoryProbe = Arc::new(|| {
            Some(MemoryInUse {
                bytes: 1_500_000_000,
                gpu: false,
            })
        });
        sink.progress(&job).update(&Stage::Prefill, 1, 2);
        sink.progress(&job)
            .reporting_memory(probe)
            .update(&Stage::Prefill, 2, 2);
        match received.try_recv().unwrap() {
            Event::Progress { memory, done, .. } => assert_eq!((memory, done), (None, 1)),
            other => panic!("expected progress, got {other:?}"),
        }
        match received.try_recv().unwrap() {
            Event::Progress {
                memory: Some(memory),
                done: 2,
                ..
            } => assert_eq!(memory.to_string(), "1.50 GB resident"),
            other => panic!("expected progress with memory, got {other:?}"),
        }
        let gpu = MemoryInUse {
            bytes: 20_250_000_000,
            gpu: true,
        };
        assert_eq!(gpu.to_string(), "20.25 GB in use on the GPU");
    }

    #[test]
    fn a_panicking_engine_becomes_a_failed_event_and_keeps_serving() {
        let mut handle = WorkerHandle::spawn(Echo, Arc::new(|| {})).unwrap();
        let bad = handle.submit(|job| inspect(job, ""));
        match final_event(&mut handle) {
            Event::Failed { job, message } => {
                assert_eq!(job, bad);
                assert!(message.contains("engine panics on empty text"), "{message}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        let good = handle.submit(|job| inspect(job, "text"));
        match final_event(&mut handle) {
            Event::Failed { job, message } => assert_eq!((job, message.as_str()), (good, "echo")),
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

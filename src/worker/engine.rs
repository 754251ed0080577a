//! The model engine: the compute thread's side of [`super::protocol`], running the real model.
//!
//! It holds the loaded model and the prompt cache of the last inspection, so that decoding under
//! eviction masks needs no second prefill of the same session.

use std::sync::Arc;

use crate::inspect::{InspectRequest, PrefilledPrompt, inspect, inspect_prompt};
use crate::model::device_memory::memory_in_use;
use crate::model::{LoadOptions, Model, ModelError, fetch};
use crate::session::Session;

use super::protocol::{
    Engine, Event, EventSink, EvictionAnswer, EvictionCase, Job, JobId, JobProgress, MemoryInUse,
    MemoryProbe, ModelSource, Request, SessionRequest,
};

/// Why a job did not finish.
enum JobError {
    /// The user cancelled it.
    Cancelled,
    /// It failed; the message is for the user.
    Failed(String),
}

impl From<ModelError> for JobError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Cancelled => JobError::Cancelled,
            other => JobError::Failed(other.to_string()),
        }
    }
}

/// Runs requests with a real model on the compute thread.
///
/// Running out of memory is a failed job like any other (the message says what the run needed
/// and what was free, see [`ModelError::OutOfMemory`]); the engine keeps its model and serves
/// the next request. Every report carries the memory in use on the device.
pub struct ModelEngine {
    options: LoadOptions,
    model: Option<Model>,
    last: Option<(Arc<Session>, PrefilledPrompt)>,
    memory: MemoryProbe,
}

impl ModelEngine {
    /// An engine that loads models on `options`' device and dtype.
    pub fn new(options: LoadOptions) -> Self {
        let device = options.device.clone();
        let gpu = !device.is_cpu();
        let memory: MemoryProbe =
            Arc::new(move || memory_in_use(&device).map(|bytes| MemoryInUse { bytes, gpu }));
        Self {
            options,
            model: None,
            last: None,
            memory,
        }
    }

    fn load(
        &mut self,
        job: JobId,
        source: &ModelSource,
        progress: &JobProgress,
    ) -> Result<Event, JobError> {
        let path = match source {
            ModelSource::Default => fetch::default_model_path(progress)?,
            ModelSource::Path(path) => path.clone(),
        };
        // Free the old model and cache before loading the next one.
        self.model = None;
        self.last = None;
        let model = Model::load(&path, &self.options, progress)?;
        let info = model.info.clone();
        self.model = Some(model);
        Ok(Event::ModelReady {
            job,
            info,
            memory: (self.memory)(),
        })
    }

    fn inspect(
        &mut self,
        job: JobId,
        app_request: &SessionRequest,
        progress: &JobProgress,
    ) -> Result<Event, JobError> {
        let model = self.model.as_ref().ok_or_else(no_model)?;
        let soft = app_request
            .soft_tokens
            .resolve(&model.info)
            .map_err(|e| JobError::Failed(e.to_string()))?;
        let request = InspectRequest {
            document: app_request.document.clone(),
            question: app_request.question.clone(),
            placement: app_request.placement,
            window: app_request.window,
            decode_tokens: app_request.decode_tokens,
            soft,
            capture: app_request.capture,
        };
        self.last = None;
        let plain = app_request.answer_prefix.is_empty() && app_request.marks.is_empty();
        let (session, prefilled, marked) = if plain {
            let (session, prefilled) = inspect(model, &request, progress)?;
            (session, prefilled, Vec::new())
        } else {
            // A task sample: the prompt the task runner builds, answer prefix included.
            let (prompt, marked) = model.placed_task_prompt(
                &app_request.document,
                &app_request.question,
                &app_request.answer_prefix,
                &app_request.marks,
                app_request.placement,
            )?;
            let (session, prefilled) = inspect_prompt(model, prompt, &request, progress)?;
            (session, prefilled, marked)
        };
        let session = Arc::new(session);
        self.last = Some((Arc::clone(&session), prefilled));
        Ok(Event::SessionReady {
            job,
            session,
            marked,
            memory: (self.memory)(),
        })
    }

    fn decode(
        &mut self,
        job: JobId,
        session: &Arc<Session>,
        cases: &[EvictionCase],
        max_tokens: usize,
        progress: &JobProgress,
    ) -> Result<Event, JobError> {
        let model = self.model.as_ref().ok_or_else(no_model)?;
        if session.model.weights_sha256 != model.info.weights_sha256 {
            return Err(JobError::Failed(format!(
                "this session was computed with {}, but {} is loaded now: run the document again",
                session.model.id, model.info.id
            )));
        }
        let reuse = matches!(&self.last, Some((held, _)) if Arc::ptr_eq(held, session));
        if !reuse {
            let prefilled =
                PrefilledPrompt::prefill(model, &session.prompt.ids, max_tokens, progress)?;
            self.last = Some((Arc::clone(session), prefilled));
        }
        let Some((_, prefilled)) = self.last.as_mut() else {
            return Err(JobError::Failed("the prompt cache is missing".into()));
        };
        let mut answers = Vec::with_capacity(cases.len());
        for case in cases {
            let label = format!("{} @ {}", case.policy.label(), case.budget);
            let answer = prefilled.decode_under(model, &case.mask, max_tokens, &label, progress)?;
            answers.push(EvictionAnswer {
                policy: case.policy,
                budget: case.budget,
                answer,
            });
        }
        Ok(Event::Answers { job, answers })
    }
}

impl Engine for ModelEngine {
    fn handle(&mut self, request: Request, sink: &EventSink) {
        let job: Job = request.job().clone();
        let progress = sink
            .progress(&job)
            .reporting_memory(Arc::clone(&self.memory));
        let outcome = match &request {
            Request::LoadModel { source, .. } => self.load(job.id, source, &progress),
            Request::Inspect { request, .. } => self.inspect(job.id, request, &progress),
            Request::DecodeUnderEviction {
                session,
                cases,
                max_tokens,
                ..
            } => self.decode(job.id, session, cases, *max_tokens, &progress),
        };
        let event = match outcome {
            Ok(event) => event,
            Err(JobError::Cancelled) => Event::Cancelled { job: job.id },
            Err(JobError::Failed(message)) => Event::Failed {
                job: job.id,
                message,
            },
        };
        sink.send(event);
    }
}

/// The error for requests that need a model before one is loaded.
fn no_model() -> JobError {
    JobError::Failed("no model is loaded yet: load one first".into())
}

//! Reading the worker's events, dropped files and finished exports; asking for answers when
//! the budget slider rests.

use std::path::PathBuf;
use std::sync::Arc;

use egui::Context;

use super::{Explorer, SLIDER_REST_SECONDS};
use crate::app::command::Command;
use crate::app::export_flow::ExportFlow;
use crate::app::jobs::JobKind;
use crate::app::session_view::SessionView;
use crate::app::task_figure::is_task_figure_file;
use crate::session::Session;
use crate::worker::protocol::{Event, MemoryInUse};

/// A status line with the memory in use appended, when the worker reported it.
fn with_memory(status: String, memory: Option<MemoryInUse>) -> String {
    match memory {
        Some(memory) => format!("{status} · {memory}"),
        None => status,
    }
}

impl Explorer {
    pub(super) fn handle_events(&mut self, ctx: &Context) {
        for event in self.worker.drain() {
            match event {
                Event::Progress {
                    job,
                    stage,
                    done,
                    total,
                    memory,
                } => {
                    if let Some(running) = self.job.as_mut().filter(|j| j.id == job) {
                        running.stage = Some(stage);
                        running.done = done;
                        running.total = total;
                        running.memory = memory.or(running.memory);
                    }
                }
                Event::ModelReady { job, info, memory } => {
                    let Some(running) = self.job.take().filter(|j| j.id == job) else {
                        continue;
                    };
                    self.status = with_memory(format!("Loaded {}", info.id), memory);
                    self.model = Some(info);
                    if let JobKind::LoadModel {
                        then: Some(request),
                    } = running.kind
                    {
                        self.submit_inspect(*request);
                    }
                }
                Event::SessionReady {
                    job,
                    session,
                    marked,
                    memory,
                } => {
                    if self.job.as_ref().is_some_and(|j| j.id == job) {
                        self.job = None;
                        self.mark_needles(marked);
                        self.show_session(session);
                        self.status = with_memory(std::mem::take(&mut self.status), memory);
                    }
                }
                Event::Answers { job, answers } => {
                    if let Some(view) = &mut self.view
                        && view.answers.pending.is_some_and(|(id, _)| id == job)
                    {
                        view.answers.pending = None;
                        view.answers.error = None;
                        for answer in answers {
                            view.answers.answers.insert(answer.policy, answer);
                        }
                    }
                }
                Event::Failed { job, message } => {
                    if self.job.as_ref().is_some_and(|j| j.id == job) {
                        self.job = None;
                        self.status =
                            "The last run failed; the previous session is still shown".to_owned();
                        self.error = Some(message);
                    } else if let Some(view) = &mut self.view
                        && view.answers.pending.is_some_and(|(id, _)| id == job)
                    {
                        view.answers.pending = None;
                        view.answers.error = Some(message);
                    }
                }
                Event::Cancelled { job } => {
                    if self.job.as_ref().is_some_and(|j| j.id == job) {
                        self.job = None;
                        self.status = "Cancelled".to_owned();
                    } else if let Some(view) = &mut self.view
                        && view.answers.pending.is_some_and(|(id, _)| id == job)
                    {
                        view.answers.pending = None;
                    }
                }
            }
        }
        if self.job.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    /// Shows a new session; the budget is kept when it fits.
    pub fn show_session(&mut self, session: Arc<Session>) {
        self.generation += 1;
        let keys = session.prompt_len();
        self.status = format!("{} prompt tokens · {}", keys, session.model.id);
        if let Some(note) = &session.settings.soft_tokens_unfinished {
            self.status.push_str(&format!(" · warning: {note}"));
        }
        self.error = None;
        let info = &session.model;
        self.state.view.layer = match self.state.view.layer {
            crate::attention::Pick::One(l) => {
                crate::attention::Pick::One(l.min(info.layers.saturating_sub(1)))
            }
            all => all,
        };
        self.state.view.head = match self.state.view.head {
            crate::attention::Pick::One(h) => {
                crate::attention::Pick::One(h.min(info.query_heads.saturating_sub(1)))
            }
            all => all,
        };
        let mut view = SessionView::new(session, self.generation, self.state.budget);
        view.set_marks(&self.marks);
        self.view = Some(view);
    }

    pub(super) fn handle_drops(&mut self, ctx: &Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            self.commands.push(if is_task_figure_file(&path) {
                Command::OpenTaskFigure(path)
            } else {
                Command::OpenDocument(path)
            });
        }
    }

    pub(super) fn poll_export(&mut self) {
        if let ExportFlow::Writing(rx) = &self.export
            && let Ok(result) = rx.try_recv()
        {
            self.export = ExportFlow::Idle;
            match result {
                Ok(paths) => {
                    let dir = paths
                        .first()
                        .and_then(|p| p.parent())
                        .map(|d| d.display().to_string())
                        .unwrap_or_default();
                    self.status = format!("Exported {} files to {dir}", paths.len());
                }
                Err(message) => self.error = Some(format!("Export failed: {message}")),
            }
        }
    }

    pub(super) fn auto_decode(&mut self, ctx: &Context) {
        let Some(moved) = self.budget_moved_at else {
            return;
        };
        if !self.state.auto_decode {
            self.budget_moved_at = None;
            return;
        }
        let now = ctx.input(|i| i.time);
        let pointer_down = ctx.input(|i| i.pointer.any_down());
        let decoding = self
            .view
            .as_ref()
            .is_some_and(|v| v.answers.pending.is_some());
        let waited = now - moved;
        if waited >= SLIDER_REST_SECONDS && !pointer_down && !decoding {
            self.budget_moved_at = None;
            self.decode_under_eviction();
        } else {
            let left = (SLIDER_REST_SECONDS - waited).max(0.05);
            ctx.request_repaint_after(std::time::Duration::from_secs_f64(left));
        }
    }
}

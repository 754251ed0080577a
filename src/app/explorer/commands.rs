//! Carrying out the frame's commands: dialogs, worker requests, exports.

use std::path::PathBuf;
use std::sync::Arc;

use egui::Context;

use super::{Explorer, LoadedDocument};
use crate::app::command::Command;
use crate::app::export_flow::{ExportFlow, ExportJob, data_extras, figure_file_name, figure_spec};
use crate::app::files::{PickRequest, Purpose};
use crate::app::jobs::{JobKind, RunningJob};
use crate::app::state::{ModelChoice, file_label};
use crate::attention::QuerySource;
use crate::export::Overwrite;
use crate::judgeq::shipped::SoftTokenChoice;
use crate::policy::PolicyId;
use crate::worker::protocol::{EvictionCase, ModelSource, Request, SessionRequest};

impl Explorer {
    pub(super) fn pick(
        &mut self,
        purpose: Purpose,
        near: Option<PathBuf>,
        file_name: Option<String>,
    ) -> Option<PathBuf> {
        let mut request = PickRequest::new(purpose, near.as_deref());
        request.file_name = file_name;
        self.picker.pick(&request)
    }

    pub(super) fn run_command(&mut self, command: Command, ctx: &Context) {
        match command {
            Command::PickModelFile => {
                let near = match &self.state.model {
                    ModelChoice::Path(p) => Some(p.clone()),
                    ModelChoice::Default => None,
                };
                if let Some(path) = self.pick(Purpose::ModelFile, near, None) {
                    self.state.model = ModelChoice::Path(path);
                }
            }
            Command::PickModelFolder => {
                let near = match &self.state.model {
                    ModelChoice::Path(p) => Some(p.clone()),
                    ModelChoice::Default => None,
                };
                if let Some(path) = self.pick(Purpose::ModelFolder, near, None) {
                    self.state.model = ModelChoice::Path(path);
                }
            }
            Command::UseDefaultModel => self.state.model = ModelChoice::Default,
            Command::PickDocument => {
                let near = self.state.document.clone();
                if let Some(path) = self.pick(Purpose::Document, near, None) {
                    self.open_document(path);
                }
            }
            Command::OpenDocument(path) => self.open_document(path),
            Command::PickTaskFigure => {
                let near = self
                    .task_figure
                    .as_ref()
                    .map(|w| w.figure.sidecar.clone())
                    .or_else(|| self.state.document.clone());
                if let Some(path) = self.pick(Purpose::TaskFigure, near, None) {
                    self.open_task_figure(path);
                }
            }
            Command::OpenTaskFigure(path) => self.open_task_figure(path),
            Command::OpenTaskSample(id) => self.open_task_sample(&id),
            Command::PickSoftTokens => {
                let near = match &self.state.soft_token_choice {
                    SoftTokenChoice::File(path) => Some(path.clone()),
                    _ => None,
                };
                if let Some(path) = self.pick(Purpose::SoftTokens, near, None) {
                    self.state.soft_token_choice = SoftTokenChoice::File(path);
                }
            }
            Command::ClearSoftTokens => self.state.soft_token_choice = SoftTokenChoice::None,
            Command::UseShippedSoftTokens => {
                self.state.soft_token_choice = SoftTokenChoice::Shipped;
            }
            Command::Run => self.run(),
            Command::Cancel => {
                if let Some(job) = &mut self.job {
                    self.worker.cancel(job.id);
                    job.cancelling = true;
                }
            }
            Command::DecodeUnderEviction => self.decode_under_eviction(),
            Command::ExportFigure => self.export_figure(ctx),
            Command::ExportData => self.export_data(ctx),
            Command::DismissError => self.error = None,
            Command::SetMarks(lists) => self.set_marks(lists),
        }
    }

    /// Reads a document; on failure the error is shown and the current document and session
    /// stay.
    pub fn open_document(&mut self, path: PathBuf) {
        match crate::document::read_document(&path) {
            Ok(text) => {
                self.status = format!("Opened {}; press Run to inspect it", file_label(&path));
                self.error = None;
                self.document = Some(LoadedDocument {
                    label: file_label(&path),
                    path: Some(path.clone()),
                    text,
                    sample: None,
                });
                self.state.document = Some(path);
            }
            Err(e) => {
                self.error = Some(format!(
                    "Cannot use {} as the document: {e}",
                    file_label(&path)
                ));
            }
        }
    }

    pub(super) fn run(&mut self) {
        if self.job.is_some() {
            return;
        }
        let Some(document) = &self.document else {
            self.error = Some("Open a document first".to_owned());
            return;
        };
        let request = document.request(&self.state);
        let model_ready =
            self.model.is_some() && self.loaded_model.as_ref() == Some(&self.state.model);
        if model_ready {
            self.submit_inspect(request);
        } else {
            let source = match &self.state.model {
                ModelChoice::Default => ModelSource::Default,
                ModelChoice::Path(p) => ModelSource::Path(p.clone()),
            };
            self.loaded_model = Some(self.state.model.clone());
            self.model = None;
            let id = self.worker.submit(|job| Request::LoadModel { job, source });
            self.job = Some(RunningJob::new(
                id,
                JobKind::LoadModel {
                    then: Some(Box::new(request)),
                },
            ));
        }
    }

    pub(super) fn submit_inspect(&mut self, request: SessionRequest) {
        let id = self.worker.submit(|job| Request::Inspect { job, request });
        self.job = Some(RunningJob::new(id, JobKind::Inspect));
    }

    pub(super) fn decode_under_eviction(&mut self) {
        let Some(view) = &mut self.view else {
            return;
        };
        if view.answers.pending.is_some() {
            return;
        }
        let budget = view.budget();
        let mut cases = Vec::new();
        for policy in PolicyId::all()
            .into_iter()
            .filter(|p| self.state.compared.contains(p) && *p != PolicyId::FULL_KV)
        {
            if let Some(Ok(selection)) = view.selection(policy, budget) {
                cases.push(EvictionCase {
                    policy,
                    budget: budget.asked(),
                    mask: selection.mask.clone(),
                });
            }
        }
        if cases.is_empty() {
            view.answers.error = Some("No compared policy has a selection yet".to_owned());
            return;
        }
        let session = Arc::clone(&view.session);
        let max_tokens = self.state.decode_max_tokens;
        let id = self.worker.submit(|job| Request::DecodeUnderEviction {
            job,
            session,
            cases,
            max_tokens,
        });
        view.answers.pending = Some((id, budget.asked()));
    }

    pub(super) fn export_figure(&mut self, ctx: &Context) {
        if !matches!(self.export, ExportFlow::Idle) {
            return;
        }
        let Some(view) = &mut self.view else {
            return;
        };
        let matrices = QuerySource::ALL
            .map(|source| view.matrix(source, self.state.view, ctx).map(|(p, _)| p));
        let spec = match figure_spec(view, &self.state, &matrices) {
            Ok(spec) => spec,
            Err(message) => {
                self.error = Some(format!("Cannot export a figure: {message}"));
                return;
            }
        };
        let info = &view.session.model;
        let name = figure_file_name(&self.state, info.layers, info.query_heads);
        let near = self.state.document.clone();
        let Some(path) = self.pick(Purpose::Figure, near, Some(name)) else {
            return;
        };
        self.start_export(
            ExportJob::Figure {
                path,
                spec: Box::new(spec),
            },
            ctx,
        );
    }

    pub(super) fn export_data(&mut self, ctx: &Context) {
        if !matches!(self.export, ExportFlow::Idle) {
            return;
        }
        let near = self.state.document.clone();
        let Some(dir) = self.pick(Purpose::DataFolder, near, None) else {
            return;
        };
        let Some(view) = &mut self.view else {
            return;
        };
        let extras = data_extras(view, &self.state);
        let session = Arc::clone(&view.session);
        self.start_export(
            ExportJob::Data {
                dir,
                session,
                extras: Box::new(extras),
            },
            ctx,
        );
    }

    pub(super) fn start_export(&mut self, job: ExportJob, ctx: &Context) {
        let existing = job.existing();
        if existing.is_empty() {
            let repaint = ctx.clone();
            self.export =
                ExportFlow::start(job, Overwrite::Refuse, move || repaint.request_repaint());
        } else {
            self.export = ExportFlow::Confirm {
                job: Box::new(job),
                existing,
            };
        }
    }
}

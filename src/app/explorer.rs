//! The explorer: a thin eframe app that owns the persisted [`State`], the worker handle and
//! the current [`SessionView`], draws the panels, and carries out the frame's commands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use egui::{Color32, Context, RichText, Ui};

use crate::app::AppOptions;
use crate::app::colour::ColourScale;
use crate::app::command::{Command, CommandQueue};
use crate::app::export_flow::{ExportFlow, ExportJob, data_extras, figure_file_name, figure_spec};
use crate::app::files::{FilePicker, PickRequest, Purpose};
use crate::app::frame_time::{FrameStats, FrameTimes};
use crate::app::jobs::{JobKind, RunningJob};
use crate::app::lod::Pyramid;
use crate::app::panels::compare_panel::{curves, metrics_table, overview_section};
use crate::app::panels::decode_panel::decode_panel;
use crate::app::panels::document_panel::document_panel;
use crate::app::panels::load_panel::{LoadStatus, load_panel};
use crate::app::panels::policy_panel::policy_panel;
use crate::app::panels::source_panels::source_panels;
use crate::app::panels::toolbar::{SessionShape, budget_slider, colour_controls, head_picker};
use crate::app::session_view::{BankStatus, SessionView};
use crate::app::state::{ModelChoice, STORAGE_KEY, State, ThemeChoice, file_label};
use crate::app::widgets::heatmap::ColourLut;
use crate::attention::QuerySource;
use crate::export::Overwrite;
use crate::policy::PolicyKind;
use crate::session::{ModelInfo, Session};
use crate::worker::protocol::{
    Event, EvictionCase, InspectRequest, ModelSource, Request, WorkerHandle,
};

/// Seconds the budget slider must rest before answers are requested automatically.
const SLIDER_REST_SECONDS: f64 = 0.6;

/// A document read from a file (or given as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedDocument {
    /// Where it came from, if from a file.
    pub path: Option<PathBuf>,
    /// Name for labels.
    pub label: String,
    /// The text.
    pub text: String,
}

/// The explorer app.
pub struct Explorer {
    state: State,
    worker: WorkerHandle,
    picker: Box<dyn FilePicker>,
    commands: CommandQueue,
    job: Option<RunningJob>,
    model: Option<ModelInfo>,
    loaded_model: Option<ModelChoice>,
    document: Option<LoadedDocument>,
    view: Option<SessionView>,
    generation: u64,
    error: Option<String>,
    status: String,
    export: ExportFlow,
    frame_times: FrameTimes,
    lut: (crate::export::Colormap, ColourLut),
    budget_moved_at: Option<f64>,
    persist: bool,
}

impl Explorer {
    /// A new explorer; `storage` holds the state of the last run (ignored when the options say
    /// not to restore it).
    pub fn new(
        ctx: &Context,
        storage: Option<&dyn eframe::Storage>,
        options: AppOptions,
    ) -> std::io::Result<Self> {
        let repaint = ctx.clone();
        let worker =
            WorkerHandle::spawn(options.engine, Arc::new(move || repaint.request_repaint()))?;
        let mut state: State = match storage {
            Some(storage) if options.restore_state => {
                eframe::get_value(storage, STORAGE_KEY).unwrap_or_default()
            }
            _ => State::default(),
        };
        if let Some(model) = options.model {
            state.model = ModelChoice::Path(model);
        }
        if let Some(question) = options.question {
            state.question = question;
        }
        let colormap = state.colour.colormap;
        let mut explorer = Self {
            state,
            worker,
            picker: options.picker,
            commands: CommandQueue::default(),
            job: None,
            model: None,
            loaded_model: None,
            document: None,
            view: None,
            generation: 0,
            error: None,
            status: "Open a document and press Run".to_owned(),
            export: ExportFlow::Idle,
            frame_times: FrameTimes::default(),
            lut: (colormap, ColourLut::new(|t| colormap.rgb(t))),
            budget_moved_at: None,
            persist: options.restore_state,
        };
        if let Some(text) = options.document_text {
            explorer.document = Some(LoadedDocument {
                path: None,
                label: "built-in example".to_owned(),
                text,
            });
        } else if let Some(path) = options.document.or_else(|| explorer.state.document.clone()) {
            explorer.open_document(path);
            // A remembered document that is gone is not worth a red banner at start.
            if options.restore_state {
                explorer.error = None;
            }
        }
        explorer.apply_theme(ctx);
        if options.run_on_start {
            explorer.commands.push(Command::Run);
        }
        Ok(explorer)
    }

    /// The persisted state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The persisted state, for changes from tests and scripts.
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    /// The session shown, if any.
    pub fn session(&self) -> Option<&Arc<Session>> {
        self.view.as_ref().map(|v| &v.session)
    }

    /// Everything derived from the session shown.
    pub fn view(&self) -> Option<&SessionView> {
        self.view.as_ref()
    }

    /// Everything derived from the session shown, mutably (tests and benchmarks pan with it).
    pub fn view_mut(&mut self) -> Option<&mut SessionView> {
        self.view.as_mut()
    }

    /// The document loaded, if any.
    pub fn document(&self) -> Option<&LoadedDocument> {
        self.document.as_ref()
    }

    /// The error shown in the banner, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The status line.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The running load or inspection.
    pub fn job(&self) -> Option<&RunningJob> {
        self.job.as_ref()
    }

    /// Whether an export is being written.
    pub fn is_exporting(&self) -> bool {
        self.export.is_writing()
    }

    /// Frame-time statistics of the recent frames.
    pub fn frame_stats(&self) -> Option<FrameStats> {
        self.frame_times.stats()
    }

    /// Forgets the recorded frame times (benchmarks start measuring after warming up).
    pub fn reset_frame_times(&mut self) {
        self.frame_times.clear();
    }

    /// Queues a command as if a button had been pressed.
    pub fn push_command(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// Draws one frame and carries out its commands.
    pub fn frame(&mut self, ui: &mut Ui) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        self.handle_events(&ctx);
        self.handle_drops(&ctx);
        self.poll_export();
        self.apply_theme(&ctx);
        if let Some(view) = &mut self.view {
            view.axis.begin_frame();
        }

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::Panel::left("load")
            .resizable(true)
            .default_size(270.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("left_scroll")
                    .show(ui, |ui| self.left_panel(ui));
            });
        if self.view.is_some() {
            egui::Panel::right("compare")
                .resizable(true)
                .default_size(340.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("right_scroll")
                        .show(ui, |ui| self.right_panel(ui));
                });
            egui::Panel::bottom("document")
                .resizable(true)
                .default_size(230.0)
                .show(ui, |ui| {
                    if let Some(view) = &mut self.view {
                        document_panel(ui, view, &mut self.state);
                    }
                });
        }
        egui::CentralPanel::default().show(ui, |ui| self.central(ui));
        self.confirm_dialog(&ctx);
        self.drop_overlay(&ctx);

        for command in self.commands.drain() {
            self.run_command(command, &ctx);
        }
        self.auto_decode(&ctx);
        self.frame_times.record(started.elapsed());
    }

    fn apply_theme(&mut self, ctx: &Context) {
        let preference = match self.state.theme {
            ThemeChoice::System => egui::ThemePreference::System,
            ThemeChoice::Light => egui::ThemePreference::Light,
            ThemeChoice::Dark => egui::ThemePreference::Dark,
        };
        if ctx.options(|o| o.theme_preference) != preference {
            ctx.set_theme(preference);
        }
        let colormap = self.state.colour.colormap;
        if self.lut.0 != colormap {
            self.lut = (colormap, ColourLut::new(|t| colormap.rgb(t)));
        }
    }

    fn handle_events(&mut self, ctx: &Context) {
        for event in self.worker.drain() {
            match event {
                Event::Progress {
                    job,
                    stage,
                    done,
                    total,
                } => {
                    if let Some(running) = self.job.as_mut().filter(|j| j.id == job) {
                        running.stage = Some(stage);
                        running.done = done;
                        running.total = total;
                    }
                }
                Event::ModelReady { job, info } => {
                    let Some(running) = self.job.take().filter(|j| j.id == job) else {
                        continue;
                    };
                    self.status = format!("Loaded {}", info.id);
                    self.model = Some(info);
                    if let JobKind::LoadModel {
                        then: Some(request),
                    } = running.kind
                    {
                        self.submit_inspect(*request);
                    }
                }
                Event::SessionReady { job, session } => {
                    if self.job.as_ref().is_some_and(|j| j.id == job) {
                        self.job = None;
                        self.show_session(session);
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
        self.error = None;
        let info = &session.model;
        self.state.view.layer = match self.state.view.layer {
            crate::app::view::Pick::One(l) => {
                crate::app::view::Pick::One(l.min(info.layers.saturating_sub(1)))
            }
            all => all,
        };
        self.state.view.head = match self.state.view.head {
            crate::app::view::Pick::One(h) => {
                crate::app::view::Pick::One(h.min(info.query_heads.saturating_sub(1)))
            }
            all => all,
        };
        self.view = Some(SessionView::new(session, self.generation));
    }

    fn handle_drops(&mut self, ctx: &Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            self.commands.push(Command::OpenDocument(path));
        }
    }

    fn drop_overlay(&self, ctx: &Context) {
        if ctx.input(|i| i.raw.hovered_files.is_empty()) {
            return;
        }
        let screen = ctx.content_rect();
        let painter = ctx.layer_painter(egui::LayerId::new(
            egui::Order::Foreground,
            egui::Id::unique("drop"),
        ));
        painter.rect_filled(screen, 0.0, Color32::from_black_alpha(160));
        painter.text(
            screen.center(),
            egui::Align2::CENTER_CENTER,
            "Drop a .txt or .md file to use it as the document",
            egui::FontId::proportional(22.0),
            Color32::WHITE,
        );
    }

    fn poll_export(&mut self) {
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

    fn menu_bar(&mut self, ui: &mut Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open document…").clicked() {
                    self.commands.push(Command::PickDocument);
                }
                if ui.button("Open model file…").clicked() {
                    self.commands.push(Command::PickModelFile);
                }
                if ui.button("Open model folder…").clicked() {
                    self.commands.push(Command::PickModelFolder);
                }
                if ui.button("Open soft tokens…").clicked() {
                    self.commands.push(Command::PickSoftTokens);
                }
                ui.separator();
                let has_session = self.view.is_some();
                if ui
                    .add_enabled(has_session, egui::Button::new("Export figure…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportFigure);
                }
                if ui
                    .add_enabled(has_session, egui::Button::new("Export data…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportData);
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.label("Theme");
                ui.radio_value(
                    &mut self.state.theme,
                    ThemeChoice::System,
                    "Follow the system",
                );
                ui.radio_value(&mut self.state.theme, ThemeChoice::Light, "Light");
                ui.radio_value(&mut self.state.theme, ThemeChoice::Dark, "Dark");
                ui.separator();
                ui.label("Colormap");
                for colormap in crate::export::Colormap::ALL {
                    ui.radio_value(&mut self.state.colour.colormap, colormap, colormap.name());
                }
                ui.separator();
                ui.checkbox(
                    &mut self.state.show_frame_time,
                    "Frame time in the status bar",
                );
                if ui.button("Show the whole key axis").clicked()
                    && let Some(view) = &mut self.view
                {
                    view.axis.reset();
                }
            });
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let has_session = self.view.is_some();
                if ui
                    .add_enabled(has_session, egui::Button::new("Export data…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportData);
                }
                if ui
                    .add_enabled(has_session, egui::Button::new("Export figure…"))
                    .clicked()
                {
                    self.commands.push(Command::ExportFigure);
                }
                if self.export.is_writing() {
                    ui.spinner();
                    ui.label("Exporting…");
                }
            });
        });
    }

    fn toolbar(&mut self, ui: &mut Ui) {
        let Some(view) = &self.view else {
            ui.horizontal(|ui| {
                ui.label(RichText::new("judgeq").strong());
                ui.weak("KV-cache eviction explorer: what SnapKV's window, Judge Q's soft tokens and the decoded answer attend to, and what each policy keeps");
            });
            return;
        };
        let info = &view.session.model;
        let shape = SessionShape {
            keys: view.keys(),
            layers: info.layers,
            heads: info.query_heads,
        };
        ui.horizontal_wrapped(|ui| {
            let before = self.state.budget;
            if budget_slider(ui, &mut self.state.budget, shape) || before != self.state.budget {
                self.budget_moved_at = Some(ui.input(|i| i.time));
            }
            ui.separator();
            head_picker(ui, &mut self.state.view, shape);
            ui.separator();
            colour_controls(ui, &mut self.state.colour);
        });
    }

    fn status_bar(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            ui.label(&self.status);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if self.state.show_frame_time
                    && let Some(stats) = self.frame_times.stats()
                {
                    ui.weak(format!(
                        "frame {:.1} ms (p95 {:.1}, max {:.1})",
                        stats.mean_ms, stats.p95_ms, stats.max_ms
                    ))
                    .on_hover_text("Time the explorer's own code took per frame over the last frames (drawing and interaction, not the GPU)");
                }
            });
        });
    }

    fn left_panel(&mut self, ui: &mut Ui) {
        let document = self
            .document
            .as_ref()
            .map(|d| (d.label.clone(), d.text.chars().count()));
        let status = LoadStatus {
            model: self
                .model
                .as_ref()
                .filter(|_| self.loaded_model.as_ref() == Some(&self.state.model)),
            document,
            job: self.job.as_ref(),
        };
        load_panel(ui, &mut self.state, &status, &mut self.commands);
        ui.separator();
        let ctx = ui.ctx().clone();
        let (available, bank) = match &mut self.view {
            Some(view) => (
                view.available_policies(),
                Some(view.sync_bank(&self.state.policy, &self.state.needed_policies(), &ctx)),
            ),
            None => (Vec::new(), None),
        };
        policy_panel(ui, &mut self.state, &available, bank.as_ref());
    }

    fn right_panel(&mut self, ui: &mut Ui) {
        let Some(view) = &mut self.view else {
            return;
        };
        let ctx = ui.ctx().clone();
        if let BankStatus::Failed(message) =
            view.sync_bank(&self.state.policy, &self.state.needed_policies(), &ctx)
        {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Policies unavailable: {message}"),
            );
        }
        overview_section(ui, view, &mut self.state, &self.lut.1);
        ui.separator();
        metrics_table(ui, view, &self.state);
        ui.separator();
        curves(ui, view, &mut self.state);
        ui.separator();
        decode_panel(ui, view, &mut self.state, &mut self.commands);
    }

    fn central(&mut self, ui: &mut Ui) {
        if let Some(error) = self.error.clone() {
            egui::Frame::new()
                .fill(ui.visuals().error_fg_color.gamma_multiply(0.15))
                .inner_margin(6.0)
                .corner_radius(4.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.colored_label(
                            ui.visuals().error_fg_color,
                            RichText::new(error).strong(),
                        );
                        if ui.small_button("Dismiss").clicked() {
                            self.commands.push(Command::DismissError);
                        }
                    });
                });
            ui.add_space(4.0);
        }
        let Some(view) = &mut self.view else {
            self.welcome(ui);
            return;
        };
        let ctx = ui.ctx().clone();
        view.sync_bank(&self.state.policy, &self.state.needed_policies(), &ctx);
        let height = ui.available_height();
        source_panels(ui, view, &mut self.state, &self.lut.1, height);
    }

    fn welcome(&self, ui: &mut Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.25);
            ui.heading("Inspect what a KV-cache eviction policy keeps");
            ui.add_space(8.0);
            ui.label("1. Open a document (Open document… in the Load panel, or drop a .txt or .md file on the window)");
            ui.label("2. Type a question about it");
            ui.label("3. Press Run: the model reads the document once and records where its queries look");
            ui.add_space(8.0);
            ui.weak("Then compare, on one key axis, the attention of the last prompt window (SnapKV), of Judge Q's soft tokens and of the decoded answer (the oracle), and drag the budget to see what each policy keeps");
        });
    }

    fn confirm_dialog(&mut self, ctx: &Context) {
        let ExportFlow::Confirm { existing, .. } = &self.export else {
            return;
        };
        let names: Vec<String> = existing.iter().map(|p| file_label(p)).collect();
        let dir = existing
            .first()
            .and_then(|p| p.parent())
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let mut choice = None;
        egui::Modal::new(egui::Id::unique("confirm_overwrite")).show(ctx, |ui| {
            ui.set_max_width(420.0);
            ui.heading("Replace existing files?");
            ui.label(format!(
                "{} file{} already exist{} in {dir}:",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                if names.len() == 1 { "s" } else { "" }
            ));
            for name in names.iter().take(12) {
                ui.monospace(name);
            }
            if names.len() > 12 {
                ui.weak(format!("and {} more", names.len() - 12));
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    choice = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    choice = Some(false);
                }
            });
        });
        match choice {
            Some(true) => {
                if let ExportFlow::Confirm { job, .. } = std::mem::take(&mut self.export) {
                    let repaint = ctx.clone();
                    self.export = ExportFlow::start(*job, Overwrite::Replace, move || {
                        repaint.request_repaint()
                    });
                }
            }
            Some(false) => {
                self.export = ExportFlow::Idle;
                self.status = "Export cancelled; nothing was written".to_owned();
            }
            None => {}
        }
    }

    fn auto_decode(&mut self, ctx: &Context) {
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

    fn pick(
        &mut self,
        purpose: Purpose,
        near: Option<PathBuf>,
        file_name: Option<String>,
    ) -> Option<PathBuf> {
        let mut request = PickRequest::new(purpose, near.as_deref());
        request.file_name = file_name;
        self.picker.pick(&request)
    }

    fn run_command(&mut self, command: Command, ctx: &Context) {
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
            Command::PickSoftTokens => {
                let near = self.state.soft_tokens.clone();
                if let Some(path) = self.pick(Purpose::SoftTokens, near, None) {
                    self.state.soft_tokens = Some(path);
                }
            }
            Command::ClearSoftTokens => self.state.soft_tokens = None,
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
        }
    }

    /// Reads a document; on failure the error is shown and the current document and session
    /// stay.
    pub fn open_document(&mut self, path: PathBuf) {
        match crate::model::document::read_document(&path) {
            Ok(text) => {
                self.status = format!("Opened {}; press Run to inspect it", file_label(&path));
                self.error = None;
                self.document = Some(LoadedDocument {
                    label: file_label(&path),
                    path: Some(path.clone()),
                    text,
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

    fn run(&mut self) {
        if self.job.is_some() {
            return;
        }
        let Some(document) = &self.document else {
            self.error = Some("Open a document first".to_owned());
            return;
        };
        let request = InspectRequest {
            document: document.text.clone(),
            document_path: document.path.clone(),
            question: self.state.question.clone(),
            soft_tokens: self.state.soft_tokens.clone(),
            window: self.state.inspect_window,
            decode_tokens: self.state.decode_tokens,
        };
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

    fn submit_inspect(&mut self, request: InspectRequest) {
        let id = self.worker.submit(|job| Request::Inspect { job, request });
        self.job = Some(RunningJob::new(id, JobKind::Inspect));
    }

    fn decode_under_eviction(&mut self) {
        let Some(view) = &mut self.view else {
            return;
        };
        if view.answers.pending.is_some() {
            return;
        }
        let budget = self.state.budget.clamp(1, view.keys().max(1));
        let mut cases = Vec::new();
        for policy in PolicyKind::ALL
            .into_iter()
            .filter(|p| self.state.compared.contains(p) && *p != PolicyKind::FullKv)
        {
            if let Some(Ok(selection)) = view.selection(policy, budget) {
                cases.push(EvictionCase {
                    policy,
                    budget,
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
        view.answers.pending = Some((id, budget));
    }

    fn export_figure(&mut self, ctx: &Context) {
        if !matches!(self.export, ExportFlow::Idle) {
            return;
        }
        let Some(view) = &mut self.view else {
            return;
        };
        let mut matrices: [Option<(Arc<Pyramid>, ColourScale)>; 3] = Default::default();
        let pyramids = QuerySource::ALL
            .map(|source| view.matrix(source, self.state.view, ctx).map(|(p, _)| p));
        let scales = view.scales(self.state.colour);
        for ((slot, pyramid), scale) in matrices.iter_mut().zip(pyramids).zip(scales) {
            *slot = pyramid.zip(scale);
        }
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

    fn export_data(&mut self, ctx: &Context) {
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

    fn start_export(&mut self, job: ExportJob, ctx: &Context) {
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

impl eframe::App for Explorer {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.frame(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.persist {
            eframe::set_value(storage, STORAGE_KEY, &self.state);
        }
    }
}

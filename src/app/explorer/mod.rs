//! The explorer: a thin eframe app that owns the persisted [`State`], the worker handle and
//! the current [`SessionView`], draws the panels, and carries out the frame's commands.

mod commands;
mod events;
mod layout;
mod task_samples;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use egui::{Context, Ui};

use crate::app::AppOptions;
use crate::app::command::{Command, CommandQueue};
use crate::app::export_flow::ExportFlow;
use crate::app::files::FilePicker;
use crate::app::frame_time::{FrameStats, FrameTimes};
use crate::app::jobs::RunningJob;
use crate::app::marks::MarkedSpans;
use crate::app::panels::document_panel::document_panel;
use crate::app::panels::find_bar::find_bar;
use crate::app::panels::task_figure_window::FigureWindow;
use crate::app::session_view::SessionView;
use crate::app::state::{ModelChoice, STORAGE_KEY, State, ThemeChoice};
use crate::app::task_figure::SamplePrompt;
use crate::app::widgets::heatmap::ColourLut;
use crate::judgeq::shipped::SoftTokenChoice;
use crate::policy::prefill_capture;
use crate::session::{ModelInfo, Session};
use crate::tasks::TaskSample;
use crate::worker::protocol::{SessionRequest, WorkerHandle};

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
    /// The task sample it is the context of, when opened from a needle heatmap.
    pub sample: Option<SamplePrompt>,
}

impl LoadedDocument {
    /// The context of a task sample, labelled with the sample's id.
    pub fn of_sample(sample: &TaskSample) -> Self {
        Self {
            path: None,
            label: format!("sample {}", sample.id),
            text: sample.context.clone(),
            sample: Some(SamplePrompt::of(sample)),
        }
    }

    /// The request that inspects this document with the question and settings in `state`; a
    /// task sample's request carries its answer prefix and needles, so that the model reads
    /// the prompt the task runner built. The prefill captures the keys, value norms or query
    /// statistics only when a policy in use needs them.
    pub fn request(&self, state: &State) -> SessionRequest {
        let (answer_prefix, marks) = match &self.sample {
            Some(sample) => (sample.answer_prefix.clone(), sample.evidence.clone()),
            None => (String::new(), Vec::new()),
        };
        SessionRequest {
            document: self.text.clone(),
            document_path: self.path.clone(),
            question: state.question.clone(),
            placement: state.question_placement,
            answer_prefix,
            marks,
            soft_tokens: state.soft_token_choice.clone(),
            window: state.inspect_window,
            decode_tokens: state.decode_tokens,
            capture: prefill_capture(
                state
                    .needed_policies()
                    .into_iter()
                    .map(|policy| (policy, &state.policy)),
            ),
        }
    }
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
    marks: Vec<MarkedSpans>,
    sample_marks: bool,
    find_query: String,
    task_figure: Option<FigureWindow>,
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
                eframe::get_value::<State>(storage, STORAGE_KEY)
                    .map(State::migrated)
                    .unwrap_or_default()
            }
            _ => State::default(),
        };
        if let Some(model) = options.model {
            state.model = ModelChoice::Path(model);
        }
        if let Some(question) = options.question {
            state.question = question;
        }
        if let Some(soft_tokens) = options.soft_tokens {
            state.soft_token_choice = SoftTokenChoice::File(soft_tokens);
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
            marks: options.marks,
            sample_marks: false,
            find_query: String::new(),
            task_figure: None,
        };
        if let Some(text) = options.document_text {
            explorer.document = Some(LoadedDocument {
                path: None,
                label: "built-in example".to_owned(),
                text,
                sample: None,
            });
        } else if let Some(path) = options.document.or_else(|| explorer.state.document.clone()) {
            explorer.open_document(path);
            // A remembered document that is gone is not worth a red banner at start.
            if options.restore_state {
                explorer.error = None;
            }
        }
        if let Some(path) = options.task_figure {
            explorer.open_task_figure(path);
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

    /// The marked spans set by the program (before cutting to the prompt shown).
    pub fn marks(&self) -> &[MarkedSpans] {
        &self.marks
    }

    /// The needle figure opened, with what is picked in its window.
    pub fn task_figure(&self) -> Option<&FigureWindow> {
        self.task_figure.as_ref()
    }

    /// The find box's text.
    pub fn find_query(&self) -> &str {
        &self.find_query
    }

    /// Sets the find box's text, as if typed (scripts and benchmarks).
    pub fn set_find_query(&mut self, query: impl Into<String>) {
        self.find_query = query.into();
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
        if let Some(view) = &mut self.view {
            egui::Panel::top("find").show(ui, |ui| {
                find_bar(
                    ui,
                    view,
                    &mut self.find_query,
                    &mut self.state.show_profiles,
                );
            });
        }
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
        self.figure_window(&ctx);
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

//! The explorer: an eframe app to inspect KV-cache eviction decisions live.
//!
//! Structure (after rerun's viewer and egui's demo app):
//! - [`explorer::Explorer`]: the thin app; owns the persisted [`state::State`], the worker
//!   handle and the current [`session_view::SessionView`], and carries out the frame's
//!   [`command::Command`]s once per frame;
//! - [`session_view`]: everything derived from a session (matrices, colour scales, textures,
//!   the policy bank, selections and metrics at the current budget), cached by what it
//!   depends on, built off the UI thread when it takes longer than a frame;
//! - [`panels`]: the load panel, toolbar, find bar, source panels, document view, policies,
//!   comparison, answers; [`widgets`]: the heatmap textures with level of detail, key strips
//!   and ruler, marked-span bands, score profiles, colour bar, document text and the
//!   layers × heads grid;
//! - [`marks`] and [`find`]: labelled token ranges drawn on the key axis (a task's needle, the
//!   find box's matches);
//! - [`demo`]: a synthetic engine for the hidden `--demo` mode and the tests.
//!
//! The UI thread never runs the model: it talks to the compute thread only through
//! [`crate::worker::protocol`].

pub mod background;
pub mod command;
pub mod demo;
pub mod explorer;
pub mod export_flow;
pub mod files;
pub mod find;
pub mod frame_time;
pub mod jobs;
pub mod key_viewport;
pub mod lod;
pub mod marks;
pub mod palette;
pub mod panels;
pub mod session_view;
pub mod state;
pub mod task_figure;
pub mod widgets;

use std::path::PathBuf;
use std::time::Duration;

use crate::app::demo::{DemoEngine, DemoShape, EXAMPLE_QUESTION};
use crate::app::explorer::Explorer;
use crate::app::files::{FilePicker, NativePicker};
use crate::app::marks::MarkedSpans;
use crate::document::EXAMPLE_DOCUMENT;
use crate::worker::protocol::Engine;

/// How to start the explorer.
pub struct AppOptions {
    /// The compute engine (the model engine, or the demo engine).
    pub engine: Box<dyn Engine>,
    /// File dialogs.
    pub picker: Box<dyn FilePicker>,
    /// A document to open at start (instead of the remembered one).
    pub document: Option<PathBuf>,
    /// Document text to start with (the demo's example), instead of a file.
    pub document_text: Option<String>,
    /// A question to start with (instead of the remembered one).
    pub question: Option<String>,
    /// A model file or folder to use (instead of the remembered one).
    pub model: Option<PathBuf>,
    /// A soft-token file to use (instead of the remembered one).
    pub soft_tokens: Option<PathBuf>,
    /// Restore the state of the last run and save it on exit.
    pub restore_state: bool,
    /// Press Run as soon as the window opens.
    pub run_on_start: bool,
    /// Name under which eframe stores the state.
    pub app_id: &'static str,
    /// Token ranges to mark on the key axis of every session shown (e.g. a task sample's
    /// needle), each list in its own colour and in the legend.
    pub marks: Vec<MarkedSpans>,
    /// A needle heatmap of a task run to open at start (its sidecar, PNG or SVG).
    pub task_figure: Option<PathBuf>,
}

impl AppOptions {
    /// The explorer with `engine`, the desktop's file dialogs and the remembered state.
    pub fn new(engine: impl Engine) -> Self {
        Self {
            engine: Box::new(engine),
            picker: Box::new(NativePicker),
            document: None,
            document_text: None,
            question: None,
            model: None,
            soft_tokens: None,
            restore_state: true,
            run_on_start: false,
            app_id: "judgeq",
            marks: Vec::new(),
            task_figure: None,
        }
    }

    /// The demo: synthetic attention on the built-in example document, run at once, nothing
    /// remembered.
    pub fn demo() -> Self {
        Self {
            document_text: Some(EXAMPLE_DOCUMENT.to_owned()),
            question: Some(EXAMPLE_QUESTION.to_owned()),
            restore_state: false,
            run_on_start: true,
            app_id: "judgeq-demo",
            ..Self::new(DemoEngine::new(
                DemoShape::default(),
                Duration::from_millis(40),
            ))
        }
    }
}

/// Opens the explorer window and runs until it is closed.
pub fn run(options: AppOptions) -> eframe::Result {
    let app_id = options.app_id;
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("judgeq — KV-cache eviction explorer")
            .with_app_id(app_id)
            .with_inner_size([1600.0, 1000.0])
            .with_min_inner_size([900.0, 600.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        app_id,
        native,
        Box::new(move |cc| Ok(Box::new(Explorer::new(&cc.egui_ctx, cc.storage, options)?))),
    )
}

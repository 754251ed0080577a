//! Every file judgeq writes, from plain data (no candle, no egui).
//!
//! - Safe writes (the ground floor's [`crate::atomic_write`], re-exported here): [`write_new`]
//!   is atomic and never replaces a file unless asked ([`Overwrite`]); [`check_outputs`] and [`existing_files`] check a multi-file export
//!   before anything is written; [`check_writable`] probes a folder before long work;
//!   temporaries of killed runs are removed ([`remove_stale_temporaries`]) and a signal
//!   handler removes the process's own ([`abandon_writes`]).
//! - Data: [`write_session_data`] writes (or replaces whole) a [`Session`](crate::session::Session) as NumPy
//!   `.npy` arrays ([`write_array`], [`write_mask`]), a [`Manifest`], `answer.txt` and, after
//!   an eviction run, scores, keep masks and `metrics.csv` ([`metrics_csv`];
//!   [`metrics_table`] prints the same rows for a terminal).
//! - Reading back: [`read_session_data`] reads such a folder into an [`ExportFolder`] (the
//!   session, scores and keep masks), checked against its manifest.
//! - Task figures ([`task_figures`]): needle-in-a-haystack heatmaps and score-against-budget
//!   curves for `judgeq tasks`, drawn and written the same way, with the samples behind every
//!   heatmap cell in the sidecar.
//! - Figures: a [`FigureSpec`] drawn by [`render_svg`] (vector, heatmaps embedded as PNG) and
//!   [`render_png`] (that SVG rasterised at print resolution), with [`figure_sidecar`] for
//!   provenance; [`write_figure`] writes all three side by side. [`session_figure_spec`]
//!   builds the figure of a session's three query-source panels, for the explorer's "Export
//!   figure…" and `judgeq figure` alike. [`Colormap`], [`ColorScale`] and the sink-aware
//!   [`ColourScale`] are public so the GUI colours its textures exactly as the figures are
//!   coloured.

mod colormap;
mod colour;
mod csv;
mod error;
mod figure;
mod figure_files;
mod fonts;
mod manifest;
mod npy;
mod png;
mod png_encode;
mod read;
mod session_data;
mod session_figure;
mod svg;
mod svg_doc;
pub mod task_figures;
mod ticks;

#[cfg(test)]
mod test_support;

pub use crate::atomic_write::{
    Overwrite, WriteError, abandon_writes, check_outputs, check_writable, existing_files,
    remove_stale_temporaries, write_new, write_new_with,
};
pub use colormap::{ColorScale, Colormap, ScaleMode};
pub use colour::{ColourScale, ColourSettings, format_value};
pub use csv::{AnswerAgreement, METRICS_COLUMNS, MetricsRow, metrics_csv, metrics_table};
pub use error::ExportError;
pub use figure::{
    Downsampling, FigureSidecar, FigureSpec, KeptStrip, KeyAxis, Panel, PanelData, Provenance,
    QueryAxis, SVG_MAX_COLUMNS, SVG_MAX_ROWS, Selector, SidecarPanel, figure_sidecar,
};
pub use figure_files::{FigurePaths, write_figure};
pub use manifest::{
    ArrayInfo, EvictionSettings, FileEntry, MANIFEST_FORMAT, Manifest, ProgramInfo,
};
pub use npy::{write_array, write_mask};
pub use png::{DPI_RANGE, PRINT_DPI, figure_pixels, render_png};
pub use read::{ExportFolder, read_session_data};
pub use session_data::{
    DataExtras, ExistingExport, HeadAxis, MANIFEST_FILE, PolicyKeep, SourceScores, existing_export,
    export_file_names, row_sources, session_file_names, write_session_data,
};
pub use session_figure::{PanelInput, SessionFigureOptions, session_figure_spec, view_matrices};
pub use svg::render_svg;

//! Every file judgeq writes, from plain data (no candle, no egui).
//!
//! - [`write`]: atomic writes that never replace a file unless asked ([`write_new`],
//!   [`Overwrite`]), and the existence check for multi-file exports.
//! - Data: [`write_session_data`] writes a [`Session`](crate::session::Session) as NumPy
//!   `.npy` arrays ([`npy`]), `manifest.json` ([`manifest`]), `answer.txt` and, after an
//!   eviction run, scores, keep masks and `metrics.csv` ([`csv`], which also formats the
//!   metrics as a terminal table).
//! - Figures: a [`FigureSpec`] drawn by [`render_svg`] (vector, heatmaps embedded as PNG) and
//!   [`render_png`] (that SVG rasterised at print resolution), with [`figure_sidecar`] for
//!   provenance. [`Colormap`] and [`ColorScale`] are public so the GUI colours its textures
//!   exactly as the figures are coloured.

pub mod colormap;
pub mod csv;
mod error;
pub mod figure;
pub mod manifest;
pub mod npy;
pub mod png;
pub mod session_data;
pub mod svg;
mod ticks;
pub mod write;

#[cfg(test)]
mod test_support;

pub use colormap::{ColorScale, Colormap, ScaleKind};
pub use csv::{AnswerAgreement, METRICS_COLUMNS, MetricsRow, metrics_csv, metrics_table};
pub use error::ExportError;
pub use figure::{
    FigureSidecar, FigureSpec, KeptStrip, KeyAxis, Panel, PanelData, Provenance, QueryAxis,
    Selector, figure_sidecar,
};
pub use manifest::{ArrayInfo, EvictionSettings, FileEntry, Manifest, ProgramInfo};
pub use npy::{write_array, write_mask};
pub use png::{figure_pixels, render_png};
pub use session_data::{
    DataExtras, HeadAxis, MANIFEST_FILE, PolicyKeep, SourceScores, session_file_names,
    write_session_data,
};
pub use svg::render_svg;
pub use write::{Overwrite, check_outputs, existing_files, write_new, write_new_with};

//! What an exported figure shows: up to a few heatmap panels side by side over one key range,
//! a colour scale, kept/evicted strips, and the provenance that goes into the JSON sidecar.
//!
//! The caller (GUI or CLI) has already chosen the layer, head or aggregation and the key range;
//! the figure draws the matrices it is given. [`crate::export::render_svg`] and
//! [`crate::export::render_png`] draw it; [`figure_sidecar`] describes it.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::export::ExportError;
use crate::export::colormap::ColorScale;
use crate::export::manifest::ProgramInfo;

/// Most heatmap columns embedded in an SVG; longer key ranges are max-pooled down to this.
pub const SVG_MAX_COLUMNS: usize = 2048;
/// Most heatmap rows embedded in an SVG; more queries are max-pooled down to this.
pub const SVG_MAX_ROWS: usize = 1024;

/// A figure: panels side by side over a shared key axis.
#[derive(Clone, Debug)]
pub struct FigureSpec {
    /// A line above the panels (e.g. model, layer and head), if any.
    pub title: Option<String>,
    /// The panels, left to right: usually the three query sources.
    pub panels: Vec<Panel>,
    /// The key range every panel shows.
    pub keys: KeyAxis,
    /// Value mapping, range and colormap, shared by every panel and the colour bar.
    pub scale: ColorScale,
    /// What the values are, for the colour bar (e.g. `attention`).
    pub value_label: String,
    /// The budget the kept strips are drawn at, if any strip is drawn.
    pub budget: Option<usize>,
    /// Figure width in millimetres (180 mm is a full page width in most journals).
    pub width_mm: f32,
    /// Where the data came from, for the sidecar.
    pub provenance: Provenance,
}

impl FigureSpec {
    /// Default figure width: a full page width.
    pub const DEFAULT_WIDTH_MM: f32 = 180.0;

    /// Number of keys shown.
    pub fn key_count(&self) -> usize {
        self.keys.end.saturating_sub(self.keys.start)
    }

    /// Checks that every panel, strip and label matches the key range and that the scale and
    /// width make sense.
    pub fn validate(&self) -> Result<(), ExportError> {
        let invalid = |reason: String| Err(ExportError::InvalidFigure(reason));
        let n = self.key_count();
        if n == 0 {
            return invalid(format!(
                "the key range {}..{} is empty",
                self.keys.start, self.keys.end
            ));
        }
        if self.panels.is_empty() || self.panels.len() > 6 {
            return invalid(format!(
                "a figure has 1 to 6 panels, not {}",
                self.panels.len()
            ));
        }
        if !(40.0..=600.0).contains(&self.width_mm) {
            return invalid(format!(
                "the width {} mm is outside 40–600 mm",
                self.width_mm
            ));
        }
        self.scale.validate().map_err(ExportError::InvalidFigure)?;
        if let Some(tokens) = &self.keys.tokens
            && tokens.len() != n
        {
            return invalid(format!("{} token labels for {n} keys", tokens.len()));
        }
        for panel in &self.panels {
            if let PanelData::Heatmap(values) = &panel.data {
                let (rows, cols) = values.dim();
                if rows == 0 || cols != n {
                    return invalid(format!(
                        "panel {:?} has a {rows} × {cols} matrix; it needs at least one query row and {n} key columns",
                        panel.title
                    ));
                }
            }
            if let Some(strip) = &panel.kept
                && strip.kept.len() != n
            {
                return invalid(format!(
                    "the kept strip of panel {:?} has {} entries for {n} keys",
                    panel.title,
                    strip.kept.len()
                ));
            }
        }
        Ok(())
    }
}

/// One panel: a queries × keys matrix (or a reason it is missing) and an optional kept strip.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Panel title, e.g. "Last-window queries (SnapKV)".
    pub title: String,
    /// The matrix, or why there is none.
    pub data: PanelData,
    /// What the rows are.
    pub queries: QueryAxis,
    /// Which keys a policy keeps, drawn under the heatmap.
    pub kept: Option<KeptStrip>,
}

/// The content of a panel.
#[derive(Clone, Debug)]
pub enum PanelData {
    /// `[queries, keys]` values over the shown key range, already aggregated by the caller.
    Heatmap(Array2<f32>),
    /// No data for this source; the text says why (e.g. "no soft tokens loaded").
    Missing(String),
}

/// The query axis of a panel: rows are `first`, `first + 1`, ….
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAxis {
    /// What a row is, e.g. "query position", "soft token", "decoded token".
    pub label: String,
    /// Index of the first row (prompt position of the first window query, 0 for soft tokens).
    pub first: usize,
}

/// Which keys a policy keeps, for the strip under a panel.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptStrip {
    /// Policy name as shown, e.g. "SnapKV".
    pub policy: String,
    /// Per shown key, the share of the selected heads that keep it: 0 or 1 for one head, a
    /// fraction for an aggregate over heads or layers.
    pub kept: Vec<f32>,
}

/// The key axis the panels share: a fixed range of prompt positions and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyAxis {
    /// First prompt position shown.
    pub start: usize,
    /// One past the last position shown.
    pub end: usize,
    /// The token text of each shown key; drawn under the axis when the range is short enough
    /// for the labels to be legible.
    pub tokens: Option<Vec<String>>,
}

/// A layer or head choice: one index or an aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// One layer or head.
    Index(usize),
    /// The mean over all of them.
    Mean,
    /// The maximum over all of them.
    Max,
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Index(i) => write!(f, "{i}"),
            Selector::Mean => f.write_str("mean"),
            Selector::Max => f.write_str("max"),
        }
    }
}

impl std::str::FromStr for Selector {
    type Err = String;

    /// An index (`3`), `mean` or `max`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mean" => Ok(Selector::Mean),
            "max" => Ok(Selector::Max),
            other => other
                .parse()
                .map(Selector::Index)
                .map_err(|_| format!("{s:?} is neither an index nor one of mean, max")),
        }
    }
}

/// Where a figure's data came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Model id.
    pub model_id: String,
    /// sha256 of the weights, hex.
    pub weights_sha256: String,
    /// Layer shown, or the aggregate over layers.
    pub layer: Selector,
    /// Head shown, or the aggregate over heads.
    pub head: Selector,
    /// Inspection and policy settings (window, pooling, granularity, sinks, soft-token file, …).
    pub settings: serde_json::Value,
}

/// The JSON sidecar written beside a figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FigureSidecar {
    /// The program that drew the figure.
    pub program: ProgramInfo,
    /// Figure title, if any.
    pub title: Option<String>,
    /// Model id.
    pub model_id: String,
    /// sha256 of the weights.
    pub weights_sha256: String,
    /// Layer or aggregate.
    pub layer: Selector,
    /// Head or aggregate.
    pub head: Selector,
    /// First key shown.
    pub key_start: usize,
    /// One past the last key shown.
    pub key_end: usize,
    /// The panels, left to right.
    pub panels: Vec<SidecarPanel>,
    /// Budget of the kept strips.
    pub budget: Option<usize>,
    /// The colour scale.
    pub color_scale: ColorScale,
    /// What the values are.
    pub value_label: String,
    /// Settings as given in the provenance.
    pub settings: serde_json::Value,
    /// How the key range was reduced for drawing.
    pub downsampling: Downsampling,
}

/// One panel as described in the sidecar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SidecarPanel {
    /// Panel title.
    pub title: String,
    /// What a row is.
    pub query_label: String,
    /// Index of the first row.
    pub first_query: usize,
    /// Rows of the matrix (0 when missing).
    pub queries: usize,
    /// Why the panel has no data, when it has none.
    pub missing: Option<String>,
    /// Rows embedded in the SVG after max-pooling.
    pub svg_rows: usize,
    /// Policy of the kept strip, if drawn.
    pub kept_policy: Option<String>,
    /// Keys kept in the shown range (sum of the strip's shares), if a strip is drawn.
    pub kept_keys: Option<f32>,
}

/// How a long key axis was reduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Downsampling {
    /// Keys shown.
    pub keys: usize,
    /// Heatmap columns embedded in the SVG.
    pub svg_columns: usize,
    /// Keys per SVG column, on average.
    pub keys_per_svg_column: f32,
    /// How columns (and rows, above the row limit) were reduced, in words.
    pub method: String,
}

/// The sidecar of `spec`, as JSON.
pub fn figure_sidecar(spec: &FigureSpec) -> serde_json::Value {
    let sidecar = FigureSidecar::new(spec);
    serde_json::to_value(&sidecar).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

impl FigureSidecar {
    /// Describes `spec`.
    pub fn new(spec: &FigureSpec) -> Self {
        let keys = spec.key_count();
        let svg_columns = keys.min(SVG_MAX_COLUMNS);
        let panels = spec
            .panels
            .iter()
            .map(|panel| {
                let (queries, missing) = match &panel.data {
                    PanelData::Heatmap(values) => (values.nrows(), None),
                    PanelData::Missing(why) => (0, Some(why.clone())),
                };
                SidecarPanel {
                    title: panel.title.clone(),
                    query_label: panel.queries.label.clone(),
                    first_query: panel.queries.first,
                    queries,
                    missing,
                    svg_rows: queries.min(SVG_MAX_ROWS),
                    kept_policy: panel.kept.as_ref().map(|s| s.policy.clone()),
                    kept_keys: panel
                        .kept
                        .as_ref()
                        .map(|s| s.kept.iter().map(|v| clamp_share(*v)).sum()),
                }
            })
            .collect();
        FigureSidecar {
            program: ProgramInfo::current(),
            title: spec.title.clone(),
            model_id: spec.provenance.model_id.clone(),
            weights_sha256: spec.provenance.weights_sha256.clone(),
            layer: spec.provenance.layer,
            head: spec.provenance.head,
            key_start: spec.keys.start,
            key_end: spec.keys.end,
            panels,
            budget: spec.budget,
            color_scale: spec.scale,
            value_label: spec.value_label.clone(),
            settings: spec.provenance.settings.clone(),
            downsampling: Downsampling {
                keys,
                svg_columns,
                keys_per_svg_column: keys as f32 / svg_columns.max(1) as f32,
                method: format!(
                    "heatmaps: maximum over consecutive keys when more than {SVG_MAX_COLUMNS} keys (and over \
                     consecutive queries when more than {SVG_MAX_ROWS} rows); kept strips: share of kept keys per \
                     column; PNG exports reduce the same way to at most one column and row per device pixel"
                ),
            },
        }
    }
}

/// A kept share as drawn: clamped to [0, 1], NaN as 0.
pub(crate) fn clamp_share(v: f32) -> f32 {
    if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) }
}

/// Start of block `j` when `n` items are split into `blocks` consecutive blocks whose sizes
/// differ by at most one.
fn block_start(j: usize, n: usize, blocks: usize) -> usize {
    j * n / blocks
}

/// `values` reduced by maximum over consecutive blocks to at most `max_rows × max_cols`.
pub(crate) fn max_pool(values: ArrayView2<f32>, max_rows: usize, max_cols: usize) -> Array2<f32> {
    let (n_rows, n_cols) = values.dim();
    let (rows, cols) = (n_rows.min(max_rows.max(1)), n_cols.min(max_cols.max(1)));
    if (rows, cols) == (n_rows, n_cols) {
        return values.to_owned();
    }
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        let r = block_start(i, n_rows, rows)..block_start(i + 1, n_rows, rows);
        let c = block_start(j, n_cols, cols)..block_start(j + 1, n_cols, cols);
        values
            .slice(ndarray::s![r, c])
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
    })
}

/// Kept shares reduced by mean over consecutive blocks to at most `max_cols` entries.
pub(crate) fn mean_pool(kept: &[f32], max_cols: usize) -> Vec<f32> {
    let n = kept.len();
    let cols = n.min(max_cols.max(1));
    (0..cols)
        .map(|j| {
            let block = &kept[block_start(j, n, cols)..block_start(j + 1, n, cols)];
            block.iter().map(|v| clamp_share(*v)).sum::<f32>() / block.len().max(1) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::figure_spec;
    use ndarray::array;

    #[test]
    fn max_pooling_keeps_every_peak_and_covers_every_key() {
        let n = 8192;
        let mut values = Array2::<f32>::zeros((3, n));
        for (row, peak) in [(0, 0), (1, 4097), (2, n - 1)] {
            values[[row, peak]] = 1.0 + row as f32;
        }
        let pooled = max_pool(values.view(), 1024, 2048);
        assert_eq!(pooled.dim(), (3, 2048));
        for row in 0..3 {
            let peaks: Vec<usize> = (0..2048).filter(|&j| pooled[[row, j]] > 0.0).collect();
            assert_eq!(peaks.len(), 1);
            let j = peaks[0];
            // The column that holds the peak covers the peak's key.
            let key = [0, 4097, n - 1][row];
            assert!(block_start(j, n, 2048) <= key && key < block_start(j + 1, n, 2048));
            assert_eq!(pooled[[row, j]], 1.0 + row as f32);
        }
        // Uneven sizes: blocks differ by at most one and tile the range.
        let sizes: Vec<usize> = (0..7)
            .map(|j| block_start(j + 1, 20, 7) - block_start(j, 20, 7))
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&s| s == 2 || s == 3));
        let small = array![[1.0f32, 5.0, 2.0], [0.0, 0.0, 9.0]];
        // Columns {0} and {1, 2}, both rows in one block.
        assert_eq!(max_pool(small.view(), 1, 2), array![[1.0f32, 9.0]]);
        assert_eq!(max_pool(small.view(), 10, 10), small);
    }

    #[test]
    fn selectors_parse_back() {
        for selector in [
            Selector::Index(0),
            Selector::Index(29),
            Selector::Mean,
            Selector::Max,
        ] {
            assert_eq!(selector.to_string().parse::<Selector>().unwrap(), selector);
        }
        assert_eq!(" MAX ".parse::<Selector>().unwrap(), Selector::Max);
        assert!("-1".parse::<Selector>().unwrap_err().contains("mean, max"));
        assert!("median".parse::<Selector>().is_err());
    }

    #[test]
    fn mean_pooling_gives_the_share_kept() {
        assert_eq!(mean_pool(&[1.0, 0.0, 1.0, 1.0], 2), vec![0.5, 1.0]);
        assert_eq!(mean_pool(&[1.0, f32::NAN, 3.0], 8), vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let spec = figure_spec(4, 8);
        spec.validate().unwrap();

        let mut wrong_cols = spec.clone();
        wrong_cols.panels[1].data = PanelData::Heatmap(Array2::zeros((4, 9)));
        let err = wrong_cols.validate().unwrap_err().to_string();
        assert!(
            err.contains("Soft tokens (Judge Q)") && err.contains("8 key columns"),
            "{err}"
        );

        let mut wrong_strip = spec.clone();
        wrong_strip.panels[0].kept.as_mut().unwrap().kept.pop();
        assert!(
            wrong_strip
                .validate()
                .unwrap_err()
                .to_string()
                .contains("kept strip")
        );

        let mut empty = spec.clone();
        empty.keys.end = empty.keys.start;
        assert!(empty.validate().unwrap_err().to_string().contains("empty"));

        let mut tokens = spec.clone();
        tokens.keys.tokens = Some(vec!["a".into()]);
        assert!(
            tokens
                .validate()
                .unwrap_err()
                .to_string()
                .contains("token labels")
        );

        let mut narrow = spec.clone();
        narrow.width_mm = 10.0;
        assert!(narrow.validate().is_err());

        let mut log = spec;
        log.scale.kind = crate::export::ScaleMode::Log;
        log.scale.min = 0.0;
        assert!(log.validate().unwrap_err().to_string().contains("min > 0"));
    }

    #[test]
    fn sidecar_round_trips_and_describes_the_figure() {
        let spec = figure_spec(4, 8);
        let json = figure_sidecar(&spec);
        let back: FigureSidecar = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, FigureSidecar::new(&spec));
        assert_eq!(json["model_id"], "tiny-test");
        assert_eq!(json["weights_sha256"], "ab".repeat(32));
        assert_eq!(json["layer"], serde_json::json!({ "index": 1 }));
        assert_eq!(json["head"], "mean");
        assert_eq!(
            (json["key_start"].as_u64(), json["key_end"].as_u64()),
            (Some(100), Some(108))
        );
        assert_eq!(json["budget"], 4);
        assert_eq!(json["color_scale"]["colormap"], "viridis");
        assert_eq!(json["settings"]["window"], 4);
        assert_eq!(back.panels.len(), 3);
        assert_eq!(back.panels[0].kept_policy.as_deref(), Some("SnapKV"));
        assert_eq!(back.panels[0].kept_keys, Some(4.0));
        assert_eq!(back.panels[1].missing, None);
        assert_eq!(back.downsampling.svg_columns, 8);
        assert_eq!(back.downsampling.keys_per_svg_column, 1.0);
    }

    #[test]
    fn sidecar_reports_downsampling_of_long_ranges() {
        let mut spec = figure_spec(2, 8192);
        spec.panels[2].data = PanelData::Missing("no decoded tokens".into());
        let sidecar = FigureSidecar::new(&spec);
        assert_eq!(sidecar.downsampling.keys, 8192);
        assert_eq!(sidecar.downsampling.svg_columns, SVG_MAX_COLUMNS);
        assert_eq!(sidecar.downsampling.keys_per_svg_column, 4.0);
        assert_eq!(sidecar.panels[2].queries, 0);
        assert_eq!(
            sidecar.panels[2].missing.as_deref(),
            Some("no decoded tokens")
        );
    }
}

//! Draws a [`FigureSpec`] as SVG: heatmaps as embedded PNG images (one pixel per cell,
//! nearest-neighbour), everything else as vector shapes and text (from
//! [`crate::export::svg_doc`]).

use crate::export::ExportError;
use crate::export::colormap::{ColorScale, ScaleMode};
use crate::export::figure::{
    FigureSpec, KeptStrip, PanelData, SVG_MAX_COLUMNS, SVG_MAX_ROWS, clamp_share, figure_sidecar,
    max_pool, mean_pool,
};
use crate::export::png_encode::encode_rgb;
use crate::export::svg_doc::{
    BAR_W, BarLabel, FRAME, LABEL_SIZE, MONO, Svg, TICK_LEN, TICK_SIZE, bar_ticks, fit_size, hex,
    text_width,
};
use crate::export::ticks::integer_ticks;

/// Draws `spec` as a standalone SVG document.
pub fn render_svg(spec: &FigureSpec) -> Result<String, ExportError> {
    spec.validate()?;
    let layout = Layout::new(spec)?;
    draw(
        spec,
        &layout,
        Resolution {
            rows: SVG_MAX_ROWS,
            columns: SVG_MAX_COLUMNS,
        },
    )
}

const MARGIN: f32 = 8.0;
const TITLE_SIZE: f32 = 9.5;
const PANEL_TITLE_SIZE: f32 = 8.0;
const STRIP_GAP: f32 = 2.0;
const STRIP_H: f32 = 6.0;
const PANEL_GAP: f32 = 12.0;
const BAR_GAP: f32 = 12.0;
/// Advance of a character in the monospace font, in ems.
const MONO_EM: f32 = 0.61;
/// Token labels are drawn when a key column is at least this wide.
const MIN_TOKEN_COLUMN: f32 = 4.0;
/// Longest token label, in characters, before it is cut with an ellipsis.
const MAX_TOKEN_CHARS: usize = 10;
/// Strip colours of kept and evicted entries.
const KEPT_RGB: [u8; 3] = [34, 34, 34];
const EVICTED_RGB: [u8; 3] = [222, 222, 222];

/// Most heatmap rows and columns to embed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resolution {
    pub rows: usize,
    pub columns: usize,
}

/// Where everything goes, in points.
pub(crate) struct Layout {
    pub width: f32,
    pub height: f32,
    /// Left edge of each panel's heatmap.
    pub heat_x: Vec<f32>,
    pub heat_w: f32,
    pub heat_top: f32,
    pub heat_h: f32,
    left_axis: f32,
    title_baseline: f32,
    panel_title_baseline: f32,
    strip_top: Option<f32>,
    axis_top: f32,
    token_top: Option<f32>,
    token_size: f32,
    x_label_baseline: f32,
    legend_baseline: f32,
    bar_x: f32,
    bar_ticks: Vec<(f32, BarLabel)>,
}

impl Layout {
    /// Lays out a validated `spec`.
    pub(crate) fn new(spec: &FigureSpec) -> Result<Self, ExportError> {
        let n_panels = spec.panels.len() as f32;
        let width = spec.width_mm / 25.4 * 72.0;
        let bar_ticks = bar_ticks(&spec.scale);
        let bar_label_w = bar_ticks
            .iter()
            .map(|(_, label)| label.width())
            .fold(0.0, f32::max);
        let bar_block = BAR_GAP + BAR_W + TICK_LEN + 1.5 + bar_label_w + 4.0 + LABEL_SIZE;
        let row_label_w = spec
            .panels
            .iter()
            .filter_map(|panel| match &panel.data {
                PanelData::Heatmap(values) => Some(
                    panel
                        .queries
                        .first
                        .saturating_add(values.nrows().saturating_sub(1)),
                ),
                PanelData::Missing(_) => None,
            })
            .map(|last| text_width(&last.to_string(), TICK_SIZE))
            .fold(0.0, f32::max);
        let left_axis = LABEL_SIZE + 3.0 + row_label_w + 1.5 + TICK_LEN;
        let heat_w = (width
            - 2.0 * MARGIN
            - bar_block
            - n_panels * left_axis
            - (n_panels - 1.0) * PANEL_GAP)
            / n_panels;
        if heat_w < 30.0 {
            return Err(ExportError::InvalidFigure(format!(
                "{} mm is too narrow for {} panels; make the figure wider",
                spec.width_mm,
                spec.panels.len()
            )));
        }
        let heat_h = (heat_w * 0.55).clamp(50.0, 160.0);
        let heat_x = (0..spec.panels.len())
            .map(|i| MARGIN + left_axis + i as f32 * (left_axis + heat_w + PANEL_GAP))
            .collect();

        let mut y = MARGIN;
        let title_baseline = y + TITLE_SIZE;
        if spec.title.is_some() {
            y += TITLE_SIZE + 5.0;
        }
        let panel_title_baseline = y + PANEL_TITLE_SIZE;
        y += PANEL_TITLE_SIZE + 4.0;
        let heat_top = y;
        y += heat_h;
        let any_strip = spec.panels.iter().any(|p| p.kept.is_some());
        let strip_top = any_strip.then(|| {
            let top = y + STRIP_GAP;
            y = top + STRIP_H;
            top
        });
        let axis_top = y;
        y += TICK_LEN + 2.0 + TICK_SIZE;
        let column_w = heat_w / spec.key_count() as f32;
        let token_size = (column_w * 0.85).min(6.0);
        let token_top = spec
            .keys
            .tokens
            .as_ref()
            .filter(|_| column_w >= MIN_TOKEN_COLUMN)
            .map(|tokens| {
                let longest = tokens
                    .iter()
                    .map(|t| token_label(t).chars().count())
                    .max()
                    .unwrap_or(0);
                let top = y + 1.5;
                y = top + longest as f32 * MONO_EM * token_size + 2.0;
                top
            });
        let x_label_baseline = y + LABEL_SIZE + 1.0;
        y += LABEL_SIZE + 3.0;
        let legend_baseline = y + LABEL_SIZE + 2.0;
        if any_strip {
            y += LABEL_SIZE + 4.0;
        }
        Ok(Layout {
            width,
            height: y + MARGIN,
            heat_x,
            heat_w,
            heat_top,
            heat_h,
            left_axis,
            title_baseline,
            panel_title_baseline,
            strip_top,
            axis_top,
            token_top,
            token_size,
            x_label_baseline,
            legend_baseline,
            bar_x: width - MARGIN - bar_block + BAR_GAP,
            bar_ticks,
        })
    }

    /// Height in millimetres.
    pub(crate) fn height_mm(&self) -> f32 {
        self.height / 72.0 * 25.4
    }

    /// The same layout with heatmaps, strips and colour bar moved by less than a pixel onto
    /// the pixel grid of a raster with `per_point` pixels per point, so that cell edges fall
    /// on pixel edges.
    pub(crate) fn snapped(mut self, per_point: f32) -> Self {
        let snap = |v: f32| (v * per_point).round() / per_point;
        for x in &mut self.heat_x {
            *x = snap(*x);
        }
        self.heat_w = snap(self.heat_w);
        self.heat_top = snap(self.heat_top);
        self.heat_h = snap(self.heat_h);
        self.strip_top = self.strip_top.map(snap);
        self.bar_x = snap(self.bar_x);
        self
    }
}

/// Draws a validated `spec` with `layout`, embedding heatmaps of at most `resolution` cells.
pub(crate) fn draw(
    spec: &FigureSpec,
    layout: &Layout,
    resolution: Resolution,
) -> Result<String, ExportError> {
    let mut svg = Svg::default();
    let metadata = serde_json::to_string(&figure_sidecar(spec)).unwrap_or_default();
    svg.open(
        (spec.width_mm, layout.height_mm()),
        (layout.width, layout.height),
        spec.title.as_deref().unwrap_or("judgeq figure"),
        &metadata,
    );
    if let Some(title) = &spec.title {
        let size = fit_size(title, TITLE_SIZE, layout.width - 2.0 * MARGIN);
        svg.text(
            layout.width / 2.0,
            layout.title_baseline,
            size,
            "middle",
            title,
            "",
        );
    }
    for (i, panel) in spec.panels.iter().enumerate() {
        let x = layout.heat_x[i];
        let title_size = fit_size(
            &panel.title,
            PANEL_TITLE_SIZE,
            layout.heat_w + layout.left_axis * 0.8,
        );
        svg.text(
            x + layout.heat_w / 2.0,
            layout.panel_title_baseline,
            title_size,
            "middle",
            &panel.title,
            "",
        );
        match &panel.data {
            PanelData::Heatmap(values) => {
                let pooled = max_pool(values.view(), resolution.rows, resolution.columns);
                let png = heatmap_png(&pooled, &spec.scale)?;
                svg.image(
                    &format!("heatmap-{i}"),
                    x,
                    layout.heat_top,
                    layout.heat_w,
                    layout.heat_h,
                    &png,
                );
                svg.query_axis(
                    layout,
                    x,
                    &panel.queries.label,
                    panel.queries.first,
                    values.nrows(),
                );
            }
            PanelData::Missing(why) => {
                svg.rect(
                    x,
                    layout.heat_top,
                    layout.heat_w,
                    layout.heat_h,
                    "#f2f2f2",
                    "none",
                );
                let size = fit_size(why, LABEL_SIZE, layout.heat_w - 6.0);
                svg.text(
                    x + layout.heat_w / 2.0,
                    layout.heat_top + layout.heat_h / 2.0,
                    size,
                    "middle",
                    why,
                    "fill=\"#666666\"",
                );
            }
        }
        svg.frame(x, layout.heat_top, layout.heat_w, layout.heat_h);
        if let (Some(strip), Some(top)) = (&panel.kept, layout.strip_top) {
            let png = strip_png(strip, resolution.columns)?;
            svg.image(&format!("strip-{i}"), x, top, layout.heat_w, STRIP_H, &png);
            svg.frame(x, top, layout.heat_w, STRIP_H);
            svg.legend(layout, x, &strip.policy, spec.budget);
        }
        svg.key_axis(spec, layout, x);
    }
    let label = match spec.scale.kind {
        ScaleMode::Linear => spec.value_label.clone(),
        ScaleMode::Log => format!("{} (log scale)", spec.value_label),
        ScaleMode::PerRow => format!("{} ÷ row maximum", spec.value_label),
    };
    svg.colour_bar(
        (layout.bar_x, layout.heat_top, layout.heat_h),
        &spec.scale,
        &layout.bar_ticks,
        &label,
        layout.width - MARGIN - LABEL_SIZE * 0.2,
    )?;
    Ok(svg.close())
}

/// The axes and legend of the three-panel figure.
impl Svg {
    /// Row ticks (first and round positions) and the rotated query label left of a heatmap.
    fn query_axis(&mut self, layout: &Layout, x: f32, label: &str, first: usize, rows: usize) {
        let last = first.saturating_add(rows.saturating_sub(1));
        let row_h = layout.heat_h / rows as f32;
        let max_ticks = ((layout.heat_h / (TICK_SIZE * 2.2)) as usize).max(1);
        let mut ticks = integer_ticks(first, last, max_ticks);
        if ticks.first() != Some(&first)
            && ticks
                .first()
                .is_none_or(|&t| (t - first) as f32 * row_h > TICK_SIZE * 1.2)
        {
            ticks.insert(0, first);
        }
        for row in ticks {
            let y = layout.heat_top + ((row - first) as f32 + 0.5) * row_h;
            self.line(x - TICK_LEN, y, x, y);
            self.text(
                x - TICK_LEN - 1.5,
                y + TICK_SIZE * 0.35,
                TICK_SIZE,
                "end",
                &row.to_string(),
                "",
            );
        }
        let label_x = x - layout.left_axis + LABEL_SIZE * 0.85;
        let size = fit_size(label, LABEL_SIZE, layout.heat_h);
        self.vertical_text(
            label_x,
            layout.heat_top + layout.heat_h / 2.0,
            size,
            "middle",
            label,
            "",
        );
    }

    /// Key ticks, token labels and the axis label under a panel.
    fn key_axis(&mut self, spec: &FigureSpec, layout: &Layout, x: f32) {
        let (start, n) = (spec.keys.start, spec.key_count());
        let column_w = layout.heat_w / n as f32;
        let widest = text_width(&(spec.keys.end - 1).to_string(), TICK_SIZE) + 8.0;
        let max_ticks = ((layout.heat_w / widest) as usize).max(1);
        for key in integer_ticks(start, spec.keys.end - 1, max_ticks) {
            let kx = x + ((key - start) as f32 + 0.5) * column_w;
            self.line(kx, layout.axis_top, kx, layout.axis_top + TICK_LEN);
            let baseline = layout.axis_top + TICK_LEN + 1.0 + TICK_SIZE * 0.8;
            self.text(kx, baseline, TICK_SIZE, "middle", &key.to_string(), "");
        }
        if let (Some(tokens), Some(top)) = (&spec.keys.tokens, layout.token_top) {
            let font = format!("font-family=\"{MONO}\"");
            for (j, token) in tokens.iter().enumerate() {
                let kx = x + (j as f32 + 0.5) * column_w + layout.token_size * 0.35;
                self.vertical_text(
                    kx,
                    top,
                    layout.token_size,
                    "end",
                    &token_label(token),
                    &font,
                );
            }
        }
        self.text(
            x + layout.heat_w / 2.0,
            layout.x_label_baseline,
            LABEL_SIZE,
            "middle",
            "key position",
            "",
        );
    }

    /// "■ kept ■ evicted by POLICY at budget N" under a panel.
    fn legend(&mut self, layout: &Layout, x: f32, policy: &str, budget: Option<usize>) {
        let rest = match budget {
            Some(b) => format!("evicted by {policy} at budget {b}"),
            None => format!("evicted by {policy}"),
        };
        let natural = 2.0 * (LABEL_SIZE + 2.0)
            + text_width("kept", LABEL_SIZE)
            + 5.0
            + text_width(&rest, LABEL_SIZE);
        let size = LABEL_SIZE * (layout.heat_w / natural).min(1.0);
        let y = layout.legend_baseline;
        let swatch = size * 0.8;
        let kept = hex(KEPT_RGB);
        let evicted = hex(EVICTED_RGB);
        self.rect(x, y - swatch, swatch, swatch, &kept, FRAME);
        let mut cx = x + swatch + size * 0.3;
        self.text(cx, y, size, "start", "kept", "");
        cx += text_width("kept", size) + size * 0.7;
        self.rect(cx, y - swatch, swatch, swatch, &evicted, FRAME);
        self.text(cx + swatch + size * 0.3, y, size, "start", &rest, "");
    }
}

/// The heatmap image: one RGB pixel per (pooled) cell, coloured by `scale` with each row's
/// own maximum for per-row normalisation.
fn heatmap_png(values: &ndarray::Array2<f32>, scale: &ColorScale) -> Result<Vec<u8>, ExportError> {
    let (rows, cols) = values.dim();
    let mut rgb = Vec::with_capacity(rows * cols * 3);
    for row in values.rows() {
        let row_max = row
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f32, f32::max);
        for &v in row {
            rgb.extend_from_slice(&scale.color(v, row_max));
        }
    }
    encode_rgb(cols, rows, &rgb, None)
}

/// The kept strip image: one pixel per (pooled) key, blending evicted and kept colours by
/// the share kept.
fn strip_png(strip: &KeptStrip, max_columns: usize) -> Result<Vec<u8>, ExportError> {
    let shares = mean_pool(&strip.kept, max_columns);
    let rgb: Vec<u8> = shares
        .iter()
        .flat_map(|&share| {
            let share = clamp_share(share);
            std::array::from_fn::<u8, 3, _>(|c| {
                let (e, k) = (f32::from(EVICTED_RGB[c]), f32::from(KEPT_RGB[c]));
                (e + (k - e) * share).round() as u8
            })
        })
        .collect();
    encode_rgb(shares.len(), 1, &rgb, None)
}

/// A token as a one-line axis label: visible spaces and line breaks, cut when long.
fn token_label(token: &str) -> String {
    let visible: String = token
        .chars()
        .map(|c| match c {
            ' ' => '·',
            '\n' => '↵',
            '\t' => '→',
            c if c.is_control() => '�',
            c => c,
        })
        .collect();
    if visible.chars().count() > MAX_TOKEN_CHARS {
        let mut cut: String = visible.chars().take(MAX_TOKEN_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        visible
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::figure::Panel;
    use crate::export::fonts::figure_fontdb;
    use crate::export::test_support::figure_spec;
    use base64::Engine;

    fn parse(svg: &str) -> resvg::usvg::Tree {
        let options = resvg::usvg::Options {
            fontdb: figure_fontdb(),
            ..Default::default()
        };
        resvg::usvg::Tree::from_str(svg, &options).unwrap()
    }

    /// Every text chunk of the tree, in document order.
    fn texts(group: &resvg::usvg::Group, out: &mut Vec<String>) {
        for node in group.children() {
            match node {
                resvg::usvg::Node::Group(g) => texts(g, out),
                resvg::usvg::Node::Text(t) => {
                    out.push(t.chunks().iter().map(|c| c.text()).collect())
                }
                _ => {}
            }
        }
    }

    /// (id, rendering mode) of every image; usvg puts an image's id on a group around it.
    fn images(group: &resvg::usvg::Group, out: &mut Vec<(String, resvg::usvg::ImageRendering)>) {
        for node in group.children() {
            match node {
                resvg::usvg::Node::Group(g) => images(g, out),
                resvg::usvg::Node::Image(i) => {
                    out.push((group.id().to_owned(), i.rendering_mode()))
                }
                _ => {}
            }
        }
    }

    #[test]
    fn svg_parses_back_with_titles_axes_and_color_bar() {
        let mut spec = figure_spec(4, 8);
        spec.title = Some("Layer 1 · mean over heads <&>".into());
        let svg = render_svg(&spec).unwrap();
        let tree = parse(&svg);
        assert!(
            (tree.size().width() - 180.0 / 25.4 * 96.0).abs() < 0.01,
            "180 mm at 96 dpi"
        );

        let mut all = Vec::new();
        texts(tree.root(), &mut all);
        for expected in [
            "Layer 1 · mean over heads <&>",
            "Last-window queries (SnapKV)",
            "Soft tokens (Judge Q)",
            "Decoded tokens (oracle)",
            "key position",
            "query position",
            "attention",
            "kept",
            "evicted by SnapKV at budget 4",
            "100",
            "107",
        ] {
            assert!(
                all.iter().any(|t| t == expected),
                "missing {expected:?} in {all:?}"
            );
        }
        // Short ranges get token labels, spaces made visible.
        assert!(all.iter().any(|t| t == "·cat"), "{all:?}");

        let mut found = Vec::new();
        images(tree.root(), &mut found);
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "heatmap-0",
                "strip-0",
                "heatmap-1",
                "heatmap-2",
                "strip-2",
                "colorbar"
            ]
        );
        for (id, mode) in &found {
            assert_eq!(*mode, resvg::usvg::ImageRendering::Pixelated, "{id}");
        }
        assert!(
            svg.contains("judgeq-provenance")
                && svg.contains("&quot;model_id&quot;:&quot;tiny-test&quot;")
        );
    }

    #[test]
    fn log_scale_gets_decade_ticks_and_missing_panels_say_why() {
        let mut spec = figure_spec(4, 8);
        spec.scale = ColorScale {
            kind: ScaleMode::Log,
            min: 1e-4,
            max: 1.0,
            colormap: spec.scale.colormap,
        };
        spec.panels[1] = Panel {
            data: PanelData::Missing("no soft tokens loaded".into()),
            kept: None,
            ..spec.panels[1].clone()
        };
        let tree = parse(&render_svg(&spec).unwrap());
        let mut all = Vec::new();
        texts(tree.root(), &mut all);
        for expected in [
            "1",
            "10−1",
            "10−2",
            "10−4",
            "attention (log scale)",
            "no soft tokens loaded",
        ] {
            assert!(
                all.iter().any(|t| t == expected),
                "missing {expected:?} in {all:?}"
            );
        }
    }

    #[test]
    fn long_ranges_are_pooled_and_drop_token_labels() {
        let spec = figure_spec(64, 8192);
        let svg = render_svg(&spec).unwrap();
        let tree = parse(&svg);
        let mut all = Vec::new();
        texts(tree.root(), &mut all);
        assert!(
            !all.iter().any(|t| t.contains('·')),
            "no token labels at 8,192 keys"
        );
        assert!(all.iter().any(|t| t == "key position"));
        // The embedded heatmap is 64 × 2048 cells.
        let start = svg.find("id=\"heatmap-0\"").unwrap();
        let data_start = svg[start..].find("base64,").unwrap() + start + 7;
        let data_end = svg[data_start..].find('"').unwrap() + data_start;
        let png = base64::engine::general_purpose::STANDARD
            .decode(&svg[data_start..data_end])
            .unwrap();
        let image = image::load_from_memory(&png).unwrap();
        assert_eq!(
            (image.width(), image.height()),
            (SVG_MAX_COLUMNS as u32, 64)
        );
    }

    #[test]
    fn token_labels_make_spaces_visible_and_cut_long_tokens() {
        assert_eq!(token_label(" the"), "·the");
        assert_eq!(token_label("\n\n"), "↵↵");
        assert_eq!(token_label("abcdefghijklmnop"), "abcdefghi…");
    }
}

//! The explorer's drawing widgets rendered headless (wgpu on the CPU) from hand-made data:
//! image snapshots (`UPDATE_SNAPSHOTS=1` creates them) and pixel checks of level of detail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use egui::{Color32, Sense, vec2};
use egui_kittest::Harness;
use judgeq::app::key_viewport::KeyViewport;
use judgeq::app::lod::Pyramid;
use judgeq::app::marks::{FIND_COLOUR, MarkedSpans, mark_colour};
use judgeq::app::widgets::colour_bar::colour_bar;
use judgeq::app::widgets::document_view::{DocumentText, DocumentView, Highlight};
use judgeq::app::widgets::heatmap::{ColourLut, HeatmapTextures};
use judgeq::app::widgets::key_strip::{key_ruler, key_strip};
use judgeq::app::widgets::mark_bands::{paint_outlines, paint_tick_row};
use judgeq::app::widgets::overview_grid::overview_grid;
use judgeq::app::widgets::score_profile::{ProfileInputs, score_profile};
use judgeq::attention::Pick;
use judgeq::export::Colormap;
use judgeq::export::{ColourScale, ColourSettings, ScaleMode};
use judgeq::session::{PromptLayout, Span, SpanKind};
use ndarray::Array2;
use std::sync::Arc;

/// Everything one heatmap panel draws.
struct Panel {
    pyramid: Pyramid,
    scale: ColourScale,
    lut: ColourLut,
    axis: KeyViewport,
    textures: HeatmapTextures,
    kept: Vec<f32>,
    spans: Vec<Span>,
}

impl Panel {
    fn new(matrix: Array2<f32>, mode: ScaleMode) -> Self {
        let keys = matrix.ncols();
        let settings = ColourSettings {
            mode,
            skip_sinks: 1,
            decades: 3,
            colormap: Colormap::Viridis,
        };
        let scale = ColourScale::fit(&matrix, settings);
        let kept = (0..keys)
            .map(|k| {
                if k < 2 || k % 5 == 0 || k + 8 >= keys {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let spans = vec![
            Span {
                kind: SpanKind::Scaffold,
                start: 0,
                end: 3,
            },
            Span {
                kind: SpanKind::Document,
                start: 3,
                end: keys - 12,
            },
            Span {
                kind: SpanKind::Question,
                start: keys - 12,
                end: keys - 4,
            },
            Span {
                kind: SpanKind::Scaffold,
                start: keys - 4,
                end: keys,
            },
        ];
        Self {
            pyramid: Pyramid::new(matrix),
            scale,
            lut: ColourLut::new(|t| Colormap::Viridis.rgb(t)),
            axis: KeyViewport::new(keys),
            textures: HeatmapTextures::default(),
            kept,
            spans,
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        let (rect, _) = ui.allocate_exact_size(vec2(ui.available_width(), 96.0), Sense::hover());
        let width_px = rect.width() * ui.ctx().pixels_per_point();
        self.textures.update(
            ui.ctx(),
            "test",
            1,
            &self.pyramid,
            &self.scale,
            &self.lut,
            &self.axis,
            width_px,
        );
        self.textures.paint(&ui.painter_at(rect), rect, &self.axis);
        key_strip(
            ui,
            &mut self.axis,
            &self.kept,
            Color32::from_rgb(44, 160, 44),
            10.0,
        );
        key_ruler(ui, &mut self.axis, &self.spans);
        colour_bar(ui, &self.scale, &self.lut, 200.0);
    }
}

/// Attention-like rows: a sink at key 0, a diagonal, two needles.
fn attention(rows: usize, keys: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, keys), |(q, k)| {
        let position = keys - rows + q;
        let mut v = 0.002;
        if k == 0 {
            v += 0.5;
        }
        if k <= position && position - k < 6 {
            v += 0.2 / (1.0 + (position - k) as f32);
        }
        if k == keys / 3 || k == keys / 2 + 7 {
            v += 0.05 * (1.0 + q as f32 / rows as f32);
        }
        v
    })
}

#[test]
fn heatmap_strip_ruler_and_colour_bar() {
    let panel = Panel::new(attention(12, 96), ScaleMode::Log);
    let mut harness = Harness::builder()
        .with_size(vec2(480.0, 170.0))
        .wgpu()
        .build_ui_state(|ui, panel: &mut Panel| panel.ui(ui), panel);
    harness.run();
    harness.snapshot("heatmap_panel_log");
    harness.state_mut().axis.set_range(20.0, 60.0);
    harness.run();
    harness.snapshot("heatmap_panel_zoomed");
}

#[test]
fn one_hot_key_among_8192_stays_visible_when_zoomed_out() {
    let keys = 8192;
    let hot = 5000;
    let mut matrix = Array2::from_elem((8, keys), 1e-4f32);
    matrix[[3, hot]] = 0.5;
    let mut panel = Panel::new(matrix, ScaleMode::Linear);
    panel.kept = vec![0.0; keys];
    let mut harness = Harness::builder()
        .with_size(vec2(512.0, 170.0))
        .wgpu()
        .build_ui_state(|ui, panel: &mut Panel| panel.ui(ui), panel);
    harness.run();
    let level = harness.state().textures.level().unwrap();
    assert!(
        level >= 4,
        "8192 keys in about 500 pixels use a pooled level, got {level}"
    );
    let image = harness.render().unwrap();
    // Find the row of the hot query and the brightest pixel in it: it must be the colormap's
    // top colour, at the hot key's position.
    let top = Colormap::Viridis.rgb(1.0);
    let hits: Vec<u32> = (0..image.width())
        .filter(|&x| {
            (0..96).any(|y| {
                let p = image.get_pixel(x, y);
                p[0].abs_diff(top[0]) < 8 && p[1].abs_diff(top[1]) < 8 && p[2].abs_diff(top[2]) < 8
            })
        })
        .collect();
    assert!(!hits.is_empty(), "the hot key is drawn");
    let rect_width = image.width() as f32 - 16.0;
    let expected = 8.0 + rect_width * hot as f32 / keys as f32;
    for x in &hits {
        assert!(
            (*x as f32 - expected).abs() < 3.0,
            "hot pixel at x = {x}, expected near {expected}"
        );
    }
}

/// A short chat prompt about a bridge: scaffold, document, scaffold, question, scaffold.
fn bridge_prompt() -> PromptLayout {
    let tokens = [
        "<|im_start|>",
        "user",
        "\n",
        "The",
        " bridge",
        " closed",
        " in",
        " October",
        ".",
        "\n\n",
        " When",
        " does",
        " it",
        " reopen",
        "?",
        "<|im_end|>",
    ];
    PromptLayout {
        text: tokens.concat(),
        ids: (0..tokens.len() as u32).collect(),
        tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
        spans: vec![
            Span {
                kind: SpanKind::Scaffold,
                start: 0,
                end: 3,
            },
            Span {
                kind: SpanKind::Document,
                start: 3,
                end: 9,
            },
            Span {
                kind: SpanKind::Scaffold,
                start: 9,
                end: 10,
            },
            Span {
                kind: SpanKind::Question,
                start: 10,
                end: 15,
            },
            Span {
                kind: SpanKind::Scaffold,
                start: 15,
                end: 16,
            },
        ],
    }
}

#[test]
fn document_view_highlights_kept_tokens_by_span() {
    let prompt = bridge_prompt();
    let strength: Vec<f32> = (0..prompt.len()).map(|i| [1.0, 0.0, 0.5][i % 3]).collect();
    let view = DocumentView::new(Arc::new(DocumentText::new(&prompt)));
    let mut harness = Harness::builder()
        .with_size(vec2(360.0, 90.0))
        .wgpu()
        .build_ui_state(
            move |ui, view: &mut DocumentView| {
                let highlight = Highlight {
                    colour: Color32::from_rgb(44, 160, 44),
                    strength: &strength,
                };
                view.ui(ui, Some(&highlight), &[], Some(7), None);
            },
            view,
        );
    harness.run();
    harness.snapshot("document_view");
}

#[test]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "lists of token ranges, some of one range"
)]
fn document_view_outlines_marked_tokens_in_their_colours() {
    let prompt = bridge_prompt();
    let strength: Vec<f32> = (0..prompt.len())
        .map(|i| if i == 4 { 1.0 } else { 0.0 })
        .collect();
    // " bridge" (4) is found twice over: by a needle over " bridge closed" and by the find box.
    let marks = [
        MarkedSpans::new("needle", mark_colour(0), vec![4..6]),
        MarkedSpans::new("find", FIND_COLOUR, vec![4..5, 12..14]),
    ];
    let view = DocumentView::new(Arc::new(DocumentText::new(&prompt)));
    let mut harness = Harness::builder()
        .with_size(vec2(360.0, 90.0))
        .wgpu()
        .build_ui_state(
            move |ui, view: &mut DocumentView| {
                let highlight = Highlight {
                    colour: Color32::from_rgb(44, 160, 44),
                    strength: &strength,
                };
                let lists: Vec<&MarkedSpans> = marks.iter().collect();
                view.ui(ui, Some(&highlight), &lists, None, None);
            },
            view,
        );
    harness.run();
    harness.snapshot("document_view_marks");
}

#[test]
fn overview_grid_marks_the_selected_layer() {
    let values = Array2::from_shape_fn((6, 4), |(l, h)| (l * 4 + h) as f32 / 23.0);
    let lut = ColourLut::new(|t| Colormap::Viridis.rgb(t));
    let mut harness = Harness::builder()
        .with_size(vec2(160.0, 80.0))
        .wgpu()
        .build_ui(move |ui| {
            overview_grid(ui, &values, &lut, (Pick::One(2), Pick::All), "Hit rate");
        });
    harness.run();
    harness.snapshot("overview_grid");
}

/// A heatmap with its tick row, kept strip and score profile, with marked spans.
struct MarkedPanel {
    panel: Panel,
    scores: Vec<f32>,
    marks: Vec<MarkedSpans>,
}

impl MarkedPanel {
    fn new(matrix: Array2<f32>, marks: Vec<MarkedSpans>) -> Self {
        let scores = matrix.sum_axis(ndarray::Axis(0)).to_vec();
        Self {
            panel: Panel::new(matrix, ScaleMode::Log),
            scores,
            marks,
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        let marks: Vec<&MarkedSpans> = self.marks.iter().collect();
        let panel = &mut self.panel;
        let (ticks, _) = ui.allocate_exact_size(vec2(ui.available_width(), 6.0), Sense::hover());
        paint_tick_row(&ui.painter_at(ticks), ticks, &panel.axis, &marks);
        let (rect, _) = ui.allocate_exact_size(vec2(ui.available_width(), 60.0), Sense::hover());
        let width_px = rect.width() * ui.ctx().pixels_per_point();
        panel.textures.update(
            ui.ctx(),
            "marked",
            1,
            &panel.pyramid,
            &panel.scale,
            &panel.lut,
            &panel.axis,
            width_px,
        );
        let painter = ui.painter_at(rect);
        panel.textures.paint(&painter, rect, &panel.axis);
        paint_outlines(&painter, rect, &panel.axis, &marks);
        let kept_colour = Color32::from_rgb(44, 160, 44);
        let strip = key_strip(ui, &mut panel.axis, &panel.kept, kept_colour, 10.0);
        paint_outlines(&ui.painter_at(strip.rect), strip.rect, &panel.axis, &marks);
        let inputs = ProfileInputs {
            label: "test",
            scores: &self.scores,
            kept: &panel.kept,
            kept_colour,
            marks: &marks,
            skip_first: 1,
        };
        score_profile(ui, "profile", &mut panel.axis, &inputs, 50.0);
    }
}

/// The x positions of pixels in rows `rows` whose colour passes `test`.
fn columns_where(
    image: &image::RgbaImage,
    rows: std::ops::Range<u32>,
    test: impl Fn(&image::Rgba<u8>) -> bool,
) -> Vec<u32> {
    (0..image.width())
        .filter(|&x| rows.clone().any(|y| test(image.get_pixel(x, y))))
        .collect()
}

#[test]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "lists of token ranges, some of one range"
)]
fn marked_spans_tick_outline_and_band_the_panel_and_its_profile() {
    let keys = 96;
    let marks = vec![
        MarkedSpans::new("needle", mark_colour(0), vec![40..44]),
        MarkedSpans::new("find", FIND_COLOUR, vec![10..11, 70..73]),
    ];
    let state = MarkedPanel::new(attention(12, keys), marks);
    let mut harness = Harness::builder()
        .with_size(vec2(480.0, 150.0))
        .wgpu()
        .build_ui_state(|ui, state: &mut MarkedPanel| state.ui(ui), state);
    harness.run();
    harness.snapshot("marked_panel");
}

#[test]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "lists of token ranges, some of one range"
)]
fn a_one_token_needle_among_8192_keys_stays_visible_when_zoomed_out() {
    let keys = 8192;
    let needle = 6100;
    let matrix = Array2::from_elem((4, keys), 1e-4f32);
    let marks = vec![MarkedSpans::new(
        "needle",
        mark_colour(0),
        vec![needle..needle + 1],
    )];
    let mut state = MarkedPanel::new(matrix, marks);
    state.panel.kept = vec![0.0; keys];
    let mut harness = Harness::builder()
        .with_size(vec2(512.0, 150.0))
        .wgpu()
        .build_ui_state(|ui, state: &mut MarkedPanel| state.ui(ui), state);
    harness.run();
    let image = harness.render().unwrap();
    // The tick row is the top 6 points of the 8-point margin; the needle is a fraction of a
    // pixel wide at this zoom but its tick is drawn 3 points wide, at its position.
    let colour = mark_colour(0);
    let hits = columns_where(&image, 8..14, |p| {
        p[0].abs_diff(colour.r()) < 8
            && p[1].abs_diff(colour.g()) < 8
            && p[2].abs_diff(colour.b()) < 8
    });
    assert!(
        (2..=5).contains(&hits.len()),
        "a tick of about 3 points: {hits:?}"
    );
    let expected = 8.0 + (image.width() as f32 - 16.0) * (needle as f32 + 0.5) / keys as f32;
    for x in &hits {
        assert!(
            (*x as f32 - expected).abs() < 3.0,
            "tick pixel at x = {x}, expected near {expected}"
        );
    }
    // The outline runs down the heatmap at the same place (anti-aliased, so only its hue is
    // checked: a magenta no viridis colour has).
    let outline = columns_where(&image, 30..40, |p| p[0] > 150 && p[1] < 100 && p[2] > 150);
    assert!(!outline.is_empty(), "the heatmap column is outlined");
    assert!(
        outline.iter().all(|x| (*x as f32 - expected).abs() < 4.0),
        "{outline:?}"
    );
}

//! The task figures end to end: sidecars, SVG text, PNG pixels, files and bad inputs.

use std::path::Path;

use resvg::usvg;

use super::needle_grid::tests::grid;
use super::*;
use crate::export::WriteError;
use crate::export::fonts::figure_fontdb;

const RUN: &str = "/runs/niah-2026-01-02";

fn heatmap() -> TaskFigure {
    TaskFigure::NeedleHeatmap {
        title: "Needle in a haystack · tiny".into(),
        grid: grid("SnapKV", Some(128)),
    }
}

fn overview() -> TaskFigure {
    TaskFigure::NeedleOverview {
        title: "Needle in a haystack".into(),
        grids: vec![
            grid("SnapKV", Some(256)),
            grid("Judge Q", Some(128)),
            grid("SnapKV", Some(128)),
            grid("Full KV", None),
        ],
    }
}

fn curves() -> BudgetCurves {
    BudgetCurves {
        title: "RULER niah_single_1 · 4K".into(),
        metric: "accuracy".into(),
        budgets: vec![64, 128, 256, 512],
        ratios: Vec::new(),
        methods: vec![
            (
                "SnapKV".into(),
                vec![Some(0.2), Some(0.45), Some(0.7), Some(0.9)],
            ),
            (
                "Judge Q".into(),
                vec![Some(0.3), None, Some(0.8), Some(0.95)],
            ),
        ],
        full_kv: Some(0.97),
    }
}

fn decode(png: &[u8]) -> image::RgbImage {
    image::load_from_memory(png).unwrap().to_rgb8()
}

fn tree(svg: &str) -> usvg::Tree {
    let options = usvg::Options {
        fontdb: figure_fontdb(),
        ..Default::default()
    };
    usvg::Tree::from_str(svg, &options).unwrap()
}

/// Bounding box of an element by id in points, as usvg finds it in the SVG.
fn element_box(tree: &usvg::Tree, id: &str) -> usvg::Rect {
    let node = tree.node_by_id(id).unwrap_or_else(|| panic!("no {id}"));
    let scale = 72.0 / 96.0; // usvg works in CSS pixels; the viewBox is in points.
    let b = node.abs_bounding_box();
    usvg::Rect::from_xywh(
        b.x() * scale,
        b.y() * scale,
        b.width() * scale,
        b.height() * scale,
    )
    .unwrap()
}

/// Every text chunk of the tree.
fn texts(group: &usvg::Group, out: &mut Vec<String>) {
    for node in group.children() {
        match node {
            usvg::Node::Group(g) => texts(g, out),
            usvg::Node::Text(t) => out.push(t.chunks().iter().map(|c| c.text()).collect()),
            _ => {}
        }
    }
}

fn all_texts(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    texts(tree(svg).root(), &mut out);
    out
}

/// The pixel at the fraction (fx, fy) of an element's box.
fn pixel_in(image: &image::RgbImage, rect: usvg::Rect, (fx, fy): (f32, f32), dpi: f32) -> [u8; 3] {
    let px = dpi / 72.0;
    let x = (rect.x() + fx * rect.width()) * px;
    let y = (rect.y() + fy * rect.height()) * px;
    image.get_pixel(x as u32, y as u32).0
}

fn close(got: [u8; 3], want: [u8; 3]) -> bool {
    (0..3).all(|c| got[c].abs_diff(want[c]) <= 1)
}

#[test]
fn sidecars_round_trip_and_record_every_cells_samples() {
    let run = Path::new(RUN);
    for figure in [heatmap(), overview(), TaskFigure::BudgetCurves(curves())] {
        let sidecar = task_figure_sidecar(&figure, run).unwrap();
        let json = serde_json::to_string_pretty(&sidecar).unwrap();
        let back: TaskFigureSidecar = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sidecar);
        assert_eq!(back.figure, figure);
        assert_eq!(back.run_dir, run);
        assert_eq!(back.program, ProgramInfo::current());
        // The SVG carries the same sidecar.
        let svg = render_task_svg(&figure, run).unwrap();
        let start = svg.find("<metadata id=\"judgeq-provenance\">").unwrap() + 33;
        let end = svg[start..].find("</metadata>").unwrap() + start;
        let embedded = svg[start..end]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        let embedded: TaskFigureSidecar = serde_json::from_str(&embedded).unwrap();
        assert_eq!(embedded, sidecar);
    }
    let json = serde_json::to_value(task_figure_sidecar(&heatmap(), run).unwrap()).unwrap();
    assert_eq!(json["figure"]["kind"], "needle_heatmap");
    assert_eq!(json["figure"]["grid"]["sample_ids"][2][1][0], "niah-2-1-a");
    assert_eq!(
        json["figure"]["grid"]["scores"][1][2],
        serde_json::Value::Null
    );
    assert_eq!(json["run_dir"], RUN);
    assert_eq!(json["program"]["name"], "judgeq");
}

#[test]
fn a_point_on_a_cell_finds_its_samples() {
    let run = Path::new(RUN);
    let figure = heatmap();
    let sidecar = task_figure_sidecar(&figure, run).unwrap();
    let svg = render_task_svg(&figure, run).unwrap();
    let tree = tree(&svg);
    let cell = element_box(&tree, "cell-0-2-1");
    let (x, y) = (
        cell.x() + cell.width() * 0.5,
        cell.y() + cell.height() * 0.5,
    );
    let (grid, row, column, ids) = sidecar.samples_at(x, y).unwrap();
    assert_eq!((grid.method.as_str(), row, column), ("SnapKV", 2, 1));
    assert_eq!(ids, ["niah-2-1-a", "niah-2-1-b"]);
    let empty = element_box(&tree, "cell-0-1-2");
    let (_, _, _, ids) = sidecar
        .samples_at(empty.x() + 1.0, empty.y() + 1.0)
        .unwrap();
    assert!(ids.is_empty());
    assert!(sidecar.samples_at(1.0, 1.0).is_none(), "the margin");

    // In the overview, grid 1 (Judge Q at 128) sits in row 1, column 0.
    let figure = overview();
    let sidecar = task_figure_sidecar(&figure, run).unwrap();
    let tree = self::tree(&render_task_svg(&figure, run).unwrap());
    let cell = element_box(&tree, "cell-1-0-3");
    let (grid, row, column, ids) = sidecar
        .samples_at(
            cell.x() + cell.width() / 2.0,
            cell.y() + cell.height() / 2.0,
        )
        .unwrap();
    assert_eq!((grid.method.as_str(), grid.budget), ("Judge Q", Some(128)));
    assert_eq!((row, column), (0, 3));
    assert_eq!(ids[1], "niah-0-3-b");
    assert!(
        task_figure_sidecar(&TaskFigure::BudgetCurves(curves()), run)
            .unwrap()
            .samples_at(100.0, 100.0)
            .is_none()
    );
}

#[test]
fn heatmap_cells_carry_the_colour_of_their_score_and_empty_cells_say_no_data() {
    let run = Path::new(RUN);
    let figure = heatmap();
    let TaskFigure::NeedleHeatmap { grid, .. } = &figure else {
        unreachable!()
    };
    let dpi = 150.0;
    let svg = render_task_svg(&figure, run).unwrap();
    let tree = tree(&svg);
    let image = decode(&render_task_png(&figure, run, dpi).unwrap());
    for (i, row) in grid.scores.iter().enumerate() {
        for (j, &score) in row.iter().enumerate() {
            let cell = element_box(&tree, &format!("cell-0-{i}-{j}"));
            // Cells this wide have their value written at the centre: sample beside it.
            let got = pixel_in(&image, cell, (0.12, 0.2), dpi);
            assert!(close(got, score_rgb(score)), "cell ({i}, {j}): {got:?}");
        }
    }
    // Score 0 is ColorBrewer's darkest red, 1 its darkest green; the empty cell is grey.
    let at = |i: usize, j: usize| {
        pixel_in(
            &image,
            element_box(&tree, &format!("cell-0-{i}-{j}")),
            (0.12, 0.2),
            dpi,
        )
    };
    assert!(close(at(0, 0), [0xa5, 0x00, 0x26]), "{:?}", at(0, 0));
    assert!(close(at(2, 3), [0x00, 0x68, 0x37]), "{:?}", at(2, 3));
    assert!(close(at(1, 2), NO_DATA_RGB), "{:?}", at(1, 2));

    let words = all_texts(&svg);
    for expected in [
        "Needle in a haystack · tiny",
        "SnapKV · budget 128",
        "needle depth (%)",
        "context length (tokens)",
        "score",
        "no data",
        "0.00",
        "0.40",
        "1.00",
        "–",
        "33",
        "4000",
    ] {
        assert!(
            words.iter().any(|t| t == expected),
            "missing {expected:?} in {words:?}"
        );
    }
}

#[test]
fn small_overview_cells_are_coloured_at_their_centres() {
    // 21 depths in four columns: the cells are too small for values, so centres are clean.
    let mut wide = grid("H2O", Some(64));
    wide.depths = (0..=100).step_by(5).collect();
    wide.scores = (0..3)
        .map(|i| {
            (0..21)
                .map(|j| (j != 7).then_some((i * 21 + j) as f64 / 62.0))
                .collect()
        })
        .collect();
    wide.sample_ids = vec![vec![Vec::new(); 21]; 3];
    let mut grids = vec![wide.clone()];
    for (method, budget) in [("H2O", Some(128)), ("Judge Q", Some(64)), ("Judge Q", None)] {
        grids.push(NeedleGrid {
            method: method.into(),
            budget,
            ..wide.clone()
        });
    }
    let figure = TaskFigure::NeedleOverview {
        title: String::new(),
        grids,
    };
    let run = Path::new(RUN);
    let svg = render_task_svg(&figure, run).unwrap();
    assert!(
        !all_texts(&svg).iter().any(|t| t.contains("0.5")),
        "no values drawn"
    );
    let dpi = 300.0;
    let image = decode(&render_task_png(&figure, run, dpi).unwrap());
    let tree = tree(&svg);
    for panel in 0..4 {
        for (i, j) in [(0, 0), (1, 7), (2, 20), (1, 10)] {
            let cell = element_box(&tree, &format!("cell-{panel}-{i}-{j}"));
            let got = pixel_in(&image, cell, (0.5, 0.5), dpi);
            let want = score_rgb(wide.scores[i][j]);
            assert!(
                close(got, want),
                "panel {panel} cell ({i}, {j}): {got:?} vs {want:?}"
            );
        }
    }
    let words = all_texts(&svg);
    for expected in [
        "budget 64",
        "budget 128",
        "full cache",
        "H2O",
        "Judge Q",
        "no data",
    ] {
        assert!(words.iter().any(|t| t == expected), "missing {expected:?}");
    }
    // Columns in budget order, the full cache last; Judge Q's row has no 128 panel.
    let sidecar = task_figure_sidecar(&figure, run).unwrap();
    let xs: Vec<f32> = sidecar.heatmaps.iter().map(|h| h.x).collect();
    assert!(xs[0] < xs[1] && xs[2] == xs[0] && xs[3] > xs[1], "{xs:?}");
    assert!(tree.node_by_id("cell-3-0-0").is_some());
    assert!(tree.node_by_id("cell-4-0-0").is_none());
}

#[test]
fn ratio_figures_label_and_group_by_the_ratio_removed() {
    use crate::policy::Ratio;
    let ratio = |r: f64| Ratio::new(r).unwrap();
    let run = Path::new(RUN);
    // Curves over ratios: a linear axis of the ratios removed, labelled as such.
    let mut by_ratio = curves();
    by_ratio.budgets.clear();
    by_ratio.ratios = vec![ratio(0.25), ratio(0.5), ratio(0.75), ratio(0.9)];
    let svg = render_task_svg(&TaskFigure::BudgetCurves(by_ratio.clone()), run).unwrap();
    let words = all_texts(&svg);
    for expected in [
        "0.25",
        "0.50",
        "0.90",
        "ratio of each prompt's KV entries removed",
    ] {
        assert!(
            words.iter().any(|t| t == expected),
            "missing {expected:?} in {words:?}"
        );
    }
    let centres: Vec<f32> = svg
        .lines()
        .filter(|l| l.starts_with("<circle") && l.contains("#0072B2"))
        .map(|l| {
            l.split("cx=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    // 0.25, 0.5 and 0.75 are evenly apart; 0.9 is 0.15 further, 0.6 of a step.
    let gaps: Vec<f32> = centres[..4].windows(2).map(|w| w[1] - w[0]).collect();
    assert!((gaps[0] - gaps[1]).abs() < 0.01, "{gaps:?}");
    assert!((gaps[2] / gaps[0] - 0.6).abs() < 0.01, "{gaps:?}");
    let mut both = by_ratio.clone();
    both.budgets = vec![64, 128, 256, 512];
    assert!(
        TaskFigure::BudgetCurves(both)
            .validate()
            .unwrap_err()
            .to_string()
            .contains("without budgets beside them")
    );

    // Grids at one ratio share a column although each method kept another mean count.
    let at = |method: &str, kept: usize, r: f64| NeedleGrid {
        ratio: Some(ratio(r)),
        ..grid(method, Some(kept))
    };
    let figure = TaskFigure::NeedleOverview {
        title: String::new(),
        grids: vec![
            at("SnapKV", 500, 0.5),
            at("Judge Q", 502, 0.5),
            at("SnapKV", 250, 0.75),
            grid("Full KV", None),
        ],
    };
    let svg = render_task_svg(&figure, run).unwrap();
    let words = all_texts(&svg);
    for expected in ["ratio 0.50", "ratio 0.75", "full cache"] {
        assert!(words.iter().any(|t| t == expected), "missing {expected:?}");
    }
    let sidecar = task_figure_sidecar(&figure, run).unwrap();
    let xs: Vec<f32> = sidecar.heatmaps.iter().map(|h| h.x).collect();
    // Columns from the smallest cache: ratio 0.75, ratio 0.50, the full cache.
    assert!(xs[0] == xs[1] && xs[2] < xs[0] && xs[3] > xs[0], "{xs:?}");
    assert_eq!(sidecar.heatmaps[1].ratio, Some(ratio(0.5)));
    assert_eq!(
        at("Judge Q", 502, 0.5).budget_label(),
        "ratio 0.50 (kept 502)"
    );
}

#[test]
fn curves_draw_every_method_and_the_full_cache() {
    let run = Path::new(RUN);
    let figure = TaskFigure::BudgetCurves(curves());
    let svg = render_task_svg(&figure, run).unwrap();
    let words = all_texts(&svg);
    for expected in [
        "RULER niah_single_1 · 4K",
        "accuracy",
        "SnapKV",
        "Judge Q",
        "Full KV",
        "64",
        "512",
        "0.0",
        "1.0",
        "budget (KV entries per layer and head, log scale)",
    ] {
        assert!(
            words.iter().any(|t| t == expected),
            "missing {expected:?} in {words:?}"
        );
    }
    // SnapKV is one line; Judge Q's missing score at 128 leaves one line (256 to 512) and a
    // lone marker at 64. Seven markers on the plot and two in the legend.
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert_eq!(svg.matches("<circle").count(), 7 + 2);
    assert_eq!(
        svg.matches("stroke-dasharray").count(),
        2,
        "line and legend"
    );

    // Budgets are log₂ spaced: 64, 128, 256 and 512 are evenly apart.
    let centres: Vec<f32> = svg
        .lines()
        .filter(|l| l.starts_with("<circle") && l.contains("#0072B2"))
        .map(|l| {
            l.split("cx=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(centres.len(), 5, "four points and the legend");
    let gaps: Vec<f32> = centres[..4].windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| (g - gaps[0]).abs() < 0.01), "{gaps:?}");

    // Scores beyond 0–1 get a nice range that covers them.
    let mut percent = curves();
    percent.metric = "F1 (%)".into();
    percent.methods[0].1 = vec![Some(21.0), Some(33.5), Some(41.0), Some(57.2)];
    percent.methods[1].1 = vec![None, None, None, Some(58.0)];
    percent.full_kv = Some(61.3);
    let svg = render_task_svg(&TaskFigure::BudgetCurves(percent), run).unwrap();
    let words = all_texts(&svg);
    for expected in ["0", "20", "40", "60", "80"] {
        assert!(
            words.iter().any(|t| t == expected),
            "missing {expected:?} in {words:?}"
        );
    }
}

#[test]
fn bad_inputs_are_clear_errors_and_write_nothing() {
    let run = Path::new(RUN);
    let reason = |figure: TaskFigure| figure.validate().unwrap_err().to_string();

    let mut ragged = grid("SnapKV", Some(64));
    ragged.scores[0].push(Some(0.5));
    let err = reason(TaskFigure::NeedleHeatmap {
        title: String::new(),
        grid: ragged,
    });
    assert!(
        err.contains("at length 1000 have 5 entries for 4 depths"),
        "{err}"
    );

    let mut nan = grid("SnapKV", Some(64));
    nan.scores[1][1] = Some(f64::NAN);
    let figure = TaskFigure::NeedleOverview {
        title: String::new(),
        grids: vec![grid("H2O", Some(64)), nan],
    };
    assert!(reason(figure.clone()).contains("NaN at length 2000"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("niah.png");
    assert!(write_task_figure(&path, &figure, run, 300.0, Overwrite::Refuse).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let mut other_depths = grid("H2O", Some(128));
    other_depths.depths = vec![0, 25, 75, 100];
    let err = reason(TaskFigure::NeedleOverview {
        title: String::new(),
        grids: vec![grid("H2O", Some(64)), other_depths],
    });
    assert!(err.contains("other lengths or depths"), "{err}");
    let err = reason(TaskFigure::NeedleOverview {
        title: String::new(),
        grids: vec![grid("H2O", Some(64)), grid("H2O", Some(64))],
    });
    assert!(err.contains("given twice"), "{err}");
    let err = reason(TaskFigure::NeedleOverview {
        title: String::new(),
        grids: Vec::new(),
    });
    assert!(err.contains("at least one grid"), "{err}");

    let bad_curves = |edit: fn(&mut BudgetCurves)| {
        let mut c = curves();
        edit(&mut c);
        reason(TaskFigure::BudgetCurves(c))
    };
    assert!(
        bad_curves(|c| c.methods[1].1[0] = Some(f64::NAN))
            .contains("\"Judge Q\" scores NaN at budget 64")
    );
    assert!(
        bad_curves(|c| {
            c.methods[0].1.pop();
        })
        .contains("3 scores for 4 budgets")
    );
    assert!(bad_curves(|c| c.budgets = vec![64, 32, 256, 512]).contains("strictly increasing"));
    assert!(bad_curves(|c| c.full_kv = Some(f64::INFINITY)).contains("full-cache score is inf"));
    assert!(bad_curves(|c| c.methods[1].0 = "SnapKV".into()).contains("given twice"));
    assert!(bad_curves(|c| c.methods.clear()).contains("no methods"));
    assert!(
        render_task_png(&heatmap(), run, 5.0)
            .unwrap_err()
            .to_string()
            .contains("dpi")
    );
}

#[test]
fn files_are_written_side_by_side_and_never_replaced_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let run = Path::new(RUN);
    let figure = heatmap();
    let paths = write_task_figure(
        &dir.path().join("niah_snapkv_128.png"),
        &figure,
        run,
        300.0,
        Overwrite::Refuse,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&paths.svg).unwrap(),
        render_task_svg(&figure, run).unwrap()
    );
    assert_eq!(
        std::fs::read(&paths.png).unwrap(),
        render_task_png(&figure, run, 300.0).unwrap()
    );
    let sidecar: TaskFigureSidecar =
        serde_json::from_slice(&std::fs::read(&paths.sidecar).unwrap()).unwrap();
    assert_eq!(sidecar, task_figure_sidecar(&figure, run).unwrap());
    // 120 mm at 300 dpi.
    assert_eq!(decode(&std::fs::read(&paths.png).unwrap()).width(), 1417);

    std::fs::write(&paths.svg, b"mine").unwrap();
    let err = write_task_figure(&paths.png, &figure, run, 300.0, Overwrite::Refuse).unwrap_err();
    assert!(
        matches!(err, ExportError::Write(WriteError::WouldOverwrite { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read(&paths.svg).unwrap(), b"mine");
    write_task_figure(&paths.png, &figure, run, 300.0, Overwrite::Replace).unwrap();
    assert!(std::fs::read(&paths.svg).unwrap().starts_with(b"<svg"));
}

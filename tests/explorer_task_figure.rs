//! A needle heatmap of a task run opened in the explorer, driven headless through
//! egui_kittest with the demo engine: open the figure, click a cell, and the explorer holds the
//! sample's context and question and marks its needle on the prompt.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use judgeq::app::AppOptions;
use judgeq::app::demo::{DemoEngine, DemoShape};
use judgeq::app::explorer::Explorer;
use judgeq::app::files::{Purpose, QueuedPicker};
use judgeq::app::task_figure::{NEEDLE_LABEL, SAMPLES_FILE};
use judgeq::export::Overwrite;
use judgeq::export::task_figures::{BudgetCurves, NeedleGrid, TaskFigure, write_task_figure};
use judgeq::tasks::{Metric, TaskSample};

const SHAPE: DemoShape = DemoShape {
    layers: 4,
    query_heads: 4,
    kv_heads: 2,
};

const FILLER: &str = "The grass is green. The sky is blue. The sun is yellow. ";

/// A needle sample: the needle after two lines of filler, then one more.
fn sample(index: usize, id: &str, number: u32) -> TaskSample {
    let needle = format!("The magic number is {number}.");
    let context = format!("{FILLER}{FILLER}{needle} {FILLER}");
    let start = 2 * FILLER.len();
    TaskSample {
        index,
        id: id.to_owned(),
        task: "niah".to_owned(),
        evidence: std::iter::once(start..start + needle.len()).collect(),
        context,
        question: format!("What is the magic number of {id}?"),
        answer_prefix: "The magic number is".to_owned(),
        answers: vec![number.to_string()],
        max_new_tokens: 8,
        metric: Metric::StringMatchAll,
        fields: Vec::new(),
    }
}

fn samples() -> Vec<TaskSample> {
    vec![
        sample(0, "niah/100/0/0", 7),
        sample(1, "niah/100/50/0", 42),
        sample(2, "niah/100/50/1", 1234),
    ]
}

/// A run folder holding the samples and, under `figures/`, a needle heatmap (one length, two
/// depths: one sample at depth 0, two at depth 50) and the score curves; returns the
/// heatmap's PNG.
fn run_folder(dir: &Path) -> PathBuf {
    let lines: Vec<String> = samples()
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    std::fs::write(dir.join(SAMPLES_FILE), lines.join("\n") + "\n").unwrap();
    let figures = dir.join("figures");
    std::fs::create_dir(&figures).unwrap();
    let grid = NeedleGrid {
        method: "snapkv".to_owned(),
        budget: Some(8),
        ratio: None,
        lengths: vec![100],
        depths: vec![0, 50],
        scores: vec![vec![Some(1.0), Some(0.5)]],
        sample_ids: vec![vec![
            vec!["niah/100/0/0".to_owned()],
            vec!["niah/100/50/0".to_owned(), "niah/100/50/1".to_owned()],
        ]],
    };
    let heatmap = figures.join("needle_snapkv_b8.svg");
    let figure = TaskFigure::NeedleHeatmap {
        title: "niah on tiny: SnapKV at budget 8".to_owned(),
        grid,
    };
    write_task_figure(&heatmap, &figure, dir, 72.0, Overwrite::Refuse).unwrap();
    let curves = TaskFigure::BudgetCurves(BudgetCurves {
        title: "scores".to_owned(),
        metric: "score".to_owned(),
        budgets: vec![8],
        ratios: Vec::new(),
        methods: vec![("SnapKV".to_owned(), vec![Some(0.75)])],
        full_kv: Some(1.0),
    });
    let curves_path = figures.join("scores_by_budget.svg");
    write_task_figure(&curves_path, &curves, dir, 72.0, Overwrite::Refuse).unwrap();
    heatmap.with_extension("png")
}

struct Setup {
    harness: Harness<'static, Explorer>,
    picker: QueuedPicker,
    dir: tempfile::TempDir,
    figure: PathBuf,
}

fn explorer() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let figure = run_folder(dir.path());
    let picker = QueuedPicker::new();
    let options = AppOptions {
        picker: Box::new(picker.clone()),
        question: Some("An unrelated question?".to_owned()),
        restore_state: false,
        ..AppOptions::new(DemoEngine::new(SHAPE, Duration::from_millis(1)))
    };
    let harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_eframe(move |cc| {
            let mut explorer = Explorer::new(&cc.egui_ctx, None, options).unwrap();
            explorer.state_mut().show_frame_time = false;
            explorer
        });
    Setup {
        harness,
        picker,
        dir,
        figure,
    }
}

/// Steps frames until `done` holds (or panics after 20 s).
fn step_until(
    harness: &mut Harness<'static, Explorer>,
    what: &str,
    done: impl Fn(&Explorer) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        harness.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    harness.step();
}

/// Whether some text on screen contains `part`.
fn shows(harness: &Harness<'static, Explorer>, part: &str) -> bool {
    harness
        .root()
        .children_recursive()
        .filter_map(|n| {
            let node = n.accesskit_node();
            node.value().or_else(|| node.label())
        })
        .any(|t| t.contains(part))
}

/// Checks that the explorer holds `expected` as its document and question, that its session
/// is that sample's prompt with the answer prefix last, and that the needle is marked on
/// exactly the prompt tokens that spell it.
fn holds_sample(explorer: &Explorer, expected: &TaskSample) {
    let document = explorer.document().unwrap();
    assert_eq!(document.text, expected.context);
    assert_eq!(document.label, format!("sample {}", expected.id));
    assert_eq!(explorer.state().question, expected.question);
    let session = explorer.session().unwrap();
    assert!(
        session
            .prompt
            .text
            .ends_with("assistant\nThe magic number is"),
        "the answer prefix follows the assistant's header: {:?}",
        session.prompt.text
    );
    let marks = explorer.marks();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].label, NEEDLE_LABEL);
    let needle = &expected.context[expected.evidence[0].clone()];
    let [range] = marks[0].ranges() else {
        panic!("one needle range, not {:?}", marks[0].ranges());
    };
    assert_eq!(session.prompt.tokens[range.clone()].concat().trim(), needle);
    // The session shown carries the same marks.
    assert_eq!(
        explorer.view().unwrap().marks()[0].ranges(),
        marks[0].ranges()
    );
}

#[test]
fn clicking_a_cell_opens_its_sample_with_the_needle_marked() {
    let mut setup = explorer();
    let h = &mut setup.harness;
    setup.picker.push(Some(setup.figure.clone()));
    h.get_by_role_and_label(Role::Button, "Open task figure…")
        .click();
    h.run();
    assert_eq!(setup.picker.asked()[0].purpose, Purpose::TaskFigure);
    assert!(h.state().task_figure().is_some(), "{:?}", h.state().error());
    assert!(shows(h, "niah on tiny: SnapKV at budget 8"));

    // A cell with one sample opens it and runs it.
    h.get_by_label("length 100, depth 0%").click();
    step_until(h, "the sample's session", |e| {
        e.session().is_some() && e.job().is_none()
    });
    let all = samples();
    holds_sample(h.state(), &all[0]);
    assert!(h.state().error().is_none());

    // A cell with two lists them; picking one opens it.
    h.get_by_label("length 100, depth 50%").click();
    h.run();
    assert!(shows(h, "2 samples at length 100, depth 50%"));
    assert_eq!(
        h.state().document().unwrap().text,
        all[0].context,
        "nothing opens before a sample is picked"
    );
    h.get_by_role_and_label(Role::Button, "niah/100/50/1")
        .click();
    step_until(h, "the second sample's session", |e| {
        e.job().is_none() && e.document().is_some_and(|d| d.text == all[2].context)
    });
    step_until(h, "its session", |e| {
        e.session()
            .is_some_and(|s| s.prompt.text.contains("The magic number is 1234."))
    });
    holds_sample(h.state(), &all[2]);
}

#[test]
fn errors_show_in_the_banner_and_nothing_else_changes() {
    #[derive(Debug)]
    struct Dropped(PathBuf);
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &Path {
            &self.0
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            std::fs::read(&self.0).map_err(|e| e.to_string())
        }
    }
    let mut setup = explorer();
    let h = &mut setup.harness;
    // The score curves are a task figure, but no heatmap.
    let curves = setup.dir.path().join("figures/scores_by_budget.json");
    h.input_mut().dropped_files.push(Arc::new(Dropped(curves)));
    h.run();
    assert!(h.state().task_figure().is_none());
    assert!(
        h.state()
            .error()
            .is_some_and(|e| e.contains("not a needle heatmap")),
        "{:?}",
        h.state().error()
    );
    assert!(shows(h, "not a needle heatmap"));

    // The heatmap's SVG, dropped, opens the figure (its sidecar is beside it).
    let svg = setup.figure.with_extension("svg");
    h.input_mut().dropped_files.push(Arc::new(Dropped(svg)));
    h.run();
    assert!(h.state().task_figure().is_some(), "{:?}", h.state().error());
    assert!(h.state().error().is_none());

    // Without the run's samples, a click says where they were looked for.
    std::fs::remove_file(setup.dir.path().join(SAMPLES_FILE)).unwrap();
    h.get_by_label("length 100, depth 0%").click();
    h.run();
    let error = h.state().error().unwrap_or_default().to_owned();
    assert!(error.contains("Cannot open sample niah/100/0/0"), "{error}");
    assert!(error.contains(SAMPLES_FILE), "{error}");
    assert!(h.state().document().is_none());
    assert!(h.state().job().is_none(), "nothing runs");
    assert_eq!(h.state().state().question, "An unrelated question?");
}

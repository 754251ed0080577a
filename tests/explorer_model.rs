//! End to end: the explorer with the real default model behind the worker, driven headless.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::NodeT as _;
use judgeq::app::AppOptions;
use judgeq::app::explorer::Explorer;
use judgeq::attention::QuerySource;
use judgeq::judgeq::shipped;
use judgeq::model::LoadOptions;
use judgeq::model::fetch::default_model_path;
use judgeq::progress::Silent;
use judgeq::worker::engine::ModelEngine;

const DOCUMENT: &str = "Harlow is a small river town. Its stone bridge was built in 1868 and \
carries about nine thousand vehicles a day. In October the council closed the bridge after \
engineers found two corroded bearings. New bearings take eleven weeks to make, so the bridge \
will reopen on 14 March.\n";

/// Every text on screen.
fn texts(harness: &Harness<'static, Explorer>) -> Vec<String> {
    harness
        .root()
        .children_recursive()
        .filter_map(|n| {
            let node = n.accesskit_node();
            node.value().or_else(|| node.label())
        })
        .collect()
}

#[test]
fn the_default_model_runs_through_the_worker_and_fills_all_three_panels() {
    let model = default_model_path(&Silent).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("harlow.txt");
    std::fs::write(&document, DOCUMENT).unwrap();
    let options = AppOptions {
        document: Some(document),
        question: Some("When will the bridge reopen?".to_owned()),
        model: Some(model),
        restore_state: false,
        run_on_start: true,
        ..AppOptions::new(ModelEngine::new(LoadOptions::default()))
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_eframe(move |cc| Explorer::new(&cc.egui_ctx, None, options).unwrap());

    let deadline = Instant::now() + Duration::from_secs(600);
    while harness.state().session().is_none() {
        assert!(Instant::now() < deadline, "no session after 10 minutes");
        if let Some(message) = harness.state().error() {
            panic!("the explorer shows an error: {message}");
        }
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run();

    let session = harness.state().session().unwrap().clone();
    assert_eq!(session.model.layers, 30);
    assert_eq!(session.window.dim(), (30, 9, 32, session.prompt_len()));
    let soft = session
        .soft
        .as_ref()
        .expect("the shipped soft tokens are preselected for the default model");
    assert_eq!(soft.dim(), (30, 9, 32, session.prompt_len()));
    assert_eq!(
        session.settings.soft_tokens.as_deref(),
        Some(shipped::origin().to_string_lossy().as_ref())
    );
    assert!(!session.answer.ids.is_empty());
    assert!(
        session.answer.text.contains("March"),
        "answer: {}",
        session.answer.text
    );
    let shown = texts(&harness);
    // The lookahead and repeat panels are drawn only for sessions that captured them (no policy
    // here asks).
    let drawn = QuerySource::ALL.into_iter().filter(|&source| {
        !matches!(source, QuerySource::Lookahead | QuerySource::Repeat)
            || session.rows(source).is_some()
    });
    for source in drawn {
        assert!(
            shown.iter().any(|t| t.contains(source.title())),
            "panel `{}` is not shown",
            source.title()
        );
    }
    assert!(
        !shown
            .iter()
            .any(|t| t.contains("No soft tokens in this session")),
        "the Judge Q panel has no heatmap"
    );
    assert!(
        shown.iter().any(|t| t.contains(&session.answer.text)),
        "the answer is not shown"
    );
}

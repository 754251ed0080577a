//! The explorer driven headless through egui_kittest, with the demo engine (synthetic
//! attention, no model) and scripted file dialogs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use judgeq::app::AppOptions;
use judgeq::app::command::Command;
use judgeq::app::demo::{DemoEngine, DemoShape};
use judgeq::app::explorer::Explorer;
use judgeq::app::files::QueuedPicker;
use judgeq::app::marks::{MarkedSpans, mark_colour};
use judgeq::attention::Pick;
use judgeq::attention::QuerySource;
use judgeq::judgeq::shipped::SoftTokenChoice;
use judgeq::judgeq::{SoftTokenMeta, SoftTokens};
use judgeq::policy::{Budget, PolicyId, PolicySettings};
use judgeq::session::{QuestionPlacement, SyntheticSpec, synthetic};
use judgeq::worker::protocol::{Engine, EventSink, Request};

const DOCUMENT: &str = "The Harlow Street bridge closed on 9 October after two corroded bearings were found.\n\nReplacement bearings take eleven weeks to make. Work starts on 27 January and the bridge reopens on 14 March if the load test passes.\n";

/// A small model shape so each test runs in well under a second.
const SHAPE: DemoShape = DemoShape {
    layers: 4,
    query_heads: 4,
    kv_heads: 2,
};

struct Setup {
    harness: Harness<'static, Explorer>,
    picker: QueuedPicker,
    dir: tempfile::TempDir,
}

/// An explorer with the demo engine pausing `step` between units of work.
fn explorer(step: Duration) -> Setup {
    explorer_with_marks(step, Vec::new())
}

/// An explorer that marks `marks` on every session it shows.
fn explorer_with_marks(step: Duration, marks: Vec<MarkedSpans>) -> Setup {
    explorer_with_engine(DemoEngine::new(SHAPE, step), marks)
}

/// An explorer with `engine` behind its worker, marking `marks` on every session it shows.
fn explorer_with_engine(engine: impl Engine, marks: Vec<MarkedSpans>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("bridge.md");
    std::fs::write(&document, DOCUMENT).unwrap();
    let picker = QueuedPicker::new();
    let options = AppOptions {
        picker: Box::new(picker.clone()),
        document: Some(document),
        question: Some("When does the bridge reopen?".to_owned()),
        restore_state: false,
        marks,
        ..AppOptions::new(engine)
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
    }
}
/// Picks `to` in the file dialog the next "Export figure…" opens, and clicks the button.
fn click_export_figure(setup: &mut Setup, to: PathBuf) {
    setup.picker.push(Some(to));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Export figure…")
        .click();
}

/// Exports the figure to `to` and waits until the export is done, without an error.
fn export_figure(setup: &mut Setup, to: PathBuf) {
    click_export_figure(setup, to);
    setup.harness.step();
    step_until(&mut setup.harness, "the figure export", |e| {
        !e.is_exporting()
    });
    assert_eq!(setup.harness.state().error(), None);
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

/// Presses Run and waits for a session other than the one shown before, and its policy bank.
fn run_session(setup: &mut Setup) {
    let before = setup.harness.state().session().cloned();
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Run")
        .click();
    step_until(
        &mut setup.harness,
        "a new session and its policy bank",
        |e| {
            e.session()
                .is_some_and(|s| before.as_ref().is_none_or(|b| !Arc::ptr_eq(s, b)))
                && e.view().is_some_and(|v| v.is_bank_ready())
        },
    );
    setup.harness.run();
}

/// Every text on screen (labels carry theirs as the AccessKit value).
fn texts(harness: &Harness<'static, Explorer>) -> Vec<String> {
    harness
        .root()
        .children_recursive()
        .filter(|n| n.accesskit_node().role() != Role::TextRun)
        .filter_map(|n| {
            let node = n.accesskit_node();
            node.value().or_else(|| node.label())
        })
        .collect()
}

/// The "keeps … of … per head" labels of the three panels' strips.
fn kept_label(harness: &Harness<'static, Explorer>) -> Vec<String> {
    texts(harness)
        .into_iter()
        .filter(|t| t.starts_with("keeps") && t.contains("per head ("))
        .collect()
}

/// Whether some text on screen contains `part`.
fn shows(harness: &Harness<'static, Explorer>, part: &str) -> bool {
    texts(harness).iter().any(|t| t.contains(part))
}

#[test]
fn moving_the_budget_slider_changes_the_kept_counts_shown() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let keys = setup.harness.state().session().unwrap().prompt_len();
    setup.harness.state_mut().state_mut().budget = keys;
    setup.harness.run();
    let labels = kept_label(&setup.harness);
    assert_eq!(labels.len(), 3, "{labels:?}");
    assert!(
        labels
            .iter()
            .all(|l| l.starts_with(&format!("keeps {keys} of {keys}"))),
        "{labels:?}"
    );

    setup
        .harness
        .get_by_role_and_label(Role::Slider, "Budget")
        .set_value_accesskit(16.0);
    setup.harness.run();

    assert_eq!(setup.harness.state().state().budget, 16);
    let labels = kept_label(&setup.harness);
    assert_eq!(labels.len(), 3, "{labels:?}");
    for label in &labels {
        assert!(
            label.starts_with(&format!("keeps 16 of {keys} per head")),
            "{label}"
        );
    }
    // The metrics table and the document highlights follow in the same frame.
    assert!(shows(&setup.harness, "Metrics at budget 16"));
    let view = setup.harness.state().view().unwrap();
    let share = view
        .cached_kept_share(
            PolicyId::SNAPKV,
            Budget::clamped(16, view.keys()),
            setup.harness.state().state().view,
        )
        .unwrap();
    assert!(
        (share.iter().sum::<f32>() - 16.0).abs() < 1e-3,
        "SnapKV keeps 16 entries of the shown head"
    );
}

#[test]
fn the_ratio_toggle_shows_and_sets_the_budget_as_a_ratio_removed() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let keys = setup.harness.state().session().unwrap().prompt_len();
    let half = keys / 2;
    setup.harness.state_mut().state_mut().budget = half;
    setup.harness.run();
    assert!(!shows(&setup.harness, "(ratio "));

    setup
        .harness
        .get_by_role_and_label(Role::CheckBox, "as ratio")
        .click();
    setup.harness.run();
    assert!(setup.harness.state().state().budget_as_ratio);
    // Hand-computed: half of the entries kept removes 1 − half / n of them.
    let shown = format!("B = {half} (ratio {:.2})", 1.0 - half as f64 / keys as f64);
    assert!(
        shows(&setup.harness, &shown),
        "no `{shown}` in {:?}",
        texts(&setup.harness)
    );

    // Setting the ratio sets the budget by kvpress's rule: int(n · (1 − 0.75)).
    setup
        .harness
        .get_by_role_and_label(Role::SpinButton, "ratio removed")
        .set_value_accesskit(0.75);
    setup.harness.run();
    let quarter = (keys as f64 * 0.25).floor() as usize;
    assert!(quarter >= 4, "a prompt of {keys} tokens");
    assert_eq!(setup.harness.state().state().budget, quarter);
    assert!(shows(
        &setup.harness,
        &format!("Metrics at budget {quarter}")
    ));
    let shown = format!(
        "B = {quarter} (ratio {:.2})",
        1.0 - quarter as f64 / keys as f64
    );
    assert!(
        shows(&setup.harness, &shown),
        "no `{shown}` in {:?}",
        texts(&setup.harness)
    );

    // The slider still moves in entries.
    setup
        .harness
        .get_by_role_and_label(Role::Slider, "Budget")
        .set_value_accesskit(16.0);
    setup.harness.run();
    assert_eq!(setup.harness.state().state().budget, 16);
    let shown = format!("B = 16 (ratio {:.2})", 1.0 - 16.0 / keys as f64);
    assert!(
        shows(&setup.harness, &shown),
        "no `{shown}` in {:?}",
        texts(&setup.harness)
    );
}

#[test]
fn switching_layer_head_aggregation_and_policy_changes_what_is_drawn() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let h = &mut setup.harness;
    let snapshot = |h: &Harness<'static, Explorer>| {
        let view = h.state().view().unwrap();
        let matrix = view.shown_matrix(QuerySource::Window).unwrap();
        let uploads = view.texture_uploads(QuerySource::Window);
        (matrix, uploads)
    };
    let (first, uploads) = snapshot(h);

    // Layer 2 through the layer picker.
    h.get_by_role_and_label(Role::ComboBox, "Layer").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "2").click();
    h.run();
    assert_eq!(h.state().state().view.layer, Pick::One(2));
    let (second, after_layer) = snapshot(h);
    assert_ne!(first, second, "another layer shows another matrix");
    assert!(after_layer > uploads, "the textures were rebuilt");

    // One head instead of all of them, then max instead of mean over layers.
    h.get_by_role_and_label(Role::ComboBox, "Head").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "1").click();
    h.run();
    let (third, _) = snapshot(h);
    assert_ne!(second, third);
    h.state_mut().state_mut().view.layer = Pick::All;
    h.run();
    let (mean, _) = snapshot(h);
    h.get_by_role_and_label(Role::ComboBox, "Combine").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "max").click();
    h.run();
    let (max, _) = snapshot(h);
    assert!(
        max.iter().zip(mean.iter()).all(|(a, b)| a >= b),
        "the maximum over layers is at least the mean"
    );
    assert_ne!(max, mean);

    // Another policy under the first panel changes its strip.
    let budget = 12;
    h.state_mut().state_mut().budget = budget;
    h.run();
    let view_sel = h.state().state().view;
    let budget = Budget::clamped(budget, h.state().view().unwrap().keys());
    let snap = h
        .state()
        .view()
        .unwrap()
        .cached_kept_share(PolicyId::SNAPKV, budget, view_sel)
        .unwrap();
    h.state_mut().state_mut().strip_policies[0] = PolicyId::STREAMING_LLM;
    h.run();
    let streaming = h
        .state()
        .view()
        .unwrap()
        .cached_kept_share(PolicyId::STREAMING_LLM, budget, view_sel)
        .unwrap();
    assert_ne!(snap, streaming);
    assert_eq!(
        streaming.first(),
        Some(&1.0),
        "StreamingLLM keeps the first sink"
    );
}

#[test]
fn panning_reuses_the_textures_and_zooming_changes_the_level() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let h = &mut setup.harness;
    h.state_mut().view_mut().unwrap().axis.set_range(0.0, 40.0);
    h.run();
    let uploads = h
        .state()
        .view()
        .unwrap()
        .texture_uploads(QuerySource::Window);
    for step in 1..=5 {
        h.state_mut().view_mut().unwrap().axis.pan(3.0);
        h.run();
        assert_eq!(
            h.state().view().unwrap().axis.start(),
            3.0 * f64::from(step)
        );
    }
    assert_eq!(
        h.state()
            .view()
            .unwrap()
            .texture_uploads(QuerySource::Window),
        uploads,
        "panning re-uploads nothing"
    );
    h.state_mut().view_mut().unwrap().axis.reset();
    h.run();
    // The panels are under 1000 pixels wide, so a short prompt needs no pooling; a long one would.
    assert!(
        h.state()
            .view()
            .unwrap()
            .texture_uploads(QuerySource::Window)
            >= uploads
    );
}

#[test]
fn export_writes_the_figure_and_the_data_and_asks_before_replacing() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let png = setup.dir.path().join("figure.png");
    export_figure(&mut setup, png.clone());
    for ext in ["png", "svg", "json"] {
        let path = png.with_extension(ext);
        assert!(
            std::fs::metadata(&path).unwrap().len() > 100,
            "{} is written",
            path.display()
        );
    }
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(png.with_extension("json")).unwrap()).unwrap();
    assert_eq!(
        sidecar["budget"],
        serde_json::json!(
            setup
                .harness
                .state()
                .state()
                .budget
                .min(setup.harness.state().session().unwrap().prompt_len())
        )
    );
    assert_eq!(sidecar["panels"].as_array().unwrap().len(), 3);

    // Exporting again to the same name asks first; Cancel leaves the files alone.
    let before = std::fs::read(png.with_extension("svg")).unwrap();
    std::fs::write(png.with_extension("svg"), b"mine").unwrap();
    click_export_figure(&mut setup, png.clone());
    setup.harness.run();
    assert!(shows(&setup.harness, "Replace existing files?"));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Cancel")
        .click();
    setup.harness.run();
    assert_eq!(std::fs::read(png.with_extension("svg")).unwrap(), b"mine");
    // Replace overwrites them.
    click_export_figure(&mut setup, png.clone());
    setup.harness.run();
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Replace")
        .click();
    setup.harness.step();
    step_until(&mut setup.harness, "the replacing export", |e| {
        !e.is_exporting()
    });
    assert_eq!(std::fs::read(png.with_extension("svg")).unwrap(), before);

    // Data: arrays, manifest and metrics into a folder.
    let data = setup.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    setup.picker.push(Some(data.clone()));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Export data…")
        .click();
    setup.harness.step();
    step_until(&mut setup.harness, "the data export", |e| !e.is_exporting());
    assert_eq!(setup.harness.state().error(), None);
    for name in [
        "manifest.json",
        "window.npy",
        "soft.npy",
        "decoded.npy",
        "answer.txt",
        "metrics.csv",
    ] {
        assert!(data.join(name).is_file(), "{name} is written");
    }
    let metrics = std::fs::read_to_string(data.join("metrics.csv")).unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("snapkv,")),
        "{metrics}"
    );
    let budget = setup.harness.state().state().budget;
    assert!(data.join(format!("keep_snapkv_{budget}.npy")).is_file());
}

#[test]
fn a_bad_document_shows_an_error_and_keeps_the_previous_session() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let session = Arc::clone(setup.harness.state().session().unwrap());
    let text = setup.harness.state().document().unwrap().text.clone();
    let binary = setup.dir.path().join("image.png");
    std::fs::write(&binary, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0").unwrap();
    let empty = setup.dir.path().join("empty.txt");
    std::fs::write(&empty, b"  \n").unwrap();
    for (path, what) in [(&binary, "binary"), (&empty, "empty")] {
        setup.picker.push(Some(path.clone()));
        setup
            .harness
            .get_by_role_and_label(Role::Button, "Open document…")
            .click();
        setup.harness.run();
        let error = setup.harness.state().error().unwrap_or_default().to_owned();
        assert!(error.contains("Cannot use"), "{what}: {error}");
        assert!(shows(&setup.harness, "Cannot use"));
        assert!(
            Arc::ptr_eq(setup.harness.state().session().unwrap(), &session),
            "{what}: session kept"
        );
        assert_eq!(
            setup.harness.state().document().unwrap().text,
            text,
            "{what}: document kept"
        );
        setup
            .harness
            .get_by_role_and_label(Role::Button, "Dismiss")
            .click();
        setup.harness.run();
        assert_eq!(setup.harness.state().error(), None);
    }
    // A cancelled dialog changes nothing either.
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Open document…")
        .click();
    setup.harness.run();
    assert_eq!(setup.harness.state().document().unwrap().text, text);
}

#[test]
fn cancel_stops_a_running_job() {
    let mut setup = explorer(Duration::from_millis(80));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Run")
        .click();
    step_until(&mut setup.harness, "progress", |e| {
        e.job().is_some_and(|j| j.stage.is_some())
    });
    assert!(shows(&setup.harness, "Loading model"));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Cancel")
        .click();
    step_until(&mut setup.harness, "the cancellation", |e| {
        e.job().is_none()
    });
    assert_eq!(setup.harness.state().status(), "Cancelled");
    assert!(setup.harness.state().session().is_none());
    // The engine is free again: the next run completes.
    run_session(&mut setup);
}

#[test]
fn a_dropped_file_becomes_the_document() {
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
    let mut setup = explorer(Duration::from_millis(1));
    let path = setup.dir.path().join("notes.txt");
    std::fs::write(&path, "Dropped text about bridges.").unwrap();
    setup
        .harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(path.clone())));
    setup.harness.run();
    let document = setup.harness.state().document().unwrap();
    assert_eq!(document.path.as_deref(), Some(path.as_path()));
    assert_eq!(document.text, "Dropped text about bridges.");
    assert!(shows(&setup.harness, "notes.txt ("));
}

#[test]
fn answers_under_eviction_come_from_the_worker() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let keys = setup.harness.state().session().unwrap().prompt_len();
    setup.harness.state_mut().state_mut().budget = keys;
    setup.harness.run();
    setup
        .harness
        .get_by_role_and_label(Role::Button, &format!("Decode at budget {keys}"))
        .click();
    step_until(&mut setup.harness, "answers", |e| {
        e.view()
            .is_some_and(|v| v.answers.pending.is_none() && !v.answers.answers.is_empty())
    });
    let view = setup.harness.state().view().unwrap();
    let full = view.session.answer.text.clone();
    for policy in [PolicyId::SNAPKV, PolicyId::ORACLE] {
        let answer = &view.answers.answers[&policy];
        assert_eq!(answer.budget, keys);
        assert_eq!(
            answer.answer.text, full,
            "keeping every entry keeps the answer"
        );
    }
    // A budget of 4 loses most of the decoded tokens' attention and so the answer.
    setup.harness.state_mut().state_mut().budget = 4;
    setup.harness.run();
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Decode at budget 4")
        .click();
    step_until(&mut setup.harness, "answers at 4", |e| {
        e.view().is_some_and(|v| {
            v.answers
                .answers
                .get(&PolicyId::STREAMING_LLM)
                .is_some_and(|a| a.budget == 4)
        })
    });
    let answer = &setup.harness.state().view().unwrap().answers.answers[&PolicyId::STREAMING_LLM];
    assert_ne!(answer.answer.text, full);
}

#[test]
fn answers_are_requested_when_the_budget_slider_rests() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    setup.harness.state_mut().state_mut().auto_decode = true;
    setup
        .harness
        .get_by_role_and_label(Role::Slider, "Budget")
        .set_value_accesskit(24.0);
    setup.harness.step();
    assert!(
        setup
            .harness
            .state()
            .view()
            .unwrap()
            .answers
            .pending
            .is_none(),
        "nothing is asked while the slider moves"
    );
    step_until(&mut setup.harness, "answers at the resting budget", |e| {
        e.view().is_some_and(|v| {
            v.answers
                .answers
                .get(&PolicyId::SNAPKV)
                .is_some_and(|a| a.budget == 24)
        })
    });
}

#[test]
fn a_session_without_soft_tokens_says_so_and_ranks_the_rest() {
    let mut setup = explorer(Duration::from_millis(1));
    let spec = judgeq::session::SyntheticSpec {
        seed: 3,
        layers: 2,
        query_heads: 4,
        kv_heads: 2,
        n_prompt: 80,
        window: 8,
        soft: 0,
        decoded: 6,
    };
    let session = judgeq::session::synthetic(&spec).unwrap();
    setup.harness.state_mut().show_session(Arc::new(session));
    step_until(&mut setup.harness, "the policy bank", |e| {
        e.view().is_some_and(|v| v.is_bank_ready())
    });
    setup.harness.run();
    assert!(shows(&setup.harness, "No soft tokens in this session"));
    let view = setup.harness.state().view().unwrap();
    assert!(
        !view
            .available_policies(&PolicySettings::default())
            .contains(&PolicyId::JUDGEQ)
    );
    assert!(view.shown_matrix(QuerySource::Soft).is_none());
    assert!(view.shown_matrix(QuerySource::Window).is_some());
    // The other strips still show what their policies keep.
    assert_eq!(kept_label(&setup.harness).len(), 2);
}

#[test]
fn state_is_saved_and_restored() {
    #[derive(Default)]
    struct Memory(std::collections::HashMap<String, String>);
    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }
    let ctx = egui::Context::default();
    let options = || AppOptions {
        picker: Box::new(QueuedPicker::new()),
        ..AppOptions::new(DemoEngine::new(SHAPE, Duration::from_millis(1)))
    };
    let mut first = Explorer::new(&ctx, None, options()).unwrap();
    first.state_mut().question = "Who pays?".to_owned();
    first.state_mut().budget = 77;
    first.state_mut().budget_as_ratio = true;
    first.state_mut().show_source(QuerySource::Window, false);
    first.state_mut().soft_token_choice =
        SoftTokenChoice::File(PathBuf::from("/tmp/soft.safetensors"));
    let mut storage = Memory::default();
    eframe::App::save(&mut first, &mut storage);
    let second = Explorer::new(&ctx, Some(&storage), options()).unwrap();
    assert_eq!(second.state(), first.state());
}

/// Token ranges of every occurrence of `word` (lower case, no spaces) in the joined tokens,
/// found by scanning every start position: the reference for the find box.
fn occurrences(tokens: &[String], word: &str) -> Vec<std::ops::Range<usize>> {
    let text = tokens.concat().to_lowercase();
    let mut owner = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        owner.extend(std::iter::repeat_n(i, t.len()));
    }
    let mut found = Vec::new();
    let mut at = 0;
    while at + word.len() <= text.len() {
        if text.get(at..at + word.len()) == Some(word) {
            found.push(owner[at]..owner[at + word.len() - 1] + 1);
            at += word.len();
        } else {
            at += 1;
        }
    }
    found
}

#[test]
fn finding_a_phrase_marks_its_tokens_and_steps_through_the_matches() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let h = &mut setup.harness;
    let tokens = h.state().session().unwrap().prompt.tokens.clone();
    let expected = occurrences(&tokens, "bridge");
    assert_eq!(
        expected.len(),
        3,
        "twice in the document, once in the question"
    );
    assert!(shows(h, "type a phrase to mark it on every panel"));

    let find_box = h.get_by_role_and_label(Role::TextInput, "Find in prompt");
    find_box.focus();
    find_box.type_text("BRIDGE");
    h.run();
    assert_eq!(h.state().find_query(), "BRIDGE");
    let covered: usize = expected.iter().map(|r| r.len()).sum();
    assert!(
        shows(h, &format!("3 matches, {covered} tokens")),
        "{:?}",
        texts(h)
    );
    let view = h.state().view().unwrap();
    let lists = view.mark_lists();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].ranges(), expected.as_slice());

    // Zoomed in, Next and Previous centre the key axis on each match in turn.
    h.state_mut().view_mut().unwrap().axis.set_range(0.0, 10.0);
    h.run();
    for (click, index) in [
        ("Next", 0),
        ("Next", 1),
        ("Next", 2),
        ("Next", 0),
        ("Previous", 2),
    ] {
        h.get_by_role_and_label(Role::Button, click).click();
        h.run();
        let view = h.state().view().unwrap();
        assert_eq!(view.find.current(), Some(index), "{click}");
        let middle = (view.axis.start() + view.axis.end()) / 2.0;
        let range = &expected[index];
        assert!(
            (middle - (range.start + range.end) as f64 / 2.0).abs() < 1e-9
                || view.axis.start() == 0.0
                || view.axis.end() == tokens.len() as f64,
            "match {index} {range:?} is centred: view {}..{}",
            view.axis.start(),
            view.axis.end()
        );
        assert!(view.axis.start() <= range.start as f64 && range.end as f64 <= view.axis.end());
        assert!(shows(h, &format!("showing {} of 3", index + 1)));
    }

    // A phrase across tokens, in other case and spacing, marks every token it touches.
    let find_box = h.get_by_role_and_label(Role::TextInput, "Find in prompt");
    find_box.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    find_box.type_text("reopens  ON 14");
    h.run();
    let reopens = occurrences(&tokens, "reopens on 14");
    assert_eq!(reopens.len(), 1);
    let view = h.state().view().unwrap();
    assert_eq!(view.mark_lists()[0].ranges(), reopens.as_slice());
    assert_eq!(
        view.find.current(),
        None,
        "a new phrase starts before its first match"
    );

    // Nothing found: no list is drawn and the buttons are off.
    let find_box = h.get_by_role_and_label(Role::TextInput, "Find in prompt");
    find_box.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    find_box.type_text("ferry");
    h.run();
    assert!(shows(h, "no matches"));
    assert!(h.state().view().unwrap().mark_lists().is_empty());
    assert!(
        h.get_by_role_and_label(Role::Button, "Next")
            .accesskit_node()
            .is_disabled()
    );
}

#[test]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "lists of token ranges, some of one range"
)]
fn marked_spans_are_drawn_in_the_legend_and_the_legend_pans_to_them() {
    let needle = MarkedSpans::new("needle", mark_colour(0), vec![20..24]);
    // A list for a longer prompt: its second range starts past this one's end and is dropped.
    let long = MarkedSpans::new("late", mark_colour(1), vec![4..6, 5000..5010]);
    let mut setup = explorer_with_marks(Duration::from_millis(1), vec![needle.clone(), long]);
    run_session(&mut setup);
    let h = &mut setup.harness;
    let keys = h.state().session().unwrap().prompt_len();
    assert!(keys > 30 && keys < 5000, "{keys} keys");
    let view = h.state().view().unwrap();
    assert_eq!(view.marks().len(), 2);
    assert_eq!(view.marks()[0].ranges(), &[20..24]);
    assert_eq!(view.marks()[1].ranges(), &[4..6]);
    assert_eq!(view.mark_lists().len(), 2, "no find list without a query");

    h.state_mut().view_mut().unwrap().axis.set_range(60.0, 70.0);
    h.run();
    h.get_by_role_and_label(Role::Button, "needle").click();
    h.run();
    let axis = &h.state().view().unwrap().axis;
    assert_eq!((axis.start(), axis.end()), (17.0, 27.0));

    // Marks set later replace the ones before; an empty list clears them.
    let other = MarkedSpans::new("evidence", mark_colour(2), vec![8..9, 30..33]);
    h.state_mut()
        .push_command(Command::SetMarks(vec![other.clone()]));
    h.run();
    h.run();
    assert_eq!(h.state().marks(), &[other]);
    assert!(h.query_by_label("needle").is_none());
    h.get_by_role_and_label(Role::Button, "evidence").click();
    h.run();
    h.get_by_role_and_label(Role::Button, "evidence").click();
    h.run();
    let axis = &h.state().view().unwrap().axis;
    assert!(
        axis.start() <= 30.0 && 33.0 <= axis.end(),
        "the second click shows the second range: {}..{}",
        axis.start(),
        axis.end()
    );
    h.state_mut().push_command(Command::SetMarks(Vec::new()));
    h.run();
    h.run();
    assert!(h.state().view().unwrap().marks().is_empty());
    assert!(h.query_by_label("evidence").is_none());
}

#[test]
fn score_profiles_sum_the_shown_rows_once_per_view_and_can_be_hidden() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let h = &mut setup.harness;
    let profile_label = "Score profile: Last-window queries (SnapKV)";
    assert!(h.query_by_label(profile_label).is_some());

    // Reference: the window's rows of layer 0 summed over queries, averaged over the heads.
    let reference = |h: &Harness<'static, Explorer>, layer: usize| -> Vec<f32> {
        let session = h.state().session().unwrap();
        let rows = &session.window;
        let (_, heads, queries, keys) = rows.dim();
        (0..keys)
            .map(|k| {
                let mut total = 0.0;
                for head in 0..heads {
                    for q in 0..queries {
                        total += rows[[layer, head, q, k]];
                    }
                }
                total / heads as f32
            })
            .collect()
    };
    let close = |a: &[f32], b: &[f32]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y))
    };
    let shown = h
        .state_mut()
        .view_mut()
        .unwrap()
        .profile(QuerySource::Window)
        .unwrap();
    assert!(close(&shown, &reference(h, 0)));
    let builds = h
        .state()
        .view()
        .unwrap()
        .profile_builds(QuerySource::Window);
    assert_eq!(builds, 1);

    // The budget slider and panning reuse the profile.
    for budget in [8.0, 20.0, 40.0] {
        h.get_by_role_and_label(Role::Slider, "Budget")
            .set_value_accesskit(budget);
        h.run();
        h.state_mut().view_mut().unwrap().axis.set_range(5.0, 30.0);
        h.run();
    }
    assert_eq!(
        h.state()
            .view()
            .unwrap()
            .profile_builds(QuerySource::Window),
        builds
    );

    // Another layer sums its own rows, once.
    h.state_mut().state_mut().view.layer = Pick::One(2);
    h.run();
    h.run();
    let view = h.state_mut().view_mut().unwrap();
    let shown = view.profile(QuerySource::Window).unwrap();
    assert_eq!(view.profile_builds(QuerySource::Window), builds + 1);
    assert!(close(&shown, &reference(h, 2)));

    // The switch in the find bar hides and shows them, and is remembered.
    h.get_by_role_and_label(Role::CheckBox, "Score profiles")
        .click();
    h.run();
    assert!(!h.state().state().show_profiles);
    assert!(h.query_by_label(profile_label).is_none());
    h.get_by_role_and_label(Role::CheckBox, "Score profiles")
        .click();
    h.run();
    assert!(h.state().state().show_profiles);
    assert!(h.query_by_label(profile_label).is_some());
}

#[test]
fn kvpress_presses_are_ticked_captured_on_the_next_run_and_ranked() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let ids = [
        "knorm",
        "keydiff",
        "tova",
        "expected-attention",
        "adakv-expected-attention",
        "lagkv",
    ];
    let presses: Vec<PolicyId> = ids.iter().map(|id| id.parse().unwrap()).collect();
    let settings = PolicySettings::default();
    // TOVA scores with the window rows every session has; the others need what the prefill
    // captures only on request.
    let available = setup
        .harness
        .state()
        .view()
        .unwrap()
        .available_policies(&settings);
    assert!(available.contains(&presses[2]));
    assert!(
        presses
            .iter()
            .filter(|&&p| p != presses[2])
            .all(|p| !available.contains(p))
    );
    assert!(
        setup
            .harness
            .state()
            .session()
            .unwrap()
            .prefill_inputs
            .keys
            .is_none()
    );
    // Each can be ticked all the same; the panel says the next run captures its inputs.
    for policy in &presses {
        setup
            .harness
            .get_by_role_and_label(Role::CheckBox, policy.label())
            .click();
        setup.harness.run();
    }
    assert!(
        presses
            .iter()
            .all(|p| setup.harness.state().state().compared.contains(p))
    );
    assert!(shows(&setup.harness, "inspect again"));
    run_session(&mut setup);
    let session = Arc::clone(setup.harness.state().session().unwrap());
    let inputs = &session.prefill_inputs;
    assert!(inputs.keys.is_some() && inputs.value_norms.is_some() && inputs.values.is_some());
    assert!(inputs.query_statistics.is_some());
    let view = setup.harness.state_mut().view_mut().unwrap();
    let available = view.available_policies(&settings);
    let budget = Budget::new(16, session.prompt_len()).unwrap();
    for policy in presses {
        assert!(available.contains(&policy), "{policy}");
        let selection = view.selection(policy, budget).unwrap().unwrap();
        assert!(selection.kept.iter().all(|&c| c <= session.prompt_len()));
        assert_eq!(
            selection.mask.iter().filter(|&&k| k).count(),
            selection.kept.sum()
        );
    }
    assert!(!shows(&setup.harness, "inspect again"));
}

/// The labels of a source's heatmap and kept strip.
fn panel_labels(source: QuerySource) -> [String; 2] {
    [
        format!("Heatmap: {}", source.title()),
        format!("Kept strip: {}", source.title()),
    ]
}

/// Whether the heatmap and the kept strip of `source` are on screen (panics when only one is).
fn panel_shown(harness: &Harness<'static, Explorer>, source: QuerySource) -> bool {
    let [map, strip] = panel_labels(source).map(|label| harness.query_by_label(&label).is_some());
    assert_eq!(
        map, strip,
        "the heatmap and the strip of {source:?} go together"
    );
    map
}

/// Shows `session` and waits for its policy bank.
fn show(setup: &mut Setup, session: judgeq::session::Session) {
    setup.harness.state_mut().show_session(Arc::new(session));
    step_until(&mut setup.harness, "the policy bank", |e| {
        e.view().is_some_and(|v| v.is_bank_ready())
    });
    setup.harness.run();
}

#[test]
fn hiding_sources_removes_their_panels_and_strips_and_the_rest_share_the_space() {
    let mut setup = explorer(Duration::from_millis(1));
    run_session(&mut setup);
    let [window, soft, decoded] = [QuerySource::Window, QuerySource::Soft, QuerySource::Decoded];
    let h = &mut setup.harness;
    for source in [window, soft, decoded] {
        assert!(panel_shown(h, source), "{source:?}");
    }
    assert!(
        h.query_by_label("lookahead").is_none(),
        "no switch for a source the session did not capture"
    );
    let map_height =
        |h: &Harness<'static, Explorer>| h.get_by_label(&panel_labels(decoded)[0]).rect().height();
    let three = map_height(h);

    // Soft tokens beside the oracle: the window's panel and strip go, the others grow.
    h.get_by_role_and_label(Role::CheckBox, "window").click();
    h.run();
    assert_eq!(h.state().state().hidden_sources, [window]);
    assert!(!panel_shown(h, window));
    assert!(panel_shown(h, soft) && panel_shown(h, decoded));
    assert_eq!(kept_label(h).len(), 2, "{:?}", kept_label(h));
    let two = map_height(h);
    assert!(two > three + 50.0, "{three} → {two}");

    // The readout of a hovered key names the shown sources and strips only.
    h.get_by_label(&panel_labels(decoded)[0]).hover();
    h.run();
    let key = h
        .state()
        .view()
        .unwrap()
        .axis
        .marked()
        .expect("a hovered key");
    let line = texts(h)
        .into_iter()
        .find(|t| t.starts_with(&format!("Key {key} ")))
        .expect("the readout");
    assert!(
        line.contains("soft ") && line.contains("decoded "),
        "{line}"
    );
    assert!(
        !line.contains("window ") && !line.contains("SnapKV"),
        "{line}"
    );

    // The figure draws the shown panels.
    let png = setup.dir.path().join("two.png");
    export_figure(&mut setup, png.clone());
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(png.with_extension("json")).unwrap()).unwrap();
    let titles: Vec<&str> = sidecar["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, [soft.title(), decoded.title()]);

    // Hiding every panel leaves a hint, and nothing to export.
    let h = &mut setup.harness;
    for stem in ["soft", "decoded"] {
        h.get_by_role_and_label(Role::CheckBox, stem).click();
        h.run();
    }
    assert!(shows(h, "Every source panel is hidden"));
    for source in [window, soft, decoded] {
        assert!(!panel_shown(h, source), "{source:?}");
    }
    let none = setup.dir.path().join("none.png");
    click_export_figure(&mut setup, none);
    setup.harness.run();
    let error = setup.harness.state().error().unwrap_or_default().to_owned();
    assert!(error.contains("every source panel is hidden"), "{error}");

    // Shown again, the window's panel is back.
    let h = &mut setup.harness;
    h.get_by_role_and_label(Role::CheckBox, "window").click();
    h.run();
    assert!(panel_shown(h, window));
    assert_eq!(h.state().state().hidden_sources, [soft, decoded]);
    assert!(!shows(h, "Every source panel is hidden"));
}

#[test]
fn the_lookahead_panel_is_drawn_when_the_session_drafted() {
    let mut setup = explorer(Duration::from_millis(1));
    let spec = SyntheticSpec {
        seed: 5,
        layers: 2,
        query_heads: 4,
        kv_heads: 2,
        n_prompt: 80,
        window: 8,
        soft: 4,
        decoded: 6,
    };
    show(&mut setup, synthetic(&spec).unwrap());
    let lookahead = QuerySource::Lookahead;
    assert!(!panel_shown(&setup.harness, lookahead));
    assert!(setup.harness.query_by_label("lookahead").is_none());

    let mut drafted = synthetic(&spec).unwrap();
    let drafts = synthetic(&SyntheticSpec {
        seed: 6,
        decoded: 5,
        ..spec
    })
    .unwrap()
    .decoded;
    drafted.lookahead = Some(drafts.clone());
    show(&mut setup, drafted);
    let h = &mut setup.harness;
    assert!(panel_shown(h, lookahead));
    assert!(shows(h, "5 queries (rows) × 80 keys (columns)"));
    // The panel shows the drafts' rows of the viewed layer, averaged over the heads.
    let view = h.state().state().view;
    let shown = h.state().view().unwrap().shown_matrix(lookahead).unwrap();
    let layer = view.layer.index(spec.layers).unwrap_or(0);
    assert_eq!(shown.dim(), (5, 80));
    let mean = |q: usize, k: usize| {
        (0..spec.query_heads)
            .map(|head| drafts[[layer, head, q, k]])
            .sum::<f32>()
            / spec.query_heads as f32
    };
    assert!((shown[[2, 40]] - mean(2, 40)).abs() < 1e-6);

    // Its switch hides it like the others.
    h.get_by_role_and_label(Role::CheckBox, "lookahead").click();
    h.run();
    assert!(!panel_shown(h, lookahead));
    assert!(panel_shown(h, QuerySource::Decoded));
}

/// The demo engine, recording the question placement of every inspection asked of it.
struct RecordingEngine {
    demo: DemoEngine,
    placements: Arc<Mutex<Vec<QuestionPlacement>>>,
}

impl Engine for RecordingEngine {
    fn handle(&mut self, request: Request, sink: &EventSink) {
        if let Request::Inspect { request, .. } = &request {
            self.placements.lock().unwrap().push(request.placement);
        }
        self.demo.handle(request, sink);
    }
}

#[test]
fn the_question_placement_combo_sets_the_placement_of_the_next_inspection() {
    let placements = Arc::new(Mutex::new(Vec::new()));
    let engine = RecordingEngine {
        demo: DemoEngine::new(SHAPE, Duration::from_millis(1)),
        placements: Arc::clone(&placements),
    };
    let mut setup = explorer_with_engine(engine, Vec::new());
    run_session(&mut setup);
    assert_eq!(*placements.lock().unwrap(), [QuestionPlacement::End]);
    for placement in [QuestionPlacement::Start, QuestionPlacement::AfterEviction] {
        let h = &mut setup.harness;
        h.get_by_role_and_label(Role::ComboBox, "Placement").click();
        h.run();
        h.get_by_role_and_label(Role::Button, placement.label())
            .click();
        h.run();
        assert_eq!(h.state().state().question_placement, placement);
        run_session(&mut setup);
        assert_eq!(placements.lock().unwrap().last(), Some(&placement));
    }
    assert_eq!(placements.lock().unwrap().len(), 3);
}

#[test]
fn soft_tokens_of_an_unfinished_training_run_are_shown_with_a_warning() {
    let mut setup = explorer(Duration::from_millis(1));
    let meta = SoftTokenMeta {
        model_id: "demo".into(),
        architecture: "llama".into(),
        hidden_size: 4,
        layers: SHAPE.layers,
        weights_sha256: "ab".repeat(32),
        training: serde_json::json!({
            "finished": false, "optimizer_steps": 40, "epochs_completed": 1,
            "settings": {"epochs": 2}
        }),
    };
    let soft = SoftTokens {
        embeddings: ndarray::Array2::zeros((2, 4)),
        meta,
    };
    let path = setup.dir.path().join("checkpoint.judgeq.safetensors");
    std::fs::write(&path, soft.to_bytes().unwrap()).unwrap();
    setup.picker.push(Some(path.clone()));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Open soft tokens…")
        .click();
    setup.harness.run();
    assert_eq!(
        setup.harness.state().state().soft_token_choice,
        SoftTokenChoice::File(path)
    );
    run_session(&mut setup);
    let warning = "warning: these soft tokens come from a training run that had not finished \
                   (40 optimizer steps, 1 of 2 epochs)";
    assert!(
        texts(&setup.harness).iter().any(|t| t.contains(warning)),
        "{:?}",
        setup.harness.state().status()
    );
    // A finished file shows no warning.
    let mut finished = soft;
    finished.meta.training["finished"] = serde_json::json!(true);
    let done = setup.dir.path().join("finished.judgeq.safetensors");
    std::fs::write(&done, finished.to_bytes().unwrap()).unwrap();
    setup.picker.push(Some(done));
    setup
        .harness
        .get_by_role_and_label(Role::Button, "Open soft tokens…")
        .click();
    setup.harness.run();
    run_session(&mut setup);
    assert!(
        !setup.harness.state().status().contains("warning"),
        "{}",
        setup.harness.state().status()
    );
}

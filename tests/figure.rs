//! `judgeq figure`: the figure drawn from an export folder is byte for byte the explorer's
//! "Export figure…" of the same session and settings, and bad folders get clear messages.
//!
//! The explorer runs headless (egui_kittest) with the demo engine (synthetic attention, no
//! model) and exports both the data folder and its own figure; the binary then draws the
//! figure from that folder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use judgeq::app::AppOptions;
use judgeq::app::command::Command;
use judgeq::app::demo::{DemoEngine, DemoShape};
use judgeq::app::explorer::Explorer;
use judgeq::app::files::QueuedPicker;
use judgeq::attention::{HeadView, Pick, Reduce};
use judgeq::export::{Colormap, DataExtras, Overwrite, ScaleMode, write_session_data};
use judgeq::policy::PolicyId;
use judgeq::session::{SyntheticSpec, synthetic};

const DOCUMENT: &str = "The Harlow Street bridge closed on 9 October after two corroded bearings were found.\n\nReplacement bearings take eleven weeks to make. Work starts on 27 January and the bridge reopens on 14 March if the load test passes.\n";

struct Setup {
    harness: Harness<'static, Explorer>,
    picker: QueuedPicker,
    dir: tempfile::TempDir,
}

/// The explorer with the demo engine, a session run and its policy bank built.
fn explorer_with_session() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("bridge.md");
    std::fs::write(&document, DOCUMENT).unwrap();
    let picker = QueuedPicker::new();
    let shape = DemoShape {
        layers: 4,
        query_heads: 4,
        kv_heads: 2,
    };
    let options = AppOptions {
        picker: Box::new(picker.clone()),
        document: Some(document),
        question: Some("When does the bridge reopen?".to_owned()),
        restore_state: false,
        ..AppOptions::new(DemoEngine::new(shape, Duration::from_millis(1)))
    };
    let harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 1000.0))
        .build_eframe(move |cc| Explorer::new(&cc.egui_ctx, None, options).unwrap());
    let mut setup = Setup {
        harness,
        picker,
        dir,
    };
    setup.harness.state_mut().push_command(Command::Run);
    step_until(&mut setup.harness, "the session", |e| e.session().is_some());
    wait_for_bank(&mut setup.harness);
    setup
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

fn wait_for_bank(harness: &mut Harness<'static, Explorer>) {
    harness.step();
    step_until(harness, "the policy bank", |e| {
        e.view().is_some_and(|v| v.is_bank_ready())
    });
}

/// Runs one export command with `path` as the dialog's answer and waits for the files.
fn export(setup: &mut Setup, command: Command, path: &Path) {
    setup.picker.push(Some(path.to_path_buf()));
    setup.harness.state_mut().push_command(command);
    setup.harness.step();
    step_until(&mut setup.harness, "the export", |e| !e.is_exporting());
    assert_eq!(setup.harness.state().error(), None);
}

fn judgeq(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_judgeq"))
        .args(args)
        .output()
        .expect("the judgeq binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `judgeq figure DIR ARGS... --out OUT` and expects success.
fn figure(dir: &Path, out: &Path, args: &[&str]) -> Output {
    let dir = dir.display().to_string();
    let out = out.display().to_string();
    let mut all = vec!["figure", dir.as_str()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out.as_str()]);
    let output = judgeq(&all);
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

/// The three files of a figure saved as `png`.
fn figure_files(png: &Path) -> [(PathBuf, Vec<u8>); 3] {
    ["svg", "png", "json"].map(|ext| {
        let path = png.with_extension(ext);
        let bytes = std::fs::read(&path).unwrap();
        (path, bytes)
    })
}

fn assert_same_figure(explorer: &Path, cli: &Path) {
    for ((a, ours), (b, theirs)) in figure_files(explorer).iter().zip(figure_files(cli).iter()) {
        assert!(ours.len() > 100, "{} is written", a.display());
        assert!(ours == theirs, "{} and {} differ", a.display(), b.display());
    }
}

#[test]
fn the_cli_draws_exactly_the_explorers_figure() {
    let mut setup = explorer_with_session();
    let keys = setup.harness.state().session().unwrap().prompt_len();
    assert!(keys > 40, "the demo prompt has {keys} keys");

    // The explorer's defaults: layer 0, mean over heads, log scale, viridis, strips of
    // SnapKV, Judge Q and the oracle. The budget must be below the prompt length to matter.
    setup.harness.state_mut().state_mut().budget = 24;
    wait_for_bank(&mut setup.harness);
    let data = setup.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    export(&mut setup, Command::ExportData, &data);
    let ours = setup.dir.path().join("explorer.png");
    export(&mut setup, Command::ExportFigure, &ours);
    let theirs = setup.dir.path().join("cli.png");
    let output = figure(&data, &theirs, &[]);
    assert!(
        stderr(&output).contains("keep_snapkv_24.npy"),
        "{}",
        stderr(&output)
    );
    assert_same_figure(&ours, &theirs);

    // Other settings: max over layers of head 1, per-row colours in magma, two sinks skipped,
    // other strip policies, a zoomed key range.
    {
        let state = setup.harness.state_mut().state_mut();
        state.view = HeadView {
            layer: Pick::All,
            head: Pick::One(1),
            reduce: Reduce::Max,
        };
        state.colour.mode = ScaleMode::PerRow;
        state.colour.colormap = Colormap::Magma;
        state.colour.skip_sinks = 2;
        state.strip_policies = [PolicyId::H2O, PolicyId::SNAPKV, PolicyId::STREAMING_LLM];
        state.budget = 16;
    }
    setup
        .harness
        .state_mut()
        .view_mut()
        .unwrap()
        .axis
        .set_range(10.0, 50.0);
    wait_for_bank(&mut setup.harness);
    let data = setup.dir.path().join("data2");
    std::fs::create_dir(&data).unwrap();
    export(&mut setup, Command::ExportData, &data);
    let ours = setup.dir.path().join("explorer2.png");
    export(&mut setup, Command::ExportFigure, &ours);
    let theirs = setup.dir.path().join("cli2.png");
    let args = [
        "--layer",
        "max",
        "--head",
        "1",
        "--scale",
        "per-row",
        "--colormap",
        "magma",
        "--skip-sinks",
        "2",
        "--policies",
        "h2o,snapkv,streamingllm",
        "--keys",
        "10..50",
    ];
    figure(&data, &theirs, &args);
    assert_same_figure(&ours, &theirs);

    // Without the keep masks the strips are selected again from the session with the
    // export's policy settings: still the explorer's figure.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("keep_")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let manifest_path = data.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["files"]
        .as_array_mut()
        .unwrap()
        .retain(|f| !f["name"].as_str().unwrap().starts_with("keep_"));
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let recomputed = setup.dir.path().join("cli3.png");
    let output = figure(&data, &recomputed, &args);
    assert!(
        stderr(&output).contains("selected with the export's policy settings"),
        "{}",
        stderr(&output)
    );
    assert_same_figure(&ours, &recomputed);
}

/// A synthetic session exported without eviction results into `dir/name`.
fn synthetic_export(dir: &Path, name: &str) -> PathBuf {
    let session = synthetic(&SyntheticSpec {
        seed: 3,
        layers: 3,
        query_heads: 4,
        kv_heads: 2,
        n_prompt: 48,
        window: 8,
        soft: 4,
        decoded: 6,
    })
    .unwrap();
    let data = dir.join(name);
    std::fs::create_dir(&data).unwrap();
    write_session_data(&data, &session, &DataExtras::default(), Overwrite::Refuse).unwrap();
    data
}

#[test]
fn existing_figures_are_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_export(dir.path(), "data");
    let out = dir.path().join("figs/layer2.png");
    let output = figure(&data, &out, &["--layer", "2", "--head", "max"]);
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(printed.contains("layer2.svg"), "{printed}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    assert_eq!(sidecar["layer"], serde_json::json!({ "index": 2 }));
    assert_eq!(sidecar["head"], "max");
    assert_eq!(
        sidecar["budget"], 48,
        "the default budget is clamped to the prompt"
    );

    std::fs::write(out.with_extension("svg"), b"mine").unwrap();
    let args = [
        "figure",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let refused = judgeq(&args);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("layer2.svg") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(std::fs::read(out.with_extension("svg")).unwrap(), b"mine");

    let mut forced = args.to_vec();
    forced.push("--force");
    let replaced = judgeq(&forced);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert!(
        std::fs::read(out.with_extension("svg"))
            .unwrap()
            .starts_with(b"<svg")
    );
}

#[test]
fn bad_folders_and_flags_get_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fig.png");
    let run = |folder: &Path, extra: &[&str]| {
        let mut args = vec![
            "figure".to_owned(),
            folder.display().to_string(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = judgeq(&args);
        assert!(!output.status.success(), "{args:?} succeeded");
        stderr(&output)
    };

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let message = run(&empty, &[]);
    assert!(
        message.contains("is not a judgeq export folder") && message.contains("manifest.json"),
        "{message}"
    );

    let data = synthetic_export(dir.path(), "incomplete");
    std::fs::remove_file(data.join("decoded.npy")).unwrap();
    let message = run(&data, &[]);
    assert!(
        message.contains("decoded.npy is listed in manifest.json but missing"),
        "{message}"
    );

    let data = synthetic_export(dir.path(), "data");
    let message = run(&data, &["--layer", "3"]);
    assert!(
        message.contains("--layer 3 does not exist") && message.contains("3 layers"),
        "{message}"
    );
    let message = run(&data, &["--layer", "mean", "--head", "max"]);
    assert!(message.contains("two aggregations"), "{message}");
    let message = run(&data, &["--policies", "snapkv,oracle"]);
    assert!(
        message.contains("one policy for every panel or three"),
        "{message}"
    );
    let message = run(&data, &["--keys", "40..60"]);
    assert!(message.contains("past the prompt's 48 keys"), "{message}");
    let message = run(&data, &["--scale", "cubic"]);
    assert!(message.contains("log, linear, per-row"), "{message}");
    assert!(!out.exists() && !out.with_extension("svg").exists());
}

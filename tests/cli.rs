//! The `judgeq` binary end to end on the default model: files written, refusals, bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::path::Path;
use std::process::{Command, Output};

use ndarray::{Array3, Array4};
use ndarray_npy::read_npy;

const DOCUMENT: &str = "Harlow is a small river town. Its stone bridge was built in 1868 and \
carries about nine thousand vehicles a day. In October the council closed the bridge after \
engineers found two corroded bearings. New bearings take eleven weeks to make, so the bridge \
will reopen on 14 March.\n";
const QUESTION: &str = "When will the bridge reopen?";

fn judgeq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_judgeq"))
        .args(args)
        .output()
        .expect("the judgeq binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The default model's path, fetched through the CLI itself.
fn model() -> String {
    let output = judgeq(&["fetch-model"]);
    assert!(
        output.status.success(),
        "fetch-model failed: {}",
        stderr(&output)
    );
    let path = stdout(&output).trim().to_owned();
    assert!(Path::new(&path).is_file(), "fetch-model printed {path}");
    path
}

fn document(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn inspect_writes_the_data_contract_and_refuses_to_overwrite_it() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let doc = document(dir.path(), "harlow.txt", DOCUMENT.as_bytes());
    let out = dir.path().join("out");
    let out_arg = out.display().to_string();
    let args = [
        "inspect",
        "--doc",
        &doc,
        "--question",
        QUESTION,
        "--window",
        "8",
        "--decode",
        "12",
        "--model",
        &model,
        "--out",
        &out_arg,
    ];
    let first = judgeq(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("answer ("), "{}", stdout(&first));

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let n_prompt = manifest["prompt"]["ids"].as_array().unwrap().len();
    let window: Array4<f32> = read_npy(out.join("window.npy")).unwrap();
    let decoded: Array4<f32> = read_npy(out.join("decoded.npy")).unwrap();
    let accumulated: Array3<f32> = read_npy(out.join("accumulated.npy")).unwrap();
    assert_eq!(window.dim(), (30, 9, 8, n_prompt));
    assert_eq!(decoded.dim().3, n_prompt);
    assert!(decoded.dim().2 >= 1 && decoded.dim().2 <= 12);
    assert_eq!(accumulated.dim(), (30, 9, n_prompt));
    let answer = std::fs::read_to_string(out.join("answer.txt")).unwrap();
    assert!(!answer.trim().is_empty());
    // The default model gets the shipped soft tokens unless told otherwise.
    let soft: Array4<f32> = read_npy(out.join("soft.npy")).unwrap();
    assert_eq!(soft.dim(), (30, 9, 32, n_prompt));
    assert!(stdout(&first).contains("soft tokens: 32 from assets/"));

    let before = std::fs::read(out.join("window.npy")).unwrap();
    let again = judgeq(&args);
    assert!(
        !again.status.success(),
        "a second run must not overwrite silently"
    );
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already holds an export"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(out.join("window.npy")).unwrap(), before);

    let mut forced = args.to_vec();
    forced.push("--force");
    let replaced = judgeq(&forced);
    assert!(replaced.status.success(), "{}", stderr(&replaced));

    let bare = dir.path().join("no-soft");
    let bare_arg = bare.display().to_string();
    let mut without = args[..args.len() - 1].to_vec();
    without.extend([bare_arg.as_str(), "--no-soft"]);
    let plain = judgeq(&without);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(bare.join("window.npy").exists());
    assert!(!bare.join("soft.npy").exists());
}

#[test]
fn evict_prints_a_table_and_writes_masks_and_metrics() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let doc = document(dir.path(), "harlow.txt", DOCUMENT.as_bytes());
    let out = dir.path().join("evict");
    let out_arg = out.display().to_string();
    let output = judgeq(&[
        "evict",
        "--doc",
        &doc,
        "--question",
        QUESTION,
        "--window",
        "8",
        "--decode",
        "8",
        "--policies",
        "snapkv,streamingllm,oracle",
        "--budgets",
        "16,32",
        "--model",
        &model,
        "--out",
        &out_arg,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    for label in ["SnapKV", "StreamingLLM", "Oracle", "hit rate"] {
        assert!(table.contains(label), "table lacks {label}:\n{table}");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 2, "{csv}");
    let mask: Array3<u8> = read_npy(out.join("keep_snapkv_16.npy")).unwrap();
    assert_eq!(mask.dim().0, 30);
    assert!(mask.iter().all(|&v| v <= 1));
    // Every query head keeps exactly its budget.
    for kept in mask.sum_axis(ndarray::Axis(2)).iter() {
        assert_eq!(*kept, 16);
    }
    for source in ["window", "decoded"] {
        let scores: Array3<f32> = read_npy(out.join(format!("scores_{source}.npy"))).unwrap();
        assert_eq!(scores.dim().0, 30);
    }
}

#[test]
fn bad_input_gets_a_clear_message_and_no_output() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let out_arg = out.display().to_string();
    let binary = document(
        dir.path(),
        "image.txt",
        &[0x89, b'P', b'N', b'G', 0, 0, 0, 13, 0xff, 0xfe],
    );
    let empty = document(dir.path(), "empty.txt", b"  \n\t ");
    let good = document(dir.path(), "harlow.txt", DOCUMENT.as_bytes());
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["inspect", "--doc", &binary, "--question", QUESTION],
            "not a UTF-8 text document",
        ),
        (
            vec!["inspect", "--doc", &empty, "--question", QUESTION],
            "empty",
        ),
        (
            vec!["inspect", "--doc", &good, "--question", "   "],
            "question is empty",
        ),
        (
            vec![
                "inspect",
                "--doc",
                &good,
                "--question",
                QUESTION,
                "--window",
                "100000",
            ],
            "window",
        ),
        (
            vec![
                "evict",
                "--doc",
                &good,
                "--question",
                QUESTION,
                "--budgets",
                "0",
            ],
            "budget of 0",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args;
        args.extend(["--model", &model, "--out", &out_arg]);
        let output = judgeq(&args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let message = stderr(&output);
        assert!(
            message.contains(expected),
            "{args:?}: expected `{expected}` in:\n{message}"
        );
        assert!(
            !message.contains("panicked"),
            "{args:?} panicked:\n{message}"
        );
    }
    assert!(!out.exists(), "a failed run created {}", out.display());
    let wrong_model = judgeq(&["generate", "--prompt", "hi", "--model", &binary]);
    assert!(!wrong_model.status.success());
    assert!(
        stderr(&wrong_model).contains("could not load the model"),
        "{}",
        stderr(&wrong_model)
    );
}

#[test]
fn eval_on_the_default_model_uses_the_shipped_soft_tokens_unless_told_otherwise() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let record = serde_json::json!({"document": DOCUMENT, "question": QUESTION});
    let data = document(dir.path(), "held.jsonl", format!("{record}\n").as_bytes());
    let run = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out).display().to_string();
        let mut args = vec![
            "eval",
            "--data",
            &data,
            "--budgets",
            "16",
            "--window",
            "8",
            "--metrics-only",
            "--model",
            &model,
            "--out",
            &out,
        ];
        args.extend(extra);
        let output = judgeq(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let summary = std::fs::read_to_string(Path::new(&out).join("summary.csv")).unwrap();
        let methods: Vec<String> = summary
            .lines()
            .skip(1)
            .map(|line| line.split(',').next().unwrap().to_owned())
            .collect();
        (methods, stderr(&output))
    };
    let (methods, said) = run("shipped", &[]);
    assert!(methods.iter().any(|m| m == "judgeq"), "{methods:?}");
    assert!(
        said.contains("soft tokens: the shipped ones (assets/"),
        "{said}"
    );
    let (methods, said) = run("none", &["--no-soft"]);
    assert!(
        methods.iter().all(|m| !m.starts_with("judgeq")),
        "{methods:?}"
    );
    assert!(methods.iter().any(|m| m == "snapkv"), "{methods:?}");
    assert!(!said.contains("soft tokens"), "{said}");
    // Asking for Judge Q rows with --no-soft says how to get them.
    let refused = judgeq(&[
        "eval",
        "--data",
        &data,
        "--budgets",
        "16",
        "--no-soft",
        "--policies",
        "judgeq",
        "--model",
        &model,
        "--out",
        &dir.path().join("refused").display().to_string(),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("rows need soft tokens: pass --soft FILE (without --no-soft, the default model gets the shipped ones"),
        "{}",
        stderr(&refused)
    );
    // Methods that do not read soft tokens get none.
    let (methods, said) = run("baseline", &["--policies", "snapkv"]);
    assert!(methods.iter().all(|m| m == "snapkv"), "{methods:?}");
    assert!(!said.contains("soft tokens"), "{said}");
}

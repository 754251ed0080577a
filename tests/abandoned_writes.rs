//! `abandon_writes`, what the CLI's signal handler calls before it ends the process: the file
//! being written is removed at once, the write in progress fails, and no new one starts. Its
//! own test binary, because abandoning is for good in a process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use std::io::Write;
use std::sync::mpsc;

use judgeq::export::{ExportError, Overwrite, abandon_writes, write_new, write_new_with};

#[test]
fn abandoning_removes_the_temporary_being_written_and_stops_new_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let (started, wait_started) = mpsc::channel();
    let (resume, wait_resume) = mpsc::channel::<()>();
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            write_new_with(&path, Overwrite::Refuse, |out| {
                out.write_all(&[1; 1 << 20])
                    .map_err(|e| ExportError::InvalidData(e.to_string()))?;
                started.send(()).unwrap();
                wait_resume.recv().unwrap();
                out.write_all(&[2; 1 << 20])
                    .map_err(|e| ExportError::InvalidData(e.to_string()))
            })
        })
    };
    wait_started.recv().unwrap();
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(dir.path()).len(), 1, "the temporary exists mid-write");
    assert_eq!(abandon_writes(), 1);
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    resume.send(()).unwrap();
    let result = writer.join().unwrap();
    assert!(result.is_err(), "the abandoned write cannot complete");
    assert!(!path.exists());
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

    let err = write_new(&dir.path().join("later.txt"), b"x", Overwrite::Refuse).unwrap_err();
    assert!(err.to_string().contains("stopping"), "{err}");
    assert!(names(dir.path()).is_empty());
    assert_eq!(abandon_writes(), 0);
}

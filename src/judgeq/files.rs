//! Atomic replacement of files the training room owns (cached targets, checkpoints): the bytes
//! go to a temporary file beside the target, are flushed, then renamed over it, so a reader or
//! a resumed run never sees half a file, even after Ctrl-C or a crash mid-write.

use std::io::Write;
use std::path::Path;

use crate::judgeq::error::{Result, TrainError};

/// Writes `bytes` to `path`, replacing it atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".judgeq-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| TrainError::io(dir, e))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| TrainError::io(path, e))?;
    temp.persist(path)
        .map_err(|e| TrainError::io(path, e.error))?;
    Ok(())
}

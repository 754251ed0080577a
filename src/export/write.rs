//! Atomic file writes that never replace a user's file unless asked to.
//!
//! Every file judgeq writes goes through [`write_new`] or [`write_new_with`]: the bytes go to a
//! temporary file in the target's directory, which is flushed to disk and then renamed over the
//! target in one step. A reader never sees a half-written file, and a failed write leaves
//! nothing behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::export::ExportError;

/// What to do when the target file exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Leave the existing file alone and return [`ExportError::Exists`] (or
    /// [`ExportError::WouldOverwrite`] for a directory of outputs).
    #[default]
    Refuse,
    /// Replace the existing file (the user said so: a `--force` flag or a confirmation dialog).
    Replace,
}

/// Writes `bytes` to `path` atomically; refuses to replace an existing file unless
/// `overwrite` is [`Overwrite::Replace`].
pub fn write_new(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<(), ExportError> {
    write_new_with(path, overwrite, |out| {
        out.write_all(bytes).map_err(|e| ExportError::io(path, e))
    })
}

/// Like [`write_new`], but the content is streamed by `fill` into a buffered writer on the
/// temporary file, so large arrays are never copied into memory first.
///
/// When `fill` fails, the temporary file is removed and its error is returned.
pub fn write_new_with<F>(path: &Path, overwrite: Overwrite, fill: F) -> Result<(), ExportError>
where
    F: FnOnce(&mut BufWriter<&File>) -> Result<(), ExportError>,
{
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(ExportError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if overwrite == Overwrite::Refuse && path.symlink_metadata().is_ok() {
        return Err(ExportError::Exists {
            path: path.to_path_buf(),
        });
    }
    let temp = create_temp(path, dir).map_err(|e| ExportError::io(dir, e))?;
    {
        let mut out = BufWriter::new(temp.as_file());
        fill(&mut out)?;
        out.flush().map_err(|e| ExportError::io(path, e))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| ExportError::io(path, e))?;
    let persisted = match overwrite {
        Overwrite::Replace => temp.persist(path),
        Overwrite::Refuse => temp.persist_noclobber(path),
    };
    // On failure the temporary file travels inside the error and is removed when it drops.
    persisted.map(drop).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            ExportError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            ExportError::io(path, e.error)
        }
    })
}

/// Which of `names` already exist in `dir`, as full paths, in the order given.
///
/// The GUI asks once before a multi-file export ("3 files exist in DIR: replace?"); the CLI
/// refuses with the list unless `--force` was given.
pub fn existing_files<S: AsRef<str>>(dir: &Path, names: &[S]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| dir.join(name.as_ref()))
        .filter(|path| path.symlink_metadata().is_ok())
        .collect()
}

/// Checks before a multi-file export: `dir` must be a directory, and with
/// [`Overwrite::Refuse`] none of `names` may exist in it. Nothing is written either way.
pub fn check_outputs<S: AsRef<str>>(
    dir: &Path,
    names: &[S],
    overwrite: Overwrite,
) -> Result<(), ExportError> {
    if !dir.is_dir() {
        return Err(ExportError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if overwrite == Overwrite::Replace {
        return Ok(());
    }
    let existing: Vec<String> = names
        .iter()
        .map(|name| name.as_ref())
        .filter(|name| dir.join(name).symlink_metadata().is_ok())
        .map(str::to_owned)
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(ExportError::WouldOverwrite {
            dir: dir.to_path_buf(),
            names: existing,
        })
    }
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Creates the temporary file next to `path`, hidden and named after its target so that a
/// crash leaves an obvious name.
fn create_temp(path: &Path, dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{stem}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile creates files readable by the owner only; exported data is meant to be shared,
    // so ask for the usual mode and let the umask decide as for any other new file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_new(&path, b"hello", Overwrite::Refuse).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(entries(dir.path()), ["a.txt"]);
    }

    #[test]
    fn refuses_to_clobber_and_leaves_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"precious").unwrap();
        let err = write_new(&path, b"new", Overwrite::Refuse).unwrap_err();
        assert!(
            matches!(&err, ExportError::Exists { path: p } if p == &path),
            "{err}"
        );
        assert!(err.to_string().contains("a.txt already exists"));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        assert_eq!(entries(dir.path()), ["a.txt"]);
    }

    #[test]
    fn replaces_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"old").unwrap();
        write_new(&path, b"new", Overwrite::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(dir.path()), ["a.txt"]);
    }

    #[test]
    fn a_failing_writer_leaves_no_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npy");
        let err = write_new_with(&path, Overwrite::Refuse, |out| {
            out.write_all(&[7u8; 100_000]).unwrap();
            Err(ExportError::InvalidData("stopped halfway".into()))
        })
        .unwrap_err();
        assert!(err.to_string().contains("stopped halfway"));
        assert!(
            entries(dir.path()).is_empty(),
            "left behind: {:?}",
            entries(dir.path())
        );
    }

    #[test]
    fn a_file_appearing_during_the_write_is_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.txt");
        let err = write_new_with(&path, Overwrite::Refuse, |out| {
            std::fs::write(&path, b"theirs").unwrap();
            out.write_all(b"ours")
                .map_err(|e| ExportError::io(&path, e))
        })
        .unwrap_err();
        assert!(matches!(err, ExportError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert_eq!(entries(dir.path()), ["race.txt"]);
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("a.txt");
        let err = write_new(&path, b"x", Overwrite::Refuse).unwrap_err();
        assert!(
            matches!(&err, ExportError::NotADirectory { path: p } if p == &dir.path().join("nope"))
        );
        assert!(err.to_string().contains("nope"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_read_only_directory_gives_a_clear_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permission bits; sysfs refuses new files even to root.
        let probe = locked.join("probe");
        let enforced = std::fs::write(&probe, b"").is_err();
        if !enforced {
            std::fs::remove_file(&probe).unwrap();
        }
        let target = if enforced {
            locked.clone()
        } else {
            PathBuf::from("/sys")
        };
        let result = write_new(&target.join("judgeq-probe.txt"), b"x", Overwrite::Refuse);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = result.unwrap_err();
        let message = err.to_string();
        match &err {
            ExportError::Io { path, source } => {
                assert_eq!(path, &target);
                assert!(
                    matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ),
                    "{message}"
                );
            }
            other => panic!("unexpected {other}"),
        }
        assert!(
            message.starts_with(&format!("cannot write {}: ", target.display())),
            "{message}"
        );
        assert!(entries(&locked).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.txt");
        write_new(&path, b"x", Overwrite::Refuse).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_ne!(mode & 0o044, 0, "mode {mode:o}: group/other cannot read");
    }

    #[test]
    fn existing_files_and_check_outputs_list_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.npy"), b"").unwrap();
        std::fs::write(dir.path().join("d.npy"), b"").unwrap();
        let names = ["a.npy", "b.npy", "c.npy", "d.npy"];
        assert_eq!(
            existing_files(dir.path(), &names),
            [dir.path().join("b.npy"), dir.path().join("d.npy")]
        );
        let err = check_outputs(dir.path(), &names, Overwrite::Refuse).unwrap_err();
        match err {
            ExportError::WouldOverwrite { dir: d, names } => {
                assert_eq!(d, dir.path());
                assert_eq!(names, ["b.npy", "d.npy"]);
            }
            other => panic!("unexpected {other}"),
        }
        check_outputs(dir.path(), &names, Overwrite::Replace).unwrap();
        check_outputs(dir.path(), &["a.npy"], Overwrite::Refuse).unwrap();
        assert!(matches!(
            check_outputs(&dir.path().join("missing"), &names, Overwrite::Replace),
            Err(ExportError::NotADirectory { .. })
        ));
    }
}

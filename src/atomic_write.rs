//! Atomic file writes that never replace a user's file unless asked to: the ground floor under
//! the export room and the training room, which both write through it.
//!
//! Every file judgeq writes goes through [`write_new`] or [`write_new_with`]: the bytes go to a
//! temporary file in the target's directory, which is flushed to disk and then renamed over the
//! target in one step. A reader never sees a half-written file, and a failed write leaves
//! nothing behind.
//!
//! Temporary files are named `.TARGET.judgeq-PID-XXXXXX.tmp` (PID: the writing process). A
//! process that is killed mid-write cannot remove its own: [`remove_stale_temporaries`] removes
//! those of processes that no longer run (every multi-file export calls it through
//! [`check_outputs`]), and [`abandon_writes`] lets a signal handler remove the ones of the
//! process it is about to end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Marks judgeq's temporary files: `.TARGET` + this + `PID-XXXXXX.tmp`.
const TEMP_MARK: &str = ".judgeq-";
/// Extension of judgeq's temporary files.
const TEMP_SUFFIX: &str = ".tmp";
/// Random characters in a temporary file's name.
const TEMP_RANDOM_CHARS: usize = 6;
/// Where the owner of a temporary file cannot be asked whether it still runs, a temporary
/// older than this is taken for a leftover.
#[cfg(not(target_os = "linux"))]
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Temporary files this process is writing, so that a signal handler can remove them.
static LIVE_TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set by [`abandon_writes`]: no new temporary file may be created.
static WRITES_ABANDONED: AtomicBool = AtomicBool::new(false);

/// Why a file could not be written; every variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target file exists and the caller did not ask to replace it.
    #[error(
        "{path} already exists; nothing was written (choose another name or allow replacing it)"
    )]
    Exists {
        /// The file that would have been replaced.
        path: PathBuf,
    },
    /// Some files of a multi-file write exist and the caller did not ask to replace them.
    #[error(
        "{} already exist{} in {dir}: {}; nothing was written (choose another directory or allow replacing them)",
        count_files(.names.len()),
        if .names.len() == 1 { "s" } else { "" },
        .names.join(", ")
    )]
    WouldOverwrite {
        /// The output directory.
        dir: PathBuf,
        /// File names inside `dir` that exist already.
        names: Vec<String>,
    },
    /// The directory a file should go into does not exist or is not a directory.
    #[error("cannot write into {path}: it is not an existing directory")]
    NotADirectory {
        /// The directory that was expected.
        path: PathBuf,
    },
    /// The operating system refused a write, rename or removal.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A directory could not be listed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl WriteError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WriteError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `1 file`, `3 files`.
pub(crate) fn count_files(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// What to do when the target file exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Leave the existing file alone and return [`WriteError::Exists`] (or
    /// [`WriteError::WouldOverwrite`] for a directory of outputs).
    #[default]
    Refuse,
    /// Replace the existing file (the user said so: a `--force` flag or a confirmation dialog).
    Replace,
}

/// Writes `bytes` to `path` atomically; refuses to replace an existing file unless
/// `overwrite` is [`Overwrite::Replace`].
pub fn write_new(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<(), WriteError> {
    write_new_with(path, overwrite, |out| {
        out.write_all(bytes).map_err(|e| WriteError::io(path, e))
    })
}

/// Like [`write_new`], but the content is streamed by `fill` into a buffered writer on the
/// temporary file, so large arrays are never copied into memory first.
///
/// When `fill` fails, the temporary file is removed and its error (of the caller's error type,
/// which every [`WriteError`] converts into) is returned.
pub fn write_new_with<F, E>(path: &Path, overwrite: Overwrite, fill: F) -> Result<(), E>
where
    F: FnOnce(&mut BufWriter<&File>) -> Result<(), E>,
    E: From<WriteError>,
{
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(WriteError::NotADirectory {
            path: dir.to_path_buf(),
        }
        .into());
    }
    if overwrite == Overwrite::Refuse && path.symlink_metadata().is_ok() {
        return Err(WriteError::Exists {
            path: path.to_path_buf(),
        }
        .into());
    }
    let temp = Temporary::create(path, dir).map_err(|e| WriteError::io(dir, e))?;
    {
        let file = temp.as_file().map_err(|e| WriteError::io(path, e))?;
        let mut out = BufWriter::new(file);
        fill(&mut out)?;
        out.flush().map_err(|e| WriteError::io(path, e))?;
        file.sync_all().map_err(|e| WriteError::io(path, e))?;
    }
    temp.persist(path, overwrite).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            WriteError::Exists {
                path: path.to_path_buf(),
            }
            .into()
        } else {
            WriteError::io(path, e).into()
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
/// [`Overwrite::Refuse`] none of `names` may exist in it. Nothing of the export is written
/// either way; judgeq's temporary files left in `dir` by a killed run are removed
/// ([`remove_stale_temporaries`]).
pub fn check_outputs<S: AsRef<str>>(
    dir: &Path,
    names: &[S],
    overwrite: Overwrite,
) -> Result<(), WriteError> {
    if !dir.is_dir() {
        return Err(WriteError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    remove_stale_temporaries(dir)?;
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
        Err(WriteError::WouldOverwrite {
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

/// A temporary file registered in [`LIVE_TEMPORARIES`] until it is persisted or removed.
struct Temporary {
    file: Option<tempfile::NamedTempFile>,
    path: PathBuf,
}

impl Temporary {
    /// Creates the temporary file next to `path`, hidden and named after its target so that a
    /// crash leaves an obvious name, and registers it.
    fn create(path: &Path, dir: &Path) -> std::io::Result<Self> {
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut live = live_temporaries();
        if WRITES_ABANDONED.load(Ordering::SeqCst) {
            return Err(std::io::Error::other(
                "judgeq is stopping and writes no more files",
            ));
        }
        let file = new_temp_file(&stem, dir)?;
        let path = file.path().to_path_buf();
        live.push(path.clone());
        Ok(Self {
            file: Some(file),
            path,
        })
    }

    /// The open file.
    fn as_file(&self) -> std::io::Result<&File> {
        self.file
            .as_ref()
            .map(tempfile::NamedTempFile::as_file)
            .ok_or_else(|| std::io::Error::other("the temporary file is gone"))
    }

    /// Renames the file to `target` (replacing it, or failing with
    /// [`std::io::ErrorKind::AlreadyExists`] when it exists and `overwrite` refuses).
    fn persist(mut self, target: &Path, overwrite: Overwrite) -> std::io::Result<()> {
        let Some(file) = self.file.take() else {
            return Err(std::io::Error::other("the temporary file is gone"));
        };
        let persisted = match overwrite {
            Overwrite::Replace => file.persist(target),
            Overwrite::Refuse => file.persist_noclobber(target),
        };
        // On failure the temporary file travels inside the error and is removed here, while
        // it is still registered.
        persisted.map(drop).map_err(|e| e.error)
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        // Remove (or give up) the file first, then forget it: a signal in between finds a
        // path that no longer exists, never an unregistered file.
        drop(self.file.take());
        live_temporaries().retain(|p| p != &self.path);
    }
}

/// The registry, also after a panic elsewhere held its lock.
fn live_temporaries() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE_TEMPORARIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Creates `.{stem}.judgeq-PID-XXXXXX.tmp` in `dir`.
fn new_temp_file(stem: &str, dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!(".{stem}{TEMP_MARK}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RANDOM_CHARS);
    // tempfile creates files readable by the owner only; exported data is meant to be shared,
    // so ask for the usual mode and let the umask decide as for any other new file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Removes the temporary files this process is writing and refuses new ones; returns how many
/// were removed. For a handler that ends the process right after (Ctrl-C, SIGTERM): the writes
/// in progress then fail, and nothing half-written is left behind.
pub fn abandon_writes() -> usize {
    let mut live = live_temporaries();
    WRITES_ABANDONED.store(true, Ordering::SeqCst);
    let removed = live
        .iter()
        .filter(|path| std::fs::remove_file(path).is_ok())
        .count();
    live.clear();
    removed
}

/// Removes judgeq's temporary files in `dir` whose writer no longer runs (a run killed
/// mid-write) and returns their paths. Only names of the form `.TARGET.judgeq-PID-XXXXXX.tmp`
/// are touched; a missing `dir` holds none.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(WriteError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_owner) else {
            continue;
        };
        let path = entry.path();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !writer_may_run(pid, &path) {
            std::fs::remove_file(&path).map_err(|e| WriteError::io(&path, e))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// The writing process of a judgeq temporary file name, `None` for any other name.
fn temporary_owner(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let (target, tail) = inner.rsplit_once(TEMP_MARK)?;
    let (pid, random) = tail.split_once('-')?;
    let random_ok =
        random.len() == TEMP_RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric());
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if target.is_empty() || !random_ok || !pid_ok {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` may still be writing `path`.
fn writer_may_run(pid: u32, path: &Path) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    {
        let _ = path;
        Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < STALE_AFTER)
    }
}

/// Checks that files can be created in the existing directory `dir` by creating and removing
/// an empty temporary file there.
pub fn check_writable(dir: &Path) -> Result<(), WriteError> {
    if !dir.is_dir() {
        return Err(WriteError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    new_temp_file("judgeq-probe", dir)
        .map(drop)
        .map_err(|e| WriteError::io(dir, e))
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
            matches!(&err, WriteError::Exists { path: p } if p == &path),
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
            Err(WriteError::io(
                &path,
                std::io::Error::other("stopped halfway"),
            ))
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
            out.write_all(b"ours").map_err(|e| WriteError::io(&path, e))
        })
        .unwrap_err();
        assert!(matches!(err, WriteError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert_eq!(entries(dir.path()), ["race.txt"]);
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("a.txt");
        let err = write_new(&path, b"x", Overwrite::Refuse).unwrap_err();
        assert!(
            matches!(&err, WriteError::NotADirectory { path: p } if p == &dir.path().join("nope"))
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
            WriteError::Io { path, source } => {
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
    fn temporaries_carry_the_writers_pid_and_are_gone_after_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npy");
        let mut seen = Vec::new();
        write_new_with(&path, Overwrite::Refuse, |out| {
            seen = entries(dir.path());
            out.write_all(b"data").map_err(|e| WriteError::io(&path, e))
        })
        .unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let name = &seen[0];
        let prefix = format!(".big.npy.judgeq-{}-", std::process::id());
        assert!(
            name.starts_with(&prefix) && name.ends_with(".tmp"),
            "{name}"
        );
        assert_eq!(name.len(), prefix.len() + TEMP_RANDOM_CHARS + ".tmp".len());
        assert_eq!(temporary_owner(name), Some(std::process::id()));
        assert!(live_temporaries().iter().all(|p| !p.ends_with(name)));
        assert_eq!(entries(dir.path()), ["big.npy"]);
    }

    #[test]
    fn only_temporaries_of_writers_that_are_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let gone = ".window.npy.judgeq-4000000000-Ab12Cd.tmp";
        let running = format!(".window.npy.judgeq-{}-Ab12Cd.tmp", std::process::id());
        let lookalikes = [
            ".notes.tmp",
            ".window.npy.judgeq-4000000000-Ab12C.tmp",
            ".window.npy.judgeq-4000000000-Ab1-Cd.tmp",
            ".window.npy.judgeq-x4000000000-Ab12Cd.tmp",
            "window.npy.judgeq-4000000000-Ab12Cd.tmp",
            ".judgeq-4000000000-Ab12Cd.tmp",
            "results.csv",
        ];
        for name in lookalikes.iter().copied().chain([gone, running.as_str()]) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join(".d.judgeq-4000000000-Ab12Cd.tmp")).unwrap();
        let removed = remove_stale_temporaries(dir.path()).unwrap();
        assert_eq!(removed, [dir.path().join(gone)]);
        let mut expected: Vec<String> = lookalikes.iter().map(|n| n.to_string()).collect();
        expected.push(running);
        expected.push(".d.judgeq-4000000000-Ab12Cd.tmp".into());
        expected.sort();
        assert_eq!(entries(dir.path()), expected);
        assert!(
            remove_stale_temporaries(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
        // A multi-file export cleans up before it checks.
        std::fs::write(dir.path().join(gone), b"x").unwrap();
        check_outputs(dir.path(), &["a.npy"], Overwrite::Refuse).unwrap();
        assert!(!dir.path().join(gone).exists());
    }

    #[test]
    fn check_writable_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(dir.path()).unwrap();
        assert!(entries(dir.path()).is_empty());
        assert!(matches!(
            check_writable(&dir.path().join("missing")),
            Err(WriteError::NotADirectory { .. })
        ));
        #[cfg(target_os = "linux")]
        assert!(matches!(
            check_writable(Path::new("/sys/kernel")),
            Err(WriteError::Io { .. })
        ));
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
            WriteError::WouldOverwrite { dir: d, names } => {
                assert_eq!(d, dir.path());
                assert_eq!(names, ["b.npy", "d.npy"]);
            }
            other => panic!("unexpected {other}"),
        }
        check_outputs(dir.path(), &names, Overwrite::Replace).unwrap();
        check_outputs(dir.path(), &["a.npy"], Overwrite::Refuse).unwrap();
        assert!(matches!(
            check_outputs(&dir.path().join("missing"), &names, Overwrite::Replace),
            Err(WriteError::NotADirectory { .. })
        ));
    }
}

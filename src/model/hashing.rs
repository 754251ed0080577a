//! sha256 of checkpoint files, with a small on-disk cache of digests so that a start does not
//! rehash gigabytes of weights that did not change.
//!
//! A cached digest is keyed by each file's canonical path, size and modification time (and,
//! on Unix, device and inode, so that a file replaced by a rename is never taken for the old
//! one). The cache is best-effort: when its directory cannot be written the digest is simply
//! computed again next time.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use super::error::{ModelError, Result};
use crate::progress::{Progress, Stage};

const CHUNK: usize = 1 << 20;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// sha256 of the concatenation of `paths`, hex. Reports MiB hashed under `stage` and stops
/// with [`ModelError::Cancelled`] when `progress` is cancelled.
pub fn sha256_files(paths: &[PathBuf], stage: &Stage, progress: &dyn Progress) -> Result<String> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    let total_bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).map_err(io(p)))
        .sum::<Result<u64>>()?;
    let total_mib = total_bytes.div_ceil(CHUNK as u64) as usize;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done: u64 = 0;
    for path in paths {
        let mut file = std::fs::File::open(path).map_err(io(path))?;
        loop {
            let n = file.read(&mut buf).map_err(io(path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            done += n as u64;
            if progress.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            progress.update(stage, (done / CHUNK as u64) as usize, total_mib);
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// Like [`sha256_files`], but first looks for a digest cached in `stamp_dir` under the files'
/// identity (path, size, modification time), and caches the digest it computes.
pub fn cached_sha256_files(
    paths: &[PathBuf],
    stamp_dir: Option<&Path>,
    stage: &Stage,
    progress: &dyn Progress,
) -> Result<String> {
    let key = identity(paths)?;
    let stamp =
        stamp_dir.map(|dir| dir.join(format!("{}.sha256", hex(&Sha256::digest(key.as_bytes())))));
    if let Some(digest) = stamp.as_deref().and_then(|s| read_stamp(s, &key)) {
        return Ok(digest);
    }
    let digest = sha256_files(paths, stage, progress)?;
    if let Some(stamp) = stamp {
        // Best-effort: a cache that cannot be written only costs a rehash next time.
        let _ = write_stamp(&stamp, &key, &digest);
    }
    Ok(digest)
}

/// The digest recorded for exactly `paths` as they are now, if a stamp says so.
pub fn recorded_sha256(paths: &[PathBuf], stamp_dir: &Path) -> Option<String> {
    let key = identity(paths).ok()?;
    read_stamp(
        &stamp_dir.join(format!("{}.sha256", hex(&Sha256::digest(key.as_bytes())))),
        &key,
    )
}

/// Records `digest` for `paths` as they are now (best-effort; errors are returned for tests).
pub fn record_sha256(paths: &[PathBuf], stamp_dir: &Path, digest: &str) -> Result<()> {
    let key = identity(paths)?;
    let stamp = stamp_dir.join(format!("{}.sha256", hex(&Sha256::digest(key.as_bytes()))));
    write_stamp(&stamp, &key, digest)
}

/// One line per file: canonical path, size, modification time in ns (and device/inode on Unix).
fn identity(paths: &[PathBuf]) -> Result<String> {
    let mut key = String::new();
    for path in paths {
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        let canonical = std::fs::canonicalize(path).map_err(io)?;
        let meta = std::fs::metadata(&canonical).map_err(io)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        key.push_str(&format!(
            "{}\t{}\t{}",
            canonical.display(),
            meta.len(),
            mtime
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            key.push_str(&format!("\t{}\t{}", meta.dev(), meta.ino()));
        }
        key.push('\n');
    }
    Ok(key)
}

fn read_stamp(stamp: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(stamp).ok()?;
    let (digest, stored_key) = text.split_once('\n')?;
    let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    (valid && stored_key == key).then(|| digest.to_owned())
}

fn write_stamp(stamp: &Path, key: &str, digest: &str) -> Result<()> {
    let dir = stamp.parent().unwrap_or(Path::new("."));
    let io = |source| ModelError::Io {
        path: stamp.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(format!("{digest}\n{key}").as_bytes())
        .map_err(io)?;
    tmp.persist(stamp).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    #[test]
    fn digest_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"ab").unwrap();
        std::fs::write(&b, b"c").unwrap();
        // sha256("abc")
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            sha256_files(&[a.clone(), b.clone()], &Stage::Loading, &Silent).unwrap(),
            expected
        );
        let single = dir.path().join("abc");
        std::fs::write(&single, b"abc").unwrap();
        assert_eq!(
            sha256_files(&[single], &Stage::Loading, &Silent).unwrap(),
            expected
        );
    }

    #[test]
    fn cached_digest_is_reused_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let stamps = dir.path().join("stamps");
        let file = dir.path().join("w.bin");
        std::fs::write(&file, b"abc").unwrap();
        let paths = vec![file.clone()];
        let real = cached_sha256_files(&paths, Some(&stamps), &Stage::Loading, &Silent).unwrap();
        assert_eq!(
            recorded_sha256(&paths, &stamps).as_deref(),
            Some(real.as_str())
        );
        // A planted stamp for the same identity is trusted: proof that the cache is read.
        let fake = "0".repeat(64);
        record_sha256(&paths, &stamps, &fake).unwrap();
        assert_eq!(
            cached_sha256_files(&paths, Some(&stamps), &Stage::Loading, &Silent).unwrap(),
            fake
        );
        // Rewriting the file (new size and mtime) invalidates the stamp.
        std::fs::write(&file, b"abcd").unwrap();
        assert_eq!(recorded_sha256(&paths, &stamps), None);
        let fresh = cached_sha256_files(&paths, Some(&stamps), &Stage::Loading, &Silent).unwrap();
        assert_eq!(
            fresh,
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = sha256_files(
            &[PathBuf::from("/nonexistent/judgeq.bin")],
            &Stage::Loading,
            &Silent,
        )
        .unwrap_err();
        assert!(
            matches!(err, ModelError::Io { ref path, .. } if path.ends_with("judgeq.bin")),
            "{err}"
        );
    }
}

//! Checks the subcommands make before their long work, so that bad input fails at once with a
//! message that names the value or file and says what would help (`--force` only where it
//! would).

use std::fmt::Display;
use std::path::{Path, PathBuf};

use judgeq::export::{ExportError, WriteError, check_writable, remove_stale_temporaries};
use judgeq::judgeq::SoftTokens;
use judgeq::policy::Ratio;

/// Refuses an empty budget list, a budget of 0 and a budget given twice (which would write the
/// same keep mask twice).
pub fn budgets(budgets: &[usize]) -> anyhow::Result<()> {
    if budgets.is_empty() {
        anyhow::bail!("--budgets is empty: give at least one budget, e.g. --budgets 64,128,256");
    }
    if let Some(bad) = budgets.iter().find(|&&b| b == 0) {
        anyhow::bail!(
            "a budget of {bad} keeps nothing: budgets are KV entries per layer and head, at least 1"
        );
    }
    no_repeats(budgets, "--budgets")
}

/// Refuses a ratio given twice (`--ratios` parses each value within `[0, 1)` already).
pub fn ratios(ratios: &[Ratio]) -> anyhow::Result<()> {
    no_repeats(ratios, "--ratios")
}

/// Refuses an empty list of prompt lengths, a length of 0 and a length given twice.
pub fn lengths(lengths: &[usize]) -> anyhow::Result<()> {
    if lengths.is_empty() {
        anyhow::bail!(
            "--lengths is empty: give at least one prompt length, e.g. --lengths 512,2048"
        );
    }
    if lengths.contains(&0) {
        anyhow::bail!("--lengths 0: a prompt has at least 1 token");
    }
    no_repeats(lengths, "--lengths")
}

/// Refuses a value listed twice in the list option `option`.
pub fn no_repeats<T: PartialEq + Display>(values: &[T], option: &str) -> anyhow::Result<()> {
    for (i, value) in values.iter().enumerate() {
        if values[..i].contains(value) {
            anyhow::bail!("{option} lists {value} twice; give each value once");
        }
    }
    Ok(())
}

/// Refuses a count of 0 for `option`.
pub fn at_least_one(value: usize, option: &str, what: &str) -> anyhow::Result<()> {
    if value == 0 {
        anyhow::bail!("{option} 0: {what}; give at least 1");
    }
    Ok(())
}

/// An output folder: when it exists, a folder judgeq can write into; when it does not, one
/// that can be created (the nearest existing folder above it is writable).
pub fn output_folder(dir: &Path, option: &str) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            anyhow::bail!("{option} {} is a file, not a folder", dir.display());
        }
        return writable(dir).map_err(|reason| {
            anyhow::anyhow!("cannot write into {option} {}: {reason}", dir.display())
        });
    }
    creatable(dir, option)
}

/// An output file: not a folder; its folder exists (or, with `create_folder`, can be created)
/// and is writable.
pub fn output_file(path: &Path, option: &str, create_folder: bool) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{option} {} is a folder; give a file name inside it, e.g. {}",
            path.display(),
            path.join("out").display()
        );
    }
    let parent = folder(path);
    if parent.is_dir() {
        return writable(&parent).map_err(|reason| {
            anyhow::anyhow!(
                "cannot write {option} {}: its folder {}",
                path.display(),
                reason_with_path(&parent, &reason)
            )
        });
    }
    if parent.exists() {
        anyhow::bail!(
            "cannot write {option} {}: {} is a file, not a folder",
            path.display(),
            parent.display()
        );
    }
    if !create_folder {
        anyhow::bail!(
            "cannot write {option} {}: the folder {} does not exist (create it first)",
            path.display(),
            parent.display()
        );
    }
    creatable(&parent, option)
}

/// An export or write error, with "(pass --force to replace them)" only when it is a refusal
/// to replace existing files and `--force` was not given.
pub fn write_error(error: impl Into<ExportError>, force: bool) -> anyhow::Error {
    let error = error.into();
    let refusal = matches!(
        error,
        ExportError::Write(WriteError::Exists { .. } | WriteError::WouldOverwrite { .. })
    );
    if refusal && !force {
        anyhow::anyhow!("{error} (pass --force to replace them)")
    } else {
        error.into()
    }
}

/// Removes the temporary files a killed judgeq run left in `dir` and says so.
pub fn clean_temporaries(dir: &Path) -> anyhow::Result<()> {
    let removed = remove_stale_temporaries(dir)?;
    if !removed.is_empty() {
        let names: Vec<String> = removed
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        eprintln!(
            "note: removed {} temporary file(s) an interrupted judgeq run left in {}: {}",
            removed.len(),
            dir.display(),
            names.join(", ")
        );
    }
    Ok(())
}

/// Reads the soft-token file `path`, with a warning on stderr when it is a checkpoint of a
/// training run that had not finished (one `judgeq train` may still be writing).
pub fn read_soft_tokens(path: &Path) -> anyhow::Result<SoftTokens> {
    let tokens = SoftTokens::read(path)?;
    warn_if_unfinished(path, &tokens);
    Ok(tokens)
}

/// Parses the bytes read from the soft-token file `path`, with the same warning as
/// [`read_soft_tokens`].
pub fn soft_tokens_from_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<SoftTokens> {
    let tokens = SoftTokens::parse(path, bytes)?;
    warn_if_unfinished(path, &tokens);
    Ok(tokens)
}

fn warn_if_unfinished(path: &Path, tokens: &SoftTokens) {
    if let Some(note) = tokens.unfinished_training() {
        eprintln!("warning: {}: {note}", path.display());
    }
}

/// The folder a file goes into (`.` for a bare name).
pub fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A missing folder whose nearest existing ancestor is a writable folder.
fn creatable(dir: &Path, option: &str) -> anyhow::Result<()> {
    let mut ancestor = folder(dir);
    while !ancestor.exists() {
        let up = folder(&ancestor);
        if up == ancestor {
            anyhow::bail!(
                "cannot create {option} {}: no folder above it exists",
                dir.display()
            );
        }
        ancestor = up;
    }
    if !ancestor.is_dir() {
        anyhow::bail!(
            "cannot create {option} {}: {} is a file, not a folder",
            dir.display(),
            ancestor.display()
        );
    }
    writable(&ancestor).map_err(|reason| {
        anyhow::anyhow!(
            "cannot create {option} {}: {}",
            dir.display(),
            reason_with_path(&ancestor, &reason)
        )
    })
}

/// Whether a file can be created in the existing folder `dir`; the operating system's reason
/// when not.
fn writable(dir: &Path) -> Result<(), String> {
    match check_writable(dir) {
        Ok(()) => Ok(()),
        Err(WriteError::Io { source, .. }) => Err(source.to_string()),
        Err(other) => Err(other.to_string()),
    }
}

/// `PATH is not writable (REASON)`.
fn reason_with_path(path: &Path, reason: &str) -> String {
    format!("{} is not writable ({reason})", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_must_be_positive_and_distinct() {
        assert!(budgets(&[64, 128]).is_ok());
        let message = |b: &[usize]| budgets(b).unwrap_err().to_string();
        assert!(message(&[]).contains("--budgets is empty"));
        assert!(message(&[64, 0]).contains("a budget of 0 keeps nothing"));
        assert_eq!(
            message(&[64, 128, 64]),
            "--budgets lists 64 twice; give each value once"
        );
    }

    #[test]
    fn output_folders_and_files_are_checked_for_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, b"mine").unwrap();
        assert!(output_folder(dir.path(), "--out").is_ok());
        assert!(output_folder(&dir.path().join("new/deeper"), "--out").is_ok());
        let err = output_folder(&file, "--out").unwrap_err().to_string();
        assert!(err.ends_with("a.txt is a file, not a folder"), "{err}");
        let err = output_folder(&file.join("below"), "--out")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.txt is a file, not a folder"), "{err}");

        assert!(output_file(&dir.path().join("x.safetensors"), "--out", false).is_ok());
        let err = output_file(dir.path(), "--out", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a folder; give a file name"), "{err}");
        let err = output_file(&dir.path().join("missing/x"), "--out", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist (create it first)"), "{err}");
        assert!(output_file(&dir.path().join("missing/x"), "--out", true).is_ok());
        assert_eq!(std::fs::read(&file).unwrap(), b"mine");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the checks wrote nothing");
    }

    #[test]
    fn force_is_suggested_only_for_refusals() {
        let refusal = WriteError::Exists {
            path: "a.npy".into(),
        };
        assert!(
            write_error(refusal, false)
                .to_string()
                .ends_with("(pass --force to replace them)")
        );
        let refusal = WriteError::Exists {
            path: "a.npy".into(),
        };
        assert!(!write_error(refusal, true).to_string().contains("--force"));
        let io = WriteError::Io {
            path: "/sys/a.npy".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!write_error(io, false).to_string().contains("--force"));
    }
}

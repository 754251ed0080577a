//! The JSON Lines files of real task sets: `{dir}/{name}.jsonl`, one record per non-blank line,
//! each kept with its 1-based line number for error messages and ids.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::DataError;

/// The path of set `name` in `dir`, refused with `hint` (how the benchmark names its files)
/// when it is not a file.
pub(crate) fn set_file(dir: &Path, name: &str, hint: &str) -> Result<PathBuf, DataError> {
    let path = dir.join(format!("{name}.jsonl"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(DataError::MissingFile {
            path,
            hint: hint.to_owned(),
        })
    }
}

/// Every record of `path` with its line number; blank lines are skipped, and so is a
/// byte-order mark at the start of the file.
pub(crate) fn read_records<T: DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, raw) in crate::bom::strip_bom(&bytes)
        .split(|&b| b == b'\n')
        .enumerate()
    {
        let line = index + 1;
        let bad = |reason: String| DataError::BadLine {
            path: path.to_owned(),
            line,
            reason,
        };
        let text = std::str::from_utf8(raw).map_err(|e| bad(format!("not UTF-8 text ({e})")))?;
        if text.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(text).map_err(|e| bad(json_reason(&e)))?;
        records.push((line, record));
    }
    Ok(records)
}

/// serde_json's message without its position, which counts within the line only.
fn json_reason(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(text, _)| text);
    format!("not a valid record: {message} (column {})", error.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Record {
        x: u32,
    }

    #[test]
    fn records_keep_their_line_numbers_and_skip_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        std::fs::write(&path, "{\"x\": 1}\n\n  \n{\"x\": 2}\r\n").unwrap();
        let records: Vec<(usize, Record)> = read_records(&path).unwrap();
        assert_eq!(records, vec![(1, Record { x: 1 }), (4, Record { x: 2 })]);
    }

    #[test]
    fn a_byte_order_mark_is_read_past() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        std::fs::write(&path, b"\xEF\xBB\xBF{\"x\": 1}\n{\"x\": 2}\n").unwrap();
        let records: Vec<(usize, Record)> = read_records(&path).unwrap();
        assert_eq!(records, vec![(1, Record { x: 1 }), (2, Record { x: 2 })]);
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.jsonl");
        std::fs::write(&path, "{\"x\": 1}\n{\"y\": 2}\n").unwrap();
        let err = read_records::<Record>(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: not a valid record: missing field `x` (column 8)",
                path.display()
            )
        );
        std::fs::write(&path, b"{\"x\": 1}\n\xff\n").unwrap();
        let err = read_records::<Record>(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:2: not UTF-8 text", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_says_how_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = set_file(dir.path(), "qasper", "files are named {dataset}.jsonl").unwrap_err();
        let expected = format!(
            "{} does not exist (files are named {{dataset}}.jsonl)",
            dir.path().join("qasper.jsonl").display()
        );
        assert_eq!(err.to_string(), expected);
    }
}

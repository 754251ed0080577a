//! Reading the user's document: UTF-8 text only, not binary, not empty. Plain file reading,
//! shared by the CLI and the explorer (which never imports the model room).

use std::path::{Path, PathBuf};

/// Why a document was refused. Every variant names the file (or `(pasted text)`).
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The document.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is larger than any document judgeq runs.
    #[error(
        "{path}: the document is {:.1} MiB; judgeq reads at most {} MiB of text",
        mebibytes(*.bytes),
        MAX_DOCUMENT_BYTES >> 20
    )]
    TooLarge {
        /// The document.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{path}: not a UTF-8 text document ({reason})")]
    NotText {
        /// The document.
        path: PathBuf,
        /// Why it was refused (binary content, invalid UTF-8 at byte N, ...).
        reason: String,
    },
    /// The file (or pasted text) is empty or only whitespace.
    #[error("{path}: the document is empty (it holds nothing but whitespace)")]
    Empty {
        /// The document, or `(pasted text)`.
        path: PathBuf,
    },
}

/// Result of reading or checking a document.
pub type Result<T> = std::result::Result<T, DocumentError>;

fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

/// Largest document judgeq reads. The longest context it runs (128k tokens) holds well under
/// 1 MiB of text, so anything far bigger is a wrong file rather than a long document.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// An example document: the explorer's demo and screenshots show it, and `judgeq bench
/// --agreement` runs it when given no document.
pub const EXAMPLE_DOCUMENT: &str = include_str!("example_document.md");

/// The name used in errors for text that did not come from a file (pasted or dropped text).
const PASTED: &str = "(pasted text)";

/// Reads a text document. Refuses (with the path) files that are not UTF-8 (naming the byte
/// offset), binary files (NUL bytes or mostly control characters), files that are empty or
/// only whitespace, and files over [`MAX_DOCUMENT_BYTES`]. A leading UTF-8 byte-order mark
/// is dropped; the text is otherwise returned unchanged.
pub fn read_document(path: &Path) -> Result<String> {
    let io = |source| DocumentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            path: path.to_path_buf(),
            bytes: size,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let bytes = crate::bom::strip_bom(&bytes);
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(not_text(
            path,
            format!("binary file: NUL byte at offset {at}"),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| not_text(path, format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
    check_text(text, path)?;
    Ok(text.to_owned())
}

/// The same checks as [`read_document`] for text that did not come from a file (the GUI's
/// text box, drag-and-drop): no NUL bytes, not mostly control characters, not empty.
pub fn check_document_text(text: &str) -> Result<()> {
    check_text(text, Path::new(PASTED))
}

fn check_text(text: &str, path: &Path) -> Result<()> {
    if let Some(at) = text.bytes().position(|b| b == 0) {
        return Err(not_text(
            path,
            format!("binary content: NUL byte at offset {at}"),
        ));
    }
    if text.trim().is_empty() {
        return Err(DocumentError::Empty {
            path: path.to_path_buf(),
        });
    }
    let (mut chars, mut control) = (0usize, 0usize);
    for c in text.chars() {
        chars += 1;
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}') {
            control += 1;
        }
    }
    // Real text has almost no control characters; a tenth of them means a binary format.
    if control * 10 > chars {
        return Err(not_text(
            path,
            format!("binary content: {control} of {chars} characters are control characters"),
        ));
    }
    Ok(())
}

fn not_text(path: &Path, reason: String) -> DocumentError {
    DocumentError::NotText {
        path: PathBuf::from(path),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.txt");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_utf8_text_unchanged_without_bom() {
        let text = "Grüße, 世界! 🎉\n\tTabs and\r\nCRLF lines.\n";
        let (_d, path) = write(text.as_bytes());
        assert_eq!(read_document(&path).unwrap(), text);
        let (_d, path) = write(&[b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat());
        assert_eq!(read_document(&path).unwrap(), text);
    }

    #[test]
    fn invalid_utf8_names_the_byte_offset() {
        let (_d, path) = write(b"caf\xC3\xA9 ok \xFF\xFE rest");
        match read_document(&path).unwrap_err() {
            DocumentError::NotText { path: p, reason } => {
                assert_eq!(p, path);
                assert!(reason.contains("invalid UTF-8 at byte 9"), "{reason}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn binary_files_are_refused() {
        let (_d, path) = write(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        let err = read_document(&path).unwrap_err();
        assert!(
            matches!(&err, DocumentError::NotText { reason, .. } if reason.contains("NUL byte at offset 8")),
            "{err}"
        );
        let controls: Vec<u8> = (0..200u8)
            .map(|i| if i % 3 == 0 { b'a' } else { 1 + i % 7 })
            .collect();
        let (_d, path) = write(&controls);
        let err = read_document(&path).unwrap_err();
        assert!(
            matches!(&err, DocumentError::NotText { reason, .. } if reason.contains("control characters")),
            "{err}"
        );
    }

    #[test]
    fn empty_and_blank_documents_are_refused() {
        for bytes in [&b""[..], b"   \n\t\r\n", b"\xEF\xBB\xBF\n"] {
            let (_d, path) = write(bytes);
            let err = read_document(&path).unwrap_err();
            assert!(
                matches!(&err, DocumentError::Empty { path: p } if p == &path),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: the document is empty (it holds nothing but whitespace)",
                    path.display()
                )
            );
        }
        assert!(matches!(
            check_document_text(" \n"),
            Err(DocumentError::Empty { path }) if path == Path::new(PASTED)
        ));
    }

    #[test]
    fn pasted_text_is_checked_too() {
        assert!(check_document_text("A short note.").is_ok());
        assert!(matches!(
            check_document_text("a\0b"),
            Err(DocumentError::NotText { .. })
        ));
        assert!(matches!(
            check_document_text("\u{1}\u{2}\u{3}x"),
            Err(DocumentError::NotText { .. })
        ));
    }

    #[test]
    fn oversized_files_are_refused_with_their_size() {
        let (_d, path) = write(b"text");
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(MAX_DOCUMENT_BYTES + (1 << 19)).unwrap();
        let err = read_document(&path).unwrap_err();
        assert!(matches!(&err, DocumentError::TooLarge { path: p, .. } if p == &path));
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the document is 16.5 MiB; judgeq reads at most 16 MiB of text",
                path.display()
            )
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        assert!(matches!(
            read_document(Path::new("/nonexistent/doc.txt")),
            Err(DocumentError::Io { .. })
        ));
    }
}

//! Haystack sources: RULER's built-in noise sentences, or a directory of the user's text files
//! (`--haystack DIR`), turned into the whitespace-normalised word stream that the needle tasks
//! cut their haystacks from.

use std::path::Path;

use super::TaskError;

/// RULER's `noise` haystack: five sentences, repeated as often as the length needs.
pub const NOISE: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

/// The label of the noise haystack in samples' `haystack` field.
pub const NOISE_LABEL: &str = "noise";

/// Extensions of the files a haystack directory contributes.
const TEXT_EXTENSIONS: [&str; 2] = ["txt", "md"];

/// Text that needles are hidden in, as one stream of words (runs of whitespace become single
/// spaces, as RULER's essay haystack does).
#[derive(Clone, Debug)]
pub struct Haystack {
    label: String,
    text: String,
    word_ends: Vec<usize>,
    noise: bool,
}

impl Haystack {
    /// RULER's noise sentences.
    pub fn noise() -> Self {
        Self::build(NOISE_LABEL.to_owned(), NOISE, true)
    }

    /// Text held in memory, labelled `label` in samples' fields. Refuses text without words.
    pub fn from_text(label: &str, text: &str) -> Result<Self, TaskError> {
        if text.trim().is_empty() {
            return Err(TaskError::Haystack {
                path: label.into(),
                reason: "the text is empty".to_owned(),
            });
        }
        Ok(Self::build(label.to_owned(), text, false))
    }

    /// Every `*.txt` and `*.md` file directly in `dir`, in sorted name order, concatenated
    /// with a blank line between files (as the needle-in-a-haystack tool and RULER's essay
    /// haystack concatenate their essays). Other files and subdirectories are not part of a
    /// haystack. A file that is empty, binary (holds a NUL byte) or not UTF-8 is an error
    /// naming it, as is a directory without such files.
    pub fn from_dir(dir: &Path) -> Result<Self, TaskError> {
        let io = |source| TaskError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_text = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| TEXT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if is_text && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(TaskError::Haystack {
                path: dir.to_path_buf(),
                reason: "holds no *.txt or *.md files".to_owned(),
            });
        }
        files.sort();
        let texts = files
            .iter()
            .map(|path| read_text_file(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::build(
            dir.display().to_string(),
            &texts.join("\n\n"),
            false,
        ))
    }

    fn build(label: String, raw: &str, noise: bool) -> Self {
        let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut word_ends: Vec<usize> = text.match_indices(' ').map(|(at, _)| at).collect();
        word_ends.push(text.len());
        Self {
            label,
            text,
            word_ends,
            noise,
        }
    }

    /// How samples name this haystack in their `haystack` field: `noise`, the directory, or
    /// the label given to [`Haystack::from_text`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether this is RULER's noise haystack (no user text was given).
    pub fn is_noise(&self) -> bool {
        self.noise
    }

    /// Words in the stream.
    pub fn word_count(&self) -> usize {
        self.word_ends.len()
    }

    /// The first `n` words joined by single spaces, starting over from the first word when
    /// the stream runs out (RULER's essay haystack of `n` words).
    pub fn first_words(&self, n: usize) -> String {
        let total = self.word_ends.len();
        let (whole, rest) = (n / total, n % total);
        let mut parts: Vec<&str> = vec![self.text.as_str(); whole];
        if rest > 0 {
            parts.push(&self.text[..self.word_ends[rest - 1]]);
        }
        parts.join(" ")
    }
}

/// One haystack file's text, refused when empty, binary or not UTF-8.
fn read_text_file(path: &Path) -> Result<String, TaskError> {
    let bytes = std::fs::read(path).map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let refuse = |reason: String| TaskError::Haystack {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(refuse(format!("binary file (NUL byte at offset {at})")));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(refuse("empty file".to_owned()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    #[test]
    fn directory_files_are_read_in_name_order_and_normalised() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.md", b"Second  file.\n\nIts end.");
        write(dir.path(), "a.txt", b"First\tfile\nhere.");
        write(dir.path(), "notes.csv", b"ignored,column");
        std::fs::create_dir(dir.path().join("sub.txt")).unwrap();
        let haystack = Haystack::from_dir(dir.path()).unwrap();
        assert_eq!(haystack.word_count(), 7);
        assert_eq!(haystack.first_words(3), "First file here.");
        assert_eq!(haystack.first_words(0), "");
        assert_eq!(
            haystack.first_words(9),
            "First file here. Second file. Its end. First file"
        );
        assert_eq!(haystack.first_words(16).split(' ').count(), 16);
        assert!(haystack.first_words(16).ends_with("end. First file"));
        assert_eq!(haystack.label(), dir.path().display().to_string());
        assert!(!haystack.is_noise());
    }

    #[test]
    fn noise_repeats_rulers_sentences() {
        let noise = Haystack::noise();
        assert!(noise.is_noise());
        assert_eq!(noise.label(), "noise");
        assert_eq!(noise.word_count(), 19);
        assert_eq!(noise.first_words(19), NOISE);
        assert_eq!(noise.first_words(21), format!("{NOISE} The grass"));
    }

    fn error_of(files: &[(&str, &[u8])]) -> String {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            write(dir.path(), name, bytes);
        }
        Haystack::from_dir(dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn unusable_files_are_errors_that_name_them() {
        let empty = error_of(&[("a.txt", b"Fine text."), ("b.txt", b" \n\t")]);
        assert!(
            empty.contains("b.txt") && empty.contains("empty file"),
            "{empty}"
        );
        let binary = error_of(&[("a.md", b"ab\0cd")]);
        assert!(
            binary.contains("a.md") && binary.contains("NUL byte at offset 2"),
            "{binary}"
        );
        let latin1 = error_of(&[("essay.txt", b"caf\xe9 au lait")]);
        assert!(
            latin1.contains("essay.txt")
                && latin1.contains("not UTF-8")
                && latin1.contains("offset 3"),
            "{latin1}"
        );
        let none = error_of(&[("data.json", b"{}")]);
        assert!(none.contains("no *.txt or *.md files"), "{none}");
        let missing = Haystack::from_dir(Path::new("/no/such/haystack/dir"))
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("/no/such/haystack/dir"), "{missing}");
        assert!(Haystack::from_text("given", "  \n").is_err());
    }
}

//! Sentences of a whitespace-normalised haystack, and needles inserted at sentence boundaries
//! (RULER's essay haystack, which splits with NLTK's `sent_tokenize`).
//!
//! A sentence ends at a word whose last character before any closing quotes or brackets is
//! `.`, `!` or `?`; the text's last sentence may be unfinished. Unlike NLTK's Punkt model this
//! knows no abbreviations ("Mr." ends a sentence here).

use std::ops::Range;

/// Characters that may follow a sentence's final punctuation within the same word.
const CLOSERS: &[char] = &['"', '\'', ')', ']', '\u{201D}', '\u{2019}'];

/// A text (words separated by single spaces) with the byte offsets where its sentences end.
pub(crate) struct Sentences<'a> {
    text: &'a str,
    ends: Vec<usize>,
}

impl<'a> Sentences<'a> {
    /// Splits `text`, whose words are separated by single spaces.
    pub(crate) fn split(text: &'a str) -> Self {
        let mut ends = Vec::new();
        let mut start = 0;
        for word in text.split(' ') {
            let end = start + word.len();
            let bare = word.trim_end_matches(CLOSERS);
            if bare.ends_with(['.', '!', '?']) {
                ends.push(end);
            }
            start = end + 1;
        }
        if !text.is_empty() && ends.last() != Some(&text.len()) {
            ends.push(text.len());
        }
        Self { text, ends }
    }

    /// Number of sentences; boundaries run from 0 (before the first) to this (after the last).
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Byte offset of boundary `i`.
    fn offset(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// Sentence `i`.
    pub(crate) fn sentence(&self, i: usize) -> &'a str {
        self.text[self.offset(i)..self.ends[i]].trim_start()
    }

    /// The text with each `(boundary, insert)` placed at its boundary, pieces joined by single
    /// spaces (inserts at one boundary keep their order), and the byte range of every insert
    /// in the result, in the order given. `inserts` must be sorted by boundary.
    pub(crate) fn with_inserted(&self, inserts: &[(usize, &str)]) -> (String, Vec<Range<usize>>) {
        let mut out = String::with_capacity(
            self.text.len() + inserts.iter().map(|(_, s)| s.len() + 1).sum::<usize>(),
        );
        let mut ranges = Vec::with_capacity(inserts.len());
        let push = |piece: &str, out: &mut String| {
            if piece.is_empty() {
                return None;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            let start = out.len();
            out.push_str(piece);
            Some(start..out.len())
        };
        let mut from = 0;
        for &(boundary, insert) in inserts {
            let to = self.offset(boundary);
            push(self.text[from..to].trim_start(), &mut out);
            if let Some(range) = push(insert, &mut out) {
                ranges.push(range);
            }
            from = to;
        }
        push(self.text[from..].trim_start(), &mut out);
        (out, ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_after_terminal_punctuation_and_keeps_an_unfinished_tail() {
        let text = "One two. \"Three!\" Four (five?) six. Seven";
        let s = Sentences::split(text);
        assert_eq!(s.len(), 5);
        let all: Vec<&str> = (0..5).map(|i| s.sentence(i)).collect();
        assert_eq!(
            all,
            ["One two.", "\"Three!\"", "Four (five?)", "six.", "Seven"]
        );
        assert_eq!(Sentences::split("").len(), 0);
        assert_eq!(Sentences::split("A b. C d.").len(), 2);
    }

    #[test]
    fn inserts_land_at_their_boundaries() {
        let s = Sentences::split("A b. C d. E f.");
        let (text, ranges) = s.with_inserted(&[(0, "X."), (2, "Y."), (2, "Z."), (3, "W.")]);
        assert_eq!(text, "X. A b. C d. Y. Z. E f. W.");
        let found: Vec<&str> = ranges.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(found, ["X.", "Y.", "Z.", "W."]);
        let (plain, none) = s.with_inserted(&[]);
        assert_eq!((plain.as_str(), none.len()), ("A b. C d. E f.", 0));
    }
}

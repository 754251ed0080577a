//! The find box's matching: where a phrase occurs in the prompt, as the token ranges that
//! overlap each occurrence.
//!
//! The prompt's token strings are searched joined together (so a phrase may cross token
//! boundaries), ignoring case and treating every run of whitespace as one space, so a phrase
//! typed on one line finds a sentence that wraps in the document.

use std::ops::Range;
use std::sync::Arc;

use crate::app::marks::{FIND_COLOUR, MarkedSpans};

/// Legend label of the find box's matches.
pub const FIND_LABEL: &str = "find";

/// The prompt's tokens folded for matching: lower case, whitespace runs as one space, and for
/// every byte of the folded text the token it came from.
struct Folded {
    text: String,
    owner: Vec<usize>,
}

impl Folded {
    fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let mut folded = Folded {
            text: String::new(),
            owner: Vec::new(),
        };
        let mut in_space = false;
        for (index, token) in tokens.into_iter().enumerate() {
            for c in token.chars() {
                if c.is_whitespace() {
                    if !in_space {
                        folded.push(' ', index);
                    }
                    in_space = true;
                } else {
                    in_space = false;
                    for lower in c.to_lowercase() {
                        folded.push(lower, index);
                    }
                }
            }
        }
        folded
    }

    fn push(&mut self, c: char, token: usize) {
        self.text.push(c);
        self.owner.extend(std::iter::repeat_n(token, c.len_utf8()));
    }
}

/// `query` as it is matched: trimmed, lower case, whitespace runs as one space.
pub fn fold_query(query: &str) -> String {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    words.join(" ")
}

/// Every occurrence of `query` in the joined `tokens`, left to right without overlaps, as the
/// range of tokens each one overlaps. Case and the length of whitespace runs are ignored; an
/// empty (or blank) query matches nothing.
pub fn find_in_tokens<'a>(
    tokens: impl IntoIterator<Item = &'a str>,
    query: &str,
) -> Vec<Range<usize>> {
    let needle = fold_query(query);
    if needle.is_empty() {
        return Vec::new();
    }
    let folded = Folded::new(tokens);
    folded
        .text
        .match_indices(&needle)
        .filter_map(|(start, found)| {
            let first = *folded.owner.get(start)?;
            let last = *folded.owner.get(start + found.len() - 1)?;
            Some(first..last + 1)
        })
        .collect()
}

/// The find box's matches in one prompt, found again only when the query changes, and the
/// match last stepped to.
#[derive(Debug, Default)]
pub struct FindResults {
    query: String,
    matches: Option<Arc<MarkedSpans>>,
    current: Option<usize>,
}

impl FindResults {
    /// The matches of `query` in `tokens` (the same prompt every call).
    pub fn update(&mut self, tokens: &[String], query: &str) -> Arc<MarkedSpans> {
        match &self.matches {
            Some(matches) if self.query == query => Arc::clone(matches),
            _ => {
                let ranges = find_in_tokens(tokens.iter().map(String::as_str), query);
                let matches = Arc::new(MarkedSpans::new(FIND_LABEL, FIND_COLOUR, ranges));
                self.query = query.to_owned();
                self.matches = Some(Arc::clone(&matches));
                self.current = None;
                matches
            }
        }
    }

    /// The matches found last, if any query was given.
    pub fn matches(&self) -> Option<&Arc<MarkedSpans>> {
        self.matches.as_ref()
    }

    /// The match last stepped to (0-based), if any.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Steps to the next (`forward`) or previous match, wrapping around, and returns its
    /// token range.
    pub fn step(&mut self, forward: bool) -> Option<Range<usize>> {
        let matches = self.matches.as_ref()?;
        let next = matches.step(self.current, forward)?;
        self.current = Some(next);
        matches.ranges().get(next).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS: [&str; 12] = [
        "<|im_start|>",
        "user",
        "\n",
        "The",
        " bridge",
        " re",
        "opens",
        " on",
        " 14",
        " March",
        ".\n\n",
        "When does the bridge reopen?",
    ];

    fn find(query: &str) -> Vec<Range<usize>> {
        find_in_tokens(TOKENS.iter().copied(), query)
    }

    #[test]
    fn phrases_across_token_boundaries_cover_every_token_they_touch() {
        // "bridge reopens" runs from " bridge" (4) through "opens" (6).
        assert_eq!(find("bridge reopens"), vec![4..7]);
        // "ge re" starts inside " bridge" and ends inside " re".
        assert_eq!(find("ge re"), vec![4..6, 11..12]);
        // A phrase inside one token marks that token only.
        assert_eq!(find("does"), vec![11..12]);
    }

    #[test]
    fn case_and_whitespace_runs_are_ignored() {
        assert_eq!(find("THE BRIDGE"), vec![3..5, 11..12]);
        assert_eq!(find("  march.\tWHEN "), vec![9..12]);
        assert_eq!(find("user the"), vec![1..4]);
    }

    #[test]
    fn nothing_is_found_for_blank_or_absent_queries() {
        assert!(find("").is_empty());
        assert!(find(" \n ").is_empty());
        assert!(find("ferry").is_empty());
    }

    #[test]
    fn occurrences_do_not_overlap_and_come_in_order() {
        let tokens = ["a", "aa", "a", "b", "aaa"];
        // Joined: "aaaabaaa" — "aa" at bytes 0, 2, 5.
        let found = find_in_tokens(tokens.iter().copied(), "aa");
        assert_eq!(found, vec![0..2, 1..3, 4..5]);
    }

    #[test]
    #[expect(
        clippy::single_range_in_vec_init,
        reason = "lists of token ranges, some of one range"
    )]
    fn results_are_kept_until_the_query_changes_and_step_through_matches() {
        let tokens: Vec<String> = TOKENS.iter().map(|t| (*t).to_owned()).collect();
        let mut results = FindResults::default();
        let first = results.update(&tokens, "bridge");
        assert_eq!(first.ranges(), &[4..5, 11..12]);
        assert_eq!(first.tokens(), 2);
        assert_eq!(results.step(true), Some(4..5));
        assert_eq!(results.step(true), Some(11..12));
        assert_eq!(results.step(true), Some(4..5));
        assert_eq!(results.step(false), Some(11..12));
        let again = results.update(&tokens, "bridge");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same query is not searched again"
        );
        assert_eq!(results.current(), Some(1));
        let other = results.update(&tokens, "march");
        assert_eq!(other.ranges(), &[9..10]);
        assert_eq!(results.current(), None, "a new query starts from no match");
        results.update(&tokens, "ferry");
        assert_eq!(results.step(true), None);
    }

    #[test]
    fn lower_casing_that_changes_lengths_keeps_tokens_right() {
        // 'İ' lower-cases to two chars ("i̇"); the match after it must still land on token 2.
        let tokens = ["İ", "x", "Straße"];
        assert_eq!(find_in_tokens(tokens.iter().copied(), "straße"), vec![2..3]);
        assert_eq!(find_in_tokens(tokens.iter().copied(), "xstr"), vec![1..3]);
    }
}

//! LongBench's `code_sim_score` (`LongBench/metrics.py`): the first line of the prediction
//! that holds no `` ` ``, `#` or `//`, compared with the reference by `fuzzywuzzy.fuzz.ratio`,
//! divided by 100.
//!
//! LongBench's requirements install `fuzzywuzzy` without `python-Levenshtein`, so `fuzz.ratio`
//! falls back to Python's `difflib.SequenceMatcher(None, a, b).ratio()`: 100 when the strings
//! are equal (even empty), 0 when one is empty, else `round(100 · 2M / (len a + len b))` with
//! Python's round-half-to-even, where `M` is the number of characters in difflib's matching
//! blocks. difflib (Ratcliff–Obershelp, not an LCS) takes the longest matching block (the
//! earliest in `a`, then in `b`, on ties) and recurses on both sides of it; when `b` has at
//! least 200 characters, characters occurring more than `len b / 100 + 1` times in it
//! ("popular") cannot start a block, only extend one. Lengths count Unicode code points.

use std::collections::HashMap;

/// `code_sim_score` of a prediction against one reference line.
pub fn code_sim(prediction: &str, truth: &str) -> f64 {
    f64::from(fuzz_ratio(first_code_line(prediction), truth)) / 100.0
}

/// The first line (after leading newlines) without `` ` ``, `#` or `//`; empty when none.
fn first_code_line(prediction: &str) -> &str {
    prediction
        .trim_start_matches('\n')
        .split('\n')
        .find(|line| !line.contains('`') && !line.contains('#') && !line.contains("//"))
        .unwrap_or("")
}

/// `fuzz.ratio(a, b)` with difflib's matcher, in `0..=100`.
fn fuzz_ratio(a: &str, b: &str) -> u32 {
    if a == b {
        return 100;
    }
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let ratio = 2.0 * matching_characters(&a, &b) as f64 / (a.len() + b.len()) as f64;
    // Python's `int(round(100 * ratio))`; the value lies in 0..=100.
    (100.0 * ratio).round_ties_even() as u32
}

/// The total size of difflib's matching blocks of `a` and `b` (no junk, autojunk on).
fn matching_characters(a: &[char], b: &[char]) -> usize {
    let index = BIndex::new(b);
    let mut total = 0;
    let mut pending = vec![(0, a.len(), 0, b.len())];
    while let Some((a_lo, a_hi, b_lo, b_hi)) = pending.pop() {
        let (i, j, size) = index.longest_match(a, a_lo, a_hi, b_lo, b_hi);
        if size == 0 {
            continue;
        }
        total += size;
        if a_lo < i && b_lo < j {
            pending.push((a_lo, i, b_lo, j));
        }
        if i + size < a_hi && j + size < b_hi {
            pending.push((i + size, a_hi, j + size, b_hi));
        }
    }
    total
}

/// difflib's `b2j`: the positions of every character of `b`, popular characters left out.
struct BIndex<'b> {
    b: &'b [char],
    positions: HashMap<char, Vec<usize>>,
}

impl<'b> BIndex<'b> {
    fn new(b: &'b [char]) -> Self {
        let mut positions: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, &c) in b.iter().enumerate() {
            positions.entry(c).or_default().push(j);
        }
        if b.len() >= 200 {
            let limit = b.len() / 100 + 1;
            positions.retain(|_, at| at.len() <= limit);
        }
        Self { b, positions }
    }

    /// difflib's `find_longest_match(a_lo, a_hi, b_lo, b_hi)` as `(i, j, size)`.
    fn longest_match(
        &self,
        a: &[char],
        a_lo: usize,
        a_hi: usize,
        b_lo: usize,
        b_hi: usize,
    ) -> (usize, usize, usize) {
        let b = self.b;
        let (mut best_i, mut best_j, mut best) = (a_lo, b_lo, 0);
        // Length of the match ending at (i - 1, j), by j.
        let mut ending: HashMap<usize, usize> = HashMap::new();
        for (i, c) in a.iter().enumerate().take(a_hi).skip(a_lo) {
            let mut next = HashMap::new();
            for &j in self.positions.get(c).map_or(&[][..], Vec::as_slice) {
                if j < b_lo {
                    continue;
                }
                if j >= b_hi {
                    break;
                }
                let k = j
                    .checked_sub(1)
                    .and_then(|before| ending.get(&before))
                    .copied()
                    .unwrap_or(0)
                    + 1;
                next.insert(j, k);
                if k > best {
                    (best_i, best_j, best) = (i + 1 - k, j + 1 - k, k);
                }
            }
            ending = next;
        }
        // Extend over characters left out of the index (popular ones) on both sides.
        while best_i > a_lo && best_j > b_lo && a[best_i - 1] == b[best_j - 1] {
            (best_i, best_j, best) = (best_i - 1, best_j - 1, best + 1);
        }
        while best_i + best < a_hi && best_j + best < b_hi && a[best_i + best] == b[best_j + best] {
            best += 1;
        }
        (best_i, best_j, best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn ratio_of_hand_computed_blocks() {
        // "abcd" vs "bcde": longest block "bcd" (3); left side "a" vs "" and right side ""
        // vs "e" are empty. M = 3, ratio = 6/8 = 0.75 → 75.
        assert_eq!(matching_characters(&chars("abcd"), &chars("bcde")), 3);
        assert_eq!(fuzz_ratio("abcd", "bcde"), 75);
        // "x = 1" vs "x = 2": block "x = " (4); M = 4, 2·4/10 = 0.8 → 80.
        assert_eq!(fuzz_ratio("x = 1", "x = 2"), 80);
    }

    #[test]
    fn blocks_are_not_an_lcs() {
        // a = "aba", b = "bca". Every block has size 1; the first found is a[0] = "a" with
        // b[2]. Left of it: a[..0] is empty; right of it: b[3..] is empty. M = 1, although
        // the LCS "ba" has 2. Ratio 2/6 → 33.
        assert_eq!(matching_characters(&chars("aba"), &chars("bca")), 1);
        assert_eq!(fuzz_ratio("aba", "bca"), 33);
        // a = "aXbYc", b = "abc": "a" (a[0], b[0]) first; right side "XbYc" vs "bc": "b", then
        // "Yc" vs "c": "c". M = 3.
        assert_eq!(matching_characters(&chars("aXbYc"), &chars("abc")), 3);
        // a = "bca", b = "abc": block "bc" (a[0..2], b[1..3]); nothing on the right of b.
        // M = 2, 4/6 → 67.
        assert_eq!(fuzz_ratio("bca", "abc"), 67);
    }

    #[test]
    fn ties_round_half_to_even() {
        // T = 16 makes exact halves: M = 1 → 100·2/16 = 12.5 → 12 (even); M = 3 → 37.5 → 38.
        assert_eq!(fuzz_ratio("abcdefgh", "aijklmno"), 12);
        assert_eq!(fuzz_ratio("abcdefgh", "abcijklm"), 38);
    }

    #[test]
    fn popular_characters_only_extend_blocks() {
        // b = 200 × "a" + "b" (201 chars): "a" occurs 200 > 201/100 + 1 = 3 times, so it is
        // popular and left out of the index. a = "aab": the only indexed block start is "b"
        // (a[2], b[200]), extended backwards over "aa" (a[0..2] = b[198..200]): block size 3,
        // nothing left on either side. M = 3, ratio 6/204 → 2.94 → 3.
        let b = format!("{}b", "a".repeat(200));
        assert_eq!(matching_characters(&chars("aab"), &chars(&b)), 3);
        assert_eq!(fuzz_ratio("aab", &b), 3);
        // a = "aaa" has no indexed character: the empty match at (0, 0) is still extended
        // forwards over a[0..3] = b[0..3]. M = 3.
        assert_eq!(matching_characters(&chars("aaa"), &chars(&b)), 3);
        // a = "xaaa": the empty match at (0, 0) cannot extend ("x" ≠ "a"): M = 0, where
        // without the popular rule the block "aaa" would count.
        assert_eq!(matching_characters(&chars("xaaa"), &chars(&b)), 0);
        let short = format!("{}b", "a".repeat(150));
        assert_eq!(matching_characters(&chars("xaaa"), &chars(&short)), 3);
    }

    #[test]
    fn equal_and_empty_strings() {
        assert_eq!(fuzz_ratio("", ""), 100);
        assert_eq!(fuzz_ratio("", "x"), 0);
        assert_eq!(fuzz_ratio("x", ""), 0);
        assert_eq!(fuzz_ratio("same", "same"), 100);
    }

    #[test]
    fn unicode_counts_code_points() {
        // "é" vs "e": no match; "éa" vs "ea": M = 1, 2/4 → 50 (bytes would differ).
        assert_eq!(fuzz_ratio("éa", "ea"), 50);
    }

    #[test]
    fn code_sim_takes_the_first_plain_line() {
        // Lines: "```python" (backtick), "# comment" (#), "x = foo(1)" ← taken.
        let prediction = "\n```python\n# comment\nx = foo(1)\ny = 2";
        assert_eq!(code_sim(prediction, "x = foo(1)"), 1.0);
        // "a // b" holds "//": skipped; no other line → "" vs the reference → 0.
        assert_eq!(code_sim("a // b", "a"), 0.0);
        assert_eq!(code_sim("", "x = 1"), 0.0);
        // "x = 1" vs "x = 2" → 80 → 0.8.
        assert_eq!(code_sim("x = 1\n", "x = 2"), 0.8);
    }
}

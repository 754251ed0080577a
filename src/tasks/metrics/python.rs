//! Python's string semantics that the official scorers rely on, so that a Rust score equals the
//! Python one on the same text: `str.isspace`, `str.strip`, `str.split()`, the `\d` and `\w`
//! classes of `re` on `str`, `int()` of a digit run and `float()` of a string.
//!
//! Python counts `U+001C`–`U+001F` as whitespace where Rust does not; `\d` is Unicode category
//! `Nd` (any script's decimal digits), tabulated below from Python 3.11's Unicode 14 data.
//! `\w` is approximated by [`char::is_alphanumeric`], which also counts a few combining marks
//! (Unicode's `Other_Alphabetic`) that Python does not.

/// First code point of every run of ten decimal digits (`0`–`9`) of category `Nd`, ascending
/// (Unicode 14, as Python 3.11's `unicodedata` lists them; every `Nd` digit lies in such a run).
const DECIMAL_RUN_STARTS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Python's `str.isspace()` for one character (also what `\s` and `str.split()` use).
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.strip()`.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Python's `s.split()`: the runs of non-whitespace.
pub fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|word| !word.is_empty())
}

/// Python's `" ".join(s.split())`.
pub fn collapse_spaces(s: &str) -> String {
    split(s).collect::<Vec<_>>().join(" ")
}

/// The value of `c` when Python's `\d` matches it (a decimal digit of any script).
pub fn decimal_value(c: char) -> Option<u32> {
    let code = u32::from(c);
    let run = DECIMAL_RUN_STARTS.partition_point(|&start| start <= code);
    let start = DECIMAL_RUN_STARTS[run.checked_sub(1)?];
    let value = code - start;
    (value < 10).then_some(value)
}

/// Python's `re.findall(r"\d+", s)`.
pub fn digit_runs(s: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = None;
    for (at, c) in s.char_indices() {
        match (decimal_value(c).is_some(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                runs.push(&s[from..at]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        runs.push(&s[from..]);
    }
    runs
}

/// The decimal digits of Python's `int(run)` for a run of `\d` digits, in ASCII without leading
/// zeros (`"0"` for zero); `None` when `run` is empty or holds a non-digit. Two runs are equal
/// integers exactly when these strings are equal, whatever their length.
pub fn integer_digits(run: &str) -> Option<String> {
    if run.is_empty() {
        return None;
    }
    let ascii = run
        .chars()
        .map(|c| decimal_value(c).and_then(|d| char::from_digit(d, 10)))
        .collect::<Option<String>>()?;
    let trimmed = ascii.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
}

/// Python's `\w` for one character (approximately, see the module doc).
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python's `float(s)`, `None` where Python raises `ValueError`: surrounding whitespace is
/// ignored, digits of any script count, and single underscores may separate digits.
pub fn parse_float(s: &str) -> Option<f64> {
    let chars: Vec<char> = strip(s)
        .chars()
        .map(
            |c| match decimal_value(c).and_then(|d| char::from_digit(d, 10)) {
                Some(ascii) => ascii,
                None => c,
            },
        )
        .collect();
    let mut text = String::with_capacity(chars.len());
    for (at, &c) in chars.iter().enumerate() {
        if c == '_' {
            let before = at.checked_sub(1).and_then(|b| chars.get(b));
            let after = chars.get(at + 1);
            if !matches!((before, after), (Some(b), Some(a)) if b.is_ascii_digit() && a.is_ascii_digit())
            {
                return None;
            }
        } else {
            text.push(c);
        }
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_includes_the_information_separators() {
        // Python: "\x1c".isspace() is True, "\u200b".isspace() is False.
        assert!(is_space('\u{1c}') && is_space('\u{1f}') && is_space('\u{3000}'));
        assert!(!is_space('\u{200b}') && !is_space('x') && !is_space('\u{1b}'));
        assert_eq!(strip("\u{1d} a b\u{a0}\n"), "a b");
        assert_eq!(collapse_spaces("  a\t\tb \u{1e}c  "), "a b c");
        assert_eq!(split("").count(), 0);
    }

    #[test]
    fn digits_of_every_script_match_backslash_d() {
        // ٣ (U+0663) is Arabic-Indic three; ² (U+00B2) is category No, not \d; ９ is fullwidth.
        assert_eq!(decimal_value('٣'), Some(3));
        assert_eq!(decimal_value('９'), Some(9));
        assert_eq!(decimal_value('²'), None);
        assert_eq!(decimal_value('/'), None);
        assert_eq!(decimal_value(':'), None);
        // U+1D7CE..U+1D7FF are five runs of mathematical digits: U+1D7D8 is a zero again.
        assert_eq!(decimal_value('\u{1D7D8}'), Some(0));
        assert_eq!(decimal_value('\u{1D7FF}'), Some(9));
        assert_eq!(digit_runs("a12b٣4 ²5"), vec!["12", "٣4", "5"]);
        assert!(digit_runs("none").is_empty());
    }

    #[test]
    fn integers_compare_by_value() {
        assert_eq!(integer_digits("02416").as_deref(), Some("2416"));
        assert_eq!(integer_digits("000").as_deref(), Some("0"));
        assert_eq!(integer_digits("٣٣").as_deref(), Some("33"));
        assert_eq!(integer_digits("12a"), None);
        assert_eq!(integer_digits(""), None);
        let long = "123456789012345678901234567890";
        assert_eq!(integer_digits(long).as_deref(), Some(long));
    }

    #[test]
    fn floats_parse_as_python_does() {
        assert_eq!(parse_float(" 12 "), Some(12.0));
        assert_eq!(parse_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("٣.5"), Some(3.5));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_float("_1"), None);
        assert_eq!(parse_float("1__0"), None);
        assert_eq!(parse_float("1_"), None);
        assert_eq!(parse_float("twelve"), None);
        assert_eq!(parse_float(""), None);
    }
}

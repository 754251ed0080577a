//! The UTF-8 byte-order mark that some editors (Notepad, Excel's "CSV UTF-8") put at the start
//! of text files. Every reader of judgeq's JSON and JSON Lines inputs drops it, so that such a
//! file reads like any other instead of failing as "not JSON".

/// The three bytes of the UTF-8 byte-order mark.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a leading byte-order mark.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// `text` without a leading byte-order mark (U+FEFF).
pub fn strip_bom_str(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_mark_is_dropped() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBF{\"a\": 1}"), b"{\"a\": 1}");
        assert_eq!(strip_bom(b"{\"a\": 1}"), b"{\"a\": 1}");
        assert_eq!(strip_bom(b"x\xEF\xBB\xBF"), b"x\xEF\xBB\xBF");
        assert_eq!(strip_bom(b"\xEF\xBB"), b"\xEF\xBB");
        assert_eq!(strip_bom_str("\u{feff}\u{feff}a"), "\u{feff}a");
        assert_eq!(strip_bom_str("a\u{feff}"), "a\u{feff}");
        assert_eq!(strip_bom_str(""), "");
    }
}

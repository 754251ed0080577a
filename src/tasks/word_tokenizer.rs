//! A whitespace tokenizer for the loaders' tests: every word is a token and the chat template
//! adds [`TEMPLATE_TOKENS`].

use crate::tasks::TaskTokenizer;

/// Tokens the pretend chat template adds around a prompt.
pub const TEMPLATE_TOKENS: usize = 7;

/// Counts words as tokens.
pub struct WordTokenizer;

impl TaskTokenizer for WordTokenizer {
    fn prompt_tokens(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
    ) -> Result<usize, String> {
        let words = [context, question, answer_prefix]
            .iter()
            .map(|text| text.split_whitespace().count())
            .sum::<usize>();
        Ok(words + TEMPLATE_TOKENS)
    }

    fn text_tokens(&self, text: &str) -> Result<usize, String> {
        Ok(text.split_whitespace().count())
    }

    /// The first `max_tokens / 2` words and the last `max_tokens - max_tokens / 2`, cut in the
    /// text itself (the tail keeps the whitespace before its first word).
    fn truncate_middle(&self, text: &str, max_tokens: usize) -> Result<String, String> {
        let words: Vec<(usize, usize)> = text
            .split_whitespace()
            .map(|word| {
                let start = word.as_ptr() as usize - text.as_ptr() as usize;
                (start, start + word.len())
            })
            .collect();
        if words.len() <= max_tokens {
            return Ok(text.to_owned());
        }
        let head = max_tokens / 2;
        let tail = max_tokens - head;
        let head_end = if head == 0 { 0 } else { words[head - 1].1 };
        let tail_start = if tail == 0 {
            text.len()
        } else {
            words[words.len() - tail - 1].1
        };
        Ok(format!("{}{}", &text[..head_end], &text[tail_start..]))
    }
}

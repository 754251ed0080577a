//! A whitespace tokenizer for the generators' unit tests: every whitespace-separated word is
//! one token, and the "chat template" adds a fixed number of tokens.

use super::TaskTokenizer;

/// One token per whitespace-separated word.
pub(crate) struct Whitespace;

impl Whitespace {
    /// Tokens the pretend chat template adds to every prompt.
    pub(crate) const TEMPLATE_TOKENS: usize = 7;
}

fn count(text: &str) -> usize {
    text.split_whitespace().count()
}

impl TaskTokenizer for Whitespace {
    fn prompt_tokens(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
    ) -> Result<usize, String> {
        Ok(Self::TEMPLATE_TOKENS + count(context) + count(question) + count(answer_prefix))
    }

    fn text_tokens(&self, text: &str) -> Result<usize, String> {
        Ok(count(text))
    }

    fn truncate_middle(&self, text: &str, max_tokens: usize) -> Result<String, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() <= max_tokens {
            return Ok(text.to_owned());
        }
        let head = max_tokens / 2;
        let tail = max_tokens - head;
        Ok([&words[..head], &words[words.len() - tail..]]
            .concat()
            .join(" "))
    }
}

//! The model's tokenizer and chat template as the [`TaskTokenizer`] that generators and
//! loaders measure lengths with.

use crate::model::Model;
use crate::tasks::TaskTokenizer;

/// A loaded model seen as a [`TaskTokenizer`].
pub struct ModelTokenizer<'a> {
    model: &'a Model,
}

impl<'a> ModelTokenizer<'a> {
    /// Measures with `model`'s tokenizer and chat template.
    pub fn new(model: &'a Model) -> Self {
        Self { model }
    }
}

impl TaskTokenizer for ModelTokenizer<'_> {
    fn prompt_tokens(
        &self,
        context: &str,
        question: &str,
        answer_prefix: &str,
    ) -> Result<usize, String> {
        self.model
            .task_prompt_tokens(context, question, answer_prefix)
            .map_err(|e| e.to_string())
    }

    fn text_tokens(&self, text: &str) -> Result<usize, String> {
        self.model
            .tokenizer
            .encode_text(text)
            .map(|encoded| encoded.ids.len())
            .map_err(|e| e.to_string())
    }

    fn truncate_middle(&self, text: &str, max_tokens: usize) -> Result<String, String> {
        let encoded = self
            .model
            .tokenizer
            .encode_text(text)
            .map_err(|e| e.to_string())?;
        let n = encoded.offsets.len();
        if n <= max_tokens {
            return Ok(text.to_owned());
        }
        // Cut at token boundaries in the text itself (no decode round trip): the first half
        // and the last half of the tokens, as LongBench's `pred.py` keeps them.
        let head = max_tokens / 2;
        let tail = max_tokens - head;
        let head_end = if head == 0 {
            0
        } else {
            encoded.offsets[head - 1].1
        };
        let tail_start = if tail == 0 {
            text.len()
        } else {
            encoded.offsets[n - tail].0
        };
        match (text.get(..head_end), text.get(tail_start.max(head_end)..)) {
            (Some(first), Some(last)) => Ok(format!("{first}{last}")),
            _ => Err(format!(
                "token offsets {head_end} and {tail_start} do not fall on character boundaries"
            )),
        }
    }
}

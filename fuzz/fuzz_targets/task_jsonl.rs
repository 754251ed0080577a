//! A task set's JSON Lines file from the fuzzer's bytes, loaded as LongBench, L-Eval and
//! LongEval load theirs (with a whitespace tokenizer standing in for the model's).

#![no_main]

use std::sync::OnceLock;

use judgeq::tasks::{TaskTokenizer, load_leval, load_longbench, load_longeval};
use libfuzzer_sys::fuzz_target;

/// Context the loaders fit prompts into, in words.
const CONTEXT: usize = 64;

/// Every whitespace-separated word is a token.
struct Words;

impl TaskTokenizer for Words {
    fn prompt_tokens(&self, context: &str, question: &str, prefix: &str) -> Result<usize, String> {
        Ok([context, question, prefix]
            .iter()
            .map(|text| text.split_whitespace().count())
            .sum())
    }

    fn text_tokens(&self, text: &str) -> Result<usize, String> {
        Ok(text.split_whitespace().count())
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

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    for name in ["qasper", "quality", "300_lines"] {
        std::fs::write(dir.path().join(format!("{name}.jsonl")), data).expect("the input written");
    }
    let _ = load_longbench(dir.path(), "qasper", &Words, CONTEXT);
    let _ = load_leval(dir.path(), "quality", &Words, CONTEXT);
    let _ = load_longeval(dir.path(), "300_lines");
});

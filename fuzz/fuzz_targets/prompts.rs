//! A training or held-out prompt file (JSON Lines or a JSON array) from the fuzzer's bytes.

#![no_main]

use std::sync::OnceLock;

use judgeq::judgeq::data::read_prompts;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let path = dir.path().join("prompts.jsonl");
    std::fs::write(&path, data).expect("the input written");
    let _ = read_prompts(&path);
});

//! A GGUF checkpoint from the fuzzer's bytes, opened the way `judgeq` opens a model: header,
//! metadata, configuration, tokenizer, chat template and (when all that holds) the weights.

#![no_main]

use std::sync::OnceLock;

use judgeq::model::{LoadOptions, Model};
use judgeq::progress::Silent;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let path = dir.path().join("fuzz.gguf");
    std::fs::write(&path, data).expect("the input written");
    let _ = Model::load(&path, &LoadOptions::default(), &Silent);
});

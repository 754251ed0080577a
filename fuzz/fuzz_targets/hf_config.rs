//! A Hugging Face `config.json` from the fuzzer's bytes, read by loading its directory (the
//! configuration is read first; the directory has nothing else, so loading stops after it).

#![no_main]

use std::sync::OnceLock;

use judgeq::model::{LoadOptions, Model};
use judgeq::progress::Silent;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    std::fs::write(dir.path().join("config.json"), data).expect("the input written");
    let _ = Model::load(dir.path(), &LoadOptions::default(), &Silent);
});

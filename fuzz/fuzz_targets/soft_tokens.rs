//! A soft-token file from the fuzzer's bytes, read and validated as the CLI and the explorer
//! read one.

#![no_main]

use std::sync::OnceLock;

use judgeq::judgeq::SoftTokens;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"));
    let path = dir.path().join("fuzz.safetensors");
    std::fs::write(&path, data).expect("the input written");
    let _ = SoftTokens::read(&path);
});

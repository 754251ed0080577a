//! A `model.safetensors` from the fuzzer's bytes in an otherwise valid tiny Hugging Face model
//! directory (config, tokenizer and chat template written by `scripts/fuzz.sh` under
//! `fuzz/seeds/hf_fixture`), loaded the way `judgeq` loads a model.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use judgeq::model::{LoadOptions, Model};
use judgeq::progress::Silent;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

/// A temporary model directory holding copies of the fixture's files.
fn model_dir() -> tempfile::TempDir {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/hf_fixture");
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/fuzz.sh writes it)",
                fixture.join(name).display()
            )
        });
    }
    dir
}

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(model_dir);
    std::fs::write(dir.path().join("model.safetensors"), data).expect("the input written");
    let _ = Model::load(dir.path(), &LoadOptions::default(), &Silent);
});

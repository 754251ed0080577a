//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found or aimed at that once crashed a
//! reader: each must now be refused with an error that names the file, never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use candle_core::quantized::gguf_file::Value as GgufValue;
use common::tiny_checkpoint::{TinySpec, write_gguf};
use judgeq::model::{LoadOptions, Model};
use judgeq::progress::Silent;

/// A GGUF file whose `general.alignment` is 0: candle rounds the tensor data's offset up to a
/// multiple of it and divided by zero.
#[test]
fn a_gguf_alignment_of_zero_is_refused() {
    for zero in [GgufValue::U32(0), GgufValue::U8(0), GgufValue::I32(0)] {
        let tiny = write_gguf(&TinySpec::qwen2(), &[("general.alignment", zero)]);
        let err = Model::load(&tiny.path, &LoadOptions::default(), &Silent)
            .expect_err("an alignment of 0 is refused");
        let message = err.to_string();
        assert!(
            message.contains(&tiny.path.display().to_string()),
            "{message}"
        );
        assert!(message.contains("`general.alignment` is 0"), "{message}");
    }
}

/// A GGUF file that claims 16 million blocks (found by the `gguf` target): the loader listed
/// every tensor of every claimed block before checking the first one and ran out of memory.
/// Now it stops at the first missing block, and even `u32::MAX` blocks answer at once.
#[test]
fn a_gguf_claiming_millions_of_blocks_is_refused_without_allocating_them() {
    let spec = TinySpec::qwen2();
    for blocks in [16_187_393, u32::MAX] {
        let tiny = write_gguf(&spec, &[("qwen2.block_count", GgufValue::U32(blocks))]);
        let err = Model::load(&tiny.path, &LoadOptions::default(), &Silent)
            .expect_err("blocks absent from the file are refused");
        let message = err.to_string();
        assert_eq!(
            message,
            format!(
                "{}: tensor `blk.{}.attn_norm.weight` is missing",
                tiny.path.display(),
                spec.layers
            )
        );
    }
}

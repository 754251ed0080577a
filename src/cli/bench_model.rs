//! What `judgeq bench` runs on: a checkpoint, or random weights of a named shape (built in
//! memory, or for Llama-3.1-8B's shape written as a Hugging Face checkpoint and loaded back
//! through the real loading path).

use anyhow::Context;
use clap::ValueEnum;
use judgeq::model::bench::{default_model_shape, llama31_8b_shape, tiny_shape};
use judgeq::model::random_checkpoint::write_random_checkpoint;
use judgeq::model::{ModelConfig, Transformer, load_transformer};
use judgeq::progress::Progress;

use super::model_args::ModelArgs;

/// Vocabulary of the random Llama-3.1-8B checkpoint: small, so the file is mostly the blocks
/// (a prefill's cost does not depend on it: the LM head runs on the last row only).
const LLAMA_VOCAB: usize = 1024;

/// Shapes of random weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    /// The default model's (SmolLM2-135M: 30 layers, hidden 576), built in memory.
    #[value(name = "smollm2-135m")]
    Smollm2,
    /// 2 layers, hidden 64, vocabulary 256: numbers, not speed.
    Tiny,
    /// Llama-3.1-8B's (32 layers, hidden 4096, 32 query heads over 8 KV heads of 128, FFN
    /// 14336) with a vocabulary of 1024, written as a Hugging Face checkpoint into a temporary
    /// folder and loaded back.
    #[value(name = "llama-3.1-8b")]
    Llama8b,
}

impl Shape {
    /// The shape's configuration with `layers` blocks, or its own number.
    fn config(self, layers: Option<usize>) -> ModelConfig {
        let mut config = match self {
            Shape::Smollm2 => default_model_shape(),
            Shape::Tiny => tiny_shape(),
            Shape::Llama8b => llama31_8b_shape(32, LLAMA_VOCAB),
        };
        if let Some(layers) = layers {
            config.num_layers = layers;
        }
        config
    }

    fn label(self) -> &'static str {
        match self {
            Shape::Smollm2 => "the default model's shape",
            Shape::Tiny => "a tiny shape",
            Shape::Llama8b => "Llama-3.1-8B's shape",
        }
    }
}

/// Random weights of `shape` (seed 1), or `model`'s checkpoint when `shape` is `None`; the
/// name to print and the transformer, on `model`'s device and dtype.
pub fn load_bench_model(
    shape: Option<Shape>,
    layers: Option<usize>,
    model: &ModelArgs,
    progress: &dyn Progress,
) -> anyhow::Result<(String, Transformer)> {
    let Some(shape) = shape else {
        let loaded = model.load(progress)?;
        return Ok((loaded.info.id, loaded.transformer));
    };
    let options = model.load_options()?;
    let config = shape.config(layers);
    let layers = config.num_layers;
    let name = format!(
        "random weights in {} ({layers} layer{})",
        shape.label(),
        if layers == 1 { "" } else { "s" }
    );
    let transformer = if shape == Shape::Llama8b {
        let dir = tempfile::Builder::new()
            .prefix("judgeq-random-llama-")
            .tempdir()
            .context("could not make a temporary folder for the random checkpoint")?;
        write_random_checkpoint(dir.path(), &config, options.dtype, 1, progress).with_context(
            || {
                format!(
                    "could not write the random checkpoint into {}",
                    dir.path().display()
                )
            },
        )?;
        load_transformer(dir.path(), &options, progress).with_context(|| {
            format!(
                "could not load the random checkpoint {}",
                dir.path().display()
            )
        })?
    } else {
        Transformer::random(config, 1, options.device, options.dtype)?
    };
    Ok((name, transformer))
}

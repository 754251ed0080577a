//! Benchmark: one training step (prompt prefill without a graph, then forward and backward
//! through the soft positions, then Adam) against one plain prefill of the same prompt.
//! `judgeq bench` (or `judgeq train --bench`) calls [`step_benchmark`].

use std::time::Instant;

use candle_core::{DType, Tensor, Var};
use ndarray::Array3;

use crate::judgeq::error::Result;
use crate::judgeq::objective::ObjectiveSettings;
use crate::judgeq::optimizer::{Adam, AdamSettings, AdamState};
use crate::judgeq::step::{loss_and_gradient, prefill_prompt, target_tensor};
use crate::model::Transformer;
use crate::progress::Progress;
use crate::rng::SplitMix64;

/// Timings at one prompt length (medians over the repeats).
#[derive(Clone, Debug, PartialEq)]
pub struct StepBenchRow {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Soft tokens.
    pub soft_tokens: usize,
    /// One plain prefill of the prompt, seconds.
    pub prefill_seconds: f64,
    /// Soft positions only: forward, backward and the Adam update, seconds.
    pub soft_seconds: f64,
    /// A whole training step (prefill + soft positions), seconds.
    pub step_seconds: f64,
}

impl StepBenchRow {
    /// Step time over prefill time (the goal is at most 1.5).
    pub fn ratio(&self) -> f64 {
        self.step_seconds / self.prefill_seconds
    }
}

/// Times `repeats` training steps and plain prefills at each of `lengths` (after one
/// warm-up of each), with `soft_tokens` soft tokens and a uniform target.
pub fn step_benchmark(
    transformer: &Transformer,
    lengths: &[usize],
    soft_tokens: usize,
    repeats: usize,
    progress: &dyn Progress,
) -> Result<Vec<StepBenchRow>> {
    let c = &transformer.config;
    let mut rng = SplitMix64::new(7);
    let soft = Var::from_tensor(
        &Tensor::from_vec(
            (0..soft_tokens * c.hidden_size)
                .map(|_| (rng.normal() * 0.1) as f32)
                .collect::<Vec<_>>(),
            (soft_tokens, c.hidden_size),
            &transformer.device,
        )?
        .to_dtype(DType::F32)?,
    )?;
    let mut adam = Adam::new(
        AdamSettings::default(),
        &AdamState::zeros(soft_tokens, c.hidden_size),
        &transformer.device,
    )?;
    let objective = ObjectiveSettings::default();
    let mut rows = Vec::with_capacity(lengths.len());
    for &n in lengths {
        let ids: Vec<u32> = (0..n).map(|_| rng.below(c.vocab_size) as u32).collect();
        let target = target_tensor(
            transformer,
            &Array3::from_elem((c.num_layers, c.num_heads, n), 1.0 / n as f32),
        )?;
        let mut prefills = Vec::new();
        let mut softs = Vec::new();
        for round in 0..=repeats.max(1) {
            let start = Instant::now();
            let cache = prefill_prompt(transformer, &ids, progress)?;
            let prefilled = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let step = loss_and_gradient(transformer, &cache, &soft, &target, &objective)?;
            adam.step(&soft, &step.gradient)?;
            let soft_part = start.elapsed().as_secs_f64();
            if round > 0 {
                prefills.push(prefilled);
                softs.push(soft_part);
            }
        }
        let prefill_seconds = median(&mut prefills);
        let soft_seconds = median(&mut softs);
        rows.push(StepBenchRow {
            prompt_tokens: n,
            soft_tokens,
            prefill_seconds,
            soft_seconds,
            step_seconds: prefill_seconds + soft_seconds,
        });
    }
    Ok(rows)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

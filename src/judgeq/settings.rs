//! Everything a training run is set up with, and what it records about its data and progress.
//! All of it is stored in checkpoints and in the soft-token file's `training` metadata.

use serde::{Deserialize, Serialize};

use crate::judgeq::error::{Result, TrainError};
use crate::judgeq::fitting::TooLong;
use crate::judgeq::init::SoftInit;
use crate::judgeq::objective::ObjectiveSettings;
use crate::judgeq::optimizer::AdamSettings;
use crate::judgeq::soft_tokens::{MAX_COUNT, MIN_COUNT};
use crate::judgeq::targets::TargetSettings;

/// Settings of a training run. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    /// Soft tokens trained (default 32, the paper's choice).
    pub soft_tokens: usize,
    /// Initialisation (default copies of random vocabulary embeddings).
    pub init: SoftInit,
    /// Adam's hyper-parameters (default learning rate 1e-2).
    pub adam: AdamSettings,
    /// Passes over the training examples (default 2).
    pub epochs: usize,
    /// Stop after this many optimizer steps, if set; 0 writes the initial soft tokens with
    /// their validation loss (an untrained baseline).
    pub max_steps: Option<usize>,
    /// Examples whose gradients are averaged into one optimizer step (default 1).
    pub accumulate: usize,
    /// Seed of the split, the example order and the initialisation (default 0).
    pub seed: u64,
    /// Share of the examples held out for the validation loss (default 0.1).
    pub val_fraction: f64,
    /// Longest prompt in tokens, chat template included (default 2048).
    pub max_prompt_tokens: usize,
    /// What happens to longer prompts (default: truncated in the middle).
    pub too_long: TooLong,
    /// How targets are made (default: answers of up to 128 tokens).
    pub target: TargetSettings,
    /// The loss (default MSE over every layer and head, rows not renormalised).
    pub objective: ObjectiveSettings,
    /// Checkpoint every this many optimizer steps, besides every epoch end (default 25).
    pub checkpoint_every: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            soft_tokens: 32,
            init: SoftInit::default(),
            adam: AdamSettings::default(),
            epochs: 2,
            max_steps: None,
            accumulate: 1,
            seed: 0,
            val_fraction: 0.1,
            max_prompt_tokens: 2048,
            too_long: TooLong::default(),
            target: TargetSettings::default(),
            objective: ObjectiveSettings::default(),
            checkpoint_every: 25,
        }
    }
}

impl TrainSettings {
    /// Checks ranges, and that a prompt, its soft tokens and its answer fit a context of
    /// `max_context` tokens.
    pub fn validate(&self, max_context: usize) -> Result<()> {
        let bad = |message: String| Err(TrainError::InvalidSetting(message));
        if !(MIN_COUNT..=MAX_COUNT).contains(&self.soft_tokens) {
            return bad(format!(
                "--soft-tokens {} is out of range: use {MIN_COUNT} to {MAX_COUNT} (the paper uses 32)",
                self.soft_tokens
            ));
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("--epochs must be at least 1".into());
        }
        if self.accumulate == 0 {
            return bad("--accumulate must be at least 1".into());
        }
        if self.checkpoint_every == 0 {
            return bad("--checkpoint-every must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad(format!(
                "--val-fraction {} must be in [0, 1)",
                self.val_fraction
            ));
        }
        if self.target.max_response_tokens == 0 {
            return bad("--max-response-tokens must be at least 1".into());
        }
        if let Some(h) = self.target.half_life
            && !(h.is_finite() && h > 0.0)
        {
            return bad(format!(
                "--target-half-life {h} must be a positive number of tokens"
            ));
        }
        let share = self.objective.top_k_mass_share;
        if !(0.0..=1.0).contains(&share) {
            return bad(format!("--loss-top-k-mass-share {share} must be in [0, 1]"));
        }
        if !self.objective.pooling.has_valid_kernel() {
            return bad(format!(
                "--loss-pooling {}: the kernel must be odd, as at inference (e.g. max7)",
                self.objective.pooling.label()
            ));
        }
        if self.max_prompt_tokens < 16 {
            return bad("--max-prompt-tokens must be at least 16".into());
        }
        let needed = self.max_prompt_tokens + self.soft_tokens.max(self.target.max_response_tokens);
        if needed > max_context {
            return bad(format!(
                "--max-prompt-tokens {} plus {} soft or answer tokens exceeds the model's context of {max_context}",
                self.max_prompt_tokens,
                self.soft_tokens.max(self.target.max_response_tokens)
            ));
        }
        Ok(())
    }

    /// Why a checkpoint made with `saved` cannot be continued with these settings, if it
    /// cannot. Only the length of the run (epochs, steps) and the checkpoint interval may
    /// change on resume.
    pub fn resume_conflict(&self, saved: &TrainSettings) -> Option<String> {
        let comparable = TrainSettings {
            epochs: self.epochs,
            max_steps: self.max_steps,
            checkpoint_every: self.checkpoint_every,
            ..saved.clone()
        };
        if &comparable == self {
            return None;
        }
        let (Ok(serde_json::Value::Object(now)), Ok(serde_json::Value::Object(then))) = (
            serde_json::to_value(self),
            serde_json::to_value(&comparable),
        ) else {
            return Some("the settings differ".into());
        };
        let differing: Vec<String> = now
            .iter()
            .filter(|(key, value)| then.get(*key) != Some(value))
            .map(|(key, value)| {
                let saved = then.get(key).map_or("?".into(), |v| v.to_string());
                format!("{key} is {value} now but {saved} in the checkpoint")
            })
            .collect();
        Some(differing.join("; "))
    }
}

/// What the training data gave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Name of the data file.
    pub file_name: String,
    /// sha256 of the data file.
    pub sha256: String,
    /// Usable records in the file.
    pub records: usize,
    /// Conversations without a human turn.
    pub skipped_no_human_turn: usize,
    /// Empty prompts.
    pub skipped_empty: usize,
    /// Prompts cut to the length limit.
    pub truncated: usize,
    /// Prompts left out for their length.
    pub skipped_too_long: usize,
    /// Prompts whose greedy answer was empty (no target).
    pub empty_answers: usize,
    /// Training examples.
    pub train_examples: usize,
    /// Validation examples.
    pub val_examples: usize,
    /// Prompt tokens of the training examples, summed.
    pub train_prompt_tokens: usize,
}

/// Losses at the end of an epoch (epoch 0: before training).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch; 0 is the state before the first step.
    pub epoch: usize,
    /// Optimizer steps taken so far.
    pub optimizer_steps: usize,
    /// Mean training loss over the epoch's steps (taken before each update).
    pub train_loss: Option<f64>,
    /// Mean loss over the validation examples at the end of the epoch.
    pub val_loss: Option<f64>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_setting() {
        let ok = TrainSettings::default();
        ok.validate(8192).unwrap();
        let many = TrainSettings {
            soft_tokens: 1000,
            ..ok.clone()
        };
        assert!(
            many.validate(8192)
                .unwrap_err()
                .to_string()
                .contains("--soft-tokens 1000")
        );
        let long = TrainSettings {
            max_prompt_tokens: 8100,
            ..ok.clone()
        };
        assert!(
            long.validate(8192)
                .unwrap_err()
                .to_string()
                .contains("context of 8192")
        );
        let fraction = TrainSettings {
            val_fraction: 1.0,
            ..ok.clone()
        };
        assert!(fraction.validate(8192).is_err());
        let mut share = ok;
        share.objective.top_k_mass_share = 1.5;
        assert!(
            share
                .validate(8192)
                .unwrap_err()
                .to_string()
                .contains("--loss-top-k-mass-share 1.5")
        );
    }

    #[test]
    fn resume_allows_a_longer_run_but_not_other_settings() {
        let saved = TrainSettings::default();
        let longer = TrainSettings {
            epochs: 5,
            max_steps: Some(100),
            ..saved.clone()
        };
        assert_eq!(longer.resume_conflict(&saved), None);
        let other = TrainSettings {
            seed: 3,
            soft_tokens: 16,
            ..saved.clone()
        };
        let conflict = other.resume_conflict(&saved).unwrap();
        assert!(conflict.contains("seed is 3 now but 0"), "{conflict}");
        assert!(
            conflict.contains("soft_tokens is 16 now but 32"),
            "{conflict}"
        );
    }
}

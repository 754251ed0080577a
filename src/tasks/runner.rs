//! The task runner: each sample is prefilled once (prompt, last-window capture, soft tokens,
//! the full-cache answer whose queries are the oracle's), every method is ranked once, and the
//! answers under every method's kept set at every budget are decoded from that one prefill.

use std::ops::Range;
use std::path::Path;

use ndarray::{Array2, Axis};

use crate::attention::KeepMask;
use crate::eval::Method;
use crate::export::AnswerAgreement;
use crate::inspect::{InspectRequest, inspect_prompt};
use crate::judgeq::SoftTokens;
use crate::model::{Model, ModelError};
use crate::policy::policies::oracle;
use crate::policy::{
    AskedBudget, Input, PolicyBank, PolicyId, PolicyMetrics, PolicySettings, Ratio, ScoreInputs,
    prefill_capture,
};
use crate::progress::Progress;
use crate::session::{QuestionPlacement, Session};
use crate::tasks::TaskSample;
use crate::tasks::journal::{CellResult, Journal, Prediction, SampleResult};
use crate::tasks::metrics::score;
use crate::tasks::run_error::RunError;

/// How a run evaluates its samples.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The methods, in table order. Full KV is always evaluated besides them.
    pub methods: Vec<Method>,
    /// KV entries kept per layer and head (unused when `ratios` are given).
    pub budgets: Vec<usize>,
    /// Budgets as ratios removed, resolved per sample ([`Ratio::kept`]); when not empty they
    /// replace `budgets`.
    pub ratios: Vec<Ratio>,
    /// Last-window rows captured.
    pub window: usize,
    /// Where the question goes, and whether eviction sees it.
    pub placement: QuestionPlacement,
}

impl RunSettings {
    /// The budgets as asked: the ratios when any were given, the entries otherwise.
    pub fn asked(&self) -> Vec<AskedBudget> {
        AskedBudget::list(&self.budgets, &self.ratios)
    }

    /// Checks the budgets and methods before any model work.
    pub fn validate(&self) -> Result<(), RunError> {
        if let Some(i) =
            (0..self.ratios.len()).find(|&i| self.ratios[..i].contains(&self.ratios[i]))
        {
            return Err(RunError::InvalidSetting(format!(
                "the ratio {} is listed twice",
                self.ratios[i]
            )));
        }
        if !self.ratios.is_empty() {
            return self.validate_methods();
        }
        if self.budgets.is_empty() || self.budgets.contains(&0) {
            return Err(RunError::InvalidSetting(
                "budgets must be at least 1 (e.g. --budgets 64,128,256,512)".into(),
            ));
        }
        let mut sorted = self.budgets.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.budgets.len() {
            return Err(RunError::InvalidSetting(format!(
                "budgets repeat: {:?}",
                self.budgets
            )));
        }
        self.validate_methods()
    }

    /// Refuses a method listed twice, a method's invalid settings and an empty window.
    fn validate_methods(&self) -> Result<(), RunError> {
        for (i, method) in self.methods.iter().enumerate() {
            if self.methods[..i].iter().any(|m| m.id == method.id) {
                return Err(RunError::InvalidSetting(format!(
                    "the method `{}` is listed twice",
                    method.id
                )));
            }
            method.settings.validate()?;
        }
        if self.window == 0 {
            return Err(RunError::InvalidSetting(
                "the window must hold at least 1 token".into(),
            ));
        }
        Ok(())
    }

    /// Whether any method scores with soft tokens.
    pub fn needs_soft_tokens(&self) -> bool {
        self.methods
            .iter()
            .any(|m| m.policy.needs(&m.settings).contains(&Input::Soft))
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// Samples evaluated by this call.
    pub evaluated: usize,
    /// Samples that were already in the journal.
    pub resumed: usize,
    /// Whether the run stopped early (Ctrl-C); the journal keeps what finished.
    pub cancelled: bool,
}

/// Evaluates the `samples` not yet in `journal`, appending each to it as it finishes.
/// `on_sample(done, total)` is called after each sample (`done` counts resumed ones too).
pub fn run(
    model: &Model,
    samples: &[TaskSample],
    soft: Option<(&SoftTokens, &Path)>,
    settings: &RunSettings,
    journal: &mut Journal,
    progress: &dyn Progress,
    on_sample: &dyn Fn(usize, usize),
) -> Result<RunOutcome, RunError> {
    settings.validate()?;
    if settings.needs_soft_tokens() && soft.is_none() {
        return Err(RunError::InvalidSetting(
            "the Judge Q rows need soft tokens (--soft FILE; the shipped ones are for the default model only)".into(),
        ));
    }
    let resumed = samples
        .iter()
        .filter(|s| journal.done().contains_key(&s.index))
        .count();
    let mut outcome = RunOutcome {
        evaluated: 0,
        resumed,
        cancelled: false,
    };
    for sample in samples {
        if journal.done().contains_key(&sample.index) {
            continue;
        }
        if progress.is_cancelled() {
            outcome.cancelled = true;
            break;
        }
        match evaluate_sample(model, sample, soft, settings, progress) {
            Ok(result) => journal.append(result)?,
            Err(RunError::Model(ModelError::Cancelled)) => {
                outcome.cancelled = true;
                break;
            }
            Err(other) => return Err(other),
        }
        outcome.evaluated += 1;
        on_sample(resumed + outcome.evaluated, samples.len());
    }
    Ok(outcome)
}

/// One sample: one prefill, every method at every budget.
pub fn evaluate_sample(
    model: &Model,
    sample: &TaskSample,
    soft: Option<(&SoftTokens, &Path)>,
    settings: &RunSettings,
    progress: &dyn Progress,
) -> Result<SampleResult, RunError> {
    let mut result = SampleResult {
        index: sample.index,
        id: sample.id.clone(),
        task: sample.task.clone(),
        fields: sample.fields.clone(),
        question: sample.question.clone(),
        answer_prefix: sample.answer_prefix.clone(),
        answers: sample.answers.clone(),
        metric: sample.metric.key().to_owned(),
        prompt_tokens: 0,
        evidence_tokens: 0,
        skipped: None,
        full: None,
        cells: Vec::new(),
    };
    let built = model.placed_task_prompt(
        &sample.context,
        &sample.question,
        &sample.answer_prefix,
        &sample.evidence,
        settings.placement,
    );
    let (prompt, evidence) = match built {
        Ok(built) => built,
        Err(ModelError::Cancelled) => return Err(ModelError::Cancelled.into()),
        Err(reason) => return Ok(skipped(result, reason.to_string())),
    };
    result.prompt_tokens = prompt.total_len();
    let scored = prompt.scored.len();
    let widest = settings
        .methods
        .iter()
        .map(|m| m.settings.pooling.kernel())
        .max();
    if let Some(kernel) = widest.filter(|&k| k > scored) {
        return Ok(skipped(
            result,
            format!(
                "the prompt's {scored} scored tokens are fewer than the pooling kernel's {kernel}"
            ),
        ));
    }
    let evidence: Vec<usize> = merged_positions(&evidence);
    result.evidence_tokens = evidence.len();
    let request = InspectRequest {
        document: String::new(),
        question: String::new(),
        placement: settings.placement,
        window: settings.window.min(scored),
        decode_tokens: sample.max_new_tokens,
        soft: soft.map(|(tokens, path)| (path.to_path_buf(), tokens.clone())),
        capture: prefill_capture(settings.methods.iter().map(|m| (m.policy, &m.settings))),
    };
    let (session, mut prefilled) = match inspect_prompt(model, prompt, &request, progress) {
        Ok(inspected) => inspected,
        Err(ModelError::Cancelled) => return Err(ModelError::Cancelled.into()),
        Err(reason @ (ModelError::InvalidArgument(_) | ModelError::PromptTooLong { .. })) => {
            return Ok(skipped(result, reason.to_string()));
        }
        Err(other) => return Err(other.into()),
    };
    result.full = Some(Prediction {
        predicted_answer: session.answer.text.clone(),
        score: score(&sample.metric, &session.answer.text, &sample.answers),
    });

    let planned = plan_cells(&session, settings)?;
    let masks: Vec<(String, KeepMask)> = planned
        .iter()
        .map(|cell| (cell.label.clone(), cell.mask.clone()))
        .collect();
    // Every mask's answer in one batch over the shared prompt cache.
    let answers = prefilled.decode_batch(model, &masks, sample.max_new_tokens, progress)?;
    for (cell, answer) in planned.into_iter().zip(answers) {
        let agreement = AnswerAgreement::between(&session.answer, &answer);
        let (evidence_kept, evidence_kept_by_layer) = evidence_share(&cell.mask, &evidence);
        result.cells.push(CellResult {
            method: cell.method,
            budget: cell.budget,
            ratio: cell.ratio,
            score: score(&sample.metric, &answer.text, &sample.answers),
            predicted_answer: answer.text,
            hit_rate: cell.metrics.mean_hit_rate,
            hit_rate_by_layer: mean_over_heads(&cell.metrics.hit_rate),
            hit_rate_pooled_oracle: cell.pooled_hit_rate,
            mass_kept: cell.metrics.mean_mass_kept,
            compression_ratio: removed_share(&cell.mask),
            matched_prefix: agreement.matched_prefix,
            evidence_kept,
            evidence_kept_by_layer,
            note: cell.metrics.note,
        });
    }
    Ok(result)
}

/// A sample recorded as not evaluated, with the reason.
fn skipped(mut result: SampleResult, reason: String) -> SampleResult {
    result.skipped = Some(reason);
    result
}

/// One method at one budget, selected and measured, waiting for its answer.
struct PlannedCell {
    method: String,
    label: String,
    budget: usize,
    ratio: Option<Ratio>,
    mask: KeepMask,
    metrics: PolicyMetrics,
    pooled_hit_rate: f32,
}

/// Every method's kept set and metrics at every budget, in (method, budget) order. Methods
/// with equal settings share one bank, so each distinct setting ranks the keys once.
fn plan_cells(session: &Session, settings: &RunSettings) -> Result<Vec<PlannedCell>, RunError> {
    let inputs = ScoreInputs::from_session(session);
    let mut groups: Vec<(PolicySettings, Vec<usize>)> = Vec::new();
    for (index, method) in settings.methods.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == method.settings) {
            Some((_, members)) => members.push(index),
            None => groups.push((method.settings.clone(), vec![index])),
        }
    }
    let mut cells = Vec::new();
    for (group_settings, members) in &groups {
        let policies: Vec<PolicyId> = members
            .iter()
            .map(|&i| settings.methods[i].policy)
            .collect();
        let raw = group_settings.clone().with(&oracle::POOLED, false);
        let pooled = group_settings.clone().with(&oracle::POOLED, true);
        let bank = PolicyBank::new(&inputs, &raw, &policies)?;
        let pooled_bank = PolicyBank::new(&inputs, &pooled, &policies)?;
        for asked in settings.asked() {
            let budget = asked.budget(inputs.prompt_len())?;
            let against_raw = bank.evaluate(budget)?;
            let against_pooled = pooled_bank.evaluate(budget)?;
            for &index in members {
                let method = &settings.methods[index];
                let find = |all: &[PolicyMetrics]| {
                    all.iter()
                        .find(|m| m.policy == method.policy)
                        .cloned()
                        .ok_or(crate::policy::PolicyError::NotInBank(method.policy))
                };
                let metrics = find(&against_raw)?;
                let pooled_hit_rate = find(&against_pooled)?.mean_hit_rate;
                cells.push((
                    index,
                    PlannedCell {
                        method: method.id.clone(),
                        label: format!("{} at {}", method.label, asked.label_kept(budget.asked())),
                        budget: budget.asked(),
                        ratio: asked.ratio(),
                        mask: bank.select(method.policy, budget)?.mask,
                        metrics,
                        pooled_hit_rate,
                    },
                ));
            }
        }
    }
    cells.sort_by_key(|(index, cell)| (*index, cell.budget));
    Ok(cells.into_iter().map(|(_, cell)| cell).collect())
}

/// Sorted distinct token positions covered by `ranges`.
fn merged_positions(ranges: &[Range<usize>]) -> Vec<usize> {
    let mut positions: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
    positions.sort_unstable();
    positions.dedup();
    positions
}

/// Share of `positions` kept over layers and heads, and per layer (mean over heads); `None` and
/// an empty list without positions.
fn evidence_share(mask: &KeepMask, positions: &[usize]) -> (Option<f32>, Vec<f32>) {
    if positions.is_empty() {
        return (None, Vec::new());
    }
    let by_layer: Vec<f32> = mask
        .axis_iter(Axis(0))
        .map(|layer| {
            let heads = layer.dim().0.max(1);
            let kept: usize = layer
                .axis_iter(Axis(0))
                .map(|head| positions.iter().filter(|&&p| head[p]).count())
                .sum();
            kept as f32 / (heads * positions.len()) as f32
        })
        .collect();
    let overall = by_layer.iter().sum::<f32>() / by_layer.len().max(1) as f32;
    (Some(overall), by_layer)
}

/// The mean of each row of a `[layers, heads]` grid: one value per layer.
fn mean_over_heads(grid: &Array2<f32>) -> Vec<f32> {
    grid.axis_iter(Axis(0))
        .map(|layer| layer.iter().sum::<f32>() / layer.len().max(1) as f32)
        .collect()
}

/// Fraction of the mask's entries that are evicted.
fn removed_share(mask: &KeepMask) -> f64 {
    let total = mask.len().max(1);
    let kept = mask.iter().filter(|&&k| k).count();
    1.0 - kept as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;

    use super::*;

    #[test]
    fn evidence_share_counts_kept_positions_per_layer() {
        // 2 layers, 2 heads, 6 keys; evidence at 1 and 4.
        let mut mask = Array3::from_elem((2, 2, 6), false);
        mask[[0, 0, 1]] = true; // layer 0: head 0 keeps 1 of 2, head 1 none -> 1/4
        mask[[1, 0, 1]] = true; // layer 1: both heads keep both -> 4/4
        mask[[1, 0, 4]] = true;
        mask[[1, 1, 1]] = true;
        mask[[1, 1, 4]] = true;
        let (overall, by_layer) = evidence_share(&mask, &[1, 4]);
        assert_eq!(by_layer, vec![0.25, 1.0]);
        assert_eq!(overall, Some(0.625));
        assert_eq!(evidence_share(&mask, &[]), (None, Vec::new()));
    }

    #[test]
    fn mean_over_heads_averages_each_layers_heads() {
        let grid = ndarray::arr2(&[[0.5f32, 1.0, 0.0], [0.25, 0.25, 1.0]]);
        assert_eq!(mean_over_heads(&grid), vec![0.5, 0.5]);
        assert!(mean_over_heads(&Array2::zeros((0, 4))).is_empty());
    }

    #[test]
    fn removed_share_is_the_evicted_fraction() {
        let mut mask = Array3::from_elem((1, 2, 4), true);
        mask[[0, 1, 0]] = false;
        assert!((removed_share(&mask) - 1.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn overlapping_evidence_ranges_count_each_token_once() {
        assert_eq!(merged_positions(&[3..5, 4..7, 0..1]), vec![0, 3, 4, 5, 6]);
    }
}

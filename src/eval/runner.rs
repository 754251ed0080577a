//! The evaluation: every held-out prompt through the model, every method's kept set scored
//! against the oracle's at every budget (the policy room's hit rate), and answers decoded under
//! eviction compared with the full-cache answer.
//!
//! Hit rates are reported against two oracles, both the policy room's: the top-`B` of the
//! decoded tokens' summed attention as it is (`oracle_pooling` off), and the same after the
//! method's own pooling (`oracle_pooling` on), which compares query sources like with like.

use std::path::Path;

use ndarray::Axis;

use crate::eval::error::EvalError;
use crate::eval::methods::Method;
use crate::export::AnswerAgreement;
use crate::inspect::{InspectRequest, PrefilledPrompt, inspect};
use crate::judgeq::SoftTokens;
use crate::judgeq::data::{PromptFile, PromptText};
use crate::judgeq::fitting::{Fitted, TooLong, fit_prompt};
use crate::model::{Model, ModelError};
use crate::policy::policies::oracle;
use crate::policy::{
    AskedBudget, PolicyBank, PolicyMetrics, PolicySettings, Ratio, ScoreInputs, prefill_capture,
};
use crate::progress::Progress;
use crate::session::{QuestionPlacement, Session};

/// Settings of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSettings {
    /// KV entries kept per layer and head (unused when `ratios` are given).
    pub budgets: Vec<usize>,
    /// Budgets as ratios removed, resolved per prompt ([`Ratio::kept`]); when not empty they
    /// replace `budgets`.
    pub ratios: Vec<Ratio>,
    /// Last-window rows captured (the window policies score with).
    pub window: usize,
    /// Most answer tokens decoded with the full cache (the oracle's queries) and under each
    /// kept set.
    pub decode_tokens: usize,
    /// Whether answers are decoded under eviction (otherwise only the metrics are computed).
    pub decode_under_eviction: bool,
    /// Longest prompt (longer ones are truncated in the middle or skipped).
    pub max_prompt_tokens: usize,
    /// What happens to longer prompts.
    pub too_long: TooLong,
    /// Evaluate at most this many prompts.
    pub limit: Option<usize>,
    /// Where the question goes, and whether eviction sees it.
    pub placement: QuestionPlacement,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            budgets: vec![64, 128, 256],
            ratios: Vec::new(),
            window: 32,
            decode_tokens: 32,
            decode_under_eviction: true,
            max_prompt_tokens: 4096,
            too_long: TooLong::Skip,
            limit: None,
            placement: QuestionPlacement::End,
        }
    }
}

impl EvalSettings {
    /// The budgets as asked: the ratios when any were given, the entries otherwise.
    pub fn asked(&self) -> Vec<AskedBudget> {
        AskedBudget::list(&self.budgets, &self.ratios)
    }
}

/// One method at one budget on one prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Index of the method in the run's list.
    pub method: usize,
    /// The budget: KV entries kept per layer and head on this prompt.
    pub budget: usize,
    /// The ratio removed the budget was resolved from, when budgets were asked as ratios.
    pub ratio: Option<Ratio>,
    /// Mean over layers and heads of |kept ∩ oracle| / |oracle| (oracle unpooled).
    pub hit_rate: f32,
    /// The same against the oracle pooled like the method.
    pub hit_rate_pooled_oracle: f32,
    /// Share of the decoded tokens' prompt attention on kept entries.
    pub mass_kept: f32,
    /// Hit rate per layer (mean over heads), oracle unpooled.
    pub layer_hit_rate: Vec<f32>,
    /// The answer decoded under eviction and its agreement with the full-cache answer.
    pub agreement: Option<AnswerAgreement>,
    /// A remark from the policy (clamps, actual budgets).
    pub note: Option<String>,
}

impl Cell {
    /// The budget as it was asked.
    pub fn asked(&self) -> AskedBudget {
        AskedBudget::of(self.budget, self.ratio)
    }
}

/// One prompt's results.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptResult {
    /// Line (or record) of the prompt in its file.
    pub line: usize,
    /// Prompt tokens (scored and appended).
    pub prompt_tokens: usize,
    /// Whether it was truncated to fit.
    pub truncated: bool,
    /// The full-cache answer.
    pub answer: String,
    /// Its tokens.
    pub answer_tokens: usize,
    /// Every method at every budget.
    pub cells: Vec<Cell>,
}

/// A whole evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRun {
    /// The methods, in table order.
    pub methods: Vec<Method>,
    /// The settings.
    pub settings: EvalSettings,
    /// Per-prompt results, in file order.
    pub prompts: Vec<PromptResult>,
    /// Prompts left out for their length.
    pub skipped_too_long: usize,
    /// Prompts left out for another reason (an empty full-cache answer, a prompt that is not
    /// a document with a question, a window or pooling kernel longer than the prompt), with
    /// their line.
    pub skipped: Vec<(usize, String)>,
    /// Whether the run was cancelled before the end (the results cover the prompts done).
    pub cancelled: bool,
}

/// Evaluates `methods` on the prompts of `data`, with `soft` (and its file name) appended for
/// the Judge Q rows. `on_prompt` is called after each prompt with (done, total).
pub fn evaluate(
    model: &Model,
    data: &PromptFile,
    soft: Option<(&SoftTokens, &Path)>,
    methods: &[Method],
    settings: &EvalSettings,
    progress: &dyn Progress,
    on_prompt: &dyn Fn(usize, usize),
) -> Result<EvalRun, EvalError> {
    if settings.decode_tokens == 0 {
        return Err(EvalError::InvalidSetting(
            "the oracle needs at least one decoded token (--decode 1 or more)".into(),
        ));
    }
    if settings.ratios.is_empty() && (settings.budgets.is_empty() || settings.budgets.contains(&0))
    {
        return Err(EvalError::InvalidSetting(
            "budgets must be at least 1 (e.g. --budgets 64,128,256)".into(),
        ));
    }
    if let Some((tokens, path)) = soft {
        tokens
            .check_model(path, &model.info)
            .map_err(|e| EvalError::Data(e.into()))?;
    }
    let records: Vec<_> = data
        .records
        .iter()
        .take(settings.limit.unwrap_or(usize::MAX))
        .collect();
    let mut run = EvalRun {
        methods: methods.to_vec(),
        settings: settings.clone(),
        prompts: Vec::new(),
        skipped_too_long: 0,
        skipped: Vec::new(),
        cancelled: false,
    };
    for (done, record) in records.iter().enumerate() {
        if progress.is_cancelled() {
            run.cancelled = true;
            break;
        }
        let fitted = fit_prompt(
            model,
            &record.text,
            settings.max_prompt_tokens,
            settings.too_long,
        )?;
        let (text, prompt_len) = match fitted {
            Fitted::Whole(layout) => (record.text.clone(), layout.len()),
            Fitted::Truncated { text, layout, .. } => (text, layout.len()),
            Fitted::Skipped { .. } => {
                run.skipped_too_long += 1;
                continue;
            }
        };
        let PromptText::Document { document, question } = text else {
            run.skipped
                .push((record.line, "not a document with a question".into()));
            continue;
        };
        if let Some(kernel) = widest_kernel(methods).filter(|&k| k > prompt_len) {
            run.skipped.push((
                record.line,
                format!(
                    "the prompt's {prompt_len} tokens are fewer than the pooling kernel's {kernel}"
                ),
            ));
            continue;
        }
        let request = InspectRequest {
            document,
            question,
            placement: settings.placement,
            window: settings.window,
            decode_tokens: settings.decode_tokens,
            soft: soft.map(|(tokens, path)| (path.to_path_buf(), tokens.clone())),
            capture: prefill_capture(methods.iter().map(|m| (m.policy, &m.settings))),
        };
        let (session, prefilled) = match inspect(model, &request, progress) {
            Ok(inspected) => inspected,
            Err(ModelError::Cancelled) => {
                run.cancelled = true;
                break;
            }
            Err(ModelError::InvalidArgument(reason)) => {
                run.skipped.push((record.line, reason));
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        let truncated = record.text != request_text(&request);
        let prompt_tokens = session.prompt_len() + prefilled.appended_len();
        match evaluate_prompt(model, &session, prefilled, methods, settings, progress) {
            Ok(cells) => run.prompts.push(PromptResult {
                line: record.line,
                prompt_tokens,
                truncated,
                answer: session.answer.text.clone(),
                answer_tokens: session.answer.ids.len(),
                cells,
            }),
            Err(EvalError::Cancelled) => {
                run.cancelled = true;
                break;
            }
            Err(other) => return Err(other),
        }
        on_prompt(done + 1, records.len());
    }
    Ok(run)
}

/// The widest pooling kernel of `methods` (a prompt shorter than it would pool every key
/// together).
fn widest_kernel(methods: &[Method]) -> Option<usize> {
    methods.iter().map(|m| m.settings.pooling.kernel()).max()
}

/// The prompt text an inspection request renders.
fn request_text(request: &InspectRequest) -> PromptText {
    PromptText::Document {
        document: request.document.clone(),
        question: request.question.clone(),
    }
}

/// Every method at every budget on one inspected prompt.
fn evaluate_prompt(
    model: &Model,
    session: &Session,
    mut prefilled: PrefilledPrompt,
    methods: &[Method],
    settings: &EvalSettings,
    progress: &dyn Progress,
) -> Result<Vec<Cell>, EvalError> {
    let inputs = ScoreInputs::from_session(session);

    // Banks per distinct settings, each with the plain and the pooled oracle.
    let mut groups: Vec<(PolicySettings, Vec<usize>)> = Vec::new();
    for (index, method) in methods.iter().enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == method.settings) {
            Some((_, members)) => members.push(index),
            None => groups.push((method.settings.clone(), vec![index])),
        }
    }
    let mut cells = Vec::new();
    for (policy_settings, members) in &groups {
        let policies: Vec<_> = members.iter().map(|&i| methods[i].policy).collect();
        let unpooled_oracle = policy_settings.clone().with(&oracle::POOLED, false);
        let pooled_oracle = policy_settings.clone().with(&oracle::POOLED, true);
        let bank = PolicyBank::new(&inputs, &unpooled_oracle, &policies)?;
        let pooled_bank = PolicyBank::new(&inputs, &pooled_oracle, &policies)?;
        for asked in settings.asked() {
            let budget = asked.budget(inputs.prompt_len())?;
            let plain = bank.evaluate(budget)?;
            let pooled = pooled_bank.evaluate(budget)?;
            for &index in members {
                let method = &methods[index];
                let find = |all: &[PolicyMetrics]| {
                    all.iter()
                        .find(|m| m.policy == method.policy)
                        .cloned()
                        .ok_or(crate::policy::PolicyError::NotInBank(method.policy))
                };
                let metrics = find(&plain)?;
                let against_pooled = find(&pooled)?;
                let agreement = if settings.decode_under_eviction {
                    let mask = bank.select(method.policy, budget)?.mask;
                    let answer = prefilled.decode_under(
                        model,
                        &mask,
                        settings.decode_tokens,
                        &method.label,
                        progress,
                    )?;
                    Some(AnswerAgreement::between(&session.answer, &answer))
                } else {
                    None
                };
                cells.push(Cell {
                    method: index,
                    budget: budget.asked(),
                    ratio: asked.ratio(),
                    hit_rate: metrics.mean_hit_rate,
                    hit_rate_pooled_oracle: against_pooled.mean_hit_rate,
                    mass_kept: metrics.mean_mass_kept,
                    layer_hit_rate: metrics
                        .hit_rate
                        .mean_axis(Axis(1))
                        .map(|a| a.to_vec())
                        .unwrap_or_default(),
                    agreement,
                    note: metrics.note,
                });
            }
        }
    }
    cells.sort_by_key(|c| (c.method, c.budget));
    Ok(cells)
}

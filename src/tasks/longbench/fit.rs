//! LongBench's way of fitting a long prompt: tokens cut from the middle of the context until
//! the prompt and the answer fit the model's context.

use crate::tasks::{DataError, TaskSample, TaskTokenizer};

/// Cuts attempted before giving up (each one shrinks the kept tokens by the overshoot of the
/// previous, which token merges at the cut keep small).
const ATTEMPTS: usize = 8;

/// Cuts the middle of `sample.context` so that its prompt plus `sample.max_new_tokens` fits
/// `max_context` tokens; returns whether it cut.
pub(super) fn fit_middle(
    sample: &mut TaskSample,
    tokenizer: &dyn TaskTokenizer,
    max_context: usize,
) -> Result<bool, DataError> {
    let does_not_fit = |reason: String| DataError::DoesNotFit {
        id: sample.id.clone(),
        max_context,
        max_new_tokens: sample.max_new_tokens,
        reason,
    };
    let tokenizer_failed = |message: String| DataError::Tokenizer {
        id: sample.id.clone(),
        message,
    };
    let limit = max_context
        .checked_sub(sample.max_new_tokens)
        .filter(|&limit| limit > 0)
        .ok_or_else(|| does_not_fit("the answer alone fills the context".into()))?;
    let prompt_tokens = |context: &str| {
        tokenizer
            .prompt_tokens(context, &sample.question, &sample.answer_prefix)
            .map_err(tokenizer_failed)
    };
    let mut total = prompt_tokens(&sample.context)?;
    if total <= limit {
        return Ok(false);
    }
    let context_tokens = tokenizer
        .text_tokens(&sample.context)
        .map_err(tokenizer_failed)?;
    let rest = total.saturating_sub(context_tokens);
    let mut keep = limit.saturating_sub(rest);
    for _ in 0..ATTEMPTS {
        if keep == 0 {
            return Err(does_not_fit(format!(
                "the prompt without its context takes {rest} tokens"
            )));
        }
        let cut = tokenizer
            .truncate_middle(&sample.context, keep)
            .map_err(tokenizer_failed)?;
        total = prompt_tokens(&cut)?;
        if total <= limit {
            sample.context = cut;
            return Ok(true);
        }
        keep = keep.saturating_sub(total - limit);
    }
    Err(does_not_fit(format!(
        "after {ATTEMPTS} cuts the prompt still takes {total} tokens"
    )))
}

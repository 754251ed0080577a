//! How far two runs of the same model and prompt agree: another dtype (bf16 against f32) or
//! another device (a GPU against the CPU). Both runs prefill the prompt capturing the last
//! window's attention rows, then take the same greedy continuation (the reference's) one token at
//! a time, capturing each token's row over the prompt; the figures compare the logits at every
//! step, the greedy choices, and the captured rows.

use candle_core::{D, DType};

use super::capture::Capture;
use super::error::{ModelError, Result};
use super::transformer::Transformer;
use crate::attention::AttentionRows;
use crate::progress::{Progress, Stage};

/// What both runs do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementRequest {
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
    /// Last prompt rows whose attention is captured (the window).
    pub window: usize,
    /// Greedy tokens decoded after the prompt, each capturing its row over the prompt.
    pub decode_tokens: usize,
    /// Keys compared per row by the top-k overlap.
    pub top_k: usize,
}

/// A step where the two runs' greedy choices differ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disagreement {
    /// 0 for the prefill's last logits, `i` after the `i`-th decoded token.
    pub step: usize,
    /// The reference's most likely token.
    pub reference_token: u32,
    /// The other run's most likely token.
    pub other_token: u32,
    /// How far apart the two tokens are in the reference's logits (`>= 0`): a disagreement
    /// is a rounding effect when this is within the logits' error.
    pub reference_margin: f32,
}

/// How close two sets of captured rows `[layers, heads, rows, keys]` are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowsAgreement {
    /// Rows compared (over every layer and head).
    pub rows: usize,
    /// Largest difference of one probability.
    pub max_abs: f32,
    /// Keys in each row's top-k (`min(top_k, keys)`).
    pub k: usize,
    /// Mean share of a row's top-k keys found in the other's top-k, in `[0, 1]`.
    pub mean_top_k_overlap: f64,
    /// Smallest share over all rows.
    pub min_top_k_overlap: f64,
}

/// Every figure of one comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Logit vectors compared: the prefill's last row and one per decoded token.
    pub steps: usize,
    /// Largest difference of one logit, over every step.
    pub logits_max_abs: f32,
    /// The largest difference over the largest reference logit magnitude at that step (a
    /// relative error of the logit vector, not of single logits near 0).
    pub logits_max_rel: f32,
    /// Steps where both runs pick the same greedy token.
    pub greedy_agree: usize,
    /// The steps where they do not.
    pub disagreements: Vec<Disagreement>,
    /// The window's rows.
    pub window_rows: RowsAgreement,
    /// The decoded tokens' rows over the prompt.
    pub decoded_rows: RowsAgreement,
}

/// What one run recorded.
struct Trace {
    /// Logits `[vocab]` of the prefill's last row, then after each decoded token.
    logits: Vec<Vec<f32>>,
    /// The window's rows.
    window: AttentionRows,
    /// One `[layers, heads, 1, prompt]` per decoded token.
    decoded: Vec<AttentionRows>,
}

/// Runs `request` through `reference` (picking the greedy continuation) and through `other`
/// (fed the same continuation), and compares them.
pub fn compare_runs(
    reference: &Transformer,
    other: &Transformer,
    request: &AgreementRequest,
    progress: &dyn Progress,
) -> Result<Agreement> {
    check(reference, other, request)?;
    let (first, continuation) = trace(reference, request, None, progress)?;
    let (second, _) = trace(other, request, Some(&continuation), progress)?;
    let mut disagreements = Vec::new();
    let (mut max_abs, mut max_rel) = (0f32, 0f32);
    for (step, (a, b)) in first.logits.iter().zip(&second.logits).enumerate() {
        let (step_abs, scale) = logit_error(a, b);
        max_abs = max_abs.max(step_abs);
        max_rel = max_rel.max(step_abs / scale.max(f32::MIN_POSITIVE));
        let (ours, theirs) = (argmax(a), argmax(b));
        if ours != theirs {
            disagreements.push(Disagreement {
                step,
                reference_token: ours as u32,
                other_token: theirs as u32,
                reference_margin: a[ours] - a[theirs],
            });
        }
    }
    let steps = first.logits.len();
    Ok(Agreement {
        steps,
        logits_max_abs: max_abs,
        logits_max_rel: max_rel,
        greedy_agree: steps - disagreements.len(),
        disagreements,
        window_rows: rows_agreement(
            std::slice::from_ref(&first.window),
            std::slice::from_ref(&second.window),
            request.top_k,
        ),
        decoded_rows: rows_agreement(&first.decoded, &second.decoded, request.top_k),
    })
}

fn check(reference: &Transformer, other: &Transformer, request: &AgreementRequest) -> Result<()> {
    let n = request.prompt.len();
    if reference.config != other.config {
        return Err(ModelError::InvalidArgument(
            "the two runs compared must be of the same model (their configurations differ)".into(),
        ));
    }
    if request.window == 0 || request.window > n {
        return Err(ModelError::InvalidArgument(format!(
            "the window must hold between 1 and {n} tokens (the prompt's length), not {}",
            request.window
        )));
    }
    if request.top_k == 0 {
        return Err(ModelError::InvalidArgument(
            "the top-k overlap needs k of at least 1".into(),
        ));
    }
    let positions = n + request.decode_tokens;
    if positions > reference.config.max_position_embeddings {
        return Err(ModelError::InvalidArgument(format!(
            "{n} prompt tokens and {} decoded need {positions} positions; the model has {}",
            request.decode_tokens, reference.config.max_position_embeddings
        )));
    }
    Ok(())
}

/// Prefills the prompt with the window's capture, then decodes `decode_tokens` tokens one at a
/// time: the given continuation, or the greedy one (returned).
fn trace(
    model: &Transformer,
    request: &AgreementRequest,
    continuation: Option<&[u32]>,
    progress: &dyn Progress,
) -> Result<(Trace, Vec<u32>)> {
    let n = request.prompt.len();
    let mut cache = model.new_cache(n + request.decode_tokens)?;
    let prefill = model.forward(
        &model.embed(&request.prompt)?,
        &mut cache,
        &Capture::rows(n - request.window, n),
        progress,
    )?;
    let window = prefill
        .rows
        .ok_or_else(|| ModelError::InvalidArgument("the prefill returned no rows".into()))?;
    let mut logits = vec![logit_vector(&prefill.last_logits)?];
    let mut decoded = Vec::with_capacity(request.decode_tokens);
    let mut fed = Vec::with_capacity(request.decode_tokens);
    for step in 0..request.decode_tokens {
        let token = match continuation {
            Some(tokens) => tokens.get(step).copied().ok_or_else(|| {
                ModelError::InvalidArgument(format!(
                    "the continuation has {} tokens, {} are decoded",
                    tokens.len(),
                    request.decode_tokens
                ))
            })?,
            None => logits.last().map_or(0, |l| argmax(l)) as u32,
        };
        let out = model.forward(
            &model.embed(&[token])?,
            &mut cache,
            &Capture::rows(0, n),
            progress,
        )?;
        decoded.push(out.rows.ok_or_else(|| {
            ModelError::InvalidArgument("a decoding step returned no row".into())
        })?);
        logits.push(logit_vector(&out.last_logits)?);
        fed.push(token);
        progress.update(&Stage::Decoding, step + 1, request.decode_tokens);
    }
    Ok((
        Trace {
            logits,
            window,
            decoded,
        },
        fed,
    ))
}

fn logit_vector(logits: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(logits
        .flatten_to(D::Minus1)?
        .to_dtype(DType::F32)?
        .to_vec1()?)
}

/// Largest `|a - b|` and largest `|a|`.
fn logit_error(a: &[f32], b: &[f32]) -> (f32, f32) {
    a.iter().zip(b).fold((0f32, 0f32), |(err, scale), (x, y)| {
        (err.max((x - y).abs()), scale.max(x.abs()))
    })
}

/// Index of the largest value, the first one on ties (as greedy decoding picks).
pub(crate) fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(best, top), (i, &v)| {
            if v > top { (i, v) } else { (best, top) }
        })
        .0
}

/// Compares rows pairwise: `a[i]` with `b[i]`, each `[layers, heads, rows, keys]`.
fn rows_agreement(a: &[AttentionRows], b: &[AttentionRows], top_k: usize) -> RowsAgreement {
    let mut compared = 0usize;
    let mut max_abs = 0f32;
    let (mut sum, mut min) = (0f64, 1f64);
    let mut k = 0;
    for (x, y) in a.iter().zip(b) {
        for (row_x, row_y) in x.rows().into_iter().zip(y.rows()) {
            let (row_x, row_y) = (row_x.to_vec(), row_y.to_vec());
            for (p, q) in row_x.iter().zip(&row_y) {
                max_abs = max_abs.max((p - q).abs());
            }
            k = top_k.min(row_x.len());
            let overlap = top_k_overlap(&row_x, &row_y, k);
            sum += overlap;
            min = min.min(overlap);
            compared += 1;
        }
    }
    RowsAgreement {
        rows: compared,
        max_abs,
        k,
        mean_top_k_overlap: if compared == 0 {
            1.0
        } else {
            sum / compared as f64
        },
        min_top_k_overlap: min,
    }
}

/// Share of `a`'s `k` largest entries that are among `b`'s `k` largest (ties to the earlier
/// position, as the policies rank).
pub(crate) fn top_k_overlap(a: &[f32], b: &[f32], k: usize) -> f64 {
    if k == 0 {
        return 1.0;
    }
    let top = |values: &[f32]| -> Vec<usize> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&i, &j| values[j].total_cmp(&values[i]).then(i.cmp(&j)));
        order.truncate(k);
        order.sort_unstable();
        order
    };
    let (ta, tb) = (top(a), top(b));
    let shared = ta.iter().filter(|i| tb.binary_search(i).is_ok()).count();
    shared as f64 / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_overlap_counts_shared_keys_with_ties_to_the_earlier_one() {
        let a = [0.1, 0.5, 0.2, 0.9, 0.0];
        let b = [0.3, 0.5, 0.1, 0.8, 0.0];
        // Top 2: {3, 1} in both.
        assert_eq!(top_k_overlap(&a, &b, 2), 1.0);
        // Top 3: {3, 1, 2} against {3, 1, 0}.
        assert!((top_k_overlap(&a, &b, 3) - 2.0 / 3.0).abs() < 1e-12);
        // Ties: [1, 1, 1, 0] ranks keys 0 and 1 first; [0, 1, 1, 1] ranks 1 and 2.
        assert_eq!(
            top_k_overlap(&[1.0, 1.0, 1.0, 0.0], &[0.0, 1.0, 1.0, 1.0], 2),
            0.5
        );
        assert_eq!(top_k_overlap(&a, &b, 0), 1.0);
    }

    #[test]
    fn argmax_takes_the_first_of_equal_values() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, -1.0]), 1);
        assert_eq!(argmax(&[-3.0]), 0);
    }

    #[test]
    fn logit_error_is_the_largest_difference_and_the_largest_magnitude() {
        let (err, scale) = logit_error(&[1.0, -4.0, 2.0], &[1.5, -4.0, 1.0]);
        assert_eq!((err, scale), (1.0, 4.0));
    }
}

//! Greedy decoding under many keep masks at once, as one batch over a shared prefilled cache.
//!
//! Decoding one answer per mask with [`Transformer::generate`] reads every weight once per token
//! per mask. Here every batch row has its own keep mask over the prompt cache and its own
//! generated tokens, and each step runs all rows still decoding through every layer together,
//! so the weights are read once per step for the whole batch. The prompt cache is only read;
//! each row's generated keys and values live in a small per-row buffer. Rows that reach a stop
//! token leave the batch. Each row's answer is the one [`Transformer::generate`] gives under its
//! mask (up to float rounding in the logits).

use candle_core::{D, Tensor};

use super::batch_rows::LiveRows;
use super::cache::KvCache;
use super::capture::AttentionKernel;
use super::error::{ModelError, Result};
use super::mask::KeepColumns;
use super::transformer::Transformer;
use crate::attention::KeepMask;
use crate::progress::{Progress, Stage};

/// What [`Transformer::generate_batch`] does.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Most tokens to produce per row (stop token excluded).
    pub max_tokens: usize,
    /// Tokens that end a row's answer; the stop token is not part of [`MaskedGeneration::ids`].
    pub stop_ids: Vec<u32>,
    /// Attention implementation ([`AttentionKernel::Fused`] runs f32 models on the CPU only).
    pub kernel: AttentionKernel,
    /// Keep the logits every token was picked from ([`MaskedGeneration::logits`]).
    pub record_logits: bool,
    /// Tokens every row feeds, one per step under its own mask, before its first pick (a
    /// question appended after eviction; never evicted). The first pick then comes from the
    /// last one's logits instead of `first_logits`.
    pub appended: Vec<u32>,
    /// Stage named in progress reports.
    pub stage: Stage,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            max_tokens: 0,
            stop_ids: Vec::new(),
            kernel: AttentionKernel::Auto,
            record_logits: false,
            appended: Vec::new(),
            stage: Stage::Decoding,
        }
    }
}

/// The greedy answer under one keep mask of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskedGeneration {
    /// Generated token ids, without the stop token.
    pub ids: Vec<u32>,
    /// Whether a stop token ended the answer (rather than the token limit).
    pub stopped: bool,
    /// With [`BatchOptions::record_logits`], the logits (`vocab` each) every token was picked
    /// from, the stop token's included: the prefill's first, then one per token fed back.
    pub logits: Option<Vec<Vec<f32>>>,
}

impl Transformer {
    /// Greedy decoding under each of `masks` after a prefill whose cache is `cache` (prompt
    /// positions `0..cache.len()`, only read) and whose last-row logits are `first_logits`
    /// (`[vocab]`). Returns one answer per mask, in order.
    ///
    /// Every row picks its first token from `first_logits`, i.e. from the full cache, as
    /// [`Transformer::generate`] does (eviction happens after the prefill attention), or, with
    /// [`BatchOptions::appended`], from the logits after those tokens ran under its mask. Each token
    /// that is not a stop token is fed back at the next position, where it attends to the prompt
    /// entries its row's mask keeps (`[layers, heads, n]` with heads = query or KV heads; a KV
    /// head's mask applies to its whole GQA group; prompt positions from `n` on are kept) and to
    /// its row's generated tokens only. Progress reports the tokens done of `max_tokens`;
    /// cancellation stops at the next step or layer with [`ModelError::Cancelled`].
    pub fn generate_batch(
        &self,
        cache: &KvCache,
        first_logits: &Tensor,
        masks: &[&KeepMask],
        options: &BatchOptions,
        progress: &dyn Progress,
    ) -> Result<Vec<MaskedGeneration>> {
        self.check_cache(cache)?;
        let prompt = cache.len();
        if prompt == 0 {
            return Err(ModelError::InvalidArgument(
                "batched decoding needs a prefilled cache; this one holds no position".into(),
            ));
        }
        let keep = masks
            .iter()
            .enumerate()
            .map(|(index, mask)| {
                KeepColumns::new(mask, &self.config, prompt).map_err(|e| match e {
                    ModelError::InvalidArgument(message) => ModelError::InvalidArgument(format!(
                        "keep mask {index} of the batch: {message}"
                    )),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let context = self.config.max_position_embeddings;
        let appended = options.appended.len();
        if prompt + appended + options.max_tokens > context {
            return Err(ModelError::InvalidArgument(format!(
                "{appended} appended and {} decoded tokens after a prompt of {prompt} exceed the \
                 model's context of {context}",
                options.max_tokens
            )));
        }
        let vocab = self.config.vocab_size;
        if first_logits.dims() != [vocab] {
            return Err(ModelError::InvalidArgument(format!(
                "first logits must be [{vocab}], got {:?}",
                first_logits.dims()
            )));
        }
        let fused = self.use_fused(options.kernel)?;

        let mut answers: Vec<MaskedGeneration> = (0..masks.len())
            .map(|_| MaskedGeneration {
                ids: Vec::new(),
                stopped: false,
                logits: options.record_logits.then(Vec::new),
            })
            .collect();
        if masks.is_empty() || options.max_tokens == 0 {
            return Ok(answers);
        }
        let mut rows = LiveRows::new(self, keep, prompt, appended + options.max_tokens, fused)?;
        let mut logits = first_logits
            .unsqueeze(0)?
            .broadcast_as((masks.len(), vocab))?
            .contiguous()?;
        for &token in &options.appended {
            logits = self.batch_step(&vec![token; masks.len()], cache, &mut rows, progress)?;
        }
        loop {
            if progress.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let picked = pick(&logits, &mut answers, &rows, options)?;
            if picked.took_any {
                progress.update(
                    &options.stage,
                    rows.generated() - appended + 1,
                    options.max_tokens,
                );
            }
            if picked.tokens.is_empty() {
                break;
            }
            rows.retain(&picked.going_on)?;
            logits = self.batch_step(&picked.tokens, cache, &mut rows, progress)?;
        }
        Ok(answers)
    }
}

/// What one step's picks did to the live rows.
struct Picked {
    /// Whether any row took a token (rather than a stop token).
    took_any: bool,
    /// Per live row, whether it goes on to the next step.
    going_on: Vec<bool>,
    /// The tokens fed back, one per row going on.
    tokens: Vec<u32>,
}

/// Picks each live row's token from its logits (`[rows, vocab]`), the way
/// [`Transformer::generate`]'s greedy sampler does, and records it in the row's answer.
fn pick(
    logits: &Tensor,
    answers: &mut [MaskedGeneration],
    rows: &LiveRows,
    options: &BatchOptions,
) -> Result<Picked> {
    let tokens = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let mut recorded = if options.record_logits {
        Some(logits.to_vec2::<f32>()?.into_iter())
    } else {
        None
    };
    let mut picked = Picked {
        took_any: false,
        going_on: Vec::with_capacity(tokens.len()),
        tokens: Vec::with_capacity(tokens.len()),
    };
    for (&row, token) in rows.indices().iter().zip(tokens) {
        let answer = &mut answers[row];
        if let (Some(all), Some(row_logits)) = (
            answer.logits.as_mut(),
            recorded.as_mut().and_then(Iterator::next),
        ) {
            all.push(row_logits);
        }
        if options.stop_ids.contains(&token) {
            answer.stopped = true;
            picked.going_on.push(false);
            continue;
        }
        answer.ids.push(token);
        picked.took_any = true;
        let going_on = answer.ids.len() < options.max_tokens;
        picked.going_on.push(going_on);
        if going_on {
            picked.tokens.push(token);
        }
    }
    Ok(picked)
}

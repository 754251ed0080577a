//! Token-by-token decoding after a prefill, with the full cache or under a keep mask.

use candle_transformers::generation::{LogitsProcessor, Sampling as CandleSampling};
use ndarray::{Axis, concatenate};

use super::cache::KvCache;
use super::capture::{Capture, ForwardOptions};
use super::error::{ModelError, Result};
use super::forward::Pass;
use super::mask::KeepColumns;
use super::transformer::Transformer;
use crate::attention::{AttentionRows, KeepMask};
use crate::progress::{Progress, Stage};

/// How the next token is picked from the logits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Sampling {
    /// The most likely token.
    #[default]
    Greedy,
    /// Nucleus sampling at a temperature, reproducible from the seed.
    TopP {
        /// Softmax temperature (> 0).
        temperature: f64,
        /// Probability mass kept (0, 1].
        top_p: f64,
        /// Random seed.
        seed: u64,
    },
}

/// What [`Transformer::generate`] does.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to produce (stop token excluded).
    pub max_tokens: usize,
    /// Tokens that end the answer; the stop token is not part of [`Generation::ids`].
    pub stop_ids: Vec<u32>,
    /// Entries of the first `keep.dim(2)` cache positions each layer and head may attend to
    /// (`[layers, heads, n]`, heads = query heads or KV heads). Later positions are always kept.
    pub keep: Option<KeepMask>,
    /// Tokens fed after the cache and before the first pick, attending under `keep` (a
    /// question appended after eviction); they are never evicted and have no captured rows.
    /// The first token is then picked from the last one's logits instead of `first_logits`.
    pub appended: Vec<u32>,
    /// Record each generated token's attention row over keys `[0, capture_keys)`.
    pub capture_keys: Option<usize>,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Stage named in progress reports (e.g. [`Stage::DecodingUnderEviction`]).
    pub stage: Stage,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_tokens: 0,
            stop_ids: Vec::new(),
            keep: None,
            appended: Vec::new(),
            capture_keys: None,
            sampling: Sampling::Greedy,
            stage: Stage::Decoding,
        }
    }
}

/// A decoded answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Generated token ids, without the stop token.
    pub ids: Vec<u32>,
    /// `[layers, query_heads, ids.len(), capture_keys]` when asked for.
    pub rows: Option<AttentionRows>,
    /// Whether a stop token ended the answer (rather than `max_tokens`).
    pub stopped: bool,
}

impl Transformer {
    /// Decodes after a prefill whose last-row logits are `first_logits` (`[vocab]`).
    ///
    /// The first token is picked from `first_logits`, i.e. from the full cache, as SnapKV and
    /// KVCache-Factory do (eviction happens after the prefill attention); with
    /// [`GenerateOptions::appended`] those tokens are run first, under the mask, and the first
    /// token is picked from the last one's logits. Every generated token
    /// that is not a stop token is then fed back at the next position, attending to the kept
    /// cache entries (all of them without `keep`) and to every generated token; with
    /// `capture_keys` the last token is fed back too, so that each token has its row. The cache
    /// grows by the tokens fed back: truncate it to reuse the prompt.
    pub fn generate(
        &self,
        cache: &mut KvCache,
        first_logits: &candle_core::Tensor,
        options: &GenerateOptions,
        progress: &dyn Progress,
    ) -> Result<Generation> {
        let keep = match &options.keep {
            Some(mask) => Some(KeepColumns::new(mask, &self.config, cache.len())?),
            None => None,
        };
        if let Some(keys) = options.capture_keys.filter(|&k| k > cache.len()) {
            return Err(ModelError::InvalidArgument(format!(
                "cannot capture decoded attention over {keys} keys: the cache holds {}",
                cache.len()
            )));
        }
        cache.ensure_room(options.appended.len() + options.max_tokens)?;
        let vocab = first_logits
            .dims1()
            .ok()
            .filter(|&v| v == self.config.vocab_size);
        if vocab.is_none() {
            return Err(ModelError::InvalidArgument(format!(
                "first logits must be [{}], got {:?}",
                self.config.vocab_size,
                first_logits.dims()
            )));
        }
        let mut sampler = match options.sampling {
            Sampling::Greedy => LogitsProcessor::from_sampling(0, CandleSampling::ArgMax),
            Sampling::TopP {
                temperature,
                top_p,
                seed,
            } => {
                if !(temperature > 0.0 && top_p > 0.0 && top_p <= 1.0) {
                    return Err(ModelError::InvalidArgument(format!(
                        "sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature} and {top_p}"
                    )));
                }
                LogitsProcessor::from_sampling(
                    seed,
                    CandleSampling::TopP {
                        p: top_p,
                        temperature,
                    },
                )
            }
        };

        let capture = match options.capture_keys {
            Some(keys) => Capture::rows(0, keys),
            None => Capture::NONE,
        };
        let step_options = ForwardOptions {
            query_chunk: Some(1),
            ..ForwardOptions::default()
        };
        let pass = Pass {
            capture: &capture,
            options: &step_options,
            keep: keep.as_ref(),
            report: false,
        };
        let mut logits = if options.appended.is_empty() {
            first_logits.clone()
        } else {
            let appended_pass = Pass {
                capture: &Capture::NONE,
                options: &ForwardOptions::default(),
                keep: keep.as_ref(),
                report: false,
            };
            self.run(
                &self.embed(&options.appended)?,
                cache,
                &appended_pass,
                progress,
            )?
            .last_logits
        };
        let mut ids = Vec::new();
        let mut rows = Vec::new();
        let mut stopped = false;
        while ids.len() < options.max_tokens {
            if progress.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let token = sampler.sample(&logits)?;
            if options.stop_ids.contains(&token) {
                stopped = true;
                break;
            }
            ids.push(token);
            progress.update(&options.stage, ids.len(), options.max_tokens);
            if ids.len() == options.max_tokens && options.capture_keys.is_none() {
                break;
            }
            let output = self.run(&self.embed(&[token])?, cache, &pass, progress)?;
            logits = output.last_logits;
            rows.extend(output.rows);
        }
        let rows = match options.capture_keys {
            Some(keys) => Some(stack_rows(&rows, self, keys)?),
            None => None,
        };
        Ok(Generation { ids, rows, stopped })
    }
}

/// Stacks one-row captures `[layers, heads, 1, keys]` along the query axis.
fn stack_rows(rows: &[AttentionRows], model: &Transformer, keys: usize) -> Result<AttentionRows> {
    if rows.is_empty() {
        let c = &model.config;
        return Ok(AttentionRows::zeros((c.num_layers, c.num_heads, 0, keys)));
    }
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    concatenate(Axis(2), &views)
        .map_err(|e| ModelError::InvalidArgument(format!("decoded rows: {e}")))
}

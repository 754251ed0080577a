//! Lookahead Q-Cache's draft tokens (arXiv 2505.20334, stage 1): decoded greedily under a
//! SnapKV keep set with the batched masked decode, then run with the full prompt cache so that
//! their attention over the prompt can score it. Only `ℓ` rows over the prompt are captured:
//! the memory is `layers · query_heads · ℓ · n` floats, never `n²`.

use candle_core::Tensor;

use crate::attention::{AttentionRows, KeepMask};
use crate::model::{BatchOptions, Capture, ForwardOptions, KvCache, Result, Transformer};
use crate::progress::{Progress, Stage};

/// Draft tokens and their attention over the prompt.
#[derive(Clone, Debug)]
pub struct Drafts {
    /// The draft token ids, greedily decoded under the keep mask (stop token excluded; fewer
    /// than asked when a stop token came first).
    pub ids: Vec<u32>,
    /// `[layers, query_heads, ids.len(), n_prompt]`: each draft's attention, with the full
    /// prompt cache and the drafts before it visible, over the prompt's keys.
    pub rows: AttentionRows,
}

/// Decodes up to `tokens` drafts after the prompt held in `cache` (whose last-row logits are
/// `first_logits`) seeing only the prompt entries `keep` keeps (`[layers, heads, n]`), then runs
/// them with the whole prompt visible and captures their rows. `cache` holds the prompt again
/// afterwards and needs room for `tokens` more positions.
pub fn draft(
    transformer: &Transformer,
    cache: &mut KvCache,
    first_logits: &Tensor,
    keep: &KeepMask,
    tokens: usize,
    stop_ids: &[u32],
    progress: &dyn Progress,
) -> Result<Drafts> {
    let prompt_len = cache.len();
    let c = &transformer.config;
    let no_rows =
        |count: usize| AttentionRows::zeros((c.num_layers, c.num_heads, count, prompt_len));
    if tokens == 0 {
        return Ok(Drafts {
            ids: Vec::new(),
            rows: no_rows(0),
        });
    }
    cache.ensure_room(tokens)?;
    let options = BatchOptions {
        max_tokens: tokens,
        stop_ids: stop_ids.to_vec(),
        stage: Stage::Lookahead,
        ..BatchOptions::default()
    };
    let ids = transformer
        .generate_batch(cache, first_logits, &[keep], &options, progress)?
        .into_iter()
        .next()
        .map(|generation| generation.ids)
        .unwrap_or_default();
    if ids.is_empty() {
        return Ok(Drafts {
            ids,
            rows: no_rows(0),
        });
    }
    let options = ForwardOptions {
        stage: Stage::Lookahead,
        ..ForwardOptions::default()
    };
    let out = transformer.forward_with(
        &transformer.embed(&ids)?,
        cache,
        &Capture::rows(0, prompt_len),
        &options,
        progress,
    );
    cache.truncate(prompt_len)?;
    let rows = out?.rows.unwrap_or_else(|| no_rows(0));
    Ok(Drafts { ids, rows })
}

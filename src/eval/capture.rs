//! One held-out prompt through the model: the prefill (window rows and H2O's accumulated
//! attention), the soft tokens' rows, and the full-cache greedy answer with its rows (the
//! oracle), as a [`Session`]; the prompt's cache stays for decoding under eviction.

use candle_core::Tensor;

use crate::judgeq::SoftTokens;
use crate::judgeq::error::Result;
use crate::model::{Capture, ForwardOptions, GenerateOptions, KvCache, Model};
use crate::progress::{Progress, Stage};
use crate::session::{Answer, InspectSettings, PromptLayout, Session};

/// A prompt run through the model, ready for decoding under eviction.
pub struct CapturedPrompt {
    /// Rows of every source and the full-cache answer.
    pub session: Session,
    /// The prompt's KV cache (length = prompt), with room for the answer.
    pub cache: KvCache,
    /// Logits after the prompt (the first answer token is chosen from them, full cache).
    pub first_logits: Tensor,
}

/// Runs `layout` through `model`: captures the last `window` prompt rows and H2O's sums, the
/// rows of `soft` appended after the prompt (then removed from the cache), and decodes up to
/// `decode_tokens` greedily with the full cache, capturing each answer token's row.
pub fn capture_prompt(
    model: &Model,
    layout: &PromptLayout,
    soft: Option<(&SoftTokens, &str)>,
    window: usize,
    decode_tokens: usize,
    progress: &dyn Progress,
) -> Result<CapturedPrompt> {
    let transformer = &model.transformer;
    let p = layout.len();
    let soft_count = soft.map_or(0, |(s, _)| s.count());
    model.check_fits(p, soft_count.max(decode_tokens + 1))?;
    let mut cache = transformer.new_cache(p + soft_count.max(decode_tokens + 1))?;

    let capture = Capture::rows(p.saturating_sub(window), p).with_accumulation();
    let prefill = transformer.forward(
        &transformer.embed(&layout.ids)?,
        &mut cache,
        &capture,
        progress,
    )?;
    let c = &transformer.config;
    let empty_rows = || ndarray::Array4::zeros((c.num_layers, c.num_heads, 0, p));
    let window_rows = prefill.rows.unwrap_or_else(empty_rows);
    let accumulated = prefill
        .accumulated
        .unwrap_or_else(|| ndarray::Array3::zeros((c.num_layers, c.num_heads, p)));

    let soft_rows = match soft {
        Some((tokens, _)) => {
            let values: Vec<f32> = tokens.embeddings.iter().copied().collect();
            let input = Tensor::from_vec(values, tokens.embeddings.dim(), &transformer.device)?;
            let options = ForwardOptions {
                stage: Stage::SoftTokens,
                ..ForwardOptions::default()
            };
            let output = transformer.forward_with(
                &input,
                &mut cache,
                &Capture::rows(0, p),
                &options,
                progress,
            )?;
            cache.truncate(p)?;
            Some(output.rows.unwrap_or_else(empty_rows))
        }
        None => None,
    };

    let options = GenerateOptions {
        max_tokens: decode_tokens,
        stop_ids: model.stop_ids.clone(),
        capture_keys: Some(p),
        ..GenerateOptions::default()
    };
    let generation = transformer.generate(&mut cache, &prefill.last_logits, &options, progress)?;
    cache.truncate(p)?;
    let answer = Answer {
        tokens: model.tokenizer.token_strings(&generation.ids)?,
        text: model.decode_tokens(&generation.ids)?,
        ids: generation.ids,
    };
    let session = Session {
        model: model.info.clone(),
        prompt: layout.clone(),
        settings: InspectSettings {
            window,
            decode_tokens,
            soft_tokens: soft.map(|(_, name)| name.to_string()),
            soft_count,
        },
        window: window_rows,
        soft: soft_rows,
        decoded: generation.rows.unwrap_or_else(empty_rows),
        accumulated,
        answer,
    };
    Ok(CapturedPrompt {
        session,
        cache,
        first_logits: prefill.last_logits,
    })
}

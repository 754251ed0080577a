//! One document and question through the model: prompt, prefill with the last-window capture,
//! soft tokens, a greedy answer whose queries are captured too, and Lookahead Q-Cache's draft
//! tokens and KVzip's repeat pass when a policy asks for them ([`lookahead`], [`repeat`]). The
//! CLI's `inspect` and `evict` and the GUI's worker all run this.
//!
//! With [`QuestionPlacement::AfterEviction`] only the prompt's part before the question is
//! prefilled with capture and followed by the soft tokens (and the drafts, and the repeat pass,
//! which repeats that part only); the question and the rest of the turn are fed after it (with
//! the full cache for the session's answer, under each keep mask for answers under eviction)
//! before decoding.

pub mod lookahead;
pub mod repeat;

use std::path::PathBuf;

use candle_core::Tensor;

use crate::attention::{AttentionRows, KeepMask, ScoreGrid};
use crate::judgeq::SoftTokens;
use crate::model::{
    BatchOptions, Capture, ForwardOptions, GenerateOptions, KvCache, Model, ModelError,
    PlacedPrompt, Result, RunPlan,
};
use crate::policy::policies::lookahead::draft_mask;
use crate::progress::{Progress, Stage};
use crate::session::{
    Answer, InspectSettings, LookaheadCapture, PrefillCapture, PrefillInputs, QuestionPlacement,
    RepeatCapture, Session,
};

/// What to inspect and how.
#[derive(Clone, Debug)]
pub struct InspectRequest {
    /// The document text.
    pub document: String,
    /// The question asked about it.
    pub question: String,
    /// Where the question goes ([`inspect`] reads it to build the prompt).
    pub placement: QuestionPlacement,
    /// Last-window size `w` whose queries are captured.
    pub window: usize,
    /// Most tokens to decode greedily with the full cache.
    pub decode_tokens: usize,
    /// Soft tokens to append after the prompt, with the file they came from.
    pub soft: Option<(PathBuf, SoftTokens)>,
    /// Inputs beyond attention rows to capture during the prefill (none by default: only the
    /// policies that score with them ask, see `policy::prefill_capture`).
    pub capture: PrefillCapture,
}

/// The prompt's KV cache after an inspection, kept so that answers under eviction masks need
/// no second prefill.
pub struct PrefilledPrompt {
    cache: KvCache,
    first_logits: Tensor,
    prompt_len: usize,
    /// Tokens fed under each keep mask before decoding (the question after eviction).
    appended: Vec<u32>,
}

/// Runs an inspection; returns the session and the prefilled prompt for decoding under eviction.
pub fn inspect(
    model: &Model,
    request: &InspectRequest,
    progress: &dyn Progress,
) -> Result<(Session, PrefilledPrompt)> {
    let prompt = model.placed_prompt(&request.document, &request.question, request.placement)?;
    inspect_prompt(model, prompt, request, progress)
}

/// [`inspect`] of a prompt built elsewhere (e.g. a task sample's, with an answer prefix);
/// `request`'s document, question and placement are not read (the prompt's placement is
/// used), its other settings are. The session's prompt is the scored part.
pub fn inspect_prompt(
    model: &Model,
    prompt: PlacedPrompt,
    request: &InspectRequest,
    progress: &dyn Progress,
) -> Result<(Session, PrefilledPrompt)> {
    let PlacedPrompt {
        placement,
        scored: prompt,
        appended,
    } = prompt;
    let appended = appended.ids;
    let prompt_len = prompt.len();
    let soft_count = request.soft.as_ref().map_or(0, |(_, soft)| soft.count());
    let draft_tokens = request
        .capture
        .lookahead
        .map_or(0, |capture| capture.tokens);
    let repeat_chunks = match request.capture.repeat {
        Some(capture) => Some(repeat::chunks(
            &prompt.ids,
            &repeat::RepeatTemplate::of(model)?,
            capture.chunk_size,
        )?),
        None => None,
    };
    let repeat_len = repeat_chunks
        .iter()
        .flatten()
        .map(|chunk| chunk.ids.len())
        .max()
        .unwrap_or(0);
    // The soft tokens, the appended tokens with the decoded answer, the lookahead drafts and each
    // repeat chunk take the same positions after the scored prompt in turn (the cache is cut
    // back to the scored prompt between them), so the largest must fit.
    let after_prompt = soft_count
        .max(appended.len() + request.decode_tokens)
        .max(draft_tokens)
        .max(repeat_len);
    model.check_fits(prompt_len, after_prompt)?;
    if request.window == 0 || request.window > prompt_len {
        return Err(ModelError::InvalidArgument(format!(
            "the window must hold between 1 and {prompt_len} tokens (the scored prompt's length), not {}",
            request.window
        )));
    }
    if request.decode_tokens == 0 {
        return Err(ModelError::InvalidArgument(
            "decode at least one token: the oracle scores the cache with the decoded tokens".into(),
        ));
    }
    if let Some((path, soft)) = &request.soft {
        soft.check_model(path, &model.info)
            .map_err(|e| ModelError::InvalidArgument(e.to_string()))?;
    }

    let transformer = &model.transformer;
    // Refused before anything is allocated when the device has too little free memory: the
    // cache, the prefill's activations and every captured row (window, soft, decoded).
    transformer.check_memory(&RunPlan {
        input_rows: prompt_len.max(appended.len()),
        cache_positions: prompt_len + after_prompt,
        captured_rows: request.window
            + soft_count
            + request.decode_tokens
            + draft_tokens
            + repeat_chunks.as_ref().map_or(0, |_| repeat::PANEL_ROWS),
        key_limit: prompt_len,
        accumulate: true,
    })?;
    let mut cache = transformer.new_cache(prompt_len + after_prompt)?;
    let mut window_capture =
        Capture::rows(prompt_len - request.window, prompt_len).with_accumulation();
    if request.capture.query_statistics {
        window_capture = window_capture.with_query_statistics();
    }
    let prefill = transformer.forward(
        &transformer.embed(&prompt.ids)?,
        &mut cache,
        &window_capture,
        progress,
    )?;
    let (Some(window), Some(accumulated)) = (prefill.rows, prefill.accumulated) else {
        return Err(ModelError::InvalidArgument(
            "the prefill returned no capture".into(),
        ));
    };
    let mut prefill_inputs = PrefillInputs {
        keys: request
            .capture
            .keys
            .then(|| cache.keys_f32(prompt_len))
            .transpose()?,
        values: request
            .capture
            .values
            .then(|| cache.values_f32(prompt_len))
            .transpose()?,
        value_norms: request
            .capture
            .value_norms
            .then(|| cache.value_norms(prompt_len))
            .transpose()?,
        projected_value_norms: request
            .capture
            .projected_value_norms
            .then(|| transformer.projected_value_norms(&cache, prompt_len))
            .transpose()?,
        query_statistics: prefill.query_statistics,
        repeat_scores: None,
    };

    let soft = match &request.soft {
        Some((_, soft)) => {
            let options = ForwardOptions {
                stage: Stage::SoftTokens,
                ..ForwardOptions::default()
            };
            let out = transformer.forward_with(
                &soft_input(model, soft)?,
                &mut cache,
                &Capture::rows(0, prompt_len),
                &options,
                progress,
            )?;
            cache.truncate(prompt_len)?;
            out.rows
        }
        None => None,
    };

    let options = GenerateOptions {
        max_tokens: request.decode_tokens,
        stop_ids: model.stop_ids.clone(),
        appended: appended.clone(),
        capture_keys: Some(prompt_len),
        ..GenerateOptions::default()
    };
    let generation = transformer.generate(&mut cache, &prefill.last_logits, &options, progress)?;
    cache.truncate(prompt_len)?;
    let Some(decoded) = generation.rows else {
        return Err(ModelError::InvalidArgument(
            "decoding returned no attention rows".into(),
        ));
    };
    if generation.ids.is_empty() {
        return Err(ModelError::InvalidArgument(
            "the model ended its answer at once, so no decoded tokens can score the cache".into(),
        ));
    }

    let lookahead = match request.capture.lookahead {
        Some(capture) => Some(draft_rows(
            model,
            &mut cache,
            &prefill.last_logits,
            (&window, &accumulated),
            &capture,
            progress,
        )?),
        None => None,
    };

    let repeat = match (&repeat_chunks, request.capture.repeat) {
        (Some(chunks), Some(RepeatCapture { n_sink, .. })) => {
            let repeated = repeat::repeat(
                transformer,
                &mut cache,
                chunks,
                n_sink,
                repeat::PIECE_FLOATS,
                progress,
            )?;
            prefill_inputs.repeat_scores = Some(repeated.scores);
            Some(repeated.rows)
        }
        _ => None,
    };

    let session = Session {
        model: model.info.clone(),
        settings: InspectSettings {
            window: request.window,
            decode_tokens: request.decode_tokens,
            soft_tokens: request
                .soft
                .as_ref()
                .map(|(path, _)| path.display().to_string()),
            soft_count,
            soft_tokens_unfinished: request
                .soft
                .as_ref()
                .and_then(|(_, soft)| soft.unfinished_training()),
            placement,
            lookahead: request.capture.lookahead,
            repeat: request.capture.repeat,
        },
        prompt,
        window,
        soft,
        decoded,
        lookahead,
        repeat,
        accumulated,
        answer: answer(model, generation.ids)?,
        prefill_inputs,
    };
    let prefilled = PrefilledPrompt {
        cache,
        first_logits: prefill.last_logits,
        prompt_len,
        appended,
    };
    Ok((session, prefilled))
}

impl PrefilledPrompt {
    /// Prefills `ids` without capture, for decoding a prompt whose cache was not kept.
    pub fn prefill(
        model: &Model,
        ids: &[u32],
        max_tokens: usize,
        progress: &dyn Progress,
    ) -> Result<Self> {
        model.check_fits(ids.len(), max_tokens)?;
        let transformer = &model.transformer;
        let positions = ids.len() + max_tokens;
        transformer.check_memory(&RunPlan::prefill(ids.len(), positions, &Capture::NONE))?;
        let mut cache = transformer.new_cache(positions)?;
        let out = transformer.forward(
            &transformer.embed(ids)?,
            &mut cache,
            &Capture::NONE,
            progress,
        )?;
        Ok(Self {
            cache,
            first_logits: out.last_logits,
            prompt_len: ids.len(),
            appended: Vec::new(),
        })
    }

    /// Tokens fed under each keep mask before decoding (0 unless the question is placed after
    /// eviction).
    pub fn appended_len(&self) -> usize {
        self.appended.len()
    }

    /// The greedy answer when only the kept prompt entries are visible (decoding under
    /// eviction; the appended tokens, if any, run first under the same mask); `label` names
    /// the policy in progress reports.
    pub fn decode_under(
        &mut self,
        model: &Model,
        keep: &KeepMask,
        max_tokens: usize,
        label: &str,
        progress: &dyn Progress,
    ) -> Result<Answer> {
        self.cache.truncate(self.prompt_len)?;
        let options = GenerateOptions {
            max_tokens,
            stop_ids: model.stop_ids.clone(),
            keep: Some(keep.clone()),
            appended: self.appended.clone(),
            stage: Stage::DecodingUnderEviction(label.to_string()),
            ..GenerateOptions::default()
        };
        let generation =
            model
                .transformer
                .generate(&mut self.cache, &self.first_logits, &options, progress);
        self.cache.truncate(self.prompt_len)?;
        answer(model, generation?.ids)
    }

    /// The greedy answers under many keep masks, decoded as one batch (the weights are read
    /// once per step for all masks): for each labelled mask, in order, the answer
    /// [`PrefilledPrompt::decode_under`] gives. Progress names the labels and counts tokens
    /// done of `max_tokens`.
    pub fn decode_batch(
        &mut self,
        model: &Model,
        masks: &[(String, KeepMask)],
        max_tokens: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<Answer>> {
        if masks.is_empty() {
            return Ok(Vec::new());
        }
        self.cache.truncate(self.prompt_len)?;
        // The same limit as one decode, which writes its tokens into this cache.
        self.cache.ensure_room(self.appended.len() + max_tokens)?;
        let labels: Vec<&str> = masks.iter().map(|(label, _)| label.as_str()).collect();
        let options = BatchOptions {
            max_tokens,
            stop_ids: model.stop_ids.clone(),
            appended: self.appended.clone(),
            stage: Stage::DecodingUnderEviction(batch_label(&labels)),
            ..BatchOptions::default()
        };
        let keeps: Vec<&KeepMask> = masks.iter().map(|(_, mask)| mask).collect();
        model
            .transformer
            .generate_batch(&self.cache, &self.first_logits, &keeps, &options, progress)?
            .into_iter()
            .map(|generation| answer(model, generation.ids))
            .collect()
    }
}

/// Lookahead Q-Cache's draft rows for the prompt in `cache`: the SnapKV keep set of the
/// prefill's last-window rows and accumulated attention (`captured`) as `capture` says, the
/// drafts decoded under it, and their rows with the full cache.
fn draft_rows(
    model: &Model,
    cache: &mut KvCache,
    first_logits: &Tensor,
    captured: (&AttentionRows, &ScoreGrid),
    capture: &LookaheadCapture,
    progress: &dyn Progress,
) -> Result<AttentionRows> {
    let (window, accumulated) = captured;
    let keep = draft_mask(
        window.view(),
        accumulated.view(),
        model.info.kv_heads,
        capture,
    )
    .map_err(|e| ModelError::InvalidArgument(format!("lookahead drafts: {e}")))?;
    let drafts = lookahead::draft(
        &model.transformer,
        cache,
        first_logits,
        &keep,
        capture.tokens,
        &model.stop_ids,
        progress,
    )?;
    Ok(drafts.rows)
}

/// The progress label of a batch: its labels when few, else the first two and a count.
fn batch_label(labels: &[&str]) -> String {
    const SHOWN: usize = 3;
    if labels.len() <= SHOWN {
        labels.join(", ")
    } else {
        format!("{}, {} and {} more", labels[0], labels[1], labels.len() - 2)
    }
}

/// The soft-token embeddings as an input tensor on the model's device, in its dtype.
fn soft_input(model: &Model, soft: &SoftTokens) -> Result<Tensor> {
    let transformer = &model.transformer;
    let values: Vec<f32> = soft.embeddings.iter().copied().collect();
    Ok(
        Tensor::from_vec(values, soft.embeddings.dim(), &transformer.device)?
            .to_dtype(transformer.dtype)?,
    )
}

/// Generated ids as an [`Answer`] with per-token text.
fn answer(model: &Model, ids: Vec<u32>) -> Result<Answer> {
    let tokens = ids
        .iter()
        .map(|&id| model.decode_tokens(&[id]))
        .collect::<Result<Vec<_>>>()?;
    let text = model.decode_tokens(&ids)?;
    Ok(Answer { ids, tokens, text })
}

//! Judge Q (arXiv 2509.10798): the soft tokens appended after the prompt score the keys.
//!
//! Scores: the sum over the soft-token rows of their attention to each prompt key, pooled as
//! SnapKV's (the paper compares "under the same settings"). The paper leaves open whether the
//! last window is also kept (judgeq.md §1.6), so both variants exist:
//! - (a) `judgeq_keep_window = false`, the default: the top `B` of the whole prompt, pooled over
//!   `[0, n)`;
//! - (b) `judgeq_keep_window = true`: the window `w` plus the top `B − w` of `[0, n − w)`, pooled
//!   over that range (SnapKV with soft-token queries).
//!
//! With `chunk_size` set (the `judgeq-chunk` variant sets kvpress's 20), whole chunks of the
//! ranked range are kept instead (ChunkKV, [`crate::policy::chunks`]).
//!
//! `judgeq_window_layers = L > 0` (not in the paper) ranks the first `L` layers by the last
//! window's attention instead: a soft token's layer-0 query depends only on its own embedding
//! and position, never on the prompt.

use std::borrow::Cow;

use ndarray::s;

use super::snapkv;
use crate::attention::{Pooling, QuerySource, ScoreGrid};
use crate::policy::chunks::{self, CHUNK_SIZE, KVPRESS_CHUNK_SIZE};
use crate::policy::params::{Count, Param, Switch};
use crate::policy::{
    Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected, Variant,
};

/// Judge Q variant: off (default) keeps the top `B` of the whole prompt by soft-token scores
/// (variant a); on keeps the window plus the top `B − w` of the rest (variant b).
pub static KEEP_WINDOW: Switch = Switch {
    key: "judgeq_keep_window",
    label: "Judge Q keeps the window",
    help: "Judge Q also keeps the last window (variant b) instead of the top entries of the whole prompt (variant a, the default)",
    default: false,
};

/// Judge Q ranks the first this many layers by the last window's attention instead of the soft
/// tokens'. Default 0 (the paper's method). Not in the paper: in layer 0 a soft token's query
/// cannot depend on the prompt, and on held-out prompts the default model's soft tokens hit the
/// oracle's entries there far less often than the window does.
pub static WINDOW_LAYERS: Count = Count {
    key: "judgeq_window_layers",
    label: "Judge Q window layers",
    help: "The first this many layers rank keys by the last window's attention instead of the soft tokens' (0: the paper's method)",
    default: 0,
};

static PARAMS: [Param; 3] = [
    Param::Switch(&KEEP_WINDOW),
    Param::Count(&WINDOW_LAYERS),
    Param::Count(&CHUNK_SIZE),
];

static VARIANTS: [Variant; 4] = [
    Variant {
        id: "judgeq-window",
        label: "Judge Q, window kept",
        settings: window_kept,
    },
    Variant {
        id: "judgeq-nopool",
        label: "Judge Q, no pooling",
        settings: unpooled,
    },
    Variant {
        id: "judgeq-layer0-window",
        label: "Judge Q, layer 0 by the window",
        settings: layer0_window,
    },
    Variant {
        id: "judgeq-chunk",
        label: "Judge Q, chunks of 20 (ChunkKV)",
        settings: in_chunks,
    },
];

/// The top keys by the soft tokens' attention.
pub struct JudgeQ;

impl Policy for JudgeQ {
    fn id(&self) -> &'static str {
        "judgeq"
    }

    fn label(&self) -> &'static str {
        "Judge Q"
    }

    fn summary(&self) -> &'static str {
        "The top keys by the soft tokens' attention (needs soft tokens)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn variants(&self) -> &'static [Variant] {
        &VARIANTS
    }

    fn needs(&self, settings: &PolicySettings) -> Vec<Input> {
        let mut needs = vec![Input::Soft];
        if settings.get(&WINDOW_LAYERS) > 0 {
            needs.push(Input::Window);
        }
        needs
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let settings = ctx.settings();
        let (protected, scores) = ranked_scores(ctx)?;
        let n = ctx.prompt_len();
        let chunk = usize::try_from(settings.get(&CHUNK_SIZE)).unwrap_or(usize::MAX);
        if chunk == 0 {
            return Order::scored(n, protected, 0, scores);
        }
        let kept_first: Vec<u32> = (n - protected.len().min(n)..n)
            .rev()
            .map(|p| p as u32)
            .collect();
        chunks::chunked_order(n, &kept_first, 0, &scores, chunk)
    }
}

/// What Judge Q always keeps under the context's settings and its scores (sums over each
/// layer's query rows, [`rows_per_layer`]) over the positions it ranks, which start at 0.
pub(crate) fn ranked_scores(ctx: &OrderContext) -> Result<(Protected, ScoreGrid), PolicyError> {
    let settings = ctx.settings();
    let window_layers = usize::try_from(settings.get(&WINDOW_LAYERS)).unwrap_or(usize::MAX);
    let sums = query_sums(ctx, window_layers)?;
    if settings.get(&KEEP_WINDOW) {
        let scores = snapkv::scored_range(ctx, sums.view(), settings.pooling)?;
        Ok((Protected::Window(ctx.window()), scores))
    } else {
        let scores = ctx.inputs().ranked_scores(
            sums.view(),
            ctx.prompt_len(),
            settings.pooling,
            settings,
        )?;
        Ok((Protected::Nothing, scores))
    }
}

/// The query rows Judge Q's scores of `layer` sum: the last window's in the first
/// `judgeq_window_layers` layers, the soft tokens' elsewhere.
pub(crate) fn rows_per_layer(ctx: &OrderContext, layer: usize) -> usize {
    let window_layers = usize::try_from(ctx.settings().get(&WINDOW_LAYERS)).unwrap_or(usize::MAX);
    let source = if layer < window_layers {
        QuerySource::Window
    } else {
        QuerySource::Soft
    };
    ctx.inputs().source_rows(source)
}

/// `base` with the paper's Judge Q: variant (a), every layer ranked by the soft tokens.
fn paper(base: &PolicySettings) -> PolicySettings {
    base.clone()
        .with(&KEEP_WINDOW, false)
        .with(&WINDOW_LAYERS, 0)
        .with(&CHUNK_SIZE, 0)
}

/// Variant (b): the last window kept too.
fn window_kept(base: &PolicySettings) -> PolicySettings {
    paper(base).with(&KEEP_WINDOW, true)
}

/// Without pooling (the method and its pooled oracle alike).
fn unpooled(base: &PolicySettings) -> PolicySettings {
    PolicySettings {
        pooling: Pooling::None,
        ..paper(base)
    }
}

/// The paper's Judge Q keeping whole chunks of kvpress's ChunkKV length.
fn in_chunks(base: &PolicySettings) -> PolicySettings {
    paper(base).with(&CHUNK_SIZE, KVPRESS_CHUNK_SIZE)
}

/// Layer 0 ranked by the last window.
fn layer0_window(base: &PolicySettings) -> PolicySettings {
    paper(base).with(&WINDOW_LAYERS, 1)
}

/// The soft tokens' attention sums, with those of the first `window_layers` layers replaced by
/// the last window's.
fn query_sums<'c>(
    ctx: &'c OrderContext,
    window_layers: usize,
) -> Result<Cow<'c, ScoreGrid>, PolicyError> {
    let soft = ctx.inputs().source_sums(QuerySource::Soft, "Judge Q")?;
    if window_layers == 0 {
        return Ok(Cow::Borrowed(soft));
    }
    let window = ctx.inputs().source_sums(QuerySource::Window, "Judge Q")?;
    let layers = window_layers.min(soft.dim().0);
    let mut mixed = soft.clone();
    mixed
        .slice_mut(s![..layers, .., ..])
        .assign(&window.slice(s![..layers, .., ..]));
    Ok(Cow::Owned(mixed))
}

//! SnapKV (`FasterDecoding/SnapKV`, `SnapKVCluster.update_kv`): the last `w` prompt queries
//! score the earlier keys.
//!
//! Score per key `j < n − w`: the sum over the window rows of their attention to `j`, pooled
//! along `[0, n − w)` only. The window (the last `w` positions) is always kept and the top
//! `B − w` of the rest by pooled score are added.
//!
//! With `chunk_size` set (the `snapkv-chunk` variant sets kvpress's 20), whole chunks of the
//! scored range are kept instead (ChunkKV, [`crate::policy::chunks`]).

use ndarray::ArrayView3;

use crate::attention::{Pooling, QuerySource, ScoreGrid};
use crate::policy::chunks::{self, CHUNK_SIZE, KVPRESS_CHUNK_SIZE};
use crate::policy::params::Param;
use crate::policy::{
    Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected, Variant,
};

static PARAMS: [Param; 1] = [Param::Count(&CHUNK_SIZE)];

static VARIANTS: [Variant; 1] = [Variant {
    id: "snapkv-chunk",
    label: "SnapKV, chunks of 20 (ChunkKV)",
    settings: in_chunks,
}];

/// `base` with kvpress's ChunkKV chunk length.
fn in_chunks(base: &PolicySettings) -> PolicySettings {
    base.clone().with(&CHUNK_SIZE, KVPRESS_CHUNK_SIZE)
}

/// The window plus the top keys by pooled window attention.
pub struct SnapKv;

impl Policy for SnapKv {
    fn id(&self) -> &'static str {
        "snapkv"
    }

    fn label(&self) -> &'static str {
        "SnapKV"
    }

    fn summary(&self) -> &'static str {
        "The window plus the top keys by pooled window attention"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn variants(&self) -> &'static [Variant] {
        &VARIANTS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Window]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let scores = scores(ctx, ctx.settings().pooling, self.label())?;
        let n = ctx.prompt_len();
        let chunk = usize::try_from(ctx.settings().get(&CHUNK_SIZE)).unwrap_or(usize::MAX);
        if chunk == 0 {
            return Order::scored(n, Protected::Window(ctx.window()), 0, scores);
        }
        let window: Vec<u32> = (n - ctx.window()..n).rev().map(|p| p as u32).collect();
        chunks::chunked_order(n, &window, 0, &scores, chunk)
    }
}

/// Window scores over the scored range `[0, n − w)`, pooled with `pooling`, at the settings'
/// granularity.
pub(crate) fn scores(
    ctx: &OrderContext,
    pooling: Pooling,
    needed_by: &str,
) -> Result<ScoreGrid, PolicyError> {
    let sums = ctx.inputs().source_sums(QuerySource::Window, needed_by)?;
    scored_range(ctx, sums.view(), pooling)
}

/// `raw` restricted to `[0, n − w)`, pooled and reduced (shared by SnapKV, H2O and Judge Q (b)).
pub(crate) fn scored_range(
    ctx: &OrderContext,
    raw: ArrayView3<f32>,
    pooling: Pooling,
) -> Result<ScoreGrid, PolicyError> {
    let end = ctx.prompt_len() - ctx.window();
    ctx.inputs()
        .ranked_scores(raw, end, pooling, ctx.settings())
}

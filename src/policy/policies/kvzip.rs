//! KVzip (arXiv 2505.23416; kvpress 0.5.5's `KVzipPress` with its defaults, `layerwise=False`):
//! the model is asked to repeat the prompt, and each entry scores the most attention it
//! receives from the repeat queries (the inspection's repeat pass, `inspect::repeat`, computes
//! the scores, `[layers, kv_heads, n]`, only when this policy is chosen).
//!
//! The first `kvzip_sinks` entries are always kept (kvpress lifts them above every score), and
//! the rest of the budget is one share over every layer and head at once
//! ([`Spread::Global`]): the `L·H·(B − s)` highest scores of all rows, so that the total is `B`
//! per row, as kvpress prunes the globally lowest `int(L·H_kv·n·r)` scores. The scores are per
//! KV head; per query head every head of a group holds its KV head's scores.
//!
//! With `--ratios` a budget is `int(n·(1 − r))` per row before the spread, so the total is
//! `L·H·int(n·(1 − r))`, where kvpress keeps `L·H·n − int(L·H·n·r)`: fewer by less than one entry
//! per row.

use crate::policy::params::{Count, Param};
use crate::policy::{
    Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected, Spread,
};
use crate::session::RepeatCapture;

/// kvpress's `n_sink`: leading entries always kept, and in every chunk's softmax. Default 4.
pub static SINKS: Count = Count {
    key: "kvzip_sinks",
    label: "KVzip sinks",
    help: "First entries KVzip always keeps; they also join every chunk's softmax (kvpress's n_sink, default 4)",
    default: 4,
};

/// kvpress's `chunk_size`: prompt tokens repeated per pass. Default 2048.
pub static CHUNK_SIZE: Count = Count {
    key: "kvzip_chunk_size",
    label: "KVzip chunk size",
    help: "Prompt tokens the model repeats per pass of KVzip's repeat pass (kvpress's chunk_size, default 2048; at least 1)",
    default: 2048,
};

static PARAMS: [Param; 2] = [Param::Count(&SINKS), Param::Count(&CHUNK_SIZE)];

/// The sinks, then the entries the repeat queries attend to most, over every layer and head.
pub struct Kvzip;

impl Policy for Kvzip {
    fn id(&self) -> &'static str {
        "kvzip"
    }

    fn label(&self) -> &'static str {
        "KVzip"
    }

    fn summary(&self) -> &'static str {
        "The entries the model attends to most when asked to repeat the prompt, one share over every layer and head (kvpress's KVzipPress; costs about one more prefill)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Repeat]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let scores = ctx.inputs().repeat_scores(self.label())?;
        let n = ctx.prompt_len();
        let sinks = count(ctx.settings(), &SINKS).min(n);
        let ranked = scores.slice(ndarray::s![.., .., sinks..]).to_owned();
        let ranked = ctx.inputs().kv_head_scores_at(ranked, ctx.settings());
        Order::scored(n, Protected::Sinks(sinks), sinks, ranked)
    }

    fn spread(&self, _: &PolicySettings) -> Spread {
        Spread::Global
    }
}

/// A count parameter of `settings` as a `usize`.
fn count(settings: &PolicySettings, param: &Count) -> usize {
    usize::try_from(settings.get(param)).unwrap_or(usize::MAX)
}

/// The repeat pass an inspection must run for KVzip under `settings`.
pub fn capture(settings: &PolicySettings) -> RepeatCapture {
    RepeatCapture {
        n_sink: count(settings, &SINKS),
        chunk_size: count(settings, &CHUNK_SIZE),
    }
}

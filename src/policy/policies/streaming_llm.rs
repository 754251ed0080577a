//! StreamingLLM: the first `sinks` tokens (attention sinks) and the most recent ones.
//!
//! As KVCache-Factory's `StreamingLLMKVCluster` with its window `B − 4`: positions
//! `[0, sinks)` and the last `B − sinks`. Keys keep their original positions (no position
//! shift, as in the one-shot references). A budget below `sinks` keeps the first `B` tokens.

use crate::policy::params::{Count, Param};
use crate::policy::{Budget, Input, Order, OrderContext, Policy, PolicyError, PolicySettings};

/// Attention-sink tokens kept at the start. Default 4.
pub static SINKS: Count = Count {
    key: "sinks",
    label: "Sinks",
    help: "First tokens StreamingLLM always keeps",
    default: 4,
};

static PARAMS: [Param; 1] = [Param::Count(&SINKS)];

/// The sinks, then the most recent entries.
pub struct StreamingLlm;

impl Policy for StreamingLlm {
    fn id(&self) -> &'static str {
        "streamingllm"
    }

    fn label(&self) -> &'static str {
        "StreamingLLM"
    }

    fn summary(&self) -> &'static str {
        "The first sink tokens and the most recent ones"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        Vec::new()
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let sinks = usize::try_from(ctx.settings().get(&SINKS)).unwrap_or(usize::MAX);
        Order::same_in_every_row(ctx.layers(), ctx.heads(), ranking(ctx.prompt_len(), sinks))
    }

    fn note(&self, budget: Budget, settings: &PolicySettings) -> Option<String> {
        let sinks = settings.get(&SINKS);
        let asked = budget.asked();
        ((asked as u64) < sinks).then(|| {
            format!("budget {asked} is below the {sinks} sink tokens: clamped to the first {asked} entries")
        })
    }
}

/// Positions in keep order: the sinks from the start, then the rest from the most recent back.
pub(crate) fn ranking(n: usize, sinks: usize) -> Vec<u32> {
    let first = sinks.min(n);
    (0..first)
        .chain((first..n).rev())
        .map(|p| p as u32)
        .collect()
}

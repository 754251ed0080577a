//! Full KV: every entry stays; the budget is ignored. The reference every policy is compared to.

use crate::policy::{
    Budget, Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Spread,
};

/// Keeps all `n` entries of every layer and head.
pub struct FullKv;

impl Policy for FullKv {
    fn id(&self) -> &'static str {
        "full"
    }

    fn label(&self) -> &'static str {
        "Full KV"
    }

    fn summary(&self) -> &'static str {
        "Keeps everything (the reference answer)"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        Vec::new()
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let n = ctx.prompt_len() as u32;
        Order::same_in_every_row(ctx.layers(), ctx.heads(), (0..n).collect())
    }

    fn spread(&self, _: &PolicySettings) -> Spread {
        Spread::Everything
    }

    fn note(&self, budget: Budget, _: &PolicySettings) -> Option<String> {
        Some(format!(
            "Full KV ignores the budget: all {} entries are kept",
            budget.prompt_len()
        ))
    }
}

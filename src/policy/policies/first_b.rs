//! First B: keeps the first `B` prompt entries of every row. A toy, registered in test builds
//! only: ARCHITECTURE.md's worked example of adding a policy, and the proof that this file and
//! its registry line are all a policy needs (`policy::tests::registry`).

use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings};

/// The first `B` entries of the prompt.
pub struct FirstB;

impl Policy for FirstB {
    fn id(&self) -> &'static str {
        "first-b"
    }

    fn label(&self) -> &'static str {
        "First B"
    }

    fn summary(&self) -> &'static str {
        "The first B entries of the prompt"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        Vec::new()
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let n = ctx.prompt_len() as u32;
        Order::same_in_every_row(ctx.layers(), ctx.heads(), (0..n).collect())
    }
}

//! H2O at prefill (KVCache-Factory's `H2OKVCluster`, causal as fixed upstream): the attention
//! each key receives from **every** prompt query, accumulated during prefill
//! ([`crate::session::Session::accumulated`]). No pooling; the window `w` is always kept and the
//! top `B − w` of `[0, n − w)` by accumulated attention are added.
//!
//! Accumulated scores favour early keys (more queries see them); that bias is H2O's, not a bug.

use super::snapkv;
use crate::attention::Pooling;
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};

/// The window plus the keys every prompt query attended to most.
pub struct H2o;

impl Policy for H2o {
    fn id(&self) -> &'static str {
        "h2o"
    }

    fn label(&self) -> &'static str {
        "H2O"
    }

    fn summary(&self) -> &'static str {
        "The window plus the keys every prompt query attended to most"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Accumulated]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let accumulated = ctx.inputs().accumulated()?;
        let scores = snapkv::scored_range(ctx, accumulated, Pooling::None)?;
        Order::scored(ctx.prompt_len(), Protected::Window(ctx.window()), 0, scores)
    }
}

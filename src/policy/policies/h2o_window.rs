//! H2O as the Judge Q group's baseline code runs it (`Lookahead_Q-Cache`, `H2OKVCluster`):
//! only the last `w` queries score, summed, **without pooling**: SnapKV without pooling.

use super::snapkv;
use crate::attention::Pooling;
use crate::policy::{
    Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected, Variant,
};

static VARIANTS: [Variant; 1] = [Variant {
    id: "snapkv-nopool",
    label: "SnapKV, no pooling",
    settings: unpooled,
}];

/// The window plus the top keys by unpooled window attention.
pub struct H2oWindow;

impl Policy for H2oWindow {
    fn id(&self) -> &'static str {
        "h2o-window"
    }

    fn label(&self) -> &'static str {
        "H2O (window)"
    }

    fn summary(&self) -> &'static str {
        "The window plus the top keys by unpooled window attention"
    }

    fn variants(&self) -> &'static [Variant] {
        &VARIANTS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Window]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let scores = snapkv::scores(ctx, Pooling::None, self.label())?;
        Order::scored(ctx.prompt_len(), Protected::Window(ctx.window()), 0, scores)
    }
}

/// `settings` without pooling (the method and its pooled oracle alike): SnapKV without pooling,
/// the H2O of the Judge Q authors' code.
fn unpooled(settings: &PolicySettings) -> PolicySettings {
    PolicySettings {
        pooling: Pooling::None,
        ..settings.clone()
    }
}

//! Ada-KV (`FFY0/AdaKV`, `AdaptiveSnapKVCluster`): SnapKV's order, with the layer's selection
//! budget `H·(B − w)` spread over its heads by a global top-k of their scores, then floored
//! ([`crate::policy::Spread::HeadAdaptive`]). The heads are query or KV heads as the
//! granularity says (Ada-KV's `gqa_support` = KV heads).

use super::snapkv::SnapKv;
use crate::policy::params::{Number, Param};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Spread};

/// Ada-KV's floor α: every head is guaranteed `⌊α·(B − w)⌋` plus `(1 − α)` of its share of the
/// layer's global top-k. Default 0.2 (Ada-KV's LongBench runs).
pub static FLOOR_ALPHA: Number = Number {
    key: "ada_floor_alpha",
    label: "Ada-KV floor α",
    help: "Share of (budget − window) every head is guaranteed before the layer's top entries are shared out (Ada-KV's default 0.2)",
    default: 0.2,
    min: 0.0,
    max: 1.0,
    step: 0.01,
    invalid: "Ada-KV's floor alpha must lie in [0, 1] (default 0.2)",
};

static PARAMS: [Param; 1] = [Param::Number(&FLOOR_ALPHA)];

/// SnapKV scores with budgets shared out between the heads of a layer.
pub struct AdaKv;

impl Policy for AdaKv {
    fn id(&self) -> &'static str {
        "adakv"
    }

    fn label(&self) -> &'static str {
        "Ada-KV"
    }

    fn summary(&self) -> &'static str {
        "SnapKV scores with budgets shared out between the heads of a layer"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, settings: &PolicySettings) -> Vec<Input> {
        SnapKv.needs(settings)
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        ctx.order_of(&SnapKv)
    }

    fn spread(&self, settings: &PolicySettings) -> Spread {
        Spread::HeadAdaptive {
            floor_alpha: settings.get(&FLOOR_ALPHA),
        }
    }
}

//! Ada-KV over ExpectedAttention (kvpress 0.5.5's `AdaKVPress(ExpectedAttentionPress())`, the
//! leading training-free configuration of kvpress's RULER leaderboard): ExpectedAttention's
//! order, with each layer's budget spread over its heads as kvpress's `AdaKVPress` does
//! ([`crate::policy::Spread::Safeguarded`]): every head first keeps its top `max(1, ⌊α·B⌋)`
//! entries (its sinks among them), then the layer's remaining budget goes to the highest
//! expected-attention scores of any of its heads. kvpress shares between KV heads: use the
//! `kv-head-mean` granularity to match it.
//!
//! kvpress's safeguard differs from Ada-KV's own floor (`adakv`: `⌊α·(B − w)⌋` plus `(1 − α)`
//! of each head's share of the layer's top entries), so it has its own parameter.

use super::expected_attention::{self, ExpectedAttention};
use crate::policy::params::{Number, Param};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Spread};

/// kvpress's `alpha_safeguard`: the share of the budget each head keeps by its own scores.
/// Default 0.20.
pub static SAFEGUARD: Number = Number {
    key: "adakv_safeguard_alpha",
    label: "AdaKV safeguard α (kvpress)",
    help: "Share of the budget every head keeps by its own scores before the layer's remaining budget goes to the highest scores of any head (kvpress's AdaKVPress alpha_safeguard, default 0.20)",
    default: 0.2,
    min: 0.0,
    max: 1.0,
    step: 0.01,
    invalid: "kvpress's AdaKV safeguard alpha must lie in [0, 1] (default 0.20)",
};

static PARAMS: [Param; 6] = [
    expected_attention::PARAMS[0],
    expected_attention::PARAMS[1],
    expected_attention::PARAMS[2],
    expected_attention::PARAMS[3],
    expected_attention::PARAMS[4],
    Param::Number(&SAFEGUARD),
];

/// ExpectedAttention's scores with budgets shared out between the heads of a layer.
pub struct AdaKvExpectedAttention;

impl Policy for AdaKvExpectedAttention {
    fn id(&self) -> &'static str {
        "adakv-expected-attention"
    }

    fn label(&self) -> &'static str {
        "AdaKV-ExpectedAttention"
    }

    fn summary(&self) -> &'static str {
        "ExpectedAttention's scores with budgets shared out between the heads of a layer (kvpress's AdaKVPress)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, settings: &PolicySettings) -> Vec<Input> {
        ExpectedAttention.needs(settings)
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        ctx.order_of(&ExpectedAttention)
    }

    fn spread(&self, settings: &PolicySettings) -> Spread {
        Spread::Safeguarded {
            alpha: settings.get(&SAFEGUARD),
        }
    }
}

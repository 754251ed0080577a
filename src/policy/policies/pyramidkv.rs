//! PyramidKV (KVCache-Factory `PyramidKVCluster.update_kv` @ffac160): SnapKV's order with
//! per-layer budgets decreasing linearly from the first layer to the last (the schedule and its
//! fallbacks: [`crate::policy::Spread::Pyramid`]).

use super::snapkv::SnapKv;
use crate::policy::params::{Number, Param};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Spread};

/// PyramidKV's β: the last layer selects about `(B − w) / β` entries. Default 20.
pub static BETA: Number = Number {
    key: "pyramid_beta",
    label: "PyramidKV β",
    help: "The last layer selects about (budget − window) / β entries (KVCache-Factory's default 20)",
    default: 20.0,
    min: 1.0,
    max: f64::MAX,
    step: 0.5,
    invalid: "PyramidKV's beta must be a number of at least 1 (default 20)",
};

static PARAMS: [Param; 1] = [Param::Number(&BETA)];

/// SnapKV with larger budgets in early layers.
pub struct PyramidKv;

impl Policy for PyramidKv {
    fn id(&self) -> &'static str {
        "pyramidkv"
    }

    fn label(&self) -> &'static str {
        "PyramidKV"
    }

    fn summary(&self) -> &'static str {
        "SnapKV with larger budgets in early layers"
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
        Spread::Pyramid {
            beta: settings.get(&BETA),
        }
    }
}

//! CriticalKV over SnapKV (kvpress 0.5.5's `CriticalKVPress(SnapKVPress())`): SnapKV's pooled
//! window scores, rescaled by each value's output-projected L1 norm, in two stages
//! ([`crate::policy::critical`]).
//!
//! SnapKV's scores enter as kvpress's: the mean over the window rows (judgeq's sums divided by
//! the rows), pooled and reduced per head under the settings, the window at its layer's highest
//! score plus one. kvpress's SnapKV itself scores with a window of 64, average pooling of 5 and
//! the mean over each GQA group after pooling: `--window 64 --pooling avg5 --granularity
//! kv-head-mean --group-order after-pooling` match it.

use super::snapkv;
use crate::attention::QuerySource;
use crate::policy::critical::{self, EPSILON, FIRST_STAGE_RATIO};
use crate::policy::params::Param;
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings};

static PARAMS: [Param; 2] = [Param::Number(&EPSILON), Param::Number(&FIRST_STAGE_RATIO)];

/// SnapKV's top keys, then the top keys by SnapKV's score times the value's projected norm.
pub struct CriticalKvSnapKv;

impl Policy for CriticalKvSnapKv {
    fn id(&self) -> &'static str {
        "criticalkv-snapkv"
    }

    fn label(&self) -> &'static str {
        "CriticalKV (SnapKV)"
    }

    fn summary(&self) -> &'static str {
        "Half the budget by SnapKV's scores, the rest by those scores times ‖W_o v‖₁ (kvpress's CriticalKVPress over SnapKVPress)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Window, Input::ProjectedValueNorms]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let scored = snapkv::scores(ctx, ctx.settings().pooling, self.label())?;
        let rows = ctx.inputs().source_rows(QuerySource::Window);
        let base = critical::full_scores(ctx.prompt_len(), &scored, |_| rows);
        critical::two_stage_order(ctx, base, self.label())
    }
}

//! Oracle: the tokens the model decodes with the full cache score the keys (sum of their raw
//! rows per head, as the Judge Q paper's hit rate ranks them; pooled like the other methods only
//! when `oracle_pooling` is on) and the top `B` of the whole prompt are kept. It cannot run at
//! inference (the answer is not known yet); it is the upper bound Judge Q's soft tokens are
//! trained to imitate, and the reference set of the hit rate.
//!
//! [`PooledOracle`] (`oracle-pooled`) ranks the same scores as Judge Q ranks its soft tokens'
//! (pooled, whatever `oracle_pooling` says): the kept set of soft tokens that imitate the answer
//! exactly (the optimum of the paper's loss), so its hit rate against the raw Oracle is what
//! that objective, fully met, would give Judge Q at that pooling.

use crate::attention::{Pooling, QuerySource};
use crate::policy::params::{Param, Switch};
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings, Protected};

/// Whether the Oracle smooths the decoded tokens' scores with the settings' pooling before its
/// top-`B`. Default off: the Oracle ranks the decoded tokens' raw attention (summed over the
/// answer, per head), which is how the Judge Q paper defines the critical-KV hit rate. On is a
/// variant ("pooled oracle"): the Oracle then runs the same scoring pipeline as SnapKV and
/// Judge Q with only the queries changed, so pooling itself does not count as a miss.
pub static POOLED: Switch = Switch {
    key: "oracle_pooling",
    label: "Oracle pooled (variant)",
    help: "Off (the Judge Q paper's hit rate): the oracle ranks the decoded tokens' raw attention. On: it is smoothed with the same pooling as the other methods first, so pooling itself does not count as a miss",
    default: false,
};

static PARAMS: [Param; 1] = [Param::Switch(&POOLED)];

/// The top keys by the decoded answer's attention: the upper bound.
pub struct Oracle;

impl Policy for Oracle {
    fn id(&self) -> &'static str {
        "oracle"
    }

    fn label(&self) -> &'static str {
        "Oracle"
    }

    fn summary(&self) -> &'static str {
        "The top keys by the decoded answer's attention: the upper bound"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Decoded]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let settings = ctx.settings();
        let pooling = if settings.get(&POOLED) {
            settings.pooling
        } else {
            Pooling::None
        };
        answer_order(ctx, pooling, "the Oracle and the hit rate")
    }
}

/// The top of the whole prompt by the decoded answer's attention sums, pooled with `pooling`;
/// `user` names who needs the answer when it is missing.
fn answer_order(ctx: &OrderContext, pooling: Pooling, user: &str) -> Result<Order, PolicyError> {
    let sums = ctx.inputs().source_sums(QuerySource::Decoded, user)?;
    let n = ctx.prompt_len();
    let scores = ctx
        .inputs()
        .ranked_scores(sums.view(), n, pooling, ctx.settings())?;
    Order::scored(n, Protected::Nothing, 0, scores)
}

/// The answer's attention ranked as Judge Q ranks its soft tokens' (variant a: pooled with the
/// settings' pooling, the top `B` of the whole prompt): what Judge Q would keep if its soft
/// tokens attended exactly as the decoded answer does, the optimum of the paper's loss. Its
/// hit rate against the (raw) Oracle is what that objective, fully met, would give Judge Q at
/// that pooling. Like the Oracle, it cannot run at inference.
pub struct PooledOracle;

impl Policy for PooledOracle {
    fn id(&self) -> &'static str {
        "oracle-pooled"
    }

    fn label(&self) -> &'static str {
        "Oracle, pooled like Judge Q"
    }

    fn summary(&self) -> &'static str {
        "The decoded answer's attention, pooled and ranked as Judge Q ranks its soft tokens': what exact soft tokens would keep"
    }

    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Decoded]
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        answer_order(ctx, ctx.settings().pooling, self.label())
    }
}

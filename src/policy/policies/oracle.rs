//! Oracle: the tokens the model decodes with the full cache score the keys (sum of their raw
//! rows per head, as the Judge Q paper's hit rate ranks them; pooled like the other methods only
//! when `oracle_pooling` is on) and the top `B` of the whole prompt are kept. It cannot run at
//! inference (the answer is not known yet); it is the upper bound Judge Q's soft tokens are
//! trained to imitate, and the reference set of the hit rate.

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
        let sums = ctx
            .inputs()
            .source_sums(QuerySource::Decoded, "the Oracle and the hit rate")?;
        let pooling = if settings.get(&POOLED) {
            settings.pooling
        } else {
            Pooling::None
        };
        let n = ctx.prompt_len();
        let scores = ctx
            .inputs()
            .ranked_scores(sums.view(), n, pooling, settings)?;
        Order::scored(n, Protected::Nothing, 0, scores)
    }
}

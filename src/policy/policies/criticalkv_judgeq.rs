//! CriticalKV over Judge Q: Judge Q's soft-token scores (its variant and pooling under the
//! settings), rescaled by each value's output-projected L1 norm, in two stages
//! ([`crate::policy::critical`]), as kvpress's `CriticalKVPress` rescales SnapKV's. No kvpress
//! press scores with soft tokens; the tests check it against the formula.
//!
//! Judge Q's scores enter as means over the soft rows (the window's in its
//! `judgeq_window_layers`); in variant (b) the window it keeps scores its layer's highest score
//! plus one, as kvpress pads SnapKV's window.

use super::judgeq::{self, KEEP_WINDOW, WINDOW_LAYERS};
use crate::policy::critical::{self, EPSILON, FIRST_STAGE_RATIO};
use crate::policy::params::Param;
use crate::policy::{Input, Order, OrderContext, Policy, PolicyError, PolicySettings};

static PARAMS: [Param; 4] = [
    Param::Number(&EPSILON),
    Param::Number(&FIRST_STAGE_RATIO),
    Param::Switch(&KEEP_WINDOW),
    Param::Count(&WINDOW_LAYERS),
];

/// Judge Q's top keys, then the top keys by Judge Q's score times the value's projected norm.
pub struct CriticalKvJudgeQ;

impl Policy for CriticalKvJudgeQ {
    fn id(&self) -> &'static str {
        "criticalkv-judgeq"
    }

    fn label(&self) -> &'static str {
        "CriticalKV (Judge Q)"
    }

    fn summary(&self) -> &'static str {
        "Half the budget by Judge Q's scores, the rest by those scores times ‖W_o v‖₁ (CriticalKV over Judge Q; needs soft tokens)"
    }

    fn params(&self) -> &'static [Param] {
        &PARAMS
    }

    fn needs(&self, settings: &PolicySettings) -> Vec<Input> {
        let mut needs = vec![Input::Soft, Input::ProjectedValueNorms];
        if settings.get(&WINDOW_LAYERS) > 0 {
            needs.push(Input::Window);
        }
        needs
    }

    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let (_, scored) = judgeq::ranked_scores(ctx)?;
        let base = critical::full_scores(ctx.prompt_len(), &scored, |l| {
            judgeq::rows_per_layer(ctx, l)
        });
        critical::two_stage_order(ctx, base, self.label())
    }
}

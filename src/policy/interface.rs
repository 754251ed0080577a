//! What a policy is: the [`Policy`] trait, the session [`Input`]s it can ask for, the
//! [`OrderContext`] it orders rows in, and the named [`Variant`]s it may offer.
//!
//! A policy answers three questions, and nothing else about it is written anywhere but its own
//! file and its registry line (`policies/mod.rs`):
//! 1. **what it needs** from the session ([`Policy::needs`]);
//! 2. **how it orders each `[layer, head]` row** ([`Policy::order`]): scores over a key range
//!    after the entries it always keeps (the window), or a fixed order; its kept set at a count
//!    `c` is the first `c` positions of its order (a two-stage order, CriticalKV's, merges two
//!    rankings at a share of `c`);
//! 3. **how it spreads a budget over layers and heads** ([`Policy::spread`]): `B` per row,
//!    PyramidKV's per-layer schedule, Ada-KV's head-adaptive shares, one global share, or
//!    everything.
//!
//! The bank, the plain [`super::select`], the CLI, the explorer, `eval`, `judgeq tasks` and the
//! exports only ever call these methods.

use std::sync::{Mutex, PoisonError};

use super::params::Param;
use super::policies::{kvzip, lookahead};
use super::{Budget, Order, PolicyError, PolicyId, PolicySettings, ScoreInputs, Spread};
use crate::session::PrefillCapture;

/// One KV-cache eviction policy. Implementations are unit structs registered once in
/// `policies/mod.rs`; [`super::PolicyId`] is the copyable handle the rest of the crate passes.
pub trait Policy: Send + Sync {
    /// Machine name on the command line, in file names and saved settings (`snapkv`,
    /// `h2o-window`): lowercase letters, digits and `-`, unique in the registry.
    fn id(&self) -> &'static str;

    /// Human name (`SnapKV`, `H2O (window)`).
    fn label(&self) -> &'static str;

    /// One line about what it keeps, for tooltips and `--help`.
    fn summary(&self) -> &'static str;

    /// The parameters it reads from [`PolicySettings`] besides the shared ones (window,
    /// pooling, granularity, group order). Default: none.
    fn params(&self) -> &'static [Param] {
        &[]
    }

    /// Named variants: the policy under settings of their own, with ids of their own (rows of
    /// `eval` and `judgeq tasks`, e.g. `judgeq-window`). Default: none.
    fn variants(&self) -> &'static [Variant] {
        &[]
    }

    /// The session inputs it scores with under `settings`, in the order they are checked: a
    /// bank or a selection fails early, with the missing input named, when one is absent.
    fn needs(&self, settings: &PolicySettings) -> Vec<Input>;

    /// How each row is ordered: the kept set of row `[l, h]` at count `c` is the first `c`
    /// positions of the order. Computed once per bank (and shared between policies that reuse
    /// another's order through [`OrderContext::order_of`]).
    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError>;

    /// How a budget becomes a count per row. Default: `B` in every row ([`Spread::PerHead`]).
    fn spread(&self, settings: &PolicySettings) -> Spread {
        let _ = settings;
        Spread::PerHead
    }

    /// A remark of the policy's own on its selection at `budget` (below the prompt length),
    /// such as StreamingLLM's clamp below its sinks. The budget's own note, the clamp to the
    /// entries the order always keeps and the spread's note are made elsewhere. Default: none.
    fn note(&self, budget: Budget, settings: &PolicySettings) -> Option<String> {
        let _ = (budget, settings);
        None
    }
}

/// A session input a policy can score with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// The last prompt window's attention rows (SnapKV's observation window).
    Window,
    /// The soft tokens' attention rows (Judge Q).
    Soft,
    /// The decoded answer's attention rows (the Oracle).
    Decoded,
    /// Lookahead Q-Cache's draft tokens' attention rows; drafted only when asked for, as the
    /// asking policy's settings say ([`prefill_capture`]).
    Lookahead,
    /// KVzip's repeat scores: the most attention each key gets when the model repeats the
    /// prompt; computed only when asked for, as the asking policy's settings say
    /// ([`prefill_capture`]).
    Repeat,
    /// The attention every prompt query gave each key, accumulated during prefill (H2O).
    Accumulated,
    /// The prompt's post-RoPE keys (Knorm, KeyDiff, ExpectedAttention); captured by the prefill
    /// only when asked for.
    Keys,
    /// The prompt's values (LagKV); captured only when asked for.
    Values,
    /// The L2 norm of every prompt value (ExpectedAttention's rescaling); captured only when
    /// asked for.
    ValueNorms,
    /// The L1 norm of every prompt value through each query head's slice of the output
    /// projection (CriticalKV's rescaling); captured only when asked for.
    ProjectedValueNorms,
    /// Mean and covariance of the prompt's pre-RoPE queries (ExpectedAttention); captured only
    /// when asked for.
    QueryStatistics,
}

impl Input {
    /// What the input is, for messages (`soft tokens`).
    pub fn describe(self) -> &'static str {
        match self {
            Input::Window => "last-window rows",
            Input::Soft => "soft tokens",
            Input::Decoded => "decoded rows",
            Input::Lookahead => "lookahead draft rows",
            Input::Repeat => "KVzip repeat scores",
            Input::Accumulated => "accumulated prefill attention",
            Input::Keys => "post-RoPE keys",
            Input::Values => "values",
            Input::ValueNorms => "value norms",
            Input::ProjectedValueNorms => "output-projected value norms",
            Input::QueryStatistics => "query statistics",
        }
    }

    /// Whether an inspection captures this input only when a chosen policy asks for it (so a
    /// session without it can get it by inspecting again).
    pub fn on_request(self) -> bool {
        matches!(self, Input::Lookahead | Input::Repeat) || self.prefill_capture().any()
    }

    /// What the prefill must capture for this input (nothing for attention rows, which every
    /// inspection captures; the lookahead drafts and the repeat pass, which depend on settings,
    /// are asked for by [`prefill_capture`]).
    pub fn prefill_capture(self) -> PrefillCapture {
        let mut capture = PrefillCapture::default();
        match self {
            Input::Keys => capture.keys = true,
            Input::Values => capture.values = true,
            Input::ValueNorms => capture.value_norms = true,
            Input::ProjectedValueNorms => capture.projected_value_norms = true,
            Input::QueryStatistics => capture.query_statistics = true,
            Input::Window
            | Input::Soft
            | Input::Decoded
            | Input::Lookahead
            | Input::Repeat
            | Input::Accumulated => {}
        }
        capture
    }
}

/// What the prefill must capture so that every one of `policies` can rank under `settings`:
/// the CLI, `eval`, `judgeq tasks` and the explorer ask for this before inspecting, so a run
/// without such policies captures nothing beyond attention rows.
pub fn prefill_capture<'a>(
    policies: impl IntoIterator<Item = (PolicyId, &'a PolicySettings)>,
) -> PrefillCapture {
    policies
        .into_iter()
        .flat_map(|(policy, settings)| {
            policy
                .needs(settings)
                .into_iter()
                .map(move |input| match input {
                    Input::Lookahead => PrefillCapture {
                        lookahead: Some(lookahead::capture(settings)),
                        ..PrefillCapture::default()
                    },
                    Input::Repeat => PrefillCapture {
                        repeat: Some(kvzip::capture(settings)),
                        ..PrefillCapture::default()
                    },
                    other => other.prefill_capture(),
                })
        })
        .fold(PrefillCapture::default(), PrefillCapture::union)
}

/// A policy under settings of its own, named like a policy (`judgeq-window`): one row of the
/// `eval` and `judgeq tasks` tables.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Machine name, unique among policy and variant ids.
    pub id: &'static str,
    /// Human name (`Judge Q, window kept`).
    pub label: &'static str,
    /// Its settings, made from the run's base settings (window, pooling, granularity).
    pub settings: fn(&PolicySettings) -> PolicySettings,
}

/// Where policies order their rows: one session's inputs under one setting, with each
/// policy's order computed at most once (PyramidKV and Ada-KV order as SnapKV does and share
/// its order, and with it the bank's tables).
pub struct OrderContext<'i, 'a> {
    inputs: &'i ScoreInputs<'a>,
    settings: &'i PolicySettings,
    orders: Mutex<Vec<(&'static str, Order)>>,
}

impl<'i, 'a> OrderContext<'i, 'a> {
    /// A context over `inputs` under `settings`, with no order computed yet.
    pub fn new(inputs: &'i ScoreInputs<'a>, settings: &'i PolicySettings) -> Self {
        Self {
            inputs,
            settings,
            orders: Mutex::new(Vec::new()),
        }
    }

    /// The session's score sources.
    pub fn inputs(&self) -> &'i ScoreInputs<'a> {
        self.inputs
    }

    /// The settings.
    pub fn settings(&self) -> &'i PolicySettings {
        self.settings
    }

    /// Layers of every row grid.
    pub fn layers(&self) -> usize {
        self.inputs.layers()
    }

    /// Heads that own a keep set under the settings' granularity.
    pub fn heads(&self) -> usize {
        self.inputs.heads(self.settings)
    }

    /// Prompt tokens (the positions of every row).
    pub fn prompt_len(&self) -> usize {
        self.inputs.prompt_len()
    }

    /// The window `w` the settings ask for, at most the prompt length.
    pub fn window(&self) -> usize {
        self.inputs.window(self.settings)
    }

    /// The order of `policy` in this context, computed on first use.
    pub fn order_of(&self, policy: &dyn Policy) -> Result<Order, PolicyError> {
        let id = policy.id();
        let cached = |orders: &Vec<(&'static str, Order)>| {
            orders
                .iter()
                .find(|(known, _)| *known == id)
                .map(|(_, order)| order.clone())
        };
        if let Some(order) = cached(&self.lock()) {
            return Ok(order);
        }
        let order = policy.order(self)?;
        let mut orders = self.lock();
        if let Some(order) = cached(&orders) {
            return Ok(order);
        }
        orders.push((id, order.clone()));
        Ok(order)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Order)>> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

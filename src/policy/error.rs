//! Errors of score preparation, selection and metrics.

use thiserror::Error;

use super::PolicyId;

/// Why a selection or a metric could not be computed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PolicyError {
    /// A budget of 0 would leave an empty cache.
    #[error("the budget must keep at least 1 KV entry per layer and head (got 0)")]
    ZeroBudget,
    /// A ratio removed outside `[0, 1)`.
    #[error(
        "a ratio of {0} is outside [0, 1): it is the share of the prompt's KV entries removed (0 keeps all, e.g. 0.5 keeps half)"
    )]
    BadRatio(f64),
    /// A ratio that is not a number.
    #[error(
        "{0:?} is not a ratio: give the share of KV entries removed, a number in [0, 1) such as 0.5"
    )]
    RatioText(String),
    /// Judge Q was asked for on a session inspected without soft tokens.
    #[error(
        "Judge Q scores with the soft-token rows, but this session has none: inspect again with a soft-token file"
    )]
    NoSoftRows,
    /// A query source has no rows to score with.
    #[error("the session has no {which} rows, which {needed_by} needs")]
    EmptySource {
        /// The source (`window`, `soft`, `decoded`).
        which: &'static str,
        /// What needs it.
        needed_by: String,
    },
    /// An input captured only on request (keys, value norms, query statistics) is absent.
    #[error(
        "the session has no {input}, which {needed_by} needs: they are captured only when a policy that needs them is chosen before inspecting, so inspect again with it chosen"
    )]
    MissingInput {
        /// The input ([`super::Input::describe`]).
        input: &'static str,
        /// What needs it.
        needed_by: String,
    },
    /// The prompt has no tokens.
    #[error("the prompt is empty: there is no KV entry to keep or evict")]
    EmptyPrompt,
    /// Arrays that must agree in shape do not.
    #[error("{what} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// Which array.
        what: String,
        /// The shape it should have.
        expected: Vec<usize>,
        /// The shape it has.
        found: Vec<usize>,
    },
    /// Scores hold NaN or infinite values.
    #[error("the {0} scores contain NaN or infinite values")]
    NonFinite(&'static str),
    /// Settings out of their valid range.
    #[error("invalid policy settings: {0}")]
    Settings(String),
    /// A policy name that names no policy.
    #[error("unknown policy `{0}` (known: {known})", known = known_policies())]
    UnknownPolicy(String),
    /// A parameter name that names no policy's parameter.
    #[error("unknown policy parameter `{0}` (known: {known})", known = known_params())]
    UnknownParam(String),
    /// A [`super::PolicyBank`] was asked for a policy it was not built with.
    #[error("{0} was not precomputed in this policy bank")]
    NotInBank(PolicyId),
    /// A budget was used with another prompt than the one it was set against.
    #[error(
        "the budget {budget} was set for a prompt of {set_for} tokens, not this one of {prompt}"
    )]
    OtherPrompt {
        /// Entries asked for.
        budget: usize,
        /// The prompt length the budget was made for.
        set_for: usize,
        /// The prompt length it was used with.
        prompt: usize,
    },
    /// A policy gave an order that is not one (a position missing or repeated, scores over
    /// protected positions, a spread by score over a fixed order).
    #[error("invalid policy order: {0}")]
    InvalidOrder(String),
}

/// Every registered policy id, for messages.
fn known_policies() -> String {
    PolicyId::all()
        .iter()
        .map(|p| p.id())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every registered parameter key, for messages.
fn known_params() -> String {
    super::policies::params()
        .iter()
        .map(|p| p.key())
        .collect::<Vec<_>>()
        .join(", ")
}

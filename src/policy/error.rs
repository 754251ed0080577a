//! Errors of score preparation, selection and metrics.

use thiserror::Error;

use super::PolicyKind;

/// Why a selection or a metric could not be computed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PolicyError {
    /// A budget of 0 would leave an empty cache.
    #[error("the budget must keep at least 1 KV entry per layer and head (got 0)")]
    ZeroBudget,
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
    #[error("unknown policy `{0}` (known: {known})", known = super::PolicyKind::ALL.map(|p| p.id()).join(", "))]
    UnknownPolicy(String),
    /// A [`super::PolicyBank`] was asked for a policy it was not built with.
    #[error("{0} was not precomputed in this policy bank")]
    NotInBank(PolicyKind),
}

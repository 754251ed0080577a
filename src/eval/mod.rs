//! Evaluation of eviction policies on held-out prompts: hit rates against the oracle, attention
//! mass kept, and the agreement of answers decoded under eviction with the full-cache answers.
//! Prompts run through [`crate::inspect`], as `judgeq inspect` and `evict` run them; `judgeq eval`
//! reproduces the Judge Q table.

pub mod error;
pub mod methods;
pub mod paired;
pub mod report;
pub mod runner;

pub use error::EvalError;
pub use methods::{Method, method_by_id, paper_methods, variant_ids};
pub use runner::{EvalRun, EvalSettings, evaluate};

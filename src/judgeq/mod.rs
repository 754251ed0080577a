//! Judge Q: trainable soft tokens appended after the prompt, whose queries score the KV cache.
//!
//! - [`soft_tokens`]: the soft-token file (plain data, no candle);
//! - [`shipped`]: the soft tokens trained for the default model, built into the binary;
//! - [`data`], [`fitting`]: prompt files and their rendering under a length limit;
//! - [`targets`]: the model's own greedy answers and their attention, cached on disk;
//! - [`objective`], [`step`]: the loss and the cheap training step (prompt prefilled once
//!   without a graph, forward and backward through the soft positions only);
//! - [`init`], [`optimizer`], [`settings`], [`checkpoint`], [`trainer`]: the training run;
//! - [`corpus`], [`retrieval`]: the training and held-out prompts made from the shared data
//!   folder, retrieval prompts among them;
//! - [`bench`](mod@bench): one training step against one plain prefill.

pub mod bench;
pub mod checkpoint;
pub mod corpus;
pub mod data;
pub mod error;
pub mod fitting;
pub mod init;
pub mod objective;
pub mod optimizer;
pub mod retrieval;
pub mod settings;
pub mod shipped;
pub mod soft_tokens;
pub mod step;
pub mod targets;
pub mod trainer;

pub use error::TrainError;
pub use settings::TrainSettings;
pub use soft_tokens::{SoftTokenError, SoftTokenMeta, SoftTokens};
pub use trainer::{Start, TrainEvent, TrainJob, TrainObserver, TrainSummary, train};

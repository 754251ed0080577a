//! judgeq: inspect KV-cache eviction decisions of long-context language models, and
//! train and evaluate Judge Q soft tokens (arXiv 2509.10798).
//!
//! The library is organised in rooms (see `ARCHITECTURE.md`):
//! - [`model`]: checkpoints, tokenizer, chat template and a transformer forward pass
//!   that captures attention rows (candle);
//! - [`attention`]: the captured rows of the three query sources and the scores derived from them;
//! - [`judgeq`]: the soft-token file format and, later, training;
//! - [`policy`]: eviction policies (scores and a budget to keep masks), live budgets, metrics;
//! - [`session`]: one run of a document through the model, as plain data;
//! - [`tasks`]: long-context tasks (needle-in-a-haystack, RULER, LongBench, L-Eval, LongEval),
//!   their metrics, and the runner behind `judgeq tasks`;
//! - [`progress`]: progress reporting and cancellation of long jobs;
//! - [`rng`]: the one seeded random generator (reproducible on every platform);
//! - [`paired`]: paired comparisons of two methods on the same prompts or samples (mean
//!   difference, bootstrap interval, wins), for `judgeq eval` and `judgeq tasks`;
//! - [`bom`]: the byte-order mark every reader of JSON and JSON Lines drops;
//! - [`atomic_write`]: atomic file writes that never replace a user's file unless asked, with
//!   cleanup of temporaries that killed runs left (under `export` and `judgeq` alike);
//! - [`document`]: reading the user's document (UTF-8 text, not binary, not empty);
//! - [`export`]: every file judgeq writes (arrays, manifest, metrics, figures), atomically;
//! - [`worker`]: the compute thread and the messages the app exchanges with it;
//! - `app`: the explorer, an eframe app that never runs the model itself (the `gui` feature,
//!   on by default).
//!
//! The library never writes to the terminal nor ends the process: it reports through
//! [`progress`] and returns typed errors; the binary decides what to print and when to exit.

#![warn(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

#[cfg(feature = "gui")]
pub mod app;
pub mod atomic_write;
pub mod attention;
pub mod bom;
pub mod document;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod judgeq;
pub mod model;
pub mod paired;
pub mod policy;
pub mod progress;
pub mod rng;
pub mod session;
pub mod tasks;
pub mod worker;

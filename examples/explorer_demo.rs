//! The explorer on synthetic attention, without a model: `cargo run --release --example explorer_demo`.
//! The same as `judgeq --demo`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a demo program: a failure ends it with its message"
)]

fn main() -> eframe::Result {
    judgeq::app::run(judgeq::app::AppOptions::demo())
}

//! The explorer on synthetic attention, without a model: `cargo run --release --example explorer_demo`.
//! The same as `judgeq --demo`.

fn main() -> eframe::Result {
    judgeq::app::run(judgeq::app::AppOptions::demo())
}

//! The `judgeq` binary: the explorer when run without a subcommand, the same library headless
//! with one.

mod cli;

fn main() -> anyhow::Result<()> {
    cli::run()
}

//! No subcommand in a build without the `gui` feature: there is no explorer window to open, so
//! the bare `judgeq` says so and names what does work.

use clap::Args;

/// The explorer's options, none in a build without it.
#[derive(Args, Debug, Default)]
pub struct NoExplorerArgs {}

/// Refuses: this build has no desktop app.
pub fn run(_args: &NoExplorerArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this judgeq was built without the desktop app (the `gui` feature); run one of its \
         subcommands (`judgeq --help` lists them) or build it with default features for the explorer"
    )
}

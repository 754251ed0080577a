//! Command-line interface: no subcommand opens the explorer; subcommands run the same library
//! headless, with progress on stderr and results on stdout or in files.

mod bench;
mod evict;
mod fetch;
mod generate;
mod gui;
mod inspect;
mod model_args;
mod progress_bar;

use clap::{Parser, Subcommand};

/// Inspect KV-cache eviction decisions and train Judge Q soft tokens.
#[derive(Parser, Debug)]
#[command(name = "judgeq", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    gui: gui::GuiArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Download and verify the default model (SmolLM2-135M-Instruct) into the user cache
    FetchModel(fetch::FetchArgs),
    /// Answer a chat message greedily
    Generate(generate::GenerateArgs),
    /// Capture the attention of the last-window, soft-token and decoded queries over a document
    Inspect(inspect::InspectArgs),
    /// Compare eviction policies at several budgets on one document
    Evict(evict::EvictArgs),
    /// Time prefill with and without attention capture
    Bench(bench::BenchArgs),
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        None => gui::run(&cli.gui),
        Some(Command::FetchModel(args)) => fetch::run(args),
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Evict(args)) => evict::run(args),
        Some(Command::Bench(args)) => bench::run(args),
    }
}

//! The `judgeq` binary: subcommands over the library.

mod cli;

use clap::{Parser, Subcommand};

/// Inspect KV-cache eviction decisions and train Judge Q soft tokens.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train Judge Q soft tokens on a prompt file.
    Train(cli::train::TrainArgs),
    /// Evaluate eviction policies (Judge Q against the baselines) on held-out prompts.
    Eval(cli::eval::EvalArgs),
    /// Make the training and held-out prompt files from the shared data folder.
    PrepareData(cli::prepare_data::PrepareDataArgs),
    /// Time one training step against one plain prefill.
    TrainBench(cli::train_bench::TrainBenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(args) => cli::train::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::PrepareData(args) => cli::prepare_data::run(args),
        Command::TrainBench(args) => cli::train_bench::run(args),
    }
}

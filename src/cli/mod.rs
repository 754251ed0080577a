//! Command-line interface: no subcommand opens the explorer (in a build with the `gui` feature,
//! the default); subcommands run the same library headless, with progress on stderr and results
//! on stdout or in files.

mod bench;
mod bench_agreement;
mod bench_model;
mod checks;
mod eval;
mod evict;
mod fetch;
mod figure;
mod generate;
#[cfg(feature = "gui")]
mod gui;
mod inspect;
mod methods;
mod model_args;
#[cfg(not(feature = "gui"))]
mod no_gui;
mod placement_help;
mod policy_help;
mod prepare_data;
mod progress_bar;
mod signals;
mod task_sets;
mod tasks;
mod train;
mod train_bench;
mod train_progress;

use clap::{Parser, Subcommand};
#[cfg(feature = "gui")]
use gui::{GuiArgs as ExplorerArgs, run as run_explorer};
#[cfg(not(feature = "gui"))]
use no_gui::{NoExplorerArgs as ExplorerArgs, run as run_explorer};

/// Inspect KV-cache eviction decisions and train Judge Q soft tokens.
#[derive(Parser, Debug)]
#[command(name = "judgeq", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    gui: ExplorerArgs,
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
    /// Draw the explorer's three-panel figure (SVG, 300-dpi PNG, JSON sidecar) from an export folder
    Figure(figure::FigureArgs),
    /// Time prefill with and without attention capture (memory against its estimate), decoding
    /// under many masks batched, or compare two dtypes or devices
    Bench(bench::BenchArgs),
    /// Train Judge Q soft tokens on a prompt file
    Train(train::TrainArgs),
    /// Evaluate eviction policies (Judge Q against the baselines) on held-out prompts
    Eval(eval::EvalArgs),
    /// Make the training and held-out prompt files from the shared data folder
    PrepareData(prepare_data::PrepareDataArgs),
    /// Time one soft-token training step against one plain prefill
    TrainBench(train_bench::TrainBenchArgs),
    /// Task scores of every method at every budget (needle, RULER, LongBench, L-Eval, LongEval)
    Tasks(tasks::TasksArgs),
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        None => run_explorer(&cli.gui),
        Some(Command::FetchModel(args)) => fetch::run(args),
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Evict(args)) => evict::run(args),
        Some(Command::Figure(args)) => figure::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::PrepareData(args)) => prepare_data::run(args),
        Some(Command::TrainBench(args)) => train_bench::run(args),
        Some(Command::Tasks(args)) => tasks::run_tasks(args),
    }
}

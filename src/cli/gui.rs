//! No subcommand: the explorer window.

use std::path::PathBuf;

use clap::Args;
use judgeq::app::{self, AppOptions};
use judgeq::worker::engine::ModelEngine;

use super::model_args::ModelArgs;

/// Options of the explorer window.
#[derive(Args, Debug, Default)]
pub struct GuiArgs {
    /// Document to open at start
    #[arg(long, value_name = "FILE")]
    pub doc: Option<PathBuf>,
    /// Question to start with
    #[arg(long)]
    pub question: Option<String>,
    /// Judge Q soft-token file to append after the prompt
    #[arg(long, value_name = "FILE")]
    pub soft: Option<PathBuf>,
    /// Needle heatmap of a `judgeq tasks` run to open (its .json sidecar, .png or .svg under
    /// RUN/figures); click a cell to inspect its sample
    #[arg(long, value_name = "FILE")]
    pub task_figure: Option<PathBuf>,
    /// Press Run as soon as the model is ready
    #[arg(long)]
    pub run: bool,
    /// Synthetic attention instead of a model (for development and screenshots)
    #[arg(long, hide = true)]
    pub demo: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Opens the explorer; returns when its window closes.
pub fn run(args: &GuiArgs) -> anyhow::Result<()> {
    let options = if args.demo {
        AppOptions {
            task_figure: args.task_figure.clone(),
            ..AppOptions::demo()
        }
    } else {
        AppOptions {
            document: args.doc.clone(),
            question: args.question.clone(),
            model: args.model.model.clone(),
            soft_tokens: args.soft.clone(),
            run_on_start: args.run,
            task_figure: args.task_figure.clone(),
            ..AppOptions::new(ModelEngine::new(args.model.load_options()?))
        }
    };
    app::run(options).map_err(|e| anyhow::anyhow!("the explorer window failed: {e}"))
}

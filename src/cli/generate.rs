//! `judgeq generate`: a plain chat answer.

use clap::Args;
use judgeq::model::{Capture, GenerateOptions, RunPlan};

use super::checks;
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// Arguments of `judgeq generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The user message
    #[arg(long)]
    pub prompt: String,
    /// Most tokens to generate
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Renders the chat prompt, prefills it and prints the greedy answer.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    if args.prompt.trim().is_empty() {
        anyhow::bail!("--prompt is empty: give the user message to answer");
    }
    checks::at_least_one(args.max_tokens, "--max-tokens", "there would be no answer")?;
    args.model.check()?;
    let model = args.model.load(&progress)?;
    let prompt = model.chat_prompt(&args.prompt)?;
    model.check_fits(prompt.len(), args.max_tokens)?;
    let transformer = &model.transformer;
    let positions = prompt.len() + args.max_tokens;
    transformer.check_memory(&RunPlan::prefill(prompt.len(), positions, &Capture::NONE))?;
    let mut cache = transformer.new_cache(positions)?;
    let prefill = transformer.forward(
        &transformer.embed(&prompt.ids)?,
        &mut cache,
        &Capture::NONE,
        &progress,
    )?;
    let options = GenerateOptions {
        max_tokens: args.max_tokens,
        stop_ids: model.stop_ids.clone(),
        ..GenerateOptions::default()
    };
    let generation = transformer.generate(&mut cache, &prefill.last_logits, &options, &progress)?;
    progress.finish();
    println!("{}", model.decode_tokens(&generation.ids)?);
    Ok(())
}

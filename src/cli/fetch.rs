//! `judgeq fetch-model`: download and verify the default model.

use clap::Args;
use judgeq::model::fetch;

use super::progress_bar::StderrProgress;

/// Arguments of `judgeq fetch-model`.
#[derive(Args, Debug)]
pub struct FetchArgs {}

/// Fetches the default model into the per-user cache (or `$JUDGEQ_MODEL_DIR`) and prints its path.
pub fn run(_args: &FetchArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    let fetched = fetch::default_model(&progress)?;
    progress.finish();
    if let Some(note) = fetched.note() {
        eprintln!("note: {note}");
    }
    println!("{}", fetched.path.display());
    Ok(())
}

//! `judgeq prepare-data`: training and held-out prompt files from the shared data folder.

use std::path::PathBuf;

use clap::Args;
use judgeq::export::{Overwrite, write_new};
use judgeq::judgeq::corpus::{CorpusSettings, build_corpus, write_records};
use judgeq::model::hashing::hex;
use sha2::{Digest, Sha256};

/// Arguments of `judgeq prepare-data`.
#[derive(Args, Debug, Clone)]
pub struct PrepareDataArgs {
    /// The shared data folder (holds prompts/, leval/ and haystack/).
    #[arg(long)]
    pub shared: PathBuf,
    /// Directory for train.jsonl, held.jsonl and dev-haystack/ (documents training never sees,
    /// for choosing settings on needle tasks: `judgeq tasks niah --haystack DIR/dev-haystack`).
    #[arg(long)]
    pub out_dir: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = CorpusSettings::default().seed)]
    pub seed: u64,
    /// ShareGPT prompts in the training set.
    #[arg(long, default_value_t = CorpusSettings::default().sharegpt)]
    pub sharegpt: usize,
    /// L-Eval document + question prompts in the training set.
    #[arg(long, default_value_t = CorpusSettings::default().leval)]
    pub leval: usize,
    /// Essay + question prompts in the training set (the essays are the needle evaluation's
    /// haystack; leave at 0 to keep the evaluation unseen).
    #[arg(long, default_value_t = CorpusSettings::default().essays)]
    pub essays: usize,
    /// Retrieval prompts (facts inserted into a training document, a question about one).
    #[arg(long, default_value_t = CorpusSettings::default().retrieval)]
    pub retrieval: usize,
    /// Held-out prompts.
    #[arg(long, default_value_t = CorpusSettings::default().held)]
    pub held: usize,
    /// Shortest document window, characters.
    #[arg(long, default_value_t = CorpusSettings::default().min_window_chars)]
    pub min_window_chars: usize,
    /// Longest document window, characters.
    #[arg(long, default_value_t = CorpusSettings::default().max_window_chars)]
    pub max_window_chars: usize,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// Runs `judgeq prepare-data`.
pub fn run(args: &PrepareDataArgs) -> anyhow::Result<()> {
    let settings = CorpusSettings {
        seed: args.seed,
        sharegpt: args.sharegpt,
        leval: args.leval,
        essays: args.essays,
        retrieval: args.retrieval,
        held: args.held,
        min_window_chars: args.min_window_chars,
        max_window_chars: args.max_window_chars,
        ..CorpusSettings::default()
    };
    let corpus = build_corpus(&args.shared, &settings)?;
    std::fs::create_dir_all(&args.out_dir)?;
    for (name, records) in [("train.jsonl", &corpus.train), ("held.jsonl", &corpus.held)] {
        let path = args.out_dir.join(name);
        write_records(&path, records, args.force)?;
        let digest = hex(&Sha256::digest(std::fs::read(&path)?));
        println!(
            "{}: {} prompts, sha256 {digest}",
            path.display(),
            records.len()
        );
    }
    let dev = args.out_dir.join("dev-haystack");
    std::fs::create_dir_all(&dev)?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    for (name, text) in &corpus.dev_haystack {
        write_new(&dev.join(name), text.as_bytes(), overwrite)?;
    }
    println!(
        "{}: {} development documents",
        dev.display(),
        corpus.dev_haystack.len()
    );
    Ok(())
}

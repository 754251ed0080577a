//! `judgeq prepare-data`: training, held-out and development prompt files from the shared data
//! folder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use judgeq::export::{Overwrite, check_outputs, write_new};
use judgeq::judgeq::corpus::{CorpusSettings, build_corpus, write_records};
use judgeq::model::hashing::hex;
use sha2::{Digest, Sha256};

use super::checks;

/// Arguments of `judgeq prepare-data`.
#[derive(Args, Debug, Clone)]
pub struct PrepareDataArgs {
    /// The shared data folder (holds prompts/, leval/ and haystack/).
    #[arg(long)]
    pub shared: PathBuf,
    /// Directory for train.jsonl, held.jsonl, dev.jsonl and dev-haystack/ (documents training
    /// never sees, for choosing settings on needle tasks, `judgeq tasks niah --haystack
    /// DIR/dev-haystack`, and on answers, `judgeq eval --data DIR/dev.jsonl`).
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
    /// Development question prompts (windows of the development documents).
    #[arg(long, default_value_t = CorpusSettings::default().dev)]
    pub dev: usize,
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

/// The training, held-out and development files `prepare-data` writes into `--out-dir`.
const RECORD_FILES: [&str; 3] = ["train.jsonl", "held.jsonl", "dev.jsonl"];
/// The folder of development documents inside `--out-dir`.
const DEV_HAYSTACK: &str = "dev-haystack";

/// Runs `judgeq prepare-data`. Every output is checked before the first is written, so a
/// refusal leaves `--out-dir` as it was.
pub fn run(args: &PrepareDataArgs) -> anyhow::Result<()> {
    super::signals::install(None)?;
    if !args.shared.is_dir() {
        anyhow::bail!(
            "--shared {} is not a folder: give the shared data folder (it holds prompts/, leval/ and haystack/)",
            args.shared.display()
        );
    }
    checks::output_folder(&args.out_dir, "--out-dir")?;
    checks::clean_temporaries(&args.out_dir)?;
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    let dev = args.out_dir.join(DEV_HAYSTACK);
    if dev.exists() && !dev.is_dir() {
        anyhow::bail!(
            "{} is a file; prepare-data writes a folder there",
            dev.display()
        );
    }
    refuse_existing(&args.out_dir, &RECORD_FILES, args.force)?;
    let settings = CorpusSettings {
        seed: args.seed,
        sharegpt: args.sharegpt,
        leval: args.leval,
        essays: args.essays,
        retrieval: args.retrieval,
        held: args.held,
        dev: args.dev,
        min_window_chars: args.min_window_chars,
        max_window_chars: args.max_window_chars,
        ..CorpusSettings::default()
    };
    let corpus = build_corpus(&args.shared, &settings)?;
    let dev_names: Vec<&str> = corpus
        .dev_haystack
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    checks::clean_temporaries(&dev)?;
    refuse_existing(&dev, &dev_names, args.force)?;

    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("could not create {}", args.out_dir.display()))?;
    for (name, records) in RECORD_FILES
        .into_iter()
        .zip([&corpus.train, &corpus.held, &corpus.dev])
    {
        let path = args.out_dir.join(name);
        write_records(&path, records, args.force)?;
        let bytes = std::fs::read(&path)
            .with_context(|| format!("could not read back {}", path.display()))?;
        println!(
            "{}: {} prompts, sha256 {}",
            path.display(),
            records.len(),
            hex(&Sha256::digest(bytes))
        );
    }
    std::fs::create_dir_all(&dev).with_context(|| format!("could not create {}", dev.display()))?;
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

/// Without `--force`, refuses the files of `names` that exist in `dir` (all listed at once).
fn refuse_existing(dir: &Path, names: &[&str], force: bool) -> anyhow::Result<()> {
    if force || !dir.is_dir() {
        return Ok(());
    }
    check_outputs(dir, names, Overwrite::Refuse).map_err(|e| checks::write_error(e, force))
}

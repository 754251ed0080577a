//! `judgeq inspect`: the attention of the three query sources over one document, as files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use judgeq::document::read_document;
use judgeq::export::{
    DataExtras, ExistingExport, Overwrite, check_outputs, existing_export, export_file_names,
    row_sources, write_session_data,
};
use judgeq::inspect::{InspectRequest, inspect};
use judgeq::judgeq::shipped;
use judgeq::session::{ModelInfo, QuestionPlacement, Session};
use judgeq::tasks::journal::JOURNAL_FILE;

use super::checks;
use super::model_args::ModelArgs;
use super::progress_bar::StderrProgress;

/// What to inspect, shared by `inspect` and `evict`.
#[derive(Args, Debug)]
pub struct DocumentArgs {
    /// Text document (.txt, .md, ...) to put in the prompt
    #[arg(long, value_name = "FILE")]
    pub doc: PathBuf,
    /// Question asked about the document
    #[arg(long)]
    pub question: String,
    /// Where the question goes: end, start or after-eviction
    #[arg(
        long,
        default_value = "end",
        value_name = "PLACEMENT",
        help = super::placement_help::PLACEMENT_HELP,
        long_help = super::placement_help::PLACEMENT_LONG_HELP
    )]
    pub question_placement: QuestionPlacement,
    /// Last-window size: the prompt queries SnapKV-style methods score with
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Soft-token file (judgeq train) appended after the prompt [default: the soft tokens
    /// shipped for the default model, when the model is the default]
    #[arg(long, value_name = "FILE")]
    pub soft: Option<PathBuf>,
    /// Append no soft tokens, not even the shipped ones
    #[arg(long, conflicts_with = "soft")]
    pub no_soft: bool,
    /// Most answer tokens to decode greedily with the full cache (the oracle's queries)
    #[arg(long, default_value_t = 64)]
    pub decode: usize,
}

impl DocumentArgs {
    /// Checks the numbers and reads the document and the `--soft` file into a request (before
    /// any model work, so that bad input fails at once);
    /// [`DocumentArgs::add_shipped_soft_tokens`] completes it.
    pub fn request(&self) -> anyhow::Result<InspectRequest> {
        checks::at_least_one(
            self.window,
            "--window",
            "the window methods score with the last window's queries",
        )?;
        checks::at_least_one(
            self.decode,
            "--decode",
            "the oracle scores the cache with the decoded tokens",
        )?;
        if self.question.trim().is_empty() {
            anyhow::bail!("--question: the question is empty");
        }
        let document = read_document(&self.doc)?;
        let soft = match &self.soft {
            Some(path) => Some((path.clone(), checks::read_soft_tokens(path)?)),
            None => None,
        };
        Ok(InspectRequest {
            document,
            question: self.question.clone(),
            placement: self.question_placement,
            window: self.window,
            decode_tokens: self.decode,
            soft,
            capture: Default::default(),
        })
    }

    /// Gives a request without `--soft` or `--no-soft` the shipped soft tokens when `model` is
    /// the model they were trained for.
    pub fn add_shipped_soft_tokens(
        &self,
        request: &mut InspectRequest,
        model: &ModelInfo,
    ) -> anyhow::Result<()> {
        if self.soft.is_none() && !self.no_soft {
            request.soft = shipped::for_model(model)?;
        }
        Ok(())
    }
}

/// Where results go.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Directory for the arrays, manifest and answer (created when missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace files that already exist in DIR
    #[arg(long)]
    pub force: bool,
}

impl OutputArgs {
    /// The overwrite mode the flags ask for, after checking `--out` before any model work: a
    /// folder judgeq can write into (or create), not a file or a folder of another kind (a task
    /// run, a `manifest.json` judgeq did not write), and without `--force` not holding an
    /// export already. Temporaries a killed run left there are removed.
    pub fn overwrite(&self) -> anyhow::Result<Overwrite> {
        checks::output_folder(&self.out, "--out")?;
        checks::clean_temporaries(&self.out)?;
        if self.out.join(JOURNAL_FILE).is_file() {
            anyhow::bail!(
                "{} holds a task run (judgeq tasks), not an export; choose another --out",
                self.out.display()
            );
        }
        match existing_export(&self.out) {
            ExistingExport::Foreign(reason) => anyhow::bail!(
                "{} is not a judgeq export folder: {reason}; choose another --out",
                self.out.display()
            ),
            ExistingExport::Judgeq(_) if !self.force => anyhow::bail!(
                "{} already holds an export (manifest.json); choose another --out or pass --force to replace it",
                self.out.display()
            ),
            _ => {}
        }
        Ok(if self.force {
            Overwrite::Replace
        } else {
            Overwrite::Refuse
        })
    }

    /// Refuses, before the long work and unless `--force` was given, the files of `names` that
    /// exist in `--out`.
    pub fn check_names(&self, names: &[String]) -> anyhow::Result<()> {
        if self.force || !self.out.is_dir() {
            return Ok(());
        }
        check_outputs(&self.out, names, Overwrite::Refuse)
            .map_err(|e| checks::write_error(e, self.force))
    }

    /// Creates the directory when it is missing.
    pub fn create(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("could not create {}", self.out.display()))
    }
}

/// Arguments of `judgeq inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub document: DocumentArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Runs the inspection and writes the design's data contract into `--out`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let progress = StderrProgress::with_ctrl_c()?;
    args.model.check()?;
    let mut request = args.document.request()?;
    let overwrite = args.output.overwrite()?;
    let model = args.model.load(&progress)?;
    args.document
        .add_shipped_soft_tokens(&mut request, &model.info)?;
    args.output.check_names(&export_file_names(
        &row_sources(request.soft.is_some(), &request.capture),
        &[],
        &[],
        false,
    ))?;
    let (session, _) = inspect(&model, &request, &progress)?;
    progress.finish();
    args.output.create()?;
    let written = write_session_data(
        &args.output.out,
        &session,
        &DataExtras::default(),
        overwrite,
    )
    .map_err(|e| checks::write_error(e, args.output.force))?;
    print_summary(&session);
    println!(
        "wrote {} files to {}",
        written.len(),
        args.output.out.display()
    );
    Ok(())
}

/// The prompt's make-up and the answer, for stdout.
pub fn print_summary(session: &Session) {
    let spans = session
        .prompt
        .spans
        .iter()
        .map(|s| format!("{:?} {}..{}", s.kind, s.start, s.end))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "model: {} ({})",
        session.model.id, session.model.architecture
    );
    println!(
        "prompt: {} tokens [{spans}], question placement {}",
        session.prompt_len(),
        session.settings.placement
    );
    if let Some(origin) = &session.settings.soft_tokens {
        println!("soft tokens: {} from {origin}", session.settings.soft_count);
    }
    println!(
        "answer ({} tokens): {}",
        session.answer.ids.len(),
        session.answer.text
    );
}

//! The task sets `judgeq tasks` runs: each set's own options, how its samples are made, and what
//! identifies it in the run's header.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use judgeq::model::Model;
use judgeq::model::hashing::hex;
use judgeq::tasks::{
    Haystack, ModelTokenizer, NiahSpec, RulerSpec, RulerTask, TaskSample, load_leval,
    load_longbench, load_longeval, niah_samples, ruler_samples,
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A set of task samples.
pub trait TaskSet {
    /// The set's name (kvpress's `dataset`): `niah`, `ruler`, ...
    fn name(&self) -> &'static str;
    /// kvpress's `data_dir`: the length or the data's name.
    fn data_dir(&self) -> String;
    /// The settings that decide the samples (recorded in the run's header).
    fn spec(&self) -> serde_json::Value;
    /// Checks the options before the model loads.
    fn check(&self) -> anyhow::Result<()>;
    /// The samples, in index order.
    fn samples(&self, model: &Model) -> anyhow::Result<Vec<TaskSample>>;
    /// Remarks the user should read (e.g. a fallback haystack).
    fn notes(&self, _samples: &[TaskSample]) -> Vec<String> {
        Vec::new()
    }
}

/// A haystack folder's identity: its path and the sha256 of its files (names and bytes, in
/// name order).
fn haystack_id(dir: &Option<PathBuf>) -> anyhow::Result<serde_json::Value> {
    let Some(dir) = dir else {
        return Ok(json!("noise"));
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("could not read the haystack folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        hasher.update(
            std::fs::read(&file).with_context(|| format!("could not read {}", file.display()))?,
        );
    }
    Ok(json!({"dir": dir.display().to_string(), "sha256": hex(&hasher.finalize())}))
}

/// The haystack of `--haystack DIR`, or RULER's noise sentences.
fn haystack(dir: &Option<PathBuf>) -> anyhow::Result<Haystack> {
    Ok(match dir {
        Some(dir) => Haystack::from_dir(dir)?,
        None => Haystack::noise(),
    })
}

/// `judgeq tasks niah` options.
#[derive(Args, Debug)]
pub struct NiahArgs {
    /// Haystack lengths in tokens (prompt plus answer), comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = NiahSpec::default().lengths)]
    pub lengths: Vec<usize>,
    /// Needle depths in percent of the haystack, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = NiahSpec::default().depths)]
    pub depths: Vec<u32>,
    /// Samples per length and depth
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Seed of the needles' keys and values
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder of text files (*.txt, *.md) to fill the haystack with [default: RULER's noise sentences]
    #[arg(long, value_name = "DIR")]
    pub haystack: Option<PathBuf>,
}

impl NiahArgs {
    fn spec_struct(&self) -> NiahSpec {
        NiahSpec {
            lengths: self.lengths.clone(),
            depths: self.depths.clone(),
            samples: self.samples,
            seed: self.seed,
        }
    }
}

impl TaskSet for NiahArgs {
    fn name(&self) -> &'static str {
        "niah"
    }
    fn data_dir(&self) -> String {
        lengths_label(&self.lengths)
    }
    fn spec(&self) -> serde_json::Value {
        json!({
            "lengths": self.lengths, "depths": self.depths, "samples": self.samples,
            "seed": self.seed, "haystack": haystack_id(&self.haystack).unwrap_or_default(),
        })
    }
    fn check(&self) -> anyhow::Result<()> {
        if let Some(bad) = self.depths.iter().find(|&&d| d > 100) {
            anyhow::bail!("--depths are percentages from 0 to 100, not {bad}");
        }
        if self.samples == 0 || self.lengths.is_empty() || self.depths.is_empty() {
            anyhow::bail!("--samples, --lengths and --depths must each give at least one");
        }
        haystack_id(&self.haystack).map(|_| ())
    }
    fn samples(&self, model: &Model) -> anyhow::Result<Vec<TaskSample>> {
        check_lengths(&self.lengths, model)?;
        Ok(niah_samples(
            &self.spec_struct(),
            &haystack(&self.haystack)?,
            &ModelTokenizer::new(model),
        )?)
    }
}

/// `judgeq tasks ruler` options.
#[derive(Args, Debug)]
pub struct RulerArgs {
    /// Tasks, comma-separated: niah_single_1..3, niah_multikey_1..3, niah_multivalue,
    /// niah_multiquery, vt, cwe, fwe, or all
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub tasks: Vec<String>,
    /// Lengths in tokens (prompt plus answer), comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = [4096])]
    pub lengths: Vec<usize>,
    /// Samples per task and length
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Seed of the samples
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder of text files for the essay tasks [default: RULER's noise sentences, with a note]
    #[arg(long, value_name = "DIR")]
    pub haystack: Option<PathBuf>,
}

impl RulerArgs {
    fn tasks(&self) -> anyhow::Result<Vec<RulerTask>> {
        if self.tasks.iter().any(|t| t == "all") {
            return Ok(RulerTask::ALL.to_vec());
        }
        self.tasks
            .iter()
            .map(|t| t.parse::<RulerTask>().map_err(|e| anyhow::anyhow!("{e}")))
            .collect()
    }
}

impl TaskSet for RulerArgs {
    fn name(&self) -> &'static str {
        "ruler"
    }
    fn data_dir(&self) -> String {
        lengths_label(&self.lengths)
    }
    fn spec(&self) -> serde_json::Value {
        let tasks: Vec<String> = self
            .tasks()
            .map(|ts| ts.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default();
        json!({
            "tasks": tasks, "lengths": self.lengths, "samples": self.samples, "seed": self.seed,
            "haystack": haystack_id(&self.haystack).unwrap_or_default(),
        })
    }
    fn check(&self) -> anyhow::Result<()> {
        self.tasks()?;
        if self.samples == 0 || self.lengths.is_empty() {
            anyhow::bail!("--samples and --lengths must each give at least one");
        }
        haystack_id(&self.haystack).map(|_| ())
    }
    fn samples(&self, model: &Model) -> anyhow::Result<Vec<TaskSample>> {
        check_lengths(&self.lengths, model)?;
        let spec = RulerSpec {
            tasks: self.tasks()?,
            lengths: self.lengths.clone(),
            samples: self.samples,
            seed: self.seed,
        };
        Ok(ruler_samples(
            &spec,
            &haystack(&self.haystack)?,
            &ModelTokenizer::new(model),
        )?)
    }
    fn notes(&self, _samples: &[TaskSample]) -> Vec<String> {
        let essays = self
            .tasks()
            .unwrap_or_default()
            .iter()
            .any(|t| t.uses_essay());
        if essays && self.haystack.is_none() {
            vec!["the essay tasks use RULER's noise sentences: pass --haystack DIR for essays (their `haystack` column says which)".into()]
        } else {
            Vec::new()
        }
    }
}

/// A set read from the user's jsonl files. Its options, identity and loading loop are shared
/// ([`FileSetArgs`]); a set says only its name and how one file becomes samples.
pub trait FileSet {
    /// The set's name (kvpress's `dataset`).
    const NAME: &'static str;
    /// The samples of the file for `dataset` (e.g. `qasper`) in `dir`.
    fn load(dir: &Path, dataset: &str, model: &Model) -> anyhow::Result<Vec<TaskSample>>;
}

/// LongBench or LongBench-E.
#[derive(Debug)]
pub struct LongBench;

impl FileSet for LongBench {
    const NAME: &'static str = "longbench";
    fn load(dir: &Path, dataset: &str, model: &Model) -> anyhow::Result<Vec<TaskSample>> {
        let tok = ModelTokenizer::new(model);
        Ok(load_longbench(dir, dataset, &tok, model.info.max_context)?)
    }
}

/// L-Eval.
#[derive(Debug)]
pub struct Leval;

impl FileSet for Leval {
    const NAME: &'static str = "leval";
    fn load(dir: &Path, dataset: &str, model: &Model) -> anyhow::Result<Vec<TaskSample>> {
        let tok = ModelTokenizer::new(model);
        Ok(load_leval(dir, dataset, &tok, model.info.max_context)?)
    }
}

/// LongChat's LongEval line retrieval.
#[derive(Debug)]
pub struct LongEval;

impl FileSet for LongEval {
    const NAME: &'static str = "longeval";
    fn load(dir: &Path, dataset: &str, _model: &Model) -> anyhow::Result<Vec<TaskSample>> {
        Ok(load_longeval(dir, dataset)?)
    }
}

/// `judgeq tasks longbench`, `leval` and `longeval` options: the set's files.
#[derive(Args, Debug)]
pub struct FileSetArgs<S: FileSet> {
    /// Folder of the set's jsonl files
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Which files (datasets), comma-separated: LongBench names such as qasper or qasper_e,
    /// L-Eval task names such as quality, LongEval names such as 200_lines
    #[arg(long, value_delimiter = ',', required = true)]
    pub datasets: Vec<String>,
    /// Which set the files belong to.
    #[arg(skip)]
    set: PhantomData<S>,
}

impl<S: FileSet> TaskSet for FileSetArgs<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }
    fn data_dir(&self) -> String {
        self.datasets.join("+")
    }
    fn spec(&self) -> serde_json::Value {
        let files: Vec<serde_json::Value> = self
            .datasets
            .iter()
            .map(|name| {
                let path = self.data.join(format!("{name}.jsonl"));
                let sha = std::fs::read(&path)
                    .map(|b| hex(&Sha256::digest(&b)))
                    .unwrap_or_default();
                json!({"name": name, "sha256": sha})
            })
            .collect();
        json!({"data": self.data.display().to_string(), "files": files})
    }
    fn check(&self) -> anyhow::Result<()> {
        if !self.data.is_dir() {
            anyhow::bail!("--data {} is not a folder", self.data.display());
        }
        Ok(())
    }
    /// Every dataset's samples, renumbered into one set.
    fn samples(&self, model: &Model) -> anyhow::Result<Vec<TaskSample>> {
        let mut all = Vec::new();
        for name in &self.datasets {
            for mut sample in S::load(&self.data, name, model)? {
                sample.index = all.len();
                all.push(sample);
            }
        }
        Ok(all)
    }
}

/// `1024-8192` for several lengths, `4096` for one.
fn lengths_label(lengths: &[usize]) -> String {
    match (lengths.iter().min(), lengths.iter().max()) {
        (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
        (Some(a), _) => a.to_string(),
        _ => String::new(),
    }
}

/// Refuses lengths the model's context cannot hold.
fn check_lengths(lengths: &[usize], model: &Model) -> anyhow::Result<()> {
    let max = model.info.max_context;
    if let Some(bad) = lengths.iter().find(|&&l| l > max) {
        anyhow::bail!(
            "a length of {bad} tokens does not fit {}'s context of {max}",
            model.info.id
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command<S: FileSet> {
        #[command(flatten)]
        set: FileSetArgs<S>,
    }

    fn parse<S: FileSet>(args: &[&str]) -> FileSetArgs<S> {
        Command::<S>::try_parse_from([&["judgeq"], args].concat())
            .unwrap()
            .set
    }

    #[test]
    fn a_file_set_is_named_and_identified_by_its_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("200_lines.jsonl"), b"{}\n").unwrap();
        let data = dir.path().to_str().unwrap();
        let set: FileSetArgs<LongEval> =
            parse(&["--data", data, "--datasets", "200_lines,300_lines"]);
        assert_eq!(set.name(), "longeval");
        assert_eq!(set.data_dir(), "200_lines+300_lines");
        assert!(set.check().is_ok());
        // sha256 of "{}\n", and nothing for a file that is not there.
        assert_eq!(
            set.spec(),
            json!({"data": data, "files": [
                {"name": "200_lines",
                 "sha256": "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"},
                {"name": "300_lines", "sha256": ""},
            ]})
        );
        let names = [
            parse::<LongBench>(&["--data", data, "--datasets", "x"]).name(),
            parse::<Leval>(&["--data", data, "--datasets", "x"]).name(),
        ];
        assert_eq!(names, ["longbench", "leval"]);
        let missing: FileSetArgs<Leval> = parse(&["--data", "/no/such/dir", "--datasets", "x"]);
        assert_eq!(
            missing.check().unwrap_err().to_string(),
            "--data /no/such/dir is not a folder"
        );
    }
}

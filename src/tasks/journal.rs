//! The run journal, `journal.jsonl` in a run's folder: a header line saying what the run is,
//! then one line per finished sample. Each line is written and flushed on its own, so a run
//! stopped by Ctrl-C (or killed) keeps every finished sample, `--resume` continues after the last
//! one, and the journals of shards merge into the tables a single run gives. Every table and
//! figure of a run is computed from its journal.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::{AskedBudget, PolicyId, PolicySettings, Ratio};
use crate::session::QuestionPlacement;
use crate::tasks::run_error::RunError;

/// File name of the journal in a run's folder.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Version of the journal's layout.
pub const JOURNAL_FORMAT: u32 = 1;

/// The model a run used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunModel {
    /// Model name (`SmolLM2-135M-Instruct`).
    pub id: String,
    /// sha256 of its weights.
    pub weights_sha256: String,
}

/// The soft tokens a run appended for its Judge Q rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSoftTokens {
    /// Where they were read from (`shipped` for the built-in ones).
    pub source: String,
    /// sha256 of the file's bytes.
    pub sha256: String,
    /// Set when the file is a checkpoint of a training run that had not finished: how far it
    /// had got ([`crate::judgeq::SoftTokens::unfinished_training`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished_training: Option<String>,
}

/// One evaluated method: a policy under its settings, with a row name of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodRecord {
    /// Machine name (`snapkv`, `judgeq-window`).
    pub id: String,
    /// Name for people.
    pub label: String,
    /// The policy.
    pub policy: PolicyId,
    /// Its settings.
    pub settings: PolicySettings,
}

/// The records of `methods`, for a run's header.
pub fn method_records(methods: &[crate::eval::Method]) -> Vec<MethodRecord> {
    methods
        .iter()
        .map(|m| MethodRecord {
            id: m.id.clone(),
            label: m.label.clone(),
            policy: m.policy,
            settings: m.settings.clone(),
        })
        .collect()
}

/// Which part of a sweep a run covers: the samples whose index is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether the sample at `index` belongs to this shard.
    pub fn holds(self, index: usize) -> bool {
        index % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with `0 <= I < N` (e.g. `0/4` ... `3/4`).
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok(Shard { index, count }),
            _ => Err(format!(
                "`{s}` is not a shard: write I/N with 0 <= I < N, e.g. 0/4 for the first of four"
            )),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a run is: everything that decides its results. Resuming or merging requires equal
/// headers (the shard aside, for merging).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// [`JOURNAL_FORMAT`].
    pub format: u32,
    /// judgeq's version.
    pub program_version: String,
    /// The task set (`niah`, `ruler`, `longbench`, `leval`, `longeval`).
    pub task_set: String,
    /// kvpress's `data_dir`: the context length or the data's name (`4096`, `1024-8192`).
    pub data_dir: String,
    /// The generator's or loader's settings (seed, lengths, depths, haystack, files and hashes).
    pub spec: serde_json::Value,
    /// The model.
    pub model: RunModel,
    /// Soft tokens for the Judge Q rows.
    pub soft_tokens: Option<RunSoftTokens>,
    /// The methods, in table order (Full KV is always reported besides them).
    pub methods: Vec<MethodRecord>,
    /// KV entries kept per layer and head (empty when budgets were asked as ratios).
    pub budgets: Vec<usize>,
    /// Budgets as ratios removed, resolved per sample; empty when asked in entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Last-window rows captured.
    pub window: usize,
    /// Where the question goes (`end` in journals written before the setting existed).
    #[serde(default)]
    pub placement: QuestionPlacement,
    /// Samples in the whole sweep (every shard).
    pub samples: usize,
    /// The part of the sweep this run covers.
    pub shard: Shard,
}

impl RunHeader {
    /// The run's budgets as asked, in order: its ratios, or its entries.
    pub fn asked(&self) -> Vec<AskedBudget> {
        AskedBudget::list(&self.budgets, &self.ratios)
    }

    /// Whether `other` describes the same run (the program version aside).
    pub fn same_run(&self, other: &RunHeader) -> bool {
        let strip = |h: &RunHeader| RunHeader {
            program_version: String::new(),
            ..h.clone()
        };
        strip(self) == strip(other)
    }

    /// Whether `other` is another shard of the same sweep.
    pub fn same_sweep(&self, other: &RunHeader) -> bool {
        let strip = |h: &RunHeader| RunHeader {
            program_version: String::new(),
            shard: Shard::WHOLE,
            ..h.clone()
        };
        strip(self) == strip(other)
    }
}

/// The full-cache answer of a sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// What the model wrote after the prompt (and the answer prefix).
    pub predicted_answer: String,
    /// Its score under the sample's metric, in `[0, 1]`.
    pub score: f64,
}

/// One method at one budget on one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Method id.
    pub method: String,
    /// KV entries kept per layer and head on this sample.
    pub budget: usize,
    /// The ratio removed `budget` was resolved from, when budgets were asked as ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
    /// The answer decoded under the method's kept set.
    pub predicted_answer: String,
    /// Its score under the sample's metric, in `[0, 1]`.
    pub score: f64,
    /// Mean over layers and heads of |kept ∩ oracle| / |oracle|, the oracle ranking the decoded
    /// tokens' raw attention (the Judge Q paper's critical-KV hit rate).
    pub hit_rate: f32,
    /// The same per layer (mean over heads); empty in journals written before it was recorded.
    #[serde(default)]
    pub hit_rate_by_layer: Vec<f32>,
    /// The same against the oracle pooled like the method (a variant).
    pub hit_rate_pooled_oracle: f32,
    /// Share of the decoded tokens' attention on kept entries.
    pub mass_kept: f32,
    /// Fraction of the prompt's KV entries removed (kvpress's `compression_ratio`).
    pub compression_ratio: f64,
    /// Leading tokens the answer shares with the full-cache answer.
    pub matched_prefix: usize,
    /// Share of the evidence tokens (the needles) kept, over layers and heads; `None` when the
    /// sample has no evidence.
    pub evidence_kept: Option<f32>,
    /// The same per layer (mean over heads).
    pub evidence_kept_by_layer: Vec<f32>,
    /// A remark from the policy (clamps, actual budgets).
    pub note: Option<String>,
}

impl CellResult {
    /// The budget as it was asked (the key tables group by).
    pub fn asked(&self) -> AskedBudget {
        AskedBudget::of(self.budget, self.ratio)
    }
}

/// One finished sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    /// The sample's index in the sweep.
    pub index: usize,
    /// Its id.
    pub id: String,
    /// Its task.
    pub task: String,
    /// Its extra columns (length, depth...).
    pub fields: Vec<(String, String)>,
    /// The question.
    pub question: String,
    /// The answer prefix.
    pub answer_prefix: String,
    /// Reference answers.
    pub answers: Vec<String>,
    /// The metric's key ([`crate::tasks::Metric::key`]).
    pub metric: String,
    /// Prompt tokens (0 when skipped before tokenising).
    pub prompt_tokens: usize,
    /// Tokens of the evidence spans.
    pub evidence_tokens: usize,
    /// Why the sample could not be evaluated, when it could not (it then has no cells).
    pub skipped: Option<String>,
    /// The full-cache answer.
    pub full: Option<Prediction>,
    /// Every method at every budget.
    pub cells: Vec<CellResult>,
}

/// An open journal, appending one line per finished sample.
pub struct Journal {
    path: PathBuf,
    file: File,
    header: RunHeader,
    done: BTreeMap<usize, SampleResult>,
}

impl Journal {
    /// Starts a new journal in `dir` (which must exist); refuses to replace one unless
    /// `replace`.
    pub fn create(dir: &Path, header: RunHeader, replace: bool) -> Result<Journal, RunError> {
        let path = dir.join(JOURNAL_FILE);
        if path.exists() && !replace {
            return Err(RunError::JournalExists { path });
        }
        let mut file = File::create(&path).map_err(|e| RunError::io(&path, e))?;
        write_line(&mut file, &path, &header)?;
        Ok(Journal {
            path,
            file,
            header,
            done: BTreeMap::new(),
        })
    }

    /// Reopens the journal in `dir` to continue the run `header` describes: refuses a journal of
    /// another run, and drops a last line cut short by a kill.
    pub fn resume(dir: &Path, header: RunHeader) -> Result<Journal, RunError> {
        let path = dir.join(JOURNAL_FILE);
        let (found, done, whole_len) = read_journal(&path)?;
        if !found.same_run(&header) {
            return Err(RunError::OtherRun {
                path,
                differs: header_difference(&found, &header),
            });
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| RunError::io(&path, e))?;
        file.set_len(whole_len)
            .map_err(|e| RunError::io(&path, e))?;
        let mut file = file;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))
            .map_err(|e| RunError::io(&path, e))?;
        Ok(Journal {
            path,
            file,
            header: found,
            done,
        })
    }

    /// Records a finished sample.
    pub fn append(&mut self, result: SampleResult) -> Result<(), RunError> {
        write_line(&mut self.file, &self.path, &result)?;
        self.done.insert(result.index, result);
        Ok(())
    }

    /// The run.
    pub fn header(&self) -> &RunHeader {
        &self.header
    }

    /// Finished samples by index.
    pub fn done(&self) -> &BTreeMap<usize, SampleResult> {
        &self.done
    }
}

/// Reads the journal in `dir`: its header and finished samples in index order.
pub fn read(dir: &Path) -> Result<(RunHeader, Vec<SampleResult>), RunError> {
    let (header, done, _) = read_journal(&dir.join(JOURNAL_FILE))?;
    Ok((header, done.into_values().collect()))
}

/// Header, samples and the byte length of the whole lines.
fn read_journal(path: &Path) -> Result<(RunHeader, BTreeMap<usize, SampleResult>, u64), RunError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunError::io(path, e))?;
    let mut lines = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices('\n') {
        lines.push((start, &text[start..at]));
        start = at + 1;
    }
    // Text after the last newline is a line cut short by a kill: dropped.
    let whole_len = start as u64;
    let mut lines = lines.into_iter().enumerate();
    let Some((_, (_, first))) = lines.next() else {
        return Err(RunError::BadJournal {
            path: path.to_path_buf(),
            line: 1,
            message: "the journal is empty (no header line)".into(),
        });
    };
    let header: RunHeader = serde_json::from_str(first).map_err(|e| RunError::BadJournal {
        path: path.to_path_buf(),
        line: 1,
        message: format!("not a run header: {e}"),
    })?;
    if header.format != JOURNAL_FORMAT {
        return Err(RunError::BadJournal {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "journal format {} (this judgeq reads format {JOURNAL_FORMAT})",
                header.format
            ),
        });
    }
    let mut done = BTreeMap::new();
    for (number, (_, line)) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let result: SampleResult =
            serde_json::from_str(line).map_err(|e| RunError::BadJournal {
                path: path.to_path_buf(),
                line: number + 1,
                message: format!("not a sample result: {e}"),
            })?;
        done.insert(result.index, result);
    }
    Ok((header, done, whole_len))
}

/// Writes `value` as one JSON line and flushes it to disk.
fn write_line<T: Serialize>(file: &mut File, path: &Path, value: &T) -> Result<(), RunError> {
    let mut line = serde_json::to_string(value).map_err(|e| RunError::BadJournal {
        path: path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    line.push('\n');
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| RunError::io(path, e))
}

/// The top-level header fields that differ, for messages.
pub fn header_difference(a: &RunHeader, b: &RunHeader) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return "the settings".into();
    };
    let differing: Vec<&str> = a
        .iter()
        .filter(|(key, value)| key.as_str() != "program_version" && b.get(*key) != Some(*value))
        .map(|(key, _)| key.as_str())
        .collect();
    if differing.is_empty() {
        "nothing".into()
    } else {
        differing.join(", ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header of a small run for tests.
    pub(crate) fn header(shard: Shard) -> RunHeader {
        RunHeader {
            format: JOURNAL_FORMAT,
            program_version: "test".into(),
            task_set: "niah".into(),
            data_dir: "1024".into(),
            spec: serde_json::json!({"seed": 0}),
            model: RunModel {
                id: "tiny".into(),
                weights_sha256: "ab".into(),
            },
            soft_tokens: None,
            methods: vec![MethodRecord {
                id: "snapkv".into(),
                label: "SnapKV".into(),
                policy: PolicyId::SNAPKV,
                settings: PolicySettings::default(),
            }],
            budgets: vec![8, 16],
            ratios: Vec::new(),
            window: 4,
            placement: QuestionPlacement::End,
            samples: 5,
            shard,
        }
    }

    /// A finished sample whose scores depend on its index.
    pub(crate) fn result(index: usize) -> SampleResult {
        let cell = |budget: usize| CellResult {
            method: "snapkv".into(),
            budget,
            ratio: None,
            predicted_answer: format!("answer {index}, at {budget}"),
            score: if (index + budget).is_multiple_of(2) {
                1.0
            } else {
                0.0
            },
            hit_rate: 0.25 * (index % 4) as f32,
            hit_rate_by_layer: vec![0.125 * (index % 4) as f32, 0.375 * (index % 4) as f32],
            hit_rate_pooled_oracle: 0.5,
            mass_kept: 0.75,
            compression_ratio: 0.5,
            matched_prefix: index,
            evidence_kept: Some(0.5),
            evidence_kept_by_layer: vec![0.25, 0.75],
            note: None,
        };
        SampleResult {
            index,
            id: format!("niah/1024/{index}"),
            task: if index.is_multiple_of(2) { "a" } else { "b" }.into(),
            fields: vec![("depth".into(), (index * 10).to_string())],
            question: "What?".into(),
            answer_prefix: "It is".into(),
            answers: vec!["7".into()],
            metric: "string_match".into(),
            prompt_tokens: 100,
            evidence_tokens: 3,
            skipped: None,
            full: Some(Prediction {
                predicted_answer: "7, \"quoted\"\nnew line".into(),
                score: 1.0,
            }),
            cells: vec![cell(8), cell(16)],
        }
    }

    #[test]
    fn a_journal_resumes_where_it_stopped_and_drops_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), header(Shard::WHOLE), false).unwrap();
        journal.append(result(0)).unwrap();
        journal.append(result(1)).unwrap();
        drop(journal);
        // A kill in the middle of a line.
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"index\": 2, \"id\"");
        std::fs::write(&path, text).unwrap();

        let mut resumed = Journal::resume(dir.path(), header(Shard::WHOLE)).unwrap();
        assert_eq!(
            resumed.done().keys().copied().collect::<Vec<_>>(),
            vec![0, 1]
        );
        resumed.append(result(2)).unwrap();
        let (read_header, results) = read(dir.path()).unwrap();
        assert_eq!(read_header, header(Shard::WHOLE));
        assert_eq!(results, vec![result(0), result(1), result(2)]);
    }

    #[test]
    fn a_journal_is_neither_replaced_nor_resumed_by_another_run() {
        let dir = tempfile::tempdir().unwrap();
        Journal::create(dir.path(), header(Shard::WHOLE), false).unwrap();
        let err = Journal::create(dir.path(), header(Shard::WHOLE), false)
            .err()
            .unwrap();
        assert!(err.to_string().contains("--resume"), "{err}");
        let mut other = header(Shard::WHOLE);
        other.budgets = vec![8];
        let err = Journal::resume(dir.path(), other).err().unwrap();
        assert!(err.to_string().contains("budgets differ"), "{err}");
        // Replacing on request starts over.
        let journal = Journal::create(dir.path(), header(Shard::WHOLE), true).unwrap();
        assert!(journal.done().is_empty());
    }

    #[test]
    fn shards_parse_and_split_by_index() {
        let shard: Shard = "1/3".parse().unwrap();
        assert_eq!(shard, Shard { index: 1, count: 3 });
        assert!(shard.holds(4) && !shard.holds(3));
        for bad in ["3/3", "1/0", "x/2", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        Journal::create(dir.path(), header(Shard::WHOLE), false).unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not json\n");
        std::fs::write(&path, text).unwrap();
        let err = read(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("line 2") && err.contains(JOURNAL_FILE),
            "{err}"
        );
    }
}

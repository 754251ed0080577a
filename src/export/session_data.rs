//! A session written as a directory of `.npy` arrays, `manifest.json`, `answer.txt` and,
//! after an `evict` run, scores, keep masks and `metrics.csv`.
//!
//! Replacing an export replaces all of it: the files the earlier manifest listed and the new
//! export does not write are removed, never other files of the folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attention::{KeepMask, QuerySource, ScoreGrid};
use crate::export::csv::{MetricsRow, metrics_csv};
use crate::export::manifest::{
    ArrayInfo, EvictionSettings, FileEntry, MANIFEST_FORMAT, Manifest, ProgramInfo, utc_now,
};
use crate::export::npy::{write_array, write_mask};
use crate::export::{ExportError, Overwrite, WriteError, check_outputs, write_new};
use crate::session::{PrefillCapture, Session};

/// Which heads the head axis of a score grid or keep mask counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadAxis {
    /// One entry per query head (per-query-head granularity).
    QueryHeads,
    /// One entry per KV head (GQA group; per-KV-head granularity).
    KvHeads,
}

impl HeadAxis {
    /// Axis name used in the manifest.
    fn axis_name(self) -> &'static str {
        match self {
            HeadAxis::QueryHeads => "query_head",
            HeadAxis::KvHeads => "kv_head",
        }
    }
}

/// Importance scores of one query source: `scores_<source>.npy`.
#[derive(Clone, Debug)]
pub struct SourceScores {
    /// The query source the scores come from.
    pub source: QuerySource,
    /// What the head axis counts.
    pub heads: HeadAxis,
    /// `[layers, heads, n_prompt]`.
    pub scores: ScoreGrid,
}

/// One policy's keep mask at one budget: `keep_<policy>_<budget>.npy` (u8).
#[derive(Clone, Debug)]
pub struct PolicyKeep {
    /// Policy id (`snapkv`); lowercase letters, digits, `-` and `_` only.
    pub policy: String,
    /// KV entries kept per layer and head.
    pub budget: usize,
    /// What the head axis counts.
    pub heads: HeadAxis,
    /// `[layers, heads, n_prompt]`, `true` where the entry stays.
    pub mask: KeepMask,
}

/// What a data export holds beyond the session itself (filled by `evict` and the GUI).
#[derive(Clone, Debug, Default)]
pub struct DataExtras {
    /// Scores per query source.
    pub scores: Vec<SourceScores>,
    /// Keep masks per policy and budget.
    pub keeps: Vec<PolicyKeep>,
    /// Rows of `metrics.csv`; no file when empty.
    pub metrics: Vec<MetricsRow>,
    /// Policies, budgets and policy settings for the manifest.
    pub eviction: Option<EvictionSettings>,
}

/// Name of the manifest inside an export directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The accumulated (H2O) scores.
const ACCUMULATED_FILE: &str = "accumulated.npy";
/// The full-cache answer.
const ANSWER_FILE: &str = "answer.txt";
/// The metrics of an eviction run.
const METRICS_FILE: &str = "metrics.csv";

/// The file names [`write_session_data`] would write for these inputs, manifest included, so
/// that a caller can ask about existing files once before writing.
pub fn session_file_names(
    session: &Session,
    extras: &DataExtras,
) -> Result<Vec<String>, ExportError> {
    Ok(plan(session, extras)?
        .iter()
        .map(|item| item.entry.name.clone())
        .chain([MANIFEST_FILE.to_owned()])
        .collect())
}

/// The query sources whose rows an inspection writes: the window's and the decoded tokens'
/// always, the soft tokens' when `soft`, and the lookahead drafts' and the repeat pass's when
/// `capture` asks for them, in [`QuerySource::ALL`] order.
pub fn row_sources(soft: bool, capture: &PrefillCapture) -> Vec<QuerySource> {
    QuerySource::ALL
        .into_iter()
        .filter(|&source| match source {
            QuerySource::Soft => soft,
            QuerySource::Lookahead => capture.lookahead.is_some(),
            QuerySource::Repeat => capture.repeat.is_some(),
            QuerySource::Window | QuerySource::Decoded => true,
        })
        .collect()
}

/// The file names an export will have, manifest included, known before the session exists
/// (to refuse existing files before the long work): `rows` the query sources whose rows the
/// session has ([`row_sources`]), `scores` the query sources whose scores are exported, `keeps`
/// the keep masks as (policy id, budget), `metrics` whether `metrics.csv` is written. Equal to
/// [`session_file_names`] of the finished export.
pub fn export_file_names(
    rows: &[QuerySource],
    scores: &[QuerySource],
    keeps: &[(&str, usize)],
    metrics: bool,
) -> Vec<String> {
    let rows = rows.iter().map(|&source| rows_file_name(source));
    rows.chain([ACCUMULATED_FILE.to_owned()])
        .chain(scores.iter().map(|&source| scores_file_name(source)))
        .chain(
            keeps
                .iter()
                .map(|(policy, budget)| keep_file_name(policy, *budget)),
        )
        .chain([ANSWER_FILE.to_owned()])
        .chain(metrics.then(|| METRICS_FILE.to_owned()))
        .chain([MANIFEST_FILE.to_owned()])
        .collect()
}

/// `window.npy`, `soft.npy`, `decoded.npy`.
fn rows_file_name(source: QuerySource) -> String {
    format!("{}.npy", source.file_stem())
}

/// `scores_<source>.npy`.
fn scores_file_name(source: QuerySource) -> String {
    format!("scores_{}.npy", source.file_stem())
}

/// `keep_<policy>_<budget>.npy`.
fn keep_file_name(policy: &str, budget: usize) -> String {
    format!("keep_{policy}_{budget}.npy")
}

/// Writes `session` and `extras` into the existing directory `dir` and returns the paths
/// written, manifest last.
///
/// Every shape is checked and, unless `overwrite` is [`Overwrite::Replace`], every target name
/// is checked for an existing file *before* anything is written: a refusal
/// ([`WriteError::WouldOverwrite`]) leaves the directory untouched. Each file is written
/// atomically; the manifest goes last, so a directory with a manifest is complete.
///
/// With [`Overwrite::Replace`] an earlier export in `dir` is replaced whole: the files its
/// manifest lists that this export does not write are removed, then its manifest, before the
/// new files are written. A `manifest.json` that judgeq did not write is replaced like any
/// other file the caller agreed to replace, but nothing it lists is removed.
pub fn write_session_data(
    dir: &Path,
    session: &Session,
    extras: &DataExtras,
    overwrite: Overwrite,
) -> Result<Vec<PathBuf>, ExportError> {
    let items = plan(session, extras)?;
    let names: Vec<&str> = items
        .iter()
        .map(|item| item.entry.name.as_str())
        .chain([MANIFEST_FILE])
        .collect();
    check_outputs(dir, &names, overwrite)?;
    if overwrite == Overwrite::Replace {
        remove_earlier_export(dir, &names)?;
    }

    let mut written = Vec::with_capacity(names.len());
    for item in &items {
        let path = dir.join(&item.entry.name);
        match &item.content {
            Content::Rows(source) => {
                if let Some(rows) = session.rows(*source) {
                    write_array(&path, rows, overwrite)?;
                }
            }
            Content::Accumulated => write_array(&path, &session.accumulated, overwrite)?,
            Content::Scores(i) => write_array(&path, &extras.scores[*i].scores, overwrite)?,
            Content::Keep(i) => write_mask(&path, &extras.keeps[*i].mask, overwrite)?,
            Content::Answer => write_new(&path, session.answer.text.as_bytes(), overwrite)?,
            Content::Metrics => {
                write_new(&path, metrics_csv(&extras.metrics).as_bytes(), overwrite)?
            }
        }
        written.push(path);
    }

    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        program: ProgramInfo::current(),
        created: utc_now(),
        model: session.model.clone(),
        n_prompt: session.prompt_len(),
        prompt: session.prompt.clone(),
        settings: session.settings.clone(),
        eviction: extras.eviction.clone(),
        answer: session.answer.clone(),
        files: items.into_iter().map(|item| item.entry).collect(),
    };
    let path = dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|source| ExportError::Json {
        path: path.clone(),
        source,
    })?;
    write_new(&path, &json, overwrite)?;
    written.push(path);
    Ok(written)
}

/// What a folder's `manifest.json` says about the export in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExistingExport {
    /// The folder has no `manifest.json`.
    Absent,
    /// judgeq wrote the manifest; these are the files it lists (plain file names only).
    Judgeq(Vec<String>),
    /// There is a `manifest.json`, but not one judgeq wrote (or it cannot be read); why.
    Foreign(String),
}

/// Reads `dir/manifest.json` just far enough to tell whose it is and which files it lists. A
/// listed name that is not a plain file name of the folder (`../x`, `a/b`) is left out.
pub fn existing_export(dir: &Path) -> ExistingExport {
    let path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ExistingExport::Absent,
        Err(e) => {
            return ExistingExport::Foreign(format!("its {MANIFEST_FILE} cannot be read ({e})"));
        }
    };
    let json: serde_json::Value = match serde_json::from_slice(crate::bom::strip_bom(&bytes)) {
        Ok(json) => json,
        Err(e) => {
            return ExistingExport::Foreign(format!("its {MANIFEST_FILE} is not JSON ({e})"));
        }
    };
    let program = json
        .pointer("/program/name")
        .and_then(serde_json::Value::as_str);
    let files = json.get("files").and_then(serde_json::Value::as_array);
    match (program, files) {
        (Some(env!("CARGO_PKG_NAME")), Some(files)) => ExistingExport::Judgeq(
            files
                .iter()
                .filter_map(|entry| entry.get("name").and_then(serde_json::Value::as_str))
                .filter(|name| is_plain_file_name(name))
                .map(str::to_owned)
                .collect(),
        ),
        _ => ExistingExport::Foreign(format!("its {MANIFEST_FILE} was not written by judgeq")),
    }
}

/// Before an export replaces the one in `dir`: removes the files the earlier manifest lists
/// that are not among `names` (regular files only), then the earlier manifest, so that a crash
/// from here on leaves a folder without a manifest (no export) rather than a mixed one.
fn remove_earlier_export(dir: &Path, names: &[&str]) -> Result<(), ExportError> {
    let ExistingExport::Judgeq(listed) = existing_export(dir) else {
        return Ok(());
    };
    let stale = listed.iter().filter(|name| !names.contains(&name.as_str()));
    for path in stale
        .map(|name| dir.join(name))
        .chain([dir.join(MANIFEST_FILE)])
    {
        let is_file = path.symlink_metadata().is_ok_and(|m| m.is_file());
        if is_file {
            std::fs::remove_file(&path).map_err(|e| WriteError::io(&path, e))?;
        }
    }
    Ok(())
}

/// A name that stays inside the folder: no separators, not `.` or `..`, not the manifest.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != MANIFEST_FILE
        && !name.contains(['/', '\\'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

/// Where the bytes of one planned file come from.
enum Content {
    Rows(QuerySource),
    Accumulated,
    Scores(usize),
    Keep(usize),
    Answer,
    Metrics,
}

/// One file to write: its manifest entry and its content.
struct Planned {
    entry: FileEntry,
    content: Content,
}

/// Checks every array against the session's dimensions and lists the files to write, in the
/// order they are written.
fn plan(session: &Session, extras: &DataExtras) -> Result<Vec<Planned>, ExportError> {
    let model = &session.model;
    let n_prompt = session.prompt_len();
    if session.prompt.tokens.len() != n_prompt {
        return Err(ExportError::InvalidData(format!(
            "the prompt has {n_prompt} token ids but {} token strings",
            session.prompt.tokens.len()
        )));
    }
    let heads_of = |axis: HeadAxis| match axis {
        HeadAxis::QueryHeads => model.query_heads,
        HeadAxis::KvHeads => model.kv_heads,
    };
    let mut items = Vec::new();

    for source in QuerySource::ALL {
        let Some(rows) = session.rows(source) else {
            continue;
        };
        let name = rows_file_name(source);
        let (layers, heads, queries, keys) = rows.dim();
        expect_shape(
            &name,
            &[layers, heads, keys],
            &[model.layers, model.query_heads, n_prompt],
        )?;
        items.push(Planned {
            entry: FileEntry {
                name,
                description: format!(
                    "attention of {queries} {} over the {n_prompt} prompt keys, per layer and query \
                     head; each row is the softmax over every key the query saw, restricted to the \
                     prompt keys and not renormalised",
                    query_words(source, queries, n_prompt)
                ),
                array: Some(f32_array(rows.shape(), ["layer", "query_head", "query", "key"])),
            },
            content: Content::Rows(source),
        });
    }

    let name = ACCUMULATED_FILE.to_owned();
    let (layers, heads, keys) = session.accumulated.dim();
    expect_shape(
        &name,
        &[layers, heads, keys],
        &[model.layers, model.query_heads, n_prompt],
    )?;
    items.push(Planned {
        entry: FileEntry {
            name,
            description:
                "attention each prompt key received from every prompt query, summed (H2O's score)"
                    .into(),
            array: Some(f32_array(
                session.accumulated.shape(),
                ["layer", "query_head", "key"],
            )),
        },
        content: Content::Accumulated,
    });

    let mut seen_sources = HashSet::new();
    for (i, scores) in extras.scores.iter().enumerate() {
        let name = scores_file_name(scores.source);
        if !seen_sources.insert(scores.source) {
            return Err(ExportError::InvalidData(format!("{name} is given twice")));
        }
        expect_shape(
            &name,
            scores.scores.shape(),
            &[model.layers, heads_of(scores.heads), n_prompt],
        )?;
        items.push(Planned {
            entry: FileEntry {
                name,
                description: format!(
                    "importance of each prompt key from the {} queries, per layer and {}",
                    scores.source.file_stem(),
                    scores.heads.axis_name().replace('_', " ")
                ),
                array: Some(f32_array(
                    scores.scores.shape(),
                    ["layer", scores.heads.axis_name(), "key"],
                )),
            },
            content: Content::Scores(i),
        });
    }

    let mut seen_keeps = HashSet::new();
    for (i, keep) in extras.keeps.iter().enumerate() {
        check_policy_id(&keep.policy)?;
        let name = keep_file_name(&keep.policy, keep.budget);
        if !seen_keeps.insert(name.clone()) {
            return Err(ExportError::InvalidData(format!("{name} is given twice")));
        }
        expect_shape(
            &name,
            keep.mask.shape(),
            &[model.layers, heads_of(keep.heads), n_prompt],
        )?;
        items.push(Planned {
            entry: FileEntry {
                name,
                description: format!(
                    "1 where policy {} keeps the KV entry at a budget of {} entries per layer and {}, 0 where it evicts it",
                    keep.policy,
                    keep.budget,
                    keep.heads.axis_name().replace('_', " ")
                ),
                array: Some(ArrayInfo {
                    dtype: "|u1".into(),
                    shape: keep.mask.shape().to_vec(),
                    axes: vec!["layer".into(), keep.heads.axis_name().into(), "key".into()],
                }),
            },
            content: Content::Keep(i),
        });
    }

    items.push(Planned {
        entry: FileEntry {
            name: ANSWER_FILE.into(),
            description: "the model's greedy answer with the full cache, UTF-8".into(),
            array: None,
        },
        content: Content::Answer,
    });
    if !extras.metrics.is_empty() {
        items.push(Planned {
            entry: FileEntry {
                name: METRICS_FILE.into(),
                description: "one row per policy and budget: mean hit rate against the oracle, mean share of \
                              the decoded tokens' attention mass kept, KV bytes kept, and agreement with the \
                              full-cache answer when decoding under eviction ran"
                    .into(),
                array: None,
            },
            content: Content::Metrics,
        });
    }
    Ok(items)
}

/// The queries of a source, in words, for the manifest.
fn query_words(source: QuerySource, queries: usize, n_prompt: usize) -> String {
    match source {
        QuerySource::Window => {
            format!(
                "last-window queries (prompt positions {} to {})",
                n_prompt.saturating_sub(queries),
                n_prompt.saturating_sub(1)
            )
        }
        QuerySource::Soft => "appended soft tokens".into(),
        QuerySource::Decoded => "decoded answer tokens".into(),
        QuerySource::Lookahead => "lookahead draft tokens decoded under a SnapKV cache".into(),
        QuerySource::Repeat => format!(
            "KVzip's repeat queries (the model repeating the prompt), {queries} evenly spaced rows of its repeat pass"
        ),
    }
}

fn f32_array<const N: usize>(shape: &[usize], axes: [&str; N]) -> ArrayInfo {
    ArrayInfo {
        dtype: "<f4".into(),
        shape: shape.to_vec(),
        axes: axes.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn expect_shape(name: &str, found: &[usize], expected: &[usize]) -> Result<(), ExportError> {
    if found == expected {
        Ok(())
    } else {
        Err(ExportError::InvalidData(format!(
            "{name} would have shape {found:?}, but the session's model and prompt need {expected:?}"
        )))
    }
}

/// Policy ids become part of file names: keep them to a safe alphabet.
fn check_policy_id(id: &str) -> Result<(), ExportError> {
    let safe = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if safe {
        Ok(())
    } else {
        Err(ExportError::InvalidData(format!(
            "policy id {id:?} cannot be used in a file name (lowercase letters, digits, '-' and '_' only)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::csv::AnswerAgreement;
    use crate::export::test_support::tiny_session;
    use ndarray::{Array3, Array4};
    use ndarray_npy::ReadNpyExt;

    fn read_f32_4(path: &Path) -> Array4<f32> {
        Array4::read_npy(std::fs::File::open(path).unwrap()).unwrap()
    }

    fn read_f32_3(path: &Path) -> Array3<f32> {
        Array3::read_npy(std::fs::File::open(path).unwrap()).unwrap()
    }

    fn extras(session: &Session) -> DataExtras {
        let (layers, _, n) = session.accumulated.dim();
        let kv = session.model.kv_heads;
        DataExtras {
            scores: vec![SourceScores {
                source: QuerySource::Window,
                heads: HeadAxis::KvHeads,
                scores: Array3::from_shape_fn((layers, kv, n), |(l, h, k)| {
                    (l + 2 * h) as f32 * 0.1 + k as f32 * 0.01
                }),
            }],
            keeps: vec![
                PolicyKeep {
                    policy: "snapkv".into(),
                    budget: 4,
                    heads: HeadAxis::KvHeads,
                    mask: Array3::from_shape_fn((layers, kv, n), |(l, h, k)| (k + l + h) % 3 != 1),
                },
                PolicyKeep {
                    policy: "judgeq".into(),
                    budget: 4,
                    heads: HeadAxis::QueryHeads,
                    mask: Array3::from_shape_fn(
                        (layers, session.model.query_heads, n),
                        |(_, _, k)| k >= n - 4,
                    ),
                },
            ],
            metrics: vec![MetricsRow {
                policy: "snapkv".into(),
                label: "SnapKV".into(),
                budget: 4,
                ratio: None,
                hit_rate: 0.75,
                mass_kept: 0.5,
                kv_bytes: 256,
                agreement: Some(AnswerAgreement {
                    exact_match: true,
                    matched_prefix: 2,
                    answer: "Paris.".into(),
                }),
                note: None,
            }],
            eviction: Some(EvictionSettings {
                policies: vec!["snapkv".into(), "judgeq".into()],
                budgets: vec![4],
                ratios: Vec::new(),
                settings: serde_json::json!({"window": 2, "pooling": {"max": {"kernel": 5}}, "granularity": "kv_head"}),
            }),
        }
    }

    #[test]
    fn writes_every_file_and_they_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let session = tiny_session(true);
        let extras = extras(&session);
        let written = write_session_data(dir.path(), &session, &extras, Overwrite::Refuse).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "window.npy",
                "soft.npy",
                "decoded.npy",
                "accumulated.npy",
                "scores_window.npy",
                "keep_snapkv_4.npy",
                "keep_judgeq_4.npy",
                "answer.txt",
                "metrics.csv",
                "manifest.json"
            ]
        );
        assert_eq!(names, session_file_names(&session, &extras).unwrap());

        assert_eq!(read_f32_4(&dir.path().join("window.npy")), session.window);
        assert_eq!(
            &read_f32_4(&dir.path().join("soft.npy")),
            session.soft.as_ref().unwrap()
        );
        assert_eq!(read_f32_4(&dir.path().join("decoded.npy")), session.decoded);
        assert_eq!(
            read_f32_3(&dir.path().join("accumulated.npy")),
            session.accumulated
        );
        assert_eq!(
            read_f32_3(&dir.path().join("scores_window.npy")),
            extras.scores[0].scores
        );
        for keep in &extras.keeps {
            let path = dir
                .path()
                .join(format!("keep_{}_{}.npy", keep.policy, keep.budget));
            let back = Array3::<u8>::read_npy(std::fs::File::open(path).unwrap()).unwrap();
            assert_eq!(back.mapv(|v| v == 1), keep.mask);
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("answer.txt")).unwrap(),
            session.answer.text
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap(),
            metrics_csv(&extras.metrics)
        );

        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest.format, MANIFEST_FORMAT);
        assert_eq!(
            manifest.program,
            ProgramInfo {
                name: "judgeq".into(),
                version: env!("CARGO_PKG_VERSION").into()
            }
        );
        assert_eq!(manifest.model, session.model);
        assert_eq!(manifest.prompt, session.prompt);
        assert_eq!(manifest.n_prompt, session.prompt_len());
        assert_eq!(manifest.settings, session.settings);
        assert_eq!(manifest.answer, session.answer);
        assert_eq!(manifest.eviction, extras.eviction);
        assert_eq!(manifest.created.len(), "2026-11-28T14:03:07Z".len());
        let listed: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(listed, &names[..names.len() - 1]);
        let window = &manifest.files[0].array.as_ref().unwrap();
        assert_eq!(window.dtype, "<f4");
        assert_eq!(window.shape, session.window.shape());
        assert_eq!(window.axes, ["layer", "query_head", "query", "key"]);
        let keep = manifest
            .files
            .iter()
            .find(|f| f.name == "keep_snapkv_4.npy")
            .unwrap()
            .array
            .clone()
            .unwrap();
        assert_eq!(keep.dtype, "|u1");
        assert_eq!(keep.axes, ["layer", "kv_head", "key"]);
        assert!(
            manifest
                .files
                .iter()
                .find(|f| f.name == "answer.txt")
                .unwrap()
                .array
                .is_none()
        );
    }

    #[test]
    fn without_soft_tokens_or_extras_only_the_session_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let session = tiny_session(false);
        let written = write_session_data(
            dir.path(),
            &session,
            &DataExtras::default(),
            Overwrite::Refuse,
        )
        .unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "window.npy",
                "decoded.npy",
                "accumulated.npy",
                "answer.txt",
                "manifest.json"
            ]
        );
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        assert!(manifest.eviction.is_none());
        let text = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        assert!(
            !text.contains("\"eviction\""),
            "absent settings are left out, not null"
        );
    }

    #[test]
    fn existing_files_block_the_whole_export_unless_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let session = tiny_session(true);
        std::fs::write(dir.path().join("decoded.npy"), b"mine").unwrap();
        std::fs::write(dir.path().join("manifest.json"), b"mine too").unwrap();
        let err = write_session_data(
            dir.path(),
            &session,
            &DataExtras::default(),
            Overwrite::Refuse,
        )
        .unwrap_err();
        match &err {
            ExportError::Write(WriteError::WouldOverwrite { names, .. }) => {
                assert_eq!(names, &["decoded.npy", "manifest.json"])
            }
            other => panic!("unexpected {other}"),
        }
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["decoded.npy", "manifest.json"],
            "nothing else was written"
        );
        assert_eq!(
            std::fs::read(dir.path().join("decoded.npy")).unwrap(),
            b"mine"
        );

        write_session_data(
            dir.path(),
            &session,
            &DataExtras::default(),
            Overwrite::Replace,
        )
        .unwrap();
        assert_eq!(read_f32_4(&dir.path().join("decoded.npy")), session.decoded);
    }

    #[test]
    fn replacing_an_export_removes_what_the_earlier_manifest_listed_only() {
        let dir = tempfile::tempdir().unwrap();
        let session = tiny_session(true);
        write_session_data(dir.path(), &session, &extras(&session), Overwrite::Refuse).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"the user's").unwrap();
        std::fs::write(dir.path().join("keep_mine_4.npy"), b"the user's too").unwrap();

        let plain = tiny_session(false);
        let written = write_session_data(
            dir.path(),
            &plain,
            &DataExtras::default(),
            Overwrite::Replace,
        )
        .unwrap();
        let mut expected: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .chain(["notes.txt".to_owned(), "keep_mine_4.npy".to_owned()])
            .collect();
        expected.sort();
        let mut present: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        present.sort();
        assert_eq!(present, expected);
        assert!(!dir.path().join("soft.npy").exists());
        assert!(!dir.path().join("keep_snapkv_4.npy").exists());
        assert_eq!(
            std::fs::read(dir.path().join("notes.txt")).unwrap(),
            b"the user's"
        );
        assert_eq!(
            existing_export(dir.path()),
            ExistingExport::Judgeq(
                written[..written.len() - 1]
                    .iter()
                    .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                    .collect()
            )
        );
    }

    #[test]
    fn what_a_foreign_manifest_lists_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let session = tiny_session(false);
        let foreign = br#"{"program": {"name": "other"}, "files": [{"name": "data.bin"}]}"#;
        std::fs::write(dir.path().join(MANIFEST_FILE), foreign).unwrap();
        std::fs::write(dir.path().join("data.bin"), b"theirs").unwrap();
        assert!(matches!(
            existing_export(dir.path()),
            ExistingExport::Foreign(r) if r.contains("was not written by judgeq")
        ));
        write_session_data(
            dir.path(),
            &session,
            &DataExtras::default(),
            Overwrite::Replace,
        )
        .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("data.bin")).unwrap(),
            b"theirs"
        );
        assert!(matches!(
            existing_export(dir.path()),
            ExistingExport::Judgeq(_)
        ));

        std::fs::write(dir.path().join(MANIFEST_FILE), b"\xEF\xBB\xBFnot json").unwrap();
        assert!(
            matches!(existing_export(dir.path()), ExistingExport::Foreign(r) if r.contains("not JSON"))
        );
        std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        assert_eq!(existing_export(dir.path()), ExistingExport::Absent);
    }

    #[test]
    fn names_outside_the_folder_are_never_removed() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("export");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(parent.path().join("precious.txt"), b"keep").unwrap();
        let manifest = serde_json::json!({
            "program": {"name": "judgeq"},
            "files": [{"name": "../precious.txt"}, {"name": "a/b"}, {"name": ".."},
                      {"name": "manifest.json"}, {"name": "old.npy"}]
        });
        std::fs::write(dir.join(MANIFEST_FILE), manifest.to_string()).unwrap();
        std::fs::write(dir.join("old.npy"), b"old").unwrap();
        assert_eq!(
            existing_export(&dir),
            ExistingExport::Judgeq(vec!["old.npy".into()])
        );
        let session = tiny_session(false);
        write_session_data(&dir, &session, &DataExtras::default(), Overwrite::Replace).unwrap();
        assert!(!dir.join("old.npy").exists());
        assert_eq!(
            std::fs::read(parent.path().join("precious.txt")).unwrap(),
            b"keep"
        );
    }

    #[test]
    fn planned_names_are_the_names_written() {
        let session = tiny_session(true);
        let extras = extras(&session);
        let keeps: Vec<(&str, usize)> = extras
            .keeps
            .iter()
            .map(|k| (k.policy.as_str(), k.budget))
            .collect();
        let sources: Vec<QuerySource> = extras.scores.iter().map(|s| s.source).collect();
        assert_eq!(
            export_file_names(
                &row_sources(true, &PrefillCapture::default()),
                &sources,
                &keeps,
                true
            ),
            session_file_names(&session, &extras).unwrap()
        );
        let plain = tiny_session(false);
        assert_eq!(
            export_file_names(
                &row_sources(false, &PrefillCapture::default()),
                &[],
                &[],
                false
            ),
            session_file_names(&plain, &DataExtras::default()).unwrap()
        );
    }

    #[test]
    fn inconsistent_data_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let session = tiny_session(false);
        let n = session.prompt_len();

        let mut wrong_keys = extras(&session);
        wrong_keys.keeps[0].mask =
            Array3::from_elem((session.model.layers, session.model.kv_heads, n + 1), true);
        let err =
            write_session_data(dir.path(), &session, &wrong_keys, Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, ExportError::InvalidData(_)));
        assert!(err.to_string().contains("keep_snapkv_4.npy"), "{err}");

        let mut bad_id = extras(&session);
        bad_id.keeps[0].policy = "../snapkv".into();
        let err = write_session_data(dir.path(), &session, &bad_id, Overwrite::Refuse).unwrap_err();
        assert!(
            err.to_string().contains("cannot be used in a file name"),
            "{err}"
        );

        let mut twice = extras(&session);
        twice.keeps[1] = twice.keeps[0].clone();
        let err = write_session_data(dir.path(), &session, &twice, Overwrite::Refuse).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");

        let mut wrong_heads = extras(&session);
        wrong_heads.scores[0].heads = HeadAxis::QueryHeads;
        assert!(write_session_data(dir.path(), &session, &wrong_heads, Overwrite::Refuse).is_err());

        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

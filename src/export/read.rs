//! Reads an export folder back: the [`Session`], scores and keep masks that
//! [`crate::export::write_session_data`] wrote (from `judgeq inspect`, `judgeq evict` or the
//! explorer's "Export data…"), checked against the manifest.
//!
//! The manifest is the authority: every array it lists must exist, have the dtype and shape it
//! records, and fit the model and prompt it describes.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use ndarray::{Array3, Array4, Dimension};
use ndarray_npy::{ReadNpyExt, ReadableElement};

use crate::attention::{AttentionRows, QuerySource};
use crate::export::ExportError;
use crate::export::manifest::{EvictionSettings, FileEntry, MANIFEST_FORMAT, Manifest};
use crate::export::session_data::{HeadAxis, MANIFEST_FILE, PolicyKeep, SourceScores};
use crate::session::{PrefillInputs, Session};

/// An export folder read back.
#[derive(Clone, Debug)]
pub struct ExportFolder {
    /// The folder.
    pub dir: PathBuf,
    /// Its `manifest.json`.
    pub manifest: Manifest,
    /// The session: model, prompt, settings, answer and the attention arrays.
    pub session: Session,
    /// `scores_<source>.npy`, in the manifest's order.
    pub scores: Vec<SourceScores>,
    /// `keep_<policy>_<budget>.npy`, in the manifest's order.
    pub keeps: Vec<PolicyKeep>,
}

impl ExportFolder {
    /// Policies, budgets and policy settings of the eviction run, when the export has one.
    pub fn eviction(&self) -> Option<&EvictionSettings> {
        self.manifest.eviction.as_ref()
    }

    /// The keep mask of `policy` (its id, e.g. `snapkv`) at `budget`, if the export has it.
    pub fn keep(&self, policy: &str, budget: usize) -> Option<&PolicyKeep> {
        self.keeps
            .iter()
            .find(|k| k.policy == policy && k.budget == budget)
    }
}

/// Reads the export in `dir`: its manifest, then every array the manifest lists.
///
/// Fails with a message naming the file when the folder has no manifest
/// ([`ExportError::NotAnExport`]), a listed file is missing ([`ExportError::Missing`]), or a
/// file cannot be parsed or disagrees with the manifest ([`ExportError::Corrupt`]).
pub fn read_session_data(dir: &Path) -> Result<ExportFolder, ExportError> {
    let manifest = read_manifest(dir)?;
    let model = &manifest.model;
    let n = manifest.n_prompt;
    let manifest_path = dir.join(MANIFEST_FILE);
    let corrupt_manifest = |reason: String| ExportError::Corrupt {
        path: manifest_path.clone(),
        reason,
    };
    if manifest.prompt.ids.len() != n || manifest.prompt.tokens.len() != n {
        return Err(corrupt_manifest(format!(
            "n_prompt is {n} but the prompt has {} token ids and {} token strings",
            manifest.prompt.ids.len(),
            manifest.prompt.tokens.len()
        )));
    }
    let heads_of = |axis: HeadAxis| match axis {
        HeadAxis::QueryHeads => model.query_heads,
        HeadAxis::KvHeads => model.kv_heads,
    };

    let mut rows: [Option<AttentionRows>; QuerySource::COUNT] = Default::default();
    let mut accumulated = None;
    let mut scores = Vec::new();
    let mut keeps = Vec::new();
    for entry in &manifest.files {
        let path = dir.join(&entry.name);
        let Some(stem) = entry.name.strip_suffix(".npy") else {
            continue;
        };
        if let Some(index) = QuerySource::ALL.iter().position(|s| s.file_stem() == stem) {
            let array: Array4<f32> = read_array(&path, entry, "<f4")?;
            let (layers, heads, _, keys) = array.dim();
            expect_fit(
                &path,
                &[layers, heads, keys],
                &[model.layers, model.query_heads, n],
            )?;
            rows[index] = Some(array);
        } else if stem == "accumulated" {
            let array: Array3<f32> = read_array(&path, entry, "<f4")?;
            expect_fit(&path, array.shape(), &[model.layers, model.query_heads, n])?;
            accumulated = Some(array);
        } else if let Some(source) = stem.strip_prefix("scores_") {
            let source = QuerySource::ALL
                .into_iter()
                .find(|s| s.file_stem() == source)
                .ok_or_else(|| corrupt(&path, format!("{source:?} is not a query source")))?;
            let heads = head_axis(&path, entry)?;
            let array: Array3<f32> = read_array(&path, entry, "<f4")?;
            expect_fit(&path, array.shape(), &[model.layers, heads_of(heads), n])?;
            scores.push(SourceScores {
                source,
                heads,
                scores: array,
            });
        } else if let Some(rest) = stem.strip_prefix("keep_") {
            let (policy, budget) = rest
                .rsplit_once('_')
                .and_then(|(policy, budget)| Some((policy, budget.parse().ok()?)))
                .filter(|(policy, _)| !policy.is_empty())
                .ok_or_else(|| {
                    corrupt(
                        &path,
                        "a keep mask is named keep_<policy>_<budget>.npy".to_owned(),
                    )
                })?;
            let heads = head_axis(&path, entry)?;
            let array: Array3<u8> = read_array(&path, entry, "|u1")?;
            expect_fit(&path, array.shape(), &[model.layers, heads_of(heads), n])?;
            if let Some(bad) = array.iter().find(|&&v| v > 1) {
                return Err(corrupt(
                    &path,
                    format!("a keep mask holds 0 or 1, not {bad}"),
                ));
            }
            keeps.push(PolicyKeep {
                policy: policy.to_owned(),
                budget,
                heads,
                mask: array.mapv(|v| v == 1),
            });
        }
    }

    let required =
        |name: &str| corrupt_manifest(format!("it lists no {name}, which every export has"));
    let [window, soft, decoded, lookahead, repeat] = rows;
    let session = Session {
        model: manifest.model.clone(),
        prompt: manifest.prompt.clone(),
        settings: manifest.settings.clone(),
        window: window.ok_or_else(|| required("window.npy"))?,
        soft,
        decoded: decoded.ok_or_else(|| required("decoded.npy"))?,
        lookahead,
        repeat,
        accumulated: accumulated.ok_or_else(|| required("accumulated.npy"))?,
        answer: manifest.answer.clone(),
        prefill_inputs: PrefillInputs::default(),
    };
    Ok(ExportFolder {
        dir: dir.to_path_buf(),
        manifest,
        session,
        scores,
        keeps,
    })
}

/// Reads and checks `dir/manifest.json`.
fn read_manifest(dir: &Path) -> Result<Manifest, ExportError> {
    let not_an_export = |reason: String| ExportError::NotAnExport {
        dir: dir.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(not_an_export("it is not an existing directory".to_owned()));
    }
    let path = dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_an_export(format!(
                "it has no {MANIFEST_FILE} (judgeq inspect, judgeq evict and the explorer's \
                 \"Export data…\" write one)"
            )));
        }
        Err(source) => return Err(ExportError::Read { path, source }),
    };
    let manifest: Manifest = serde_json::from_slice(crate::bom::strip_bom(&bytes))
        .map_err(|e| corrupt(&path, e.to_string()))?;
    if manifest.format > MANIFEST_FORMAT {
        return Err(corrupt(
            &path,
            format!(
                "it has format {}, newer than the {MANIFEST_FORMAT} this judgeq reads; update judgeq",
                manifest.format
            ),
        ));
    }
    Ok(manifest)
}

/// Reads the `.npy` array `path` and checks it against its manifest entry: dtype `dtype` and the
/// recorded shape.
fn read_array<A, D>(
    path: &Path,
    entry: &FileEntry,
    dtype: &str,
) -> Result<ndarray::Array<A, D>, ExportError>
where
    A: ReadableElement,
    D: Dimension,
{
    let info = entry.array.as_ref().ok_or_else(|| {
        corrupt(
            path,
            format!("{MANIFEST_FILE} lists it without its dtype and shape"),
        )
    })?;
    if info.dtype != dtype {
        return Err(corrupt(
            path,
            format!(
                "{MANIFEST_FILE} records dtype {:?}, but this array is {dtype:?}",
                info.dtype
            ),
        ));
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ExportError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(ExportError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let array = ndarray::Array::<A, D>::read_npy(BufReader::new(file)).map_err(|e| {
        corrupt(
            path,
            format!("not a {dtype} array of the expected rank: {e}"),
        )
    })?;
    if array.shape() != info.shape.as_slice() {
        return Err(corrupt(
            path,
            format!(
                "it has shape {:?} but {MANIFEST_FILE} records {:?}",
                array.shape(),
                info.shape
            ),
        ));
    }
    Ok(array)
}

/// What the head axis of a score grid or keep mask counts, from its manifest axes.
fn head_axis(path: &Path, entry: &FileEntry) -> Result<HeadAxis, ExportError> {
    let axis = entry
        .array
        .as_ref()
        .and_then(|info| info.axes.get(1))
        .map(String::as_str);
    match axis {
        Some("query_head") => Ok(HeadAxis::QueryHeads),
        Some("kv_head") => Ok(HeadAxis::KvHeads),
        other => Err(corrupt(
            path,
            format!(
                "{MANIFEST_FILE} names its head axis {other:?}; expected \"query_head\" or \"kv_head\""
            ),
        )),
    }
}

/// Checks the `[layers, heads, keys]` of an array against what the model and prompt need.
fn expect_fit(path: &Path, found: &[usize], expected: &[usize]) -> Result<(), ExportError> {
    if found == expected {
        Ok(())
    } else {
        Err(corrupt(
            path,
            format!(
                "its [layers, heads, keys] are {found:?}, but the manifest's model and prompt need {expected:?}"
            ),
        ))
    }
}

fn corrupt(path: &Path, reason: String) -> ExportError {
    ExportError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{DataExtras, Overwrite, write_array, write_session_data};
    use crate::session::{SyntheticSpec, synthetic};

    fn session(soft: usize) -> Session {
        synthetic(&SyntheticSpec {
            seed: 7,
            layers: 2,
            query_heads: 4,
            kv_heads: 2,
            n_prompt: 40,
            window: 8,
            soft,
            decoded: 5,
        })
        .unwrap()
    }

    /// Scores and masks with values that differ per element, on both head axes.
    fn extras(session: &Session) -> DataExtras {
        let (layers, query_heads, n) = session.accumulated.dim();
        let kv = session.model.kv_heads;
        DataExtras {
            scores: vec![SourceScores {
                source: QuerySource::Decoded,
                heads: HeadAxis::KvHeads,
                scores: Array3::from_shape_fn((layers, kv, n), |(l, h, k)| {
                    (l * 100 + h * 10 + k) as f32 / 3.0
                }),
            }],
            keeps: vec![
                PolicyKeep {
                    policy: "h2o-window".into(),
                    budget: 12,
                    heads: HeadAxis::KvHeads,
                    mask: Array3::from_shape_fn((layers, kv, n), |(l, h, k)| (l + h + k) % 3 == 0),
                },
                PolicyKeep {
                    policy: "snapkv".into(),
                    budget: 8,
                    heads: HeadAxis::QueryHeads,
                    mask: Array3::from_shape_fn((layers, query_heads, n), |(l, h, k)| {
                        k >= n - 8 || (k * 7 + l + h) % 11 == 0
                    }),
                },
            ],
            metrics: Vec::new(),
            eviction: Some(EvictionSettings {
                policies: vec!["h2o-window".into(), "snapkv".into()],
                budgets: vec![8, 12],
                ratios: Vec::new(),
                settings: serde_json::json!({"window": 8}),
            }),
        }
    }

    fn written(session: &Session, extras: &DataExtras) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_session_data(dir.path(), session, extras, Overwrite::Refuse).unwrap();
        dir
    }

    fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(MANIFEST_FILE);
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    }

    fn error(dir: &Path) -> String {
        read_session_data(dir).unwrap_err().to_string()
    }

    #[test]
    fn lookahead_rows_are_written_and_read_back_in_the_contract_layout() {
        let mut session = session(0);
        let (layers, heads, n) = session.accumulated.dim();
        let drafts = ndarray::Array4::from_shape_fn((layers, heads, 3, n), |(l, h, q, k)| {
            (l * 1000 + h * 100 + q * 10 + k) as f32 / 7.0
        });
        session.lookahead = Some(drafts.clone());
        session.settings.lookahead = Some(crate::session::LookaheadCapture {
            tokens: 3,
            draft_window: 4,
            draft_budget: 16,
            pooling: crate::attention::Pooling::Max { kernel: 7 },
        });
        let extras = extras(&session);
        let dir = written(&session, &extras);
        let names = crate::export::session_file_names(&session, &extras).unwrap();
        assert!(names.contains(&"lookahead.npy".to_owned()), "{names:?}");
        let back = read_session_data(dir.path()).unwrap();
        assert_eq!(back.session.lookahead, Some(drafts));
        assert_eq!(back.session.settings, session.settings);
        let entry = back
            .manifest
            .files
            .iter()
            .find(|f| f.name == "lookahead.npy")
            .unwrap();
        let array = entry.array.as_ref().unwrap();
        assert_eq!(array.shape, vec![layers, heads, 3, n]);
        assert_eq!(array.dtype, "<f4");
    }

    #[test]
    fn repeat_rows_are_written_and_read_back_in_the_contract_layout() {
        let mut session = session(0);
        let (layers, heads, n) = session.accumulated.dim();
        let rows = ndarray::Array4::from_shape_fn((layers, heads, 5, n), |(l, h, q, k)| {
            (l * 1000 + h * 100 + q * 10 + k) as f32 / 9.0
        });
        session.repeat = Some(rows.clone());
        session.settings.repeat = Some(crate::session::RepeatCapture {
            n_sink: 4,
            chunk_size: 2048,
        });
        let extras = extras(&session);
        let dir = written(&session, &extras);
        let names = crate::export::session_file_names(&session, &extras).unwrap();
        assert!(names.contains(&"repeat.npy".to_owned()), "{names:?}");
        let planned = crate::export::export_file_names(
            &crate::export::row_sources(
                session.soft.is_some(),
                &crate::session::PrefillCapture {
                    repeat: session.settings.repeat,
                    ..crate::session::PrefillCapture::default()
                },
            ),
            &extras.scores.iter().map(|s| s.source).collect::<Vec<_>>(),
            &extras
                .keeps
                .iter()
                .map(|k| (k.policy.as_str(), k.budget))
                .collect::<Vec<_>>(),
            !extras.metrics.is_empty(),
        );
        let mut sorted_names = names.clone();
        sorted_names.sort();
        let mut sorted_planned = planned;
        sorted_planned.sort();
        assert_eq!(
            sorted_planned, sorted_names,
            "planned names equal the written ones"
        );
        let back = read_session_data(dir.path()).unwrap();
        assert_eq!(back.session.repeat, Some(rows));
        assert_eq!(back.session.settings, session.settings);
        let entry = back
            .manifest
            .files
            .iter()
            .find(|f| f.name == "repeat.npy")
            .unwrap();
        let array = entry.array.as_ref().unwrap();
        assert_eq!(array.shape, vec![layers, heads, 5, n]);
        assert_eq!(array.dtype, "<f4");
    }

    #[test]
    fn a_written_session_reads_back_equal() {
        for soft in [4, 0] {
            let session = session(soft);
            let extras = extras(&session);
            let dir = written(&session, &extras);
            let back = read_session_data(dir.path()).unwrap();
            let got = &back.session;
            assert_eq!(got.model, session.model);
            assert_eq!(got.prompt, session.prompt);
            assert_eq!(got.settings, session.settings);
            assert_eq!(got.answer, session.answer);
            assert_eq!(got.window, session.window);
            assert_eq!(got.soft, session.soft);
            assert_eq!(got.decoded, session.decoded);
            assert_eq!(got.accumulated, session.accumulated);

            assert_eq!(back.scores.len(), 1);
            assert_eq!(back.scores[0].source, QuerySource::Decoded);
            assert_eq!(back.scores[0].heads, HeadAxis::KvHeads);
            assert_eq!(back.scores[0].scores, extras.scores[0].scores);
            assert_eq!(back.keeps.len(), 2);
            for (got, want) in back.keeps.iter().zip(&extras.keeps) {
                assert_eq!(
                    (&got.policy, got.budget, got.heads),
                    (&want.policy, want.budget, want.heads)
                );
                assert_eq!(got.mask, want.mask);
            }
            assert_eq!(
                back.keep("h2o-window", 12).unwrap().mask,
                extras.keeps[0].mask
            );
            assert!(back.keep("h2o-window", 8).is_none());
            assert_eq!(back.eviction(), extras.eviction.as_ref());
            assert_eq!(back.dir, dir.path());
        }
    }

    #[test]
    fn folders_that_are_not_exports_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("is not a judgeq export folder") && err.contains("no manifest.json"),
            "{err}"
        );
        let err = error(&dir.path().join("nowhere"));
        assert!(err.contains("not an existing directory"), "{err}");

        std::fs::write(dir.path().join(MANIFEST_FILE), b"{\"format\": 1").unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("manifest.json is corrupt") && err.contains("EOF"),
            "{err}"
        );
    }

    #[test]
    fn missing_and_corrupt_files_are_named() {
        let session = session(4);
        let extras = extras(&session);

        let dir = written(&session, &extras);
        std::fs::remove_file(dir.path().join("soft.npy")).unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("soft.npy is listed in manifest.json but missing"),
            "{err}"
        );

        let dir = written(&session, &extras);
        let path = dir.path().join("decoded.npy");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = error(dir.path());
        assert!(err.contains("decoded.npy is corrupt"), "{err}");

        let dir = written(&session, &extras);
        std::fs::write(dir.path().join("accumulated.npy"), b"not numpy at all").unwrap();
        assert!(error(dir.path()).contains("accumulated.npy is corrupt"));

        // A mask holding something other than 0 and 1.
        let dir = written(&session, &extras);
        let mut mask = extras.keeps[1].mask.mapv(u8::from);
        mask[[1, 2, 3]] = 7;
        write_array(
            &dir.path().join("keep_snapkv_8.npy"),
            &mask,
            Overwrite::Replace,
        )
        .unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("keep_snapkv_8.npy is corrupt") && err.contains("not 7"),
            "{err}"
        );

        // Rows saved as f64 where the manifest says f32.
        let dir = written(&session, &extras);
        write_array(
            &dir.path().join("window.npy"),
            &session.window.mapv(f64::from),
            Overwrite::Replace,
        )
        .unwrap();
        assert!(error(dir.path()).contains("window.npy is corrupt"));
    }

    #[test]
    fn shapes_must_agree_with_the_manifest_and_its_model() {
        let session = session(4);
        let extras = extras(&session);

        // The file has one window row fewer than the manifest records.
        let dir = written(&session, &extras);
        let fewer = session
            .window
            .slice(ndarray::s![.., .., 1.., ..])
            .to_owned();
        write_array(&dir.path().join("window.npy"), &fewer, Overwrite::Replace).unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("window.npy is corrupt")
                && err.contains("shape [2, 4, 7, 40]")
                && err.contains("records [2, 4, 8, 40]"),
            "{err}"
        );

        // File and manifest agree, but the model has 3 layers.
        let dir = written(&session, &extras);
        edit_manifest(dir.path(), |json| json["model"]["layers"] = 3.into());
        let err = error(dir.path());
        assert!(
            err.contains("window.npy is corrupt") && err.contains("need [3, 4, 40]"),
            "{err}"
        );

        // The prompt is shorter than n_prompt says.
        let dir = written(&session, &extras);
        edit_manifest(dir.path(), |json| {
            json["prompt"]["ids"].as_array_mut().unwrap().pop();
        });
        let err = error(dir.path());
        assert!(
            err.contains("manifest.json is corrupt") && err.contains("39 token ids"),
            "{err}"
        );

        // A manifest that lists no decoded rows.
        let dir = written(&session, &extras);
        edit_manifest(dir.path(), |json| {
            json["files"]
                .as_array_mut()
                .unwrap()
                .retain(|f| f["name"] != "decoded.npy");
        });
        assert!(error(dir.path()).contains("lists no decoded.npy"));

        // A newer manifest format.
        let dir = written(&session, &extras);
        edit_manifest(dir.path(), |json| {
            json["format"] = (MANIFEST_FORMAT + 1).into()
        });
        assert!(error(dir.path()).contains("update judgeq"));
    }
}

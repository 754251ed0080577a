//! Needle heatmaps of a task run, opened in the explorer: the figure's JSON sidecar (read from
//! the sidecar itself or found beside the figure's PNG or SVG), its grids, and the sample
//! behind a cell, read from the run's `samples.jsonl` and turned into the document, question,
//! answer prefix and needle ranges the run prompted the model with.
//!
//! Everything here is plain file reading, without egui, so that the path from a clicked cell
//! to the explorer's request is tested on its own; `panels::task_figure_window` draws it.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::export::task_figures::{NeedleGrid, TaskFigure, TaskFigureSidecar};
use crate::tasks::TaskSample;
use crate::tasks::figures::FIGURES_DIR;

/// The file of a run folder that holds its samples in full (context included), one JSON
/// object per line; `judgeq tasks` writes it.
pub const SAMPLES_FILE: &str = "samples.jsonl";

/// Label of the marked span that shows a task sample's needles.
pub const NEEDLE_LABEL: &str = "needle";

/// Why a figure or a sample could not be opened; every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TaskFigureError {
    /// The path names no figure file.
    #[error(
        "{path} is not a task figure: open the .json sidecar of a needle heatmap, or its .png or .svg"
    )]
    NotAFigure {
        /// The path given.
        path: PathBuf,
    },
    /// A PNG or SVG without its sidecar beside it.
    #[error(
        "{figure} has no sidecar beside it ({sidecar} is missing): open a figure from a run's {FIGURES_DIR} folder"
    )]
    NoSidecar {
        /// The figure given.
        figure: PathBuf,
        /// Where its sidecar should be.
        sidecar: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The sidecar is not a task figure's (an attention figure's, say) or is damaged.
    #[error("{path} is not the sidecar of a task figure: {message}")]
    NotATaskSidecar {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The figure is a task figure, but not of needle heatmaps.
    #[error(
        "{path} shows scores against budget, not a needle heatmap: open a needle_*.json figure"
    )]
    NotANeedleFigure {
        /// The sidecar.
        path: PathBuf,
    },
    /// No folder the figure may have come from holds the run's samples.
    #[error(
        "the run's samples are not found: no {SAMPLES_FILE} in {}",
        .looked_in.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ")
    )]
    NoSamples {
        /// The run folders looked in.
        looked_in: Vec<PathBuf>,
    },
    /// A line of the samples file is not a task sample.
    #[error("{path}, line {line}: not a task sample: {message}")]
    BadSample {
        /// The samples file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the JSON reader said.
        message: String,
    },
    /// The samples file has no sample with this id.
    #[error("sample {id:?} is not in {path}")]
    SampleNotFound {
        /// The id looked for.
        id: String,
        /// The samples file.
        path: PathBuf,
    },
}

/// The sidecar of the figure at `path`: the path itself for a `.json`, the `.json` of the same
/// name for a `.png` or `.svg`; `None` for other files.
pub fn sidecar_path(path: &Path) -> Option<PathBuf> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "json" => Some(path.to_path_buf()),
        "png" | "svg" => Some(path.with_extension("json")),
        _ => None,
    }
}

/// Whether a dropped file should open as a task figure rather than as a document: a `.json`,
/// or a `.png` or `.svg` with its sidecar beside it.
pub fn is_task_figure_file(path: &Path) -> bool {
    sidecar_path(path).is_some_and(|sidecar| sidecar == path || sidecar.is_file())
}

/// A needle figure opened from its sidecar.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenedFigure {
    /// The sidecar read.
    pub sidecar: PathBuf,
    /// The figure's title (may be empty).
    pub title: String,
    /// Its grids: one for a single heatmap, every method and budget for an overview.
    pub grids: Vec<NeedleGrid>,
    /// Run folders the samples may be in, the most likely first.
    run_dirs: Vec<PathBuf>,
}

impl OpenedFigure {
    /// Reads the needle figure at `path` (its sidecar, or its PNG or SVG with the sidecar
    /// beside it). Refuses other files, sidecars of other figures and damaged grids.
    pub fn open(path: &Path) -> Result<Self, TaskFigureError> {
        let sidecar = sidecar_path(path).ok_or_else(|| TaskFigureError::NotAFigure {
            path: path.to_path_buf(),
        })?;
        if sidecar != path && !sidecar.is_file() {
            return Err(TaskFigureError::NoSidecar {
                figure: path.to_path_buf(),
                sidecar,
            });
        }
        let text = std::fs::read_to_string(&sidecar).map_err(|source| TaskFigureError::Io {
            path: sidecar.clone(),
            source,
        })?;
        let read: TaskFigureSidecar =
            serde_json::from_str(&text).map_err(|e| TaskFigureError::NotATaskSidecar {
                path: sidecar.clone(),
                message: e.to_string(),
            })?;
        let (title, grids) = match read.figure {
            TaskFigure::NeedleHeatmap { title, grid } => (title, vec![grid]),
            TaskFigure::NeedleOverview { title, grids } => (title, grids),
            TaskFigure::BudgetCurves(_) => {
                return Err(TaskFigureError::NotANeedleFigure { path: sidecar });
            }
        };
        if grids.is_empty() {
            return Err(TaskFigureError::NotATaskSidecar {
                path: sidecar,
                message: "it holds no needle grid".to_owned(),
            });
        }
        for grid in &grids {
            grid.validate()
                .map_err(|e| TaskFigureError::NotATaskSidecar {
                    path: sidecar.clone(),
                    message: e.to_string(),
                })?;
        }
        let run_dirs = run_dirs(&sidecar, &read.run_dir);
        Ok(Self {
            sidecar,
            title,
            grids,
            run_dirs,
        })
    }

    /// The ids of the samples behind cell (`row`, `column`) of grid `grid`; empty where none
    /// ran or the cell does not exist.
    pub fn samples_at(&self, grid: usize, row: usize, column: usize) -> &[String] {
        self.grids
            .get(grid)
            .and_then(|g| g.sample_ids.get(row))
            .and_then(|r| r.get(column))
            .map_or(&[], Vec::as_slice)
    }

    /// The run's samples file: in the folder that holds the figures folder, else in the run
    /// folder the sidecar names.
    pub fn samples_file(&self) -> Result<PathBuf, TaskFigureError> {
        self.run_dirs
            .iter()
            .map(|dir| dir.join(SAMPLES_FILE))
            .find(|path| path.is_file())
            .ok_or_else(|| TaskFigureError::NoSamples {
                looked_in: self.run_dirs.clone(),
            })
    }

    /// Reads the sample `id` from the run's samples file.
    pub fn read_sample(&self, id: &str) -> Result<TaskSample, TaskFigureError> {
        read_sample(&self.samples_file()?, id)
    }
}

/// Where the run of a figure may be: the folder above `figures/` (the run folder, wherever it
/// was moved) or, for a sidecar outside a figures folder, its own folder; then the run folder
/// the sidecar names (relative to where the run was started).
fn run_dirs(sidecar: &Path, named: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(folder) = sidecar.parent() {
        if folder.file_name().is_some_and(|name| name == FIGURES_DIR)
            && let Some(run) = folder.parent()
        {
            dirs.push(run.to_path_buf());
        } else {
            dirs.push(folder.to_path_buf());
        }
    }
    if !named.as_os_str().is_empty() && !dirs.iter().any(|d| d == named) {
        dirs.push(named.to_path_buf());
    }
    dirs
}

/// Reads the sample `id` from the samples file `path` (one JSON object per line).
pub fn read_sample(path: &Path, id: &str) -> Result<TaskSample, TaskFigureError> {
    let text = std::fs::read_to_string(path).map_err(|source| TaskFigureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let sample: TaskSample =
            serde_json::from_str(line).map_err(|e| TaskFigureError::BadSample {
                path: path.to_path_buf(),
                line: number + 1,
                message: e.to_string(),
            })?;
        if sample.id == id {
            return Ok(sample);
        }
    }
    Err(TaskFigureError::SampleNotFound {
        id: id.to_owned(),
        path: path.to_path_buf(),
    })
}

/// What a task sample adds to a plain document and question: the text its answer starts with
/// and the byte ranges of the document that hold its needles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamplePrompt {
    /// The sample's id.
    pub id: String,
    /// Text the answer starts with (may be empty).
    pub answer_prefix: String,
    /// Byte ranges of the document (the sample's context) holding the needles.
    pub evidence: Vec<Range<usize>>,
}

impl SamplePrompt {
    /// The prompt additions of `sample`.
    pub fn of(sample: &TaskSample) -> Self {
        Self {
            id: sample.id.clone(),
            answer_prefix: sample.answer_prefix.clone(),
            evidence: sample.evidence.clone(),
        }
    }
}

/// A short description of grid `grid` for lists: its method and budget.
pub fn grid_label(grid: &NeedleGrid) -> String {
    format!("{} · {}", grid.method, grid.budget_label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::explorer::LoadedDocument;
    use crate::app::state::State;
    use crate::export::Overwrite;
    use crate::export::task_figures::{BudgetCurves, task_figure_sidecar, write_task_figure};
    use crate::tasks::Metric;

    /// A needle sample whose context holds `needle` after a line of filler.
    fn sample(index: usize, id: &str, needle: &str) -> TaskSample {
        let filler = "The grass is green. The sky is blue. ";
        let context = format!("{filler}{needle} {filler}");
        TaskSample {
            index,
            id: id.to_owned(),
            task: "niah".to_owned(),
            evidence: std::iter::once(filler.len()..filler.len() + needle.len()).collect(),
            context,
            question: format!("What is the magic number in sample {id}?"),
            answer_prefix: "The magic number is".to_owned(),
            answers: vec!["7".to_owned()],
            max_new_tokens: 8,
            metric: Metric::StringMatchAll,
            fields: Vec::new(),
        }
    }

    /// Method `method` on 2 lengths × 2 depths: one sample in three cells, two in one, none
    /// in the last.
    fn grid(method: &str, budget: Option<usize>) -> NeedleGrid {
        let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        NeedleGrid {
            method: method.to_owned(),
            budget,
            ratio: None,
            lengths: vec![100, 200],
            depths: vec![0, 50],
            scores: vec![vec![Some(1.0), Some(0.5)], vec![Some(0.0), None]],
            sample_ids: vec![
                vec![ids(&["a"]), ids(&["b", "c"])],
                vec![ids(&["d"]), ids(&[])],
            ],
        }
    }

    /// A run folder with `samples.jsonl` and `figure` written under `figures/` as `stem`; the
    /// sidecar names a run folder that does not exist (the run was moved).
    fn run_folder(figure: &TaskFigure, stem: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<String> = [
            (0, "a", "7"),
            (1, "b", "42"),
            (2, "c", "1234"),
            (3, "d", "9"),
        ]
        .iter()
        .map(|&(i, id, n)| {
            let needle = format!("The magic number is {n}.");
            serde_json::to_string(&sample(i, id, &needle)).unwrap()
        })
        .collect();
        std::fs::write(dir.path().join(SAMPLES_FILE), samples.join("\n") + "\n").unwrap();
        let figures = dir.path().join(FIGURES_DIR);
        std::fs::create_dir(&figures).unwrap();
        let svg = figures.join(format!("{stem}.svg"));
        let moved = Path::new("/nonexistent/run/that/moved");
        write_task_figure(&svg, figure, moved, 72.0, Overwrite::Refuse).unwrap();
        (dir, svg)
    }

    #[test]
    fn a_cell_leads_to_its_samples_and_to_the_prompt_the_run_built() {
        let figure = TaskFigure::NeedleHeatmap {
            title: "niah on tiny".to_owned(),
            grid: grid("snapkv", Some(8)),
        };
        let (dir, svg) = run_folder(&figure, "needle_snapkv_b8");
        // The PNG, the SVG and the sidecar open the same figure.
        let opened = OpenedFigure::open(&svg.with_extension("png")).unwrap();
        assert_eq!(OpenedFigure::open(&svg).unwrap(), opened);
        assert_eq!(
            OpenedFigure::open(&svg.with_extension("json")).unwrap(),
            opened
        );
        assert_eq!(opened.title, "niah on tiny");
        assert_eq!(opened.grids, vec![grid("snapkv", Some(8))]);

        // Each cell's ids are the ones the sidecar finds under the cell's centre.
        let sidecar = task_figure_sidecar(&figure, dir.path()).unwrap();
        let heatmap = &sidecar.heatmaps[0];
        for row in 0..2 {
            for column in 0..2 {
                let x = heatmap.x + (column as f32 + 0.5) * heatmap.width / 2.0;
                let y = heatmap.y + (row as f32 + 0.5) * heatmap.height / 2.0;
                let (_, r, c, ids) = sidecar.samples_at(x, y).unwrap();
                assert_eq!((r, c), (row, column));
                assert_eq!(opened.samples_at(0, row, column), ids);
            }
        }
        assert_eq!(opened.samples_at(0, 0, 1), ["b", "c"]);
        assert!(opened.samples_at(0, 1, 1).is_empty());
        assert!(opened.samples_at(0, 2, 0).is_empty(), "no such row");
        assert!(opened.samples_at(1, 0, 0).is_empty(), "no such grid");

        // The run was moved: its samples are found above the figures folder.
        assert_eq!(
            opened.samples_file().unwrap(),
            dir.path().join(SAMPLES_FILE)
        );
        let read = opened.read_sample("c").unwrap();
        assert_eq!(read, sample(2, "c", "The magic number is 1234."));
        let needle = &read.context[read.evidence[0].clone()];
        assert_eq!(needle, "The magic number is 1234.");

        // The explorer's request is the task runner's prompt: context, question, prefix, and
        // the needle marked.
        let document = LoadedDocument::of_sample(&read);
        assert_eq!(document.label, "sample c");
        let state = State {
            question: read.question.clone(),
            ..State::default()
        };
        let request = document.request(&state);
        assert_eq!(request.document, read.context);
        assert_eq!(request.question, "What is the magic number in sample c?");
        assert_eq!(request.answer_prefix, "The magic number is");
        assert_eq!(request.marks, read.evidence);
        assert_eq!(request.document_path, None);
        assert_eq!(
            (request.window, request.decode_tokens),
            (state.inspect_window, state.decode_tokens)
        );
        // A plain document asks a plain question.
        let plain = LoadedDocument {
            path: None,
            label: "notes".to_owned(),
            text: "Some notes.".to_owned(),
            sample: None,
        }
        .request(&state);
        assert_eq!((plain.answer_prefix.as_str(), plain.marks.len()), ("", 0));
    }

    #[test]
    fn an_overview_opens_with_every_grid() {
        let figure = TaskFigure::NeedleOverview {
            title: String::new(),
            grids: vec![grid("snapkv", Some(8)), grid("Full KV", None)],
        };
        let (_dir, svg) = run_folder(&figure, "needle_overview");
        let opened = OpenedFigure::open(&svg).unwrap();
        assert_eq!(opened.grids.len(), 2);
        assert_eq!(grid_label(&opened.grids[1]), "Full KV · full cache");
        assert_eq!(opened.samples_at(1, 1, 0), ["d"]);
    }

    #[test]
    fn dropped_files_open_as_figures_only_with_a_sidecar() {
        let figure = TaskFigure::NeedleHeatmap {
            title: String::new(),
            grid: grid("snapkv", Some(8)),
        };
        let (dir, svg) = run_folder(&figure, "needle_snapkv_b8");
        assert!(is_task_figure_file(&svg));
        assert!(is_task_figure_file(&svg.with_extension("PNG")));
        assert!(is_task_figure_file(&dir.path().join("any.json")));
        let lone = dir.path().join("photo.png");
        std::fs::write(&lone, b"not read").unwrap();
        assert!(!is_task_figure_file(&lone));
        assert!(!is_task_figure_file(&dir.path().join("notes.txt")));
        assert!(!is_task_figure_file(&dir.path().join("README")));
    }

    #[test]
    fn bad_figures_and_missing_samples_are_refused_naming_the_file() {
        let figure = TaskFigure::NeedleHeatmap {
            title: String::new(),
            grid: grid("snapkv", Some(8)),
        };
        let (dir, svg) = run_folder(&figure, "needle_snapkv_b8");
        let message = |e: TaskFigureError| e.to_string();

        let text = dir.path().join("notes.txt");
        let e = OpenedFigure::open(&text).unwrap_err();
        assert!(matches!(e, TaskFigureError::NotAFigure { .. }), "{e}");
        assert!(message(e).contains("notes.txt"));

        let lone = dir.path().join("photo.png");
        std::fs::write(&lone, b"png").unwrap();
        let e = OpenedFigure::open(&lone).unwrap_err();
        assert!(matches!(e, TaskFigureError::NoSidecar { .. }), "{e}");
        assert!(message(e).contains("photo.json"));

        // An attention figure's sidecar, say.
        let other = dir.path().join("layer12.json");
        std::fs::write(&other, r#"{"program": {}, "panels": []}"#).unwrap();
        let e = OpenedFigure::open(&other).unwrap_err();
        assert!(matches!(e, TaskFigureError::NotATaskSidecar { .. }), "{e}");
        assert!(message(e).contains("layer12.json"));

        let curves = TaskFigure::BudgetCurves(BudgetCurves {
            title: "scores".to_owned(),
            metric: "score".to_owned(),
            budgets: vec![8, 16],
            ratios: Vec::new(),
            methods: vec![("SnapKV".to_owned(), vec![Some(0.5), Some(0.75)])],
            full_kv: Some(1.0),
        });
        let path = dir.path().join(FIGURES_DIR).join("scores_by_budget.svg");
        write_task_figure(&path, &curves, dir.path(), 72.0, Overwrite::Refuse).unwrap();
        let e = OpenedFigure::open(&path).unwrap_err();
        assert!(matches!(e, TaskFigureError::NotANeedleFigure { .. }), "{e}");

        let opened = OpenedFigure::open(&svg).unwrap();
        let e = opened.read_sample("zz").unwrap_err();
        assert!(matches!(e, TaskFigureError::SampleNotFound { .. }), "{e}");
        assert!(message(e).contains(SAMPLES_FILE));

        let samples = dir.path().join(SAMPLES_FILE);
        let first = std::fs::read_to_string(&samples).unwrap();
        let first = first.lines().next().unwrap().to_owned();
        std::fs::write(&samples, format!("{first}\n{{\"id\": \"b\"}}\n")).unwrap();
        let e = opened.read_sample("b").unwrap_err();
        assert!(
            matches!(e, TaskFigureError::BadSample { line: 2, .. }),
            "{e}"
        );

        std::fs::remove_file(&samples).unwrap();
        let e = opened.read_sample("a").unwrap_err();
        assert!(matches!(e, TaskFigureError::NoSamples { .. }), "{e}");
        assert!(message(e).contains("/nonexistent/run/that/moved"));
    }
}

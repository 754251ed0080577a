//! "Export figure…" and "Export data…": build what the export room writes from the current
//! view, ask before replacing files, and write on a helper thread so the window never freezes.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::app::lod::Pyramid;
use crate::app::panels::source_toggles::shown_sources;
use crate::app::session_view::SessionView;
use crate::app::state::State;
use crate::attention::{Pick, QuerySource, RowReduce, source_scores};
use crate::export::{
    AnswerAgreement, DataExtras, EvictionSettings, FigurePaths, FigureSpec, HeadAxis, MetricsRow,
    Overwrite, PRINT_DPI, PanelInput, PolicyKeep, SessionFigureOptions, SourceScores,
    session_figure_spec, session_file_names, write_figure, write_session_data,
};
use crate::policy::PolicyId;
use crate::session::Session;

/// An export ready to write.
#[derive(Clone)]
pub enum ExportJob {
    /// A figure: `<stem>.png`, `<stem>.svg` and `<stem>.json`.
    Figure {
        /// The path chosen; the PNG, the SVG and the sidecar share its stem.
        path: PathBuf,
        /// What to draw.
        spec: Box<FigureSpec>,
    },
    /// The session's arrays, manifest and metrics into a folder.
    Data {
        /// The folder.
        dir: PathBuf,
        /// The session.
        session: Arc<Session>,
        /// Scores, masks, metrics and settings.
        extras: Box<DataExtras>,
    },
}

impl ExportJob {
    /// Every file the job writes.
    pub fn targets(&self) -> Vec<PathBuf> {
        match self {
            ExportJob::Figure { path, .. } => match FigurePaths::for_path(path) {
                Ok(paths) => vec![paths.png, paths.svg, paths.sidecar],
                Err(_) => Vec::new(),
            },
            ExportJob::Data {
                dir,
                session,
                extras,
            } => match session_file_names(session, extras) {
                Ok(names) => names.iter().map(|n| dir.join(n)).collect(),
                Err(_) => Vec::new(),
            },
        }
    }

    /// The targets that exist already.
    pub fn existing(&self) -> Vec<PathBuf> {
        self.targets()
            .into_iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .collect()
    }

    /// Writes every file through the export room (atomically, refusing to replace existing
    /// files unless `overwrite` says so); returns the paths written.
    pub fn write(&self, overwrite: Overwrite) -> Result<Vec<PathBuf>, String> {
        match self {
            ExportJob::Figure { path, spec } => write_figure(path, spec, PRINT_DPI, overwrite)
                .map(|p| vec![p.png, p.svg, p.sidecar])
                .map_err(|e| e.to_string()),
            ExportJob::Data {
                dir,
                session,
                extras,
            } => write_session_data(dir, session, extras, overwrite).map_err(|e| e.to_string()),
        }
    }
}

/// Where an export stands.
#[derive(Default)]
pub enum ExportFlow {
    /// Nothing going on.
    #[default]
    Idle,
    /// Some targets exist; the user is asked whether to replace them.
    Confirm {
        /// The export.
        job: Box<ExportJob>,
        /// The files that would be replaced.
        existing: Vec<PathBuf>,
    },
    /// Writing on a helper thread.
    Writing(Receiver<Result<Vec<PathBuf>, String>>),
}

impl ExportFlow {
    /// Starts writing `job` on a helper thread, calling `wake` when done.
    pub fn start(
        job: ExportJob,
        overwrite: Overwrite,
        wake: impl FnOnce() + Send + 'static,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new()
            .name("judgeq-export".to_owned())
            .spawn(move || {
                tx.send(job.write(overwrite)).ok();
                wake();
            });
        match spawned {
            Ok(_) => ExportFlow::Writing(rx),
            Err(e) => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                tx.send(Err(format!("could not start the export: {e}")))
                    .ok();
                ExportFlow::Writing(rx)
            }
        }
    }

    /// Whether a write is under way.
    pub fn is_writing(&self) -> bool {
        matches!(self, ExportFlow::Writing(_))
    }
}

/// The figure options of the explorer's state, showing `keys`.
fn figure_options(state: &State, keys: Range<usize>) -> SessionFigureOptions {
    SessionFigureOptions {
        view: state.view,
        colour: state.colour,
        budget: state.budget,
        keys,
        strip_policies: state.strip_policies_by_source(),
        policy: state.policy.clone(),
    }
}

/// The figure of the source panels as shown: the panels the user did not hide, the visible
/// key range, the shared colour scale, the kept strips at the current budget (drawn by the
/// export room's [`session_figure_spec`], as `judgeq figure` draws it).
pub fn figure_spec(
    view: &mut SessionView,
    state: &State,
    matrices: &[Option<Arc<Pyramid>>; QuerySource::COUNT],
) -> Result<FigureSpec, String> {
    if shown_sources(&view.session, state).is_empty() {
        return Err("every source panel is hidden: show one under Panels".to_owned());
    }
    let keys = view.keys();
    let start = (view.axis.start().floor().max(0.0) as usize).min(keys);
    let end = (view.axis.end().ceil().max(0.0) as usize).clamp(start, keys);
    if end <= start {
        return Err("there are no keys in view to export".to_owned());
    }
    let options = figure_options(state, start..end);
    let budget = view.budget();
    let shares = QuerySource::ALL
        .map(|source| view.kept_share(state.strip_policy(source), budget, state.view));
    let mut panels: [PanelInput<'_>; QuerySource::COUNT] = Default::default();
    let sources = QuerySource::ALL.into_iter().zip(matrices).zip(&shares);
    for (panel, ((source, matrix), share)) in panels.iter_mut().zip(sources) {
        panel.matrix = matrix.as_deref().map(Pyramid::base);
        panel.kept = share.as_deref().map(Vec::as_slice);
        panel.hidden = !state.shows_source(source);
    }
    session_figure_spec(&view.session, panels, &options).map_err(|e| e.to_string())
}

/// A file name for a figure of the current view.
pub fn figure_file_name(state: &State, layers: usize, heads: usize) -> String {
    let part = |pick: Pick, count: usize, letter: &str| match pick.index(count) {
        Some(i) => format!("{letter}{i}"),
        None => format!("{letter}{}", state.view.reduce.label()),
    };
    format!(
        "judgeq_{}_{}_b{}.png",
        part(state.view.layer, layers, "L"),
        part(state.view.head, heads, "H"),
        state.budget
    )
}

/// Scores, keep masks and metrics of the compared policies at the current budget.
pub fn data_extras(view: &mut SessionView, state: &State) -> DataExtras {
    let session = Arc::clone(&view.session);
    let budget = view.budget();
    let scores = QuerySource::ALL
        .into_iter()
        .filter_map(|source| {
            session.rows(source).map(|rows| SourceScores {
                source,
                heads: HeadAxis::QueryHeads,
                scores: source_scores(rows.view(), RowReduce::Sum),
            })
        })
        .collect();
    let policies: Vec<PolicyId> = view
        .available_policies(&state.policy)
        .into_iter()
        .filter(|p| state.compared.contains(p))
        .collect();
    let mut keeps = Vec::new();
    for &policy in &policies {
        if let Some(Ok(selection)) = view.selection(policy, budget) {
            let heads = if selection.mask.dim().1 == session.model.query_heads {
                HeadAxis::QueryHeads
            } else {
                HeadAxis::KvHeads
            };
            keeps.push(PolicyKeep {
                policy: policy.id().to_owned(),
                budget: budget.asked(),
                heads,
                mask: selection.mask.clone(),
            });
        }
    }
    let full = &session.answer;
    let mut metrics = Vec::new();
    if let Some(Ok(all)) = view.metrics(budget) {
        for m in all.iter().filter(|m| policies.contains(&m.policy)) {
            let agreement = view
                .answers
                .answers
                .get(&m.policy)
                .filter(|a| a.budget == budget.asked())
                .map(|a| AnswerAgreement::between(full, &a.answer));
            metrics.push(MetricsRow::new(m, agreement));
        }
    }
    DataExtras {
        scores,
        keeps,
        metrics,
        eviction: Some(EvictionSettings {
            policies: policies.iter().map(|p| p.id().to_owned()).collect(),
            budgets: vec![budget.asked()],
            ratios: Vec::new(),
            settings: serde_json::to_value(&state.policy).unwrap_or_default(),
        }),
    }
}

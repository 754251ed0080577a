//! "Export figure…" and "Export data…": build what the export room writes from the current
//! view, ask before replacing files, and write on a helper thread so the window never freezes.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::app::colour::ColourScale;
use crate::app::lod::Pyramid;
use crate::app::session_view::SessionView;
use crate::app::state::State;
use crate::app::view::{Pick, Reduce};
use crate::attention::{QuerySource, RowReduce, source_scores};
use crate::export::{
    AnswerAgreement, DataExtras, EvictionSettings, FigurePaths, FigureSpec, HeadAxis, KeptStrip,
    KeyAxis, MetricsRow, Overwrite, Panel, PanelData, PolicyKeep, Provenance, QueryAxis, Selector,
    SourceScores, session_file_names, write_figure, write_session_data,
};
use crate::policy::PolicyKind;
use crate::session::Session;

/// Print resolution of exported PNGs.
pub const FIGURE_DPI: f32 = 300.0;

/// Key labels are put under the axis when the figure shows at most this many keys.
const MAX_LABELLED_KEYS: usize = 64;

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
            ExportJob::Figure { path, spec } => write_figure(path, spec, FIGURE_DPI, overwrite)
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

/// The figure's selector for a layer or head pick.
fn selector(pick: Pick, reduce: Reduce) -> Selector {
    match (pick, reduce) {
        (Pick::One(i), _) => Selector::Index(i),
        (Pick::All, Reduce::Mean) => Selector::Mean,
        (Pick::All, Reduce::Max) => Selector::Max,
    }
}

/// What a panel's rows are, and the index of the first one.
fn query_axis(source: QuerySource, session: &Session, rows: usize) -> QueryAxis {
    match source {
        QuerySource::Window => QueryAxis {
            label: "query position".to_owned(),
            first: session.prompt_len().saturating_sub(rows),
        },
        QuerySource::Soft => QueryAxis {
            label: "soft token".to_owned(),
            first: 0,
        },
        QuerySource::Decoded => QueryAxis {
            label: "decoded token".to_owned(),
            first: 0,
        },
    }
}

/// The inspection, policy and colour settings, for sidecars and manifests.
pub fn settings_json(session: &Session, state: &State) -> serde_json::Value {
    serde_json::json!({
        "inspect": session.settings,
        "policy": state.policy,
        "colour": {
            "mode": state.colour.mode,
            "skip_sinks": state.colour.skip_sinks,
            "decades": state.colour.decades,
            "colormap": state.colour.colormap,
        },
        "aggregation": state.view.reduce.label(),
        "strip_policies": state.strip_policies.iter().map(|p| p.id()).collect::<Vec<_>>(),
    })
}

/// The figure of the three panels as shown: the visible key range, the shared colour scale,
/// the kept strips at the current budget.
pub fn figure_spec(
    view: &mut SessionView,
    state: &State,
    matrices: &[Option<(Arc<Pyramid>, ColourScale)>; 3],
) -> Result<FigureSpec, String> {
    let keys = view.keys();
    let start = (view.axis.start().floor().max(0.0) as usize).min(keys);
    let end = (view.axis.end().ceil().max(0.0) as usize).clamp(start, keys);
    if end <= start {
        return Err("there are no keys in view to export".to_owned());
    }
    let budget = state.budget.clamp(1, keys.max(1));
    let mut panels = Vec::new();
    let mut shared = None;
    for (index, source) in QuerySource::ALL.into_iter().enumerate() {
        let strip_policy = state.strip_policy(source);
        let kept = view
            .kept_share(strip_policy, budget, state.view)
            .map(|share| KeptStrip {
                policy: strip_policy.label().to_owned(),
                kept: share
                    .get(start..end)
                    .map(<[f32]>::to_vec)
                    .unwrap_or_default(),
            });
        let (data, rows) = match matrices.get(index).and_then(Option::as_ref) {
            Some((pyramid, scale)) => {
                let base = pyramid.base();
                if base.ncols() < end {
                    return Err(format!(
                        "the {} panel has {} keys, the prompt {keys}",
                        source.file_stem(),
                        base.ncols()
                    ));
                }
                let slice = base.slice(ndarray::s![.., start..end]);
                let (values, figure_scale, label) = scale.for_figure(slice);
                shared.get_or_insert((figure_scale, label));
                (PanelData::Heatmap(values), base.nrows())
            }
            None => (
                PanelData::Missing(match source {
                    QuerySource::Soft => "no soft tokens in this session".to_owned(),
                    QuerySource::Window | QuerySource::Decoded => "no attention rows".to_owned(),
                }),
                0,
            ),
        };
        panels.push(Panel {
            title: source.title().to_owned(),
            data,
            queries: query_axis(source, &view.session, rows),
            kept,
        });
    }
    let (scale, value_label) = shared.ok_or("no panel has data to export")?;
    let session = &view.session;
    let info = &session.model;
    let tokens = (end - start <= MAX_LABELLED_KEYS)
        .then(|| {
            session
                .prompt
                .tokens
                .get(start..end)
                .map(<[String]>::to_vec)
        })
        .flatten();
    Ok(FigureSpec {
        title: Some(format!(
            "{} · {} · budget {budget}",
            info.id,
            state.view.describe(info.layers, info.query_heads)
        )),
        panels,
        keys: KeyAxis { start, end, tokens },
        scale,
        value_label,
        budget: Some(budget),
        width_mm: FigureSpec::DEFAULT_WIDTH_MM,
        provenance: Provenance {
            model_id: info.id.clone(),
            weights_sha256: info.weights_sha256.clone(),
            layer: selector(state.view.layer, state.view.reduce),
            head: selector(state.view.head, state.view.reduce),
            settings: settings_json(session, state),
        },
    })
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
    let budget = state.budget.clamp(1, view.keys().max(1));
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
    let policies: Vec<PolicyKind> = view
        .available_policies()
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
                budget,
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
                .filter(|a| a.budget == budget)
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
            budgets: vec![budget],
            settings: serde_json::to_value(&state.policy).unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_follow_the_picks() {
        assert_eq!(selector(Pick::One(3), Reduce::Max), Selector::Index(3));
        assert_eq!(selector(Pick::All, Reduce::Max), Selector::Max);
        assert_eq!(selector(Pick::All, Reduce::Mean), Selector::Mean);
    }
}

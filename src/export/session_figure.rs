//! The figure of a session's three query-source panels: what the explorer's "Export figure…"
//! and `judgeq figure` both draw, built here once so that the two give the same bytes.
//!
//! The caller supplies the view's matrix of each source (over the whole prompt) and, for each
//! panel's kept strip, the share of the viewed heads that keep each key; everything else (the
//! shared colour scale, the key range, titles, provenance) is decided here from
//! [`SessionFigureOptions`].

use std::ops::Range;

use ndarray::Array2;

use crate::attention::{HeadView, Pick, QuerySource, Reduce, view_matrix};
use crate::export::{
    ColourScale, ColourSettings, ExportError, FigureSpec, KeptStrip, KeyAxis, Panel, PanelData,
    Provenance, QueryAxis, Selector,
};
use crate::policy::{Budget, PolicyId, PolicySettings};
use crate::session::Session;

/// Key labels are put under the axis when the figure shows at most this many keys.
const MAX_LABELLED_KEYS: usize = 64;

/// Everything the figure takes from the explorer's state (or from `judgeq figure`'s flags).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionFigureOptions {
    /// Layer, head and aggregation of the panels.
    pub view: HeadView,
    /// Colour scaling.
    pub colour: ColourSettings,
    /// Entries kept per head; clamped to `1..=prompt length`.
    pub budget: usize,
    /// The key range shown; clamped to the prompt.
    pub keys: Range<usize>,
    /// The policy of each panel's kept strip, in [`QuerySource::ALL`] order.
    pub strip_policies: [PolicyId; QuerySource::COUNT],
    /// The policy settings the strips were selected with.
    pub policy: PolicySettings,
}

impl SessionFigureOptions {
    /// The budget the figure is drawn at: `budget` within `1..=prompt_len`.
    pub fn budget_for(&self, prompt_len: usize) -> Budget {
        Budget::clamped(self.budget, prompt_len)
    }
}

/// One panel's data: the view's `[queries, n_prompt]` matrix of its source (none when the
/// session lacks the source), the kept shares of its strip policy over every prompt key
/// (none when no strip is drawn), and whether the panel is left out.
#[derive(Clone, Copy, Debug, Default)]
pub struct PanelInput<'a> {
    /// The view's matrix over the whole prompt.
    pub matrix: Option<&'a Array2<f32>>,
    /// Per prompt key, the share of the viewed heads that keep it.
    pub kept: Option<&'a [f32]>,
    /// Leaves the panel out of the figure (a panel the explorer's user hid); its matrix still
    /// counts in the shared colour scale, as on screen.
    pub hidden: bool,
}

/// The view's matrix of every query source of `session`, in [`QuerySource::ALL`] order.
pub fn view_matrices(
    session: &Session,
    view: HeadView,
) -> [Option<Array2<f32>>; QuerySource::COUNT] {
    QuerySource::ALL.map(|source| {
        session
            .rows(source)
            .map(|rows| view_matrix(rows.view(), view))
    })
}

/// The inspection, policy and colour settings, for the sidecar.
fn settings_json(session: &Session, options: &SessionFigureOptions) -> serde_json::Value {
    serde_json::json!({
        "inspect": session.settings,
        "policy": options.policy,
        "colour": {
            "mode": options.colour.mode,
            "skip_sinks": options.colour.skip_sinks,
            "decades": options.colour.decades,
            "colormap": options.colour.colormap,
        },
        "aggregation": options.view.reduce.label(),
        "strip_policies": options.strip_policies.iter().map(|p| p.id()).collect::<Vec<_>>(),
    })
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
        QuerySource::Lookahead => QueryAxis {
            label: "draft token".to_owned(),
            first: 0,
        },
        QuerySource::Repeat => QueryAxis {
            label: "sampled repeat token".to_owned(),
            first: 0,
        },
    }
}

/// The figure of the source panels (the lookahead and repeat panels only when the session
/// captured them, none of the hidden ones): the key range of `options`, one colour scale fitted
/// to every panel's matrix, the kept strips at the options' budget.
pub fn session_figure_spec(
    session: &Session,
    panels: [PanelInput<'_>; QuerySource::COUNT],
    options: &SessionFigureOptions,
) -> Result<FigureSpec, ExportError> {
    let invalid = |reason: String| Err(ExportError::InvalidFigure(reason));
    let keys = session.prompt_len();
    let start = options.keys.start.min(keys);
    let end = options.keys.end.clamp(start, keys);
    if end <= start {
        return invalid(format!(
            "the key range {}..{} holds none of the prompt's {keys} keys",
            options.keys.start, options.keys.end
        ));
    }
    let budget = options.budget_for(keys);
    let scales = ColourScale::fit_shared(&panels.map(|p| p.matrix), options.colour);
    let mut figure_panels = Vec::with_capacity(3);
    let mut shared = None;
    let sources = QuerySource::ALL.into_iter().zip(options.strip_policies);
    for (((source, strip_policy), input), scale) in sources.zip(panels).zip(scales) {
        if input.hidden
            || (matches!(source, QuerySource::Lookahead | QuerySource::Repeat)
                && input.matrix.is_none())
        {
            // Sessions without drafts or a repeat pass draw the three panels they always had.
            continue;
        }
        let kept = input.kept.map(|share| KeptStrip {
            policy: strip_policy.label().to_owned(),
            kept: share
                .get(start..end)
                .map(<[f32]>::to_vec)
                .unwrap_or_default(),
        });
        let (data, rows) = match input.matrix.zip(scale) {
            Some((matrix, scale)) => {
                if matrix.ncols() < end {
                    return invalid(format!(
                        "the {} panel has {} keys, the prompt {keys}",
                        source.file_stem(),
                        matrix.ncols()
                    ));
                }
                let slice = matrix.slice(ndarray::s![.., start..end]);
                let (values, figure_scale, label) = scale.for_figure(slice);
                shared.get_or_insert((figure_scale, label));
                (PanelData::Heatmap(values), matrix.nrows())
            }
            None => (
                PanelData::Missing(match source {
                    QuerySource::Soft => "no soft tokens in this session".to_owned(),
                    QuerySource::Lookahead => "no lookahead drafts in this session".to_owned(),
                    QuerySource::Repeat => "no KVzip repeat pass in this session".to_owned(),
                    QuerySource::Window | QuerySource::Decoded => "no attention rows".to_owned(),
                }),
                0,
            ),
        };
        figure_panels.push(Panel {
            title: source.title().to_owned(),
            data,
            queries: query_axis(source, session, rows),
            kept,
        });
    }
    let Some((scale, value_label)) = shared else {
        return invalid("no panel has data to draw".to_owned());
    };
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
            options.view.describe(info.layers, info.query_heads)
        )),
        panels: figure_panels,
        keys: KeyAxis { start, end, tokens },
        scale,
        value_label,
        budget: Some(budget.asked()),
        width_mm: FigureSpec::DEFAULT_WIDTH_MM,
        provenance: Provenance {
            model_id: info.id.clone(),
            weights_sha256: info.weights_sha256.clone(),
            layer: selector(options.view.layer, options.view.reduce),
            head: selector(options.view.head, options.view.reduce),
            settings: settings_json(session, options),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::tiny_session;

    fn options() -> SessionFigureOptions {
        SessionFigureOptions {
            view: HeadView {
                layer: Pick::One(1),
                head: Pick::All,
                reduce: Reduce::Max,
            },
            colour: ColourSettings::default(),
            budget: 4,
            keys: 2..9,
            strip_policies: [
                PolicyId::SNAPKV,
                PolicyId::JUDGEQ,
                PolicyId::ORACLE,
                PolicyId::LOOKAHEAD,
                PolicyId::KVZIP,
            ],
            policy: PolicySettings::default(),
        }
    }

    #[test]
    fn selectors_follow_the_picks() {
        assert_eq!(selector(Pick::One(3), Reduce::Max), Selector::Index(3));
        assert_eq!(selector(Pick::All, Reduce::Max), Selector::Max);
        assert_eq!(selector(Pick::All, Reduce::Mean), Selector::Mean);
    }

    #[test]
    fn the_spec_shows_the_range_budget_and_strips_asked_for() {
        let session = tiny_session(false);
        let options = options();
        let matrices = view_matrices(&session, options.view);
        assert!(matrices[1].is_none(), "no soft tokens");
        let kept: Vec<f32> = (0..10).map(|k| (k % 2) as f32).collect();
        let panels = [
            PanelInput {
                matrix: matrices[0].as_ref(),
                kept: Some(&kept),
                hidden: false,
            },
            PanelInput::default(),
            PanelInput {
                matrix: matrices[2].as_ref(),
                kept: None,
                hidden: false,
            },
            PanelInput::default(),
            PanelInput::default(),
        ];
        let spec = session_figure_spec(&session, panels, &options).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.panels.len(), 3, "no lookahead panel without drafts");
        assert_eq!((spec.keys.start, spec.keys.end), (2, 9));
        assert_eq!(spec.keys.tokens.as_ref().unwrap()[0], "\n");
        assert_eq!(
            spec.title.as_deref(),
            Some("tiny-test · max over heads of layer 1 · budget 4")
        );
        assert_eq!(
            spec.panels[0].kept.as_ref().unwrap().kept,
            [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
        );
        assert_eq!(spec.panels[0].kept.as_ref().unwrap().policy, "SnapKV");
        assert_eq!(
            spec.panels[0].queries.first,
            10 - 3,
            "the last three positions"
        );
        assert!(matches!(&spec.panels[1].data, PanelData::Missing(why) if why.contains("soft")));
        assert!(spec.panels[2].kept.is_none());
        let PanelData::Heatmap(values) = &spec.panels[2].data else {
            panic!("the decoded panel has rows")
        };
        // Log scale: the values are drawn as they are, over the shown keys only.
        let full = matrices[2].as_ref().unwrap();
        assert_eq!(values, &full.slice(ndarray::s![.., 2..9]));
        assert_eq!(spec.provenance.layer, Selector::Index(1));
        assert_eq!(spec.provenance.head, Selector::Max);
        assert_eq!(spec.provenance.settings["strip_policies"][1], "judgeq");
        assert_eq!(spec.provenance.settings["aggregation"], "max");

        let mut wide = options.clone();
        wide.budget = 500;
        wide.keys = 0..500;
        let spec = session_figure_spec(&session, panels, &wide).unwrap();
        assert_eq!((spec.keys.end, spec.budget), (10, Some(10)));
    }

    #[test]
    fn hidden_panels_are_left_out_but_keep_the_shared_scale() {
        let session = tiny_session(true);
        let options = options();
        let matrices = view_matrices(&session, options.view);
        let all = matrices.each_ref().map(|m| PanelInput {
            matrix: m.as_ref(),
            kept: None,
            hidden: false,
        });
        // The decoded rows hold the largest values (tiny_session adds 0.5 to them).
        let mut two = all;
        two[2].hidden = true;
        let full = session_figure_spec(&session, all, &options).unwrap();
        let spec = session_figure_spec(&session, two, &options).unwrap();
        spec.validate().unwrap();
        let titles: Vec<&str> = spec.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            [QuerySource::Window.title(), QuerySource::Soft.title()]
        );
        assert_eq!(format!("{:?}", spec.scale), format!("{:?}", full.scale));
        // Without the decoded matrix at all, the scale would be fitted to the others alone.
        let mut without = all;
        without[2].matrix = None;
        let refitted = session_figure_spec(&session, without, &options).unwrap();
        assert_ne!(format!("{:?}", refitted.scale), format!("{:?}", full.scale));

        let mut none = all;
        for panel in &mut none {
            panel.hidden = true;
        }
        let err = session_figure_spec(&session, none, &options).unwrap_err();
        assert!(err.to_string().contains("no panel has data"), "{err}");
    }

    #[test]
    fn nothing_to_draw_is_an_error() {
        let session = tiny_session(true);
        let mut empty_range = options();
        empty_range.keys = 12..20;
        let matrices = view_matrices(&session, empty_range.view);
        let panels = matrices.each_ref().map(|m| PanelInput {
            matrix: m.as_ref(),
            kept: None,
            hidden: false,
        });
        let err = session_figure_spec(&session, panels, &empty_range).unwrap_err();
        assert!(err.to_string().contains("holds none"), "{err}");
        let err = session_figure_spec(&session, Default::default(), &options()).unwrap_err();
        assert!(err.to_string().contains("no panel has data"), "{err}");
    }
}

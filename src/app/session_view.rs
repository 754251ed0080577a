//! Everything the explorer derives from one session, cached by what it depends on.
//!
//! Nothing here runs the model. The policy bank (rankings of every policy) is built once per
//! session and settings, off the UI thread when large; selections and metrics at a budget are
//! cheap lookups into it and are recomputed in the frame the budget changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use egui::Context;

use crate::app::background::Computed;
use crate::app::find::FindResults;
use crate::app::key_viewport::KeyViewport;
use crate::app::lod::Pyramid;
use crate::app::marks::{MarkedSpans, show_range};
use crate::app::widgets::document_view::{DocumentText, DocumentView};
use crate::app::widgets::heatmap::HeatmapTextures;
use crate::attention::QuerySource;
use crate::attention::kept_share;
use crate::attention::{HeadView, key_scores, view_matrix};
use crate::export::{ColourScale, ColourSettings};
use crate::policy::{
    Budget, PolicyBank, PolicyId, PolicyMetrics, PolicySettings, ScoreInputs, Selection,
};
use crate::session::Session;
use crate::worker::protocol::{EvictionAnswer, JobId};

/// What the bank was built from.
#[derive(Clone, Debug, PartialEq)]
pub struct BankKey {
    /// Policy settings.
    pub settings: PolicySettings,
    /// Policies ranked.
    pub policies: Vec<PolicyId>,
}

/// The policy bank, or why it could not be built.
pub type BankResult = Result<PolicyBank, String>;

/// Metrics of every ranked policy at one budget.
#[derive(Clone, Debug)]
pub struct CurvePoint {
    /// Entries kept per head.
    pub budget: usize,
    /// One entry per ranked policy.
    pub metrics: Vec<PolicyMetrics>,
}

/// One query-source panel's cached matrix, colour scale, textures and score profile.
#[derive(Default)]
pub struct PanelCache {
    /// The view's queries × keys matrix and its pooled levels.
    pub matrix: Computed<HeadView, Pyramid>,
    /// Uploaded textures.
    pub textures: HeatmapTextures,
    /// Per-key scores of the matrix shown, and the view it was computed for.
    profile: Option<(HeadView, Arc<Vec<f32>>)>,
    /// How many times the profile was summed.
    profile_builds: u64,
}

/// The selection and metrics at one budget, for the current bank.
#[derive(Default)]
struct AtBudget {
    budget: Option<Budget>,
    bank_version: u64,
    selections: BTreeMap<PolicyId, Result<Arc<Selection>, String>>,
    metrics: Option<Result<Arc<Vec<PolicyMetrics>>, String>>,
    shares: BTreeMap<(PolicyId, HeadView), Arc<Vec<f32>>>,
}

/// Answers under eviction received for this session.
#[derive(Default)]
pub struct AnswerBook {
    /// The decode job running, and the budget it was asked at.
    pub pending: Option<(JobId, usize)>,
    /// Latest answer per policy.
    pub answers: BTreeMap<PolicyId, EvictionAnswer>,
    /// Why the last request failed, if it did.
    pub error: Option<String>,
}

/// The current session and everything derived from it.
pub struct SessionView {
    /// The session.
    pub session: Arc<Session>,
    /// Unique per session within this app run (part of texture and cache keys).
    pub generation: u64,
    /// The shared view of the key axis (zoom, pan, hover).
    pub axis: KeyViewport,
    /// The prompt as text.
    pub document: DocumentView,
    /// One cache per query source, in [`QuerySource::ALL`] order.
    pub panels: [PanelCache; QuerySource::COUNT],
    budget: Budget,
    scales: Option<ScalesKey>,
    bank: Computed<BankKey, BankResult>,
    wanted_bank: Option<BankKey>,
    bank_version: u64,
    at_budget: AtBudget,
    curves: Computed<u64, Result<Vec<CurvePoint>, String>>,
    /// Answers under eviction.
    pub answers: AnswerBook,
    /// A key clicked on a heatmap, for the document view to scroll to.
    pub scroll_document_to: Option<usize>,
    /// The find box's matches in this prompt.
    pub find: FindResults,
    /// Marked spans set by the program (a task's needle), cut to this prompt.
    marked: Vec<Arc<MarkedSpans>>,
}

/// The shared scales and what they were fitted to.
type ScalesKey = (
    Vec<Option<HeadView>>,
    ColourSettings,
    [Option<ColourScale>; QuerySource::COUNT],
);

/// Where the policy bank stands.
pub enum BankStatus {
    /// Ready.
    Ready,
    /// Being built on a helper thread.
    Building,
    /// Could not be built.
    Failed(String),
}

impl SessionView {
    /// A fresh view of `session` at `budget` entries per head (see [`SessionView::set_budget`]).
    pub fn new(session: Arc<Session>, generation: u64, budget: usize) -> Self {
        let keys = session.prompt_len();
        let document = DocumentView::new(Arc::new(DocumentText::new(&session.prompt)));
        Self {
            session,
            generation,
            axis: KeyViewport::new(keys),
            document,
            panels: Default::default(),
            budget: Budget::clamped(budget, keys),
            scales: None,
            bank: Computed::new(),
            wanted_bank: None,
            bank_version: 0,
            at_budget: AtBudget::default(),
            curves: Computed::new(),
            answers: AnswerBook::default(),
            scroll_document_to: None,
            find: FindResults::default(),
            marked: Vec::new(),
        }
    }

    /// Marks `lists` on this prompt (ranges past its end are cut off or dropped).
    pub fn set_marks(&mut self, lists: &[MarkedSpans]) {
        let keys = self.keys();
        self.marked = lists.iter().map(|l| Arc::new(l.clipped(keys))).collect();
    }

    /// The marked spans set by the program, cut to this prompt.
    pub fn marks(&self) -> &[Arc<MarkedSpans>] {
        &self.marked
    }

    /// Every list drawn on the key axis: the program's marks, then the find box's matches
    /// when there are any.
    pub fn mark_lists(&self) -> Vec<Arc<MarkedSpans>> {
        let found = self.find.matches().filter(|m| !m.is_empty());
        self.marked.iter().chain(found).cloned().collect()
    }

    /// Finds `query` in the prompt (again only when it changed).
    pub fn find(&mut self, query: &str) -> Arc<MarkedSpans> {
        let tokens = &self.session.prompt.tokens;
        self.find.update(tokens, query)
    }

    /// Shows the next (`forward`) or previous find match on the key axis and in the prompt view.
    pub fn step_find(&mut self, forward: bool) {
        if let Some(range) = self.find.step(forward) {
            self.show_tokens(&range);
        }
    }

    /// Shows the range of `list` after the one the key axis is centred on (the first one when
    /// it is centred on none), on the key axis and in the prompt view.
    pub fn show_next_mark(&mut self, list: &MarkedSpans) {
        let current = list.centred_in(&self.axis);
        if let Some(range) = list
            .step(current, true)
            .and_then(|i| list.ranges().get(i))
            .cloned()
        {
            self.show_tokens(&range);
        }
    }

    fn show_tokens(&mut self, range: &std::ops::Range<usize>) {
        show_range(&mut self.axis, range);
        self.scroll_document_to = Some(range.start);
    }

    /// Prompt length.
    pub fn keys(&self) -> usize {
        self.session.prompt_len()
    }

    /// Sets the budget every panel shows: `asked` entries per head (the slider's value), brought
    /// within the prompt once per frame, before any panel draws.
    pub fn set_budget(&mut self, asked: usize) {
        self.budget = Budget::clamped(asked, self.keys());
    }

    /// The budget every panel shows this frame.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The policies this session can rank under `settings`: those whose inputs it has (Judge Q
    /// needs soft tokens).
    pub fn available_policies(&self, settings: &PolicySettings) -> Vec<PolicyId> {
        let inputs = ScoreInputs::from_session(&self.session);
        PolicyId::all()
            .into_iter()
            .filter(|p| p.needs(settings).into_iter().all(|input| inputs.has(input)))
            .collect()
    }

    /// Makes sure the bank ranks `wanted` (those of them the session can rank) with
    /// `settings`, starting a rebuild when it does not. Only the policies on screen are ranked:
    /// every ranked policy costs time in each budget change's metrics.
    pub fn sync_bank(
        &mut self,
        settings: &PolicySettings,
        wanted: &[PolicyId],
        ctx: &Context,
    ) -> BankStatus {
        let policies = self
            .available_policies(settings)
            .into_iter()
            .filter(|p| wanted.contains(p))
            .collect();
        let key = BankKey {
            settings: settings.clone(),
            policies,
        };
        self.wanted_bank = Some(key.clone());
        let (layers, heads, keys) = self.session.accumulated.dim();
        let work = layers * heads * keys * key.policies.len() * 8;
        let session = Arc::clone(&self.session);
        let build_key = key.clone();
        let repaint = ctx.clone();
        let was_current = self.bank.latest().map(|(k, _)| k.clone());
        self.bank.request(
            &key,
            work,
            move || {
                let inputs = ScoreInputs::from_session(&session);
                PolicyBank::new(&inputs, &build_key.settings, &build_key.policies)
                    .map_err(|e| e.to_string())
            },
            move || repaint.request_repaint(),
        );
        let now_current = self.bank.latest().map(|(k, _)| k.clone());
        if now_current != was_current {
            self.bank_version += 1;
        }
        match self.bank.latest() {
            Some((k, bank)) if *k == key => match bank.as_ref() {
                Ok(_) => BankStatus::Ready,
                Err(message) => BankStatus::Failed(message.clone()),
            },
            _ => BankStatus::Building,
        }
    }

    /// Whether the bank (possibly for older settings) can answer selections.
    fn bank(&self) -> Option<&PolicyBank> {
        self.bank
            .latest()
            .and_then(|(_, b)| b.as_ref().as_ref().ok())
    }

    /// Resets the per-budget cache when the budget or the bank changed.
    fn at(&mut self, budget: Budget) -> &mut AtBudget {
        if self.at_budget.budget != Some(budget) || self.at_budget.bank_version != self.bank_version
        {
            self.at_budget = AtBudget {
                budget: Some(budget),
                bank_version: self.bank_version,
                ..AtBudget::default()
            };
        }
        &mut self.at_budget
    }

    /// What `policy` keeps at `budget`; `None` while the bank is being built.
    pub fn selection(
        &mut self,
        policy: PolicyId,
        budget: Budget,
    ) -> Option<Result<Arc<Selection>, String>> {
        self.bank()?;
        if let Some(found) = self.at(budget).selections.get(&policy) {
            return Some(found.clone());
        }
        let result = self
            .bank()?
            .select_live(policy, budget)
            .map_err(|e| e.to_string());
        self.at(budget).selections.insert(policy, result.clone());
        Some(result)
    }

    /// Metrics of every ranked policy at `budget`; `None` while the bank is being built.
    pub fn metrics(&mut self, budget: Budget) -> Option<Result<Arc<Vec<PolicyMetrics>>, String>> {
        self.bank()?;
        if let Some(found) = &self.at(budget).metrics {
            return Some(found.clone());
        }
        let result = self
            .bank()?
            .evaluate(budget)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        self.at(budget).metrics = Some(result.clone());
        Some(result)
    }

    /// For every key, the share of the viewed heads whose `policy` mask keeps it at `budget`.
    pub fn kept_share(
        &mut self,
        policy: PolicyId,
        budget: Budget,
        view: HeadView,
    ) -> Option<Arc<Vec<f32>>> {
        if let Some(found) = self.at(budget).shares.get(&(policy, view)) {
            return Some(Arc::clone(found));
        }
        let selection = self.selection(policy, budget)?.ok()?;
        let share = Arc::new(kept_share(
            &selection.mask,
            view,
            self.session.model.query_heads,
        ));
        self.at(budget)
            .shares
            .insert((policy, view), Arc::clone(&share));
        Some(share)
    }

    /// Metrics against the budget at 16 log-spaced budgets, built off the UI thread when large.
    pub fn curves(&mut self, ctx: &Context) -> Option<Arc<Result<Vec<CurvePoint>, String>>> {
        let bank = match self.bank.latest() {
            Some((_, bank)) if bank.is_ok() => Arc::clone(bank),
            _ => return None,
        };
        let budgets = curve_budgets(self.keys(), 16);
        let (layers, heads, keys) = self.session.accumulated.dim();
        let work = layers * heads * keys * budgets.len() * 10;
        let repaint = ctx.clone();
        let key = self.bank_version;
        self.curves.request(
            &key,
            work,
            move || {
                let Ok(bank) = bank.as_ref() else {
                    return Err("the policy bank is not ready".to_owned());
                };
                budgets
                    .into_iter()
                    .map(|budget| {
                        bank.budget(budget)
                            .and_then(|b| bank.evaluate(b))
                            .map(|metrics| CurvePoint { budget, metrics })
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            },
            move || repaint.request_repaint(),
        );
        self.curves
            .latest()
            .filter(|(k, _)| **k == key)
            .map(|(_, v)| Arc::clone(v))
    }

    /// The matrix of `source` for `view`, when the session has that source; computed off the UI
    /// thread for large aggregates (the previous matrix is returned meanwhile).
    pub fn matrix(
        &mut self,
        source: QuerySource,
        view: HeadView,
        ctx: &Context,
    ) -> Option<(Arc<Pyramid>, bool)> {
        let rows = self.session.rows(source)?;
        let work = view.cost(rows.dim());
        let session = Arc::clone(&self.session);
        let repaint = ctx.clone();
        let panel = self.panel_mut(source)?;
        let pyramid = panel.matrix.request(
            &view,
            work,
            move || match session.rows(source) {
                Some(rows) => Pyramid::new(view_matrix(rows.view(), view)),
                None => Pyramid::new(ndarray::Array2::zeros((0, 0))),
            },
            move || repaint.request_repaint(),
        )?;
        let current = panel.matrix.is_current(&view);
        Some((pyramid, current))
    }

    /// The shared colour scale of the three panels' current matrices (refitted when a matrix or
    /// the colour settings change), in [`QuerySource::ALL`] order.
    pub fn scales(&mut self, colour: ColourSettings) -> [Option<ColourScale>; QuerySource::COUNT] {
        let latest: Vec<Option<(HeadView, Arc<Pyramid>)>> = self
            .panels
            .iter()
            .map(|p| p.matrix.latest().map(|(v, m)| (*v, Arc::clone(m))))
            .collect();
        let key: Vec<Option<HeadView>> =
            latest.iter().map(|l| l.as_ref().map(|(v, _)| *v)).collect();
        if let Some((k, c, scales)) = &self.scales
            && *k == key
            && *c == colour
        {
            return scales.clone();
        }
        let matrices: Vec<Option<&ndarray::Array2<f32>>> = latest
            .iter()
            .map(|l| l.as_ref().map(|(_, m)| m.base()))
            .collect();
        let fitted = ColourScale::fit_shared(&matrices, colour);
        let mut scales: [Option<ColourScale>; QuerySource::COUNT] = Default::default();
        for (slot, scale) in scales.iter_mut().zip(fitted) {
            *slot = scale;
        }
        self.scales = Some((key, colour, scales.clone()));
        scales
    }

    /// Whether the policy bank for the settings and policies last asked for is built.
    pub fn is_bank_ready(&self) -> bool {
        self.wanted_bank
            .as_ref()
            .is_some_and(|key| self.bank.is_current(key))
            && self.bank().is_some()
    }

    /// Whether the metric curves for the current bank are computed.
    pub fn curves_ready(&self) -> bool {
        self.curves.is_current(&self.bank_version)
    }

    /// The kept shares already computed for `policy` at `budget` under `view` (no computation).
    pub fn cached_kept_share(
        &self,
        policy: PolicyId,
        budget: Budget,
        view: HeadView,
    ) -> Option<Arc<Vec<f32>>> {
        (self.at_budget.budget == Some(budget) && self.at_budget.bank_version == self.bank_version)
            .then(|| self.at_budget.shares.get(&(policy, view)).cloned())
            .flatten()
    }

    /// The full-resolution matrix `source`'s panel shows now.
    pub fn shown_matrix(&self, source: QuerySource) -> Option<ndarray::Array2<f32>> {
        let index = QuerySource::ALL.iter().position(|&s| s == source)?;
        let (_, pyramid) = self.panels.get(index)?.matrix.latest()?;
        Some(pyramid.base().clone())
    }

    /// The score of every key under `source`'s shown matrix (its rows summed over queries),
    /// summed once per matrix: moving the budget, panning or zooming reuse it.
    pub fn profile(&mut self, source: QuerySource) -> Option<Arc<Vec<f32>>> {
        let panel = self.panel_mut(source)?;
        let (view, pyramid) = panel.matrix.latest().map(|(v, p)| (*v, Arc::clone(p)))?;
        if let Some((cached, scores)) = &panel.profile
            && *cached == view
        {
            return Some(Arc::clone(scores));
        }
        let scores = Arc::new(key_scores(pyramid.base()));
        panel.profile = Some((view, Arc::clone(&scores)));
        panel.profile_builds += 1;
        Some(scores)
    }

    /// How many times `source`'s score profile was summed.
    pub fn profile_builds(&self, source: QuerySource) -> u64 {
        QuerySource::ALL
            .iter()
            .position(|&s| s == source)
            .and_then(|i| self.panels.get(i))
            .map_or(0, |p| p.profile_builds)
    }

    /// How many times `source`'s panel uploaded its textures.
    pub fn texture_uploads(&self, source: QuerySource) -> u64 {
        QuerySource::ALL
            .iter()
            .position(|&s| s == source)
            .and_then(|i| self.panels.get(i))
            .map_or(0, |p| p.textures.uploads())
    }

    /// The cache of one source's panel.
    pub fn panel_mut(&mut self, source: QuerySource) -> Option<&mut PanelCache> {
        let index = QuerySource::ALL.iter().position(|&s| s == source)?;
        self.panels.get_mut(index)
    }
}

/// `count` budgets from a few entries to `keys`, evenly spaced on a log scale, without repeats.
pub fn curve_budgets(keys: usize, count: usize) -> Vec<usize> {
    if keys == 0 {
        return Vec::new();
    }
    let low = min_budget(keys) as f64;
    let high = keys as f64;
    let mut out: Vec<usize> = (0..count.max(2))
        .map(|i| {
            let t = i as f64 / (count.max(2) - 1) as f64;
            (low * (high / low).powf(t)).round() as usize
        })
        .collect();
    out.dedup();
    out
}

/// The smallest budget the slider offers: a few entries, or the whole prompt when shorter.
pub fn min_budget(keys: usize) -> usize {
    keys.clamp(1, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_budgets_span_a_few_entries_to_the_prompt() {
        let b = curve_budgets(8192, 16);
        assert_eq!(b.len(), 16);
        assert_eq!(b.first(), Some(&4));
        assert_eq!(b.last(), Some(&8192));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(curve_budgets(3, 16), vec![3]);
        assert!(curve_budgets(0, 16).is_empty());
        assert_eq!(min_budget(2), 2);
    }
}

//! What the explorer remembers between runs (eframe storage). Everything derived from the
//! session lives in [`crate::app::session_view`] and is rebuilt, never stored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::attention::HeadView;
use crate::attention::QuerySource;
use crate::export::ColourSettings;
use crate::judgeq::shipped::SoftTokenChoice;
use crate::policy::{PolicyKind, PolicySettings};

/// Which model to load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelChoice {
    /// The default model, downloaded on first use.
    #[default]
    Default,
    /// A GGUF file or a Hugging Face folder.
    Path(PathBuf),
}

impl ModelChoice {
    /// Short text for the load panel.
    pub fn describe(&self) -> String {
        match self {
            ModelChoice::Default => "SmolLM2-135M-Instruct (default)".to_owned(),
            ModelChoice::Path(path) => file_label(path),
        }
    }
}

/// The last component of a path, for labels.
pub fn file_label(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Light, dark or the system's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThemeChoice {
    /// Follow the desktop.
    #[default]
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

/// What the document view highlights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HighlightMode {
    /// Tokens kept by the panels' layer and head (or by a share of heads under an aggregate).
    #[default]
    SelectedHead,
    /// Tokens by the share of all layers and heads that keep them.
    HeadShare,
}

/// What colours the overview grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GridMetric {
    /// Hit rate of the document view's policy against the oracle.
    #[default]
    HitRate,
    /// Share of the oracle's attention mass the policy keeps.
    MassKept,
}

impl GridMetric {
    /// Label for pickers and tooltips.
    pub fn label(self) -> &'static str {
        match self {
            GridMetric::HitRate => "Hit rate",
            GridMetric::MassKept => "Mass kept",
        }
    }
}

/// The persisted state of the explorer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Version of the saved settings (see [`State::migrated`]); 0 for saves before versions.
    #[serde(default = "unversioned")]
    pub format: u32,
    /// Model to load.
    pub model: ModelChoice,
    /// Last document file.
    pub document: Option<PathBuf>,
    /// Judge Q soft tokens to append (the shipped ones unless the user chose otherwise).
    pub soft_token_choice: SoftTokenChoice,
    /// The question asked about the document.
    pub question: String,
    /// Last-window size used when inspecting.
    pub inspect_window: usize,
    /// Tokens decoded with the full cache (the oracle's queries).
    pub decode_tokens: usize,
    /// Policy settings (window, pooling, granularity, sinks…).
    pub policy: PolicySettings,
    /// Policies compared in the metrics, curves and decode panels.
    pub compared: Vec<PolicyKind>,
    /// The policy whose kept entries each panel's strip shows, in [`QuerySource::ALL`] order.
    pub strip_policies: [PolicyKind; 3],
    /// The policy the document view and the overview grid show.
    pub focus_policy: PolicyKind,
    /// Entries kept per head.
    pub budget: usize,
    /// Layer, head and aggregation of the panels.
    pub view: HeadView,
    /// Colour scaling.
    pub colour: ColourSettings,
    /// Document view highlighting.
    pub highlight: HighlightMode,
    /// Overview grid metric.
    pub grid_metric: GridMetric,
    /// Whether the metrics curves show the selected layer only.
    pub curves_per_layer: bool,
    /// Ask for answers under eviction whenever the budget slider rests.
    pub auto_decode: bool,
    /// Longest answer under eviction, in tokens.
    pub decode_max_tokens: usize,
    /// Theme.
    pub theme: ThemeChoice,
    /// Show the frame-time readout in the status bar.
    pub show_frame_time: bool,
    /// Show each source's per-key score profile under its heatmap.
    pub show_profiles: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            format: STATE_FORMAT,
            model: ModelChoice::Default,
            document: None,
            soft_token_choice: SoftTokenChoice::Shipped,
            question: String::new(),
            inspect_window: 32,
            decode_tokens: 32,
            policy: PolicySettings::default(),
            compared: vec![
                PolicyKind::StreamingLlm,
                PolicyKind::H2o,
                PolicyKind::SnapKv,
                PolicyKind::JudgeQ,
                PolicyKind::Oracle,
            ],
            strip_policies: [PolicyKind::SnapKv, PolicyKind::JudgeQ, PolicyKind::Oracle],
            focus_policy: PolicyKind::SnapKv,
            budget: 256,
            view: HeadView::default(),
            colour: ColourSettings::default(),
            highlight: HighlightMode::default(),
            grid_metric: GridMetric::default(),
            curves_per_layer: false,
            auto_decode: false,
            decode_max_tokens: 32,
            theme: ThemeChoice::default(),
            show_frame_time: true,
            show_profiles: true,
        }
    }
}

impl State {
    /// A saved state brought up to [`STATE_FORMAT`]: saves before format 1 stored the oracle
    /// pooled as the default of the time, so it goes back to the raw oracle (the paper's
    /// hit rate, today's default).
    pub fn migrated(mut self) -> Self {
        if self.format < 1 {
            self.policy.oracle_pooling = false;
        }
        self.format = STATE_FORMAT;
        self
    }

    /// The policy a panel's strip shows.
    pub fn strip_policy(&self, source: QuerySource) -> PolicyKind {
        let index = QuerySource::ALL
            .iter()
            .position(|&s| s == source)
            .unwrap_or(0);
        self.strip_policies
            .get(index)
            .copied()
            .unwrap_or(PolicyKind::SnapKv)
    }

    /// Every policy the current frame needs a selection of: the compared ones, the strips' and
    /// the focus policy, without repeats, in display order.
    pub fn needed_policies(&self) -> Vec<PolicyKind> {
        PolicyKind::ALL
            .into_iter()
            .filter(|p| {
                self.compared.contains(p)
                    || self.strip_policies.contains(p)
                    || *p == self.focus_policy
            })
            .collect()
    }
}

/// The storage key.
pub const STORAGE_KEY: &str = "judgeq-explorer";

/// The format of saves written before [`State::format`] existed.
fn unversioned() -> u32 {
    0
}

/// The current [`State::format`].
pub const STATE_FORMAT: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_or_partial_saves_load_with_defaults() {
        let partial: State = serde_json::from_str(r#"{"question": "Who?", "budget": 64}"#).unwrap();
        assert_eq!(partial.question, "Who?");
        assert_eq!(partial.budget, 64);
        assert_eq!(partial.inspect_window, State::default().inspect_window);
        assert!(
            partial.show_profiles,
            "saves from before the profiles show them"
        );
        let round: State = serde_json::from_str(&serde_json::to_string(&partial).unwrap()).unwrap();
        assert_eq!(round, partial);
    }

    #[test]
    fn saves_from_before_formats_get_the_raw_oracle() {
        let old: State =
            serde_json::from_str(r#"{"policy": {"oracle_pooling": true}, "budget": 64}"#).unwrap();
        let migrated = old.migrated();
        assert!(!migrated.policy.oracle_pooling);
        assert_eq!((migrated.format, migrated.budget), (STATE_FORMAT, 64));
        // A choice made under the current format is kept.
        let chosen = State {
            policy: PolicySettings {
                oracle_pooling: true,
                ..PolicySettings::default()
            },
            ..State::default()
        };
        assert!(chosen.migrated().policy.oracle_pooling);
    }

    #[test]
    fn needed_policies_merge_every_use_once() {
        let state = State {
            compared: vec![PolicyKind::H2o],
            focus_policy: PolicyKind::H2o,
            ..State::default()
        };
        assert_eq!(
            state.needed_policies(),
            vec![
                PolicyKind::H2o,
                PolicyKind::SnapKv,
                PolicyKind::JudgeQ,
                PolicyKind::Oracle
            ]
        );
        assert_eq!(state.strip_policy(QuerySource::Soft), PolicyKind::JudgeQ);
    }
}

//! What the explorer remembers between runs (eframe storage). Everything derived from the
//! session lives in [`crate::app::session_view`] and is rebuilt, never stored.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::attention::HeadView;
use crate::attention::QuerySource;
use crate::export::ColourSettings;
use crate::judgeq::shipped::SoftTokenChoice;
use crate::policy::policies::oracle;
use crate::policy::{PolicyId, PolicySettings};
use crate::session::QuestionPlacement;

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
    /// Version of the saved settings (see [`State::migrated`]); 0 for saves before versions
    /// (a save without the field reads as 0, not as the current format).
    #[serde(default)]
    pub format: u32,
    /// Model to load.
    pub model: ModelChoice,
    /// Last document file.
    pub document: Option<PathBuf>,
    /// Judge Q soft tokens to append (the shipped ones unless the user chose otherwise).
    pub soft_token_choice: SoftTokenChoice,
    /// The question asked about the document.
    pub question: String,
    /// Where the question goes, and whether eviction sees it.
    pub question_placement: QuestionPlacement,
    /// Last-window size used when inspecting.
    pub inspect_window: usize,
    /// Tokens decoded with the full cache (the oracle's queries).
    pub decode_tokens: usize,
    /// Policy settings (window, pooling, granularity, sinks…).
    pub policy: PolicySettings,
    /// Policies compared in the metrics, curves and decode panels.
    pub compared: Vec<PolicyId>,
    /// The policy whose kept entries each panel's strip shows, in [`QuerySource::ALL`] order.
    pub strip_policies: [PolicyId; 3],
    /// The policy whose kept entries the lookahead panel's strip shows (kept apart from
    /// `strip_policies` so that earlier saves still read).
    pub lookahead_strip: PolicyId,
    /// The policy whose kept entries the KVzip repeat panel's strip shows (apart, as the
    /// lookahead one).
    pub repeat_strip: PolicyId,
    /// The policy the document view and the overview grid show.
    pub focus_policy: PolicyId,
    /// Entries kept per head.
    pub budget: usize,
    /// Whether the budget is also shown, and can be set, as the ratio of entries removed.
    pub budget_as_ratio: bool,
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
    /// The query sources whose panels the user hid, in [`QuerySource::ALL`] order (a save
    /// without the field, or a source added since, shows every panel).
    pub hidden_sources: Vec<QuerySource>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            format: STATE_FORMAT,
            model: ModelChoice::Default,
            document: None,
            soft_token_choice: SoftTokenChoice::Shipped,
            question: String::new(),
            question_placement: QuestionPlacement::End,
            inspect_window: 32,
            decode_tokens: 32,
            policy: PolicySettings::default(),
            compared: vec![
                PolicyId::STREAMING_LLM,
                PolicyId::H2O,
                PolicyId::SNAPKV,
                PolicyId::JUDGEQ,
                PolicyId::ORACLE,
            ],
            strip_policies: [PolicyId::SNAPKV, PolicyId::JUDGEQ, PolicyId::ORACLE],
            lookahead_strip: PolicyId::LOOKAHEAD,
            repeat_strip: PolicyId::KVZIP,
            focus_policy: PolicyId::SNAPKV,
            budget: 256,
            budget_as_ratio: false,
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
            hidden_sources: Vec::new(),
        }
    }
}

impl State {
    /// A saved state brought up to [`STATE_FORMAT`]: saves before format 1 stored the oracle
    /// pooled as the default of the time, so it goes back to the raw oracle (the paper's
    /// hit rate, today's default).
    pub fn migrated(mut self) -> Self {
        if self.format < 1 {
            self.policy.set(&oracle::POOLED, false);
        }
        self.format = STATE_FORMAT;
        self
    }

    /// The policy a panel's strip shows.
    pub fn strip_policy(&self, source: QuerySource) -> PolicyId {
        match source {
            QuerySource::Lookahead => return self.lookahead_strip,
            QuerySource::Repeat => return self.repeat_strip,
            _ => {}
        }
        let index = QuerySource::ALL
            .iter()
            .position(|&s| s == source)
            .unwrap_or(0);
        self.strip_policies
            .get(index)
            .copied()
            .unwrap_or(PolicyId::SNAPKV)
    }

    /// Sets the policy a panel's strip shows.
    pub fn set_strip_policy(&mut self, source: QuerySource, policy: PolicyId) {
        match QuerySource::ALL.iter().position(|&s| s == source) {
            _ if source == QuerySource::Lookahead => self.lookahead_strip = policy,
            _ if source == QuerySource::Repeat => self.repeat_strip = policy,
            Some(index) => {
                if let Some(slot) = self.strip_policies.get_mut(index) {
                    *slot = policy;
                }
            }
            None => {}
        }
    }

    /// Whether the panel of `source` is shown (when the session has one).
    pub fn shows_source(&self, source: QuerySource) -> bool {
        !self.hidden_sources.contains(&source)
    }

    /// Shows or hides the panel of `source`.
    pub fn show_source(&mut self, source: QuerySource, shown: bool) {
        let hidden = |s: QuerySource| {
            if s == source {
                !shown
            } else {
                !self.shows_source(s)
            }
        };
        self.hidden_sources = QuerySource::ALL
            .into_iter()
            .filter(|&s| hidden(s))
            .collect();
    }

    /// The policy of every panel's strip, in [`QuerySource::ALL`] order.
    pub fn strip_policies_by_source(&self) -> [PolicyId; QuerySource::COUNT] {
        QuerySource::ALL.map(|source| self.strip_policy(source))
    }

    /// Every policy the current frame needs a selection of: the compared ones, the strips' and
    /// the focus policy, without repeats, in display order. The lookahead and repeat panels'
    /// strips count only when they need no drafts or repeat pass (those cost decoding and a
    /// second prefill, so only a compared or focused Lookahead Q-Cache or KVzip asks for them).
    pub fn needed_policies(&self) -> Vec<PolicyId> {
        PolicyId::all()
            .into_iter()
            .filter(|p| {
                self.compared.contains(p)
                    || self.strip_policies.contains(p)
                    || *p == self.focus_policy
                    || (*p == self.lookahead_strip && *p != PolicyId::LOOKAHEAD)
                    || (*p == self.repeat_strip && *p != PolicyId::KVZIP)
            })
            .collect()
    }
}

/// The storage key.
pub const STORAGE_KEY: &str = "judgeq-explorer";

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
        assert!(
            QuerySource::ALL.iter().all(|&s| partial.shows_source(s)),
            "saves from before the source toggles show every panel"
        );
        let round: State = serde_json::from_str(&serde_json::to_string(&partial).unwrap()).unwrap();
        assert_eq!(round, partial);
    }

    #[test]
    fn saves_from_before_formats_get_the_raw_oracle() {
        let old: State =
            serde_json::from_str(r#"{"policy": {"oracle_pooling": true}, "budget": 64}"#).unwrap();
        let migrated = old.migrated();
        assert!(!migrated.policy.get(&oracle::POOLED));
        assert_eq!((migrated.format, migrated.budget), (STATE_FORMAT, 64));
        // A choice made under the current format is kept.
        let chosen = State {
            policy: PolicySettings::default().with(&oracle::POOLED, true),
            ..State::default()
        };
        assert!(chosen.migrated().policy.get(&oracle::POOLED));
    }

    /// eframe's storage in memory: saves read and written as the explorer's (RON).
    struct Memory(std::collections::HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_owned(), value);
        }
        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }
        fn flush(&mut self) {}
    }

    #[test]
    fn saves_from_before_the_policy_registry_load() {
        use crate::policy::policies::{
            adakv::FLOOR_ALPHA, judgeq::KEEP_WINDOW, judgeq::WINDOW_LAYERS, pyramidkv::BETA,
            random::SEED, streaming_llm::SINKS,
        };
        // Written by the explorer when policies were an enum with their settings in one struct.
        let old = "(format:1,model:Default,document:None,soft_token_choice:Shipped,question:\"\",\
            inspect_window:32,decode_tokens:32,policy:(window:16,pooling:max(kernel:7),\
            granularity:query_head,group_order:before_pooling,sinks:2,judgeq_keep_window:true,\
            judgeq_window_layers:3,pyramid_beta:8.5,ada_floor_alpha:0.35,\
            random_seed:12345678901234567890,oracle_pooling:true),\
            compared:[r#h2o-window,adakv,random,full],\
            strip_policies:(r#h2o-window,pyramidkv,streamingllm),focus_policy:oracle,budget:77,\
            view:(layer:One(0),head:All,reduce:Mean),\
            colour:(mode:Log,skip_sinks:4,decades:3,colormap:viridis),highlight:SelectedHead,\
            grid_metric:HitRate,curves_per_layer:false,auto_decode:false,decode_max_tokens:32,\
            theme:System,show_frame_time:true,show_profiles:true)";
        let mut storage = Memory([(STORAGE_KEY.to_owned(), old.to_owned())].into());
        let state: State = eframe::get_value(&storage, STORAGE_KEY).expect("the old save loads");
        assert_eq!(
            state.compared,
            vec![
                PolicyId::H2O_WINDOW,
                PolicyId::ADAKV,
                PolicyId::RANDOM,
                PolicyId::FULL_KV
            ]
        );
        assert_eq!(
            state.strip_policies,
            [
                PolicyId::H2O_WINDOW,
                PolicyId::PYRAMIDKV,
                PolicyId::STREAMING_LLM
            ]
        );
        assert_eq!((state.focus_policy, state.budget), (PolicyId::ORACLE, 77));
        assert!(state.hidden_sources.is_empty(), "every panel is shown");
        let settings = PolicySettings {
            window: 16,
            ..PolicySettings::default()
        }
        .with(&SINKS, 2)
        .with(&KEEP_WINDOW, true)
        .with(&WINDOW_LAYERS, 3)
        .with(&BETA, 8.5)
        .with(&FLOOR_ALPHA, 0.35)
        .with(&SEED, 12_345_678_901_234_567_890)
        .with(&oracle::POOLED, true);
        assert_eq!(state.policy, settings);
        // Saved again, it reads back the same.
        eframe::set_value(&mut storage, STORAGE_KEY, &state);
        let again: State = eframe::get_value(&storage, STORAGE_KEY).expect("the new save loads");
        assert_eq!(again, state);
        let saved = storage.0.get(STORAGE_KEY).cloned().unwrap_or_default();
        assert!(
            saved.contains("compared:[r#h2o-window,adakv,random,full]"),
            "ids are saved as before: {saved}"
        );
    }

    #[test]
    fn hidden_sources_are_kept_in_display_order_and_saved() {
        let mut state = State::default();
        state.show_source(QuerySource::Decoded, false);
        state.show_source(QuerySource::Window, false);
        state.show_source(QuerySource::Decoded, false);
        assert_eq!(
            state.hidden_sources,
            [QuerySource::Window, QuerySource::Decoded]
        );
        assert!(!state.shows_source(QuerySource::Window));
        assert!(state.shows_source(QuerySource::Soft));

        let json: State = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(json, state);
        let mut storage = Memory(std::collections::HashMap::new());
        eframe::set_value(&mut storage, STORAGE_KEY, &state);
        let saved = storage.0.get(STORAGE_KEY).cloned().unwrap_or_default();
        assert!(
            saved.contains("hidden_sources:[Window,Decoded]"),
            "sources are saved by name: {saved}"
        );
        let ron: State = eframe::get_value(&storage, STORAGE_KEY).expect("the save loads");
        assert_eq!(ron, state);

        state.show_source(QuerySource::Window, true);
        assert_eq!(state.hidden_sources, [QuerySource::Decoded]);
    }

    #[test]
    fn needed_policies_merge_every_use_once() {
        let state = State {
            compared: vec![PolicyId::H2O],
            focus_policy: PolicyId::H2O,
            ..State::default()
        };
        assert_eq!(
            state.needed_policies(),
            vec![
                PolicyId::H2O,
                PolicyId::SNAPKV,
                PolicyId::JUDGEQ,
                PolicyId::ORACLE
            ]
        );
        assert_eq!(state.strip_policy(QuerySource::Soft), PolicyId::JUDGEQ);
    }
}

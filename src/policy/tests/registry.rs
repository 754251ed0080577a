//! The registry: ids, labels, parameters and variants are consistent; saved ids and settings
//! read as before the registry; and the test-only "First B" policy, which exists only as its
//! file and its registry line, reaches every reader of the registry.

use std::collections::HashSet;

use super::Fixture;
use crate::attention::{Granularity, GroupReduce, Pooling};
use crate::policy::params::{Param, ParamValue};
use crate::policy::policies::{
    self, adakv::FLOOR_ALPHA, judgeq::KEEP_WINDOW, judgeq::WINDOW_LAYERS, oracle::POOLED,
    pyramidkv::BETA, random::SEED, streaming_llm::SINKS,
};
use crate::policy::{PolicyBank, PolicyError, PolicyId, PolicySettings};

#[test]
fn ids_labels_parameters_and_variants_are_unique() {
    let all = PolicyId::all();
    let ids: HashSet<&str> = all.iter().map(|p| p.id()).collect();
    let labels: HashSet<&str> = all.iter().map(|p| p.label()).collect();
    assert_eq!((ids.len(), labels.len()), (all.len(), all.len()));
    for id in &ids {
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id} cannot be a file name part"
        );
    }
    // Two policies may list one parameter, never two parameters under one key.
    let mut by_key: Vec<(&str, Param)> = Vec::new();
    for param in all.iter().flat_map(|p| p.params()) {
        if let Some((_, known)) = by_key.iter().find(|(k, _)| *k == param.key()) {
            let same = match (param, known) {
                (Param::Switch(a), Param::Switch(b)) => std::ptr::eq(*a, *b),
                (Param::Count(a), Param::Count(b)) => std::ptr::eq(*a, *b),
                (Param::Number(a), Param::Number(b)) => std::ptr::eq(*a, *b),
                _ => false,
            };
            assert!(same, "two parameters under the key {}", param.key());
        } else {
            by_key.push((param.key(), *param));
        }
    }
    assert_eq!(by_key.len(), policies::params().len());
    let variants = policies::variants();
    let variant_ids: HashSet<&str> = variants.iter().map(|(_, v)| v.id).collect();
    assert_eq!(variant_ids.len(), variants.len());
    assert!(variant_ids.is_disjoint(&ids));
    for named in [
        PolicyId::FULL_KV,
        PolicyId::STREAMING_LLM,
        PolicyId::H2O,
        PolicyId::H2O_WINDOW,
        PolicyId::SNAPKV,
        PolicyId::PYRAMIDKV,
        PolicyId::ADAKV,
        PolicyId::JUDGEQ,
        PolicyId::ORACLE,
        PolicyId::RANDOM,
    ] {
        assert!(all.contains(&named), "{named} is not registered");
    }
}

#[test]
fn registry_order_is_the_display_order_and_the_order_of_handles() {
    let ids: Vec<&str> = PolicyId::all().iter().map(|p| p.id()).collect();
    assert_eq!(
        &ids[..21],
        [
            "full",
            "streamingllm",
            "h2o",
            "h2o-window",
            "snapkv",
            "pyramidkv",
            "adakv",
            "knorm",
            "keydiff",
            "tova",
            "lagkv",
            "expected-attention",
            "adakv-expected-attention",
            "lookahead",
            "kvzip",
            "criticalkv-snapkv",
            "judgeq",
            "criticalkv-judgeq",
            "oracle",
            "oracle-pooled",
            "random"
        ]
    );
    let mut shuffled = vec![PolicyId::ORACLE, PolicyId::FULL_KV, PolicyId::SNAPKV];
    shuffled.sort();
    assert_eq!(
        shuffled,
        vec![PolicyId::FULL_KV, PolicyId::SNAPKV, PolicyId::ORACLE]
    );
    assert_eq!(PolicyId::SNAPKV.colour(), [44, 160, 44]);
    assert!(!PolicyId::RANDOM.compared_by_default());
    assert!(PolicyId::SNAPKV.compared_by_default());
}

#[test]
fn policy_names_parse_and_serialise() {
    for policy in PolicyId::all() {
        assert_eq!(policy.id().parse::<PolicyId>().unwrap(), policy);
        assert_eq!(policy.label().parse::<PolicyId>().unwrap(), policy);
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(json, format!("\"{}\"", policy.id()));
        assert_eq!(serde_json::from_str::<PolicyId>(&json).unwrap(), policy);
    }
    assert_eq!("SNAP_KV".parse::<PolicyId>().unwrap(), PolicyId::SNAPKV);
    let err = "snapkv2".parse::<PolicyId>().unwrap_err();
    assert!(err.to_string().contains("snapkv2") && err.to_string().contains("pyramidkv"));
    assert!(serde_json::from_str::<PolicyId>("\"snapkv2\"").is_err());
    // Lists of ids, as the explorer and the run journals save them.
    let saved: Vec<PolicyId> = serde_json::from_str(r#"["h2o-window", "adakv", "full"]"#).unwrap();
    assert_eq!(
        saved,
        vec![PolicyId::H2O_WINDOW, PolicyId::ADAKV, PolicyId::FULL_KV]
    );
}

#[test]
fn settings_saved_before_the_registry_read_the_same() {
    // Written by the settings struct of before the registry, every field spelled out.
    let old = r#"{"window":16,"pooling":{"max":{"kernel":7}},"granularity":"query_head","group_order":"before_pooling","sinks":2,"judgeq_keep_window":true,"judgeq_window_layers":3,"pyramid_beta":8.5,"ada_floor_alpha":0.35,"random_seed":12345678901234567890,"oracle_pooling":true}"#;
    let settings: PolicySettings = serde_json::from_str(old).unwrap();
    let expected = PolicySettings {
        window: 16,
        ..PolicySettings::default()
    }
    .with(&SINKS, 2)
    .with(&KEEP_WINDOW, true)
    .with(&WINDOW_LAYERS, 3)
    .with(&BETA, 8.5)
    .with(&FLOOR_ALPHA, 0.35)
    .with(&SEED, 12_345_678_901_234_567_890)
    .with(&POOLED, true);
    assert_eq!(settings, expected);
    // Written back, the same fields and values, and the parameters of policies registered
    // since at their defaults.
    let mut round: serde_json::Value = serde_json::to_value(&settings).unwrap();
    let before: serde_json::Value = serde_json::from_str(old).unwrap();
    let fields = round.as_object_mut().unwrap();
    let added: Vec<(String, serde_json::Value)> = fields
        .iter()
        .filter(|(key, _)| before.get(key.as_str()).is_none())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    fields.retain(|key, _| before.get(key.as_str()).is_some());
    assert_eq!(round, before);
    let added_keys: Vec<&str> = added.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        added_keys,
        [
            "adakv_safeguard_alpha",
            "chunk_size",
            "criticalkv_epsilon",
            "criticalkv_first_stage_ratio",
            "ea_covariance",
            "ea_epsilon",
            "ea_future_positions",
            "ea_sinks",
            "ea_value_norms",
            "kvzip_chunk_size",
            "kvzip_sinks",
            "lagkv_cross_scoring",
            "lagkv_lag_size",
            "lagkv_sinks",
            "lookahead_draft_budget",
            "lookahead_draft_window",
            "lookahead_tokens"
        ]
    );
    for (key, value) in added {
        let param = policies::param(&key).unwrap();
        assert_eq!(
            value,
            serde_json::to_value(PolicySettings::default()).unwrap()[key.as_str()],
            "{} is written at its default",
            param.key()
        );
    }
    // Missing fields take their defaults, unknown ones are ignored, whole numbers are numbers.
    let partial: PolicySettings =
        serde_json::from_str(r#"{"window": 8, "pyramid_beta": 10, "retired": {"x": [1]}}"#)
            .unwrap();
    assert_eq!(partial.window, 8);
    assert_eq!(partial.get(&SINKS), 4);
    assert_eq!(partial.get(&BETA), 10.0);
    assert!(serde_json::from_str::<PolicySettings>(r#"{"sinks": true}"#).is_err());
    let granular = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Max),
        ..PolicySettings::default()
    };
    let json = serde_json::to_string(&granular).unwrap();
    assert!(json.starts_with(r#"{"window":32,"pooling":"#), "{json}");
    assert_eq!(
        serde_json::from_str::<PolicySettings>(&json).unwrap(),
        granular
    );
}

#[test]
fn parameters_are_set_by_key_and_checked() {
    let mut settings = PolicySettings::default();
    settings.assign("sinks=8").unwrap();
    settings.assign(" judgeq_keep_window = on").unwrap();
    settings.assign("pyramid_beta=12.5").unwrap();
    assert_eq!(settings.get(&SINKS), 8);
    assert!(settings.get(&KEEP_WINDOW));
    assert_eq!(settings.get(&BETA), 12.5);
    assert_eq!(
        settings.assign("sinkz=8"),
        Err(PolicyError::UnknownParam("sinkz".into()))
    );
    assert!(
        PolicyError::UnknownParam("sinkz".into())
            .to_string()
            .contains("pyramid_beta")
    );
    assert!(matches!(
        settings.assign("sinks=-1"),
        Err(PolicyError::Settings(_))
    ));
    assert!(matches!(
        settings.assign("sinks"),
        Err(PolicyError::Settings(_))
    ));
    assert!(matches!(
        settings.set_value(Param::Count(&SINKS), ParamValue::Switch(true)),
        Err(PolicyError::Settings(_))
    ));
    // Range checks keep their messages.
    settings.assign("pyramid_beta=0.5").unwrap();
    assert_eq!(
        settings.validate(),
        Err(PolicyError::Settings(
            "PyramidKV's beta must be a number of at least 1 (default 20), got 0.5".into()
        ))
    );
    let alpha = PolicySettings::default().with(&FLOOR_ALPHA, 1.5);
    assert_eq!(
        alpha.validate(),
        Err(PolicyError::Settings(
            "Ada-KV's floor alpha must lie in [0, 1] (default 0.2), got 1.5".into()
        ))
    );
    let odd = PolicySettings {
        pooling: Pooling::Max { kernel: 4 },
        ..PolicySettings::default()
    };
    assert!(matches!(odd.validate(), Err(PolicyError::Settings(_))));
}

#[test]
fn a_policy_is_its_file_and_its_registry_line() {
    // `first_b.rs` and one registry line, nothing else: every reader of the registry has it.
    let first_b = "first-b".parse::<PolicyId>().unwrap();
    assert_eq!(first_b.label(), "First B");
    assert_eq!("First B".parse::<PolicyId>().unwrap(), first_b);
    assert!(PolicyId::all().contains(&first_b));
    assert_eq!(
        serde_json::from_str::<PolicyId>("\"first-b\"").unwrap(),
        first_b
    );
    assert_eq!(first_b.colour(), [120, 120, 40]);
    assert!(!first_b.compared_by_default());
    assert!(
        PolicyError::UnknownPolicy("x".into())
            .to_string()
            .contains("first-b")
    );
    // The bank ranks it with the others and its kept set is the first B entries.
    let fixture = Fixture::random(6, (2, 4, 2, 40), 2, 0);
    let inputs = fixture.inputs();
    let settings = PolicySettings::default();
    let bank = PolicyBank::new(&inputs, &settings, &PolicyId::all()).unwrap();
    let budget = bank.budget(7).unwrap();
    let selection = bank.select(first_b, budget).unwrap();
    for l in 0..2 {
        for h in 0..4 {
            assert_eq!(
                super::kept(&selection.mask, l, h),
                (0..7).collect::<Vec<_>>()
            );
        }
    }
    let metrics = bank.evaluate(budget).unwrap();
    assert!(metrics.iter().any(|m| m.policy == first_b));
    // eval and the task runs know it as a method.
    let method = crate::eval::method_by_id("first-b", &settings).unwrap();
    assert_eq!((method.policy, method.label.as_str()), (first_b, "First B"));
    #[cfg(feature = "gui")]
    the_explorer_colours_and_saves(first_b);
}

/// The explorer colours `first_b` and saves it in its state.
#[cfg(feature = "gui")]
fn the_explorer_colours_and_saves(first_b: PolicyId) {
    assert_eq!(
        crate::app::palette::policy_colour(first_b),
        egui::Color32::from_rgb(120, 120, 40)
    );
    let state = crate::app::state::State {
        compared: vec![first_b, PolicyId::SNAPKV],
        ..crate::app::state::State::default()
    };
    let json = serde_json::to_string(&state).unwrap();
    let back: crate::app::state::State = serde_json::from_str(&json).unwrap();
    assert_eq!(back.compared, vec![first_b, PolicyId::SNAPKV]);
}

//! The real default model, SmolLM2-135M-Instruct (fetched through `default_model_path`):
//! answers under eight real policies' masks on a ~1,000-token document, decoded as one batch,
//! equal the answers decoded one mask at a time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use judgeq::attention::{Granularity, GroupReduce, KeepMask};
use judgeq::inspect::{InspectRequest, inspect};
use judgeq::model::fetch::default_model_path;
use judgeq::model::{LoadOptions, Model};
use judgeq::policy::{PolicyBank, PolicyId, PolicySettings, ScoreInputs};
use judgeq::progress::Silent;
use judgeq::session::QuestionPlacement;

/// An invented harbour log of about 1,000 tokens: which ship came in on which day, at which
/// pier, with what cargo.
fn harbour_log() -> String {
    const SHIPS: [&str; 12] = [
        "Aster",
        "Bramble",
        "Cormorant",
        "Dunlin",
        "Eider",
        "Fulmar",
        "Gannet",
        "Heron",
        "Ibis",
        "Jackdaw",
        "Kestrel",
        "Linnet",
    ];
    const CARGO: [&str; 6] = [
        "timber",
        "salt",
        "copper wire",
        "wool",
        "barley",
        "roof slate",
    ];
    let mut log = String::from("Harbour log of Port Wren for the spring season.\n");
    for day in 1..=44 {
        let ship = SHIPS[(day * 5) % SHIPS.len()];
        let cargo = CARGO[(day * 7) % CARGO.len()];
        let pier = 1 + (day * 3) % 9;
        let crates = 40 + (day * 37) % 160;
        log.push_str(&format!(
            "Day {day}: the {ship} docked at pier {pier} and unloaded {crates} crates of {cargo}.\n"
        ));
    }
    log
}

#[test]
fn batched_answers_under_eight_policies_equal_one_by_one_decodes() {
    let path = default_model_path(&Silent).expect("the default model downloads");
    let model = Model::load(&path, &LoadOptions::default(), &Silent).unwrap();
    let request = InspectRequest {
        document: harbour_log(),
        question: "Which ship docked on day 23, and what did it unload?".to_owned(),
        placement: QuestionPlacement::End,
        window: 32,
        decode_tokens: 24,
        soft: None,
        capture: Default::default(),
    };
    let (session, mut prefilled) = inspect(&model, &request, &Silent).unwrap();
    let n = session.prompt.ids.len();
    assert!((900..1300).contains(&n), "the prompt has {n} tokens");

    let inputs = ScoreInputs::from_session(&session);
    let per_query_head = PolicySettings::default();
    let per_kv_head = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Mean),
        ..PolicySettings::default()
    };
    let choices = [
        (&per_query_head, PolicyId::SNAPKV, 64),
        (&per_query_head, PolicyId::H2O, 128),
        (&per_query_head, PolicyId::STREAMING_LLM, 96),
        (&per_query_head, PolicyId::PYRAMIDKV, 128),
        (&per_kv_head, PolicyId::ADAKV, 96),
        (&per_kv_head, PolicyId::H2O_WINDOW, 64),
        (&per_kv_head, PolicyId::RANDOM, 256),
        (&per_kv_head, PolicyId::ORACLE, 48),
    ];
    let masks: Vec<(String, KeepMask)> = choices
        .iter()
        .map(|&(settings, policy, budget)| {
            let bank = PolicyBank::new(&inputs, settings, &[policy]).unwrap();
            let mask = bank
                .select(policy, bank.budget(budget).unwrap())
                .unwrap()
                .mask;
            (format!("{} @ {budget}", policy.label()), mask)
        })
        .collect();

    let one_by_one: Vec<_> = masks
        .iter()
        .map(|(label, mask)| {
            prefilled
                .decode_under(&model, mask, request.decode_tokens, label, &Silent)
                .unwrap()
        })
        .collect();
    let batched = prefilled
        .decode_batch(&model, &masks, request.decode_tokens, &Silent)
        .unwrap();
    for (((label, _), one), batch) in masks.iter().zip(&one_by_one).zip(&batched) {
        assert_eq!(batch, one, "{label}");
    }
    // The policies do not all give the same answer, so the rows are told apart.
    let mut texts: Vec<&str> = one_by_one.iter().map(|a| a.text.as_str()).collect();
    texts.sort();
    texts.dedup();
    assert!(texts.len() >= 2, "every policy answered {:?}", texts[0]);
}

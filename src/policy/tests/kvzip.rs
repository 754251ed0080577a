//! KVzip's selection on hand-made scores with a known answer, its total against `L·H·B` with
//! the sinks kept, and when it asks the inspection for the repeat pass. (Its agreement with the
//! sorting reference at every budget, ties included, is in `bank.rs`.)

use ndarray::{Array3, s};

use super::{Fixture, choose};
use crate::attention::{Granularity, GroupReduce};
use crate::policy::policies::kvzip::{CHUNK_SIZE, SINKS, capture};
use crate::policy::{PolicyError, PolicyId, PolicySettings, prefill_capture};
use crate::session::RepeatCapture;

/// Two layers of one KV head (one query head each), eight keys, repeat scores given.
fn hand_made(scores: [[f32; 8]; 2]) -> Fixture {
    let mut fixture = Fixture::from_scores(
        Array3::zeros((2, 1, 8)),
        None,
        Array3::zeros((2, 1, 8)),
        Array3::zeros((2, 1, 8)),
        1,
    );
    fixture.prefill.repeat_scores =
        Some(Array3::from_shape_fn((2, 1, 8), |(l, _, j)| scores[l][j]));
    fixture
}

fn kept(fixture: &Fixture, settings: &PolicySettings, budget: usize) -> [Vec<usize>; 2] {
    let mask = choose(PolicyId::KVZIP, &fixture.inputs(), budget, settings)
        .unwrap()
        .mask;
    [0, 1].map(|l| (0..8).filter(|&j| mask[[l, 0, j]]).collect())
}

#[test]
fn hand_made_scores_share_one_budget_over_both_layers() {
    // Layer 0 holds the three highest scores after the sinks, layer 1 the fourth.
    let fixture = hand_made([
        [0.0, 0.0, 0.9, 0.1, 0.8, 0.7, 0.2, 0.05],
        [0.0, 0.0, 0.3, 0.6, 0.01, 0.02, 0.03, 0.04],
    ]);
    let settings = PolicySettings::default().with(&SINKS, 2);
    // Budget 4: two sinks per row, then the top 2·(4 − 2) = 4 of both rows: 0.9, 0.8, 0.7, 0.6.
    assert_eq!(
        kept(&fixture, &settings, 4),
        [vec![0, 1, 2, 4, 5], vec![0, 1, 3]]
    );
    // Budget 3: the top 2 of both rows: 0.9 and 0.8, both in layer 0.
    assert_eq!(kept(&fixture, &settings, 3), [vec![0, 1, 2, 4], vec![0, 1]]);
    // At or below the sinks: the first B entries of every row.
    assert_eq!(kept(&fixture, &settings, 2), [vec![0, 1], vec![0, 1]]);
    assert_eq!(kept(&fixture, &settings, 1), [vec![0], vec![0]]);
    // Sinks are kept whatever their scores (0 here); without sinks the top 2·3 of all.
    let none = PolicySettings::default().with(&SINKS, 0);
    assert_eq!(
        kept(&fixture, &none, 3),
        [vec![2, 4, 5, 6], vec![2, 3]],
        "0.9, 0.8, 0.7, 0.6, 0.3, 0.2 over both layers"
    );
}

#[test]
fn the_global_spread_keeps_l_h_b_entries_with_the_sinks() {
    for seed in 0..4u64 {
        let fixture = Fixture::random(seed, (3, 4, 2, 40), 2, 0);
        for granularity in [
            Granularity::QueryHead,
            Granularity::KvHead(GroupReduce::Mean),
        ] {
            let settings = PolicySettings {
                granularity,
                ..PolicySettings::default()
            };
            let heads = fixture.inputs().heads(&settings);
            for budget in [5usize, 9, 17, 39] {
                let selection =
                    choose(PolicyId::KVZIP, &fixture.inputs(), budget, &settings).unwrap();
                let mask = selection.mask;
                assert_eq!(
                    mask.iter().filter(|&&k| k).count(),
                    3 * heads * budget,
                    "seed {seed} B {budget}"
                );
                assert!(mask.slice(s![.., .., ..4]).iter().all(|&k| k), "sinks kept");
                let counts: Vec<usize> = selection.kept.iter().copied().collect();
                assert!(
                    counts.iter().any(|&c| c != budget) || budget == 39,
                    "the share differs between rows (seed {seed}, B {budget}): {counts:?}"
                );
            }
        }
    }
}

#[test]
fn the_repeat_scores_are_required() {
    let mut fixture = Fixture::random(3, (1, 2, 1, 20), 1, 0);
    fixture.prefill.repeat_scores = None;
    let error = choose(
        PolicyId::KVZIP,
        &fixture.inputs(),
        8,
        &PolicySettings::default(),
    )
    .unwrap_err();
    assert!(matches!(error, PolicyError::MissingInput { .. }), "{error}");
    assert!(error.to_string().contains("KVzip"), "{error}");
}

#[test]
fn only_a_chosen_kvzip_asks_for_the_repeat_pass_with_its_settings() {
    let settings = PolicySettings::default()
        .with(&SINKS, 2)
        .with(&CHUNK_SIZE, 512);
    let capture_of =
        |ids: &[PolicyId]| prefill_capture(ids.iter().map(|&id| (id, &settings))).repeat;
    assert_eq!(capture_of(&[PolicyId::SNAPKV, PolicyId::LOOKAHEAD]), None);
    let expected = RepeatCapture {
        n_sink: 2,
        chunk_size: 512,
    };
    assert_eq!(
        capture_of(&[PolicyId::SNAPKV, PolicyId::KVZIP]),
        Some(expected)
    );
    assert_eq!(capture(&settings), expected);
    // kvpress's defaults.
    assert_eq!(
        capture(&PolicySettings::default()),
        RepeatCapture {
            n_sink: 4,
            chunk_size: 2048
        }
    );
}

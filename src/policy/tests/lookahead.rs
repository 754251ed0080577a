//! Lookahead Q-Cache on hand-made rows with known answers, against a naive stage-2 formula on
//! random rows, and against SnapKV when it drafts nothing.

use ndarray::{Array3, Array4, s};

use super::naive_snapkv::naive_snapkv_row;
use super::{Fixture, choose};
use crate::attention::Pooling;
use crate::policy::policies::lookahead::{DRAFT_BUDGET, DRAFT_WINDOW, TOKENS, capture};
use crate::policy::{PolicyError, PolicyId, PolicySettings, prefill_capture};
use crate::session::LookaheadCapture;

/// One layer, one head, ten keys: two window rows looking at keys 1 and 3, and three draft rows
/// looking at key 5, then key 6, then key 2.
fn hand_made() -> Fixture {
    let mut window = Array4::<f32>::zeros((1, 1, 2, 10));
    for (row, key, value) in [(0, 1, 0.4), (0, 3, 0.3), (0, 8, 0.3)] {
        window[[0, 0, row, key]] = value;
    }
    for (row, key, value) in [(1, 1, 0.3), (1, 3, 0.35), (1, 9, 0.35)] {
        window[[0, 0, row, key]] = value;
    }
    let mut drafts = Array4::<f32>::zeros((1, 1, 3, 10));
    for (row, key, value) in [
        (0, 5, 0.9),
        (0, 9, 0.1),
        (1, 6, 0.85),
        (1, 3, 0.02),
        (1, 0, 0.13),
        (2, 2, 1.0),
    ] {
        drafts[[0, 0, row, key]] = value;
    }
    let mut fixture = Fixture::from_scores(
        Array3::zeros((1, 1, 10)),
        None,
        Array3::zeros((1, 1, 10)),
        Array3::zeros((1, 1, 10)),
        1,
    );
    fixture.window = window;
    fixture.lookahead = Some(drafts);
    fixture
}

fn kept_positions(fixture: &Fixture, settings: &PolicySettings, budget: usize) -> Vec<usize> {
    let selection = choose(PolicyId::LOOKAHEAD, &fixture.inputs(), budget, settings).unwrap();
    (0..10).filter(|&k| selection.mask[[0, 0, k]]).collect()
}

#[test]
fn hand_made_rows_keep_the_window_and_the_keys_the_drafts_look_at() {
    let fixture = hand_made();
    let base = PolicySettings {
        window: 2,
        pooling: Pooling::None,
        ..PolicySettings::default()
    };
    // Scores over [0, 8) by hand: window 1 → 0.7, 3 → 0.65; draft 0 adds 5 → 0.9; draft 1
    // adds 6 → 0.85, 3 → 0.67, 0 → 0.13; draft 2 adds 2 → 1.0. Budget 4 keeps the window (8,
    // 9) and the top 2.
    let cases: [(u64, [usize; 4]); 5] = [
        (0, [1, 3, 8, 9]),
        (1, [1, 5, 8, 9]),
        (2, [5, 6, 8, 9]),
        (3, [2, 5, 8, 9]),
        // More drafts asked for than were drafted: all three are used.
        (8, [2, 5, 8, 9]),
    ];
    for (tokens, expected) in cases {
        let settings = base.clone().with(&TOKENS, tokens);
        assert_eq!(
            kept_positions(&fixture, &settings, 4),
            expected,
            "ℓ = {tokens}"
        );
    }
}

#[test]
fn stage_two_equals_the_naive_formula_on_random_rows() {
    for seed in 0..6u64 {
        let fixture = Fixture::random(seed, (2, 4, 2, 40), 5, 0);
        let drafts = fixture.lookahead.as_ref().unwrap();
        for tokens in [1u64, 3, 5, 9] {
            for (window, budget) in [(4usize, 12usize), (5, 20), (3, 5)] {
                let settings = PolicySettings {
                    window,
                    pooling: Pooling::Max { kernel: 7 },
                    ..PolicySettings::default()
                }
                .with(&TOKENS, tokens);
                let got = choose(PolicyId::LOOKAHEAD, &fixture.inputs(), budget, &settings)
                    .unwrap()
                    .mask;
                let used = (tokens as usize).min(drafts.dim().2);
                for l in 0..2 {
                    for h in 0..4 {
                        // Σ over every window row plus the first ℓ draft rows, per key.
                        let raw: Vec<f32> = (0..40)
                            .map(|k| {
                                let window_sum: f32 =
                                    fixture.window.slice(s![l, h, .., k]).iter().sum();
                                let draft_sum: f32 = drafts.slice(s![l, h, ..used, k]).iter().sum();
                                window_sum + draft_sum
                            })
                            .collect();
                        let expected = naive_snapkv_row(&raw, window, budget, settings.pooling);
                        let row: Vec<bool> = got.slice(s![l, h, ..]).to_vec();
                        assert_eq!(
                            row, expected,
                            "seed {seed} ℓ {tokens} w {window} B {budget}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn drafting_nothing_is_snapkv() {
    for seed in 10..14u64 {
        let mut fixture = Fixture::random(seed, (2, 4, 2, 30), 4, 3);
        for pooling in [
            Pooling::None,
            Pooling::Max { kernel: 7 },
            Pooling::Avg { kernel: 5 },
        ] {
            let settings = PolicySettings {
                window: 4,
                pooling,
                ..PolicySettings::default()
            }
            .with(&TOKENS, 0);
            for budget in [1, 4, 9, 17, 30] {
                let snapkv = choose(PolicyId::SNAPKV, &fixture.inputs(), budget, &settings)
                    .unwrap()
                    .mask;
                let laq = choose(PolicyId::LOOKAHEAD, &fixture.inputs(), budget, &settings)
                    .unwrap()
                    .mask;
                assert_eq!(laq, snapkv, "seed {seed} {pooling:?} B {budget}");
            }
        }
        // Without draft rows at all, ℓ = 0 still selects (it needs the window only).
        fixture.lookahead = None;
        let settings = PolicySettings::default().with(&TOKENS, 0);
        assert!(choose(PolicyId::LOOKAHEAD, &fixture.inputs(), 8, &settings).is_ok());
    }
}

#[test]
fn drafts_are_required_unless_none_are_asked_for() {
    let mut fixture = Fixture::random(3, (1, 2, 1, 20), 3, 0);
    fixture.lookahead = None;
    let error = choose(
        PolicyId::LOOKAHEAD,
        &fixture.inputs(),
        8,
        &PolicySettings::default(),
    )
    .unwrap_err();
    assert!(matches!(error, PolicyError::MissingInput { .. }), "{error}");
    assert!(error.to_string().contains("lookahead"), "{error}");
}

#[test]
fn only_a_chosen_lookahead_policy_asks_the_inspection_to_draft() {
    let settings = PolicySettings::default()
        .with(&TOKENS, 6)
        .with(&DRAFT_WINDOW, 4)
        .with(&DRAFT_BUDGET, 64);
    let capture_of = |ids: &[PolicyId], settings: &PolicySettings| {
        prefill_capture(ids.iter().map(|&id| (id, settings)))
    };
    assert_eq!(
        capture_of(&[PolicyId::SNAPKV, PolicyId::ORACLE], &settings).lookahead,
        None
    );
    let expected = LookaheadCapture {
        tokens: 6,
        draft_window: 4,
        draft_budget: 64,
        pooling: settings.pooling,
    };
    assert_eq!(capture(&settings), expected);
    let asked = capture_of(&[PolicyId::SNAPKV, PolicyId::LOOKAHEAD], &settings);
    assert_eq!(asked.lookahead, Some(expected));
    assert!(asked.any());
    // ℓ = 0 needs no drafts.
    let none = settings.clone().with(&TOKENS, 0);
    assert_eq!(capture_of(&[PolicyId::LOOKAHEAD], &none).lookahead, None);
    // LAQ's defaults.
    let defaults = capture(&PolicySettings::default());
    assert_eq!((defaults.tokens, defaults.draft_window), (8, 8));
}

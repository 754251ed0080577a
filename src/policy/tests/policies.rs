//! Every policy on hand-made scores with known answers.

use ndarray::{Array3, array};

use super::{Fixture, choose, kept};
use crate::attention::{Granularity, GroupReduce, Pooling};
use crate::policy::layer_schedule::{Schedule, layer_budgets};
use crate::policy::policies::snapkv;
use crate::policy::policies::{
    adakv::FLOOR_ALPHA, judgeq::KEEP_WINDOW, judgeq::WINDOW_LAYERS, oracle::POOLED,
    pyramidkv::BETA, random::SEED, streaming_llm::SINKS,
};
use crate::policy::{Budget, OrderContext, PolicyError, PolicyId, PolicySettings};

fn settings(window: usize, pooling: Pooling) -> PolicySettings {
    PolicySettings {
        window,
        pooling,
        ..PolicySettings::default()
    }
}

/// One layer, one head, the given scores for every source.
fn one_row(scores: &[f32]) -> Fixture {
    Fixture::uniform(
        Array3::from_shape_vec((1, 1, scores.len()), scores.to_vec()).unwrap(),
        1,
    )
}

fn keeps(
    policy: PolicyId,
    fixture: &Fixture,
    budget: usize,
    settings: &PolicySettings,
) -> Vec<usize> {
    let selection = choose(policy, &fixture.inputs(), budget, settings).unwrap();
    assert_eq!(selection.kept[[0, 0]], kept(&selection.mask, 0, 0).len());
    kept(&selection.mask, 0, 0)
}

#[test]
fn snapkv_keeps_window_and_breaks_ties_toward_earlier_positions() {
    // Scored range [0, 9); window 9..12.
    let f = one_row(&[0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // Max-pool k=3 gives the plateau 2, 3, 4 at 5: the two earliest win.
    let s = settings(3, Pooling::Max { kernel: 3 });
    assert_eq!(keeps(PolicyId::SNAPKV, &f, 5, &s), vec![2, 3, 9, 10, 11]);
    // Then the zeros: position 0 before 1.
    assert_eq!(
        keeps(PolicyId::SNAPKV, &f, 7, &s),
        vec![0, 2, 3, 4, 9, 10, 11]
    );
    // Unpooled (H2O window): the single peak, then position 0.
    assert_eq!(
        keeps(PolicyId::H2O_WINDOW, &f, 5, &s),
        vec![0, 3, 9, 10, 11]
    );
}

#[test]
fn snapkv_pools_only_over_the_scored_range() {
    let f = one_row(&[
        1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 100.0, 100.0, 100.0,
    ]);
    let inputs = f.inputs();
    let max_settings = settings(3, Pooling::Max { kernel: 3 });
    let max = snapkv::scores(
        &OrderContext::new(&inputs, &max_settings),
        Pooling::Max { kernel: 3 },
        "test",
    )
    .unwrap();
    assert_eq!(max.dim(), (1, 1, 9));
    assert_eq!(
        max[[0, 0, 8]],
        1.0,
        "the window's 100 must not leak into the last scored key"
    );
    let avg_settings = settings(3, Pooling::Avg { kernel: 3 });
    let avg = snapkv::scores(
        &OrderContext::new(&inputs, &avg_settings),
        Pooling::Avg { kernel: 3 },
        "test",
    )
    .unwrap();
    assert!((avg[[0, 0, 8]] - 1.0 / 3.0).abs() < 1e-6);
    assert!(
        (avg[[0, 0, 0]] - 2.0 / 3.0).abs() < 1e-6,
        "zero padding counts at the start"
    );
}

#[test]
fn budget_zero_is_an_error_for_every_policy() {
    let f = one_row(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    for policy in PolicyId::all() {
        assert_eq!(
            choose(policy, &f.inputs(), 0, &PolicySettings::default()),
            Err(PolicyError::ZeroBudget)
        );
    }
    assert_eq!(Budget::new(0, 6), Err(PolicyError::ZeroBudget));
    assert_eq!(Budget::new(3, 0), Err(PolicyError::EmptyPrompt));
}

#[test]
fn a_budget_is_clamped_to_its_prompt_once() {
    let budget = Budget::new(300, 100).unwrap();
    assert_eq!((budget.asked(), budget.entries()), (300, 100));
    assert!(budget.keeps_all());
    assert_eq!(budget.to_string(), "300");
    let slider = Budget::clamped(300, 100);
    assert_eq!((slider.asked(), slider.entries()), (100, 100));
    assert_eq!(Budget::clamped(0, 100).asked(), 1);
    let small = Budget::new(10, 100).unwrap();
    assert!(!small.keeps_all());
    // A budget set for one prompt is refused for another.
    let f = one_row(&[1.0; 8]);
    assert_eq!(
        crate::policy::select(
            PolicyId::SNAPKV,
            &f.inputs(),
            small,
            &PolicySettings::default()
        ),
        Err(PolicyError::OtherPrompt {
            budget: 10,
            set_for: 100,
            prompt: 8
        })
    );
}

#[test]
fn budget_one_keeps_one_entry() {
    let f = one_row(&[1.0, 9.0, 3.0, 4.0, 5.0, 6.0, 2.0, 1.0]);
    let s = settings(2, Pooling::None);
    for (policy, expected) in [
        (PolicyId::STREAMING_LLM, vec![0]),
        (PolicyId::H2O, vec![7]),
        (PolicyId::H2O_WINDOW, vec![7]),
        (PolicyId::SNAPKV, vec![7]),
        (PolicyId::PYRAMIDKV, vec![7]),
        (PolicyId::ADAKV, vec![7]),
        (PolicyId::JUDGEQ, vec![1]),
        (PolicyId::ORACLE, vec![1]),
    ] {
        assert_eq!(keeps(policy, &f, 1, &s), expected, "{policy}");
    }
    assert_eq!(keeps(PolicyId::RANDOM, &f, 1, &s).len(), 1);
    assert_eq!(keeps(PolicyId::FULL_KV, &f, 1, &s).len(), 8);
    let clamped = choose(PolicyId::SNAPKV, &f.inputs(), 1, &s).unwrap();
    assert!(clamped.note.unwrap().contains("below the window of 2"));
}

#[test]
fn budget_equal_to_window_keeps_only_the_window() {
    let f = one_row(&[9.0, 9.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let s = settings(3, Pooling::Max { kernel: 7 });
    for policy in [
        PolicyId::SNAPKV,
        PolicyId::H2O,
        PolicyId::H2O_WINDOW,
        PolicyId::PYRAMIDKV,
        PolicyId::ADAKV,
    ] {
        let selection = choose(policy, &f.inputs(), 3, &s).unwrap();
        assert_eq!(kept(&selection.mask, 0, 0), vec![5, 6, 7], "{policy}");
        assert!(
            selection.note.unwrap().contains("equals the window"),
            "{policy}"
        );
    }
}

#[test]
fn budget_at_or_above_prompt_length_keeps_everything() {
    let f = Fixture::random(3, (2, 4, 2, 10), 2, 0);
    for policy in PolicyId::all() {
        for budget in [10, 11, 1000] {
            let selection =
                choose(policy, &f.inputs(), budget, &PolicySettings::default()).unwrap();
            assert!(selection.mask.iter().all(|&k| k), "{policy} at {budget}");
            assert!(selection.kept.iter().all(|&c| c == 10));
            assert!(selection.note.unwrap().contains("every entry is kept"));
        }
    }
}

#[test]
fn streaming_llm_keeps_sinks_and_recent() {
    let f = one_row(&[0.0; 12]);
    let s = PolicySettings::default().with(&SINKS, 4);
    assert_eq!(
        keeps(PolicyId::STREAMING_LLM, &f, 6, &s),
        vec![0, 1, 2, 3, 10, 11]
    );
    assert_eq!(keeps(PolicyId::STREAMING_LLM, &f, 4, &s), vec![0, 1, 2, 3]);
    assert_eq!(keeps(PolicyId::STREAMING_LLM, &f, 3, &s), vec![0, 1, 2]);
    assert!(
        choose(PolicyId::STREAMING_LLM, &f.inputs(), 3, &s)
            .unwrap()
            .note
            .unwrap()
            .contains("sink")
    );
    let no_sinks = s.with(&SINKS, 0);
    assert_eq!(
        keeps(PolicyId::STREAMING_LLM, &f, 3, &no_sinks),
        vec![9, 10, 11]
    );
}

#[test]
fn h2o_uses_accumulated_attention_unpooled() {
    // Window rows favour position 1, accumulated attention favours 4; window 2 of 8.
    let window = array![[[0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]]];
    let accumulated = array![[[0.0, 1.0, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0]]];
    let f = Fixture::from_scores(window.clone(), None, window, accumulated, 1);
    let s = settings(2, Pooling::Max { kernel: 7 });
    assert_eq!(keeps(PolicyId::H2O, &f, 3, &s), vec![4, 6, 7]);
    assert_eq!(keeps(PolicyId::H2O, &f, 4, &s), vec![1, 4, 6, 7]);
    assert_eq!(keeps(PolicyId::H2O_WINDOW, &f, 3, &s), vec![1, 6, 7]);
}

#[test]
fn judgeq_window_layers_rank_the_first_layers_by_the_window() {
    // Two layers; the soft rows peak at 1, the window rows at 4.
    let soft = array![
        [[0.0, 9.0, 0.0, 0.0, 0.0, 0.0]],
        [[0.0, 9.0, 0.0, 0.0, 0.0, 0.0]]
    ];
    let window = array![
        [[0.0, 0.0, 0.0, 0.0, 9.0, 0.0]],
        [[0.0, 0.0, 0.0, 0.0, 9.0, 0.0]]
    ];
    let zeros = Array3::zeros((2, 1, 6));
    let f = Fixture::from_scores(window, Some(soft), zeros.clone(), zeros, 1);
    let paper = settings(2, Pooling::None);
    let mask = choose(PolicyId::JUDGEQ, &f.inputs(), 1, &paper)
        .unwrap()
        .mask;
    assert_eq!(kept(&mask, 0, 0), vec![1]);
    assert_eq!(kept(&mask, 1, 0), vec![1]);
    let first_layer = paper.clone().with(&WINDOW_LAYERS, 1);
    let mask = choose(PolicyId::JUDGEQ, &f.inputs(), 1, &first_layer)
        .unwrap()
        .mask;
    assert_eq!(kept(&mask, 0, 0), vec![4], "layer 0 by the window");
    assert_eq!(kept(&mask, 1, 0), vec![1], "layer 1 by the soft tokens");
    // More window layers than the model has: every layer by the window.
    let all = paper.with(&WINDOW_LAYERS, 99);
    let mask = choose(PolicyId::JUDGEQ, &f.inputs(), 1, &all).unwrap().mask;
    assert_eq!(kept(&mask, 1, 0), vec![4]);
}

#[test]
fn judgeq_variants_a_and_b() {
    // Soft rows peak at 1 and inside the window (7); window 2 of 8; no pooling.
    let soft = array![[[0.0, 5.0, 0.0, 3.0, 0.0, 0.0, 0.0, 8.0]]];
    let zeros = Array3::zeros((1, 1, 8));
    let f = Fixture::from_scores(zeros.clone(), Some(soft), zeros.clone(), zeros, 1);
    let a = settings(2, Pooling::None);
    assert_eq!(
        keeps(PolicyId::JUDGEQ, &f, 3, &a),
        vec![1, 3, 7],
        "variant a: top 3 of the whole prompt"
    );
    let b = a.clone().with(&KEEP_WINDOW, true);
    assert_eq!(
        keeps(PolicyId::JUDGEQ, &f, 3, &b),
        vec![1, 6, 7],
        "variant b: window + top 1"
    );
    assert_eq!(keeps(PolicyId::JUDGEQ, &f, 2, &b), vec![6, 7]);
    // Variant a pools over the whole prompt: max k=3 spreads 8 to 6 and 5 to 0, 2.
    let pooled = PolicySettings {
        pooling: Pooling::Max { kernel: 3 },
        ..a
    };
    assert_eq!(keeps(PolicyId::JUDGEQ, &f, 3, &pooled), vec![0, 6, 7]);
}

#[test]
fn judgeq_without_soft_rows_is_a_clear_error() {
    let scores = Array3::from_elem((1, 1, 8), 1.0);
    let f = Fixture::from_scores(scores.clone(), None, scores.clone(), scores, 1);
    for budget in [1, 4, 100] {
        let err = choose(
            PolicyId::JUDGEQ,
            &f.inputs(),
            budget,
            &PolicySettings::default(),
        )
        .unwrap_err();
        assert_eq!(err, PolicyError::NoSoftRows);
        assert!(err.to_string().contains("soft-token"));
    }
}

#[test]
fn oracle_ranks_the_raw_decoded_scores_by_default() {
    let decoded = array![[[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]]];
    let zeros = Array3::zeros((1, 1, 8));
    let f = Fixture::from_scores(zeros.clone(), None, decoded, zeros, 1);
    let settings = PolicySettings::default();
    assert!(!settings.get(&POOLED));
    assert_eq!(keeps(PolicyId::ORACLE, &f, 2, &settings), vec![1, 7]);
    assert_eq!(keeps(PolicyId::ORACLE, &f, 3, &settings), vec![0, 1, 7]);
}

#[test]
fn oracle_pools_like_the_other_methods_when_asked() {
    // Max-pool 7 over [0, 1, 0, 0, 0, 0, 0, 2] gives [1, 1, 1, 1, 2, 2, 2, 2]: the four 2s tie
    // and the earlier positions win.
    let decoded = array![[[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]]];
    let zeros = Array3::zeros((1, 1, 8));
    let f = Fixture::from_scores(zeros.clone(), None, decoded, zeros, 1);
    let settings = PolicySettings::default().with(&POOLED, true);
    assert_eq!(keeps(PolicyId::ORACLE, &f, 2, &settings), vec![4, 5]);
    assert_eq!(
        keeps(PolicyId::ORACLE, &f, 5, &settings),
        vec![0, 4, 5, 6, 7]
    );
}

#[test]
fn pooled_oracle_keeps_what_judgeq_keeps_with_the_answers_rows_as_soft_rows() {
    // The default max-pool 7 over [0, 1, 0, 0, 0, 0, 0, 2] gives [1, 1, 1, 1, 2, 2, 2, 2], as
    // above: the pooled Oracle pools whatever `oracle_pooling` says, and Judge Q (variant a)
    // keeps the same entries when its soft rows are the answer's.
    let decoded = array![[[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]]];
    let zeros = Array3::zeros((1, 1, 8));
    let f = Fixture::from_scores(zeros.clone(), Some(decoded.clone()), decoded, zeros, 1);
    let pooled_oracle: PolicyId = "oracle-pooled".parse().unwrap();
    let settings = PolicySettings::default();
    assert!(!settings.get(&POOLED));
    for (budget, expected) in [(2, vec![4, 5]), (5, vec![0, 4, 5, 6, 7])] {
        assert_eq!(keeps(pooled_oracle, &f, budget, &settings), expected);
        assert_eq!(keeps(PolicyId::JUDGEQ, &f, budget, &settings), expected);
    }
    assert_eq!(keeps(PolicyId::ORACLE, &f, 2, &settings), vec![1, 7]);
}

#[test]
fn empty_decoded_rows_are_an_error_for_the_oracle() {
    let mut f = Fixture::random(1, (1, 2, 1, 6), 2, 0);
    f.decoded = ndarray::Array4::zeros((1, 2, 0, 6));
    let err = choose(PolicyId::ORACLE, &f.inputs(), 2, &PolicySettings::default()).unwrap_err();
    assert!(
        matches!(
            err,
            PolicyError::EmptySource {
                which: "decoded",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn random_is_seeded_deterministic_and_nested() {
    let f = Fixture::random(9, (3, 4, 2, 50), 1, 0);
    let s = PolicySettings::default().with(&SEED, 42);
    let a = choose(PolicyId::RANDOM, &f.inputs(), 10, &s).unwrap();
    assert_eq!(a, choose(PolicyId::RANDOM, &f.inputs(), 10, &s).unwrap());
    assert!(a.kept.iter().all(|&c| c == 10));
    let other = choose(
        PolicyId::RANDOM,
        &f.inputs(),
        10,
        &s.clone().with(&SEED, 43),
    )
    .unwrap();
    assert_ne!(a.mask, other.mask);
    assert_ne!(
        kept(&a.mask, 0, 0),
        kept(&a.mask, 0, 1),
        "rows draw different sets"
    );
    let larger = choose(PolicyId::RANDOM, &f.inputs(), 20, &s).unwrap();
    assert!(
        a.mask
            .iter()
            .zip(larger.mask.iter())
            .all(|(&small, &large)| !small || large)
    );
}

#[test]
fn pyramid_schedule_worked_example_and_fallbacks() {
    // judgeq.md §3.2: B=128, w=32, N=32 → cap_0 = 188, cap_31 = 33, mean 110.5.
    let (kept, schedule) = layer_budgets(1000, 128, 32, 32, 20.0);
    assert_eq!(schedule, Schedule::Pyramid);
    assert_eq!((kept[0], kept[31]), (32 + 188, 32 + 33));
    assert_eq!(kept[1], 32 + 183);
    let mean_selected = kept.iter().map(|&k| (k - 32) as f64).sum::<f64>() / 32.0;
    assert_eq!(mean_selected, 110.5);
    // n < 2(B − w) = 192: uniform SnapKV.
    assert_eq!(
        layer_budgets(150, 128, 32, 32, 20.0),
        (vec![128; 32], Schedule::Uniform)
    );
    // max ≥ n − w: max = 168, min = 192 − 168 = 24, steps = 144 / 31 = 4.
    let (kept, _) = layer_budgets(200, 128, 32, 32, 20.0);
    assert_eq!((kept[0], kept[1], kept[31]), (32 + 168, 32 + 164, 32 + 44));
    // 24 layers: steps = 184 / 23 = 8, so the last layer lands exactly on min = 4.
    let (kept, _) = layer_budgets(1000, 128, 32, 24, 20.0);
    assert_eq!((kept[0], kept[1], kept[23]), (32 + 188, 32 + 180, 32 + 4));
    // β = 8: min = 96 / 8 = 12, max = 180, steps = 168 / 31 = 5, last = 180 − 155 = 25.
    let (kept, _) = layer_budgets(1000, 128, 32, 32, 8.0);
    assert_eq!((kept[0], kept[31]), (32 + 180, 32 + 25));
    // A single layer has no steps.
    assert_eq!(layer_budgets(1000, 128, 32, 1, 20.0).0, vec![220]);
}

#[test]
fn pyramid_selection_follows_the_schedule() {
    let f = Fixture::random(4, (32, 1, 1, 1000), 1, 0);
    let s = PolicySettings::default();
    let selection = choose(PolicyId::PYRAMIDKV, &f.inputs(), 128, &s).unwrap();
    assert_eq!(selection.kept[[0, 0]], 220);
    assert_eq!(selection.kept[[31, 0]], 65);
    let note = selection.note.unwrap();
    assert!(
        note.contains("220") && note.contains("65") && note.contains("142.5"),
        "{note}"
    );
    // Every layer keeps the window and SnapKV's top entries for its own budget.
    let snap = choose(PolicyId::SNAPKV, &f.inputs(), 220, &s).unwrap();
    assert_eq!(kept(&selection.mask, 0, 0), kept(&snap.mask, 0, 0));
    let fallback = choose(PolicyId::PYRAMIDKV, &f.inputs(), 600, &s).unwrap();
    assert!(fallback.kept.iter().all(|&c| c == 600));
    assert!(fallback.note.unwrap().contains("uniform"));
}

#[test]
fn adakv_floor_on_a_hand_case() {
    // Two heads, n = 24, window 2, budget 12: base 10, floor ⌊10·0.2⌋ = 2.
    // Head 0 dominates, so the global top 20 all fall in head 0: cnt = [20, 0].
    let n = 24;
    let scores = Array3::from_shape_fn((1, 2, n), |(_, h, j)| {
        if h == 0 {
            100.0 - j as f32
        } else {
            1.0 - 0.01 * j as f32
        }
    });
    let f = Fixture::uniform(scores, 2);
    let s = PolicySettings {
        window: 2,
        pooling: Pooling::None,
        ..PolicySettings::default()
    };
    let selection = choose(PolicyId::ADAKV, &f.inputs(), 12, &s).unwrap();
    // cap_0 = round(20·0.8 + 2) = 18, cap_1 = round(0·0.8 + 2) = 2.
    assert_eq!(selection.kept, array![[20, 4]]);
    assert_eq!(kept(&selection.mask, 0, 1), vec![0, 1, 22, 23]);
    assert_eq!(
        kept(&selection.mask, 0, 0),
        (0..18).chain([22, 23]).collect::<Vec<_>>()
    );
    let no_floor = choose(
        PolicyId::ADAKV,
        &f.inputs(),
        12,
        &s.clone().with(&FLOOR_ALPHA, 0.0),
    )
    .unwrap();
    assert_eq!(no_floor.kept, array![[22, 2]]);
    let all_floor = choose(PolicyId::ADAKV, &f.inputs(), 12, &s.with(&FLOOR_ALPHA, 1.0)).unwrap();
    assert_eq!(all_floor.kept, array![[12, 12]]);
}

#[test]
fn kv_head_granularity_selects_per_group() {
    // Query heads 0, 1 form KV head 0; the group's mean peaks at 2, its max at 0.
    let scores = array![[
        [6.0, 0.0, 4.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 4.0, 0.0, 0.0, 0.0]
    ]];
    let f = Fixture::uniform(scores, 1);
    let base = PolicySettings {
        window: 1,
        pooling: Pooling::None,
        ..PolicySettings::default()
    };
    let mean = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Mean),
        ..base.clone()
    };
    let selection = choose(PolicyId::SNAPKV, &f.inputs(), 2, &mean).unwrap();
    assert_eq!(selection.mask.dim(), (1, 1, 6));
    assert_eq!(kept(&selection.mask, 0, 0), vec![2, 5]);
    let max = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Max),
        ..base.clone()
    };
    assert_eq!(
        kept(
            &choose(PolicyId::SNAPKV, &f.inputs(), 2, &max).unwrap().mask,
            0,
            0
        ),
        vec![0, 5]
    );
    let per_query = choose(PolicyId::SNAPKV, &f.inputs(), 2, &base).unwrap();
    assert_eq!(per_query.mask.dim(), (1, 2, 6));
    assert_eq!(
        (kept(&per_query.mask, 0, 0), kept(&per_query.mask, 0, 1)),
        (vec![0, 5], vec![2, 5])
    );
}

#[test]
fn invalid_settings_and_shapes_are_errors() {
    let f = one_row(&[1.0; 8]);
    for bad in [
        PolicySettings {
            pooling: Pooling::Max { kernel: 6 },
            ..PolicySettings::default()
        },
        PolicySettings {
            pooling: Pooling::Avg { kernel: 0 },
            ..PolicySettings::default()
        },
        PolicySettings::default().with(&BETA, 0.5),
        PolicySettings::default().with(&BETA, f64::NAN),
        PolicySettings::default().with(&FLOOR_ALPHA, 1.5),
    ] {
        assert!(
            matches!(
                choose(PolicyId::SNAPKV, &f.inputs(), 4, &bad),
                Err(PolicyError::Settings(_))
            ),
            "{bad:?}"
        );
    }
    let mut wrong = one_row(&[1.0; 8]);
    wrong.accumulated = Array3::zeros((1, 1, 7));
    assert!(matches!(
        choose(
            PolicyId::H2O,
            &wrong.inputs(),
            4,
            &PolicySettings::default()
        ),
        Err(PolicyError::Shape { .. })
    ));
    let mut nan = one_row(&[1.0; 8]);
    nan.window[[0, 0, 0, 3]] = f32::NAN;
    assert_eq!(
        choose(
            PolicyId::SNAPKV,
            &nan.inputs(),
            4,
            &PolicySettings::default()
        ),
        Err(PolicyError::NonFinite("window"))
    );
    let groups = Fixture::random(1, (1, 3, 2, 8), 1, 0);
    assert!(matches!(
        choose(
            PolicyId::SNAPKV,
            &groups.inputs(),
            4,
            &PolicySettings::default()
        ),
        Err(PolicyError::Shape { .. })
    ));
}

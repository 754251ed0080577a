//! The bank gives exactly what the plain path gives, for every policy and many budgets.

use super::{Fixture, Rng};
use crate::attention::{Granularity, GroupOrder, GroupReduce, Pooling};
use crate::policy::{
    PolicyBank, PolicyError, PolicyKind, PolicySettings, ScoreInputs, evaluate_selection, select,
};
use crate::session::{SyntheticSpec, synthetic};

fn settings_variants(rng: &mut Rng) -> Vec<PolicySettings> {
    let poolings = [
        Pooling::None,
        Pooling::Max { kernel: 7 },
        Pooling::Avg { kernel: 5 },
        Pooling::Max { kernel: 5 },
    ];
    let granularities = [
        Granularity::QueryHead,
        Granularity::KvHead(GroupReduce::Mean),
        Granularity::KvHead(GroupReduce::Max),
    ];
    let mut variants = vec![PolicySettings::default()];
    for i in 0..6 {
        variants.push(PolicySettings {
            window: rng.below(10),
            pooling: poolings[rng.below(poolings.len())],
            granularity: granularities[i % 3],
            group_order: if rng.below(2) == 0 {
                GroupOrder::BeforePooling
            } else {
                GroupOrder::AfterPooling
            },
            sinks: rng.below(6),
            judgeq_keep_window: i % 2 == 1,
            judgeq_window_layers: rng.below(3),
            pyramid_beta: [1.0, 5.0, 20.0][rng.below(3)],
            ada_floor_alpha: [0.0, 0.2, 0.5, 1.0][rng.below(4)],
            random_seed: rng.next(),
            oracle_pooling: i % 3 != 0,
        });
    }
    variants
}

/// Bank and plain path agree on selections and metrics at every budget in `budgets`.
fn check_agreement(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
    budgets: impl Iterator<Item = usize> + Clone,
) {
    let bank = PolicyBank::new(inputs, settings, &PolicyKind::ALL).unwrap();
    for budget in budgets {
        let metrics = bank.evaluate(budget).unwrap();
        assert_eq!(metrics.len(), PolicyKind::ALL.len());
        for (policy, fast) in PolicyKind::ALL.into_iter().zip(metrics) {
            let plain = select(policy, inputs, budget, settings).unwrap();
            let live = bank.select(policy, budget).unwrap();
            assert_eq!(live, plain, "{policy} at budget {budget}, {settings:?}");
            let reference = evaluate_selection(&plain, inputs, settings).unwrap();
            assert_eq!(fast.policy, policy);
            assert_eq!(
                fast.hit_rate, reference.hit_rate,
                "{policy} hit rate at {budget}"
            );
            assert_eq!(fast.kv_bytes, reference.kv_bytes);
            assert_eq!(fast.note, reference.note);
            for (a, b) in fast.mass_kept.iter().zip(reference.mass_kept.iter()) {
                assert!((a - b).abs() < 1e-5, "{policy} mass {a} vs {b} at {budget}");
            }
            assert!((fast.mean_hit_rate - reference.mean_hit_rate).abs() < 1e-6);
        }
    }
}

#[test]
fn bank_equals_select_on_random_scores_with_ties() {
    let mut rng = Rng(77);
    for case in 0..8 {
        let kv_heads = 1 + rng.below(2);
        let shape = (
            1 + rng.below(3),
            kv_heads * (1 + rng.below(3)),
            kv_heads,
            5 + rng.below(40),
        );
        let levels = if case % 2 == 0 { 4 } else { 0 };
        let fixture = Fixture::random(rng.next(), shape, 1 + rng.below(3), levels);
        let n = shape.3;
        for settings in settings_variants(&mut rng) {
            check_agreement(&fixture.inputs(), &settings, 1..=n + 1);
        }
    }
}

#[test]
fn bank_equals_select_on_a_synthetic_session() {
    let spec = SyntheticSpec {
        seed: 3,
        layers: 4,
        query_heads: 6,
        kv_heads: 2,
        n_prompt: 300,
        window: 32,
        soft: 8,
        decoded: 12,
    };
    let session = synthetic(&spec).unwrap();
    let inputs = ScoreInputs::from_session(&session);
    let mut rng = Rng(5);
    for settings in settings_variants(&mut rng) {
        check_agreement(
            &inputs,
            &settings,
            [
                1, 2, 31, 32, 33, 40, 64, 100, 128, 150, 151, 200, 256, 299, 300, 301,
            ]
            .into_iter(),
        );
    }
}

#[test]
fn bank_errors() {
    let fixture = Fixture::random(1, (1, 2, 1, 20), 2, 0);
    let inputs = fixture.inputs();
    let bank = PolicyBank::new(
        &inputs,
        &PolicySettings::default(),
        &[PolicyKind::SnapKv, PolicyKind::SnapKv],
    )
    .unwrap();
    assert_eq!(bank.policies(), &[PolicyKind::SnapKv]);
    assert_eq!(
        bank.select(PolicyKind::SnapKv, 0),
        Err(PolicyError::ZeroBudget)
    );
    assert_eq!(bank.evaluate(0), Err(PolicyError::ZeroBudget));
    assert_eq!(
        bank.select(PolicyKind::H2o, 4),
        Err(PolicyError::NotInBank(PolicyKind::H2o))
    );
    let mut no_soft = Fixture::random(1, (1, 2, 1, 20), 2, 0);
    no_soft.soft = None;
    assert!(matches!(
        PolicyBank::new(
            &no_soft.inputs(),
            &PolicySettings::default(),
            &PolicyKind::ALL
        ),
        Err(PolicyError::NoSoftRows)
    ));
    // Without decoded rows the bank still selects, but has no hit rate to report.
    let mut no_answer = Fixture::random(1, (1, 2, 1, 20), 2, 0);
    no_answer.decoded = ndarray::Array4::zeros((1, 2, 0, 20));
    let bank = PolicyBank::new(
        &no_answer.inputs(),
        &PolicySettings::default(),
        &[PolicyKind::SnapKv],
    )
    .unwrap();
    assert_eq!(bank.select(PolicyKind::SnapKv, 8).unwrap().kept[[0, 0]], 8);
    assert!(matches!(
        bank.evaluate(8),
        Err(PolicyError::EmptySource {
            which: "decoded",
            ..
        })
    ));
}

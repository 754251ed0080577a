//! The trait's selection, plain ([`select`]) and banked ([`PolicyBank`]), equals the per-policy
//! reference for every registered policy at every budget, and the bank's metrics equal the ones
//! computed from the masks.

use super::reference::reference_select;
use super::{Fixture, Rng, random_prefill};
use crate::attention::{Granularity, GroupOrder, GroupReduce, Pooling};
use crate::policy::critical;
use crate::policy::policies::{
    adakv::{AdaKv, FLOOR_ALPHA},
    adakv_expected_attention::{AdaKvExpectedAttention, SAFEGUARD},
    expected_attention::{self, ExpectedAttention},
    judgeq::{KEEP_WINDOW, WINDOW_LAYERS},
    oracle::POOLED,
    pyramidkv::{BETA, PyramidKv},
    random::SEED,
    snapkv::SnapKv,
    streaming_llm::SINKS,
};
use crate::policy::{
    Budget, OrderContext, PolicyBank, PolicyError, PolicyId, PolicySettings, ScoreInputs,
    evaluate_selection, select,
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
        let shared = PolicySettings {
            window: rng.below(10),
            pooling: poolings[rng.below(poolings.len())],
            granularity: granularities[i % 3],
            group_order: if rng.below(2) == 0 {
                GroupOrder::BeforePooling
            } else {
                GroupOrder::AfterPooling
            },
            ..PolicySettings::default()
        };
        variants.push(
            shared
                .with(&SINKS, rng.below(6) as u64)
                .with(&KEEP_WINDOW, i % 2 == 1)
                .with(&WINDOW_LAYERS, rng.below(3) as u64)
                .with(&BETA, [1.0, 5.0, 20.0][rng.below(3)])
                .with(&FLOOR_ALPHA, [0.0, 0.2, 0.5, 1.0][rng.below(4)])
                .with(&SEED, rng.next())
                .with(&POOLED, i % 3 != 0)
                .with(&expected_attention::SINKS, rng.below(6) as u64)
                .with(
                    &expected_attention::FUTURE_POSITIONS,
                    [1, 3, 512][rng.below(3)],
                )
                .with(&expected_attention::COVARIANCE, rng.below(2) == 0)
                .with(&expected_attention::VALUE_NORMS, i % 3 != 1)
                .with(&expected_attention::EPSILON, [0.0, 0.01][rng.below(2)])
                .with(&SAFEGUARD, [0.0, 0.2, 0.5, 1.0][rng.below(4)])
                .with(&critical::EPSILON, [0.0, 1e-4, 0.5][rng.below(3)])
                .with(
                    &critical::FIRST_STAGE_RATIO,
                    [0.0, 0.3, 0.5, 1.0][rng.below(4)],
                ),
        );
    }
    variants
}

/// The plain selection, the bank's (plain and live) and the reference agree, and the bank's
/// metrics equal the masks', for every registered policy at every budget in `budgets`. Every
/// third budget's live selections are held to the end, so that the next budget's live masks are
/// written afresh, and the others are moved from the previous budget's.
fn check_agreement(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
    budgets: impl Iterator<Item = usize> + Clone,
) {
    let policies = PolicyId::all();
    let bank = PolicyBank::new(inputs, settings, &policies).unwrap();
    let mut held = Vec::new();
    for (step, asked) in budgets.enumerate() {
        let budget = bank.budget(asked).unwrap();
        // Metrics counted afresh, then from the live masks of the same budget.
        let cold = bank.evaluate(budget).unwrap();
        let lives: Vec<_> = policies
            .iter()
            .map(|&policy| bank.select_live(policy, budget).unwrap())
            .collect();
        let metrics = bank.evaluate(budget).unwrap();
        assert_eq!(cold, metrics, "budget {asked}, {settings:?}");
        assert_eq!(metrics.len(), policies.len());
        for (i, (&policy, fast)) in policies.iter().zip(metrics).enumerate() {
            let reference = reference_select(policy, inputs, asked, settings).unwrap();
            let plain = select(policy, inputs, budget, settings).unwrap();
            assert_eq!(
                (&plain.mask, &plain.kept, &plain.note),
                (&reference.mask, &reference.kept, &reference.note),
                "{policy} at budget {asked}, {settings:?}"
            );
            assert_eq!((plain.policy, plain.budget), (policy, budget));
            let banked = bank.select(policy, budget).unwrap();
            assert_eq!(banked, plain, "{policy} at budget {asked}, {settings:?}");
            assert_eq!(
                *lives[i], plain,
                "{policy} live at budget {asked}, {settings:?}"
            );
            let from_masks = evaluate_selection(&plain, inputs, settings).unwrap();
            assert_eq!(fast.policy, policy);
            assert_eq!(
                fast.hit_rate, from_masks.hit_rate,
                "{policy} hit rate at {asked}"
            );
            assert_eq!(fast.kv_bytes, from_masks.kv_bytes);
            assert_eq!(fast.note, from_masks.note);
            for (a, b) in fast.mass_kept.iter().zip(from_masks.mass_kept.iter()) {
                assert!((a - b).abs() < 1e-5, "{policy} mass {a} vs {b} at {asked}");
            }
            assert!((fast.mean_hit_rate - from_masks.mean_hit_rate).abs() < 1e-6);
        }
        if step % 3 == 0 {
            held.extend(lives);
        }
    }
}

#[test]
fn every_policy_equals_its_reference_on_random_scores_with_ties() {
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
            check_agreement(
                &fixture.inputs(),
                &settings,
                (1..=n + 1).chain((1..=n).rev()),
            );
        }
    }
}

#[test]
fn every_policy_equals_its_reference_on_a_synthetic_session() {
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
    let mut session = synthetic(&spec).unwrap();
    session.prefill_inputs = random_prefill(9, (4, 6, 2, 300), 8, 0);
    // Draft rows for Lookahead Q-Cache: any rows over the prompt do (the soft tokens').
    session.lookahead = session.soft.clone();
    let inputs = ScoreInputs::from_session(&session);
    let mut rng = Rng(5);
    for settings in settings_variants(&mut rng) {
        check_agreement(
            &inputs,
            &settings,
            [
                1, 2, 31, 32, 33, 40, 64, 100, 128, 150, 151, 200, 256, 299, 300, 301, 150, 33,
                256, 1, 64,
            ]
            .into_iter(),
        );
    }
}

#[test]
fn policies_that_order_alike_share_one_order() {
    let fixture = Fixture::random(2, (2, 4, 2, 30), 2, 0);
    let inputs = fixture.inputs();
    let settings = PolicySettings::default();
    let ctx = OrderContext::new(&inputs, &settings);
    let snap = ctx.order_of(&SnapKv).unwrap();
    assert!(ctx.order_of(&PyramidKv).unwrap().same(&snap));
    assert!(ctx.order_of(&AdaKv).unwrap().same(&snap));
    let expected = ctx.order_of(&ExpectedAttention).unwrap();
    assert!(
        ctx.order_of(&AdaKvExpectedAttention)
            .unwrap()
            .same(&expected)
    );
    let other = OrderContext::new(&inputs, &settings);
    assert!(!other.order_of(&SnapKv).unwrap().same(&snap));
}

#[test]
fn a_live_selection_reuses_its_mask_once_no_one_holds_it() {
    let fixture = Fixture::random(4, (2, 4, 2, 40), 2, 0);
    let inputs = fixture.inputs();
    let settings = PolicySettings::default();
    let bank = PolicyBank::new(&inputs, &settings, &[PolicyId::SNAPKV]).unwrap();
    let at = |asked| bank.budget(asked).unwrap();
    let mask_of = |selection: &crate::policy::Selection| selection.mask.as_ptr();
    let held = bank.select_live(PolicyId::SNAPKV, at(12)).unwrap();
    // Held elsewhere: the next budget gets a mask of its own, and the held one is untouched.
    let second = bank.select_live(PolicyId::SNAPKV, at(20)).unwrap();
    assert_ne!(mask_of(&second), mask_of(&held));
    let twelve = select(PolicyId::SNAPKV, &inputs, at(12), &settings).unwrap();
    assert_eq!(*held, twelve);
    drop(held);
    // Dropped: the next budget moves the last mask in place, both down and up.
    let memory = mask_of(&second);
    drop(second);
    for asked in [7, 33, 33, 1, 40, 41] {
        let live = bank.select_live(PolicyId::SNAPKV, at(asked)).unwrap();
        assert_eq!(mask_of(&live), memory, "budget {asked}");
        let plain = select(PolicyId::SNAPKV, &inputs, at(asked), &settings).unwrap();
        assert_eq!(*live, plain, "budget {asked}");
    }
}

#[test]
fn bank_errors() {
    let fixture = Fixture::random(1, (1, 2, 1, 20), 2, 0);
    let inputs = fixture.inputs();
    let bank = PolicyBank::new(
        &inputs,
        &PolicySettings::default(),
        &[PolicyId::SNAPKV, PolicyId::SNAPKV],
    )
    .unwrap();
    assert_eq!(bank.policies(), &[PolicyId::SNAPKV]);
    assert_eq!(bank.budget(0), Err(PolicyError::ZeroBudget));
    let four = bank.budget(4).unwrap();
    assert_eq!(
        bank.select(PolicyId::H2O, four),
        Err(PolicyError::NotInBank(PolicyId::H2O))
    );
    let elsewhere = Budget::new(4, 21).unwrap();
    assert!(matches!(
        bank.select(PolicyId::SNAPKV, elsewhere),
        Err(PolicyError::OtherPrompt { .. })
    ));
    assert!(matches!(
        bank.evaluate(elsewhere),
        Err(PolicyError::OtherPrompt { .. })
    ));
    let mut no_soft = Fixture::random(1, (1, 2, 1, 20), 2, 0);
    no_soft.soft = None;
    assert!(matches!(
        PolicyBank::new(
            &no_soft.inputs(),
            &PolicySettings::default(),
            &PolicyId::all()
        ),
        Err(PolicyError::NoSoftRows)
    ));
    // Without decoded rows the bank still selects, but has no hit rate to report.
    let mut no_answer = Fixture::random(1, (1, 2, 1, 20), 2, 0);
    no_answer.decoded = ndarray::Array4::zeros((1, 2, 0, 20));
    let bank = PolicyBank::new(
        &no_answer.inputs(),
        &PolicySettings::default(),
        &[PolicyId::SNAPKV],
    )
    .unwrap();
    let eight = bank.budget(8).unwrap();
    assert_eq!(
        bank.select(PolicyId::SNAPKV, eight).unwrap().kept[[0, 0]],
        8
    );
    assert!(matches!(
        bank.evaluate(eight),
        Err(PolicyError::EmptySource {
            which: "decoded",
            ..
        })
    ));
}

//! Hit rate, attention mass kept, overlap and KV bytes on hand cases.

use ndarray::{Array3, array};

use super::{Fixture, choose};
use crate::attention::{Granularity, GroupReduce, Pooling};
use crate::policy::{
    Budget, PolicyBank, PolicyError, PolicyId, PolicySettings, evaluate_selection, overlap,
    overlap_by_head,
};

/// Two query heads in one KV group, n = 6, window 1, no pooling.
fn fixture() -> Fixture {
    // Decoded attention: head 0 on 1 and 4, head 1 on 2.
    let decoded = array![[
        [0.0, 0.4, 0.0, 0.0, 0.4, 0.2],
        [0.1, 0.0, 0.6, 0.1, 0.0, 0.2]
    ]];
    // Window rows: head 0 favours 1 then 3, head 1 favours 2 then 0.
    let window = array![[
        [0.0, 0.5, 0.0, 0.3, 0.1, 0.1],
        [0.2, 0.0, 0.7, 0.0, 0.0, 0.1]
    ]];
    Fixture::from_scores(window.clone(), Some(window.clone()), decoded, window, 1)
}

fn settings() -> PolicySettings {
    PolicySettings {
        window: 1,
        pooling: Pooling::None,
        ..PolicySettings::default()
    }
}

#[test]
fn hit_rate_and_mass_per_query_head() {
    let f = fixture();
    let inputs = f.inputs();
    // Budget 3: SnapKV keeps {1, 3, 5} and {0, 2, 5}; the Oracle keeps {1, 4, 5} and {2, 5, 0|3 → 0}.
    let snap = choose(PolicyId::SNAPKV, &inputs, 3, &settings()).unwrap();
    let metrics = evaluate_selection(&snap, &inputs, &settings()).unwrap();
    // Head 0: {1, 3, 5} ∩ {1, 4, 5} = 2 of 3; head 1: {0, 2, 5} ∩ {0, 2, 5} = 3 of 3.
    assert_eq!(metrics.hit_rate, array![[2.0 / 3.0, 1.0]]);
    assert!((metrics.mean_hit_rate - 5.0 / 6.0).abs() < 1e-6);
    // Mass: head 0 keeps 0.4 + 0.2 of 1.0; head 1 keeps 0.1 + 0.6 + 0.2 of 1.0.
    assert!((metrics.mass_kept[[0, 0]] - 0.6).abs() < 1e-6);
    assert!((metrics.mass_kept[[0, 1]] - 0.9).abs() < 1e-6);
    assert_eq!(metrics.kv_bytes, 6 * 100);
    let oracle = evaluate_selection(
        &choose(PolicyId::ORACLE, &inputs, 3, &settings()).unwrap(),
        &inputs,
        &settings(),
    )
    .unwrap();
    assert_eq!(oracle.mean_hit_rate, 1.0);
}

#[test]
fn mass_at_kv_head_granularity_uses_the_group_mask() {
    let f = fixture();
    let inputs = f.inputs();
    let s = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Mean),
        ..settings()
    };
    // Group mean of the window scores: [0.1, 0.25, 0.35, 0.15, 0.05, 0.1] → keep 5, then 2.
    let snap = choose(PolicyId::SNAPKV, &inputs, 2, &s).unwrap();
    assert_eq!(
        snap.mask,
        array![[[false, false, true, false, false, true]]]
    );
    let metrics = evaluate_selection(&snap, &inputs, &s).unwrap();
    // Oracle on the mean decoded [0.05, 0.2, 0.3, 0.05, 0.2, 0.2] keeps 2, then 1: hit 1 of 2.
    assert_eq!(metrics.hit_rate, array![[0.5]]);
    assert!((metrics.mass_kept[[0, 0]] - 0.2).abs() < 1e-6);
    assert!((metrics.mass_kept[[0, 1]] - 0.8).abs() < 1e-6);
    // One stored head: a third of the per-query-head bytes would be 2 · 100 per head.
    assert_eq!(metrics.kv_bytes, 2 * 100);
    let bank = PolicyBank::new(&inputs, &s, &[PolicyId::SNAPKV]).unwrap();
    let fast = &bank.evaluate(Budget::new(2, 6).unwrap()).unwrap()[0];
    assert_eq!(fast.hit_rate, metrics.hit_rate);
    assert!((fast.mass_kept[[0, 1]] - 0.8).abs() < 1e-6);
}

#[test]
fn full_kv_holds_everything() {
    let f = fixture();
    let full = choose(PolicyId::FULL_KV, &f.inputs(), 2, &settings()).unwrap();
    let metrics = evaluate_selection(&full, &f.inputs(), &settings()).unwrap();
    assert_eq!(metrics.hit_rate, array![[1.0, 1.0]]);
    assert_eq!(metrics.mean_mass_kept, 1.0);
    assert_eq!(metrics.kv_bytes, 2 * 6 * 100);
}

#[test]
fn overlap_is_the_jaccard_index() {
    let a = array![[[true, true, false, false], [true, false, false, false]]];
    let b = array![[[false, true, true, false], [true, false, false, false]]];
    assert_eq!(overlap(&a, &b).unwrap(), 2.0 / 4.0);
    assert_eq!(overlap_by_head(&a, &b).unwrap(), array![[1.0 / 3.0, 1.0]]);
    assert_eq!(overlap(&a, &a).unwrap(), 1.0);
    let empty = Array3::from_elem((1, 2, 4), false);
    assert_eq!(overlap(&empty, &empty).unwrap(), 1.0);
    assert!(matches!(
        overlap(&a, &Array3::from_elem((1, 1, 4), false)),
        Err(PolicyError::Shape { .. })
    ));
}

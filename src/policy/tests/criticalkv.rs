//! CriticalKV over SnapKV and over Judge Q on hand-made inputs whose kept sets are worked out by
//! hand: the two stages, the first stage's floor of one entry, the rescaling by the projected
//! value norms, the mean over the source's rows (which sets ε's scale) and the GQA mean of the
//! norms. (The agreement with the plain reference at every budget is in `bank.rs`.)

use ndarray::{Array3, Array4};

use super::{Fixture, choose, kept};
use crate::attention::{Granularity, GroupReduce, Pooling};
use crate::policy::critical::{EPSILON, FIRST_STAGE_RATIO};
use crate::policy::{Order, PolicyError, PolicyId, PolicySettings};
use crate::session::PrefillInputs;

fn policy(id: &str) -> PolicyId {
    id.parse().unwrap()
}

/// One layer and head of `n = scores.len()` keys: every window row and every soft row equals
/// `scores`, and the projected value norms are `norms`.
fn fixture(scores: &[f32], rows: usize, norms: &[f32]) -> Fixture {
    let n = scores.len();
    let grid = Array4::from_shape_fn((1, 1, rows, n), |(_, _, _, j)| scores[j]);
    Fixture {
        window: grid.clone(),
        soft: Some(grid.clone()),
        decoded: grid,
        accumulated: Array3::from_shape_fn((1, 1, n), |(_, _, j)| scores[j]),
        kv_heads: 1,
        lookahead: None,
        prefill: PrefillInputs {
            projected_value_norms: Some(Array3::from_shape_fn((1, 1, n), |(_, _, j)| norms[j])),
            ..PrefillInputs::default()
        },
    }
}

fn unpooled(window: usize) -> PolicySettings {
    PolicySettings {
        window,
        pooling: Pooling::None,
        ..PolicySettings::default()
    }
}

fn kept_at(f: &Fixture, id: &str, budget: usize, settings: &PolicySettings) -> Vec<usize> {
    let selection = choose(policy(id), &f.inputs(), budget, settings).unwrap();
    kept(&selection.mask, 0, 0)
}

#[test]
fn criticalkv_snapkv_keeps_half_by_snapkv_and_half_by_the_rescaled_scores() {
    // Scored range [0, 4) with window 2; the window scores 0.4 + 1 = 1.4.
    // (s + 1e-4) · norm = [0.4001, 1.001, 0.6002, 0.2001, 0.14001, 7.0005].
    let f = fixture(
        &[0.4, 0.1, 0.3, 0.2, 0.9, 0.9],
        1,
        &[1.0, 10.0, 2.0, 1.0, 0.1, 5.0],
    );
    let s = unpooled(2);
    // SnapKV itself keeps the window and the top two: 0 and 2.
    assert_eq!(kept_at(&f, "snapkv", 4, &s), [0, 2, 4, 5]);
    // B = 4: stage 1 keeps 4 and 5 (1.4, the earlier first), stage 2 the best two of the rest.
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 4, &s), [1, 2, 4, 5]);
    // B = 3: stage 1 keeps ⌊1.5⌋ = 1 entry (4), stage 2 keeps 5 (7.0005) and 1 (1.001).
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 3, &s), [1, 4, 5]);
    // B = 1: the first stage's floor of one entry.
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 1, &s), [4]);
    // B = 5: stage 1 keeps 4, 5; stage 2 keeps 1, 2, 0.
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 5, &s), [0, 1, 2, 4, 5]);
    // Ratio 0: everything by the rescaled scores, and the low-norm window entry 4 goes.
    let all_rescaled = s.clone().with(&FIRST_STAGE_RATIO, 0.0);
    assert_eq!(
        kept_at(&f, "criticalkv-snapkv", 3, &all_rescaled),
        [1, 2, 5]
    );
    // Ratio 1: SnapKV's own selection.
    let all_base = s.clone().with(&FIRST_STAGE_RATIO, 1.0);
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 4, &all_base), [0, 2, 4, 5]);
}

#[test]
fn epsilon_is_on_the_scale_of_the_mean_over_the_rows() {
    // Two window rows, each equal to the scores: means 0.1 (norm 10) and 0.3 (norm 4). With
    // ε = 0.05 the means give 1.5 against 1.4 (position 0 wins); sums (0.2, 0.6) would give 2.5
    // against 2.6 (position 1 would win).
    let f = fixture(&[0.1, 0.3, 0.0, 0.0], 2, &[10.0, 4.0, 1.0, 1.0]);
    let s = unpooled(2)
        .with(&EPSILON, 0.05)
        .with(&FIRST_STAGE_RATIO, 0.5);
    // B = 3: stage 1 keeps 2 (the window's 1.3, the earlier first), stage 2 keeps 0 (1.5) and
    // 1 (1.4) over 3 (1.35).
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 3, &s), [0, 1, 2]);
    // B = 2: stage 1 keeps 2, stage 2 the best of the rest: 0 (1.5) over 1 (1.4) and 3 (1.35).
    assert_eq!(kept_at(&f, "criticalkv-snapkv", 2, &s), [0, 2]);
}

#[test]
fn criticalkv_judgeq_rescales_the_soft_tokens_scores_over_the_whole_prompt() {
    // Judge Q (a): no window; (s + 1e-4) · norm = [0.4001, 1.001, 0.6002, 0.2001, 0.00501, 2.5005].
    let f = fixture(
        &[0.4, 0.1, 0.3, 0.2, 0.05, 0.5],
        1,
        &[1.0, 10.0, 2.0, 1.0, 0.1, 5.0],
    );
    let s = unpooled(2);
    assert_eq!(kept_at(&f, "judgeq", 4, &s), [0, 2, 3, 5]);
    // Stage 1: 5 (0.5) and 0 (0.4); stage 2: 1 and 2.
    assert_eq!(kept_at(&f, "criticalkv-judgeq", 4, &s), [0, 1, 2, 5]);
    // Ratio 0: 5, 1, 2 by the rescaled scores.
    let all_rescaled = s.clone().with(&FIRST_STAGE_RATIO, 0.0);
    assert_eq!(
        kept_at(&f, "criticalkv-judgeq", 3, &all_rescaled),
        [1, 2, 5]
    );
}

#[test]
fn kv_head_granularity_averages_the_norms_over_the_group() {
    // Two query heads share one KV head; their norms average to [3, 1, 2, 2]. All scores equal
    // (0.1), so stage 2 is decided by the averaged norms alone.
    let n = 4;
    let mut f = fixture(&[0.1; 4], 1, &[0.0; 4]);
    let scores = Array4::from_elem((1, 2, 1, n), 0.1f32);
    f.window = scores.clone();
    f.soft = Some(scores.clone());
    f.decoded = scores;
    f.accumulated = Array3::from_elem((1, 2, n), 0.1);
    let norms = [[5.0, 0.0, 1.0, 3.0], [1.0, 2.0, 3.0, 1.0]];
    f.prefill.projected_value_norms =
        Some(Array3::from_shape_fn((1, 2, n), |(_, h, j)| norms[h][j]));
    let s = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Mean),
        ..unpooled(0)
    }
    .with(&FIRST_STAGE_RATIO, 0.0);
    // Means [3, 1, 2, 2]: 0, then 2 (the earlier of the two 2s).
    assert_eq!(kept_at(&f, "criticalkv-judgeq", 2, &s), [0, 2]);
    // Per query head: head 0 keeps 0 and 3, head 1 keeps 2 and 1.
    let per_head = PolicySettings {
        granularity: Granularity::QueryHead,
        ..s
    };
    let selection = choose(policy("criticalkv-judgeq"), &f.inputs(), 2, &per_head).unwrap();
    assert_eq!(kept(&selection.mask, 0, 0), [0, 3]);
    assert_eq!(kept(&selection.mask, 0, 1), [1, 2]);
}

#[test]
fn a_session_without_projected_norms_is_refused_by_name() {
    let mut f = fixture(&[0.4, 0.1, 0.3, 0.2], 1, &[1.0; 4]);
    f.prefill.projected_value_norms = None;
    let err = choose(policy("criticalkv-snapkv"), &f.inputs(), 2, &unpooled(1)).unwrap_err();
    assert!(
        matches!(&err, PolicyError::MissingInput { input, .. } if input.contains("output-projected")),
        "{err}"
    );
}

#[test]
fn a_two_stage_order_refuses_rows_of_other_shapes_and_shares_outside_zero_to_one() {
    let a = Order::same_in_every_row(1, 1, vec![0, 1, 2]).unwrap();
    let b = Order::same_in_every_row(1, 2, vec![0, 1, 2]).unwrap();
    assert!(Order::two_stage(&a, &b, 0.5).is_err());
    assert!(Order::two_stage(&a, &a, 1.5).is_err());
    let two = Order::two_stage(
        &a,
        &Order::same_in_every_row(1, 1, vec![2, 1, 0]).unwrap(),
        0.5,
    )
    .unwrap();
    assert_eq!(
        (0..=3)
            .map(|c| two.first_stage_count(c))
            .collect::<Vec<_>>(),
        [0, 1, 1, 1]
    );
    let mut row = vec![false; 3];
    two.mark_kept(0, 0, 2, &mut row);
    assert_eq!(row, [true, false, true]);
}

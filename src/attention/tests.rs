//! Hand-computed cases for scores, pooling and GQA reduction.

use ndarray::{Array3, Array4, array};

use super::*;

fn pooled(pooling: Pooling, input: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; input.len()];
    pooling.apply(input, &mut out);
    out
}

fn assert_close(found: &[f32], expected: &[f32]) {
    assert_eq!(found.len(), expected.len());
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!((f - e).abs() < 1e-6, "at {i}: {f} vs {e} (found {found:?})");
    }
}

const SPIKES: [f32; 10] = [5.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 9.0];

#[test]
fn source_scores_sum_and_mean_over_query_rows() {
    // 1 layer, 2 heads, 2 query rows, 3 keys.
    let rows = Array4::from_shape_vec(
        (1, 2, 2, 3),
        vec![
            0.5, 0.25, 0.0, 0.25, 0.25, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.75,
        ],
    )
    .unwrap();
    let sum = source_scores(rows.view(), RowReduce::Sum);
    assert_eq!(sum, array![[[0.75, 0.5, 0.5], [1.0, 0.0, 0.75]]]);
    let mean = source_scores(rows.view(), RowReduce::Mean);
    assert_eq!(mean, array![[[0.375, 0.25, 0.25], [0.5, 0.0, 0.375]]]);
    let none = source_scores(Array4::<f32>::zeros((1, 2, 0, 3)).view(), RowReduce::Mean);
    assert_eq!(none, Array3::<f32>::zeros((1, 2, 3)));
}

#[test]
fn max_pooling_pads_with_negative_infinity() {
    assert_close(
        &pooled(Pooling::Max { kernel: 5 }, &SPIKES),
        &[5.0, 5.0, 5.0, 1.0, 0.0, 0.0, 2.0, 9.0, 9.0, 9.0],
    );
    assert_close(
        &pooled(Pooling::Max { kernel: 7 }, &SPIKES),
        &[5.0, 5.0, 5.0, 5.0, 1.0, 2.0, 9.0, 9.0, 9.0, 9.0],
    );
    // Zero padding would give 0 at the edges; −∞ padding keeps the in-range maximum.
    assert_close(
        &pooled(Pooling::Max { kernel: 5 }, &[-1.0, -2.0, -3.0, -4.0]),
        &[-1.0, -1.0, -1.0, -2.0],
    );
}

#[test]
fn average_pooling_counts_the_zero_padding() {
    assert_close(
        &pooled(Pooling::Avg { kernel: 5 }, &SPIKES),
        &[1.2, 1.2, 1.2, 0.2, 0.0, 0.0, 0.4, 2.2, 2.2, 2.2],
    );
    let seventh = |x: f32| x / 7.0;
    assert_close(
        &pooled(Pooling::Avg { kernel: 7 }, &SPIKES),
        &[6.0, 6.0, 6.0, 6.0, 1.0, 2.0, 11.0, 11.0, 11.0, 11.0].map(seventh),
    );
    // A constant row sags at the edges: (in-range count) / kernel.
    assert_close(
        &pooled(Pooling::Avg { kernel: 5 }, &[1.0; 6]),
        &[0.6, 0.8, 1.0, 1.0, 0.8, 0.6],
    );
    assert_close(
        &pooled(Pooling::Avg { kernel: 7 }, &[1.0; 4]),
        &[4.0 / 7.0; 4],
    );
}

#[test]
fn no_pooling_and_short_rows() {
    assert_close(&pooled(Pooling::None, &SPIKES), &SPIKES);
    assert_close(&pooled(Pooling::Max { kernel: 7 }, &[3.0]), &[3.0]);
    assert_close(&pooled(Pooling::Avg { kernel: 5 }, &[3.0]), &[0.6]);
    assert!(pooled(Pooling::Max { kernel: 7 }, &[]).is_empty());
    let grid = Pooling::Max { kernel: 3 }
        .grid(array![[[1.0, 0.0, 0.0, 2.0], [0.0, 4.0, 0.0, 0.0]]].view());
    assert_eq!(grid, array![[[1.0, 1.0, 2.0, 2.0], [4.0, 4.0, 4.0, 0.0]]]);
}

#[test]
fn gqa_reduction_by_mean_and_max() {
    // Query heads 0, 1 share KV head 0; 2, 3 share KV head 1.
    let scores = array![[
        [1.0, 4.0, 0.0],
        [3.0, 0.0, 2.0],
        [0.5, 0.5, 8.0],
        [1.5, 2.5, 0.0]
    ]];
    let mean = reduce_groups(scores.view(), 2, GroupReduce::Mean).unwrap();
    assert_eq!(mean, array![[[2.0, 2.0, 1.0], [1.0, 1.5, 4.0]]]);
    let max = reduce_groups(scores.view(), 2, GroupReduce::Max).unwrap();
    assert_eq!(max, array![[[3.0, 4.0, 2.0], [1.5, 2.5, 8.0]]]);
    assert_eq!(
        reduce_groups(scores.view(), 4, GroupReduce::Mean).unwrap(),
        scores
    );
    assert!(reduce_groups(scores.view(), 3, GroupReduce::Mean).is_none());
    assert!(reduce_groups(scores.view(), 0, GroupReduce::Max).is_none());
}

#[test]
fn group_order_matters_for_mean_with_max_pooling() {
    let raw = array![[[4.0, 0.0, 0.0], [0.0, 0.0, 4.0]]];
    let pooling = Pooling::Max { kernel: 3 };
    let kv = Granularity::KvHead(GroupReduce::Mean);
    let before = head_scores(raw.view(), pooling, kv, GroupOrder::BeforePooling, 1).unwrap();
    assert_eq!(before, array![[[2.0, 2.0, 2.0]]]);
    let after = head_scores(raw.view(), pooling, kv, GroupOrder::AfterPooling, 1).unwrap();
    assert_eq!(after, array![[[2.0, 4.0, 2.0]]]);
    let per_query = head_scores(
        raw.view(),
        pooling,
        Granularity::QueryHead,
        GroupOrder::BeforePooling,
        1,
    )
    .unwrap();
    assert_eq!(per_query, array![[[4.0, 4.0, 0.0], [0.0, 4.0, 4.0]]]);
    assert_eq!(owning_head(kv, 5, 3), 1);
    assert_eq!(owning_head(Granularity::QueryHead, 5, 3), 5);
}

#[test]
fn pooling_and_granularity_names_parse_back() {
    for pooling in [
        Pooling::None,
        Pooling::Max { kernel: 7 },
        Pooling::Avg { kernel: 5 },
    ] {
        assert_eq!(pooling.label().parse::<Pooling>(), Ok(pooling));
    }
    assert_eq!(" MAX5 ".parse::<Pooling>(), Ok(Pooling::Max { kernel: 5 }));
    assert!("max".parse::<Pooling>().is_err());
    assert!("median3".parse::<Pooling>().is_err());
    for granularity in [
        Granularity::QueryHead,
        Granularity::KvHead(GroupReduce::Mean),
        Granularity::KvHead(GroupReduce::Max),
    ] {
        assert_eq!(granularity.label().parse::<Granularity>(), Ok(granularity));
    }
    assert_eq!(
        "kv_head".parse::<Granularity>(),
        Ok(Granularity::KvHead(GroupReduce::Mean))
    );
    assert!("per-layer".parse::<Granularity>().is_err());
}

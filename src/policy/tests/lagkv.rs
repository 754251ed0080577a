//! LagKV against a naive reading of kvpress's `LagKVPress`, written here with plain loops:
//! per token, the reference partition's per-dimension range, the sample deviation of the
//! normalised key and value, the softmax over the partition and the rank within it.

use ndarray::Array4;

use super::{Fixture, Rng, choose, kept};
use crate::policy::PolicySettings;
use crate::policy::policies::lagkv::{CROSS_SCORING, LAG_SIZE, SINKS};

/// One layer of two query heads over one KV head, with random keys and values of dimension
/// `d` for `n` tokens.
fn fixture(seed: u64, n: usize, d: usize) -> Fixture {
    let mut f = Fixture::random(seed, (1, 2, 1, n), 2, 0);
    let mut rng = Rng(seed + 7);
    f.prefill.keys = Some(Array4::from_shape_fn((1, 1, n, d), |_| {
        (rng.unit() - 0.5) * 4.0
    }));
    f.prefill.values = Some(Array4::from_shape_fn((1, 1, n, d), |_| {
        (rng.unit() - 0.5) * 2.0
    }));
    f
}

/// The share of token `t` among tokens `start..start + lag` of `states` (`[n][d]`), by the
/// formula: softmax over the partition of std((x − min_ref) / (max_ref − min_ref)).
fn naive_share(states: &[Vec<f64>], start: usize, lag: usize, t: usize) -> f64 {
    let d = states[0].len();
    let deviation = |u: usize| {
        let scaled: Vec<f64> = (0..d)
            .map(|i| {
                let column = (start + lag..start + 2 * lag).map(|r| states[r][i]);
                let lo = column.clone().fold(f64::INFINITY, f64::min);
                let hi = column.fold(f64::NEG_INFINITY, f64::max);
                (states[u][i] - lo) / (hi - lo)
            })
            .collect();
        let mean = scaled.iter().sum::<f64>() / d as f64;
        let var = scaled.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (d as f64 - 1.0);
        var.sqrt()
    };
    let total: f64 = (start..start + lag).map(|u| deviation(u).exp()).sum();
    deviation(t).exp() / total
}

/// kvpress's score of every token, computed token by token.
fn naive_scores(
    keys: &[Vec<f64>],
    values: &[Vec<f64>],
    sinks: usize,
    lag: usize,
    cross: bool,
) -> Vec<f64> {
    let n = keys.len();
    if n < sinks + 2 * lag {
        return (0..n)
            .map(|j| {
                if j < sinks {
                    1.0
                } else {
                    (j - sinks) as f64 / (n - sinks) as f64
                }
            })
            .collect();
    }
    let scored_partitions = (n - sinks) / lag - 1;
    (0..n)
        .map(|j| {
            if j < sinks || j >= sinks + scored_partitions * lag {
                return 1.0;
            }
            let start = sinks + (j - sinks) / lag * lag;
            let share =
                |t| (naive_share(keys, start, lag, t) + naive_share(values, start, lag, t)) / 2.0;
            if cross {
                share(j)
            } else {
                let below = (start..start + lag)
                    .filter(|&u| share(u) < share(j))
                    .count();
                below as f64 / lag as f64
            }
        })
        .collect()
}

/// The top `budget` positions by `scores`, earlier first among equals, ascending.
fn naive_top(scores: &[f64], budget: usize) -> Vec<usize> {
    let mut by_score: Vec<usize> = (0..scores.len()).collect();
    by_score.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut top = by_score[..budget].to_vec();
    top.sort_unstable();
    top
}

#[test]
fn lagkv_keeps_what_the_naive_formula_keeps() {
    let d = 5;
    // (n, sinks, lag): three scored partitions and a remainder; a prompt too short to partition;
    // no sink; a prompt that is whole partitions.
    for (case, &(n, sinks, lag)) in [(23, 2, 4), (9, 2, 4), (21, 0, 5), (20, 4, 4)]
        .iter()
        .enumerate()
    {
        let f = fixture(40 + case as u64, n, d);
        let as_rows = |a: &Array4<f32>| -> Vec<Vec<f64>> {
            (0..n)
                .map(|j| (0..d).map(|i| f64::from(a[[0, 0, j, i]])).collect())
                .collect()
        };
        let keys = as_rows(f.prefill.keys.as_ref().unwrap());
        let values = as_rows(f.prefill.values.as_ref().unwrap());
        for cross in [false, true] {
            let settings = PolicySettings::default()
                .with(&SINKS, sinks as u64)
                .with(&LAG_SIZE, lag as u64)
                .with(&CROSS_SCORING, cross);
            let expected = naive_scores(&keys, &values, sinks, lag, cross);
            for budget in 1..n {
                let selection =
                    choose("lagkv".parse().unwrap(), &f.inputs(), budget, &settings).unwrap();
                for h in 0..2 {
                    assert_eq!(
                        kept(&selection.mask, 0, h),
                        naive_top(&expected, budget),
                        "n {n} sinks {sinks} lag {lag} cross {cross} budget {budget} head {h}"
                    );
                }
            }
        }
    }
}

#[test]
fn lagkv_keeps_its_sinks_and_last_partition_before_anything_ranked() {
    let f = fixture(3, 23, 4);
    let settings = PolicySettings::default().with(&SINKS, 2).with(&LAG_SIZE, 4);
    // 2 sinks, partitions 2..6, 6..10, 10..14, 14..18 scored, the last one 18..22 and 22 kept.
    let selection = choose("lagkv".parse().unwrap(), &f.inputs(), 7, &settings).unwrap();
    assert_eq!(kept(&selection.mask, 0, 0), vec![0, 1, 18, 19, 20, 21, 22]);
}

#[test]
fn lagkv_refuses_a_lag_of_zero() {
    let f = fixture(5, 12, 3);
    let settings = PolicySettings::default().with(&LAG_SIZE, 0);
    let error = choose("lagkv".parse().unwrap(), &f.inputs(), 4, &settings).unwrap_err();
    assert!(error.to_string().contains("lagkv_lag_size"), "{error}");
}

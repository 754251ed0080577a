//! Inputs beyond attention rows, captured during the prefill: post-RoPE keys, value norms,
//! CriticalKV's output-projected value norms and the query statistics of ExpectedAttention, each against the naive f64 reference transformer
//! (`common::naive`), which computes queries, keys and values with plain loops.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use common::naive::{
    Naive, NaiveRun, ids, tiny_config, tiny_llama3_config, tiny_model, tiny_qwen2_config,
};
use judgeq::model::{Capture, ModelConfig, Transformer};
use judgeq::progress::Silent;
use judgeq::session::{FIRST_QUERY_ROWS, QueryStatistics};

/// Prefills `n` tokens capturing the query statistics; returns them with the cache's keys,
/// value norms and values and the naive run of the same tokens.
fn captured(
    model: &Transformer,
    n: usize,
) -> (
    QueryStatistics,
    ndarray::Array4<f32>,
    ndarray::Array3<f32>,
    ndarray::Array4<f32>,
    NaiveRun,
) {
    let tokens = ids(n, model.config.vocab_size, 3);
    let mut cache = model.new_cache(n + 4).unwrap();
    let capture = Capture::rows(n - 1, n).with_query_statistics();
    let out = model
        .forward(
            &model.embed(&tokens).unwrap(),
            &mut cache,
            &capture,
            &Silent,
        )
        .unwrap();
    let naive = Naive::from(model);
    let reference = naive.run_causal(&naive.embed(&tokens));
    (
        out.query_statistics.expect("statistics were asked for"),
        cache.keys_f32(n).unwrap(),
        cache.value_norms(n).unwrap(),
        cache.values_f32(n).unwrap(),
        reference,
    )
}

fn configs() -> [(&'static str, ModelConfig); 3] {
    [
        ("llama", tiny_config()),
        ("llama3 scaling", tiny_llama3_config()),
        ("qwen2", tiny_qwen2_config()),
    ]
}

#[test]
fn keys_values_and_value_norms_equal_the_reference() {
    for (name, config) in configs() {
        let model = tiny_model(config.clone(), 11);
        let n = 23;
        let (_, keys, norms, values, reference) = captured(&model, n);
        let (kv, d) = (config.num_kv_heads, config.head_dim);
        assert_eq!(keys.dim(), (config.num_layers, kv, n, d), "{name}");
        assert_eq!(norms.dim(), (config.num_layers, kv, n), "{name}");
        assert_eq!(values.dim(), (config.num_layers, kv, n, d), "{name}");
        for l in 0..config.num_layers {
            for g in 0..kv {
                for p in 0..n {
                    let want = &reference.keys[l][p][g * d..(g + 1) * d];
                    for i in 0..d {
                        let got = f64::from(keys[[l, g, p, i]]);
                        assert!((got - want[i]).abs() < 1e-4, "{name} key [{l},{g},{p},{i}]");
                    }
                    let value = &reference.values[l][p][g * d..(g + 1) * d];
                    for i in 0..d {
                        let got = f64::from(values[[l, g, p, i]]);
                        assert!(
                            (got - value[i]).abs() < 1e-4,
                            "{name} value [{l},{g},{p},{i}]"
                        );
                    }
                    let norm = value.iter().map(|v| v * v).sum::<f64>().sqrt();
                    let got = f64::from(norms[[l, g, p]]);
                    assert!(
                        (got - norm).abs() < 1e-4 * norm.max(1.0),
                        "{name} norm [{l},{g},{p}]"
                    );
                }
            }
        }
    }
}

#[test]
fn projected_value_norms_equal_the_reference() {
    for (name, config) in configs() {
        let model = tiny_model(config.clone(), 13);
        let n = 19;
        let tokens = ids(n, model.config.vocab_size, 7);
        let mut cache = model.new_cache(n + 2).unwrap();
        model
            .forward(
                &model.embed(&tokens).unwrap(),
                &mut cache,
                &Capture::rows(n - 1, n),
                &Silent,
            )
            .unwrap();
        let got = model.projected_value_norms(&cache, n).unwrap();
        let naive = Naive::from(&model);
        let want = naive.projected_value_norms(&naive.run_causal(&naive.embed(&tokens)));
        assert_eq!(
            got.dim(),
            (config.num_layers, config.num_heads, n),
            "{name}"
        );
        for l in 0..config.num_layers {
            for h in 0..config.num_heads {
                for p in 0..n {
                    let (a, b) = (f64::from(got[[l, h, p]]), want[l][h][p]);
                    assert!(
                        (a - b).abs() < 1e-4 * b.max(1.0),
                        "{name} [{l},{h},{p}]: {a} vs {b}"
                    );
                }
            }
        }
        // The heads of one GQA group read the same value through different columns.
        let group = config.num_heads / config.num_kv_heads;
        if group > 1 {
            assert_ne!(got[[0, 0, 0]], got[[0, 1, 0]], "{name}");
        }
        assert!(
            model.projected_value_norms(&cache, n + 1).is_err(),
            "{name}"
        );
    }
}

/// Two-pass mean and population covariance of head `h`'s queries at positions `skip..`.
fn reference_moments(
    queries: &[Vec<f64>],
    h: usize,
    d: usize,
    skip: usize,
) -> (Vec<f64>, Vec<f64>) {
    let rows: Vec<&[f64]> = queries[skip..]
        .iter()
        .map(|q| &q[h * d..(h + 1) * d])
        .collect();
    let m = rows.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|i| rows.iter().map(|r| r[i]).sum::<f64>() / m)
        .collect();
    let cov = (0..d * d)
        .map(|ij| {
            let (i, j) = (ij / d, ij % d);
            rows.iter()
                .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
                .sum::<f64>()
                / m
        })
        .collect();
    (mean, cov)
}

#[test]
fn query_statistics_equal_the_reference_for_any_skip() {
    for (name, config) in configs() {
        let model = tiny_model(config.clone(), 5);
        // Longer than the rows kept one by one (a tail), and shorter (no tail).
        for n in [FIRST_QUERY_ROWS + 9, 12] {
            let (stats, _, _, _, reference) = captured(&model, n);
            let d = config.head_dim;
            assert_eq!(stats.dim(), (config.num_layers, config.num_heads, d));
            assert_eq!(stats.rows(), n);
            assert_eq!(stats.inverse_frequencies.len(), d / 2);
            for l in 0..config.num_layers {
                for h in 0..config.num_heads {
                    for skip in [0, 4, n.min(FIRST_QUERY_ROWS) - 1] {
                        let got = stats.moments(l, h, skip).unwrap();
                        let (mean, cov) = reference_moments(&reference.queries[l], h, d, skip);
                        assert_eq!(got.rows, n - skip);
                        for (a, b) in got.mean.iter().zip(&mean) {
                            assert!(
                                (a - b).abs() < 1e-4,
                                "{name} n {n} mean [{l},{h}] skip {skip}: {a} vs {b}"
                            );
                        }
                        for (a, b) in got.covariance.iter().zip(&cov) {
                            assert!(
                                (a - b).abs() < 1e-4,
                                "{name} n {n} cov [{l},{h}] skip {skip}: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn statistics_are_absent_unless_asked_for() {
    let model = tiny_model(tiny_config(), 2);
    let tokens = ids(10, 64, 1);
    let mut cache = model.new_cache(12).unwrap();
    let out = model
        .forward(
            &model.embed(&tokens).unwrap(),
            &mut cache,
            &Capture::rows(9, 10),
            &Silent,
        )
        .unwrap();
    assert!(out.query_statistics.is_none());
    assert!(cache.keys_f32(11).is_err(), "only 10 positions are held");
}

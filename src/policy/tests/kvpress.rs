//! kvpress's presses on hand-made inputs with known answers, and their scores against naive
//! formulas written here with plain loops: Knorm, KeyDiff, TOVA, ExpectedAttention (from raw
//! query rows, the averaged rotary matrix built entry by entry) and kvpress's Ada-KV spread.

use ndarray::{Array3, Array4, array, s};

use super::{Fixture, Rng, choose, kept, statistics_of};
use crate::attention::{Granularity, GroupReduce, Pooling, QuerySource};
use crate::policy::policies::{
    adakv_expected_attention::SAFEGUARD,
    expected_attention::{self, COVARIANCE, EPSILON, FUTURE_POSITIONS, SINKS, VALUE_NORMS},
    keydiff,
};
use crate::policy::{
    Input, Order, OrderContext, Policy, PolicyError, PolicyId, PolicySettings, Protected, Spread,
    prefill_capture,
};
use crate::session::{PrefillCapture, PrefillInputs};

fn policy(id: &str) -> PolicyId {
    id.parse().unwrap()
}

/// One layer of `heads` query heads over one KV head, every source scoring 0, with `keys`
/// (`[n][d]`) as the KV head's keys.
fn with_keys(heads: usize, keys: &[&[f32]]) -> Fixture {
    let (n, d) = (keys.len(), keys[0].len());
    let mut f = Fixture::uniform(Array3::zeros((1, heads, n)), 1);
    f.prefill.keys = Some(Array4::from_shape_fn((1, 1, n, d), |(_, _, j, i)| {
        keys[j][i]
    }));
    f
}

fn every_head_keeps(f: &Fixture, id: &str, budget: usize, settings: &PolicySettings) -> Vec<usize> {
    let selection = choose(policy(id), &f.inputs(), budget, settings).unwrap();
    let first = kept(&selection.mask, 0, 0);
    for h in 1..selection.mask.dim().1 {
        assert_eq!(
            kept(&selection.mask, 0, h),
            first,
            "{id}: head {h} keeps its group's set"
        );
    }
    first
}

#[test]
fn knorm_keeps_the_keys_with_the_smallest_norm() {
    // Norms 5, 1, 2, 10, 0.5.
    let f = with_keys(
        2,
        &[
            &[3.0, 4.0],
            &[1.0, 0.0],
            &[0.0, 2.0],
            &[6.0, 8.0],
            &[0.0, 0.5],
        ],
    );
    let s = PolicySettings::default();
    assert_eq!(every_head_keeps(&f, "knorm", 1, &s), vec![4]);
    assert_eq!(every_head_keeps(&f, "knorm", 2, &s), vec![1, 4]);
    assert_eq!(every_head_keeps(&f, "knorm", 3, &s), vec![1, 2, 4]);
    assert_eq!(every_head_keeps(&f, "knorm", 4, &s), vec![0, 1, 2, 4]);
    let per_kv = PolicySettings {
        granularity: Granularity::KvHead(GroupReduce::Max),
        ..PolicySettings::default()
    };
    assert_eq!(every_head_keeps(&f, "knorm", 2, &per_kv), vec![1, 4]);
}

#[test]
fn keydiff_keeps_the_keys_unlike_the_mean_direction() {
    let keys: [&[f32]; 5] = [
        &[1.0, 0.0],
        &[2.0, 0.2],
        &[1.0, -0.1],
        &[0.0, 1.0],
        &[-1.0, 0.1],
    ];
    let f = with_keys(1, &keys);
    let s = PolicySettings::default();
    // Naive: anchor = mean of unit keys; score = −cos(k, anchor).
    let unit: Vec<[f64; 2]> = keys
        .iter()
        .map(|k| {
            let norm = (f64::from(k[0]).powi(2) + f64::from(k[1]).powi(2)).sqrt();
            [f64::from(k[0]) / norm, f64::from(k[1]) / norm]
        })
        .collect();
    let anchor = [
        unit.iter().map(|u| u[0]).sum::<f64>() / 5.0,
        unit.iter().map(|u| u[1]).sum::<f64>() / 5.0,
    ];
    let anchor_norm = (anchor[0].powi(2) + anchor[1].powi(2)).sqrt();
    let naive: Vec<f64> = unit
        .iter()
        .map(|u| -(u[0] * anchor[0] + u[1] * anchor[1]) / anchor_norm)
        .collect();
    let inputs = f.inputs();
    let scores = keydiff::scores(&OrderContext::new(&inputs, &s)).unwrap();
    for (j, want) in naive.iter().enumerate() {
        assert!(
            (f64::from(scores[[0, 0, j]]) - want).abs() < 1e-6,
            "key {j}"
        );
    }
    // The key against the others' direction first, then the orthogonal one.
    assert_eq!(every_head_keeps(&f, "keydiff", 1, &s), vec![4]);
    assert_eq!(every_head_keeps(&f, "keydiff", 2, &s), vec![3, 4]);
}

#[test]
fn tova_ranks_by_the_last_query_averaged_over_heads_and_keeps_the_last_position() {
    // Two window rows; only the last one counts. Heads' last rows average to
    // [0.2, 0.3, 0.1, 0.3] over the first four keys.
    let mut window = Array4::<f32>::zeros((1, 2, 2, 5));
    window.slice_mut(s![0, .., 0, ..]).assign(&array![
        [9.0, 0.0, 9.0, 0.0, 0.0],
        [9.0, 0.0, 9.0, 0.0, 0.0]
    ]);
    window.slice_mut(s![0, .., 1, ..]).assign(&array![
        [0.1, 0.5, 0.1, 0.2, 0.1],
        [0.3, 0.1, 0.1, 0.4, 0.1]
    ]);
    let mut f = Fixture::uniform(Array3::zeros((1, 2, 5)), 1);
    f.window = window;
    let s = PolicySettings::default();
    assert_eq!(every_head_keeps(&f, "tova", 2, &s), vec![1, 4]);
    assert_eq!(every_head_keeps(&f, "tova", 3, &s), vec![1, 3, 4]);
    assert_eq!(every_head_keeps(&f, "tova", 4, &s), vec![0, 1, 3, 4]);
    let one = choose(policy("tova"), &f.inputs(), 1, &s).unwrap();
    assert_eq!(kept(&one.mask, 0, 0), vec![4]);
    assert!(one.note.unwrap().contains("equals the window"));
}

/// ExpectedAttention's scores by the formula, with plain loops: `[layers, heads, n − sinks]` at
/// the settings' granularity (per query head, or the group mean).
fn naive_expected_attention(
    queries: &Array4<f32>,
    keys: &Array4<f32>,
    norms: &Array3<f32>,
    inverse_frequencies: &[f64],
    settings: &PolicySettings,
) -> Array3<f64> {
    let (layers, heads, n, d) = queries.dim();
    let kv_heads = keys.dim().1;
    let group = heads / kv_heads;
    let sinks = settings.get(&SINKS) as usize;
    let future = settings.get(&FUTURE_POSITIONS) as usize;
    let m = n - sinks;
    // The averaged rotary matrix, entry by entry.
    let mut r = vec![vec![0f64; d]; d];
    for p in n..n + future {
        for (i, f) in inverse_frequencies.iter().enumerate() {
            let angle = p as f64 * f;
            r[i][i] += angle.cos() / future as f64;
            r[i + d / 2][i + d / 2] += angle.cos() / future as f64;
            r[i][i + d / 2] -= angle.sin() / future as f64;
            r[i + d / 2][i] += angle.sin() / future as f64;
        }
    }
    let mut per_query_head = Array3::<f64>::zeros((layers, heads, m));
    for l in 0..layers {
        for h in 0..heads {
            let rows: Vec<Vec<f64>> = (sinks..n)
                .map(|p| (0..d).map(|i| f64::from(queries[[l, h, p, i]])).collect())
                .collect();
            let mean: Vec<f64> = (0..d)
                .map(|i| rows.iter().map(|q| q[i]).sum::<f64>() / m as f64)
                .collect();
            let mut cov = vec![vec![0f64; d]; d];
            for q in &rows {
                for i in 0..d {
                    for j in 0..d {
                        cov[i][j] += (q[i] - mean[i]) * (q[j] - mean[j]) / m as f64;
                    }
                }
            }
            let mean_r: Vec<f64> = (0..d)
                .map(|i| (0..d).map(|j| r[i][j] * mean[j]).sum())
                .collect();
            let mut cov_r = vec![vec![0f64; d]; d];
            for i in 0..d {
                for j in 0..d {
                    for a in 0..d {
                        for b in 0..d {
                            cov_r[i][j] += r[i][a] * cov[a][b] * r[j][b];
                        }
                    }
                }
            }
            let logits: Vec<f64> = (sinks..n)
                .map(|p| {
                    let k: Vec<f64> = (0..d)
                        .map(|i| f64::from(keys[[l, h / group, p, i]]))
                        .collect();
                    let mut z = (0..d).map(|i| mean_r[i] * k[i]).sum::<f64>() / (d as f64).sqrt();
                    if settings.get(&COVARIANCE) {
                        let mut quad = 0.0;
                        for i in 0..d {
                            for j in 0..d {
                                quad += k[i] * cov_r[i][j] * k[j];
                            }
                        }
                        z += quad / d as f64 / 2.0;
                    }
                    z
                })
                .collect();
            let total: f64 = logits.iter().map(|z| z.exp()).sum();
            for (j, z) in logits.iter().enumerate() {
                per_query_head[[l, h, j]] = z.exp() / total;
            }
        }
    }
    let rescale = |score: f64, l: usize, g: usize, j: usize| {
        if settings.get(&VALUE_NORMS) {
            (score + settings.get(&EPSILON)) * f64::from(norms[[l, g, sinks + j]])
        } else {
            score
        }
    };
    match settings.granularity {
        Granularity::QueryHead => Array3::from_shape_fn((layers, heads, m), |(l, h, j)| {
            rescale(per_query_head[[l, h, j]], l, h / group, j)
        }),
        Granularity::KvHead(_) => Array3::from_shape_fn((layers, kv_heads, m), |(l, g, j)| {
            let mean = (0..group)
                .map(|k| per_query_head[[l, g * group + k, j]])
                .sum::<f64>()
                / group as f64;
            rescale(mean, l, g, j)
        }),
    }
}

/// Random queries, keys and value norms for `(layers, heads, kv_heads, n)` and head dim `d`.
fn expected_attention_fixture(
    seed: u64,
    shape: (usize, usize, usize, usize),
    d: usize,
) -> (Fixture, Array4<f32>) {
    let (layers, heads, kv_heads, n) = shape;
    let mut f = Fixture::random(seed, shape, 2, 0);
    let mut rng = Rng(seed + 1);
    let queries = Array4::from_shape_fn((layers, heads, n, d), |(_, _, _, i)| {
        (rng.unit() - 0.5) * 3.0 + if i % 3 == 0 { 1.0 } else { 0.0 }
    });
    f.prefill = PrefillInputs {
        keys: Some(Array4::from_shape_fn((layers, kv_heads, n, d), |_| {
            (rng.unit() - 0.5) * 4.0
        })),
        values: None,
        value_norms: Some(Array3::from_shape_fn((layers, kv_heads, n), |_| {
            0.2 + rng.unit()
        })),
        projected_value_norms: None,
        query_statistics: Some(statistics_of(&queries, d)),
        repeat_scores: None,
    };
    (f, queries)
}

#[test]
fn expected_attention_scores_follow_the_formula() {
    let (f, queries) = expected_attention_fixture(4, (2, 4, 2, 40), 6);
    let inputs = f.inputs();
    let stats = f.prefill.query_statistics.as_ref().unwrap();
    let keys = f.prefill.keys.as_ref().unwrap();
    let norms = f.prefill.value_norms.as_ref().unwrap();
    let kv_mean = Granularity::KvHead(GroupReduce::Mean);
    for (sinks, future, covariance, vnorm, epsilon, granularity) in [
        (4, 512, true, true, 0.0, Granularity::QueryHead),
        (4, 512, true, true, 0.0, kv_mean),
        (0, 1, false, true, 0.01, kv_mean),
        (2, 7, true, false, 0.0, Granularity::QueryHead),
        (32, 512, true, true, 0.0, kv_mean),
    ] {
        let settings = PolicySettings {
            granularity,
            ..PolicySettings::default()
        }
        .with(&SINKS, sinks)
        .with(&FUTURE_POSITIONS, future)
        .with(&COVARIANCE, covariance)
        .with(&VALUE_NORMS, vnorm)
        .with(&EPSILON, epsilon);
        let want =
            naive_expected_attention(&queries, keys, norms, &stats.inverse_frequencies, &settings);
        let (got_sinks, got) =
            expected_attention::scores(&OrderContext::new(&inputs, &settings)).unwrap();
        assert_eq!(got_sinks, sinks as usize);
        assert_eq!(got.dim(), want.dim());
        let scale = want.iter().copied().fold(0.0, f64::max);
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5 * scale,
                "sinks {sinks}, future {future}, covariance {covariance}: {g} vs {w}"
            );
        }
        // The selection: the sinks, then the top of the naive scores.
        let budget = sinks as usize + 5;
        let selection = choose(policy("expected-attention"), &inputs, budget, &settings).unwrap();
        for l in 0..2 {
            for h in 0..want.dim().1 {
                let mut ranked: Vec<usize> = (0..want.dim().2).collect();
                ranked.sort_by(|&a, &b| want[[l, h, b]].total_cmp(&want[[l, h, a]]));
                let mut expected: Vec<usize> = (0..sinks as usize)
                    .chain(ranked[..5].iter().map(|j| j + sinks as usize))
                    .collect();
                expected.sort_unstable();
                assert_eq!(kept(&selection.mask, l, h), expected, "layer {l} head {h}");
            }
        }
    }
}

#[test]
fn expected_attention_keeps_its_sinks_and_refuses_more_than_the_statistics_keep() {
    let (f, _) = expected_attention_fixture(8, (1, 2, 1, 40), 4);
    let s = PolicySettings::default();
    let selection = choose(policy("expected-attention"), &f.inputs(), 3, &s).unwrap();
    assert_eq!(kept(&selection.mask, 0, 1), vec![0, 1, 2]);
    assert!(
        selection
            .note
            .unwrap()
            .contains("at most the 4 sink tokens")
    );
    let selection = choose(policy("expected-attention"), &f.inputs(), 9, &s).unwrap();
    assert_eq!(kept(&selection.mask, 0, 0)[..4], [0, 1, 2, 3]);
    let too_many = s.clone().with(&SINKS, 33);
    assert!(matches!(
        choose(policy("expected-attention"), &f.inputs(), 9, &too_many),
        Err(PolicyError::Settings(message)) if message.contains("at most 32")
    ));
    let no_future = s.with(&FUTURE_POSITIONS, 0);
    assert!(matches!(
        choose(policy("expected-attention"), &f.inputs(), 9, &no_future),
        Err(PolicyError::Settings(message)) if message.contains("at least 1")
    ));
}

/// Window sums over every position after `sinks` protected ones, budgets spread as kvpress's
/// Ada-KV does.
struct Safeguarded {
    sinks: usize,
}

impl Policy for Safeguarded {
    fn id(&self) -> &'static str {
        "safeguarded"
    }
    fn label(&self) -> &'static str {
        "Safeguarded"
    }
    fn summary(&self) -> &'static str {
        "A test policy"
    }
    fn needs(&self, _: &PolicySettings) -> Vec<Input> {
        vec![Input::Window]
    }
    fn order(&self, ctx: &OrderContext) -> Result<Order, PolicyError> {
        let sums = ctx.inputs().source_sums(QuerySource::Window, "test")?;
        let scores = sums.slice(s![.., .., self.sinks..]).to_owned();
        Order::scored(
            ctx.prompt_len(),
            Protected::Sinks(self.sinks),
            self.sinks,
            scores,
        )
    }
    fn spread(&self, settings: &PolicySettings) -> Spread {
        Spread::Safeguarded {
            alpha: settings.get(&SAFEGUARD),
        }
    }
}

static NO_SINKS: Safeguarded = Safeguarded { sinks: 0 };
static ONE_SINK: Safeguarded = Safeguarded { sinks: 1 };

#[test]
fn kvpress_adakv_keeps_each_heads_top_then_the_layers_best() {
    let scores = array![[
        [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0],
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0]
    ]];
    let f = Fixture::uniform(scores, 2);
    let settings = PolicySettings {
        pooling: Pooling::None,
        ..PolicySettings::default()
    }
    .with(&SAFEGUARD, 0.25);
    let run = |policy: &'static Safeguarded, budget| {
        choose(PolicyId::of(policy), &f.inputs(), budget, &settings).unwrap()
    };
    // B = 4, n_safe = 1: head 1 keeps its 10 only; head 0 its 9 and the layer's next six.
    let selection = run(&NO_SINKS, 4);
    assert_eq!(selection.kept, array![[7, 1]]);
    assert_eq!(kept(&selection.mask, 0, 1), vec![7]);
    assert_eq!(kept(&selection.mask, 0, 0), vec![0, 1, 2, 3, 4, 5, 6]);
    assert!(
        selection
            .note
            .unwrap()
            .contains("kvpress's AdaKV, safeguard α = 0.25")
    );
    // With a sink: n_safe = 1 is the sink itself; the other 2·3 entries are the layer's best
    // after it (8, 7, 6, 5, 4 of head 0 and the 10 of head 1).
    let selection = run(&ONE_SINK, 4);
    assert_eq!(selection.kept, array![[6, 2]]);
    assert_eq!(kept(&selection.mask, 0, 1), vec![0, 7]);
    // α = 1 at B = 4: n_safe = 4 per head (the sink and three more), nothing shared.
    let whole = settings.clone().with(&SAFEGUARD, 1.0);
    let selection = choose(PolicyId::of(&ONE_SINK), &f.inputs(), 4, &whole).unwrap();
    assert_eq!(selection.kept, array![[4, 4]]);
    assert_eq!(kept(&selection.mask, 0, 0), vec![0, 1, 2, 3]);
    assert_eq!(kept(&selection.mask, 0, 1), vec![0, 1, 2, 7]);
}

#[test]
fn missing_prefill_inputs_name_themselves() {
    let f = Fixture::uniform(Array3::ones((1, 2, 6)), 1);
    let inputs = f.inputs();
    assert!(!inputs.has(Input::Keys) && !inputs.has(Input::QueryStatistics));
    assert!(inputs.has(Input::Window));
    let error = choose(policy("knorm"), &inputs, 3, &PolicySettings::default()).unwrap_err();
    assert_eq!(
        error,
        PolicyError::MissingInput {
            input: "post-RoPE keys",
            needed_by: "Knorm".to_owned()
        }
    );
    assert!(error.to_string().contains("inspect again"));
    // TOVA needs only the window rows every session has.
    assert!(choose(policy("tova"), &inputs, 3, &PolicySettings::default()).is_ok());
}

#[test]
fn the_prefill_captures_only_what_the_chosen_policies_need() {
    let s = PolicySettings::default();
    let capture = |ids: &[&str], settings: &PolicySettings| {
        prefill_capture(ids.iter().map(|id| (policy(id), settings)))
    };
    assert_eq!(
        capture(&["snapkv", "judgeq", "tova"], &s),
        PrefillCapture::default()
    );
    let keys_only = PrefillCapture {
        keys: true,
        ..PrefillCapture::default()
    };
    assert_eq!(capture(&["knorm", "keydiff"], &s), keys_only);
    assert_eq!(
        capture(&["lagkv"], &s),
        PrefillCapture {
            values: true,
            ..keys_only
        }
    );
    let everything = PrefillCapture {
        keys: true,
        values: false,
        value_norms: true,
        projected_value_norms: false,
        query_statistics: true,
        lookahead: None,
        repeat: None,
    };
    assert_eq!(
        capture(&["snapkv", "adakv-expected-attention"], &s),
        everything
    );
    let no_norms = s.with(&VALUE_NORMS, false);
    assert_eq!(
        capture(&["expected-attention"], &no_norms),
        PrefillCapture {
            value_norms: false,
            ..everything
        }
    );
}

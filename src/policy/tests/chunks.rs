//! ChunkKV over SnapKV and Judge Q against a naive reading of kvpress's `ChunkKVPress`, with plain loops:
//! sum the scores over the layer's heads, average them per chunk, keep the best chunks whole.

use ndarray::Array3;

use super::{Fixture, Rng, choose, kept};
use crate::attention::Pooling;
use crate::policy::PolicySettings;
use crate::policy::chunks::CHUNK_SIZE;

/// What SnapKV in chunks of `chunk` keeps at `budget` in layer `l` of `window` (one row per
/// source, `[layers, heads, n]`), unpooled: the window, then whole chunks of `[0, n − w)` by
/// their mean head-summed score (earlier chunk first among equals), cut at `budget` entries.
fn naive_chunked_snapkv(
    window: &Array3<f32>,
    l: usize,
    w: usize,
    chunk: usize,
    budget: usize,
) -> Vec<usize> {
    let (_, heads, n) = window.dim();
    let scored = n - w;
    let summed: Vec<f64> = (0..scored)
        .map(|j| (0..heads).map(|h| f64::from(window[[l, h, j]])).sum())
        .collect();
    let mut chunks: Vec<(f64, usize, usize)> = Vec::new();
    let mut start = 0;
    while start < scored {
        let end = (start + chunk).min(scored);
        let mean = summed[start..end].iter().sum::<f64>() / (end - start) as f64;
        chunks.push((mean, start, end));
        start = end;
    }
    chunks.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut order: Vec<usize> = (scored..n).rev().collect();
    for (_, start, end) in chunks {
        order.extend(start..end);
    }
    let mut top = order[..budget].to_vec();
    top.sort_unstable();
    top
}

#[test]
fn chunked_snapkv_keeps_what_the_naive_chunk_selection_keeps() {
    let (layers, heads, kv_heads, n) = (2, 4, 2, 37);
    let mut rng = Rng(91);
    let scores = Array3::from_shape_fn((layers, heads, n), |_| rng.unit());
    let f = Fixture::uniform(scores.clone(), kv_heads);
    for (w, chunk) in [(4, 5), (0, 20), (6, 1), (3, 40)] {
        let settings = PolicySettings {
            window: w,
            pooling: Pooling::None,
            ..PolicySettings::default()
        }
        .with(&CHUNK_SIZE, chunk as u64);
        for budget in 1..n {
            let selection =
                choose("snapkv".parse().unwrap(), &f.inputs(), budget, &settings).unwrap();
            for l in 0..layers {
                let expected = naive_chunked_snapkv(&scores, l, w, chunk, budget);
                for h in 0..heads {
                    assert_eq!(
                        kept(&selection.mask, l, h),
                        expected,
                        "window {w} chunk {chunk} budget {budget} layer {l} head {h}"
                    );
                }
            }
        }
    }
}

#[test]
fn chunked_judgeq_keeps_whole_chunks_of_the_whole_prompt() {
    let (layers, heads, kv_heads, n) = (2, 3, 3, 29);
    let mut rng = Rng(17);
    let scores = Array3::from_shape_fn((layers, heads, n), |_| rng.unit());
    let f = Fixture::uniform(scores.clone(), kv_heads);
    for chunk in [4, 20] {
        let settings = PolicySettings {
            pooling: Pooling::None,
            ..PolicySettings::default()
        }
        .with(&CHUNK_SIZE, chunk as u64);
        for budget in 1..n {
            let selection =
                choose("judgeq".parse().unwrap(), &f.inputs(), budget, &settings).unwrap();
            for l in 0..layers {
                let expected = naive_chunked_snapkv(&scores, l, 0, chunk, budget);
                assert_eq!(
                    kept(&selection.mask, l, 1),
                    expected,
                    "chunk {chunk} budget {budget}"
                );
            }
        }
    }
}

#[test]
fn the_snapkv_chunk_variant_uses_kvpress_chunk_length() {
    let variant = crate::policy::policies::variants()
        .into_iter()
        .find(|(_, v)| v.id == "snapkv-chunk")
        .unwrap();
    let settings = (variant.1.settings)(&PolicySettings::default());
    assert_eq!(settings.get(&CHUNK_SIZE), 20);
    assert_eq!(PolicySettings::default().get(&CHUNK_SIZE), 0);
}

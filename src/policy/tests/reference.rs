//! The plain per-policy selections, straight from each method's description: the reference the
//! trait's selection ([`crate::policy::select`] and the bank, through orders and spreads) is
//! checked against for every registered policy at every budget.
//!
//! Each function builds its mask directly (sort the scored range, keep the top, add the window),
//! with no orders, prefixes or precomputed tables. A policy added to the registry needs its
//! reference here: [`reference_select`] names the ones it knows.

use ndarray::{Array2, Array3, ArrayView3, Axis, s};

use crate::attention::{KeepMask, Pooling, QuerySource, ScoreGrid};
use crate::policy::critical;
use crate::policy::layer_schedule::{Schedule, layer_budgets};
use crate::policy::policies::{
    adakv::FLOOR_ALPHA, adakv_expected_attention::SAFEGUARD, expected_attention,
    judgeq::KEEP_WINDOW, judgeq::WINDOW_LAYERS, keydiff, knorm, kvzip, lagkv, lookahead,
    oracle::POOLED, pyramidkv::BETA, random, random::SEED, streaming_llm::SINKS, tova,
};
use crate::policy::ranking::{order_key, rank_desc};
use crate::policy::{OrderContext, PolicyError, PolicyId, PolicySettings, ScoreInputs};

/// What a policy keeps at a budget, by the reference path.
#[derive(Debug, PartialEq)]
pub(crate) struct Reference {
    pub mask: KeepMask,
    pub kept: Array2<usize>,
    pub note: Option<String>,
}

/// The reference selection of `policy` at `budget` (entries per layer and head, ≥ 1).
///
/// Panics for a registered policy this module does not know: a new policy needs its reference.
pub(crate) fn reference_select(
    policy: PolicyId,
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<Reference, PolicyError> {
    settings.validate()?;
    inputs.check()?;
    require_sources(policy.id(), inputs, settings)?;
    let (layers, heads, n) = (inputs.layers(), inputs.heads(settings), inputs.prompt_len());
    let w = inputs.window(settings);
    let id = policy.id();
    // The kvpress presses' scores come from their own files (their formulas are checked
    // against naive ones in `tests/kvpress.rs`); what is checked here is the selection.
    let ctx = OrderContext::new(inputs, settings);
    let mask = if budget >= n || id == "full" {
        all(layers, heads, n)
    } else if keeps_window(id, settings) && budget <= w {
        recent(layers, heads, n, budget)
    } else if id == "tova" && budget == 1 {
        recent(layers, heads, n, 1)
    } else if let Some(sinks) = sink_count(id, settings, n)
        && budget <= sinks
    {
        first(layers, heads, n, budget)
    } else {
        match id {
            "streamingllm" => streaming_llm(layers, heads, n, budget, sinks(settings)),
            "h2o" => {
                let scores = scored_range(inputs, inputs.accumulated()?, Pooling::None, settings)?;
                window_and_top(&scores, n, w, |_, _| budget - w)
            }
            "h2o-window" => {
                let scores = window_scores(inputs, settings, Pooling::None)?;
                window_and_top(&scores, n, w, |_, _| budget - w)
            }
            "snapkv" => {
                let scores = window_scores(inputs, settings, settings.pooling)?;
                window_and_top(&scores, n, w, |_, _| budget - w)
            }
            "pyramidkv" => {
                let scores = window_scores(inputs, settings, settings.pooling)?;
                let (kept, _) = layer_budgets(n, budget, w, layers, settings.get(&BETA));
                window_and_top(&scores, n, w, |l, _| kept[l] - w)
            }
            "adakv" => {
                let scores = window_scores(inputs, settings, settings.pooling)?;
                let kept = ada_head_budgets(&scores, budget, w, settings.get(&FLOOR_ALPHA));
                window_and_top(&scores, n, w, |l, h| kept[[l, h]] - w)
            }
            "judgeq" => judgeq(inputs, budget, settings)?,
            "lookahead" => {
                let mut raw = inputs.source_sums(QuerySource::Window, "LAQ")?.clone();
                let tokens = settings.get(&lookahead::TOKENS) as usize;
                if tokens > 0 {
                    let drafts = inputs.lookahead("LAQ")?;
                    for row in 0..tokens.min(drafts.dim().2) {
                        raw += &drafts.index_axis(Axis(2), row);
                    }
                }
                let scores = scored_range(inputs, raw.view(), settings.pooling, settings)?;
                window_and_top(&scores, n, w, |_, _| budget - w)
            }
            "criticalkv-snapkv" => {
                let scores = window_scores(inputs, settings, settings.pooling)?;
                let rows = inputs.source_rows(QuerySource::Window);
                let base = kvpress_scale(&scores, n, |_| rows);
                criticalkv(inputs, &base, budget, settings)?
            }
            "criticalkv-judgeq" => {
                let (_, scores) = judgeq_scores(inputs, settings)?;
                let window_layers = settings.get(&WINDOW_LAYERS) as usize;
                let (window_rows, soft_rows) = (
                    inputs.source_rows(QuerySource::Window),
                    inputs.source_rows(QuerySource::Soft),
                );
                let base = kvpress_scale(&scores, n, |l| {
                    if l < window_layers {
                        window_rows
                    } else {
                        soft_rows
                    }
                });
                criticalkv(inputs, &base, budget, settings)?
            }
            "knorm" => top(&knorm::scores(&ctx)?, budget),
            "keydiff" => top(&keydiff::scores(&ctx)?, budget),
            "lagkv" => top(&lagkv::scores(&ctx)?, budget),
            "tova" => window_and_top(&tova::scores(&ctx)?, n, 1, |_, _| budget - 1),
            "expected-attention" => {
                let (sinks, scores) = expected_attention::scores(&ctx)?;
                sinks_and_top(&scores, n, sinks, |_, _| budget - sinks)
            }
            "adakv-expected-attention" => {
                let (sinks, scores) = expected_attention::scores(&ctx)?;
                let kept = kvpress_ada_budgets(&scores, budget, sinks, settings.get(&SAFEGUARD));
                sinks_and_top(&scores, n, sinks, |l, h| kept[[l, h]] - sinks)
            }
            // The pooled Oracle pools always, the Oracle only with `oracle_pooling` on.
            "oracle" | "oracle-pooled" => {
                let sums = inputs.source_sums(QuerySource::Decoded, "the Oracle")?;
                let pooling = if id == "oracle-pooled" || settings.get(&POOLED) {
                    settings.pooling
                } else {
                    Pooling::None
                };
                top(
                    &inputs.ranked_scores(sums.view(), n, pooling, settings)?,
                    budget,
                )
            }
            "kvzip" => {
                let sinks = sink_count(id, settings, n).unwrap_or(0);
                let scores = inputs.repeat_scores("KVzip")?;
                kvzip_global(scores.view(), heads, n, sinks, budget)
            }
            "random" => random_subset(layers, heads, n, budget, settings.get(&SEED)),
            "first-b" => {
                let mut mask = Array3::from_elem((layers, heads, n), false);
                mask.slice_mut(s![.., .., ..budget]).fill(true);
                mask
            }
            other => panic!(
                "no reference selection for the registered policy `{other}`: write one in policy/tests/reference.rs"
            ),
        }
    };
    let kept = mask.map_axis(Axis(2), |row| row.iter().filter(|&&k| k).count());
    let note = note(id, budget, n, settings, &kept);
    Ok(Reference { mask, kept, note })
}

fn sinks(settings: &PolicySettings) -> usize {
    settings.get(&SINKS) as usize
}

/// Whether the policy orders as ExpectedAttention (its sinks first).
fn is_expected_attention(id: &str) -> bool {
    matches!(id, "expected-attention" | "adakv-expected-attention")
}

/// ExpectedAttention's sinks, at most the prompt.
fn ea_sinks(settings: &PolicySettings, n: usize) -> usize {
    (settings.get(&expected_attention::SINKS) as usize).min(n)
}

/// The leading entries a policy always keeps (ExpectedAttention's and KVzip's sinks), at most
/// the prompt; `None` for policies without sinks.
fn sink_count(id: &str, settings: &PolicySettings, n: usize) -> Option<usize> {
    if is_expected_attention(id) {
        Some(ea_sinks(settings, n))
    } else if id == "kvzip" {
        Some((settings.get(&kvzip::SINKS) as usize).min(n))
    } else {
        None
    }
}

/// KVzip by hand: the first `sinks` of every row, then the `rows·(B − sinks)` highest of every
/// row's scores over `[sinks, n)` at once (rows `heads` per layer, each KV head's scores copied
/// to its group's query heads), ties to the earlier position, then the lower row.
fn kvzip_global(
    scores: ArrayView3<f32>,
    heads: usize,
    n: usize,
    sinks: usize,
    budget: usize,
) -> KeepMask {
    let (layers, kv_heads, _) = scores.dim();
    let group = heads / kv_heads;
    let mut mask = first(layers, heads, n, sinks);
    let mut all: Vec<(u32, usize, usize, usize)> = Vec::new();
    for l in 0..layers {
        for h in 0..heads {
            for j in sinks..n {
                all.push((order_key(scores[[l, h / group, j]]), j, l * heads + h, l));
            }
        }
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for &(_, j, row, l) in all.iter().take(layers * heads * (budget - sinks)) {
        mask[[l, row - l * heads, j]] = true;
    }
    mask
}

/// Whether the policy always keeps the last `window` prompt entries.
fn keeps_window(id: &str, settings: &PolicySettings) -> bool {
    match id {
        "h2o" | "h2o-window" | "snapkv" | "pyramidkv" | "adakv" | "lookahead" => true,
        "judgeq" => settings.get(&KEEP_WINDOW),
        _ => false,
    }
}

/// Errors early when the policy's score source is missing, empty or not finite.
fn require_sources(
    id: &str,
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<(), PolicyError> {
    let label = PolicyId::all()
        .into_iter()
        .find(|p| p.id() == id)
        .map_or(id, |p| p.label());
    match id {
        "h2o" => inputs.accumulated().map(|_| ()),
        "h2o-window" | "snapkv" | "pyramidkv" | "adakv" | "criticalkv-snapkv" => {
            inputs.source_sums(QuerySource::Window, label).map(|_| ())
        }
        "judgeq" | "criticalkv-judgeq" => {
            inputs.source_sums(QuerySource::Soft, label)?;
            if settings.get(&WINDOW_LAYERS) > 0 {
                inputs.source_sums(QuerySource::Window, label)?;
            }
            Ok(())
        }
        "oracle" | "oracle-pooled" => inputs.source_sums(QuerySource::Decoded, label).map(|_| ()),
        "lookahead" => {
            inputs.source_sums(QuerySource::Window, label)?;
            if settings.get(&lookahead::TOKENS) > 0 {
                inputs.lookahead(label)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The note for a selection whose per-row kept counts are `kept`.
fn note(
    id: &str,
    budget: usize,
    n: usize,
    settings: &PolicySettings,
    kept: &Array2<usize>,
) -> Option<String> {
    let w = settings.window.min(n);
    if budget >= n {
        return Some(format!(
            "budget {budget} ≥ prompt length {n}: every entry is kept"
        ));
    }
    if id == "full" {
        return Some(format!(
            "Full KV ignores the budget: all {n} entries are kept"
        ));
    }
    if keeps_window(id, settings) {
        if budget < w {
            return Some(format!(
                "budget {budget} is below the window of {w}: clamped to the last {budget} entries, none chosen by score"
            ));
        }
        if budget == w {
            return Some(format!(
                "budget {budget} equals the window: only the window is kept, none chosen by score"
            ));
        }
    }
    if id == "tova" && budget == 1 {
        return Some(
            "budget 1 equals the window: only the window is kept, none chosen by score".to_owned(),
        );
    }
    if let Some(sinks) = sink_count(id, settings, n)
        && budget <= sinks
    {
        return Some(format!(
            "budget {budget} is at most the {sinks} sink tokens: clamped to the first {budget} entries, none chosen by score"
        ));
    }
    match id {
        "adakv-expected-attention" => {
            let min = kept.iter().copied().min().unwrap_or(0);
            let max = kept.iter().copied().max().unwrap_or(0);
            let mean = kept.iter().sum::<usize>() as f64 / kept.len().max(1) as f64;
            Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (kvpress's AdaKV, safeguard α = {})",
                settings.get(&SAFEGUARD)
            ))
        }
        "streamingllm" if budget < sinks(settings) => Some(format!(
            "budget {budget} is below the {} sink tokens: clamped to the first {budget} entries",
            sinks(settings)
        )),
        "pyramidkv" => {
            let per_layer: Vec<usize> = kept
                .outer_iter()
                .map(|row| row.iter().copied().max().unwrap_or(0))
                .collect();
            let (_, schedule) = layer_budgets(n, budget, w, per_layer.len(), settings.get(&BETA));
            match schedule {
                Schedule::Uniform => Some(format!(
                    "prompt of {n} < 2·(budget − window) = {}: uniform SnapKV budgets (KVCache-Factory's fallback)",
                    2 * (budget - w)
                )),
                Schedule::Pyramid => {
                    let mean =
                        per_layer.iter().sum::<usize>() as f64 / per_layer.len().max(1) as f64;
                    Some(format!(
                        "per-layer budgets {} (first layer) to {} (last layer), mean {mean:.1} (KVCache-Factory's integer schedule)",
                        per_layer.first().copied().unwrap_or(0),
                        per_layer.last().copied().unwrap_or(0),
                    ))
                }
            }
        }
        "kvzip" => {
            let min = kept.iter().copied().min().unwrap_or(0);
            let max = kept.iter().copied().max().unwrap_or(0);
            let mean = kept.iter().sum::<usize>() as f64 / kept.len().max(1) as f64;
            Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (one share over every layer and head)"
            ))
        }
        "adakv" => {
            let min = kept.iter().copied().min().unwrap_or(0);
            let max = kept.iter().copied().max().unwrap_or(0);
            let mean = kept.iter().sum::<usize>() as f64 / kept.len().max(1) as f64;
            Some(format!(
                "per-head budgets {min} to {max}, mean {mean:.1} (Ada-KV, floor α = {})",
                settings.get(&FLOOR_ALPHA)
            ))
        }
        _ => None,
    }
}

/// Window scores over `[0, n − w)`, pooled with `pooling`.
fn window_scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
    pooling: Pooling,
) -> Result<ScoreGrid, PolicyError> {
    let sums = inputs.source_sums(QuerySource::Window, "the reference")?;
    scored_range(inputs, sums.view(), pooling, settings)
}

/// `raw` restricted to `[0, n − w)`, pooled and reduced.
fn scored_range(
    inputs: &ScoreInputs,
    raw: ndarray::ArrayView3<f32>,
    pooling: Pooling,
    settings: &PolicySettings,
) -> Result<ScoreGrid, PolicyError> {
    let end = inputs.prompt_len() - inputs.window(settings);
    inputs.ranked_scores(raw, end, pooling, settings)
}

/// Judge Q: (a) the top `B` of the whole prompt, or (b) the window plus the top `B − w` of
/// `[0, n − w)`, by the soft rows (the window's in the first `judgeq_window_layers` layers).
fn judgeq(
    inputs: &ScoreInputs,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let n = inputs.prompt_len();
    let (w, scores) = judgeq_scores(inputs, settings)?;
    Ok(window_and_top(&scores, n, w, |_, _| budget - w))
}

/// The window Judge Q keeps (0 in variant (a)) and its scores (row sums) over the rest.
fn judgeq_scores(
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<(usize, ScoreGrid), PolicyError> {
    let mut sums = inputs.source_sums(QuerySource::Soft, "Judge Q")?.clone();
    let window_layers = settings.get(&WINDOW_LAYERS) as usize;
    if window_layers > 0 {
        let window = inputs.source_sums(QuerySource::Window, "Judge Q")?;
        let layers = window_layers.min(sums.dim().0);
        sums.slice_mut(s![..layers, .., ..])
            .assign(&window.slice(s![..layers, .., ..]));
    }
    let n = inputs.prompt_len();
    if settings.get(&KEEP_WINDOW) {
        let w = inputs.window(settings);
        Ok((
            w,
            scored_range(inputs, sums.view(), settings.pooling, settings)?,
        ))
    } else {
        Ok((
            0,
            inputs.ranked_scores(sums.view(), n, settings.pooling, settings)?,
        ))
    }
}

/// Row sums over positions `[0, m)` as kvpress's means (divided by `rows(layer)`), widened to
/// `n` positions: those after `m` (kept by the base policy) at the layer's highest mean plus one.
fn kvpress_scale(sums: &ScoreGrid, n: usize, rows: impl Fn(usize) -> usize) -> ScoreGrid {
    let (layers, heads, m) = sums.dim();
    Array3::from_shape_fn((layers, heads, n), |(l, h, j)| {
        let divisor = rows(l).max(1) as f32;
        if j < m {
            return sums[[l, h, j]] / divisor;
        }
        let mut highest = f32::NEG_INFINITY;
        for hh in 0..heads {
            for jj in 0..m {
                highest = highest.max(sums[[l, hh, jj]] / divisor);
            }
        }
        if highest.is_finite() {
            highest + 1.0
        } else {
            1.0
        }
    })
}

/// kvpress's `CriticalKVPress` at `budget` over the base scores `base` (`[layers, heads, n]`):
/// in every row, the top `max(1, ⌊B · ratio⌋)` by base score, then the top of the others by
/// `(score + ε) · ‖W_o v‖₁` (per query head, or its mean over the GQA group per KV head) until
/// `B` are kept; equal scores to the earlier position.
fn criticalkv(
    inputs: &ScoreInputs,
    base: &ScoreGrid,
    budget: usize,
    settings: &PolicySettings,
) -> Result<KeepMask, PolicyError> {
    let norms = inputs.projected_value_norms("the reference")?;
    let (layers, heads, n) = base.dim();
    let group = inputs.query_heads() / inputs.kv_heads();
    let per_query_head = matches!(
        settings.granularity,
        crate::attention::Granularity::QueryHead
    );
    let epsilon = settings.get(&critical::EPSILON) as f32;
    let ratio = settings.get(&critical::FIRST_STAGE_RATIO);
    let first_stage = if ratio > 0.0 {
        ((budget as f64 * ratio).floor() as usize)
            .max(1)
            .min(budget)
    } else {
        0
    };
    let mut mask = Array3::from_elem((layers, heads, n), false);
    for l in 0..layers {
        for h in 0..heads {
            let norm = |j: usize| {
                if per_query_head {
                    norms[[l, h, j]]
                } else {
                    (0..group)
                        .map(|q| norms[[l, h * group + q, j]])
                        .sum::<f32>()
                        / group as f32
                }
            };
            let by_base = sorted_desc((0..n).map(|j| base[[l, h, j]]).collect());
            for &j in by_base.iter().take(first_stage) {
                mask[[l, h, j]] = true;
            }
            let rescaled: Vec<f32> = (0..n)
                .map(|j| (base[[l, h, j]] + epsilon) * norm(j))
                .collect();
            let rest = sorted_desc(rescaled)
                .into_iter()
                .filter(|&j| !mask[[l, h, j]])
                .take(budget - first_stage)
                .collect::<Vec<_>>();
            for j in rest {
                mask[[l, h, j]] = true;
            }
        }
    }
    Ok(mask)
}

/// Positions of `scores` by score, highest first, the earlier position first among equals.
fn sorted_desc(scores: Vec<f32>) -> Vec<usize> {
    let mut positions: Vec<usize> = (0..scores.len()).collect();
    positions.sort_by(|&a, &b| {
        order_key(scores[b])
            .cmp(&order_key(scores[a]))
            .then(a.cmp(&b))
    });
    positions
}

/// Ada-KV's entries kept per `[layer, head]` (window included) for `w < B < n`, by sorting every
/// `(head, position)` of a layer.
pub(crate) fn ada_head_budgets(
    scores: &ScoreGrid,
    budget: usize,
    window: usize,
    alpha: f64,
) -> Array2<usize> {
    let (layers, heads, scored) = scores.dim();
    let base = budget - window;
    let floor = (base as f64 * alpha).floor() as f32;
    let keep_share = (1.0 - alpha) as f32;
    let mut kept = Array2::zeros((layers, heads));
    for l in 0..layers {
        let mut entries: Vec<(u32, usize, usize)> = (0..heads)
            .flat_map(|h| (0..scored).map(move |j| (h, j)))
            .map(|(h, j)| (!order_key(scores[[l, h, j]]), j, h))
            .collect();
        entries.sort_unstable();
        let mut counts = vec![0; heads];
        for &(_, _, h) in entries.iter().take(heads * base) {
            counts[h] += 1;
        }
        for (h, &c) in counts.iter().enumerate() {
            let cap = (c as f32 * keep_share + floor).round_ties_even().max(0.0) as usize;
            kept[[l, h]] = window + cap.min(scored);
        }
    }
    kept
}

/// kvpress's `AdaKVPress` counts per `[layer, head]` (sinks included) for `sinks < B < n`, as
/// kvpress computes them: lift each head's top `max(1, ⌊α·B⌋)` entries (sinks first, they carry
/// the highest scores) above everything, then prune the layer's lowest `H·(n − B)` entries.
/// `scores` covers the positions after the sinks.
pub(crate) fn kvpress_ada_budgets(
    scores: &ScoreGrid,
    budget: usize,
    sinks: usize,
    alpha: f64,
) -> Array2<usize> {
    let (layers, heads, scored) = scores.dim();
    let n = sinks + scored;
    let mut n_safe = (budget as f64 * alpha).floor() as usize;
    if alpha > 0.0 {
        n_safe = n_safe.max(1);
    }
    let mut kept = Array2::zeros((layers, heads));
    for l in 0..layers {
        // (lifted, score key, position, head): higher first, then earlier position, lower head.
        let mut entries: Vec<(bool, u32, usize, usize)> = Vec::new();
        for h in 0..heads {
            let ranked = rank_desc(scores.slice(s![l, h, ..]));
            let mut row: Vec<(u32, usize)> = (0..sinks).map(|p| (u32::MAX, p)).collect();
            row.extend(
                ranked
                    .iter()
                    .map(|&j| (order_key(scores[[l, h, j as usize]]), sinks + j as usize)),
            );
            for (rank, (key, position)) in row.into_iter().enumerate() {
                entries.push((rank < n_safe, key, position, h));
            }
        }
        entries.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        for &(_, _, _, h) in entries.iter().take(heads * budget) {
            kept[[l, h]] += 1;
        }
    }
    debug_assert!(kept.iter().all(|&c| c >= sinks.min(n)));
    kept
}

/// Keeps the first `count` positions of every row.
fn first(layers: usize, heads: usize, n: usize, count: usize) -> KeepMask {
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.slice_mut(s![.., .., ..count.min(n)]).fill(true);
    mask
}

/// Keeps the first `sinks` of `n` positions, plus in row `[l, h]` the `selected(l, h)`
/// highest-scored positions of `scores[l, h]`, which covers `[sinks, n)`.
fn sinks_and_top(
    scores: &ScoreGrid,
    n: usize,
    sinks: usize,
    selected: impl Fn(usize, usize) -> usize,
) -> KeepMask {
    let (layers, heads, _) = scores.dim();
    let mut mask = first(layers, heads, n, sinks);
    for l in 0..layers {
        for h in 0..heads {
            let ranked = rank_desc(scores.slice(s![l, h, ..]));
            for &j in ranked.iter().take(selected(l, h)) {
                mask[[l, h, sinks + j as usize]] = true;
            }
        }
    }
    mask
}

/// Keeps every entry.
fn all(layers: usize, heads: usize, n: usize) -> KeepMask {
    Array3::from_elem((layers, heads, n), true)
}

/// Keeps the last `count` positions of every row.
fn recent(layers: usize, heads: usize, n: usize, count: usize) -> KeepMask {
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.slice_mut(s![.., .., n - count.min(n)..]).fill(true);
    mask
}

/// StreamingLLM: positions `[0, min(sinks, B))` and the last `B − min(sinks, B)`.
fn streaming_llm(layers: usize, heads: usize, n: usize, budget: usize, sinks: usize) -> KeepMask {
    let first = sinks.min(budget);
    let mut mask = Array3::from_elem((layers, heads, n), false);
    mask.slice_mut(s![.., .., ..first]).fill(true);
    mask.slice_mut(s![.., .., n - (budget - first)..])
        .fill(true);
    mask
}

/// The first `B` positions of each row's seeded permutation.
fn random_subset(layers: usize, heads: usize, n: usize, budget: usize, seed: u64) -> KeepMask {
    let mut mask = Array3::from_elem((layers, heads, n), false);
    for l in 0..layers {
        for h in 0..heads {
            for &pos in random::permutation(n, seed, l, h).iter().take(budget) {
                mask[[l, h, pos as usize]] = true;
            }
        }
    }
    mask
}

/// Keeps the last `window` of `n` positions, plus in row `[l, h]` the `selected(l, h)`
/// highest-scored positions of `scores[l, h]`, which covers the scored range `[0, n − window)`.
fn window_and_top(
    scores: &ScoreGrid,
    n: usize,
    window: usize,
    selected: impl Fn(usize, usize) -> usize,
) -> KeepMask {
    let (layers, heads, _) = scores.dim();
    let mut mask = recent(layers, heads, n, window);
    for l in 0..layers {
        for h in 0..heads {
            let ranked = rank_desc(scores.slice(s![l, h, ..]));
            for &pos in ranked.iter().take(selected(l, h)) {
                mask[[l, h, pos as usize]] = true;
            }
        }
    }
    mask
}

/// Keeps the `count` highest-scored positions of every row of `scores` (the whole prompt).
fn top(scores: &ScoreGrid, count: usize) -> KeepMask {
    let n = scores.dim().2;
    window_and_top(scores, n, 0, |_, _| count)
}

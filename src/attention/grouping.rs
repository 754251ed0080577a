//! Granularity of selection: per query head, or per KV head with the scores of one GQA group's
//! query heads reduced to one.
//!
//! Query heads follow `repeat_kv`'s layout: KV head `k` serves query heads `k·g .. (k+1)·g`,
//! `g = query_heads / kv_heads`.
//!
//! The references reduce a group at different points: Ada-KV (`gqa_support`) reduces the raw
//! window scores and pools afterwards, kvpress pools each query head and averages afterwards.
//! Mean-reduction commutes with average-pooling and max-reduction with max-pooling, so the order
//! only matters for mean with max-pooling and max with average-pooling. [`GroupOrder`] chooses;
//! the default is [`GroupOrder::BeforePooling`] (Ada-KV).

use ndarray::{Array3, ArrayView3, s};
use serde::{Deserialize, Serialize};

use super::{Pooling, ScoreGrid};

/// How the scores of one GQA group's query heads become one KV-head score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupReduce {
    /// Mean over the group (kvpress, Ada-KV `gqa_func="mean"`). The default.
    #[default]
    Mean,
    /// Maximum over the group (Ada-KV `gqa_func="max"`).
    Max,
}

/// Which heads own a keep set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Every query head keeps its own set, and the cache stores one copy per query head
    /// (SnapKV, KVCache-Factory and the Judge Q authors' code run `repeat_kv` before selection).
    /// The default.
    #[default]
    QueryHead,
    /// Every KV head keeps one set shared by its group, from the group's reduced scores
    /// (Ada-KV `gqa_support`, kvpress); the cache stays at KV-head size.
    KvHead(GroupReduce),
}

impl Granularity {
    /// Number of heads that own a keep set.
    pub fn heads(self, query_heads: usize, kv_heads: usize) -> usize {
        match self {
            Granularity::QueryHead => query_heads,
            Granularity::KvHead(_) => kv_heads,
        }
    }

    /// Short name for tables and file names: `query-head`, `kv-head-mean`, `kv-head-max`.
    pub fn label(self) -> &'static str {
        match self {
            Granularity::QueryHead => "query-head",
            Granularity::KvHead(GroupReduce::Mean) => "kv-head-mean",
            Granularity::KvHead(GroupReduce::Max) => "kv-head-max",
        }
    }
}

impl std::str::FromStr for Granularity {
    type Err = String;

    /// Parses [`Granularity::label`]'s names; `kv-head` alone means `kv-head-mean`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "query-head" => Ok(Granularity::QueryHead),
            "kv-head" | "kv-head-mean" => Ok(Granularity::KvHead(GroupReduce::Mean)),
            "kv-head-max" => Ok(Granularity::KvHead(GroupReduce::Max)),
            _ => Err(format!(
                "`{s}` is not a granularity: use query-head, kv-head-mean or kv-head-max"
            )),
        }
    }
}

/// Where the group reduction happens relative to pooling (only matters at KV-head granularity).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupOrder {
    /// Reduce the raw scores, then pool (Ada-KV). The default.
    #[default]
    BeforePooling,
    /// Pool every query head, then reduce (kvpress).
    AfterPooling,
}

/// Reduces `[layers, query_heads, n]` scores to `[layers, kv_heads, n]`, one value per GQA group.
///
/// Returns `None` when `kv_heads` is 0 or does not divide the number of query heads.
pub fn reduce_groups(
    scores: ArrayView3<f32>,
    kv_heads: usize,
    reduce: GroupReduce,
) -> Option<ScoreGrid> {
    let (layers, query_heads, n) = scores.dim();
    if kv_heads == 0 || !query_heads.is_multiple_of(kv_heads) {
        return None;
    }
    let group = query_heads / kv_heads;
    let mut reduced = Array3::<f32>::zeros((layers, kv_heads, n));
    for (mut out_layer, in_layer) in reduced.outer_iter_mut().zip(scores.outer_iter()) {
        for (k, mut out) in out_layer.outer_iter_mut().enumerate() {
            let members = in_layer.slice(s![k * group..(k + 1) * group, ..]);
            match reduce {
                GroupReduce::Mean => {
                    for member in members.outer_iter() {
                        out += &member;
                    }
                    out /= group as f32;
                }
                GroupReduce::Max => {
                    out.fill(f32::NEG_INFINITY);
                    for member in members.outer_iter() {
                        out.zip_mut_with(&member, |o, &m| *o = o.max(m));
                    }
                }
            }
        }
    }
    Some(reduced)
}

/// The scores a policy ranks with: `[layers, query_heads, n]` raw scores (already restricted to
/// the scored key range) pooled along the key axis and, at KV-head granularity, reduced per
/// group in the given order. Returns `[layers, heads, n]`, heads as `granularity` says.
///
/// Returns `None` when `kv_heads` is 0 or does not divide the number of query heads.
pub fn head_scores(
    raw: ArrayView3<f32>,
    pooling: Pooling,
    granularity: Granularity,
    order: GroupOrder,
    kv_heads: usize,
) -> Option<ScoreGrid> {
    match granularity {
        Granularity::QueryHead => Some(pooling.grid(raw)),
        Granularity::KvHead(reduce) => match order {
            GroupOrder::BeforePooling => {
                let reduced = reduce_groups(raw, kv_heads, reduce)?;
                Some(pooling.grid(reduced.view()))
            }
            GroupOrder::AfterPooling => reduce_groups(pooling.grid(raw).view(), kv_heads, reduce),
        },
    }
}

/// The head that owns query head `query_head`'s keep set: itself at query-head granularity,
/// its KV head (`query_head / group`) at KV-head granularity.
pub fn owning_head(granularity: Granularity, query_head: usize, group: usize) -> usize {
    match granularity {
        Granularity::QueryHead => query_head,
        Granularity::KvHead(_) => query_head / group.max(1),
    }
}

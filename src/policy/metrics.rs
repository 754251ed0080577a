//! How good a kept set is: hit rate against the Oracle, share of the decoded tokens' attention
//! mass kept, overlap between policies, and the KV bytes kept.
//!
//! - **Hit rate** (the Judge Q paper's "critical KV hit rate"), per `[layer, head]`:
//!   `|S ∩ S_oracle| / |S_oracle|`, with `S_oracle` the Oracle's kept set at the same budget and
//!   granularity (`min(B, n)` entries).
//! - **Attention mass kept**, per `[layer, query head]`: the share of the decoded tokens' attention
//!   over the prompt that falls on kept entries, `Σ_{j∈S} d_j / Σ_j d_j` with `d` the decoded rows
//!   summed; at KV-head granularity a query head uses its group's mask. A head whose decoded rows
//!   hold no prompt mass counts as 1.
//! - **Overlap** between two masks: the Jaccard index `|A ∩ B| / |A ∪ B|`.
//! - **KV bytes**: kept entries summed over layers and the heads the granularity stores, times
//!   the bytes of one entry (`ModelInfo::kv_entry_bytes`). Per-query-head storage holds
//!   `query_heads / kv_heads` times more than per-KV-head storage.

use ndarray::{Array2, ArrayView2, Axis, Zip};

use super::{Budget, PolicyError, PolicyId, PolicySettings, ScoreInputs, Selection, select};
use crate::attention::{KeepMask, QuerySource, owning_head};

/// Metrics of one policy at one budget.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyMetrics {
    /// The policy.
    pub policy: PolicyId,
    /// The budget.
    pub budget: Budget,
    /// `[layers, heads]` (heads as the granularity says): share of the Oracle's kept set kept.
    pub hit_rate: Array2<f32>,
    /// `[layers, query_heads]`: share of the decoded tokens' prompt attention on kept entries.
    pub mass_kept: Array2<f32>,
    /// Mean of [`Self::hit_rate`] over layers and heads.
    pub mean_hit_rate: f32,
    /// Mean of [`Self::mass_kept`] over layers and query heads.
    pub mean_mass_kept: f32,
    /// Bytes of the kept KV entries over every layer and stored head.
    pub kv_bytes: usize,
    /// The selection's note (clamps, fallbacks, actual budgets).
    pub note: Option<String>,
}

/// Mean of every element (0 for an empty array).
pub(crate) fn mean(values: ArrayView2<f32>) -> f32 {
    if values.is_empty() {
        0.0
    } else {
        (values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64) as f32
    }
}

fn same_shape(a: &KeepMask, b: &KeepMask) -> Result<(), PolicyError> {
    if a.dim() == b.dim() {
        Ok(())
    } else {
        Err(PolicyError::Shape {
            what: "second keep mask".to_owned(),
            expected: a.shape().to_vec(),
            found: b.shape().to_vec(),
        })
    }
}

fn jaccard(both: usize, either: usize) -> f32 {
    if either == 0 {
        1.0
    } else {
        both as f32 / either as f32
    }
}

/// Jaccard overlap of two masks over every layer, head and position (1 when both are empty).
pub fn overlap(a: &KeepMask, b: &KeepMask) -> Result<f32, PolicyError> {
    same_shape(a, b)?;
    let (mut both, mut either) = (0usize, 0usize);
    Zip::from(a).and(b).for_each(|&x, &y| {
        both += usize::from(x && y);
        either += usize::from(x || y);
    });
    Ok(jaccard(both, either))
}

/// Jaccard overlap of two masks per `[layer, head]`.
pub fn overlap_by_head(a: &KeepMask, b: &KeepMask) -> Result<Array2<f32>, PolicyError> {
    same_shape(a, b)?;
    let (layers, heads, _) = a.dim();
    Ok(Array2::from_shape_fn((layers, heads), |(l, h)| {
        let (x, y) = (a.index_axis(Axis(0), l), b.index_axis(Axis(0), l));
        let (x, y) = (x.index_axis(Axis(0), h), y.index_axis(Axis(0), h));
        let both = Zip::from(&x)
            .and(&y)
            .fold(0, |acc, &p, &q| acc + usize::from(p && q));
        let either = Zip::from(&x)
            .and(&y)
            .fold(0, |acc, &p, &q| acc + usize::from(p || q));
        jaccard(both, either)
    }))
}

/// Metrics of `selection` computed directly from masks (the plain reference path;
/// [`super::PolicyBank::evaluate`] gives the same numbers for every policy at once).
pub fn evaluate_selection(
    selection: &Selection,
    inputs: &ScoreInputs,
    settings: &PolicySettings,
) -> Result<PolicyMetrics, PolicyError> {
    let oracle = select(PolicyId::ORACLE, inputs, selection.budget, settings)?;
    same_shape(&oracle.mask, &selection.mask)?;
    let decoded = inputs.source_sums(QuerySource::Decoded, "the attention mass kept")?;
    let (layers, heads, _) = selection.mask.dim();
    let group = inputs.query_heads() / inputs.kv_heads().max(1);
    let hit_rate = Array2::from_shape_fn((layers, heads), |(l, h)| {
        let (mine, theirs) = (
            selection.mask.index_axis(Axis(0), l),
            oracle.mask.index_axis(Axis(0), l),
        );
        let (mine, theirs) = (mine.index_axis(Axis(0), h), theirs.index_axis(Axis(0), h));
        let hits = Zip::from(&mine)
            .and(&theirs)
            .fold(0, |acc, &m, &o| acc + usize::from(m && o));
        hits as f32 / theirs.iter().filter(|&&o| o).count().max(1) as f32
    });
    let mass_kept = Array2::from_shape_fn((layers, inputs.query_heads()), |(l, q)| {
        let mask = selection.mask.index_axis(Axis(0), l);
        let mask = mask.index_axis(Axis(0), owning_head(settings.granularity, q, group));
        let mass = decoded.index_axis(Axis(0), l);
        let mass = mass.index_axis(Axis(0), q);
        let total: f64 = mass.iter().map(|&m| f64::from(m)).sum();
        let kept: f64 = Zip::from(&mask)
            .and(&mass)
            .fold(0.0, |acc, &k, &m| if k { acc + f64::from(m) } else { acc });
        if total > 0.0 {
            (kept / total) as f32
        } else {
            1.0
        }
    });
    Ok(PolicyMetrics {
        policy: selection.policy,
        budget: selection.budget,
        mean_hit_rate: mean(hit_rate.view()),
        mean_mass_kept: mean(mass_kept.view()),
        hit_rate,
        mass_kept,
        kv_bytes: selection.kept.sum() * inputs.kv_entry_bytes(),
        note: selection.note.clone(),
    })
}

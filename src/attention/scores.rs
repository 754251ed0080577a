//! The attention each prompt key receives from one query source.

use ndarray::{Array3, ArrayView4, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ScoreGrid;

/// How the query rows of one source are combined into one score per key.
///
/// Sum and mean rank keys identically (they differ by the positive factor `1/n_queries`);
/// SnapKV, PyramidKV and H2O sum, Ada-KV and kvpress average, Judge Q's training loss averages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowReduce {
    /// Sum over the query rows (SnapKV's `attn_weights[..., -w:, :].sum(dim=-2)`). The default.
    #[default]
    Sum,
    /// Mean over the query rows.
    Mean,
}

/// Reduces `rows` (`[layers, query_heads, n_queries, n_prompt]`) over the query axis, giving the
/// attention each prompt key receives: `[layers, query_heads, n_prompt]`.
///
/// Rows are summed in query order in `f32`. With no query rows every score is 0, for
/// [`RowReduce::Mean`] as well.
pub fn source_scores(rows: ArrayView4<f32>, reduce: RowReduce) -> ScoreGrid {
    let (layers, heads, n_queries, n_prompt) = rows.dim();
    let mut scores = Array3::<f32>::zeros((layers, heads, n_prompt));
    let scale = match reduce {
        RowReduce::Sum => 1.0,
        RowReduce::Mean => 1.0 / n_queries.max(1) as f32,
    };
    scores
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(rows.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut layer_scores, layer_rows)| {
            for (mut head_scores, head_rows) in
                layer_scores.outer_iter_mut().zip(layer_rows.outer_iter())
            {
                for row in head_rows.outer_iter() {
                    head_scores += &row;
                }
                if scale != 1.0 {
                    head_scores *= scale;
                }
            }
        });
    scores
}

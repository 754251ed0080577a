//! Which layer and head a view shows (the explorer's panels, exported figures), and the
//! queries × keys matrix that selection gives.

use ndarray::{Array2, ArrayView4, Axis, Zip};
use serde::{Deserialize, Serialize};

/// One layer (or head), or all of them reduced together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Pick {
    /// This index.
    One(usize),
    /// Every index, combined with the view's [`Reduce`].
    All,
}

impl Pick {
    /// The index, clamped to `count` entries; `None` for [`Pick::All`].
    pub fn index(self, count: usize) -> Option<usize> {
        match self {
            Pick::One(i) => Some(i.min(count.saturating_sub(1))),
            Pick::All => None,
        }
    }
}

/// How several heads or layers are combined into one map.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Reduce {
    /// Average attention.
    #[default]
    Mean,
    /// Strongest attention.
    Max,
}

impl Reduce {
    /// Every choice, in display order.
    pub const ALL: [Reduce; 2] = [Reduce::Mean, Reduce::Max];

    /// Lower-case name for labels and file names.
    pub fn label(self) -> &'static str {
        match self {
            Reduce::Mean => "mean",
            Reduce::Max => "max",
        }
    }
}

/// The layer and head the three panels show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HeadView {
    /// Which layer.
    pub layer: Pick,
    /// Which query head.
    pub head: Pick,
    /// How `All` is reduced.
    pub reduce: Reduce,
}

impl Default for HeadView {
    fn default() -> Self {
        Self {
            layer: Pick::One(0),
            head: Pick::All,
            reduce: Reduce::Mean,
        }
    }
}

impl HeadView {
    /// A short description such as `layer 3, head 2` or `mean over heads of layer 3`.
    pub fn describe(&self, layers: usize, heads: usize) -> String {
        let reduce = self.reduce.label();
        match (self.layer.index(layers), self.head.index(heads)) {
            (Some(l), Some(h)) => format!("layer {l}, head {h}"),
            (Some(l), None) => format!("{reduce} over heads of layer {l}"),
            (None, Some(h)) => format!("{reduce} over layers of head {h}"),
            (None, None) => format!("{reduce} over all layers and heads"),
        }
    }

    /// Multiply-adds needed to build the matrix for rows of this shape (to decide whether to
    /// build it off the UI thread).
    pub fn cost(&self, rows_dim: (usize, usize, usize, usize)) -> usize {
        let (layers, heads, queries, keys) = rows_dim;
        let l = if self.layer == Pick::All { layers } else { 1 };
        let h = if self.head == Pick::All { heads } else { 1 };
        l * h * queries * keys
    }
}

/// The `[n_queries, n_prompt]` matrix the view selects from `[layers, heads, n_queries,
/// n_prompt]` rows, reducing over every axis picked as [`Pick::All`].
pub fn view_matrix(rows: ArrayView4<f32>, view: HeadView) -> Array2<f32> {
    let (layers, heads, queries, keys) = rows.dim();
    if layers == 0 || heads == 0 {
        return Array2::zeros((queries, keys));
    }
    let layer_range = match view.layer.index(layers) {
        Some(l) => l..l + 1,
        None => 0..layers,
    };
    let head_range = match view.head.index(heads) {
        Some(h) => h..h + 1,
        None => 0..heads,
    };
    let count = (layer_range.len() * head_range.len()) as f32;
    let mut out: Option<Array2<f32>> = None;
    for l in layer_range {
        let layer = rows.index_axis(Axis(0), l);
        for h in head_range.clone() {
            let map = layer.index_axis(Axis(0), h);
            match out.as_mut() {
                None => out = Some(map.to_owned()),
                Some(acc) => match view.reduce {
                    Reduce::Mean => *acc += &map,
                    Reduce::Max => Zip::from(acc).and(&map).for_each(|a, &v| *a = a.max(v)),
                },
            }
        }
    }
    let mut out = out.unwrap_or_else(|| Array2::zeros((queries, keys)));
    if view.reduce == Reduce::Mean && count > 1.0 {
        out /= count;
    }
    out
}

/// The score of every key under a view's `[n_queries, n_prompt]` matrix: its rows summed over
/// the queries (for one layer and head, the source's scores before pooling, as SnapKV, Judge Q
/// and the oracle rank them).
pub fn key_scores(matrix: &Array2<f32>) -> Vec<f32> {
    matrix.sum_axis(Axis(0)).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn rows() -> Array4<f32> {
        // Value encodes its indices so every reduction can be computed by hand.
        Array4::from_shape_fn((2, 3, 2, 4), |(l, h, q, k)| {
            (l * 1000 + h * 100 + q * 10 + k) as f32
        })
    }

    #[test]
    fn one_layer_one_head_is_a_copy() {
        let view = HeadView {
            layer: Pick::One(1),
            head: Pick::One(2),
            reduce: Reduce::Mean,
        };
        let m = view_matrix(rows().view(), view);
        assert_eq!(m.dim(), (2, 4));
        assert_eq!(m[[1, 3]], 1213.0);
        assert_eq!(m[[0, 0]], 1200.0);
    }

    #[test]
    fn mean_and_max_over_heads_and_layers_match_by_hand() {
        let r = rows();
        let mean_heads = view_matrix(
            r.view(),
            HeadView {
                layer: Pick::One(0),
                head: Pick::All,
                reduce: Reduce::Mean,
            },
        );
        // (0 + 100 + 200) / 3 + q*10 + k
        assert_eq!(mean_heads[[1, 2]], 100.0 + 12.0);
        let max_all = view_matrix(
            r.view(),
            HeadView {
                layer: Pick::All,
                head: Pick::All,
                reduce: Reduce::Max,
            },
        );
        assert_eq!(max_all[[0, 1]], 1201.0);
        let mean_all = view_matrix(
            r.view(),
            HeadView {
                layer: Pick::All,
                head: Pick::All,
                reduce: Reduce::Mean,
            },
        );
        // layers mean 500, heads mean 100
        assert!((mean_all[[1, 3]] - (500.0 + 100.0 + 13.0)).abs() < 1e-3);
    }

    #[test]
    fn key_scores_of_one_head_are_the_sources_scores() {
        let r = rows();
        let view = HeadView {
            layer: Pick::One(1),
            head: Pick::One(2),
            reduce: Reduce::Mean,
        };
        let scores = key_scores(&view_matrix(r.view(), view));
        let reference = crate::attention::source_scores(r.view(), crate::attention::RowReduce::Sum);
        assert_eq!(scores, reference.slice(ndarray::s![1, 2, ..]).to_vec());
        // By hand: queries 0 and 1 of layer 1, head 2 at key 3 are 1203 and 1213.
        assert_eq!(scores[3], 2416.0);
    }

    #[test]
    fn out_of_range_picks_are_clamped() {
        let view = HeadView {
            layer: Pick::One(9),
            head: Pick::One(9),
            reduce: Reduce::Mean,
        };
        assert_eq!(view_matrix(rows().view(), view)[[0, 0]], 1200.0);
        assert_eq!(view.describe(2, 3), "layer 1, head 2");
    }
}

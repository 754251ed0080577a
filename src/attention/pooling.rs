//! Smoothing of scores along the key axis, as SnapKV's `F.max_pool1d` / `F.avg_pool1d` with
//! `stride = 1` and `padding = kernel / 2`.
//!
//! At the edges the window runs past the scored range and meets padding:
//! - max-pooling pads with −∞, so an edge output is the maximum of the in-range values only;
//! - average-pooling pads with zeros **and counts them** (PyTorch's default
//!   `count_include_pad=True`), so an edge output is the in-range sum divided by the full kernel,
//!   which pulls the first and last `kernel / 2` scores toward zero.
//!
//! Kernels must be odd (the output then has the input's length, as in SnapKV, whose kernels
//! are 5 and 7); `PolicySettings` rejects even ones. A kernel of 0 or 1 leaves scores unchanged.

use ndarray::{ArrayView3, ArrayViewMut1, Axis, Zip};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ScoreGrid;

/// Smoothing of scores along the key axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Scores are used as they are.
    None,
    /// Maximum over a centred window of `kernel` keys (edges padded with −∞).
    Max {
        /// Window length, odd.
        kernel: usize,
    },
    /// Mean over a centred window of `kernel` keys (edges padded with zeros that count).
    Avg {
        /// Window length, odd.
        kernel: usize,
    },
}

impl Default for Pooling {
    /// Max-pooling with kernel 7, as the Judge Q group's and SnapKV's LongBench configurations.
    fn default() -> Self {
        Pooling::Max { kernel: 7 }
    }
}

impl std::str::FromStr for Pooling {
    type Err = String;

    /// Parses [`Pooling::label`]'s names: `none`, `max7`, `avg5`, ...
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        let kernel = |digits: &str| {
            digits.parse::<usize>().map_err(|_| {
                format!("`{s}` is not a pooling: use none, maxK or avgK (e.g. max7, avg5)")
            })
        };
        match name.as_str() {
            "none" => Ok(Pooling::None),
            _ if name.starts_with("max") => Ok(Pooling::Max {
                kernel: kernel(&name[3..])?,
            }),
            _ if name.starts_with("avg") => Ok(Pooling::Avg {
                kernel: kernel(&name[3..])?,
            }),
            _ => Err(format!(
                "`{s}` is not a pooling: use none, maxK or avgK (e.g. max7, avg5)"
            )),
        }
    }
}

impl Pooling {
    /// The window length (1 for [`Pooling::None`]).
    pub fn kernel(self) -> usize {
        match self {
            Pooling::None => 1,
            Pooling::Max { kernel } | Pooling::Avg { kernel } => kernel,
        }
    }

    /// Whether the kernel is one SnapKV's padding keeps the length with: odd, or no pooling.
    pub fn has_valid_kernel(self) -> bool {
        self == Pooling::None || !self.kernel().is_multiple_of(2)
    }

    /// Short name for tables and file names: `none`, `max7`, `avg5`.
    pub fn label(self) -> String {
        match self {
            Pooling::None => "none".to_owned(),
            Pooling::Max { kernel } => format!("max{kernel}"),
            Pooling::Avg { kernel } => format!("avg{kernel}"),
        }
    }

    /// Pools `input` into `output` (same length; extra elements of the longer one are left alone).
    pub fn apply(self, input: &[f32], output: &mut [f32]) {
        let n = input.len().min(output.len());
        let kernel = self.kernel();
        if kernel <= 1 {
            output[..n].copy_from_slice(&input[..n]);
            return;
        }
        let half = kernel / 2;
        for (i, out) in output[..n].iter_mut().enumerate() {
            let start = i.saturating_sub(half);
            let end = (i + kernel - half).min(n);
            let window = &input[start..end];
            *out = match self {
                Pooling::Max { .. } => window.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                Pooling::Avg { .. } => window.iter().sum::<f32>() / kernel as f32,
                Pooling::None => input[i],
            };
        }
    }

    /// Pools one row of scores in place.
    fn apply_in_place(self, mut row: ArrayViewMut1<f32>) {
        if self.kernel() <= 1 {
            return;
        }
        let input = row.to_vec();
        match row.as_slice_mut() {
            Some(slice) => self.apply(&input, slice),
            None => {
                let mut pooled = vec![0.0; input.len()];
                self.apply(&input, &mut pooled);
                Zip::from(&mut row)
                    .and(&pooled[..])
                    .for_each(|o, &p| *o = p);
            }
        }
    }

    /// Pools every `[layer, head]` row of a score grid along the key axis.
    pub fn grid(self, scores: ArrayView3<f32>) -> ScoreGrid {
        let mut pooled = scores.as_standard_layout().into_owned();
        if self.kernel() > 1 {
            pooled
                .axis_iter_mut(Axis(0))
                .into_par_iter()
                .for_each(|mut layer| {
                    for row in layer.outer_iter_mut() {
                        self.apply_in_place(row);
                    }
                });
        }
        pooled
    }
}

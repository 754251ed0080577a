//! Keep masks as the attention kernels read them: one row of booleans per layer and query head.

use candle_core::{DType, Device, Tensor};

use super::config::ModelConfig;
use super::error::{ModelError, Result};
use crate::attention::KeepMask;

/// A validated [`KeepMask`] over the first `columns()` cache positions, readable per layer and
/// query head whether it was given per query head or per KV head.
#[derive(Clone, Debug)]
pub(crate) struct KeepColumns {
    flat: Vec<bool>,
    mask_heads: usize,
    columns: usize,
    group: usize,
    per_query_head: bool,
}

impl KeepColumns {
    /// Checks `mask` against the model (`[layers, heads, n]` with heads = query or KV heads) and
    /// the cache length it applies to.
    pub fn new(mask: &KeepMask, config: &ModelConfig, cache_len: usize) -> Result<Self> {
        let (layers, mask_heads, columns) = mask.dim();
        let per_query_head = mask_heads == config.num_heads;
        if layers != config.num_layers || !(per_query_head || mask_heads == config.num_kv_heads) {
            return Err(ModelError::InvalidArgument(format!(
                "a keep mask of shape [{layers}, {mask_heads}, {columns}] does not fit a model with \
                 {} layers, {} query heads and {} KV heads",
                config.num_layers, config.num_heads, config.num_kv_heads
            )));
        }
        if columns > cache_len {
            return Err(ModelError::InvalidArgument(format!(
                "the keep mask covers {columns} positions but the cache holds only {cache_len}"
            )));
        }
        let flat = mask.iter().copied().collect();
        Ok(Self {
            flat,
            mask_heads,
            columns,
            group: config.group_size(),
            per_query_head,
        })
    }

    /// Cache positions the mask covers; later positions are always kept.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Which of the first `columns()` keys query head `head` of `layer` may attend to.
    pub fn head(&self, layer: usize, head: usize) -> &[bool] {
        let mask_head = if self.per_query_head {
            head
        } else {
            head / self.group
        };
        let start = (layer * self.mask_heads + mask_head) * self.columns;
        &self.flat[start..start + self.columns]
    }

    /// Additive bias `[kv_heads, group, 1, columns]` (0 kept, -inf evicted) for the portable
    /// kernel's scores of one layer.
    pub fn bias(
        &self,
        layer: usize,
        kv_heads: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let heads = kv_heads * self.group;
        let values: Vec<f32> = (0..heads)
            .flat_map(|h| {
                self.head(layer, h)
                    .iter()
                    .map(|&keep| if keep { 0.0 } else { f32::NEG_INFINITY })
            })
            .collect();
        Ok(
            Tensor::from_vec(values, (kv_heads, self.group, 1, self.columns), device)?
                .to_dtype(dtype)?,
        )
    }
}

//! The key/value cache: one preallocated buffer per layer, written in place.

use candle_core::Tensor;

use super::error::{ModelError, Result};
use super::transformer::Transformer;

/// Keys and values of one layer, each `[kv_heads, capacity, head_dim]`.
#[derive(Debug)]
pub(crate) struct LayerCache {
    /// Rotated keys.
    pub keys: Tensor,
    /// Values.
    pub values: Tensor,
}

/// Keys and values of every position run so far, for every layer.
///
/// Buffers are allocated once at [`Transformer::new_cache`]; a forward pass writes its rows in
/// place at `len()..`, so a decoding step costs no copy of the past. Entries beyond
/// [`KvCache::len`] are scratch: [`KvCache::truncate`] only moves the length back, and a pass that
/// fails or is cancelled leaves the length where it was.
///
/// Not `Clone`: candle tensors share storage, and a clone written in place would change the
/// original too.
#[derive(Debug)]
pub struct KvCache {
    pub(crate) layers: Vec<LayerCache>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the buffers can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position from `len` on (e.g. soft tokens appended after the prompt).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(ModelError::InvalidArgument(format!(
                "cannot truncate a KV cache of {} positions to {len}",
                self.len
            )));
        }
        self.len = len;
        Ok(())
    }

    /// Checks that `n` more positions fit.
    pub(crate) fn ensure_room(&self, n: usize) -> Result<()> {
        if self.len + n > self.capacity {
            return Err(ModelError::InvalidArgument(format!(
                "the KV cache holds {} of {} positions and cannot take {n} more",
                self.len, self.capacity
            )));
        }
        Ok(())
    }

    /// Writes keys and values `[kv_heads, n, head_dim]` of `layer` at positions `len()..len() + n`
    /// without changing the length (see [`KvCache::advance`]).
    pub(crate) fn write(&self, layer: usize, keys: &Tensor, values: &Tensor) -> Result<()> {
        let cache = self.layer(layer)?;
        cache.keys.slice_set(keys, 1, self.len)?;
        cache.values.slice_set(values, 1, self.len)?;
        Ok(())
    }

    /// Marks `n` written positions as held.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Buffers of one layer.
    pub(crate) fn layer(&self, layer: usize) -> Result<&LayerCache> {
        self.layers.get(layer).ok_or_else(|| {
            ModelError::InvalidArgument(format!(
                "the KV cache has {} layers, layer {layer} was asked for",
                self.layers.len()
            ))
        })
    }
}

impl Transformer {
    /// A cache for up to `capacity` positions (prompt, soft tokens and generated tokens together).
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        let c = &self.config;
        if capacity > c.max_position_embeddings {
            return Err(ModelError::InvalidArgument(format!(
                "a KV cache of {capacity} positions exceeds the model's context of {}",
                c.max_position_embeddings
            )));
        }
        let shape = (c.num_kv_heads, capacity, c.head_dim);
        let layers = (0..c.num_layers)
            .map(|_| {
                Ok(LayerCache {
                    keys: Tensor::zeros(shape, self.dtype, &self.device)?,
                    values: Tensor::zeros(shape, self.dtype, &self.device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len: 0,
            capacity,
        })
    }
}

//! The key/value cache: one preallocated buffer per layer, written in place.

use candle_core::{D, DType, Tensor};
use ndarray::{Array3, Array4};

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

    /// The post-RoPE keys of positions `[0, len)` in every layer, in f32:
    /// `[layers, kv_heads, len, head_dim]` (a copy; see [`crate::session::PrefillInputs`] for
    /// what it costs).
    pub fn keys_f32(&self, len: usize) -> Result<Array4<f32>> {
        self.copy_f32(len, "keys", |layer| &layer.keys)
    }

    /// The values of positions `[0, len)` in every layer, in f32:
    /// `[layers, kv_heads, len, head_dim]` (a copy, as [`KvCache::keys_f32`]).
    pub fn values_f32(&self, len: usize) -> Result<Array4<f32>> {
        self.copy_f32(len, "values", |layer| &layer.values)
    }

    /// Positions `[0, len)` of the buffer `buffer` picks in every layer, in f32; `what` names it
    /// in errors.
    fn copy_f32(
        &self,
        len: usize,
        what: &str,
        buffer: impl Fn(&LayerCache) -> &Tensor,
    ) -> Result<Array4<f32>> {
        self.check_held(len)?;
        let mut data = Vec::new();
        let mut shape = (self.layers.len(), 0, len, 0);
        for layer in &self.layers {
            let held = buffer(layer).narrow(1, 0, len)?.to_dtype(DType::F32)?;
            let (kv_heads, _, head_dim) = held.dims3()?;
            shape = (self.layers.len(), kv_heads, len, head_dim);
            data.extend(held.flatten_all()?.to_vec1::<f32>()?);
        }
        Array4::from_shape_vec(shape, data)
            .map_err(|e| ModelError::InvalidArgument(format!("cached {what}: {e}")))
    }

    /// The L2 norm of every value of positions `[0, len)` in every layer, computed in f32:
    /// `[layers, kv_heads, len]`.
    pub fn value_norms(&self, len: usize) -> Result<Array3<f32>> {
        self.check_held(len)?;
        let mut data = Vec::new();
        let mut shape = (self.layers.len(), 0, len);
        for layer in &self.layers {
            let values = layer.values.narrow(1, 0, len)?.to_dtype(DType::F32)?;
            let norms = values.sqr()?.sum(D::Minus1)?.sqrt()?;
            shape = (self.layers.len(), norms.dim(0)?, len);
            data.extend(norms.flatten_all()?.to_vec1::<f32>()?);
        }
        Array3::from_shape_vec(shape, data)
            .map_err(|e| ModelError::InvalidArgument(format!("cached value norms: {e}")))
    }

    /// Errors unless the first `len` positions are held.
    fn check_held(&self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(ModelError::InvalidArgument(format!(
                "the KV cache holds {} positions, not the {len} asked for",
                self.len
            )));
        }
        Ok(())
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

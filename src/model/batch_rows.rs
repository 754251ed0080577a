//! The rows of a batched decode that are still running: each row's keep mask over the shared
//! prompt cache and the keys and values of the tokens it generated.
//!
//! Generated keys and values live in small per-row buffers (`[rows, kv_heads, capacity,
//! head_dim]` per layer), never in a copy of the prompt cache. When rows leave the batch every
//! per-row buffer keeps only the rows that go on, so a step never computes a finished row.

use candle_core::{Device, Tensor};

use super::attention::probability_dtype;
use super::cache::LayerCache;
use super::error::{ModelError, Result};
use super::mask::KeepColumns;
use super::transformer::Transformer;

/// Live rows of a batch, in batch order.
pub(crate) struct LiveRows {
    /// Index of each live row in the batch as it started.
    indices: Vec<usize>,
    /// Each live row's keep mask.
    masks: Vec<KeepColumns>,
    /// Per layer, the additive bias `[kv_heads, rows, group, prompt]` (0 kept, `-inf` evicted)
    /// the portable kernel adds to the prompt scores; `None` for the fused kernel, which reads
    /// the masks.
    biases: Option<Vec<Tensor>>,
    /// Per layer, keys and values `[rows, kv_heads, capacity, head_dim]` of generated tokens.
    suffix: Vec<LayerCache>,
    /// Generated tokens held per row.
    generated: usize,
    /// Whether the fused CPU kernel runs the attention.
    fused: bool,
    /// Where the buffers live.
    device: Device,
}

impl LiveRows {
    /// Rows for `masks` (validated against a prompt of `prompt` positions), with room for
    /// `capacity` generated tokens each.
    pub fn new(
        model: &Transformer,
        masks: Vec<KeepColumns>,
        prompt: usize,
        capacity: usize,
        fused: bool,
    ) -> Result<Self> {
        let c = &model.config;
        let shape = (masks.len(), c.num_kv_heads, capacity, c.head_dim);
        let suffix = (0..c.num_layers)
            .map(|_| {
                Ok(LayerCache {
                    keys: Tensor::zeros(shape, model.dtype, &model.device)?,
                    values: Tensor::zeros(shape, model.dtype, &model.device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let biases = if fused {
            None
        } else {
            Some(
                (0..c.num_layers)
                    .map(|layer| prompt_bias(model, &masks, layer, prompt))
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        Ok(Self {
            indices: (0..masks.len()).collect(),
            masks,
            biases,
            suffix,
            generated: 0,
            fused,
            device: model.device.clone(),
        })
    }

    /// Batch index of each live row.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Generated tokens held per row (the next token's offset after the prompt).
    pub fn generated(&self) -> usize {
        self.generated
    }

    /// Whether the fused CPU kernel runs the attention.
    pub fn fused(&self) -> bool {
        self.fused
    }

    /// Each live row's keep mask.
    pub fn masks(&self) -> &[KeepColumns] {
        &self.masks
    }

    /// The portable kernel's prompt bias of `layer` (see [`LiveRows`]).
    pub fn bias(&self, layer: usize) -> Result<&Tensor> {
        self.biases
            .as_ref()
            .and_then(|biases| biases.get(layer))
            .ok_or_else(|| {
                ModelError::InvalidArgument(format!(
                    "no keep-mask bias for layer {layer}: the batch runs the fused kernel"
                ))
            })
    }

    /// Generated keys and values of `layer`.
    pub fn suffix(&self, layer: usize) -> Result<&LayerCache> {
        self.suffix.get(layer).ok_or_else(|| {
            ModelError::InvalidArgument(format!(
                "the batch holds {} layers, layer {layer} was asked for",
                self.suffix.len()
            ))
        })
    }

    /// Writes the keys and values `[rows, kv_heads, head_dim]` of this step's tokens in `layer`
    /// at offset [`LiveRows::generated`], without counting them (see [`LiveRows::advance`]).
    pub fn write(&self, layer: usize, keys: &Tensor, values: &Tensor) -> Result<()> {
        let buffers = self.suffix(layer)?;
        let capacity = buffers.keys.dim(2)?;
        if self.generated >= capacity {
            return Err(ModelError::InvalidArgument(format!(
                "the batch's generated-token buffers hold {capacity} tokens and are full"
            )));
        }
        let (rows, kv_heads, d) = keys.dims3()?;
        let shape = (rows, kv_heads, 1, d);
        buffers
            .keys
            .slice_set(&keys.reshape(shape)?, 2, self.generated)?;
        buffers
            .values
            .slice_set(&values.reshape(shape)?, 2, self.generated)?;
        Ok(())
    }

    /// Counts the token written in every layer.
    pub fn advance(&mut self) {
        self.generated += 1;
    }

    /// Keeps the rows whose flag in `keep` (one per live row) is set.
    pub fn retain(&mut self, keep: &[bool]) -> Result<()> {
        if keep.len() != self.len() {
            return Err(ModelError::InvalidArgument(format!(
                "{} flags for {} live rows",
                keep.len(),
                self.len()
            )));
        }
        if keep.iter().all(|&k| k) {
            return Ok(());
        }
        let positions: Vec<u32> = (0..keep.len() as u32)
            .filter(|&p| keep[p as usize])
            .collect();
        let mut flags = keep.iter();
        self.indices.retain(|_| flags.next() == Some(&true));
        let mut flags = keep.iter();
        self.masks.retain(|_| flags.next() == Some(&true));
        let positions = Tensor::new(positions.as_slice(), &self.device)?;
        for layer in &mut self.suffix {
            layer.keys = layer.keys.index_select(&positions, 0)?;
            layer.values = layer.values.index_select(&positions, 0)?;
        }
        if let Some(biases) = self.biases.as_mut() {
            for bias in biases {
                *bias = bias.index_select(&positions, 1)?;
            }
        }
        Ok(())
    }
}

/// The additive bias `[kv_heads, rows, group, prompt]` of `layer` for `masks`: 0 where a row's
/// query head keeps the prompt key (or the mask does not cover it), `-inf` where it is evicted.
fn prompt_bias(
    model: &Transformer,
    masks: &[KeepColumns],
    layer: usize,
    prompt: usize,
) -> Result<Tensor> {
    let c = &model.config;
    let group = c.group_size();
    let mut values = Vec::with_capacity(c.num_heads * masks.len() * prompt);
    for kv_head in 0..c.num_kv_heads {
        for mask in masks {
            for head in kv_head * group..(kv_head + 1) * group {
                let keep = mask.head(layer, head);
                values.extend(
                    keep.iter()
                        .map(|&kept| if kept { 0.0 } else { f32::NEG_INFINITY }),
                );
                values.extend(std::iter::repeat_n(0f32, prompt - keep.len()));
            }
        }
    }
    let shape = (c.num_kv_heads, masks.len(), group, prompt);
    Ok(Tensor::from_vec(values, shape, &model.device)?.to_dtype(probability_dtype(model.dtype))?)
}

//! The forward pass: embeddings in, last-row logits and captured attention out.
//!
//! - Layer by layer over all input rows: one matmul per projection for the whole input
//!   (dot products instead for at most four rows, i.e. decoding), RMSNorm and rotary embeddings
//!   with candle's fused kernels, SwiGLU and residual adds in place.
//! - Keys and values go straight into the preallocated [`KvCache`]; the input attends to the
//!   cached positions and to itself, causally.
//! - Attention is chunked over query rows, so no `L x L` matrix exists beyond one block of rows:
//!   on the CPU in f32 by the fused kernel (`fused_attention`), elsewhere with candle ops
//!   (`attention`). Both record the requested rows and column sums while the block's
//!   probabilities exist, which is why capture costs next to nothing.
//! - Only the last row goes through the final norm and the LM head.

use candle_core::{DType, Device, Tensor};
use ndarray::{Array3, Array4};

use super::attention::{PortableCall, portable_attention};
use super::cache::KvCache;
use super::capture::{AttentionKernel, Capture, ForwardOptions, ForwardOutput, LayerSink};
use super::chunking::block_rows;
use super::cpu_slice::cpu_f32;
use super::elementwise::{add_residual, swiglu};
use super::error::{ModelError, Result};
use super::few_rows::{self, linear};
use super::fused_attention::{self, AttentionDims};
use super::mask::KeepColumns;
use super::query_moments::{LayerMoments, assemble, layer_moments};
use super::rope::RotaryTables;
use super::transformer::Transformer;
use super::weights::LayerWeights;
use crate::progress::Progress;

/// One forward pass as the layers see it.
pub(crate) struct Pass<'a> {
    /// What to record.
    pub capture: &'a Capture,
    /// Chunking, kernel and the progress stage.
    pub options: &'a ForwardOptions,
    /// Eviction mask, when decoding under eviction.
    pub keep: Option<&'a KeepColumns>,
    /// Whether to report progress per layer.
    pub report: bool,
}

impl Transformer {
    /// Token embeddings `[ids.len(), hidden]` in the model dtype.
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        let vocab = self.config.vocab_size;
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::InvalidArgument(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        let ids = Tensor::new(ids, &self.device)?;
        Ok(self
            .weights
            .embed
            .index_select(&ids, 0)?
            .to_dtype(self.dtype)?)
    }

    /// Runs `input` (`[n, hidden]` embeddings) at positions `cache.len()..`, appends its keys
    /// and values to the cache and records what `capture` asks for (see [`Capture`]).
    pub fn forward(
        &self,
        input: &Tensor,
        cache: &mut KvCache,
        capture: &Capture,
        progress: &dyn Progress,
    ) -> Result<ForwardOutput> {
        self.forward_with(input, cache, capture, &ForwardOptions::default(), progress)
    }

    /// [`Transformer::forward`] with explicit chunking, kernel and progress stage.
    pub fn forward_with(
        &self,
        input: &Tensor,
        cache: &mut KvCache,
        capture: &Capture,
        options: &ForwardOptions,
        progress: &dyn Progress,
    ) -> Result<ForwardOutput> {
        let pass = Pass {
            capture,
            options,
            keep: None,
            report: true,
        };
        self.run(input, cache, &pass, progress)
    }

    /// The forward pass behind [`Transformer::forward`] and decoding.
    pub(crate) fn run(
        &self,
        input: &Tensor,
        cache: &mut KvCache,
        pass: &Pass,
        progress: &dyn Progress,
    ) -> Result<ForwardOutput> {
        let c = &self.config;
        let (n, hidden) = input.dims2().map_err(|_| {
            ModelError::InvalidArgument(format!(
                "input must be [n, {}] embeddings, got {:?}",
                c.hidden_size,
                input.dims()
            ))
        })?;
        if n == 0 || hidden != c.hidden_size {
            return Err(ModelError::InvalidArgument(format!(
                "input must be [n >= 1, {}] embeddings, got [{n}, {hidden}]",
                c.hidden_size
            )));
        }
        self.check_cache(cache)?;
        cache.ensure_room(n)?;
        let past = cache.len();
        let capture = pass.capture;
        let recording = capture.records_anything(n);
        if recording && capture.key_limit > past + n {
            return Err(ModelError::InvalidArgument(format!(
                "cannot capture attention over {} keys: the cache will hold {}",
                capture.key_limit,
                past + n
            )));
        }
        let fused = self.use_fused(pass.options.kernel)?;
        let chunk = pass
            .options
            .query_chunk
            .unwrap_or_else(|| self.automatic_chunk(fused, past + n))
            .max(1);

        let (layers, heads) = (c.num_layers, c.num_heads);
        let captured = capture.row_count(n);
        let key_limit = if recording { capture.key_limit } else { 0 };
        let mut rows = zeroed(
            &[layers, heads, captured, key_limit],
            "captured attention rows",
        )?;
        let sums_shape = [
            layers,
            heads,
            if capture.accumulate { key_limit } else { 0 },
        ];
        let mut accumulated = zeroed(&sums_shape, "accumulated attention")?;
        let per_layer_rows = (heads * captured * key_limit).max(1);
        let per_layer_sums = (heads * key_limit).max(1);
        let mut layer_rows = rows.chunks_mut(per_layer_rows);
        let mut layer_sums = accumulated.chunks_mut(per_layer_sums);

        let mut moments: Option<Vec<LayerMoments>> =
            capture.query_statistics.then(|| Vec::with_capacity(layers));
        let rope = RotaryTables::new(c, past, n, self.dtype, &self.device)?;
        let mut x = input.to_device(&self.device)?.to_dtype(self.dtype)?;
        for (index, weights) in self.weights.layers.iter().enumerate() {
            if progress.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let sink = recording.then(|| LayerSink {
                rows_from: capture.rows_from.min(n),
                key_limit,
                rows: layer_rows.next().unwrap_or_default(),
                accumulated: if capture.accumulate {
                    layer_sums.next()
                } else {
                    None
                },
            });
            let layer = LayerRun {
                index,
                weights,
                rope: &rope,
                past,
                chunk,
                fused,
                keep: pass.keep,
            };
            x = self.layer(&x, cache, &layer, sink, moments.as_mut(), progress)?;
            if pass.report {
                progress.update(&pass.options.stage, index + 1, layers);
            }
        }
        cache.advance(n);

        let last = x.narrow(0, n - 1, 1)?;
        let last = rms_norm(&last, &self.weights.final_norm, c.rms_norm_eps)?;
        let last_logits = few_rows::project(&last, &self.weights.lm_head, None)?
            .squeeze(0)?
            .to_dtype(DType::F32)?;
        let rows = (captured > 0)
            .then(|| Array4::from_shape_vec((layers, heads, captured, key_limit), rows))
            .transpose()
            .map_err(|e| ModelError::InvalidArgument(format!("captured rows: {e}")))?;
        let accumulated = capture
            .accumulate
            .then(|| Array3::from_shape_vec((layers, heads, key_limit), accumulated))
            .transpose()
            .map_err(|e| ModelError::InvalidArgument(format!("accumulated attention: {e}")))?;
        let query_statistics = moments.map(|layers| assemble(c, n, layers)).transpose()?;
        Ok(ForwardOutput {
            last_logits,
            rows,
            accumulated,
            query_statistics,
        })
    }

    /// One transformer block over all rows; pushes the layer's query statistics to `moments`
    /// when given.
    fn layer(
        &self,
        x: &Tensor,
        cache: &KvCache,
        layer: &LayerRun,
        sink: Option<LayerSink>,
        moments: Option<&mut Vec<LayerMoments>>,
        progress: &dyn Progress,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (n, _) = x.dims2()?;
        let w = layer.weights;
        let eps = c.rms_norm_eps;
        let h = rms_norm(x, &w.attn_norm, eps)?;
        let q = linear(&h, &w.attn.q)?.reshape((1, n, c.num_heads, c.head_dim))?;
        let k = linear(&h, &w.attn.k)?.reshape((1, n, c.num_kv_heads, c.head_dim))?;
        let v = linear(&h, &w.attn.v)?.reshape((n, c.num_kv_heads, c.head_dim))?;
        if let Some(moments) = moments {
            moments.push(layer_moments(&q)?);
        }
        let q = layer.rope.apply_thd(&q)?;
        let k = layer.rope.apply_thd(&k)?.squeeze(0)?;
        cache.write(
            layer.index,
            &k.transpose(0, 1)?.contiguous()?,
            &v.transpose(0, 1)?.contiguous()?,
        )?;

        let cancelled = || progress.is_cancelled();
        let keep = layer.keep.map(|mask| (mask, layer.index));
        let attended = if layer.fused {
            self.fused_layer(&q, cache, layer, keep, sink, &cancelled)?
        } else {
            let call = PortableCall {
                queries: &q,
                cache: cache.layer(layer.index)?,
                past: layer.past,
                chunk: layer.chunk,
                keep,
            };
            portable_attention(&call, sink, &cancelled)?
        };
        let x = add_residual(linear(&attended, &w.attn.o)?, x)?;
        let h = rms_norm(&x, &w.mlp_norm, eps)?;
        let gated = swiglu(linear(&h, &w.mlp.gate)?, &linear(&h, &w.mlp.up)?)?;
        add_residual(linear(&gated, &w.mlp.down)?, &x)
    }

    /// Attention of one layer with the fused CPU kernel; returns `[n, heads * head_dim]`.
    fn fused_layer(
        &self,
        queries: &Tensor,
        cache: &KvCache,
        layer: &LayerRun,
        keep: Option<(&KeepColumns, usize)>,
        sink: Option<LayerSink>,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Tensor> {
        let c = &self.config;
        let (_, n, heads, d) = queries.dims4()?;
        let buffers = cache.layer(layer.index)?;
        let (q_storage, q_layout) = queries.storage_and_layout();
        let (k_storage, k_layout) = buffers.keys.storage_and_layout();
        let (v_storage, v_layout) = buffers.values.storage_and_layout();
        let inputs = fused_attention::AttentionInputs {
            queries: cpu_f32(&q_storage, q_layout)?,
            keys: cpu_f32(&k_storage, k_layout)?,
            values: cpu_f32(&v_storage, v_layout)?,
            keep,
        };
        let dims = AttentionDims {
            heads,
            kv_heads: c.num_kv_heads,
            head_dim: d,
            capacity: buffers.keys.dim(1)?,
            past: layer.past,
            n,
            chunk: layer.chunk,
        };
        let mut out = vec![0f32; heads * n * d];
        fused_attention::attend(&dims, &inputs, sink, &mut out, cancelled)?;
        let out = Tensor::from_vec(out, (heads, n, d), &Device::Cpu)?;
        Ok(out.transpose(0, 1)?.contiguous()?.reshape((n, heads * d))?)
    }

    /// Whether the fused kernel runs, given the requested kernel and the model's device/dtype.
    pub(crate) fn use_fused(&self, kernel: AttentionKernel) -> Result<bool> {
        let fits = self.device.is_cpu() && self.dtype == DType::F32;
        match kernel {
            AttentionKernel::Auto => Ok(fits),
            AttentionKernel::Portable => Ok(false),
            AttentionKernel::Fused if fits => Ok(true),
            AttentionKernel::Fused => Err(ModelError::InvalidArgument(format!(
                "the fused attention kernel runs f32 models on the CPU, not {:?} on {:?}",
                self.dtype, self.device
            ))),
        }
    }

    /// Query rows per attention block for `keys` keys (see [`super::chunking`]).
    fn automatic_chunk(&self, fused: bool, keys: usize) -> usize {
        block_rows(fused, keys, self.config.num_heads)
    }

    /// Checks that `cache` was made by this model.
    pub(crate) fn check_cache(&self, cache: &KvCache) -> Result<()> {
        let c = &self.config;
        let expected = [c.num_kv_heads, cache.capacity(), c.head_dim];
        let fits = cache.layers.len() == c.num_layers
            && cache
                .layers
                .iter()
                .all(|l| l.keys.dims() == expected && l.keys.dtype() == self.dtype);
        if fits {
            Ok(())
        } else {
            Err(ModelError::InvalidArgument(
                "the KV cache was made for another model (layer count, head shape or dtype differ)"
                    .into(),
            ))
        }
    }
}

/// What one block needs besides its input.
struct LayerRun<'a> {
    index: usize,
    weights: &'a LayerWeights,
    rope: &'a RotaryTables,
    past: usize,
    chunk: usize,
    fused: bool,
    keep: Option<&'a KeepColumns>,
}

/// A zeroed buffer of `shape`'s element count, or a clear error when it cannot be allocated
/// (capturing every row of a long prompt would need `L x L` floats per layer and head).
fn zeroed(shape: &[usize], what: &str) -> Result<Vec<f32>> {
    let too_big = || {
        let bytes = shape.iter().map(|&d| d as f64).product::<f64>() * 4.0;
        ModelError::InvalidArgument(format!(
            "the {what} {shape:?} would take {:.1} GB, more than can be allocated; capture fewer rows",
            bytes / 1e9
        ))
    };
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_big)?;
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| too_big())?;
    buffer.resize(len, 0.0);
    Ok(buffer)
}

/// RMSNorm with candle's fused kernel, or the composed one for f64 (which the kernel lacks).
pub(crate) fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if x.dtype() == DType::F64 {
        Ok(candle_nn::ops::rms_norm_slow(x, weight, eps as f32)?)
    } else {
        Ok(candle_nn::ops::rms_norm(x, weight, eps as f32)?)
    }
}

//! Projections of a few rows (decoding steps, batched decoding steps, the last row's LM head)
//! on the CPU in f32: one pass over the weight matrix with dot products, in parallel over
//! output features.
//!
//! Decoding is bound by reading the weights; candle's matmul for a few rows repacks the weight
//! matrix and asks the OS for the CPU count on every call. Every product adds its terms in the
//! order [`dot`] does, so a row's result does not depend on the other rows.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Linear;
use rayon::prelude::*;

use super::cpu_slice::cpu_f32;
use super::error::Result;
use super::simd::dot;

/// Inputs of at most this many rows take the dot-product path in a forward pass.
const FEW_ROWS: usize = 4;
/// Batched decoding steps take the dot-product path up to this many rows (one per keep mask).
/// Measured in CPU time on a 2-core AVX-512 machine for a 1536 x 576 projection, the dot
/// products run at 65-75 GFLOP/s for 8 to 16 rows, candle's matmul at 31 for 8 rows and 91 for
/// 32 (where the dot products fall to 50: the rows no longer fit in L1).
const BATCH_ROWS: usize = 16;
/// Output features per parallel task.
const TASK_FEATURES: usize = 64;

/// `x · weightᵀ (+ bias)` for `x` `[rows, in]` and `weight` `[out, in]`.
pub(crate) fn project(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    project_within(x, weight, bias, FEW_ROWS)
}

/// [`project`] for a linear layer.
pub(crate) fn linear(x: &Tensor, layer: &Linear) -> Result<Tensor> {
    linear_within(x, layer, FEW_ROWS)
}

/// [`project`] for a batched decoding step: dot products up to [`BATCH_ROWS`] rows.
pub(crate) fn project_batch(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    project_within(x, weight, None, BATCH_ROWS)
}

/// [`linear`] for a batched decoding step: dot products up to [`BATCH_ROWS`] rows.
pub(crate) fn linear_batch(x: &Tensor, layer: &Linear) -> Result<Tensor> {
    linear_within(x, layer, BATCH_ROWS)
}

/// [`project`] with dot products for up to `max_rows` rows, candle's matmul beyond.
fn project_within(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    max_rows: usize,
) -> Result<Tensor> {
    let (rows, inp) = x.dims2()?;
    let fits = rows <= max_rows
        && x.device().is_cpu()
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && weight.dims2()?.1 == inp;
    if !fits {
        let out = x.matmul(&weight.t()?)?;
        return Ok(match bias {
            Some(b) => out.broadcast_add(b)?,
            None => out,
        });
    }
    let out_features = weight.dim(0)?;
    let x = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let weight = weight.contiguous()?;
    let (storage, layout) = weight.storage_and_layout();
    let w = cpu_f32(&storage, layout)?;
    // Feature-major: task `t` writes features `t * TASK_FEATURES..` for every row.
    let mut by_feature = vec![0f32; out_features * rows];
    w.par_chunks(TASK_FEATURES * inp)
        .zip(by_feature.par_chunks_mut(TASK_FEATURES * rows))
        .for_each(|(w, dst)| dots_best(w, &x, inp, dst));
    let out = Tensor::from_vec(by_feature, (out_features, rows), &Device::Cpu)?
        .t()?
        .contiguous()?;
    Ok(match bias {
        Some(b) => out.broadcast_add(b)?,
        None => out,
    })
}

/// [`project_within`] for a linear layer.
fn linear_within(x: &Tensor, layer: &Linear, max_rows: usize) -> Result<Tensor> {
    if x.dims2()?.0 > max_rows {
        return Ok(layer.forward(x)?);
    }
    project_within(x, layer.weight(), layer.bias(), max_rows)
}

/// `dst[f * rows + r] = w[f] · x[r]` for the weight rows `w` (`inp` each) and input rows `x`.
#[inline(always)]
fn dots(w: &[f32], x: &[f32], inp: usize, dst: &mut [f32]) {
    let rows = x.len() / inp;
    for (w_row, out) in w.chunks_exact(inp).zip(dst.chunks_exact_mut(rows)) {
        for (o, x_row) in out.iter_mut().zip(x.chunks_exact(inp)) {
            *o = dot(w_row, x_row);
        }
    }
}

/// [`dots`] compiled for the best instruction set the CPU has.
fn dots_best(w: &[f32], x: &[f32], inp: usize, dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { dots_avx512(w, x, inp, dst) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { dots_avx2(w, x, inp, dst) };
        }
    }
    dots(w, x, inp, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn dots_avx512(w: &[f32], x: &[f32], inp: usize, dst: &mut [f32]) {
    dots(w, x, inp, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dots_avx2(w: &[f32], x: &[f32], inp: usize, dst: &mut [f32]) {
    dots(w, x, inp, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 202 features (the last parallel task has 10) of 72 inputs (four lane chunks and a tail).
    const FEATURES: usize = 202;
    const INPUTS: usize = 72;

    fn weight() -> Tensor {
        let weight = (Tensor::arange(0f32, (FEATURES * INPUTS) as f32, &Device::Cpu).unwrap()
            * 0.013)
            .unwrap()
            .sin()
            .unwrap();
        weight.reshape((FEATURES, INPUTS)).unwrap()
    }

    fn input(rows: usize) -> Tensor {
        let x = (Tensor::arange(0f32, (rows * INPUTS) as f32, &Device::Cpu).unwrap() * 0.07)
            .unwrap()
            .cos()
            .unwrap();
        x.reshape((rows, INPUTS)).unwrap()
    }

    #[test]
    fn few_rows_match_the_matmul() {
        let weight = weight();
        let bias = Tensor::arange(0f32, FEATURES as f32, &Device::Cpu).unwrap();
        for rows in 1..=BATCH_ROWS + 1 {
            let x = input(rows);
            let got = project_within(&x, &weight, Some(&bias), BATCH_ROWS).unwrap();
            let want = x
                .matmul(&weight.t().unwrap())
                .unwrap()
                .broadcast_add(&bias)
                .unwrap();
            assert_eq!(got.dims(), [rows, FEATURES]);
            let diff = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "{rows} rows: {diff}");
        }
    }

    /// Every product of a batch step's projection is, to the bit, the one-row product: a batch
    /// row's result does not depend on the other rows.
    #[test]
    fn a_batch_step_gives_each_row_its_one_row_result() {
        let weight = weight();
        let x = input(BATCH_ROWS);
        let together = project_batch(&x, &weight)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (row, got) in together.iter().enumerate() {
            let alone = project(&x.narrow(0, row, 1).unwrap(), &weight, None)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got), bits(&alone[0]), "row {row}");
        }
    }
}

//! Projections of a few rows (decoding steps, the last row's LM head) on the CPU in f32: one
//! pass over the weight matrix with dot products, in parallel over output features.
//!
//! Decoding is bound by reading the weights; candle's matmul for one row repacks the weight
//! matrix and asks the OS for the CPU count on every call.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Linear;
use rayon::prelude::*;

use super::cpu_slice::cpu_f32;
use super::error::Result;
use super::simd::dot;

/// Inputs of at most this many rows take the dot-product path.
const FEW_ROWS: usize = 4;
/// Output features per parallel task.
const TASK_FEATURES: usize = 64;

/// `x · weightᵀ (+ bias)` for `x` `[rows, in]` and `weight` `[out, in]`.
pub(crate) fn project(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (rows, inp) = x.dims2()?;
    let fits = rows <= FEW_ROWS
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

/// [`project`] for a linear layer.
pub(crate) fn linear(x: &Tensor, layer: &Linear) -> Result<Tensor> {
    if x.dims2()?.0 > FEW_ROWS {
        return Ok(layer.forward(x)?);
    }
    project(x, layer.weight(), layer.bias())
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

    #[test]
    fn few_rows_match_the_matmul() {
        let device = Device::Cpu;
        let weight = (Tensor::arange(0f32, 200.0 * 72.0, &device).unwrap() * 0.013)
            .unwrap()
            .sin()
            .unwrap();
        let weight = weight.reshape((200, 72)).unwrap();
        let bias = Tensor::arange(0f32, 200.0, &device).unwrap();
        for rows in 1..=FEW_ROWS {
            let x = (Tensor::arange(0f32, (rows * 72) as f32, &device).unwrap() * 0.07)
                .unwrap()
                .cos()
                .unwrap();
            let x = x.reshape((rows, 72)).unwrap();
            let got = project(&x, &weight, Some(&bias)).unwrap();
            let want = x
                .matmul(&weight.t().unwrap())
                .unwrap()
                .broadcast_add(&bias)
                .unwrap();
            assert_eq!(got.dims(), [rows, 200]);
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
}

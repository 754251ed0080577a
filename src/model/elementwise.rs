//! Element-wise steps of a block, done in place on fresh projection outputs for f32 on the CPU
//! (no allocation, one vectorised pass on rayon's threads), with composed candle ops elsewhere.
//!
//! On the CPU candle's `silu` calls a scalar `exp` per element, needs a second pass for the
//! product, and its binary ops run on a second thread pool whose workers spin between ops,
//! competing with the matmuls for the cores.

use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Tensor};
use rayon::prelude::*;

use super::error::Result;
use super::simd::silu_mul;

/// Elements per parallel task.
const TASK: usize = 1 << 14;

/// Whether `fresh` and `other` can take the in-place f32 CPU path.
fn in_place_fits(fresh: &Tensor, other: &Tensor) -> bool {
    fresh.device().is_cpu()
        && fresh.dtype() == DType::F32
        && other.dtype() == DType::F32
        && fresh.shape() == other.shape()
        && fresh.is_contiguous()
        && other.is_contiguous()
}

/// `silu(gate) * up` for two tensors of the same shape. On the CPU in f32 the result is written
/// over `gate`'s storage (taken by value: a fresh projection output that nothing else shares).
pub(crate) fn swiglu(gate: Tensor, up: &Tensor) -> Result<Tensor> {
    if in_place_fits(&gate, up) {
        gate.inplace_op2(up, &SwiGlu)?;
        Ok(gate)
    } else {
        Ok((gate.silu()? * up)?)
    }
}

/// `fresh + residual`, written over `fresh` on the CPU in f32 (taken by value: a fresh projection
/// output that nothing else shares).
pub(crate) fn add_residual(fresh: Tensor, residual: &Tensor) -> Result<Tensor> {
    if in_place_fits(&fresh, residual) {
        fresh.inplace_op2(residual, &AddResidual)?;
        Ok(fresh)
    } else {
        Ok((fresh + residual)?)
    }
}

struct AddResidual;

impl InplaceOp2 for AddResidual {
    fn name(&self) -> &'static str {
        "add-residual"
    }

    fn cpu_fwd(
        &self,
        fresh: &mut CpuStorage,
        fresh_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<()> {
        let (fresh, residual) = f32_pair(fresh, fresh_layout, residual, residual_layout)?;
        fresh
            .par_chunks_mut(TASK)
            .zip(residual.par_chunks(TASK))
            .for_each(|(fresh, residual)| {
                for (f, r) in fresh.iter_mut().zip(residual) {
                    *f += r;
                }
            });
        Ok(())
    }
}

struct SwiGlu;

impl InplaceOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(
        &self,
        gate: &mut CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> candle_core::Result<()> {
        let (gate, up) = f32_pair(gate, gate_layout, up, up_layout)?;
        gate.par_chunks_mut(TASK)
            .zip(up.par_chunks(TASK))
            .for_each(|(gate, up)| silu_mul_best(gate, up));
        Ok(())
    }
}

/// The contiguous f32 elements of an in-place op's destination and source, of equal length.
fn f32_pair<'a>(
    dst: &'a mut CpuStorage,
    dst_layout: &Layout,
    src: &'a CpuStorage,
    src_layout: &Layout,
) -> candle_core::Result<(&'a mut [f32], &'a [f32])> {
    let (Some((d0, d1)), Some((s0, s1))) = (
        dst_layout.contiguous_offsets(),
        src_layout.contiguous_offsets(),
    ) else {
        candle_core::bail!("in-place element-wise ops need contiguous inputs");
    };
    let (CpuStorage::F32(dst), CpuStorage::F32(src)) = (dst, src) else {
        candle_core::bail!("in-place element-wise ops need f32 inputs");
    };
    if d1 - d0 != s1 - s0 {
        candle_core::bail!("in-place element-wise ops need inputs of one shape");
    }
    Ok((&mut dst[d0..d1], &src[s0..s1]))
}

/// [`silu_mul`] compiled for the best instruction set the CPU has.
fn silu_mul_best(gate: &mut [f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { silu_mul_avx512(gate, up) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { silu_mul_avx2(gate, up) };
        }
    }
    silu_mul(gate, up)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn silu_mul_avx512(gate: &mut [f32], up: &[f32]) {
    silu_mul(gate, up)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn silu_mul_avx2(gate: &mut [f32], up: &[f32]) {
    silu_mul(gate, up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fused_and_composed_agree() {
        let gate = (Tensor::arange(0f32, 40_000.0, &Device::Cpu).unwrap() * 0.001)
            .unwrap()
            .sin()
            .unwrap();
        let gate = (gate * 9.0).unwrap().reshape((200, 200)).unwrap();
        let up = gate.cos().unwrap();
        let composed = (gate.silu().unwrap() * &up).unwrap();
        let fused = swiglu(gate.copy().unwrap(), &up).unwrap();
        let diff = (fused - composed)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn residual_add_in_place_leaves_the_residual_alone() {
        let fresh = Tensor::arange(0f32, 50_000.0, &Device::Cpu).unwrap();
        let residual = (Tensor::arange(0f32, 50_000.0, &Device::Cpu).unwrap() * 0.5).unwrap();
        let sum = add_residual(fresh, &residual)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let residual = residual.to_vec1::<f32>().unwrap();
        for (i, (s, r)) in sum.iter().zip(&residual).enumerate() {
            assert_eq!(*s, i as f32 * 1.5);
            assert_eq!(*r, i as f32 * 0.5);
        }
    }
}

//! Choosing where the model runs and in which dtype, from command-line style strings.

use candle_core::{DType, Device};

use super::error::{ModelError, Result};

/// Parses `cpu`, `cuda` (the first GPU) or `cuda:N`.
///
/// Asking for a GPU in a build without the `cuda` cargo feature is an error that names the
/// feature, rather than a silent fall-back to the CPU.
pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim().to_ascii_lowercase();
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                ModelError::InvalidArgument(format!(
                    "device `{s}` is not understood; use cpu, cuda or cuda:N"
                ))
            })?,
        None => {
            return Err(ModelError::InvalidArgument(format!(
                "device `{s}` is not understood; use cpu, cuda or cuda:N"
            )));
        }
    };
    cuda_device(ordinal)
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal)
        .map_err(|e| ModelError::InvalidArgument(format!("cannot open CUDA device {ordinal}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(ordinal: usize) -> Result<Device> {
    Err(ModelError::InvalidArgument(format!(
        "device cuda:{ordinal} was asked for, but this judgeq was built without GPU support; \
         rebuild with `cargo build --release --features cuda` (see the README's GPU section) or use --device cpu"
    )))
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" => Ok(DType::F32),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "f16" | "float16" => Ok(DType::F16),
        other => Err(ModelError::InvalidArgument(format!(
            "dtype `{other}` is not supported; use f32, bf16 or f16"
        ))),
    }
}

/// The dtype judgeq uses on `device` when none is asked for: f32 on the CPU (exact attention
/// maps, and candle's CPU kernels are fastest in f32), bf16 on a GPU.
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_dtypes() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device(" CPU ").unwrap().is_cpu());
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert_eq!(parse_dtype("F16").unwrap(), DType::F16);
        assert_eq!(default_dtype(&Device::Cpu), DType::F32);
    }

    #[test]
    fn rejects_unknown_names() {
        for bad in ["gpu", "cuda:", "cuda:x", "cuda1", "metal", ""] {
            let err = parse_device(bad).unwrap_err();
            assert!(
                matches!(err, ModelError::InvalidArgument(_)),
                "{bad}: {err}"
            );
        }
        for bad in ["f64", "int8", "q4_1", ""] {
            assert!(
                matches!(parse_dtype(bad), Err(ModelError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_the_feature() {
        for name in ["cuda", "cuda:0", "cuda:3"] {
            let message = parse_device(name).unwrap_err().to_string();
            assert!(message.contains("--features cuda"), "{message}");
        }
    }
}

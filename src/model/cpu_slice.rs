//! Borrowing the elements of CPU tensors for the hand-written kernels.

use candle_core::{Layout, Storage, StorageRef};

use super::error::{ModelError, Result};

/// The f32 elements of a contiguous CPU tensor, given its storage guard and layout.
pub(crate) fn cpu_f32<'a>(storage: &'a StorageRef<'_>, layout: &Layout) -> Result<&'a [f32]> {
    let Storage::Cpu(cpu) = &**storage else {
        return Err(ModelError::InvalidArgument(
            "a CPU kernel was given a tensor on another device".into(),
        ));
    };
    let data = cpu.as_slice::<f32>()?;
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
        ModelError::InvalidArgument("a CPU kernel was given a non-contiguous tensor".into())
    })?;
    Ok(&data[start..end])
}

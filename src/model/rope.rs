//! Rotary position tables in Hugging Face "rotate half" layout, with Llama 3.1's `llama3`
//! frequency scaling.
//!
//! Head dimension `i < d/2` is paired with `i + d/2` and rotated by `position * inv_freq[i]`.
//! Tables are computed in f64 for the positions a call needs and cast to the model dtype, so no
//! maximum length is baked in.

use candle_core::{DType, Device, Tensor};

use super::config::{Llama3RopeScaling, ModelConfig};
use super::error::Result;

/// Inverse frequencies `[d/2]` of the rotary embedding, scaled as the configuration says.
pub fn inverse_frequencies(config: &ModelConfig) -> Vec<f64> {
    let half = config.head_dim / 2;
    let d = config.head_dim as f64;
    (0..half)
        .map(|i| {
            let plain = 1.0 / config.rope_theta.powf(2.0 * i as f64 / d);
            match &config.rope_scaling {
                Some(scaling) => llama3_scaled(plain, scaling),
                None => plain,
            }
        })
        .collect()
}

/// Llama 3.1 scaling of one inverse frequency (`_compute_llama3_parameters` in transformers):
/// short wavelengths are kept, long ones divided by `factor`, and the band between is
/// interpolated smoothly.
fn llama3_scaled(inv_freq: f64, s: &Llama3RopeScaling) -> f64 {
    let old_context = s.original_max_position_embeddings as f64;
    let low_freq_wavelen = old_context / s.low_freq_factor;
    let high_freq_wavelen = old_context / s.high_freq_factor;
    let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
    if wavelen < high_freq_wavelen {
        inv_freq
    } else if wavelen > low_freq_wavelen {
        inv_freq / s.factor
    } else {
        let smooth =
            (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        (1.0 - smooth) * inv_freq / s.factor + smooth * inv_freq
    }
}

/// Cosines and sines for a run of consecutive positions, each `[len, head_dim / 2]`.
#[derive(Clone, Debug)]
pub struct RotaryTables {
    /// `cos(position * inv_freq[i])`.
    pub cos: Tensor,
    /// `sin(position * inv_freq[i])`.
    pub sin: Tensor,
}

impl RotaryTables {
    /// Tables for positions `start..start + len`, in `dtype` on `device`.
    pub fn new(
        config: &ModelConfig,
        start: usize,
        len: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let inv_freq = inverse_frequencies(config);
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for position in start..start + len {
            for &f in &inv_freq {
                let angle = position as f64 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (len, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (len, half), device)?.to_dtype(dtype)?;
        Ok(Self { cos, sin })
    }

    /// Rotates `x` laid out `[1, len, heads, head_dim]` (fused kernel, no gradient).
    pub fn apply_thd(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::rotary_emb::rope_thd(x, &self.cos, &self.sin)?)
    }

    /// Rotates `x` laid out `[1, heads, len, head_dim]` with differentiable tensor ops.
    pub fn apply_differentiable(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::rotary_emb::rope_slow(x, &self.cos, &self.sin)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Architecture;

    fn config(head_dim: usize, scaling: Option<Llama3RopeScaling>) -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Llama,
            hidden_size: head_dim * 2,
            intermediate_size: 8,
            num_layers: 1,
            num_heads: 2,
            num_kv_heads: 1,
            head_dim,
            vocab_size: 8,
            rms_norm_eps: 1e-5,
            rope_theta: 500_000.0,
            rope_scaling: scaling,
            max_position_embeddings: 1024,
            tie_word_embeddings: true,
            attention_bias: false,
        }
    }

    #[test]
    fn plain_frequencies_follow_theta() {
        let f = inverse_frequencies(&config(8, None));
        let expected = [
            1.0,
            500_000f64.powf(-0.25),
            500_000f64.powf(-0.5),
            500_000f64.powf(-0.75),
        ];
        for (got, want) in f.iter().zip(expected) {
            assert!(
                (got - want).abs() < 1e-15 * want.max(1.0),
                "{got} vs {want}"
            );
        }
    }

    /// Llama-3.1-8B's own scaling (factor 8, low 1, high 4, original 8192): the three regimes,
    /// checked against values computed by hand from the transformers formula.
    #[test]
    fn llama3_scaling_has_three_regimes() {
        let s = Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        let two_pi = 2.0 * std::f64::consts::PI;
        // Wavelength 100 < 8192 / 4: unchanged.
        let short = two_pi / 100.0;
        assert_eq!(llama3_scaled(short, &s), short);
        // Wavelength 10000 > 8192: divided by the factor.
        let long = two_pi / 10_000.0;
        assert!((llama3_scaled(long, &s) - long / 8.0).abs() < 1e-18);
        // Wavelength 4096: smooth = (8192 / 4096 - 1) / 3 = 1/3.
        let mid = two_pi / 4096.0;
        let want = (2.0 / 3.0) * mid / 8.0 + (1.0 / 3.0) * mid;
        assert!((llama3_scaled(mid, &s) - want).abs() < 1e-18);
    }

    #[test]
    fn fused_and_differentiable_rotations_agree() {
        let cfg = config(8, None);
        let device = Device::Cpu;
        let tables = RotaryTables::new(&cfg, 5, 3, DType::F32, &device).unwrap();
        let x = Tensor::arange(0f32, 3.0 * 2.0 * 8.0, &device)
            .unwrap()
            .reshape((1, 3, 2, 8))
            .unwrap();
        let x = (x / 10.0).unwrap().sin().unwrap();
        let fused = tables.apply_thd(&x).unwrap();
        let slow = tables
            .apply_differentiable(&x.transpose(1, 2).unwrap().contiguous().unwrap())
            .unwrap()
            .transpose(1, 2)
            .unwrap();
        let diff = (fused - slow)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        // Position 5, pair (0, 4) of head 0 of row 0, by hand.
        let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = tables
            .apply_thd(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (c, s) = (5f64.cos() as f32, 5f64.sin() as f32);
        assert!((got[0] - (xs[0] * c - xs[4] * s)).abs() < 1e-6);
        assert!((got[4] - (xs[0] * s + xs[4] * c)).abs() < 1e-6);
    }
}

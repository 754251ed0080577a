//! The transformer: configuration, weights and the device they live on.

use candle_core::{DType, Device};

use super::config::ModelConfig;
use super::error::{ModelError, Result};
use super::weights::Weights;

/// A decoder-only transformer ready to run on one device.
#[derive(Clone, Debug)]
pub struct Transformer {
    /// Shape of the model.
    pub config: ModelConfig,
    /// Weights on `device`, in `dtype`.
    pub weights: Weights,
    /// Where the model runs.
    pub device: Device,
    /// Dtype of weights and activations (attention probabilities are always computed in f32).
    pub dtype: DType,
}

impl Transformer {
    /// Wraps loaded weights; checks that the configuration is self-consistent.
    pub fn new(
        config: ModelConfig,
        weights: Weights,
        device: Device,
        dtype: DType,
    ) -> Result<Self> {
        config.validate().map_err(ModelError::InvalidArgument)?;
        if weights.layers.len() != config.num_layers {
            return Err(ModelError::InvalidArgument(format!(
                "configuration declares {} layers but {} were loaded",
                config.num_layers,
                weights.layers.len()
            )));
        }
        Ok(Self {
            config,
            weights,
            device,
            dtype,
        })
    }
}

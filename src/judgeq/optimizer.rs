//! Adam (Kingma and Ba 2015) over the soft embeddings, with its state as plain arrays so that a
//! checkpoint can hold it and `--resume` continue exactly where a run stopped.
//!
//! No weight decay: the soft tokens are inputs, and pulling them to zero has no meaning.

use candle_core::{DType, Device, Tensor, Var};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::judgeq::error::{Result, TrainError};

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamSettings {
    /// Step size.
    pub learning_rate: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self {
            learning_rate: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Adam's state: the moments and the number of steps taken.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState {
    /// First moment, the shape of the parameters.
    pub first: Array2<f32>,
    /// Second moment.
    pub second: Array2<f32>,
    /// Steps taken.
    pub steps: u64,
}

impl AdamState {
    /// The state before the first step.
    pub fn zeros(rows: usize, columns: usize) -> Self {
        Self {
            first: Array2::zeros((rows, columns)),
            second: Array2::zeros((rows, columns)),
            steps: 0,
        }
    }
}

/// Adam over one 2-D parameter.
#[derive(Debug)]
pub struct Adam {
    settings: AdamSettings,
    first: Tensor,
    second: Tensor,
    steps: u64,
}

impl Adam {
    /// Adam continuing from `state`, with tensors on `device`.
    pub fn new(settings: AdamSettings, state: &AdamState, device: &Device) -> Result<Self> {
        let valid = settings.learning_rate > 0.0
            && settings.learning_rate.is_finite()
            && (0.0..1.0).contains(&settings.beta1)
            && (0.0..1.0).contains(&settings.beta2)
            && settings.epsilon > 0.0;
        if !valid {
            return Err(TrainError::InvalidSetting(format!(
                "Adam needs a finite learning rate > 0, betas in [0, 1) and epsilon > 0; got {settings:?}"
            )));
        }
        Ok(Self {
            settings,
            first: to_tensor(&state.first, device)?,
            second: to_tensor(&state.second, device)?,
            steps: state.steps,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Moves `parameter` one step against `gradient` (same shape).
    pub fn step(&mut self, parameter: &Var, gradient: &Tensor) -> Result<()> {
        let s = self.settings;
        let gradient = gradient.to_dtype(DType::F32)?;
        self.steps += 1;
        let t = self.steps as i32;
        self.first = ((&self.first * s.beta1)? + (&gradient * (1.0 - s.beta1))?)?;
        self.second = ((&self.second * s.beta2)? + (gradient.sqr()? * (1.0 - s.beta2))?)?;
        let first_hat = (&self.first / (1.0 - s.beta1.powi(t)))?;
        let second_hat = (&self.second / (1.0 - s.beta2.powi(t)))?;
        let update = (first_hat / (second_hat.sqrt()? + s.epsilon)?)?;
        let current = parameter.as_tensor().to_dtype(DType::F32)?;
        let next = (current - (update * s.learning_rate)?)?;
        parameter.set(&next.to_dtype(parameter.dtype())?)?;
        Ok(())
    }

    /// The state, for a checkpoint.
    pub fn state(&self) -> Result<AdamState> {
        Ok(AdamState {
            first: to_array(&self.first)?,
            second: to_array(&self.second)?,
            steps: self.steps,
        })
    }
}

/// A `[rows, columns]` f32 tensor on `device`.
pub(crate) fn to_tensor(array: &Array2<f32>, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = array.iter().copied().collect();
    Ok(Tensor::from_vec(values, array.dim(), device)?)
}

/// A 2-D tensor as an f32 array.
pub(crate) fn to_array(tensor: &Tensor) -> Result<Array2<f32>> {
    let (rows, columns) = tensor.dims2()?;
    let values = tensor
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Array2::from_shape_vec((rows, columns), values)
        .map_err(|e| TrainError::InvalidSetting(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam against a scalar reference written out by hand, over three steps.
    #[test]
    fn matches_a_hand_written_adam() {
        let settings = AdamSettings {
            learning_rate: 0.1,
            ..AdamSettings::default()
        };
        let device = Device::Cpu;
        let parameter =
            Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0]], &device).unwrap()).unwrap();
        let mut adam = Adam::new(settings, &AdamState::zeros(1, 2), &device).unwrap();
        let gradients = [[0.5f64, -1.0], [0.25, 2.0], [-1.0, 0.0]];
        let (mut x, mut m, mut v) = ([1.0f64, -2.0], [0.0f64; 2], [0.0f64; 2]);
        for (t, g) in gradients.iter().enumerate() {
            let grad = Tensor::new(&[[g[0] as f32, g[1] as f32]], &device).unwrap();
            adam.step(&parameter, &grad).unwrap();
            for i in 0..2 {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                let mh = m[i] / (1.0 - 0.9f64.powi(t as i32 + 1));
                let vh = v[i] / (1.0 - 0.999f64.powi(t as i32 + 1));
                x[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got = parameter.as_tensor().to_vec2::<f32>().unwrap();
        for i in 0..2 {
            assert!((got[0][i] as f64 - x[i]).abs() < 1e-6, "{got:?} vs {x:?}");
        }

        // A state taken out and put back continues identically.
        let state = adam.state().unwrap();
        assert_eq!(state.steps, 3);
        let copy = Var::from_tensor(parameter.as_tensor()).unwrap();
        let mut resumed = Adam::new(settings, &state, &device).unwrap();
        let grad = Tensor::new(&[[0.3f32, -0.7]], &device).unwrap();
        adam.step(&parameter, &grad).unwrap();
        resumed.step(&copy, &grad).unwrap();
        assert_eq!(
            parameter.as_tensor().to_vec2::<f32>().unwrap(),
            copy.as_tensor().to_vec2::<f32>().unwrap()
        );
    }

    #[test]
    fn refuses_bad_settings() {
        let bad = AdamSettings {
            learning_rate: -1.0,
            ..AdamSettings::default()
        };
        assert!(Adam::new(bad, &AdamState::zeros(1, 1), &Device::Cpu).is_err());
    }
}

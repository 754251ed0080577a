//! Where soft tokens start. The paper does not say (`research/judgeq.md` §1.3); two choices:
//! copies of random vocabulary embeddings (the default: the model already knows how to attend
//! from such inputs), or normal noise with the embedding matrix's standard deviation.

use std::str::FromStr;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::judgeq::error::{Result, TrainError};
use crate::model::Transformer;
use crate::rng::SplitMix64;

/// Random stream of the initialisation (see [`SplitMix64::stream`]).
const INIT_STREAM: u64 = 1;

/// How soft tokens are initialised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftInit {
    /// Embeddings of distinct random vocabulary tokens (special tokens excluded).
    #[default]
    Vocab,
    /// Independent normal values with the embedding matrix's standard deviation.
    Normal,
}

impl FromStr for SoftInit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vocab" => Ok(Self::Vocab),
            "normal" => Ok(Self::Normal),
            other => Err(format!("`{other}`: expected vocab or normal")),
        }
    }
}

impl SoftInit {
    /// The name the CLI accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vocab => "vocab",
            Self::Normal => "normal",
        }
    }
}

impl std::fmt::Display for SoftInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `[count, hidden]` initial soft embeddings, reproducible from `seed`. `avoid` lists token
/// ids never copied (special tokens).
pub fn initial_embeddings(
    transformer: &Transformer,
    count: usize,
    init: SoftInit,
    seed: u64,
    avoid: &[u32],
) -> Result<Array2<f32>> {
    let hidden = transformer.config.hidden_size;
    let mut rng = SplitMix64::stream(seed, INIT_STREAM);
    let embeddings = transformer
        .weights
        .embed
        .to_dtype(candle_core::DType::F32)?;
    match init {
        SoftInit::Vocab => {
            let vocab = transformer.config.vocab_size;
            let candidates: Vec<u32> = (0..vocab as u32).filter(|id| !avoid.contains(id)).collect();
            if candidates.len() < count {
                return Err(TrainError::InvalidSetting(format!(
                    "the vocabulary has {} ordinary tokens, fewer than {count} soft tokens",
                    candidates.len()
                )));
            }
            let mut pool = candidates;
            rng.shuffle(&mut pool);
            pool.truncate(count);
            let ids = candle_core::Tensor::new(pool.as_slice(), embeddings.device())?;
            let rows = embeddings.index_select(&ids, 0)?.to_vec2::<f32>()?;
            Ok(Array2::from_shape_vec((count, hidden), rows.concat())
                .map_err(|e| TrainError::InvalidSetting(e.to_string()))?)
        }
        SoftInit::Normal => {
            let values = embeddings
                .flatten_all()?
                .to_dtype(candle_core::DType::F64)?;
            let mean = values.mean_all()?.to_scalar::<f64>()?;
            let std = (values - mean)?
                .sqr()?
                .mean_all()?
                .to_scalar::<f64>()?
                .sqrt();
            Ok(Array2::from_shape_simple_fn((count, hidden), || {
                (rng.normal() * std) as f32
            }))
        }
    }
}

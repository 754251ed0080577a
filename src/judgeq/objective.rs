//! The training objective: the soft tokens' attention over the prompt keys, averaged over the
//! soft tokens, against the target (the answer tokens' attention, averaged over the answer),
//! per layer and query head, averaged.
//!
//! The paper leaves three choices open (`research/judgeq.md` §1.4); they are settings here:
//! - **loss**: MSE over the prompt keys (the paper's), KL(target ‖ soft) of the rows
//!   renormalised over the prompt keys, or the cross-entropy of the soft rows (renormalised) on
//!   the target's `top_k` keys, which asks the soft tokens for exactly what eviction keeps: the
//!   entries the answer attends to most, whatever their share of the attention;
//! - **layers**: every layer (default) or a chosen subset; every query head of a chosen layer
//!   enters (GQA needs no special case: each query head has its own rows); each chosen layer
//!   weighs alike unless **layer weights** say otherwise (a weighted mean over layers);
//! - **renormalisation**: rows are probabilities over every key the query saw, restricted to
//!   the prompt keys and *not* renormalised by default (the soft tokens' mass on one another
//!   and the answer's mass on itself stay out); with it on, both averaged rows are divided by
//!   their sum over the prompt keys first.
//!
//! At inference the soft tokens' scores are pooled along the keys before the top `B` is taken
//! (max-pooling with kernel 7, as every SnapKV-family method), while the target is the answer's
//! raw attention. With **loss pooling** the averaged soft row is pooled the same way (over the
//! whole prompt row, before the sink keys are left out) before the comparison, so training sees
//! the scores eviction ranks; the target is never pooled.
//!
//! With a KV-head **granularity** the query heads of each GQA group are reduced to one row
//! (mean or max, on both sides, before the pooling, as eviction reduces the soft tokens' scores
//! at `--granularity kv-head-mean`), so the loss compares the rows eviction ranks per KV head
//! and the raw oracle reads at that granularity; the default compares every query head's own.
//!
//! One more choice the paper does not face in its description but any mixed-length data set
//! does: attention over `n` keys is about `1/n` per key, so the plain MSE of a prompt scales
//! like `1/n²`, and in a batch of short chat prompts and long documents the short ones own the
//! gradient. With **length normalisation** the MSE is taken of rows expressed relative to
//! uniform attention (`n · a`), i.e. multiplied by `n²`, so every prompt weighs alike.

use std::str::FromStr;

use candle_core::{D, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::{Granularity, GroupReduce, Pooling};
use crate::judgeq::error::{Result, TrainError};

/// Floor applied to probabilities inside logarithms.
const LOG_FLOOR: f64 = 1e-12;

/// How the averaged rows are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Mean squared error over the prompt keys (the paper's loss).
    #[default]
    Mse,
    /// KL(target ‖ soft) of the rows renormalised over the prompt keys.
    Kl,
    /// Cross-entropy of the renormalised soft rows on the target's top keys: the mean of
    /// `−log q_j` over the target's `top_k` keys of each head.
    TopK,
}

impl FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mse" => Ok(Self::Mse),
            "kl" => Ok(Self::Kl),
            "topk" => Ok(Self::TopK),
            other => Err(format!("`{other}`: expected mse, kl or topk")),
        }
    }
}

impl LossKind {
    /// The name the CLI accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mse => "mse",
            Self::Kl => "kl",
            Self::TopK => "topk",
        }
    }
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which layers enter the loss.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSet {
    /// Every layer.
    #[default]
    All,
    /// These layers (0-based, sorted, distinct).
    Only(Vec<usize>),
}

impl FromStr for LayerSet {
    type Err = String;
    /// `all`, or comma-separated layers and inclusive ranges: `0-9,20,25-29`.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "all" {
            return Ok(Self::All);
        }
        let mut layers = Vec::new();
        for part in s.split(',').map(str::trim) {
            let number = |t: &str| {
                t.trim().parse::<usize>().map_err(|_| {
                    format!("`{t}` is not a layer number (expected e.g. `all` or `0-9,20`)")
                })
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!("layer range `{part}` is empty"));
                    }
                    layers.extend(a..=b);
                }
                None => layers.push(number(part)?),
            }
        }
        layers.sort_unstable();
        layers.dedup();
        Ok(Self::Only(layers))
    }
}

impl std::fmt::Display for LayerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => write!(f, "all"),
            Self::Only(layers) => {
                let names: Vec<String> = layers.iter().map(usize::to_string).collect();
                write!(f, "{}", names.join(","))
            }
        }
    }
}

impl LayerSet {
    /// The chosen layers of a model with `layers` layers; errors when one does not exist or
    /// none is chosen.
    pub fn indices(&self, layers: usize) -> Result<Vec<usize>> {
        match self {
            Self::All => Ok((0..layers).collect()),
            Self::Only(chosen) => {
                if chosen.is_empty() {
                    return Err(TrainError::InvalidSetting(
                        "no layer enters the loss".into(),
                    ));
                }
                if let Some(bad) = chosen.iter().find(|&&l| l >= layers) {
                    return Err(TrainError::InvalidSetting(format!(
                        "layer {bad} does not exist: the model has layers 0 to {}",
                        layers.saturating_sub(1)
                    )));
                }
                Ok(chosen.clone())
            }
        }
    }
}

/// A weight for some layers in the objective's mean over layers (`11-29=3`: layers 11 to 29
/// count three times as much as a layer without a weight, which counts 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerWeight {
    /// The layers it applies to.
    pub layers: LayerSet,
    /// Their weight: finite and not negative.
    pub weight: f64,
}

impl FromStr for LayerWeight {
    type Err = String;
    /// `LAYERS=WEIGHT`, the layers as [`LayerSet`] reads them: `11-29=3`, `0,1=0.5`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (layers, weight) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected LAYERS=WEIGHT, e.g. `11-29=3`"))?;
        let weight: f64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("`{weight}` is not a weight (expected e.g. `11-29=3`)"))?;
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(format!("weight {weight} must be a number of at least 0"));
        }
        Ok(Self {
            layers: layers.parse()?,
            weight,
        })
    }
}

impl std::fmt::Display for LayerWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.layers, self.weight)
    }
}

/// Each of `chosen` layers' weight: that of the last entry of `weights` naming it, else 1.
/// Errors when a weight names a layer the model lacks, or when every chosen layer weighs 0.
fn layer_weights(weights: &[LayerWeight], chosen: &[usize], layers: usize) -> Result<Vec<f64>> {
    let mut by_layer = vec![1.0; layers];
    for entry in weights {
        for layer in entry.layers.indices(layers)? {
            by_layer[layer] = entry.weight;
        }
    }
    let chosen: Vec<f64> = chosen.iter().map(|&l| by_layer[l]).collect();
    if chosen.iter().sum::<f64>() <= 0.0 {
        return Err(TrainError::InvalidSetting(
            "every layer in the loss has weight 0".into(),
        ));
    }
    Ok(chosen)
}

/// The objective's settings; `Default` is MSE over every layer and head, rows not
/// renormalised, length-normalised (on held-out long documents this beat the plain MSE by about
/// two points of hit rate at every budget; see the training notes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectiveSettings {
    /// How rows are compared.
    pub loss: LossKind,
    /// Which layers enter.
    pub layers: LayerSet,
    /// Weights of some layers in the mean over layers (none: every layer weighs alike, the
    /// paper's); a later entry overrides an earlier one for the layers both name.
    pub layer_weights: Vec<LayerWeight>,
    /// Whether both averaged rows are renormalised over the prompt keys before MSE (KL always
    /// renormalises).
    pub renormalise: bool,
    /// Whether the MSE is multiplied by the squared prompt length (rows relative to uniform
    /// attention), so that prompts of every length weigh alike. KL is unaffected. Default on;
    /// off is the paper's plain MSE.
    pub length_normalised: bool,
    /// Prompt keys at the start left out of the loss (0: none, the paper's). The first keys
    /// are attention sinks that take most of many heads' attention, so they dominate a squared
    /// error, and every method keeps them anyway; leaving them out (with `renormalise`, over
    /// the keys that remain) makes the loss about which content entries the answer reads.
    pub skip_first_keys: usize,
    /// Keys per head the `topk` loss asks for (default 64; other losses ignore it).
    pub top_k: usize,
    /// Share of the `topk` loss's weight spread over the top keys by the answer's attention on
    /// them; the rest is spread evenly. 0 (the default): every top key weighs `1/top_k`, so the
    /// loss asks for the set eviction keeps whatever the answer's share of each key; 1: each
    /// weighs its share of the answer's attention on the top keys, so the keys the answer
    /// leans on most (the question, the end of the prompt) weigh most.
    pub top_k_mass_share: f64,
    /// Layers whose top keys the mass share weighs (default all); in the others every top key
    /// weighs alike, as with a share of 0.
    pub top_k_mass_share_layers: LayerSet,
    /// Pooling applied to the averaged soft row before the comparison, as eviction pools the
    /// soft tokens' scores (default none: the raw row, the paper's).
    pub pooling: Pooling,
    /// Heads the loss compares: every query head's own rows (the default, the paper's), or each
    /// GQA group's rows reduced to one per KV head before the pooling, as eviction reduces them.
    pub granularity: Granularity,
}

impl Default for ObjectiveSettings {
    fn default() -> Self {
        Self {
            loss: LossKind::Mse,
            layers: LayerSet::All,
            layer_weights: Vec::new(),
            renormalise: false,
            length_normalised: true,
            skip_first_keys: 0,
            top_k: 64,
            top_k_mass_share: 0.0,
            top_k_mass_share_layers: LayerSet::All,
            pooling: Pooling::None,
            granularity: Granularity::QueryHead,
        }
    }
}

impl ObjectiveSettings {
    /// Checks the layers, layer weights and mass-share layers against a model with `layers`
    /// layers, so that a wrong layer is reported before any target is made.
    pub fn check_layers(&self, layers: usize) -> Result<()> {
        let chosen = self.layers.indices(layers)?;
        self.top_k_mass_share_layers.indices(layers).map_err(|e| {
            TrainError::InvalidSetting(format!("--loss-top-k-mass-share-layers: {e}"))
        })?;
        layer_weights(&self.layer_weights, &chosen, layers).map(|_| ())
    }

    /// The mass share of the `topk` loss on `layer`: the setting's in its layers, 0 elsewhere.
    fn mass_share_on(&self, layer: usize) -> f64 {
        match &self.top_k_mass_share_layers {
            LayerSet::All => self.top_k_mass_share,
            LayerSet::Only(layers) if layers.contains(&layer) => self.top_k_mass_share,
            LayerSet::Only(_) => 0.0,
        }
    }
}

/// The loss of each chosen layer and head, `[chosen layers, heads]`: query heads, or KV heads
/// at a KV-head granularity.
///
/// `rows` holds one tensor per model layer, `[query_heads, n_soft, n_prompt]` (the soft tokens'
/// attention, graph attached); `target` is `[layers, query_heads, n_prompt]`; the model has
/// `kv_heads` KV heads (query head `h` reads KV head `h / (query_heads / kv_heads)`).
pub fn loss_grid(
    rows: &[Tensor],
    target: &Tensor,
    settings: &ObjectiveSettings,
    kv_heads: usize,
) -> Result<Tensor> {
    let (layers, heads, keys) = target.dims3()?;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(TrainError::InvalidSetting(format!(
            "{heads} query heads cannot be grouped over {kv_heads} KV heads"
        )));
    }
    if rows.len() != layers {
        return Err(TrainError::InvalidSetting(format!(
            "the target has {layers} layers but the model gave {}",
            rows.len()
        )));
    }
    let chosen = settings.layers.indices(layers)?;
    let mut terms = Vec::with_capacity(chosen.len());
    for layer in chosen {
        let soft_rows = &rows[layer];
        let (h, _, k) = soft_rows.dims3()?;
        if (h, k) != (heads, keys) {
            return Err(TrainError::InvalidSetting(format!(
                "the target is [{heads} heads, {keys} keys] per layer but the soft rows are [{h}, {k}]: was it made for this prompt?"
            )));
        }
        let skip = settings.skip_first_keys.min(keys.saturating_sub(1));
        let kept = keys - skip;
        let soft = grouped(&soft_rows.mean(1)?, settings.granularity, kv_heads)?;
        let soft = pooled(&soft, settings.pooling)?.narrow(1, skip, kept)?;
        let wanted = grouped(&target.get(layer)?, settings.granularity, kv_heads)?
            .to_dtype(soft.dtype())?
            .narrow(1, skip, kept)?;
        let (soft, wanted) = match settings.loss {
            LossKind::Mse if settings.renormalise => (renormalised(&soft)?, renormalised(&wanted)?),
            _ => (soft, wanted),
        };
        let term = match settings.loss {
            LossKind::Mse => {
                let mse = (soft - wanted)?.sqr()?.mean(D::Minus1)?;
                if settings.length_normalised {
                    (mse * (kept * kept) as f64)?
                } else {
                    mse
                }
            }
            LossKind::Kl => {
                let p = renormalised(&wanted)?;
                let q = renormalised(&soft)?;
                let log_ratio =
                    (p.clamp(LOG_FLOOR, 1.0)?.log()? - q.clamp(LOG_FLOOR, 1.0)?.log()?)?;
                (p * log_ratio)?.sum(D::Minus1)?
            }
            LossKind::TopK => {
                let p = top_keys(&wanted, settings.top_k, settings.mass_share_on(layer))?;
                let log_q = renormalised(&soft)?.clamp(LOG_FLOOR, 1.0)?.log()?;
                (p * log_q)?.sum(D::Minus1)?.neg()?
            }
        };
        terms.push(term);
    }
    Ok(Tensor::stack(&terms, 0)?)
}

/// The objective: the mean of [`loss_grid`] over heads, then over layers (weighted by the
/// settings' layer weights when there are any).
pub fn objective(
    rows: &[Tensor],
    target: &Tensor,
    settings: &ObjectiveSettings,
    kv_heads: usize,
) -> Result<Tensor> {
    let grid = loss_grid(rows, target, settings, kv_heads)?;
    if settings.layer_weights.is_empty() {
        return Ok(grid.mean_all()?);
    }
    let layers = rows.len();
    let chosen = settings.layers.indices(layers)?;
    let weights = layer_weights(&settings.layer_weights, &chosen, layers)?;
    let total: f64 = weights.iter().sum();
    let shares: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let shares = Tensor::from_vec(shares, chosen.len(), grid.device())?.to_dtype(grid.dtype())?;
    Ok((grid.mean(1)? * shares)?.sum_all()?)
}

/// For each row of `target` (`[heads, keys]`, no graph needed), the weights of its `k` largest
/// keys (equal values go to the earlier key; `k` at most the row's length), 0 elsewhere: each
/// top key weighs `(1 − mass_share)/k + mass_share · t_j / Σ t` with the sum over the top keys
/// (a row whose top keys sum to 0 spreads evenly), so every row's weights sum to 1.
fn top_keys(target: &Tensor, k: usize, mass_share: f64) -> Result<Tensor> {
    let rows = target.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
    let keys = rows.first().map_or(0, Vec::len);
    let k = k.clamp(1, keys.max(1));
    let mut weights = vec![0f64; rows.len() * keys];
    for (r, row) in rows.iter().enumerate() {
        let mut order: Vec<usize> = (0..keys).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let top = &order[..k];
        let mass: f64 = top.iter().map(|&j| row[j]).sum();
        for &j in top {
            let share = if mass > 0.0 {
                row[j] / mass
            } else {
                1.0 / k as f64
            };
            weights[r * keys + j] = (1.0 - mass_share) / k as f64 + mass_share * share;
        }
    }
    Ok(Tensor::from_vec(weights, (rows.len(), keys), target.device())?.to_dtype(target.dtype())?)
}

/// Rows `[query_heads, keys]` reduced to `[kv_heads, keys]` over each GQA group (`repeat_kv`'s
/// layout: KV head `k` serves query heads `k·g .. (k+1)·g`) at a KV-head granularity; unchanged
/// per query head. The maximum passes its gradient to the group's largest row at each key.
fn grouped(rows: &Tensor, granularity: Granularity, kv_heads: usize) -> Result<Tensor> {
    let Granularity::KvHead(reduce) = granularity else {
        return Ok(rows.clone());
    };
    let (heads, keys) = rows.dims2()?;
    let by_group = rows.reshape((kv_heads, heads / kv_heads, keys))?;
    Ok(match reduce {
        GroupReduce::Mean => by_group.mean(1)?,
        GroupReduce::Max => by_group.max(1)?,
    })
}

/// Rows `[heads, keys]` (non-negative) pooled along the keys as [`Pooling`] defines it for
/// scores: the maximum or the mean over a centred window of `kernel` keys. Zero padding stands
/// for the −∞ edges of max-pooling, since attention is never negative; a mean counts the
/// padding, as in SnapKV. Differentiable: the maximum passes its gradient to the largest key of
/// each window.
fn pooled(rows: &Tensor, pooling: Pooling) -> Result<Tensor> {
    let kernel = pooling.kernel();
    if pooling == Pooling::None || kernel <= 1 {
        return Ok(rows.clone());
    }
    let (_, keys) = rows.dims2()?;
    let half = kernel / 2;
    let padded = rows.pad_with_zeros(D::Minus1, half, half)?;
    let mut acc = padded.narrow(1, 0, keys)?;
    for offset in 1..kernel {
        let shifted = padded.narrow(1, offset, keys)?;
        acc = match pooling {
            Pooling::Avg { .. } => (acc + shifted)?,
            _ => acc.maximum(&shifted)?,
        };
    }
    Ok(match pooling {
        Pooling::Avg { .. } => (acc / kernel as f64)?,
        _ => acc,
    })
}

/// Rows `[heads, keys]` divided by their sums.
fn renormalised(rows: &Tensor) -> Result<Tensor> {
    let sums = rows.sum_keepdim(D::Minus1)?.clamp(LOG_FLOOR, f64::MAX)?;
    Ok(rows.broadcast_div(&sums)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    #[test]
    fn layer_sets_parse_and_check_bounds() {
        assert_eq!("all".parse::<LayerSet>().unwrap(), LayerSet::All);
        let set: LayerSet = "4-6, 1,5".parse().unwrap();
        assert_eq!(set, LayerSet::Only(vec![1, 4, 5, 6]));
        assert_eq!(set.to_string(), "1,4,5,6");
        assert_eq!(set.indices(7).unwrap(), vec![1, 4, 5, 6]);
        assert!(
            set.indices(6)
                .unwrap_err()
                .to_string()
                .contains("layer 6 does not exist")
        );
        assert!("3-1".parse::<LayerSet>().is_err());
        assert!("x".parse::<LayerSet>().is_err());
        assert_eq!(LayerSet::All.indices(3).unwrap(), vec![0, 1, 2]);
    }

    /// Two layers, one head, two soft rows over three keys, and the target: soft rows
    /// `[layers][head][soft token][key]`, target `[layers][head][key]`.
    fn two_layer_example() -> (Vec<Tensor>, Tensor) {
        let dev = Device::Cpu;
        let rows = vec![
            Tensor::new(&[[[0.5f64, 0.25, 0.0], [0.1, 0.2, 0.3]]], &dev).unwrap(),
            Tensor::new(&[[[0.2f64, 0.2, 0.2], [0.2, 0.2, 0.2]]], &dev).unwrap(),
        ];
        let target = Tensor::new(&[[[0.3f64, 0.3, 0.3]], [[0.1, 0.1, 0.4]]], &dev).unwrap();
        (rows, target)
    }

    /// The example's losses against hand-computed values.
    #[test]
    fn losses_match_hand_computed_values() {
        let (rows, target) = two_layer_example();
        // Layer 0: mean rows (0.3, 0.225, 0.15) vs (0.3, 0.3, 0.3): (0 + 0.075² + 0.15²) / 3.
        // Layer 1: (0.2, 0.2, 0.2) vs (0.1, 0.1, 0.4): (0.01 + 0.01 + 0.04) / 3.
        let mse0 = (0.075f64.powi(2) + 0.15f64.powi(2)) / 3.0;
        let mse1 = 0.06 / 3.0;
        let plain = ObjectiveSettings {
            length_normalised: false,
            ..ObjectiveSettings::default()
        };
        let grid = loss_grid(&rows, &target, &plain, 1)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        assert!((grid[0][0] - mse0).abs() < 1e-12 && (grid[1][0] - mse1).abs() < 1e-12);
        let total = objective(&rows, &target, &plain, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - (mse0 + mse1) / 2.0).abs() < 1e-12);

        let only_one = ObjectiveSettings {
            layers: LayerSet::Only(vec![1]),
            ..plain.clone()
        };
        let total = objective(&rows, &target, &only_one, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - mse1).abs() < 1e-12);

        // Renormalised layer 1: (1/3, 1/3, 1/3) vs (1/6, 1/6, 2/3).
        let renormalised = ObjectiveSettings {
            layers: LayerSet::Only(vec![1]),
            renormalise: true,
            ..plain.clone()
        };
        let want = (2.0 * (1.0f64 / 6.0).powi(2) + (1.0f64 / 3.0).powi(2)) / 3.0;
        let total = objective(&rows, &target, &renormalised, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");

        // Length-normalised layer 1: rows times 3 keys, i.e. the MSE times 9.
        let normalised = ObjectiveSettings {
            layers: LayerSet::Only(vec![1]),
            length_normalised: true,
            ..plain.clone()
        };
        let total = objective(&rows, &target, &normalised, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - 9.0 * mse1).abs() < 1e-12, "{total}");

        // KL(target ‖ soft) of layer 1 renormalised.
        let kl = ObjectiveSettings {
            loss: LossKind::Kl,
            layers: LayerSet::Only(vec![1]),
            layer_weights: Vec::new(),
            renormalise: false,
            length_normalised: true,
            skip_first_keys: 0,
            top_k: 64,
            top_k_mass_share: 0.0,
            top_k_mass_share_layers: LayerSet::All,
            pooling: Pooling::None,
            granularity: Granularity::QueryHead,
        };
        let p = [1.0f64 / 6.0, 1.0 / 6.0, 2.0 / 3.0];
        let want: f64 = p.iter().map(|&pi| pi * (pi / (1.0 / 3.0)).ln()).sum();
        let total = objective(&rows, &target, &kl, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");
    }

    /// The example's plain MSEs (0.009375 and 0.02 in layers 0 and 1) weighted 1 and 3:
    /// (0.009375 + 3 · 0.02) / 4; a later entry overrides an earlier one; weights that leave
    /// nothing, or name a layer the model lacks, are errors.
    #[test]
    fn layer_weights_weigh_the_mean_over_layers() {
        let (rows, target) = two_layer_example();
        let (mse0, mse1) = ((0.075f64.powi(2) + 0.15f64.powi(2)) / 3.0, 0.06 / 3.0);
        let weighted = |weights: &[&str]| ObjectiveSettings {
            length_normalised: false,
            layer_weights: weights.iter().map(|w| w.parse().unwrap()).collect(),
            ..ObjectiveSettings::default()
        };
        let total = |settings: &ObjectiveSettings| {
            objective(&rows, &target, settings, 1)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let want = (mse0 + 3.0 * mse1) / 4.0;
        let got = total(&weighted(&["1=3"]));
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let got = total(&weighted(&["0-1=5", "0=1", "1=3"]));
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let got = total(&weighted(&["0=0"]));
        assert!((got - mse1).abs() < 1e-12, "{got} vs {mse1}");
        let error = |weights: &[&str]| {
            let settings = weighted(weights);
            let early = settings.check_layers(2).unwrap_err().to_string();
            let late = objective(&rows, &target, &settings, 1)
                .unwrap_err()
                .to_string();
            assert_eq!(early, late);
            late
        };
        assert!(error(&["all=0"]).contains("weight 0"));
        assert!(error(&["2=3"]).contains("layer 2 does not exist"));
        assert!(weighted(&["1=3"]).check_layers(2).is_ok());
        assert!("1".parse::<LayerWeight>().is_err());
        assert!("1=-2".parse::<LayerWeight>().is_err());
        assert!("1=x".parse::<LayerWeight>().is_err());
        assert_eq!(
            "11-13=2.5".parse::<LayerWeight>().unwrap().to_string(),
            "11,12,13=2.5"
        );
    }

    /// Leaving the first key out: layer 1 of the example above over keys 1 and 2 only,
    /// renormalised: (1/2, 1/2) against (0.2, 0.8).
    #[test]
    fn skipping_the_first_keys_compares_the_rest() {
        let (rows, target) = two_layer_example();
        let settings = ObjectiveSettings {
            layers: LayerSet::Only(vec![1]),
            renormalise: true,
            length_normalised: false,
            skip_first_keys: 1,
            ..ObjectiveSettings::default()
        };
        let want = (0.3f64.powi(2) + 0.3f64.powi(2)) / 2.0;
        let total = objective(&rows, &target, &settings, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");
        // Length normalisation counts the keys that remain: 2² times the MSE.
        let normalised = ObjectiveSettings {
            length_normalised: true,
            ..settings
        };
        let total = objective(&rows, &target, &normalised, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - 4.0 * want).abs() < 1e-12, "{total}");
    }

    /// Two layers of one head over three keys, and the top-2 loss on layer 1 with `pooling`.
    fn top_two_on_layer_one(pooling: Pooling) -> (Vec<Tensor>, Tensor, ObjectiveSettings) {
        let dev = Device::Cpu;
        let rows = vec![
            Tensor::new(&[[[0.5f64, 0.25, 0.0], [0.1, 0.2, 0.3]]], &dev).unwrap(),
            Tensor::new(&[[[0.1f64, 0.2, 0.4], [0.1, 0.2, 0.2]]], &dev).unwrap(),
        ];
        let target = Tensor::new(&[[[0.3f64, 0.3, 0.3]], [[0.1, 0.1, 0.4]]], &dev).unwrap();
        let settings = ObjectiveSettings {
            loss: LossKind::TopK,
            layers: LayerSet::Only(vec![1]),
            top_k: 2,
            pooling,
            ..ObjectiveSettings::default()
        };
        (rows, target, settings)
    }

    /// The top-k loss on layer 1: the target (0.1, 0.1, 0.4) has its top two keys at 2, then 0
    /// (the tie goes to the earlier key); the soft rows' mean (0.1, 0.2, 0.3) renormalised is
    /// (1/6, 1/3, 1/2), so the loss is −(ln(1/2) + ln(1/6)) / 2.
    #[test]
    fn the_top_k_loss_reads_the_targets_top_keys() {
        let (rows, target, settings) = top_two_on_layer_one(Pooling::None);
        let mask = top_keys(&target.get(1).unwrap(), 2, 0.0)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        assert_eq!(mask, vec![vec![0.5, 0.0, 0.5]]);
        // Soft mean row of layer 1: (0.1, 0.2, 0.3) renormalised = (1/6, 1/3, 1/2).
        let want = -((1.0f64 / 6.0).ln() + 0.5f64.ln()) / 2.0;
        let total = objective(&rows, &target, &settings, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");
    }

    /// With half the weight spread by the answer's attention: the top keys 2 and 0 of
    /// (0.1, 0.1, 0.4) hold 0.4 and 0.1 of their 0.5, so they weigh 1/4 + 0.4 = 0.65 and
    /// 1/4 + 0.1 = 0.35, and the loss is −(0.65 ln(1/2) + 0.35 ln(1/6)). A row whose top keys
    /// hold nothing spreads evenly.
    #[test]
    fn the_top_k_losss_mass_share_weighs_keys_by_the_answers_attention() {
        let (rows, target, mut settings) = top_two_on_layer_one(Pooling::None);
        settings.top_k_mass_share = 0.5;
        let weights = top_keys(&target.get(1).unwrap(), 2, 0.5)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        assert!((weights[0][0] - 0.35).abs() < 1e-12, "{weights:?}");
        assert_eq!(weights[0][1], 0.0);
        assert!((weights[0][2] - 0.65).abs() < 1e-12, "{weights:?}");
        let want = -(0.65 * 0.5f64.ln() + 0.35 * (1.0f64 / 6.0).ln());
        let total = objective(&rows, &target, &settings, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");
        // Scoped to layer 0, the share leaves layer 1's top keys alike: the plain top-k loss.
        settings.top_k_mass_share_layers = LayerSet::Only(vec![0]);
        let plain = -((1.0f64 / 6.0).ln() + 0.5f64.ln()) / 2.0;
        let scoped = objective(&rows, &target, &settings, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((scoped - plain).abs() < 1e-12, "{scoped} vs {plain}");
        settings.top_k_mass_share_layers = LayerSet::Only(vec![1, 5]);
        assert!(settings.check_layers(2).is_err());
        let silent = Tensor::new(&[[0.0f64, 0.0, 0.0]], &Device::Cpu).unwrap();
        let even = top_keys(&silent, 2, 1.0).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!(even, vec![vec![0.5, 0.5, 0.0]]);
    }

    /// Max- and mean-pooling with kernel 3 over (0.1, 0, 0.4, 0, 0.2), by hand; the maximum's
    /// gradient goes to the largest key of each window (the 0.4 key wins three windows).
    #[test]
    fn pooling_the_soft_row_matches_hand_computed_values() {
        let dev = Device::Cpu;
        let row = candle_core::Var::new(&[[0.1f64, 0.0, 0.4, 0.0, 0.2]], &dev).unwrap();
        let max = pooled(row.as_tensor(), Pooling::Max { kernel: 3 }).unwrap();
        assert_eq!(
            max.to_vec2::<f64>().unwrap(),
            vec![vec![0.1, 0.4, 0.4, 0.4, 0.2]]
        );
        let grads = max.sum_all().unwrap().backward().unwrap();
        let grad = grads.get(&row).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!(grad, vec![vec![1.0, 0.0, 3.0, 0.0, 1.0]]);
        let avg = pooled(row.as_tensor(), Pooling::Avg { kernel: 3 })
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let want = [0.1, 0.5, 0.4, 0.6, 0.2].map(|v| v / 3.0);
        for (got, want) in avg[0].iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let none = pooled(row.as_tensor(), Pooling::None).unwrap();
        assert_eq!(
            none.to_vec2::<f64>().unwrap(),
            vec![vec![0.1, 0.0, 0.4, 0.0, 0.2]]
        );
    }

    /// Training pools as eviction does: `pooled` equals [`Pooling::apply`], the scores' pooling,
    /// on an uneven row with peaks at the edges, for each kind and a few kernels.
    #[test]
    fn pooling_the_soft_row_equals_the_pooling_eviction_applies() {
        let row: Vec<f32> = (0..23)
            .map(|i| (i * 7 % 11) as f32 * 0.09 + if i == 0 || i == 22 { 1.0 } else { 0.0 })
            .collect();
        let tensor = Tensor::new(row.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        for pooling in [
            Pooling::Max { kernel: 3 },
            Pooling::Max { kernel: 7 },
            Pooling::Avg { kernel: 5 },
            Pooling::Avg { kernel: 7 },
        ] {
            let mut want = vec![0f32; row.len()];
            pooling.apply(&row, &mut want);
            let got = pooled(&tensor, pooling).unwrap().to_vec2::<f32>().unwrap();
            for (key, (g, w)) in got[0].iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-6, "{pooling:?} key {key}: {g} vs {w}");
            }
        }
    }

    /// The top-k loss on max3-pooled soft rows: layer 1's soft mean (0.1, 0.2, 0.3) pools to
    /// (0.2, 0.3, 0.3), renormalised (0.25, 0.375, 0.375); the target's top two keys are 2 and 0.
    #[test]
    fn the_pooled_top_k_loss_compares_the_pooled_soft_row() {
        let (rows, target, settings) = top_two_on_layer_one(Pooling::Max { kernel: 3 });
        let want = -(0.375f64.ln() + 0.25f64.ln()) / 2.0;
        let total = objective(&rows, &target, &settings, 1)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((total - want).abs() < 1e-12, "{total} vs {want}");
    }

    /// One layer, two query heads sharing one KV head, one soft token over three keys. Soft rows
    /// (0.2, 0.2, 0.6) and (0.4, 0.4, 0.2), targets (0.7, 0.1, 0.2) and (0.1, 0.5, 0.4); the
    /// top-1 loss per query head reads key 0 of head 0 and key 1 of head 1, the group mean
    /// (0.3, 0.3, 0.4) against the mean target's top key 0, the group max (0.4, 0.4, 0.6),
    /// renormalised, against the max target's top key 0.
    #[test]
    fn a_kv_head_granularity_compares_each_groups_reduced_rows() {
        let dev = Device::Cpu;
        let rows = vec![Tensor::new(&[[[0.2f64, 0.2, 0.6]], [[0.4, 0.4, 0.2]]], &dev).unwrap()];
        let target = Tensor::new(&[[[0.7f64, 0.1, 0.2], [0.1, 0.5, 0.4]]], &dev).unwrap();
        let loss = |granularity| {
            let settings = ObjectiveSettings {
                loss: LossKind::TopK,
                top_k: 1,
                granularity,
                ..ObjectiveSettings::default()
            };
            objective(&rows, &target, &settings, 1)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let cases = [
            (Granularity::QueryHead, -(0.2f64.ln() + 0.4f64.ln()) / 2.0),
            (Granularity::KvHead(GroupReduce::Mean), -0.3f64.ln()),
            (Granularity::KvHead(GroupReduce::Max), -(0.4f64 / 1.4).ln()),
        ];
        for (granularity, want) in cases {
            let got = loss(granularity);
            assert!(
                (got - want).abs() < 1e-12,
                "{granularity:?}: {got} vs {want}"
            );
        }
        let grid = loss_grid(
            &rows,
            &target,
            &ObjectiveSettings {
                granularity: Granularity::KvHead(GroupReduce::Mean),
                ..ObjectiveSettings::default()
            },
            1,
        )
        .unwrap();
        assert_eq!(grid.dims(), [1, 1], "one row per KV head");
        let err = objective(&rows, &target, &ObjectiveSettings::default(), 3).unwrap_err();
        assert!(err.to_string().contains("cannot be grouped"), "{err}");
    }

    #[test]
    fn a_target_for_another_prompt_is_refused() {
        let rows = vec![Tensor::zeros((2, 4, 5), DType::F32, &Device::Cpu).unwrap()];
        let target = Tensor::zeros((1, 2, 6), DType::F32, &Device::Cpu).unwrap();
        let err = objective(&rows, &target, &ObjectiveSettings::default(), 1).unwrap_err();
        assert!(
            err.to_string().contains("was it made for this prompt"),
            "{err}"
        );
    }
}

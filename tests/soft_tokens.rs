//! The differentiable soft-token path: same values as the inference path, gradients equal to
//! finite differences, the prompt cache left alone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::naive::{ids, tiny_config, tiny_llama3_config, tiny_model, tiny_qwen2_config};
use judgeq::model::{Capture, KvCache, ModelError, Transformer};
use judgeq::progress::Silent;

const PROMPT: usize = 13;
const SOFT: usize = 4;

fn prompt_cache(model: &Transformer) -> KvCache {
    let mut cache = model.new_cache(PROMPT + SOFT).unwrap();
    let input = model
        .embed(&ids(PROMPT, model.config.vocab_size, 3))
        .unwrap();
    model
        .forward(&input, &mut cache, &Capture::NONE, &Silent)
        .unwrap();
    cache
}

/// Deterministic soft embeddings `[SOFT, hidden]`.
fn soft_values(hidden: usize, dtype: DType) -> Tensor {
    let n = (SOFT * hidden) as f64;
    let t = Tensor::arange(0.0, n, &Device::Cpu)
        .unwrap()
        .reshape((SOFT, hidden))
        .unwrap();
    (t * 0.61).unwrap().cos().unwrap().to_dtype(dtype).unwrap()
}

#[test]
fn differentiable_rows_equal_the_inference_rows() {
    for config in [tiny_config(), tiny_llama3_config(), tiny_qwen2_config()] {
        let model = tiny_model(config, 41);
        let mut cache = prompt_cache(&model);
        let soft = soft_values(model.config.hidden_size, DType::F32);
        let per_layer = model.soft_token_attention(&cache, &soft).unwrap();
        assert_eq!(
            cache.len(),
            PROMPT,
            "the differentiable pass must not grow the cache"
        );

        let captured = model
            .forward(&soft, &mut cache, &Capture::rows(0, PROMPT), &Silent)
            .unwrap()
            .rows
            .unwrap();
        assert_eq!(per_layer.len(), model.config.num_layers);
        for (layer, probs) in per_layer.iter().enumerate() {
            assert_eq!(probs.dims(), [model.config.num_heads, SOFT, PROMPT]);
            let probs = probs.to_vec3::<f32>().unwrap();
            for ((h, i, k), &want) in captured
                .slice(ndarray::s![layer, .., .., ..])
                .indexed_iter()
            {
                assert!(
                    (probs[h][i][k] - want).abs() < 1e-5,
                    "layer {layer} head {h} row {i} key {k}"
                );
            }
        }
    }
}

/// A scalar of every probability with fixed, uneven weights.
fn loss(model: &Transformer, cache: &KvCache, soft: &Tensor) -> Tensor {
    let per_layer = model.soft_token_attention(cache, soft).unwrap();
    let mut total = Tensor::zeros((), DType::F64, &Device::Cpu).unwrap();
    for (layer, probs) in per_layer.iter().enumerate() {
        let count = probs.elem_count() as f64;
        let weights = Tensor::arange(0.0, count, &Device::Cpu)
            .unwrap()
            .reshape(probs.dims())
            .unwrap();
        let weights = ((weights * 0.37).unwrap() + layer as f64)
            .unwrap()
            .sin()
            .unwrap();
        let term = (probs * weights).unwrap().sum_all().unwrap();
        total = (total + term).unwrap();
    }
    total
}

#[test]
fn gradients_match_finite_differences() {
    for config in [tiny_config(), tiny_qwen2_config()] {
        let model = Transformer::random(config, 43, Device::Cpu, DType::F64).unwrap();
        let cache = prompt_cache(&model);
        let hidden = model.config.hidden_size;
        let soft = Var::from_tensor(&soft_values(hidden, DType::F64)).unwrap();
        let value = loss(&model, &cache, soft.as_tensor());
        let grads = value.backward().unwrap();
        let gradient = grads
            .get(soft.as_tensor())
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();

        let base = soft.as_tensor().to_vec2::<f64>().unwrap();
        let step = 1e-5;
        for (i, j) in [(0, 0), (0, 7), (1, 3), (2, 20), (3, 31), (3, 5)] {
            let at = |delta: f64| {
                let mut values = base.clone();
                values[i][j] += delta;
                let t = Tensor::new(values, &Device::Cpu).unwrap();
                loss(&model, &cache, &t).to_scalar::<f64>().unwrap()
            };
            let numeric = (at(step) - at(-step)) / (2.0 * step);
            let analytic = gradient[i][j];
            assert!(
                (numeric - analytic).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "d loss / d soft[{i}][{j}]: analytic {analytic}, numeric {numeric}"
            );
        }
        // The last soft token's gradient comes only through its own queries; earlier ones also
        // through the keys and values later tokens read. Both must be non-zero.
        assert!(gradient[0].iter().any(|g| g.abs() > 1e-8));
        assert!(gradient[SOFT - 1].iter().any(|g| g.abs() > 1e-8));
    }
}

#[test]
fn soft_tokens_need_a_prompt_and_the_model_width() {
    let model = tiny_model(tiny_config(), 44);
    let empty = model.new_cache(8).unwrap();
    let soft = soft_values(32, DType::F32);
    assert!(matches!(
        model.soft_token_attention(&empty, &soft),
        Err(ModelError::InvalidArgument(_))
    ));
    let cache = prompt_cache(&model);
    let narrow = soft_values(16, DType::F32);
    assert!(matches!(
        model.soft_token_attention(&cache, &narrow),
        Err(ModelError::InvalidArgument(_))
    ));
}

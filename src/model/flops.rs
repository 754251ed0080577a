//! The arithmetic floor of a prefill: the floating-point operations it cannot avoid, and the
//! time they take at a device's peak rate. A measured prefill compares against it.

use super::config::ModelConfig;

/// Parameters of the projections a token goes through in every block: Q, K, V, O and the three
/// MLP matrices (biases and norms, a few thousand values, left out).
pub fn block_parameters(config: &ModelConfig) -> u64 {
    let c = config;
    let (h, i) = (c.hidden_size as u64, c.intermediate_size as u64);
    let q = (c.num_heads * c.head_dim) as u64;
    let kv = (c.num_kv_heads * c.head_dim) as u64;
    c.num_layers as u64 * (2 * h * q + 2 * h * kv + 3 * h * i)
}

/// Floating-point operations of a prefill of `tokens` tokens, counting a multiply-add as two:
///
/// - projections: `2 x block parameters x tokens`;
/// - causal attention: query row `t` (from 1) scores `t` keys and sums `t` values, `2 x head_dim`
///   operations each, per layer and query head: `2 x layers x heads x head_dim x tokens x
///   (tokens + 1)`;
/// - the LM head on the last row: `2 x vocab x hidden`.
///
/// Softmax, norms, rotary embeddings and SwiGLU's element-wise work are a few operations per
/// element and left out.
pub fn prefill_flops(config: &ModelConfig, tokens: usize) -> f64 {
    let c = config;
    let n = tokens as f64;
    let projections = 2.0 * block_parameters(c) as f64 * n;
    let attention =
        2.0 * c.num_layers as f64 * c.num_heads as f64 * c.head_dim as f64 * n * (n + 1.0);
    let head = 2.0 * c.vocab_size as f64 * c.hidden_size as f64;
    projections + attention + head
}

/// Seconds `flops` take at `tera_flops_per_second` (10^12 operations per second).
pub fn floor_seconds(flops: f64, tera_flops_per_second: f64) -> f64 {
    flops / (tera_flops_per_second * 1e12)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bench::llama31_8b_shape;

    #[test]
    fn llama_8b_has_seven_billion_block_parameters() {
        // Per block: q 4096 x 4096 + k, v 2 x 4096 x 1024 + o 4096 x 4096 + 3 x 4096 x 14336
        // = 16,777,216 + 8,388,608 + 16,777,216 + 176,160,768 = 218,103,808; x 32 layers.
        assert_eq!(block_parameters(&llama31_8b_shape(32, 1024)), 6_979_321_856);
        assert_eq!(block_parameters(&llama31_8b_shape(1, 1024)), 218_103_808);
    }

    #[test]
    fn the_floor_adds_projections_attention_and_the_head() {
        let config = llama31_8b_shape(32, 1024);
        // 8192 tokens: 2 x 6,979,321,856 x 8192 = 114,349,209,288,704 for the projections;
        // 2 x 32 x 32 x 128 = 262,144 times 8192 x 8193 = 67,117,056 gives
        // 17,594,333,528,064 for attention; 2 x 1024 x 4096 = 8,388,608 for the head.
        let want = 114_349_209_288_704.0 + 17_594_333_528_064.0 + 8_388_608.0;
        let got = prefill_flops(&config, 8192);
        assert!((got - want).abs() / want < 1e-12, "{got} vs {want}");
        // At 989 TFLOP/s (an H100's or H200's dense bf16 rate): 0.13341 s.
        let seconds = floor_seconds(got, 989.0);
        assert!((seconds - 0.133_411).abs() < 1e-5, "{seconds}");
    }
}

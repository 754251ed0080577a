//! Tiny checkpoints written by tests: Hugging Face directories (config.json, tokenizer.json,
//! tokenizer_config.json, generation_config.json, one or two safetensors shards) for Llama
//! (with Llama 3.1 rotary scaling), Mistral and Qwen2 (q/k/v biases), and GGUF files in
//! llama.cpp's layout (Q/K rows interleaved for `llama`). Weights are deterministic
//! pseudo-random numbers, so a test can rebuild the exact values it expects.
//!
//! Use: `mod common;` then `common::tiny_checkpoint::write_hf(&TinySpec::llama())`.

#![allow(
    dead_code,
    reason = "each test binary uses only some of the shared helpers"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value as GgufValue};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::json;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// ChatML as SmolLM2 writes it (with its default system prompt).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Special tokens of the tiny tokenizer, after the 256 bytes and the merges.
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
/// Merges of the tiny tokenizer (each result is a token).
pub const MERGES: [(&str, &str); 4] = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "s")];

/// Id of a special token of the tiny tokenizer.
pub fn special_id(token: &str) -> u32 {
    let at = SPECIALS
        .iter()
        .position(|s| *s == token)
        .expect("a tiny special token");
    (256 + MERGES.len() + at) as u32
}

/// Family of a tiny checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
}

/// Shape and layout of a tiny checkpoint.
#[derive(Clone, Debug)]
pub struct TinySpec {
    pub family: Family,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Whether config.json states `head_dim` explicitly.
    pub explicit_head_dim: bool,
    pub vocab: usize,
    pub max_positions: usize,
    pub tie: bool,
    /// Llama 3.1 rotary scaling in config.json.
    pub llama3_rope: bool,
    /// Number of safetensors files (1, or 2 with an index).
    pub shards: usize,
    /// Dtype of the stored weights.
    pub dtype: DType,
    /// Seed of the weights.
    pub seed: u64,
    /// Write the chat template as a list of named templates.
    pub template_list: bool,
}

impl TinySpec {
    /// Llama with GQA (4 query heads over 2 KV heads), Llama 3.1 rope scaling, untied head.
    pub fn llama() -> Self {
        Self {
            family: Family::Llama,
            hidden: 16,
            intermediate: 24,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 4,
            explicit_head_dim: false,
            vocab: 272,
            max_positions: 128,
            tie: false,
            llama3_rope: true,
            shards: 1,
            dtype: DType::F32,
            seed: 1,
            template_list: false,
        }
    }

    /// Mistral with an explicit head_dim different from hidden/heads, bf16 weights.
    pub fn mistral() -> Self {
        Self {
            family: Family::Mistral,
            head_dim: 6,
            explicit_head_dim: true,
            llama3_rope: false,
            dtype: DType::BF16,
            seed: 2,
            template_list: true,
            ..Self::llama()
        }
    }

    /// Qwen2 with q/k/v biases and a tied head.
    pub fn qwen2() -> Self {
        Self {
            family: Family::Qwen2,
            tie: true,
            llama3_rope: false,
            seed: 3,
            ..Self::llama()
        }
    }
}

/// A checkpoint in a temporary directory and the tensors it holds.
pub struct TinyCheckpoint {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// Model directory (HF) or file (GGUF).
    pub path: PathBuf,
    /// Tensors as written, by Hugging Face name and in Hugging Face row order (f32).
    pub tensors: BTreeMap<String, Tensor>,
    pub spec: TinySpec,
}

/// Deterministic values in [-0.5, 0.5) (xorshift64*).
pub fn pseudo_random(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            x as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// The Hugging Face tensors of `spec`, f32, with values representable in the stored dtype.
pub fn hf_tensors(spec: &TinySpec) -> BTreeMap<String, Tensor> {
    let (h, i, d) = (spec.hidden, spec.intermediate, spec.head_dim);
    let (q, kv) = (spec.heads * d, spec.kv_heads * d);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![spec.vocab, h]),
        ("model.norm.weight".into(), vec![h]),
    ];
    if !spec.tie {
        shapes.push(("lm_head.weight".into(), vec![spec.vocab, h]));
    }
    for l in 0..spec.layers {
        let p = format!("model.layers.{l}");
        shapes.push((format!("{p}.input_layernorm.weight"), vec![h]));
        shapes.push((format!("{p}.self_attn.q_proj.weight"), vec![q, h]));
        shapes.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h]));
        shapes.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h]));
        shapes.push((format!("{p}.self_attn.o_proj.weight"), vec![h, q]));
        if spec.family == Family::Qwen2 {
            shapes.push((format!("{p}.self_attn.q_proj.bias"), vec![q]));
            shapes.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
            shapes.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
        }
        shapes.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        shapes.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
        shapes.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
        shapes.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
    }
    shapes
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let t = pseudo_random(&shape, spec.seed * 1000 + k as u64);
            // Round-trip through the stored dtype so that the f32 values are exactly stored.
            let t = t
                .to_dtype(spec.dtype)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
            (name, t)
        })
        .collect()
}

/// GPT-2's byte → printable character map.
pub fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap()
            }
        })
        .collect()
}

/// Vocabulary (id order) and merges of the tiny byte-level BPE.
pub fn tiny_vocab() -> (Vec<String>, Vec<(String, String)>) {
    let mut tokens: Vec<String> = byte_chars().into_iter().map(String::from).collect();
    let merges: Vec<(String, String)> = MERGES
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.extend(SPECIALS.iter().map(|s| (*s).to_owned()));
    (tokens, merges)
}

/// A byte-level BPE over the 256 bytes plus [`MERGES`] and ChatML specials, with SmolLM2's
/// pre-tokenizer (single digits, then GPT-2's split).
pub fn tiny_tokenizer() -> Tokenizer {
    let (tokens, merges) = tiny_vocab();
    let base: Vocab = tokens[..256 + MERGES.len()]
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(base, merges)
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(tokenizers::decoders::byte_level::ByteLevel::default()));
    tokenizer
        .add_special_tokens(
            SPECIALS
                .iter()
                .map(|s| AddedToken::from(*s, true).normalized(false)),
        )
        .unwrap();
    tokenizer
}

fn config_json(spec: &TinySpec) -> serde_json::Value {
    let model_type = match spec.family {
        Family::Llama => "llama",
        Family::Mistral => "mistral",
        Family::Qwen2 => "qwen2",
    };
    let mut c = json!({
        "architectures": ["TinyForCausalLM"],
        "model_type": model_type,
        "hidden_size": spec.hidden,
        "intermediate_size": spec.intermediate,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "num_key_value_heads": spec.kv_heads,
        "vocab_size": spec.vocab,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "max_position_embeddings": spec.max_positions,
        "tie_word_embeddings": spec.tie,
        "hidden_act": "silu",
        "bos_token_id": special_id("<|im_start|>"),
        "eos_token_id": special_id("<|im_end|>"),
        "torch_dtype": "float32",
    });
    let m = c.as_object_mut().unwrap();
    if spec.explicit_head_dim {
        m.insert("head_dim".into(), json!(spec.head_dim));
    }
    match spec.family {
        Family::Llama => {
            m.insert("attention_bias".into(), json!(false));
            m.insert(
                "rope_scaling".into(),
                if spec.llama3_rope {
                    json!({"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 64, "rope_type": "llama3"})
                } else {
                    serde_json::Value::Null
                },
            );
        }
        Family::Mistral => {
            m.insert("sliding_window".into(), serde_json::Value::Null);
        }
        Family::Qwen2 => {
            m.insert("use_sliding_window".into(), json!(false));
            m.insert("sliding_window".into(), json!(32));
        }
    }
    c
}

/// Writes the Hugging Face directory of `spec` into a fresh temporary directory.
pub fn write_hf(spec: &TinySpec) -> TinyCheckpoint {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-model");
    std::fs::create_dir(&path).unwrap();
    let tensors = hf_tensors(spec);
    write_json(&path.join("config.json"), &config_json(spec));
    tiny_tokenizer()
        .save(path.join("tokenizer.json"), false)
        .unwrap();
    let template = if spec.template_list {
        json!([{"name": "tool_use", "template": "{{ raise_exception('wrong template') }}"},
               {"name": "default", "template": CHATML_TEMPLATE}])
    } else {
        json!(CHATML_TEMPLATE)
    };
    write_json(
        &path.join("tokenizer_config.json"),
        &json!({"bos_token": null, "eos_token": {"content": "<|im_end|>", "special": true},
                "pad_token": "<|im_end|>", "chat_template": template}),
    );
    write_json(
        &path.join("generation_config.json"),
        &json!({"eos_token_id": [special_id("<|im_end|>"), special_id("<|endoftext|>")]}),
    );
    write_weights(&path, &tensors, spec.dtype, spec.shards);
    TinyCheckpoint {
        dir,
        path,
        tensors,
        spec: spec.clone(),
    }
}

/// Writes `tensors` (stored as `dtype`) as `model.safetensors`, or as `shards` files with
/// `model.safetensors.index.json`.
pub fn write_weights(dir: &Path, tensors: &BTreeMap<String, Tensor>, dtype: DType, shards: usize) {
    let stored: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_dtype(dtype).unwrap()))
        .collect();
    if shards <= 1 {
        let map: HashMap<String, Tensor> = stored.into_iter().collect();
        candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
        return;
    }
    let mut parts: Vec<HashMap<String, Tensor>> = vec![HashMap::new(); shards];
    let mut weight_map = serde_json::Map::new();
    for (k, (name, t)) in stored.into_iter().enumerate() {
        let shard = k % shards;
        weight_map.insert(
            name.clone(),
            json!(format!(
                "model-{:05}-of-{:05}.safetensors",
                shard + 1,
                shards
            )),
        );
        parts[shard].insert(name, t);
    }
    for (shard, part) in parts.iter().enumerate() {
        let file = dir.join(format!(
            "model-{:05}-of-{:05}.safetensors",
            shard + 1,
            shards
        ));
        candle_core::safetensors::save(part, file).unwrap();
    }
    write_json(
        &dir.join("model.safetensors.index.json"),
        &json!({"metadata": {}, "weight_map": weight_map}),
    );
}

/// Pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// llama.cpp's Q/K row permutation (its converter's `permute`), for `heads` heads.
pub fn interleave_rows(w: &Tensor, heads: usize) -> Tensor {
    let dims = w.dims().to_vec();
    let half = dims[0] / heads / 2;
    let rest: usize = dims[1..].iter().product();
    w.reshape((heads, 2, half, rest))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape(dims)
        .unwrap()
}

/// GGUF name of a Hugging Face tensor name.
pub fn gguf_name(hf: &str) -> String {
    let global = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    if let Some((_, g)) = global.iter().find(|(h, _)| *h == hf) {
        return (*g).to_owned();
    }
    let rest = hf.strip_prefix("model.layers.").unwrap();
    let (layer, rest) = rest.split_once('.').unwrap();
    let part = match rest {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "self_attn.q_proj.bias" => "attn_q.bias",
        "self_attn.k_proj.bias" => "attn_k.bias",
        "self_attn.v_proj.bias" => "attn_v.bias",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        other => panic!("no GGUF name for {other}"),
    };
    format!("blk.{layer}.{part}")
}

/// Writes `spec` (Llama or Qwen2 family) as a GGUF file the way llama.cpp's converter does:
/// f32 tensors, Q/K rows interleaved for `llama`, tokenizer and chat template in the
/// metadata. `extra` metadata entries are added (or replace defaults).
pub fn write_gguf(spec: &TinySpec, extra: &[(&str, GgufValue)]) -> TinyCheckpoint {
    let arch = match spec.family {
        Family::Llama => "llama",
        Family::Qwen2 => "qwen2",
        Family::Mistral => panic!("llama.cpp writes Mistral as `llama`"),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let tensors = hf_tensors(spec);
    let mut qtensors = Vec::new();
    for (name, t) in &tensors {
        let stored = match (spec.family, name.as_str()) {
            (Family::Llama, n) if n.contains("q_proj") => interleave_rows(t, spec.heads),
            (Family::Llama, n) if n.contains("k_proj") => interleave_rows(t, spec.kv_heads),
            _ => t.clone(),
        };
        qtensors.push((
            gguf_name(name),
            QTensor::quantize(&stored, GgmlDType::F32).unwrap(),
        ));
    }
    let (mut tokens, merges) = tiny_vocab();
    let mut types: Vec<GgufValue> = (0..tokens.len())
        .map(|i| GgufValue::I32(if i >= 256 + MERGES.len() { 3 } else { 1 }))
        .collect();
    // Like llama.cpp's converter, pad the token list to the embedding's rows (type UNUSED).
    for i in tokens.len()..spec.vocab {
        tokens.push(format!("[PAD{i}]"));
        types.push(GgufValue::I32(5));
    }
    let u32v = |n: usize| GgufValue::U32(n as u32);
    let mut meta: Vec<(String, GgufValue)> = vec![
        (
            "general.architecture".into(),
            GgufValue::String(arch.into()),
        ),
        (
            "general.name".into(),
            GgufValue::String("Tiny Test Model".into()),
        ),
        (format!("{arch}.block_count"), u32v(spec.layers)),
        (format!("{arch}.embedding_length"), u32v(spec.hidden)),
        (
            format!("{arch}.feed_forward_length"),
            u32v(spec.intermediate),
        ),
        (format!("{arch}.attention.head_count"), u32v(spec.heads)),
        (
            format!("{arch}.attention.head_count_kv"),
            u32v(spec.kv_heads),
        ),
        (format!("{arch}.rope.freq_base"), GgufValue::F32(100000.0)),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            GgufValue::F32(1e-5),
        ),
        (format!("{arch}.context_length"), u32v(spec.max_positions)),
        (format!("{arch}.rope.dimension_count"), u32v(spec.head_dim)),
        (
            "tokenizer.ggml.model".into(),
            GgufValue::String("gpt2".into()),
        ),
        (
            "tokenizer.ggml.pre".into(),
            GgufValue::String("smollm".into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            GgufValue::Array(
                tokens
                    .iter()
                    .map(|t| GgufValue::String(t.clone()))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.token_type".into(), GgufValue::Array(types)),
        (
            "tokenizer.ggml.merges".into(),
            GgufValue::Array(
                merges
                    .iter()
                    .map(|(a, b)| GgufValue::String(format!("{a} {b}")))
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.bos_token_id".into(),
            GgufValue::U32(special_id("<|im_start|>")),
        ),
        (
            "tokenizer.ggml.eos_token_id".into(),
            GgufValue::U32(special_id("<|im_end|>")),
        ),
        (
            "tokenizer.chat_template".into(),
            GgufValue::String(CHATML_TEMPLATE.into()),
        ),
    ];
    for (key, value) in extra {
        meta.retain(|(k, _)| k != key);
        meta.push(((*key).to_owned(), value.clone()));
    }
    let meta_refs: Vec<(&str, &GgufValue)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> =
        qtensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut file, &meta_refs, &tensor_refs).unwrap();
    TinyCheckpoint {
        dir,
        path,
        tensors,
        spec: spec.clone(),
    }
}

//! Loading checkpoints (tiny Hugging Face directories and GGUF files written by the tests),
//! tokenizer, chat template and prompt layout, and every bad input the loader must refuse.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::path::Path;

use candle_core::quantized::gguf_file::Value as GgufValue;
use candle_core::{DType, Tensor};
use judgeq::document::{DocumentError, check_document_text, read_document};
use judgeq::model::{Architecture, Llama3RopeScaling, LoadOptions, Model, ModelError, Weights};
use judgeq::progress::{Progress, Silent, Stage};
use judgeq::session::SpanKind;
use sha2::{Digest, Sha256};

use common::tiny_checkpoint::{
    CHATML_TEMPLATE, Family, TinyCheckpoint, TinySpec, special_id, tiny_tokenizer, write_gguf,
    write_hf, write_json, write_weights,
};

fn load(path: &Path) -> Result<Model, ModelError> {
    Model::load(path, &LoadOptions::default(), &Silent)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// The loaded tensor that corresponds to a Hugging Face tensor name.
fn loaded<'a>(w: &'a Weights, name: &str) -> &'a Tensor {
    match name {
        "model.embed_tokens.weight" => &w.embed,
        "model.norm.weight" => &w.final_norm,
        "lm_head.weight" => &w.lm_head,
        _ => {
            let rest = name.strip_prefix("model.layers.").unwrap();
            let (layer, part) = rest.split_once('.').unwrap();
            let l = &w.layers[layer.parse::<usize>().unwrap()];
            match part {
                "input_layernorm.weight" => &l.attn_norm,
                "post_attention_layernorm.weight" => &l.mlp_norm,
                "self_attn.q_proj.weight" => l.attn.q.weight(),
                "self_attn.k_proj.weight" => l.attn.k.weight(),
                "self_attn.v_proj.weight" => l.attn.v.weight(),
                "self_attn.o_proj.weight" => l.attn.o.weight(),
                "self_attn.q_proj.bias" => l.attn.q.bias().unwrap(),
                "self_attn.k_proj.bias" => l.attn.k.bias().unwrap(),
                "self_attn.v_proj.bias" => l.attn.v.bias().unwrap(),
                "mlp.gate_proj.weight" => l.mlp.gate.weight(),
                "mlp.up_proj.weight" => l.mlp.up.weight(),
                "mlp.down_proj.weight" => l.mlp.down.weight(),
                other => panic!("unexpected tensor {other}"),
            }
        }
    }
}

/// The model holds exactly the written tensors, and the configuration the spec declares.
fn assert_loaded_exactly(model: &Model, ck: &TinyCheckpoint) {
    let spec = &ck.spec;
    let c = &model.transformer.config;
    let arch = match spec.family {
        Family::Llama => Architecture::Llama,
        Family::Mistral => Architecture::Mistral,
        Family::Qwen2 => Architecture::Qwen2,
    };
    assert_eq!(c.architecture, arch);
    assert_eq!(
        (
            c.hidden_size,
            c.intermediate_size,
            c.num_layers,
            c.num_heads,
            c.num_kv_heads,
            c.head_dim
        ),
        (
            spec.hidden,
            spec.intermediate,
            spec.layers,
            spec.heads,
            spec.kv_heads,
            spec.head_dim
        )
    );
    assert_eq!(c.vocab_size, spec.vocab);
    assert_eq!(c.max_position_embeddings, spec.max_positions);
    assert_eq!(c.tie_word_embeddings, spec.tie);
    assert_eq!(c.attention_bias, spec.family == Family::Qwen2);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-12);

    let w = &model.transformer.weights;
    for (name, written) in &ck.tensors {
        let got = loaded(w, name);
        assert_eq!(got.dims(), written.dims(), "{name}");
        assert_eq!(got.dtype(), model.transformer.dtype, "{name}");
        let want = written.to_dtype(model.transformer.dtype).unwrap();
        assert!(
            values(got) == values(&want),
            "{name} differs from the written tensor"
        );
    }
    for layer in &w.layers {
        for lin in [&layer.attn.q, &layer.attn.k, &layer.attn.v] {
            assert_eq!(lin.bias().is_some(), spec.family == Family::Qwen2);
        }
        assert!(layer.attn.o.bias().is_none());
    }
    if spec.tie {
        assert_eq!(
            w.lm_head.id(),
            w.embed.id(),
            "a tied head is the embedding tensor itself"
        );
    } else {
        assert!(
            values(&w.lm_head) != values(&w.embed),
            "an untied head is its own tensor"
        );
    }
    assert_eq!(w.layers.len(), spec.layers);
}

fn sha256_hex(paths: &[&Path]) -> String {
    let mut h = Sha256::new();
    for p in paths {
        h.update(std::fs::read(p).unwrap());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn hf_llama_with_llama3_rope_scaling_loads_exactly() {
    let ck = write_hf(&TinySpec::llama());
    let model = load(&ck.path).unwrap();
    assert_loaded_exactly(&model, &ck);
    let c = &model.transformer.config;
    assert_eq!(
        c.rope_scaling,
        Some(Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64
        })
    );
    assert_eq!(c.rope_theta, 500000.0);
    let info = &model.info;
    assert_eq!(info.id, "tiny-model");
    assert_eq!(info.architecture, "llama");
    assert_eq!(
        info.weights_sha256,
        sha256_hex(&[&ck.path.join("model.safetensors")])
    );
    assert_eq!(
        (
            info.layers,
            info.query_heads,
            info.kv_heads,
            info.head_dim,
            info.hidden_size
        ),
        (2, 4, 2, 4, 16)
    );
    assert_eq!(info.max_context, 128);
    assert_eq!(info.kv_entry_bytes, 2 * 4 * 4);
    assert_eq!(
        model.stop_ids,
        vec![special_id("<|endoftext|>"), special_id("<|im_end|>")]
    );
}

#[test]
fn hf_mistral_bf16_with_explicit_head_dim_loads_exactly() {
    let ck = write_hf(&TinySpec::mistral());
    let model = load(&ck.path).unwrap();
    assert_loaded_exactly(&model, &ck);
    assert_eq!(model.transformer.config.head_dim, 6);
    assert_eq!(model.transformer.config.rope_scaling, None);
    // The chat template came from the `default` entry of a list of named templates.
    assert!(
        model
            .chat
            .render_user_turn("hi")
            .unwrap()
            .contains("<|im_start|>user\nhi<|im_end|>")
    );
}

#[test]
fn hf_qwen2_with_biases_and_tied_head_loads_exactly() {
    let ck = write_hf(&TinySpec::qwen2());
    let model = load(&ck.path).unwrap();
    assert_loaded_exactly(&model, &ck);
    // Qwen2's sliding window is off (`use_sliding_window: false`): the context is not capped.
    assert_eq!(model.info.max_context, 128);
}

#[test]
fn hf_two_shards_load_exactly_and_hash_in_shard_order() {
    let ck = write_hf(&TinySpec {
        shards: 2,
        ..TinySpec::llama()
    });
    assert!(!ck.path.join("model.safetensors").exists());
    let model = load(&ck.path).unwrap();
    assert_loaded_exactly(&model, &ck);
    let a = ck.path.join("model-00001-of-00002.safetensors");
    let b = ck.path.join("model-00002-of-00002.safetensors");
    assert_eq!(model.info.weights_sha256, sha256_hex(&[&a, &b]));
}

#[test]
fn requested_dtype_is_applied_to_every_weight() {
    let ck = write_hf(&TinySpec::llama());
    let options = LoadOptions {
        dtype: DType::BF16,
        ..LoadOptions::default()
    };
    let model = Model::load(&ck.path, &options, &Silent).unwrap();
    assert_loaded_exactly(&model, &ck);
    assert_eq!(model.info.kv_entry_bytes, 2 * 4 * 2);
}

#[test]
fn mistral_sliding_window_caps_the_context() {
    let ck = write_hf(&TinySpec::mistral());
    let path = ck.path.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["sliding_window"] = serde_json::json!(48);
    write_json(&path, &config);
    assert_eq!(load(&ck.path).unwrap().info.max_context, 48);
}

#[test]
fn gguf_llama_rows_are_put_back_in_hugging_face_order() {
    for tie in [false, true] {
        let ck = write_gguf(
            &TinySpec {
                tie,
                ..TinySpec::llama()
            },
            &[],
        );
        let model = load(&ck.path).unwrap();
        let spec = TinySpec {
            llama3_rope: false,
            ..ck.spec.clone()
        };
        let c = &model.transformer.config;
        assert_eq!(c.rope_theta, 100000.0);
        assert_eq!(c.rope_scaling, None);
        // assert_loaded_exactly compares Q and K with the Hugging Face rows the file was made from.
        assert_loaded_exactly(&model, &TinyCheckpoint { spec, ..ck });
        assert_eq!(model.info.id, "tiny");
    }
}

#[test]
fn gguf_qwen2_keeps_row_order_and_reads_biases() {
    let ck = write_gguf(&TinySpec::qwen2(), &[]);
    let model = load(&ck.path).unwrap();
    assert_loaded_exactly(&model, &ck);
    assert_eq!(model.info.architecture, "qwen2");
    assert_eq!(model.info.weights_sha256, sha256_hex(&[&ck.path]));
}

#[test]
fn gguf_tokenizer_matches_the_tokenizer_json_it_was_made_from() {
    let ck = write_gguf(&TinySpec::llama(), &[]);
    let model = load(&ck.path).unwrap();
    let reference = tiny_tokenizer();
    for text in [
        "the theme is 2024: 1234 cats",
        "<|im_start|>user\nthis<|im_end|>\n",
        "naïve café 😀 \t\n\n  spaces",
    ] {
        let want = reference.encode(text, false).unwrap().get_ids().to_vec();
        let got = model.tokenizer.encode(text).unwrap();
        assert_eq!(got.ids, want, "{text:?}");
        assert_eq!(model.decode_tokens(&got.ids).unwrap(), text);
    }
    // Digits are split one by one (SmolLM2's pre-tokenizer) and specials are single tokens.
    let ids = model.tokenizer.encode("<|im_start|>42").unwrap().ids;
    assert_eq!(
        ids,
        vec![special_id("<|im_start|>"), u32::from(b'4'), u32::from(b'2')]
    );
    assert_eq!(
        model.stop_ids,
        vec![special_id("<|endoftext|>"), special_id("<|im_end|>")]
    );
}

#[test]
fn chat_template_is_rendered_from_the_checkpoint() {
    let ck = write_hf(&TinySpec::llama());
    let model = load(&ck.path).unwrap();
    assert_eq!(model.chat.source(), CHATML_TEMPLATE);
    assert_eq!(
        model.chat.render_user_turn("Hello there").unwrap(),
        "<|im_start|>system\nYou are a tiny test model.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn prompt_layout_labels_document_question_and_scaffold() {
    let ck = write_hf(&TinySpec::llama());
    let model = load(&ck.path).unwrap();
    let document = "The theme of this note: 42 cats sat.\nThe end.";
    let question = "Is the theme cats?";
    let layout = model.prompt(&format!("  {document}\n"), question).unwrap();
    assert_eq!(
        layout.text,
        format!(
            "<|im_start|>system\nYou are a tiny test model.<|im_end|>\n<|im_start|>user\n{document}\n\n{question}<|im_end|>\n<|im_start|>assistant\n"
        )
    );
    let kinds: Vec<SpanKind> = layout.spans.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![
            SpanKind::Scaffold,
            SpanKind::Document,
            SpanKind::Scaffold,
            SpanKind::Question,
            SpanKind::Scaffold
        ]
    );
    // Spans tile the prompt, in order.
    assert_eq!(layout.spans[0].start, 0);
    for pair in layout.spans.windows(2) {
        assert_eq!(pair[0].end, pair[1].start);
    }
    assert_eq!(layout.spans.last().unwrap().end, layout.len());
    let text_of = |kind| {
        let s = layout.spans.iter().find(|s| s.kind == kind).unwrap();
        model.decode_tokens(&layout.ids[s.start..s.end]).unwrap()
    };
    assert_eq!(text_of(SpanKind::Document), document);
    assert_eq!(text_of(SpanKind::Question), question);
    assert_eq!(
        layout.ids,
        model.tokenizer.encode(&layout.text).unwrap().ids
    );
    assert_eq!(layout.tokens.len(), layout.len());
    assert_eq!(layout.tokens.concat(), layout.text);
    assert_eq!(layout.kind_at(layout.len() - 1), Some(SpanKind::Scaffold));

    let chat = model.chat_prompt("What is a theme?").unwrap();
    let kinds: Vec<SpanKind> = chat.spans.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![SpanKind::Scaffold, SpanKind::Question, SpanKind::Scaffold]
    );
}

#[test]
fn prompts_longer_than_the_context_are_refused() {
    let ck = write_hf(&TinySpec {
        max_positions: 80,
        ..TinySpec::llama()
    });
    let model = load(&ck.path).unwrap();
    match model
        .prompt(&"many words here ".repeat(20), "why?")
        .unwrap_err()
    {
        ModelError::PromptTooLong {
            prompt_tokens,
            extra_tokens,
            max_context,
            ..
        } => {
            assert!(prompt_tokens > 80, "{prompt_tokens}");
            assert_eq!((extra_tokens, max_context), (0, 80));
        }
        other => panic!("unexpected {other}"),
    }
    let short = model.prompt("cats", "why?").unwrap();
    let room = 80 - short.len();
    assert!(model.check_fits(short.len(), room).is_ok());
    let err = model.check_fits(short.len(), room + 1).unwrap_err();
    assert!(
        matches!(err, ModelError::PromptTooLong { extra_tokens, .. } if extra_tokens == room + 1)
    );
    assert!(err.to_string().contains("80"), "{err}");
}

#[test]
fn empty_document_or_question_is_refused() {
    let ck = write_hf(&TinySpec::llama());
    let model = load(&ck.path).unwrap();
    assert!(matches!(
        model.prompt(" \n", "q?"),
        Err(ModelError::EmptyInput { what: "document" })
    ));
    assert!(matches!(
        model.prompt("doc", "\t"),
        Err(ModelError::EmptyInput { what: "question" })
    ));
    assert!(matches!(
        model.chat_prompt(""),
        Err(ModelError::EmptyInput { what: "question" })
    ));
    assert!(matches!(
        model.decode_tokens(&[99_999]),
        Err(ModelError::Tokenizer(_))
    ));
}

// ---- Bad checkpoints -------------------------------------------------------------------

fn edit_config(ck: &TinyCheckpoint, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = ck.path.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut config);
    write_json(&path, &config);
}

#[test]
fn unknown_architecture_is_named() {
    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| c["model_type"] = serde_json::json!("gpt2"));
    match load(&ck.path).unwrap_err() {
        ModelError::UnsupportedArchitecture { path, architecture } => {
            assert_eq!(architecture, "gpt2");
            assert!(path.ends_with("config.json"));
        }
        other => panic!("unexpected {other}"),
    }
    let gguf = write_gguf(
        &TinySpec::llama(),
        &[("general.architecture", GgufValue::String("gemma3".into()))],
    );
    assert!(
        matches!(load(&gguf.path), Err(ModelError::UnsupportedArchitecture { architecture, .. }) if architecture == "gemma3")
    );
}

#[test]
fn unsupported_features_are_refused() {
    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0})
    });
    let err = load(&ck.path).unwrap_err();
    assert!(
        matches!(&err, ModelError::Unsupported { feature, .. } if feature.contains("yarn")),
        "{err}"
    );

    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| c["hidden_act"] = serde_json::json!("gelu"));
    assert!(matches!(
        load(&ck.path),
        Err(ModelError::Unsupported { .. })
    ));

    let gguf = write_gguf(
        &TinySpec::llama(),
        &[("tokenizer.ggml.pre", GgufValue::String("tekken".into()))],
    );
    let err = load(&gguf.path).unwrap_err();
    assert!(
        matches!(&err, ModelError::Unsupported { feature, .. } if feature.contains("tekken")),
        "{err}"
    );

    let gguf = write_gguf(
        &TinySpec::llama(),
        &[("tokenizer.ggml.model", GgufValue::String("llama".into()))],
    );
    assert!(matches!(
        load(&gguf.path),
        Err(ModelError::Unsupported { .. })
    ));
}

#[test]
fn missing_tensor_is_named() {
    let ck = write_hf(&TinySpec::llama());
    let mut tensors = ck.tensors.clone();
    tensors.remove("model.layers.1.mlp.up_proj.weight");
    write_weights(&ck.path, &tensors, DType::F32, 1);
    match load(&ck.path).unwrap_err() {
        ModelError::MissingTensor { path, name } => {
            assert_eq!(name, "model.layers.1.mlp.up_proj.weight");
            assert!(path.ends_with("model.safetensors"));
        }
        other => panic!("unexpected {other}"),
    }
    // An untied checkpoint without its LM head.
    let mut tensors = ck.tensors.clone();
    tensors.remove("lm_head.weight");
    write_weights(&ck.path, &tensors, DType::F32, 1);
    assert!(
        matches!(load(&ck.path), Err(ModelError::MissingTensor { name, .. }) if name == "lm_head.weight")
    );
    // A GGUF whose metadata declares more blocks than it has.
    let gguf = write_gguf(
        &TinySpec::llama(),
        &[("llama.block_count", GgufValue::U32(3))],
    );
    assert!(
        matches!(load(&gguf.path), Err(ModelError::MissingTensor { name, .. }) if name == "blk.2.attn_norm.weight")
    );
}

#[test]
fn tensor_listed_in_the_index_but_absent_from_its_shard_is_named() {
    let ck = write_hf(&TinySpec {
        shards: 2,
        ..TinySpec::llama()
    });
    let index = ck.path.join("model.safetensors.index.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    json["weight_map"]["model.norm.weight"] = serde_json::json!("model-00002-of-00002.safetensors");
    json["weight_map"]["model.layers.0.mlp.down_proj.weight"] =
        serde_json::json!("model-00001-of-00002.safetensors");
    write_json(&index, &json);
    match load(&ck.path).unwrap_err() {
        ModelError::MissingTensor { path, name } => {
            assert!(
                name == "model.norm.weight" || name == "model.layers.0.mlp.down_proj.weight",
                "{name}"
            );
            assert!(path.to_string_lossy().contains("-of-00002.safetensors"));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn shape_mismatch_names_tensor_and_shapes() {
    let ck = write_hf(&TinySpec::llama());
    let mut tensors = ck.tensors.clone();
    tensors.insert(
        "model.layers.0.self_attn.k_proj.weight".into(),
        Tensor::zeros((16, 16), DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    write_weights(&ck.path, &tensors, DType::F32, 1);
    match load(&ck.path).unwrap_err() {
        ModelError::ShapeMismatch {
            name,
            expected,
            got,
            ..
        } => {
            assert_eq!(name, "model.layers.0.self_attn.k_proj.weight");
            assert_eq!((expected, got), (vec![8, 16], vec![16, 16]));
        }
        other => panic!("unexpected {other}"),
    }
    // A config that disagrees with the weights.
    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| c["intermediate_size"] = serde_json::json!(32));
    assert!(
        matches!(load(&ck.path), Err(ModelError::ShapeMismatch { name, .. }) if name.contains("gate_proj"))
    );
    let gguf = write_gguf(
        &TinySpec::llama(),
        &[("llama.feed_forward_length", GgufValue::U32(32))],
    );
    assert!(
        matches!(load(&gguf.path), Err(ModelError::ShapeMismatch { name, .. }) if name == "blk.0.ffn_gate.weight")
    );
}

#[test]
fn malformed_config_json_is_refused_with_the_reason() {
    let ck = write_hf(&TinySpec::llama());
    std::fs::write(ck.path.join("config.json"), "{\"model_type\": \"llama\", ").unwrap();
    assert!(matches!(
        load(&ck.path),
        Err(ModelError::Malformed {
            format: "config.json",
            ..
        })
    ));

    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| {
        c.as_object_mut().unwrap().remove("hidden_size");
    });
    let err = load(&ck.path).unwrap_err();
    assert!(
        matches!(&err, ModelError::Malformed { message, .. } if message.contains("`hidden_size` is missing")),
        "{err}"
    );

    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| c["num_key_value_heads"] = serde_json::json!(3));
    let err = load(&ck.path).unwrap_err();
    assert!(
        matches!(&err, ModelError::Malformed { message, .. } if message.contains("cannot be grouped")),
        "{err}"
    );

    let ck = write_hf(&TinySpec::llama());
    edit_config(&ck, |c| c["vocab_size"] = serde_json::json!("many"));
    assert!(matches!(load(&ck.path), Err(ModelError::Malformed { .. })));
}

#[test]
fn tokenizer_larger_than_the_embedding_is_refused() {
    let ck = write_hf(&TinySpec {
        vocab: 200,
        ..TinySpec::llama()
    });
    let err = load(&ck.path).unwrap_err();
    assert!(
        matches!(
            &err,
            ModelError::Malformed {
                format: "tokenizer",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_files_are_refused() {
    let ck = write_hf(&TinySpec::llama());
    let weights = ck.path.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&weights, &bytes[..cut]).unwrap();
        let err = load(&ck.path).unwrap_err();
        assert!(
            matches!(
                &err,
                ModelError::Malformed {
                    format: "safetensors",
                    ..
                }
            ),
            "cut {cut}: {err}"
        );
    }
    let gguf = write_gguf(&TinySpec::llama(), &[]);
    let bytes = std::fs::read(&gguf.path).unwrap();
    for cut in [0, 3, 4, 24, 1000, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&gguf.path, &bytes[..cut]).unwrap();
        let err = load(&gguf.path).unwrap_err();
        assert!(
            matches!(&err, ModelError::Malformed { .. }),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn missing_chat_template_is_refused() {
    let ck = write_hf(&TinySpec::llama());
    write_json(
        &ck.path.join("tokenizer_config.json"),
        &serde_json::json!({"eos_token": "<|im_end|>"}),
    );
    let err = load(&ck.path).unwrap_err();
    assert!(
        matches!(&err, ModelError::ChatTemplate(m) if m.contains("no chat template")),
        "{err}"
    );
    // chat_template.jinja (newer transformers) is used when present.
    std::fs::write(ck.path.join("chat_template.jinja"), CHATML_TEMPLATE).unwrap();
    assert!(load(&ck.path).is_ok());
}

#[test]
fn paths_that_are_not_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some text").unwrap();
    assert!(matches!(
        load(&text),
        Err(ModelError::Malformed { format: "GGUF", .. })
    ));
    assert!(matches!(
        load(dir.path()),
        Err(ModelError::Malformed { .. })
    ));
    assert!(matches!(
        load(&dir.path().join("absent.gguf")),
        Err(ModelError::Io { .. })
    ));
    // A weight file of a directory stands for the directory.
    let ck = write_hf(&TinySpec::llama());
    assert!(load(&ck.path.join("model.safetensors")).is_ok());
}

struct CancelAfter(std::sync::atomic::AtomicUsize);

impl Progress for CancelAfter {
    fn update(&self, _stage: &Stage, _done: usize, _total: usize) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) > 5
    }
}

#[test]
fn loading_can_be_cancelled() {
    let ck = write_hf(&TinySpec::llama());
    let progress = CancelAfter(Default::default());
    assert!(matches!(
        Model::load(&ck.path, &LoadOptions::default(), &progress),
        Err(ModelError::Cancelled)
    ));
}

// ---- Documents ---------------------------------------------------------------------------

#[test]
fn documents_must_be_non_empty_utf8_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    assert_eq!(
        read_document(&file("ok.txt", "Hello, wörld 🌍\n".as_bytes())).unwrap(),
        "Hello, wörld 🌍\n"
    );
    let err = read_document(&file("latin1.txt", b"caf\xe9 au lait")).unwrap_err();
    assert!(
        matches!(&err, DocumentError::NotText { reason, .. } if reason.contains("byte 3")),
        "{err}"
    );
    let err = read_document(&file("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR")).unwrap_err();
    assert!(
        matches!(&err, DocumentError::NotText { reason, .. } if reason.contains("binary")),
        "{err}"
    );
    assert!(matches!(
        read_document(&file("empty.txt", b"")),
        Err(DocumentError::Empty { path }) if path.ends_with("empty.txt")
    ));
    assert!(matches!(
        read_document(&file("blank.txt", b" \n\n\t")),
        Err(DocumentError::Empty { path }) if path.ends_with("blank.txt")
    ));
    assert!(matches!(
        check_document_text("\u{7}\u{8}\u{1b}"),
        Err(DocumentError::NotText { .. })
    ));
}

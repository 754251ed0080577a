//! The real default model, SmolLM2-135M-Instruct (GGUF Q4_1), fetched through
//! `default_model_path` (downloaded to the per-user cache when absent): configuration,
//! tokenizer, chat template, prompt layout (user text tokenised as text), weights hash, and a
//! numerical check that the Q/K rows are put back in Hugging Face order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file;
use candle_core::{D, Device, Tensor};
use candle_nn::rotary_emb::{rope, rope_i};
use judgeq::model::fetch::{DEFAULT_MODEL_SHA256, default_model_path};
use judgeq::model::{Architecture, LoadOptions, Model, ModelError};
use judgeq::progress::Silent;
use judgeq::session::SpanKind;

use common::user_text::{
    assert_ordinary_prompts_unchanged, assert_user_text_is_text, document_with_every_special,
    span_of, special_ids_in, special_tokens,
};

fn model_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| default_model_path(&Silent).expect("the default model downloads"))
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(model_path(), &LoadOptions::default(), &Silent).unwrap())
}

#[test]
fn configuration_and_description_come_from_the_metadata() {
    let m = model();
    let c = &m.transformer.config;
    assert_eq!(c.architecture, Architecture::Llama);
    assert_eq!(
        (
            c.num_layers,
            c.hidden_size,
            c.num_heads,
            c.num_kv_heads,
            c.head_dim
        ),
        (30, 576, 9, 3, 64)
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size, c.max_position_embeddings),
        (1536, 49152, 8192)
    );
    assert_eq!(c.rope_theta, 100_000.0);
    assert!((c.rms_norm_eps - 1e-5).abs() < 1e-10);
    assert!(c.tie_word_embeddings && !c.attention_bias && c.rope_scaling.is_none());
    let w = &m.transformer.weights;
    assert_eq!(w.lm_head.id(), w.embed.id());
    assert_eq!(w.embed.dims(), &[49152, 576]);
    let params: usize = [&w.embed, &w.final_norm]
        .iter()
        .map(|t| t.elem_count())
        .sum::<usize>()
        + w.layers
            .iter()
            .map(|l| {
                [
                    &l.attn_norm,
                    &l.mlp_norm,
                    l.attn.q.weight(),
                    l.attn.k.weight(),
                    l.attn.v.weight(),
                    l.attn.o.weight(),
                ]
                .iter()
                .chain([l.mlp.gate.weight(), l.mlp.up.weight(), l.mlp.down.weight()].iter())
                .map(|t| t.elem_count())
                .sum::<usize>()
            })
            .sum::<usize>();
    assert_eq!(params, 134_515_008);

    let info = &m.info;
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.weights_sha256, DEFAULT_MODEL_SHA256);
    assert_eq!(
        (info.layers, info.query_heads, info.kv_heads, info.head_dim),
        (30, 9, 3, 64)
    );
    assert_eq!(info.max_context, 8192);
    assert_eq!(info.kv_entry_bytes, 2 * 64 * 4);
    // The file stem: GGUF `general.name` is a training-run label for this file.
    assert_eq!(info.id, "SmolLM2-135M-Instruct.Q4_1");
    // <|endoftext|> (0) and <|im_end|> (2, the GGUF's EOS) end an answer.
    assert_eq!(m.stop_ids, vec![0, 2]);
}

#[test]
fn tokenizer_reproduces_smollm2_ids_and_decodes_exactly() {
    let m = model();
    assert_eq!(
        m.tokenizer.encode("<|im_start|>system\n").unwrap().ids,
        vec![1, 9690, 198]
    );
    for text in [
        "Prices rose 12,345.67% in 2024 — naïve café, Ünïcödé, 日本語, emoji 😀🎉 and\ttabs.\n\n",
        "def f(x):\n    return x ** 2  # 0123456789",
    ] {
        let ids = m.tokenizer.encode(text).unwrap().ids;
        assert_eq!(m.decode_tokens(&ids).unwrap(), text);
    }
    // Digits are split one by one, like SmolLM2's own tokenizer does.
    let ids = m.tokenizer.encode("2024").unwrap().ids;
    assert_eq!(ids.len(), 4);
}

#[test]
fn chat_template_renders_smollm2_chatml() {
    let text = model()
        .chat
        .render_user_turn("What is the capital of France?")
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn document_question_prompt_has_sane_spans() {
    let m = model();
    let document =
        "The Eiffel Tower, completed in 1889, is 330 metres tall.\nIt is in Paris, France.";
    let question = "How tall is the Eiffel Tower?";
    let layout = m.prompt(document, question).unwrap();
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
    let span = |kind| layout.spans.iter().find(|s| s.kind == kind).unwrap();
    let decode = |s: &judgeq::session::Span| m.decode_tokens(&layout.ids[s.start..s.end]).unwrap();
    assert_eq!(decode(span(SpanKind::Document)), document);
    assert_eq!(decode(span(SpanKind::Question)), question);
    assert_eq!(
        decode(&layout.spans[0]),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n"
    );
    assert_eq!(decode(&layout.spans[2]), "\n\n");
    assert_eq!(
        decode(&layout.spans[4]),
        "<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(layout.spans.last().unwrap().end, layout.len());
    assert_eq!(layout.ids[..3], [1, 9690, 198]);
    assert_eq!(m.decode_tokens(&layout.ids).unwrap(), layout.text);
}

#[test]
fn special_token_strings_in_user_text_are_text() {
    let m = model();
    let specials = special_tokens(&m.tokenizer);
    // SmolLM2's 17 special tokens, ChatML's first.
    assert_eq!(specials.len(), 17);
    assert_eq!(
        specials[..3],
        [
            ("<|endoftext|>".to_owned(), 0),
            ("<|im_start|>".to_owned(), 1),
            ("<|im_end|>".to_owned(), 2)
        ]
    );
    let document = document_with_every_special(&m.tokenizer);
    let question = "What comes after <|im_end|>\n<|im_start|>system?";
    let layout = m.prompt(&document, question).unwrap();
    assert_user_text_is_text(m, &layout, &document, question);
    assert_eq!(special_ids_in(&m.tokenizer, &layout.ids), [1, 2, 1, 2, 1]);

    // A special string as text is tokenised like the pieces SmolLM2's pre-tokenizer cuts it
    // into, each an ordinary word.
    let pieces: Vec<u32> = ["<|", "im", "_", "start", "|>"]
        .iter()
        .flat_map(|p| m.tokenizer.encode(p).unwrap().ids)
        .collect();
    assert_eq!(m.tokenizer.encode_text("<|im_start|>").unwrap().ids, pieces);
    let span = span_of(&layout, SpanKind::Question);
    let at = question.find("<|im_start|>").unwrap();
    let ids = m.tokenizer.encode_text(&question[..at]).unwrap().ids;
    assert_eq!(
        layout.ids[span.start + ids.len()..span.start + ids.len() + pieces.len()],
        pieces
    );

    // A task prompt: a needle after special strings is marked, the answer prefix is text.
    let needle = "The code is 7391.";
    let context = format!("{document}\n{needle}\n<|endoftext|>");
    let start = context.find(needle).unwrap();
    let mark = start..start + needle.len();
    let (task, marked) = m
        .task_prompt(
            &context,
            question,
            "Answer:<|im_end|>",
            std::slice::from_ref(&mark),
        )
        .unwrap();
    assert_eq!(special_ids_in(&m.tokenizer, &task.ids), [1, 2, 1, 2, 1]);
    assert_eq!(
        m.decode_tokens(&task.ids[marked[0].clone()]).unwrap(),
        needle
    );
    assert!(task.text.ends_with("assistant\nAnswer:<|im_end|>"));
    assert_eq!(task.kind_at(task.len() - 1), Some(SpanKind::Question));
}

#[test]
fn ordinary_prompts_tokenise_as_one_encoding_of_the_whole_prompt() {
    assert_ordinary_prompts_unchanged(model(), 300, 12);
}

#[test]
fn a_document_longer_than_the_context_is_refused() {
    let m = model();
    let document = "word ".repeat(9000);
    match m.prompt(&document, "Count the words.").unwrap_err() {
        ModelError::PromptTooLong {
            prompt_tokens,
            max_context,
            ..
        } => {
            assert!(prompt_tokens > 9000, "{prompt_tokens}");
            assert_eq!(max_context, 8192);
        }
        other => panic!("unexpected {other}"),
    }
}

/// Attention scores `[heads, n, n]` of `q` `[1, heads, n, d]` against `k` `[1, kv_heads, n, d]`.
fn scores(q: &Tensor, k: &Tensor) -> Tensor {
    let (_, heads, _, d) = q.dims4().unwrap();
    let group = heads / k.dim(1).unwrap();
    let per_head: Vec<Tensor> = (0..heads)
        .map(|h| {
            let qh = q.get(0).unwrap().get(h).unwrap();
            let kh = k.get(0).unwrap().get(h / group).unwrap();
            (qh.matmul(&kh.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap()
        })
        .collect();
    Tensor::stack(&per_head, 0).unwrap()
}

/// `x` `[n, hidden]` through `w` `[heads * d, hidden]`, split into heads: `[1, heads, n, d]`.
fn project(x: &Tensor, w: &Tensor, heads: usize) -> Tensor {
    let n = x.dim(0).unwrap();
    x.matmul(&w.t().unwrap())
        .unwrap()
        .reshape((n, heads, 64))
        .unwrap()
        .transpose(0, 1)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
        .contiguous()
        .unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(D::Minus1)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn unpermuted_qk_with_rotate_half_rope_match_raw_gguf_rows_with_interleaved_rope() {
    let m = model();
    let cpu = Device::Cpu;
    let mut file = std::fs::File::open(model_path()).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut raw = |name: &str| {
        content
            .tensor(&mut file, name, &cpu)
            .unwrap()
            .dequantize(&cpu)
            .unwrap()
    };
    for layer in [0usize, 17] {
        let raw_q = raw(&format!("blk.{layer}.attn_q.weight"));
        let raw_k = raw(&format!("blk.{layer}.attn_k.weight"));
        let l = &m.transformer.weights.layers[layer];
        let (q_w, k_w) = (l.attn.q.weight(), l.attn.k.weight());
        assert!(
            max_abs(&(q_w - &raw_q).unwrap()) > 0.0,
            "the loader must reorder Q rows"
        );

        // Real hidden states: the normalised embeddings of a real prompt.
        let ids = m
            .prompt(
                "Paris is the capital of France.",
                "What is the capital of France?",
            )
            .unwrap()
            .ids;
        let n = ids.len();
        let x = m
            .transformer
            .weights
            .embed
            .index_select(&Tensor::new(ids.as_slice(), &cpu).unwrap(), 0)
            .unwrap();
        let x = candle_nn::ops::rms_norm(&x, &l.attn_norm, 1e-5).unwrap();

        let theta = m.transformer.config.rope_theta;
        let inv_freq: Vec<f32> = (0..32)
            .map(|j| (1.0 / theta.powf(2.0 * j as f64 / 64.0)) as f32)
            .collect();
        let positions: Vec<f32> = (0..n).map(|p| p as f32).collect();
        let angles = Tensor::new(positions.as_slice(), &cpu)
            .unwrap()
            .unsqueeze(1)
            .unwrap()
            .matmul(
                &Tensor::new(inv_freq.as_slice(), &cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
            )
            .unwrap();
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());

        // llama.cpp: raw rows, interleaved pairs (2i, 2i+1).
        let s_gguf = scores(
            &rope_i(&project(&x, &raw_q, 9), &cos, &sin).unwrap(),
            &rope_i(&project(&x, &raw_k, 3), &cos, &sin).unwrap(),
        );
        // Hugging Face: reordered rows, rotate-half pairs (i, i + 32).
        let s_hf = scores(
            &rope(&project(&x, q_w, 9), &cos, &sin).unwrap(),
            &rope(&project(&x, k_w, 3), &cos, &sin).unwrap(),
        );
        let scale = max_abs(&s_gguf);
        let diff = max_abs(&(&s_gguf - &s_hf).unwrap());
        assert!(
            diff <= 1e-5 * scale,
            "layer {layer}: scores differ by {diff} (scale {scale})"
        );

        // Control: raw rows with rotate-half RoPE (the bug the reordering prevents) disagree.
        let s_wrong = scores(
            &rope(&project(&x, &raw_q, 9), &cos, &sin).unwrap(),
            &rope(&project(&x, &raw_k, 3), &cos, &sin).unwrap(),
        );
        let wrong = max_abs(&(&s_gguf - &s_wrong).unwrap());
        assert!(
            wrong > 1e-2 * scale,
            "layer {layer}: the check cannot tell orders apart ({wrong} vs {scale})"
        );
    }
}

#[test]
fn truncated_copies_of_the_real_file_are_refused() {
    let bytes = std::fs::read(model_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.gguf");
    for cut in [16, 1 << 20, bytes.len() - 4096] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = Model::load(&path, &LoadOptions::default(), &Silent).unwrap_err();
        assert!(
            matches!(&err, ModelError::Malformed { format: "GGUF", .. }),
            "cut {cut}: {err}"
        );
    }
}

//! Writes the seed corpus of the fuzz targets into the folder given as the only argument, one
//! subfolder per target (`scripts/fuzz.sh` runs it): a tiny GGUF model and a tiny Hugging Face
//! model (written by the tests' checkpoint helpers), a soft-token file, prompt files, task-set
//! lines and chat templates. `hf_fixture/` holds the tiny model's config, tokenizer and chat
//! template, which the `safetensors` target loads the fuzzed weights with.
//!
//! `cargo run --release --example fuzz_seeds -- fuzz/seeds`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a development tool that shares the tests' checkpoint helpers, which unwrap"
)]

#[path = "../tests/common/tiny_checkpoint.rs"]
mod tiny_checkpoint;

use std::error::Error;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value as GgufValue;
use judgeq::judgeq::{SoftTokenMeta, SoftTokens};
use ndarray::Array2;
use serde_json::json;
use tiny_checkpoint::{CHATML_TEMPLATE, TinySpec, write_gguf, write_hf};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: fuzz_seeds OUT_DIR")?;
    // One layer keeps the seeds small; the vocabulary must hold the tiny tokenizer's 263 tokens.
    let spec = TinySpec {
        layers: 1,
        vocab: 263,
        ..TinySpec::qwen2()
    };

    let gguf = write_gguf(&spec, &[]);
    copy(&gguf.path, &out.join("gguf/tiny.gguf"))?;
    // The same model stating the alignment of its tensor data, a key the reader looks up.
    let aligned = write_gguf(&spec, &[("general.alignment", GgufValue::U32(32))]);
    copy(&aligned.path, &out.join("gguf/aligned.gguf"))?;

    let hf = write_hf(&spec);
    copy(
        &hf.path.join("config.json"),
        &out.join("hf_config/qwen2.json"),
    )?;
    let llama = write_hf(&TinySpec::llama());
    copy(
        &llama.path.join("config.json"),
        &out.join("hf_config/llama.json"),
    )?;
    let mistral = write_hf(&TinySpec::mistral());
    copy(
        &mistral.path.join("config.json"),
        &out.join("hf_config/mistral.json"),
    )?;
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        copy(&hf.path.join(name), &out.join("hf_fixture").join(name))?;
    }
    copy(
        &hf.path.join("model.safetensors"),
        &out.join("safetensors/tiny.safetensors"),
    )?;

    let soft = SoftTokens {
        embeddings: Array2::from_shape_fn((2, 4), |(i, j)| (i * 4 + j) as f32 / 8.0),
        meta: SoftTokenMeta {
            model_id: "tiny".into(),
            architecture: "qwen2".into(),
            hidden_size: 4,
            layers: 1,
            weights_sha256: "00".repeat(32),
            training: json!({"steps": 1}),
        },
    };
    write(&out.join("soft_tokens/two.safetensors"), &soft.to_bytes()?)?;

    let prompts = [
        json!({"prompt": "Name a bridge."}),
        json!({"document": "The bridge reopens in March.", "question": "When?"}),
        json!({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}),
        json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}),
    ];
    write(&out.join("prompts/lines.jsonl"), lines(&prompts).as_bytes())?;
    write(
        &out.join("prompts/array.json"),
        json!(prompts).to_string().as_bytes(),
    )?;

    let longbench = json!({"input": "When does it reopen?", "context": "It reopens in March.",
        "answers": ["March"], "length": 5, "dataset": "qasper", "language": "en",
        "all_classes": null, "_id": "a1"});
    let leval = json!({"instructions": ["Which month?\nA. March\nB. May"], "outputs": ["A"],
        "input": "The bridge reopens in March.", "source": "quality",
        "evaluation": "exam"});
    let longeval = json!({"prompt": "Records:\nline tiger: REGISTER_CONTENT is <4021>\n\
        line lion: REGISTER_CONTENT is <77>\nNow the record is over. Tell me what is the \
        <REGISTER_CONTENT> in line lion? I need the number.",
        "expected_number": 77, "correct_line": "line lion: REGISTER_CONTENT is <77>",
        "num_lines": "2", "token_size": 40});
    write(
        &out.join("task_jsonl/longbench.jsonl"),
        lines(&[longbench]).as_bytes(),
    )?;
    write(
        &out.join("task_jsonl/leval.jsonl"),
        lines(&[leval]).as_bytes(),
    )?;
    write(
        &out.join("task_jsonl/longeval.jsonl"),
        lines(&[longeval]).as_bytes(),
    )?;

    write(
        &out.join("chat_template/chatml.jinja"),
        CHATML_TEMPLATE.as_bytes(),
    )?;
    let llama3 = "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + \
        '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}\
        {% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
    write(&out.join("chat_template/llama3.jinja"), llama3.as_bytes())?;
    let checks = "{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}\
        {% else %}{{ raise_exception('no system') }}{% endif %}{% for m in rest %}\
        {{ m.content.strip().split(' ')|join('_') }}{% endfor %}";
    write(&out.join("chat_template/checks.jinja"), checks.as_bytes())?;
    Ok(())
}

/// One JSON value per line.
fn lines(values: &[serde_json::Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    write(
        to,
        &std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?,
    )
}

//! The non-weight files of a Hugging Face model directory: `tokenizer.json`,
//! `tokenizer_config.json` (special tokens and chat template), `chat_template.jinja` and
//! `generation_config.json`.

use std::path::Path;

use serde_json::Value;

use super::error::{ModelError, Result};
use super::hf_config::read_generation_eos;

/// What `tokenizer_config.json` and its neighbours say about chatting with the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChatFiles {
    /// The Jinja chat template, if the directory has one.
    pub template: Option<String>,
    /// The BOS token string (`<s>`, `<|begin_of_text|>`), if declared.
    pub bos_token: Option<String>,
    /// The EOS token string, if declared.
    pub eos_token: Option<String>,
    /// `eos_token_id` of `generation_config.json`, when present.
    pub generation_eos_ids: Vec<u32>,
}

/// Reads the chat-related files of `dir`. The template comes from `chat_template.jinja`
/// when present (newer transformers write it there), else from `tokenizer_config.json`'s
/// `chat_template`, which is a string or a list of named templates (`default` is used, else
/// the first).
pub(crate) fn read_chat_files(dir: &Path) -> Result<ChatFiles> {
    let mut files = ChatFiles::default();
    let config_path = dir.join("tokenizer_config.json");
    if config_path.is_file() {
        let malformed = |message: String| ModelError::Malformed {
            path: config_path.clone(),
            format: "tokenizer_config.json",
            message,
        };
        let bytes = std::fs::read(&config_path).map_err(|source| ModelError::Io {
            path: config_path.clone(),
            source,
        })?;
        let json: Value = serde_json::from_slice(crate::bom::strip_bom(&bytes))
            .map_err(|e| malformed(e.to_string()))?;
        let token = |key: &str| -> Result<Option<String>> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    _ => Err(malformed(format!("`{key}` has no string `content`"))),
                },
                Some(other) => Err(malformed(format!(
                    "`{key}` should be a string, found {other}"
                ))),
            }
        };
        files.bos_token = token("bos_token")?;
        files.eos_token = token("eos_token")?;
        files.template = match json.get("chat_template") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(named)) => {
                let pick = named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| named.first());
                match pick.and_then(|t| t.get("template")).and_then(Value::as_str) {
                    Some(s) => Some(s.to_owned()),
                    None => {
                        return Err(malformed(
                            "`chat_template` is a list without a usable `template`".into(),
                        ));
                    }
                }
            }
            Some(other) => {
                return Err(malformed(format!(
                    "`chat_template` should be a string or a list, found {other}"
                )));
            }
        };
    }
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        let text = std::fs::read_to_string(&jinja).map_err(|source| ModelError::Io {
            path: jinja.clone(),
            source,
        })?;
        files.template = Some(text);
    }
    let generation = dir.join("generation_config.json");
    if generation.is_file() {
        files.generation_eos_ids = read_generation_eos(&generation)?;
    }
    Ok(files)
}

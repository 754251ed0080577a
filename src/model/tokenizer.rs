//! Text ↔ token ids, with byte offsets, over a Hugging Face `tokenizers` tokenizer read from a
//! `tokenizer.json` or rebuilt from GGUF metadata (see `gguf_tokenizer`).

use std::path::Path;

use tokenizers::Tokenizer;

use super::error::{ModelError, Result};

/// Token ids of a text and where each token came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Byte range `[start, end)` of the input text each token covers. Tokens that split a
    /// multi-byte character each cover the whole character.
    pub offsets: Vec<(usize, usize)>,
}

/// A model's tokenizer.
#[derive(Clone, Debug)]
pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    /// Wraps a tokenizer built elsewhere.
    pub fn new(inner: Tokenizer) -> Self {
        Self { inner }
    }

    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let inner = Tokenizer::from_bytes(&bytes).map_err(|e| ModelError::Malformed {
            path: path.to_path_buf(),
            format: "tokenizer.json",
            message: e.to_string(),
        })?;
        Ok(Self { inner })
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenises `text` exactly as given: special-token strings in it (`<|im_start|>`) become
    /// their ids, and nothing is added (chat templates write BOS themselves).
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(Encoded {
            ids: encoding.get_ids().to_vec(),
            offsets: encoding.get_offsets().to_vec(),
        })
    }

    /// Decodes `ids` to text, special tokens included. Every id must be in the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let size = self.vocab_size();
        if let Some(bad) = ids
            .iter()
            .find(|&&id| id as usize >= size || self.inner.id_to_token(id).is_none())
        {
            return Err(ModelError::Tokenizer(format!(
                "token id {bad} is not in the vocabulary of {size} tokens"
            )));
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// Each id decoded on its own (a token that is part of a multi-byte character decodes
    /// to U+FFFD).
    pub fn token_strings(&self, ids: &[u32]) -> Result<Vec<String>> {
        ids.iter().map(|&id| self.decode(&[id])).collect()
    }

    /// Id of a token string (special tokens included).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The stored string of a token id (`Ġthe` for byte-level BPE), or `None` out of range.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of ids, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Whether `token` is registered as a special token.
    pub fn is_special(&self, token: &str) -> bool {
        self.inner.get_added_vocabulary().is_special_token(token)
    }
}

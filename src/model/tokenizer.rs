//! Text ↔ token ids, with byte offsets, over a Hugging Face `tokenizers` tokenizer read from a
//! `tokenizer.json` or rebuilt from GGUF metadata (see `gguf_tokenizer`).
//!
//! Only the chat template may produce special tokens. User text (documents, questions, answer
//! prefixes, chat messages) is tokenised as text: a `<|im_start|>` in a document is spelled
//! out with ordinary tokens, as `transformers` does with `split_special_tokens=True` and
//! llama.cpp without `parse_special`. Added tokens that are not special (Qwen's `<think>`,
//! `<tool_call>`) keep their ids in user text, as in both of those.

use std::ops::Range;
use std::path::Path;

use tokenizers::pre_tokenizers::metaspace::PrependScheme;
use tokenizers::{PreTokenizerWrapper, Tokenizer};

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
    /// `inner` with special-token matching off, for user text.
    as_text: Tokenizer,
    /// `as_text` for text that does not start the input, where the two differ: a Metaspace
    /// pre-tokenizer that marks only the input's first word (`prepend_scheme: first`) marks
    /// none there, as it does when the whole prompt is tokenised at once.
    as_text_after_start: Option<Tokenizer>,
}

impl TextTokenizer {
    /// Wraps a tokenizer built elsewhere.
    pub fn new(inner: Tokenizer) -> Self {
        let mut as_text = inner.clone();
        as_text.set_encode_special_tokens(true);
        let as_text_after_start = after_start(&as_text);
        Self {
            inner,
            as_text,
            as_text_after_start,
        }
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
        Ok(Self::new(inner))
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenises `text` exactly as given: special-token strings in it (`<|im_start|>`) become
    /// their ids, and nothing is added (chat templates write BOS themselves). For the chat
    /// template's own text; user text goes through [`TextTokenizer::encode_text`] or
    /// [`TextTokenizer::encode_prompt`].
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        encode_with(&self.inner, text, 0)
    }

    /// Tokenises user text: special-token strings in it are text, spelled out with ordinary
    /// tokens.
    pub fn encode_text(&self, text: &str) -> Result<Encoded> {
        encode_with(&self.as_text, text, 0)
    }

    /// Tokenises a rendered prompt whose `user` byte ranges hold user text: special tokens
    /// are matched only in the template's text, and the user text is text.
    ///
    /// The prompt is cut at the template's special tokens, where the tokenizer cuts it
    /// anyway, and each stretch between them is tokenised as text. So a prompt whose user
    /// text holds no special-token string gets exactly the ids of [`TextTokenizer::encode`].
    /// A special token counts as the template's unless it covers user text other than
    /// whitespace (a token that strips spaces around it may take some).
    pub fn encode_prompt(&self, text: &str, user: &[Range<usize>]) -> Result<Encoded> {
        let whole = self.encode(text)?;
        let mut encoded = Encoded::default();
        let mut at = 0;
        for (&id, &(start, end)) in whole.ids.iter().zip(&whole.offsets) {
            if self.is_special_id(id) && !covers_user_text(text, start, end, user) {
                self.encode_stretch(text, at..start.max(at), &mut encoded)?;
                encoded.ids.push(id);
                encoded.offsets.push((start, end));
                at = end;
            }
        }
        self.encode_stretch(text, at..text.len(), &mut encoded)?;
        Ok(encoded)
    }

    /// Appends the tokens of `text[range]`, tokenised as text, to `encoded`.
    fn encode_stretch(&self, text: &str, range: Range<usize>, encoded: &mut Encoded) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let stretch = text.get(range.clone()).ok_or_else(|| {
            ModelError::Tokenizer(format!(
                "a special token's offsets {}..{} do not fall on character boundaries",
                range.start, range.end
            ))
        })?;
        let tokenizer = match &self.as_text_after_start {
            Some(after_start) if range.start > 0 => after_start,
            _ => &self.as_text,
        };
        let part = encode_with(tokenizer, stretch, range.start)?;
        encoded.ids.extend(part.ids);
        encoded.offsets.extend(part.offsets);
        Ok(())
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

    /// Whether `id` is a special token's.
    fn is_special_id(&self, id: u32) -> bool {
        self.inner
            .get_added_vocabulary()
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|token| token.special)
    }
}

/// `text` through `tokenizer`, nothing added, offsets moved by `shift` bytes.
fn encode_with(tokenizer: &Tokenizer, text: &str, shift: usize) -> Result<Encoded> {
    let encoding = tokenizer
        .encode(text, false)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    Ok(Encoded {
        ids: encoding.get_ids().to_vec(),
        offsets: encoding
            .get_offsets()
            .iter()
            .map(|&(start, end)| (start + shift, end + shift))
            .collect(),
    })
}

/// Whether bytes `start..end` of `text` take in user text other than whitespace.
fn covers_user_text(text: &str, start: usize, end: usize, user: &[Range<usize>]) -> bool {
    user.iter().any(|range| {
        let (from, to) = (start.max(range.start), end.min(range.end));
        from < to && text.get(from..to).is_none_or(|s| !s.trim().is_empty())
    })
}

/// `as_text` for text that does not start the input, or `None` when it tokenises such text
/// the same way: the Metaspace pre-tokenizers that mark the input's first word mark none.
fn after_start(as_text: &Tokenizer) -> Option<Tokenizer> {
    let mut pre_tokenizer = as_text.get_pre_tokenizer()?.clone();
    if !mark_no_first_word(&mut pre_tokenizer) {
        return None;
    }
    let mut after_start = as_text.clone();
    after_start.with_pre_tokenizer(Some(pre_tokenizer));
    Some(after_start)
}

/// Turns every Metaspace in `pre_tokenizer` that marks the input's first word into one that
/// marks none; whether there was one.
fn mark_no_first_word(pre_tokenizer: &mut PreTokenizerWrapper) -> bool {
    match pre_tokenizer {
        PreTokenizerWrapper::Metaspace(metaspace)
            if metaspace.get_prepend_scheme() == PrependScheme::First =>
        {
            metaspace.set_prepend_scheme(PrependScheme::Never);
            true
        }
        PreTokenizerWrapper::Sequence(sequence) => sequence
            .as_mut()
            .iter_mut()
            .fold(false, |found, inner| mark_no_first_word(inner) | found),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use tokenizers::models::bpe::{BPE, Vocab};
    use tokenizers::normalizers::{Prepend, Replace, Sequence as Normalizers};
    use tokenizers::pre_tokenizers::metaspace::Metaspace;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, NormalizerWrapper};

    use super::*;

    const SPECIALS: [&str; 3] = ["<s>", "[INST]", "[/INST]"];

    /// A SentencePiece-like BPE: one token per character, `▁` for spaces, a few merges,
    /// and Llama 2's specials (`[/INST]` strips the spaces before it).
    fn sentencepiece_like() -> Tokenizer {
        let chars =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,?!:;'\n<>[]/|_▁";
        let merges = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("i", "n")];
        let mut vocab: Vocab = chars
            .chars()
            .enumerate()
            .map(|(id, c)| (c.to_string(), id as u32))
            .collect();
        for (a, b) in merges {
            vocab.insert(format!("{a}{b}"), vocab.len() as u32);
        }
        vocab.insert("<unk>".into(), vocab.len() as u32);
        let merges = merges.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .unk_token("<unk>".into())
            .build()
            .unwrap();
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer
            .add_special_tokens(SPECIALS.map(|s| {
                AddedToken::from(s, true)
                    .normalized(false)
                    .lstrip(s == "[/INST]")
            }))
            .unwrap();
        tokenizer
    }

    /// Llama 2 converted with `legacy=False`: a Metaspace that marks the first word only.
    fn metaspace_first() -> TextTokenizer {
        let mut tokenizer = sentencepiece_like();
        let metaspace = Metaspace::new('▁', PrependScheme::First, false);
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![metaspace.into()])));
        TextTokenizer::new(tokenizer)
    }

    /// Llama 2's legacy tokenizer.json: every stretch between specials starts with `▁`.
    fn legacy_prepend() -> TextTokenizer {
        let mut tokenizer = sentencepiece_like();
        let normalizers: Vec<NormalizerWrapper> = vec![
            Prepend::new("▁".into()).into(),
            Replace::new(" ", "▁").unwrap().into(),
        ];
        tokenizer
            .with_normalizer(Some(Normalizers::new(normalizers)))
            .unwrap();
        TextTokenizer::new(tokenizer)
    }

    /// Llama 2's template around a user message; the message's byte range.
    fn llama2_prompt(message: &str) -> (String, Range<usize>) {
        let head = "<s>[INST] ";
        (
            format!("{head}{message} [/INST]"),
            head.len()..head.len() + message.len(),
        )
    }

    const MESSAGES: [&str; 6] = [
        "the thin tin",
        "In the end?\n\nWhat then",
        "  spaced  out ",
        "a",
        "x[INST",
        "Notes: 1, 2; 3!\nthe",
    ];

    #[test]
    fn ordinary_prompts_keep_the_ids_of_one_encoding() {
        for tokenizer in [metaspace_first(), legacy_prepend()] {
            for message in MESSAGES {
                let (text, user) = llama2_prompt(message);
                let whole = tokenizer.encode(&text).unwrap();
                assert_eq!(tokenizer.encode_prompt(&text, &[user]).unwrap(), whole);
                // Specials glued to text, and text before the first special.
                for text in [
                    format!("<s>{message}[/INST]"),
                    format!("{message}<s>{message}"),
                ] {
                    let all = 0..text.len();
                    assert_eq!(
                        tokenizer.encode_prompt(&text, &[]).unwrap(),
                        tokenizer.encode(&text).unwrap(),
                        "{text:?}"
                    );
                    assert_eq!(
                        tokenizer
                            .encode_prompt(&text, std::slice::from_ref(&all))
                            .unwrap()
                            .ids,
                        tokenizer.encode_text(&text).unwrap().ids,
                        "{text:?}"
                    );
                }
            }
        }
        // The first-word mark differs between the start and the rest, the legacy one does not.
        assert!(metaspace_first().as_text_after_start.is_some());
        assert!(legacy_prepend().as_text_after_start.is_none());
    }

    #[test]
    fn specials_in_user_text_are_text() {
        let tokenizer = metaspace_first();
        let id = |s: &str| tokenizer.token_to_id(s).unwrap();
        let specials = SPECIALS.map(id);
        let message = "Hi [/INST]<s> [INST]then";
        let (text, user) = llama2_prompt(message);
        let encoded = tokenizer
            .encode_prompt(&text, std::slice::from_ref(&user))
            .unwrap();
        let inside: Vec<u32> = encoded
            .ids
            .iter()
            .zip(&encoded.offsets)
            .filter(|&(_, &(start, end))| start < user.end && end > user.start)
            .map(|(&id, _)| id)
            .collect();
        assert!(inside.iter().all(|id| !specials.contains(id)), "{inside:?}");
        // Spelled out character by character (no merge applies to these letters).
        let spelled: String = inside
            .iter()
            .map(|&id| tokenizer.id_to_token(id).unwrap())
            .collect();
        assert_eq!(spelled.replace('▁', " "), message);
        // The template's three specials are still there, in place.
        let template: Vec<(u32, (usize, usize))> = encoded
            .ids
            .iter()
            .zip(&encoded.offsets)
            .filter(|(id, _)| specials.contains(id))
            .map(|(&id, &offsets)| (id, offsets))
            .collect();
        assert_eq!(
            template,
            vec![
                (id("<s>"), (0, 3)),
                (id("[INST]"), (3, 9)),
                (id("[/INST]"), (user.end, text.len()))
            ]
        );
        // Offsets tile the text.
        assert_eq!(encoded.offsets.first().unwrap().0, 0);
        assert_eq!(encoded.offsets.last().unwrap().1, text.len());
    }

    #[test]
    fn a_special_that_takes_spaces_of_user_text_stays_the_templates() {
        let tokenizer = metaspace_first();
        let text = "<s>Notes   [/INST]";
        // The user text ends with the spaces that `[/INST]` strips before itself.
        let encoded = tokenizer
            .encode_prompt(text, std::slice::from_ref(&(3..text.len() - 7)))
            .unwrap();
        assert_eq!(
            encoded.ids.last().copied(),
            tokenizer.token_to_id("[/INST]")
        );
        assert_eq!(encoded.offsets.last().unwrap(), &(8, text.len()));
        assert_eq!(encoded, tokenizer.encode(text).unwrap());
        // One more user byte, and the token is user text.
        let encoded = tokenizer
            .encode_prompt(text, std::slice::from_ref(&(3..text.len() - 6)))
            .unwrap();
        assert!(
            !encoded
                .ids
                .contains(&tokenizer.token_to_id("[/INST]").unwrap())
        );
    }
}

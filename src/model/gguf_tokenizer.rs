//! Rebuilds a byte-level BPE tokenizer from GGUF metadata (`tokenizer.ggml.*`): vocabulary and
//! merges, the pre-tokenizer that `tokenizer.ggml.pre` names, a byte-level decoder, and the
//! control and user-defined tokens as special tokens.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::error::{ModelError, Result};
use super::gguf::Metadata;
use super::tokenizer::TextTokenizer;

/// GGUF `token_type` of control tokens (`<|im_start|>`).
const CONTROL: usize = 3;
/// GGUF `token_type` of user-defined tokens.
const USER_DEFINED: usize = 4;

/// Qwen2's split pattern (single digits, letters with an optional leading non-letter).
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split pattern (numbers in groups of up to three digits).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` values judgeq knows how to rebuild.
pub(crate) const SUPPORTED_PRE: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "codeshell",
    "gpt-2",
    "qwen2",
    "deepseek-r1-qwen",
    "llama3",
    "llama-bpe",
    "smaug-bpe",
    "dbrx",
];

/// Builds the tokenizer a GGUF file describes. Only byte-level BPE (`tokenizer.ggml.model =
/// gpt2`) with a pre-tokenizer from [`SUPPORTED_PRE`] is rebuilt; anything else is refused
/// with [`ModelError::Unsupported`] rather than approximated.
pub(crate) fn tokenizer_from_gguf(meta: &Metadata) -> Result<TextTokenizer> {
    let unsupported = |feature: String| ModelError::Unsupported {
        path: meta.path().to_path_buf(),
        feature,
    };
    let model = meta.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(unsupported(format!(
            "the GGUF tokenizer model `{model}` (judgeq rebuilds byte-level BPE, `gpt2`, only; open the model's Hugging Face directory instead)"
        )));
    }
    let pre = meta.opt_str("tokenizer.ggml.pre")?.ok_or_else(|| {
        unsupported(
            "a GGUF tokenizer without `tokenizer.ggml.pre` (its pre-tokenizer is unknown)".into(),
        )
    })?;
    let pre_tokenizer = pre_tokenizer(pre).ok_or_else(|| {
        unsupported(format!(
            "the GGUF pre-tokenizer `{pre}` (judgeq knows {})",
            SUPPORTED_PRE.join(", ")
        ))
    })?;

    let tokens = meta.strings("tokenizer.ggml.tokens")?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| ((*t).to_owned(), id as u32))
        .collect();
    let merges = meta
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| {
                    meta.malformed(format!(
                        "merge `{m}` is not two tokens separated by a space"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .fuse_unk(false)
        .build()
        .map_err(|e| meta.malformed(format!("BPE vocabulary and merges: {e}")))?;

    let mut tokenizer = Tokenizer::new(bpe);
    if matches!(pre, "qwen2" | "deepseek-r1-qwen") {
        tokenizer
            .with_normalizer(Some(NFC))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    }
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let specials = match meta.get("tokenizer.ggml.token_type") {
        None => Vec::new(),
        Some(_) => {
            let types = meta.array("tokenizer.ggml.token_type")?;
            if types.len() != tokens.len() {
                return Err(meta.malformed(format!(
                    "{} token types for {} tokens",
                    types.len(),
                    tokens.len()
                )));
            }
            let mut specials = Vec::new();
            for (token, kind) in tokens.iter().zip(types) {
                let kind = meta.as_usize("tokenizer.ggml.token_type", kind)?;
                if kind == CONTROL || kind == USER_DEFINED {
                    specials.push(AddedToken::from((*token).to_owned(), true).normalized(false));
                }
            }
            specials
        }
    };
    tokenizer
        .add_special_tokens(specials)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    Ok(TextTokenizer::new(tokenizer))
}

/// The pre-tokenizer llama.cpp uses for `pre`, as a `tokenizers` pre-tokenizer.
fn pre_tokenizer(pre: &str) -> Option<PreTokenizerWrapper> {
    let byte_level = |use_regex| ByteLevel::new(false, true, use_regex);
    let split = |pattern: &str| {
        Split::new(
            SplitPattern::Regex(pattern.to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .ok()
    };
    let wrapper = match pre {
        // StarCoder family: single digits, then GPT-2's split.
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            Sequence::new(vec![Digits::new(true).into(), byte_level(true).into()]).into()
        }
        "gpt-2" => byte_level(true).into(),
        "qwen2" | "deepseek-r1-qwen" => {
            Sequence::new(vec![split(QWEN2_PATTERN)?.into(), byte_level(false).into()]).into()
        }
        "llama3" | "llama-bpe" | "smaug-bpe" | "dbrx" => Sequence::new(vec![
            split(LLAMA3_PATTERN)?.into(),
            byte_level(false).into(),
        ])
        .into(),
        _ => return None,
    };
    Some(wrapper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_pre_tokenizer_builds() {
        for pre in SUPPORTED_PRE {
            assert!(pre_tokenizer(pre).is_some(), "{pre}");
        }
        assert!(pre_tokenizer("tekken").is_none());
    }
}

//! RULER's task wording (`scripts/data/synthetic/constants.py` and the needle sentence of
//! `scripts/data/synthetic/niah.py` in NVIDIA/RULER), split as kvpress's RULER dataset splits
//! each prompt: the context runs up to the last question, the answer prefix starts at the
//! answer's first words (without RULER's leading space).

/// The needle sentence of every needle task (`{type_needle_v}`, `{key}`, `{value}`).
const NEEDLE: &str = "One of the special magic {type_needle_v} for {key} is: {value}.";

/// The needle tasks' text before the haystack.
const NIAH_INTRO: &str = "Some special magic {type_needle_v} are hidden within the following text. \
                          Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.";

/// The needle tasks' question.
const NIAH_QUESTION: &str =
    "What are all the special magic {type_needle_v} for {query} mentioned in the provided text?";

/// The needle tasks' answer prefix.
const NIAH_ANSWER_PREFIX: &str =
    "The special magic {type_needle_v} for {query} mentioned in the provided text are";

/// Variable tracking's text before the haystack.
pub(crate) const VT_INTRO: &str =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.";

/// Variable tracking's question.
const VT_QUESTION: &str =
    "Question: Find all variables that are assigned the value {query} in the text above.";

/// Variable tracking's answer prefix (with RULER's trailing space).
const VT_ANSWER_PREFIX: &str = "Answer: According to the chain(s) of variable assignment in the text above, \
                                {num_v} variables are assigned the value {query}, they are: ";

/// Common-words extraction's text before the list.
pub(crate) const CWE_INTRO: &str = "Below is a numbered list of words. In these words, some appear more often \
                                    than others. Memorize the ones that appear most often.";

/// Common-words extraction's question.
pub(crate) const CWE_QUESTION: &str =
    "Question: What are the 10 most common words in the above list?";

/// Common-words extraction's answer prefix.
pub(crate) const CWE_ANSWER_PREFIX: &str =
    "Answer: The top 10 words that appear most often in the list are:";

/// Frequent-words extraction's text before the coded text.
pub(crate) const FWE_INTRO: &str = "Read the following coded text and track the frequency of each coded word. \
                                    Find the three most frequently appeared coded words.";

/// Frequent-words extraction's question.
pub(crate) const FWE_QUESTION: &str = "Question: Do not provide any explanation. Please ignore the dots '....'. \
                                       What are the three most frequently appeared words in the above coded text?";

/// Frequent-words extraction's answer prefix.
pub(crate) const FWE_ANSWER_PREFIX: &str =
    "Answer: According to the coded text above, the three most frequently appeared words are:";

/// A needle sentence: `value` is `key`'s value, of the kind named by `plural`.
pub(crate) fn needle(plural: &str, key: &str, value: &str) -> String {
    NEEDLE
        .replace("{type_needle_v}", plural)
        .replace("{key}", key)
        .replace("{value}", value)
}

/// The needle tasks' intro, question and answer prefix for `query` (keys already joined as
/// RULER joins them). With a single answer (`single`) the wording turns singular by RULER's
/// own replacements ("Some" → "A", "are all"/"are" → "is", the kind loses its "s").
pub(crate) fn niah_prompt(plural: &str, query: &str, single: bool) -> (String, String, String) {
    let kind = if single {
        plural.strip_suffix('s').unwrap_or(plural)
    } else {
        plural
    };
    let word = |template: &str| {
        let template = if single {
            template
                .replace("Some", "A")
                .replace("are all", "is")
                .replace("are", "is")
        } else {
            template.to_owned()
        };
        template
            .replace("{type_needle_v}", kind)
            .replace("{query}", query)
    };
    (
        word(NIAH_INTRO),
        word(NIAH_QUESTION),
        word(NIAH_ANSWER_PREFIX),
    )
}

/// RULER's list of queried keys: `a`, `a, and b`, `a, b, and c`.
pub(crate) fn join_keys(keys: &[String]) -> String {
    match keys {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// Variable tracking's question and answer prefix for the value `query` held by `num_v`
/// variables.
pub(crate) fn vt_prompt(query: &str, num_v: usize) -> (String, String) {
    (
        VT_QUESTION.replace("{query}", query),
        VT_ANSWER_PREFIX
            .replace("{num_v}", &num_v.to_string())
            .replace("{query}", query),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_and_plural_wordings_match_rulers_prompts() {
        let (intro, question, prefix) = niah_prompt("numbers", "tidy-lamp", true);
        assert_eq!(
            intro,
            "A special magic number is hidden within the following text. Make sure to memorize it. \
             I will quiz you about the number afterwards."
        );
        assert_eq!(
            question,
            "What is the special magic number for tidy-lamp mentioned in the provided text?"
        );
        assert_eq!(
            prefix,
            "The special magic number for tidy-lamp mentioned in the provided text is"
        );
        let (intro, question, prefix) = niah_prompt("uuids", "a, b, and c", false);
        assert!(
            intro.starts_with("Some special magic uuids are hidden"),
            "{intro}"
        );
        assert_eq!(
            question,
            "What are all the special magic uuids for a, b, and c mentioned in the provided text?"
        );
        assert!(
            prefix.ends_with("for a, b, and c mentioned in the provided text are"),
            "{prefix}"
        );
        assert_eq!(
            needle("numbers", "k", "1234567"),
            "One of the special magic numbers for k is: 1234567."
        );
        let keys = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(join_keys(&keys(1)), "0");
        assert_eq!(join_keys(&keys(2)), "0, and 1");
        assert_eq!(join_keys(&keys(4)), "0, 1, 2, and 3");
        let (question, prefix) = vt_prompt("12345", 5);
        assert_eq!(
            question,
            "Question: Find all variables that are assigned the value 12345 in the text above."
        );
        assert_eq!(
            prefix,
            "Answer: According to the chain(s) of variable assignment in the text above, 5 variables \
             are assigned the value 12345, they are: "
        );
    }
}

//! Retrieval prompts for training Judge Q's soft tokens: a window of a training document with
//! one to four short facts inserted at random sentence boundaries, and a question about one of
//! them at the end. The model's own answer to such a prompt leans on a few entries (the fact it
//! retrieves), which chat answers that spread their attention over the whole prompt never
//! teach.
//!
//! The fact and question templates, names and words are judgeq's own and deliberately unlike
//! the evaluation tasks' (RULER's "special magic number" needles, LongEval's numbered lines), and
//! the text comes from documents training may use, so the evaluation's prompts stay unseen.

use crate::judgeq::corpus::{CorpusRecord, window_of};
use crate::judgeq::data::PromptText;
use crate::rng::SplitMix64;

/// A kind of fact: how it is stated, how it is asked about, and what its value looks like.
struct FactTemplate {
    /// The fact, with `{key}` and `{value}`.
    statement: &'static str,
    /// The question, with `{key}`.
    question: &'static str,
    /// What the key is drawn from.
    key: KeyKind,
    /// What the value is drawn from.
    value: ValueKind,
}

/// Keys of facts.
#[derive(Clone, Copy)]
enum KeyKind {
    /// A person's name.
    Person,
    /// A thing: an adjective and a noun.
    Thing,
    /// A city.
    City,
}

/// Values of facts.
#[derive(Clone, Copy)]
enum ValueKind {
    /// A number with this many digits.
    Digits(u32),
    /// A word from [`VALUE_WORDS`].
    Word,
    /// A code like `K4-772`.
    Code,
}

const TEMPLATES: [FactTemplate; 10] = [
    FactTemplate {
        statement: "For the record, the locker assigned to {key} is number {value}.",
        question: "Which locker number is assigned to {key}?",
        key: KeyKind::Person,
        value: ValueKind::Digits(4),
    },
    FactTemplate {
        statement: "The {key} was last seen in the {value} cabinet.",
        question: "In which cabinet was the {key} last seen?",
        key: KeyKind::Thing,
        value: ValueKind::Word,
    },
    FactTemplate {
        statement: "Our office in {key} uses the door code {value}.",
        question: "What door code does the office in {key} use?",
        key: KeyKind::City,
        value: ValueKind::Digits(6),
    },
    FactTemplate {
        statement: "{key} signed the contract with the reference {value}.",
        question: "What is the reference of the contract {key} signed?",
        key: KeyKind::Person,
        value: ValueKind::Code,
    },
    FactTemplate {
        statement: "Remember that the {key} weighs exactly {value} grams.",
        question: "How many grams does the {key} weigh?",
        key: KeyKind::Thing,
        value: ValueKind::Digits(5),
    },
    FactTemplate {
        statement: "The train to {key} leaves from platform {value}.",
        question: "From which platform does the train to {key} leave?",
        key: KeyKind::City,
        value: ValueKind::Digits(3),
    },
    FactTemplate {
        statement: "{key} keeps a spare key under the {value} stone.",
        question: "Under which stone does {key} keep a spare key?",
        key: KeyKind::Person,
        value: ValueKind::Word,
    },
    FactTemplate {
        statement: "The catalogue lists the {key} under item {value}.",
        question: "Under which item does the catalogue list the {key}?",
        key: KeyKind::Thing,
        value: ValueKind::Code,
    },
    FactTemplate {
        statement: "Visitors from {key} receive badge {value} at the front desk.",
        question: "Which badge do visitors from {key} receive at the front desk?",
        key: KeyKind::City,
        value: ValueKind::Code,
    },
    FactTemplate {
        statement: "The phone extension of {key} is {value}.",
        question: "What is the phone extension of {key}?",
        key: KeyKind::Person,
        value: ValueKind::Digits(5),
    },
];

const PEOPLE: [&str; 40] = [
    "Amara Okafor",
    "Bruno Lindqvist",
    "Chen Wei",
    "Dalia Haddad",
    "Emil Novak",
    "Farah Qureshi",
    "Gustavo Reyes",
    "Hana Sato",
    "Ivan Petrov",
    "Jasmine Boateng",
    "Kofi Mensah",
    "Lena Fischer",
    "Mateo Alvarez",
    "Nadia Rahman",
    "Oscar Nyberg",
    "Priya Nair",
    "Quentin Dubois",
    "Rosa Marino",
    "Samir Aziz",
    "Tamsin Clarke",
    "Ugo Bianchi",
    "Vera Kowalska",
    "Wendell Price",
    "Ximena Ortiz",
    "Yusuf Demir",
    "Zoe Hartmann",
    "Aiko Tanaka",
    "Boris Volkov",
    "Carmen Silva",
    "Dmitri Sokolov",
    "Elif Yilmaz",
    "Finn Gallagher",
    "Greta Holm",
    "Hugo Laurent",
    "Ingrid Berg",
    "Jonas Weber",
    "Kiran Patel",
    "Leila Mansour",
    "Marco Rossi",
    "Nina Ivanova",
];

const CITIES: [&str; 30] = [
    "Lisbon",
    "Nairobi",
    "Osaka",
    "Quito",
    "Tallinn",
    "Adelaide",
    "Bergen",
    "Cordoba",
    "Dakar",
    "Edinburgh",
    "Fukuoka",
    "Gdansk",
    "Hanoi",
    "Izmir",
    "Jaipur",
    "Kraków",
    "Lyon",
    "Medellín",
    "Nantes",
    "Oaxaca",
    "Porto",
    "Riga",
    "Salvador",
    "Tromsø",
    "Utrecht",
    "Valparaíso",
    "Windhoek",
    "Yerevan",
    "Zanzibar",
    "Antwerp",
];

const ADJECTIVES: [&str; 24] = [
    "blue", "wooden", "ancient", "folded", "silver", "heavy", "striped", "tiny", "cracked",
    "velvet", "rusty", "glass", "woollen", "painted", "hollow", "bronze", "crimson", "narrow",
    "spotted", "frozen", "golden", "paper", "leather", "marble",
];

const NOUNS: [&str; 24] = [
    "umbrella",
    "teapot",
    "lantern",
    "compass",
    "violin",
    "kettle",
    "map",
    "helmet",
    "basket",
    "clock",
    "statue",
    "notebook",
    "bicycle",
    "mirror",
    "drum",
    "vase",
    "telescope",
    "wallet",
    "trophy",
    "candle",
    "hammer",
    "globe",
    "flute",
    "chessboard",
];

/// Words a value may be.
const VALUE_WORDS: [&str; 24] = [
    "green",
    "oak",
    "north",
    "harbour",
    "granite",
    "orchard",
    "copper",
    "meadow",
    "willow",
    "lighthouse",
    "amber",
    "river",
    "cedar",
    "falcon",
    "maple",
    "slate",
    "coral",
    "juniper",
    "pebble",
    "saffron",
    "thistle",
    "walnut",
    "indigo",
    "hazel",
];

/// One fact inserted into a document.
struct Fact {
    key: String,
    value: String,
    statement: String,
}

/// Draws a fact of `template` with a key not in `taken`.
fn draw_fact(template: &FactTemplate, taken: &[String], rng: &mut SplitMix64) -> Fact {
    let key = loop {
        let key = match template.key {
            KeyKind::Person => PEOPLE[rng.below(PEOPLE.len())].to_owned(),
            KeyKind::City => CITIES[rng.below(CITIES.len())].to_owned(),
            KeyKind::Thing => format!(
                "{} {}",
                ADJECTIVES[rng.below(ADJECTIVES.len())],
                NOUNS[rng.below(NOUNS.len())]
            ),
        };
        if !taken.contains(&key) {
            break key;
        }
    };
    let value = match template.value {
        ValueKind::Digits(n) => {
            let low = 10u64.pow(n - 1);
            (low + rng.next_u64() % (9 * low)).to_string()
        }
        ValueKind::Word => VALUE_WORDS[rng.below(VALUE_WORDS.len())].to_owned(),
        ValueKind::Code => format!(
            "{}{}-{}",
            (b'A' + rng.below(26) as u8) as char,
            rng.below(10),
            100 + rng.below(900)
        ),
    };
    let statement = template
        .statement
        .replace("{key}", &key)
        .replace("{value}", &value);
    Fact {
        key,
        value,
        statement,
    }
}

/// Byte offsets after each sentence end (`. `, `! `, `? ` or a newline) of `text`, plus 0 and the
/// end: where a fact can go without splitting a sentence.
fn sentence_boundaries(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut out = vec![0];
    for i in 1..bytes.len() {
        let ends = matches!(bytes[i - 1], b'.' | b'!' | b'?') && bytes[i] == b' ';
        if ends || bytes[i - 1] == b'\n' {
            out.push(i);
        }
    }
    out.push(text.len());
    out
}

/// A retrieval prompt: a window of `document` (`source` names it) of `min_chars..=max_chars`
/// with 1–4 facts of one template inserted at random sentence boundaries, and a question about
/// one of them. The record's `answer` is the asked fact's value.
pub fn retrieval_prompt(
    source: &str,
    document: &str,
    min_chars: usize,
    max_chars: usize,
    rng: &mut SplitMix64,
) -> CorpusRecord {
    let (mut text, start) = window_of(document, min_chars, max_chars, rng);
    let template = &TEMPLATES[rng.below(TEMPLATES.len())];
    let count = 1 + rng.below(4);
    let mut facts: Vec<Fact> = Vec::with_capacity(count);
    for _ in 0..count {
        let taken: Vec<String> = facts.iter().map(|f| f.key.clone()).collect();
        facts.push(draw_fact(template, &taken, rng));
    }
    // Insert from the back so earlier offsets stay valid.
    let boundaries = sentence_boundaries(&text);
    let mut at: Vec<usize> = (0..count)
        .map(|_| boundaries[rng.below(boundaries.len())])
        .collect();
    at.sort_unstable();
    for (offset, fact) in at.iter().rev().zip(facts.iter().rev()) {
        let piece = if *offset == 0 {
            format!("{} ", fact.statement)
        } else {
            format!(" {}", fact.statement)
        };
        text.insert_str(*offset, &piece);
    }
    let asked = &facts[rng.below(count)];
    CorpusRecord {
        source: format!("retrieval/{source}@{start}"),
        text: PromptText::Document {
            document: text,
            question: template.question.replace("{key}", &asked.key),
        },
        answer: Some(asked.value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "The committee met on Monday. It discussed the budget! Was it enough? \
        Nobody knew.\nA new line starts here. The end came quickly. Then the report followed. \
        It was long and detailed. Everyone read it twice. The budget passed in the end.";

    #[test]
    fn facts_are_inserted_whole_and_the_question_asks_one_of_them() {
        for seed in 0..50 {
            let mut rng = SplitMix64::new(seed);
            let record = retrieval_prompt("doc", DOC, 60, 200, &mut rng);
            let PromptText::Document { document, question } = &record.text else {
                panic!("a document prompt");
            };
            let answer = record.answer.clone().unwrap();
            assert!(document.contains(&answer), "{document} / {answer}");
            let template = TEMPLATES
                .iter()
                .find(|t| {
                    let (before, after) = t.question.split_once("{key}").unwrap();
                    question.starts_with(before) && question.ends_with(after)
                })
                .expect("a known question");
            let (before, after) = template.question.split_once("{key}").unwrap();
            let key = &question[before.len()..question.len() - after.len()];
            let statement = template
                .statement
                .replace("{key}", key)
                .replace("{value}", &answer);
            assert!(document.contains(&statement), "{document} / {statement}");
            // Facts never split a sentence of the document: removing them leaves a window of it.
            assert!(document.split(". ").count() >= 2);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_prompt() {
        let a = retrieval_prompt("doc", DOC, 60, 200, &mut SplitMix64::new(3));
        let b = retrieval_prompt("doc", DOC, 60, 200, &mut SplitMix64::new(3));
        let c = retrieval_prompt("doc", DOC, 60, 200, &mut SplitMix64::new(4));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn sentence_boundaries_follow_sentence_ends() {
        assert_eq!(sentence_boundaries("A b. C d? E\nF"), vec![0, 4, 9, 12, 13]);
    }
}

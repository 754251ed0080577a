//! `judgeq prepare-data`: the training prompts and the held-out evaluation prompts for the
//! shipped soft tokens, made reproducibly from the team's shared data folder
//! (`../shared/data`, see its README for origins and licences; judgeq does not ship it).
//!
//! - **Training**: ShareGPT first human turns (`prompts/*.json`), long-document prompts made of
//!   a window of an L-Eval document followed by one of its questions (`scientific_qa`
//!   documents 1–18, `multidoc_qa`, `natural_question`, `gov_report_summ` documents 1–11),
//!   retrieval prompts (a window of the same documents with facts inserted and a question about
//!   one of them, see [`crate::judgeq::retrieval`]), and, only when asked for, windows of Paul
//!   Graham essays (`haystack/*.txt`) followed by a generic reading question. The essays are the
//!   needle evaluation's haystack, so the default corpus leaves them out.
//! - **Development haystack**: the last `gov_report_summ` documents (12 on), which training
//!   never sees, written as text files for choosing training settings on needle tasks without
//!   touching the evaluation's haystack.
//! - **Held out**: windows of documents training never sees — every `quality` document and
//!   `scientific_qa` documents 19–23 — each followed by one of its own questions.
//!
//! L-Eval repeats a few documents under a second index; a training document whose text is a
//! held-out or development document's is left out of training, so "never sees" holds for the
//! text, not only for the index.
//!
//! Windows start at a word boundary at a random offset; lengths, counts and the seed are
//! settings. The output is JSON Lines that `judgeq train` and `judgeq eval` read, each record
//! carrying a `source` field for provenance.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::atomic_write::{Overwrite, write_new};
use crate::judgeq::data::PromptText;
use crate::judgeq::error::{Result, TrainError};
use crate::judgeq::retrieval::retrieval_prompt;
use crate::rng::SplitMix64;

/// L-Eval tasks whose documents training may use, and how many leading documents of each.
const TRAIN_TASKS: [(&str, Option<usize>); 4] = [
    ("scientific_qa", Some(HELD_SCIENTIFIC_FROM)),
    ("multidoc_qa", None),
    ("natural_question", None),
    ("gov_report_summ", Some(DEV_GOV_REPORT_FROM)),
];
/// `scientific_qa` documents from this index on are held out.
const HELD_SCIENTIFIC_FROM: usize = 18;
/// `gov_report_summ` documents from this index on form the development haystack.
pub const DEV_GOV_REPORT_FROM: usize = 11;
/// Random stream of the retrieval prompts (so that adding them leaves the other prompts as
/// they were).
const RETRIEVAL_STREAM: u64 = 7;
/// Random stream of the held-out prompts (so that they do not depend on the training mix).
const HELD_STREAM: u64 = 8;
/// Random stream of the development question prompts (so that adding them left the other
/// files as they were).
const DEV_STREAM: u64 = 9;
/// Questions asked after a window of a development document (government reports).
const DEV_QUESTIONS: [&str; 6] = [
    "What is the main finding of the report excerpt above?",
    "Summarize the passage above in three sentences.",
    "Which agencies or organizations does the text mention, and what do they do?",
    "What recommendations does the text make?",
    "What problem does the passage describe, and why does it matter?",
    "List the key numbers mentioned in the passage and what they measure.",
];
/// Questions asked after an essay window.
const ESSAY_QUESTIONS: [&str; 8] = [
    "What is the main argument of the passage above?",
    "Summarize the passage above in three sentences.",
    "What advice does the author give in this text?",
    "Which examples does the author use, and what do they illustrate?",
    "What does the author think about startups, according to the text?",
    "List the key claims made in the passage.",
    "What is surprising or counter-intuitive in this essay?",
    "Who is the intended audience of this text, and why?",
];

/// How many prompts of each kind, and how long the document windows are.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CorpusSettings {
    /// Seed of every random choice.
    pub seed: u64,
    /// ShareGPT prompts in the training set.
    pub sharegpt: usize,
    /// L-Eval document + question prompts in the training set.
    pub leval: usize,
    /// Essay + question prompts in the training set (default 0: the essays are the needle
    /// evaluation's haystack).
    pub essays: usize,
    /// Retrieval prompts (facts inserted into a document window, a question about one).
    pub retrieval: usize,
    /// Held-out prompts (half QuALITY, half held-out scientific_qa documents).
    pub held: usize,
    /// Development question prompts (windows of the development haystack's documents).
    pub dev: usize,
    /// Shortest document window, characters.
    pub min_window_chars: usize,
    /// Longest document window, characters.
    pub max_window_chars: usize,
    /// Shortest ShareGPT prompt kept, characters.
    pub min_prompt_chars: usize,
    /// Longest ShareGPT prompt kept, characters.
    pub max_prompt_chars: usize,
}

impl Default for CorpusSettings {
    fn default() -> Self {
        Self {
            seed: 0,
            sharegpt: 160,
            leval: 120,
            essays: 0,
            retrieval: 240,
            held: 32,
            dev: 24,
            min_window_chars: 3000,
            max_window_chars: 6000,
            min_prompt_chars: 32,
            max_prompt_chars: 8000,
        }
    }
}

/// One prepared prompt and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct CorpusRecord {
    /// Provenance, e.g. `sharegpt/ShareGPT_V3_filtered_500.json#12` or `leval/quality#3`.
    pub source: String,
    /// The prompt.
    pub text: PromptText,
    /// The expected answer, when the prompt has one (retrieval prompts); training ignores it.
    pub answer: Option<String>,
}

impl CorpusRecord {
    /// The record as one JSON line.
    pub fn to_json_line(&self) -> String {
        let mut value = match &self.text {
            PromptText::Chat(prompt) => json!({"prompt": prompt, "source": self.source}),
            PromptText::Document { document, question } => {
                json!({"document": document, "question": question, "source": self.source})
            }
        };
        if let (Some(answer), Some(object)) = (&self.answer, value.as_object_mut()) {
            object.insert("answer".into(), json!(answer));
        }
        value.to_string()
    }
}

/// The training and held-out prompts.
#[derive(Clone, Debug, PartialEq)]
pub struct Corpus {
    /// Training prompts, shuffled.
    pub train: Vec<CorpusRecord>,
    /// Held-out prompts.
    pub held: Vec<CorpusRecord>,
    /// Development question prompts: windows of the development haystack's documents, each
    /// followed by a question, for choosing settings on answers (agreement with the full cache)
    /// on documents neither training nor any evaluation uses.
    pub dev: Vec<CorpusRecord>,
    /// The development haystack: `(file name, text)` of documents training never sees.
    pub dev_haystack: Vec<(String, String)>,
}

/// An L-Eval document with its questions.
struct Document {
    source: String,
    text: String,
    questions: Vec<String>,
}

/// Builds the corpus from the shared data folder `shared` (the folder that holds `prompts/`,
/// `leval/` and `haystack/`).
pub fn build_corpus(shared: &Path, settings: &CorpusSettings) -> Result<Corpus> {
    if settings.min_window_chars == 0 || settings.min_window_chars > settings.max_window_chars {
        return Err(TrainError::InvalidSetting(format!(
            "window lengths must satisfy 0 < min ({}) <= max ({})",
            settings.min_window_chars, settings.max_window_chars
        )));
    }
    let mut rng = SplitMix64::new(settings.seed);
    let mut train = Vec::new();

    let mut prompts = sharegpt_prompts(&shared.join("prompts"), settings)?;
    rng.shuffle(&mut prompts);
    take(&mut train, prompts, settings.sharegpt, "ShareGPT prompts")?;

    let held_sets = held_documents(shared)?;
    let dev_documents = dev_documents(shared)?;
    let unseen: HashSet<&str> = held_sets
        .iter()
        .flatten()
        .chain(&dev_documents)
        .map(|doc| doc.text.trim())
        .collect();
    let mut training_docs = Vec::new();
    for (task, limit) in TRAIN_TASKS {
        let mut docs = leval_documents(&shared.join("leval"), task)?;
        docs.truncate(limit.unwrap_or(usize::MAX));
        // L-Eval repeats some documents under a second index (scientific_qa 1, 3 and 9 are 22,
        // 23 and 21; gov_report_summ 7 is 14): a copy of a held-out or development document
        // stays out of training.
        docs.retain(|doc| !unseen.contains(doc.text.trim()));
        if docs.is_empty() {
            return Err(missing(
                &shared.join(format!("leval/{task}.jsonl")),
                "training documents (every one repeats a held-out or development document)",
            ));
        }
        training_docs.push(docs);
    }
    for i in 0..settings.leval {
        let docs = &training_docs[i % training_docs.len()];
        let doc = &docs[rng.below(docs.len())];
        train.push(document_prompt(doc, settings, &mut rng));
    }
    let mut retrieval_rng = SplitMix64::stream(settings.seed, RETRIEVAL_STREAM);
    for i in 0..settings.retrieval {
        let docs = &training_docs[i % training_docs.len()];
        let doc = &docs[retrieval_rng.below(docs.len())];
        train.push(retrieval_prompt(
            &doc.source,
            &doc.text,
            settings.min_window_chars,
            settings.max_window_chars,
            &mut retrieval_rng,
        ));
    }

    let essays = if settings.essays > 0 {
        essays(&shared.join("haystack"))?
    } else {
        Vec::new()
    };
    if settings.essays > 0 && essays.is_empty() {
        return Err(missing(&shared.join("haystack"), "essays (*.txt)"));
    }
    for _ in 0..settings.essays {
        let essay = &essays[rng.below(essays.len())];
        let question = ESSAY_QUESTIONS[rng.below(ESSAY_QUESTIONS.len())];
        let (text, _) = window(&essay.text, settings, &mut rng);
        train.push(CorpusRecord {
            source: essay.source.clone(),
            text: PromptText::Document {
                document: text,
                question: question.to_string(),
            },
            answer: None,
        });
    }
    rng.shuffle(&mut train);

    let mut held = Vec::with_capacity(settings.held);
    let mut held_rng = SplitMix64::stream(settings.seed, HELD_STREAM);
    for i in 0..settings.held {
        let docs = &held_sets[i % 2];
        let doc = &docs[(i / 2) % docs.len()];
        held.push(document_prompt(doc, settings, &mut held_rng));
    }
    if settings.dev > 0 && dev_documents.is_empty() {
        return Err(missing(
            &shared.join("leval/gov_report_summ.jsonl"),
            "development documents (more than 11 documents)",
        ));
    }
    let mut dev = Vec::with_capacity(settings.dev);
    let mut dev_rng = SplitMix64::stream(settings.seed, DEV_STREAM);
    for i in 0..settings.dev {
        let doc = &dev_documents[i % dev_documents.len()];
        let (document, start) = window(&doc.text, settings, &mut dev_rng);
        let question = DEV_QUESTIONS[dev_rng.below(DEV_QUESTIONS.len())].to_string();
        dev.push(CorpusRecord {
            source: format!("{}@{start}", doc.source),
            text: PromptText::Document { document, question },
            answer: None,
        });
    }
    let dev_haystack = dev_documents
        .into_iter()
        .enumerate()
        .map(|(i, doc)| {
            (
                format!("gov_report_{:02}.txt", DEV_GOV_REPORT_FROM + i + 1),
                doc.text,
            )
        })
        .collect();
    Ok(Corpus {
        train,
        held,
        dev,
        dev_haystack,
    })
}

/// The held-out documents: every `quality` document, and `scientific_qa` from
/// [`HELD_SCIENTIFIC_FROM`] on.
fn held_documents(shared: &Path) -> Result<[Vec<Document>; 2]> {
    let quality = leval_documents(&shared.join("leval"), "quality")?;
    let scientific: Vec<Document> = leval_documents(&shared.join("leval"), "scientific_qa")?
        .into_iter()
        .skip(HELD_SCIENTIFIC_FROM)
        .collect();
    if scientific.is_empty() {
        return Err(missing(
            &shared.join("leval/scientific_qa.jsonl"),
            "held-out documents (more than 18 documents)",
        ));
    }
    Ok([quality, scientific])
}

/// The development haystack's documents: `gov_report_summ` from [`DEV_GOV_REPORT_FROM`] on.
fn dev_documents(shared: &Path) -> Result<Vec<Document>> {
    Ok(leval_documents(&shared.join("leval"), "gov_report_summ")?
        .into_iter()
        .skip(DEV_GOV_REPORT_FROM)
        .collect())
}

/// Writes `records` as JSON Lines to `path`, refusing to replace an existing file unless
/// `force`.
pub fn write_records(path: &Path, records: &[CorpusRecord], force: bool) -> Result<()> {
    let mut text = String::new();
    for record in records {
        text.push_str(&record.to_json_line());
        text.push('\n');
    }
    let overwrite = if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    Ok(write_new(path, text.as_bytes(), overwrite)?)
}

fn take(
    out: &mut Vec<CorpusRecord>,
    mut items: Vec<CorpusRecord>,
    count: usize,
    what: &str,
) -> Result<()> {
    if items.len() < count {
        return Err(TrainError::NoData(format!(
            "asked for {count} {what} but the data has {}",
            items.len()
        )));
    }
    items.truncate(count);
    out.extend(items);
    Ok(())
}

fn missing(path: &Path, what: &str) -> TrainError {
    TrainError::NoData(format!("{}: no {what} found", path.display()))
}

/// A window of `doc` followed by one of its questions.
fn document_prompt(
    doc: &Document,
    settings: &CorpusSettings,
    rng: &mut SplitMix64,
) -> CorpusRecord {
    let question = doc.questions[rng.below(doc.questions.len())]
        .trim()
        .to_string();
    let (text, start) = window(&doc.text, settings, rng);
    CorpusRecord {
        source: format!("{}@{start}", doc.source),
        text: PromptText::Document {
            document: text,
            question,
        },
        answer: None,
    }
}

/// A window of `text` of a random length in the settings' range, starting and ending at
/// whitespace; returns it and its byte offset.
fn window(text: &str, settings: &CorpusSettings, rng: &mut SplitMix64) -> (String, usize) {
    window_of(
        text,
        settings.min_window_chars,
        settings.max_window_chars,
        rng,
    )
}

/// A window of `text` of `min_chars..=max_chars` bytes (as a random draw), starting and ending
/// at whitespace; returns it and its byte offset.
pub(crate) fn window_of(
    text: &str,
    min_chars: usize,
    max_chars: usize,
    rng: &mut SplitMix64,
) -> (String, usize) {
    let span = max_chars.saturating_sub(min_chars);
    let length = min_chars + rng.below(span + 1);
    if text.len() <= length {
        return (text.trim().to_string(), 0);
    }
    let raw_start = rng.below(text.len() - length + 1);
    let start = snap_to_word(text, raw_start);
    let end = snap_to_word(text, (start + length).min(text.len()));
    (text[start..end].trim().to_string(), start)
}

/// The first whitespace byte offset at or after `at` (0 stays 0; the end of `text` when
/// there is no whitespace after `at`).
fn snap_to_word(text: &str, at: usize) -> usize {
    if at == 0 {
        return 0;
    }
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    text[at..]
        .find(char::is_whitespace)
        .map_or(text.len(), |offset| at + offset)
}

/// Unique, non-empty first human turns of the ShareGPT files in `dir` (sorted by file name),
/// within the settings' length range.
fn sharegpt_prompts(dir: &Path, settings: &CorpusSettings) -> Result<Vec<CorpusRecord>> {
    let mut files: Vec<PathBuf> = list(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(missing(dir, "ShareGPT files (*.json)"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| TrainError::io(&file, e))?;
        let records: Vec<Value> = serde_json::from_str(crate::bom::strip_bom_str(&text))
            .map_err(|e| TrainError::bad_file(&file, format!("not a JSON array: {e}")))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (index, record) in records.iter().enumerate() {
            let Some(turn) = record
                .get("conversations")
                .and_then(Value::as_array)
                .and_then(|turns| turns.first())
            else {
                continue;
            };
            let human = turn.get("from").and_then(Value::as_str) == Some("human");
            let Some(value) = turn.get("value").and_then(Value::as_str).filter(|_| human) else {
                continue;
            };
            let value = value.trim();
            let chars = value.chars().count();
            if chars < settings.min_prompt_chars || chars > settings.max_prompt_chars {
                continue;
            }
            if seen.insert(value.to_string()) {
                out.push(CorpusRecord {
                    source: format!("sharegpt/{name}#{}", index + 1),
                    text: PromptText::Chat(value.to_string()),
                    answer: None,
                });
            }
        }
    }
    Ok(out)
}

/// The documents of L-Eval task `task` (`leval/TASK.jsonl`), in file order.
fn leval_documents(dir: &Path, task: &str) -> Result<Vec<Document>> {
    let path = dir.join(format!("{task}.jsonl"));
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let mut docs = Vec::new();
    for (index, line) in crate::bom::strip_bom_str(&text)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| TrainError::bad_file(&path, format!("line {}: {e}", index + 1)))?;
        let input = value.get("input").and_then(Value::as_str);
        let questions: Vec<String> = value
            .get("instructions")
            .and_then(Value::as_array)
            .map(|qs| {
                qs.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        match input {
            Some(input) if !input.trim().is_empty() && !questions.is_empty() => {
                docs.push(Document {
                    source: format!("leval/{task}#{}", docs.len() + 1),
                    text: input.to_string(),
                    questions,
                })
            }
            _ => {
                return Err(TrainError::bad_file(
                    &path,
                    format!("line {}: expected `input` and `instructions`", index + 1),
                ));
            }
        }
    }
    if docs.is_empty() {
        return Err(missing(&path, "documents"));
    }
    Ok(docs)
}

/// The essays in `dir` (`*.txt` over 1,000 bytes), sorted by name.
fn essays(dir: &Path) -> Result<Vec<Document>> {
    let mut files: Vec<PathBuf> = list(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| TrainError::io(&file, e))?;
        if text.len() > 1000 {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(Document {
                source: format!("essay/{name}"),
                text,
                questions: Vec::new(),
            });
        }
    }
    Ok(out)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))?;
    entries
        .map(|entry| entry.map(|e| e.path()).map_err(|e| TrainError::io(dir, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A miniature shared folder with the layout of `../shared/data`.
    fn shared_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["prompts", "leval", "haystack"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let conversations: Vec<Value> = (0..12)
            .map(|i| {
                let from = if i == 3 { "gpt" } else { "human" };
                let value = match i {
                    4 => "short".to_string(),
                    5 => "a repeated prompt that is long enough to keep".to_string(),
                    _ => format!("prompt number {i}, long enough to be kept by the filter"),
                };
                json!({"id": format!("p{i}"), "conversations": [{"from": from, "value": value}]})
            })
            .collect();
        let mut second = conversations[5..7].to_vec();
        second.push(json!({"id": "x", "conversations": []}));
        std::fs::write(
            root.join("prompts/a.json"),
            Value::Array(conversations).to_string(),
        )
        .unwrap();
        std::fs::write(
            root.join("prompts/b.json"),
            Value::Array(second).to_string(),
        )
        .unwrap();
        let doc = |task: &str, i: usize| {
            let text: String = (0..400).map(|w| format!("{task}{i}w{w} ")).collect();
            json!({"input": text, "instructions": [format!("question about {task} {i}?")], "outputs": ["x"]})
                .to_string()
        };
        for (task, docs) in [
            ("scientific_qa", 21),
            ("multidoc_qa", 2),
            ("natural_question", 2),
            ("gov_report_summ", 13),
            ("quality", 3),
        ] {
            let lines: Vec<String> = (0..docs).map(|i| doc(task, i)).collect();
            std::fs::write(root.join(format!("leval/{task}.jsonl")), lines.join("\n")).unwrap();
        }
        let essay: String = (0..500).map(|w| format!("essay{w} ")).collect();
        std::fs::write(root.join("haystack/one.txt"), &essay).unwrap();
        std::fs::write(root.join("haystack/rss.txt"), "too short").unwrap();
        dir
    }

    fn small() -> CorpusSettings {
        CorpusSettings {
            sharegpt: 8,
            leval: 8,
            essays: 3,
            retrieval: 5,
            held: 6,
            min_window_chars: 300,
            max_window_chars: 600,
            ..CorpusSettings::default()
        }
    }

    #[test]
    fn builds_disjoint_reproducible_sets() {
        let shared = shared_folder();
        let corpus = build_corpus(shared.path(), &small()).unwrap();
        assert_eq!(corpus.train.len(), 8 + 8 + 3 + 5);
        assert_eq!(corpus.held.len(), 6);
        let retrieval: Vec<&CorpusRecord> = corpus
            .train
            .iter()
            .filter(|r| r.source.starts_with("retrieval/"))
            .collect();
        assert_eq!(retrieval.len(), 5);
        for record in &retrieval {
            let PromptText::Document { document, .. } = &record.text else {
                panic!("retrieval prompts are documents with a question")
            };
            assert!(document.contains(record.answer.as_deref().unwrap()));
        }
        // The development haystack is the gov_report documents from 12 on, which no training
        // prompt uses.
        let dev_names: Vec<&str> = corpus
            .dev_haystack
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(dev_names, ["gov_report_12.txt", "gov_report_13.txt"]);
        for record in &corpus.train {
            if let Some(rest) = record.source.split("leval/gov_report_summ#").nth(1) {
                let n: usize = rest.split('@').next().unwrap().parse().unwrap();
                assert!(n <= DEV_GOV_REPORT_FROM, "{}", record.source);
            }
        }
        // The held-out prompts do not depend on the training mix.
        let fewer = CorpusSettings {
            retrieval: 0,
            essays: 0,
            ..small()
        };
        assert_eq!(
            build_corpus(shared.path(), &fewer).unwrap().held,
            corpus.held
        );

        let chats: Vec<&str> = corpus
            .train
            .iter()
            .filter_map(|r| match &r.text {
                PromptText::Chat(text) => Some(text.as_str()),
                PromptText::Document { .. } => None,
            })
            .collect();
        assert_eq!(chats.len(), 8);
        assert!(
            !chats.contains(&"short"),
            "prompts under the minimum length are dropped"
        );
        let mut unique = chats.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            chats.len(),
            "duplicates across files are dropped"
        );

        // Held-out prompts come from quality and scientific_qa documents 19+ only, and no
        // training prompt uses those documents.
        for record in &corpus.held {
            let doc = record.source.split('@').next().unwrap();
            let held_doc = doc.starts_with("leval/quality#")
                || doc
                    .strip_prefix("leval/scientific_qa#")
                    .is_some_and(|n| n.parse::<usize>().unwrap() > HELD_SCIENTIFIC_FROM);
            assert!(held_doc, "{}", record.source);
            let PromptText::Document { document, question } = &record.text else {
                panic!("held-out prompts are documents with a question")
            };
            assert!((250..=700).contains(&document.len()), "{}", document.len());
            assert!(question.ends_with('?'));
        }
        for record in &corpus.train {
            assert!(
                !record.source.starts_with("leval/quality"),
                "{}",
                record.source
            );
            let source = record.source.trim_start_matches("retrieval/");
            if let Some(n) = source.strip_prefix("leval/scientific_qa#") {
                let n: usize = n.split('@').next().unwrap().parse().unwrap();
                assert!(n <= HELD_SCIENTIFIC_FROM, "{}", record.source);
            }
        }

        assert_eq!(build_corpus(shared.path(), &small()).unwrap(), corpus);
        let other = CorpusSettings { seed: 1, ..small() };
        assert_ne!(build_corpus(shared.path(), &other).unwrap(), corpus);
    }

    /// The development question prompts are windows of the development documents only, each
    /// with one of the development questions, and adding them changes no other file.
    #[test]
    fn development_questions_come_from_development_documents() {
        let shared = shared_folder();
        let settings = CorpusSettings { dev: 5, ..small() };
        let corpus = build_corpus(shared.path(), &settings).unwrap();
        assert_eq!(corpus.dev.len(), 5);
        let mut documents = HashSet::new();
        for record in &corpus.dev {
            let doc = record.source.split('@').next().unwrap();
            let n: usize = doc
                .strip_prefix("leval/gov_report_summ#")
                .unwrap_or_else(|| panic!("{}", record.source))
                .parse()
                .unwrap();
            assert!(n > DEV_GOV_REPORT_FROM, "{}", record.source);
            documents.insert(n);
            let PromptText::Document { document, question } = &record.text else {
                panic!("development prompts are documents with a question")
            };
            assert!((250..=700).contains(&document.len()), "{}", document.len());
            assert!(DEV_QUESTIONS.contains(&question.as_str()), "{question}");
        }
        assert_eq!(documents.len(), 2, "both development documents are used");
        let none = build_corpus(shared.path(), &CorpusSettings { dev: 0, ..small() }).unwrap();
        assert!(none.dev.is_empty());
        assert_eq!((none.train, none.held), (corpus.train, corpus.held));
    }

    /// L-Eval repeats documents under a second index; a training-side copy of a held-out or
    /// development document never reaches a training prompt, and the held-out prompts and the
    /// development haystack stay as they were.
    #[test]
    fn copies_of_unseen_documents_stay_out_of_training() {
        let shared = shared_folder();
        let before = build_corpus(shared.path(), &small()).unwrap();
        // scientific_qa #1 becomes a copy of held-out #20; gov_report_summ #3 of development #12.
        for (task, copy, original) in [("scientific_qa", 0, 19), ("gov_report_summ", 2, 11)] {
            let path = shared.path().join(format!("leval/{task}.jsonl"));
            let mut lines: Vec<String> = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect();
            lines[copy] = lines[original].clone();
            std::fs::write(&path, lines.join("\n")).unwrap();
        }
        let settings = CorpusSettings {
            leval: 40,
            retrieval: 40,
            ..small()
        };
        let corpus = build_corpus(shared.path(), &settings).unwrap();
        let unseen: Vec<&str> = ["scientific_qa19w", "gov_report_summ11w"].into();
        for record in &corpus.train {
            let source = record.source.trim_start_matches("retrieval/");
            let doc = source.split('@').next().unwrap();
            assert!(
                doc != "leval/scientific_qa#1" && doc != "leval/gov_report_summ#3",
                "{}",
                record.source
            );
            if let PromptText::Document { document, .. } = &record.text {
                assert!(
                    unseen.iter().all(|w| !document.contains(w)),
                    "{}",
                    record.source
                );
            }
        }
        // Both copies' pools still hold other documents, which training does use.
        assert!(
            corpus
                .train
                .iter()
                .any(|r| r.source.contains("leval/scientific_qa#"))
        );
        assert_eq!(corpus.held, before.held);
        assert_eq!(corpus.dev_haystack, before.dev_haystack);
    }

    #[test]
    fn written_records_read_back_as_prompts() {
        let shared = shared_folder();
        let corpus = build_corpus(shared.path(), &small()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("train.jsonl");
        write_records(&path, &corpus.train, false).unwrap();
        assert!(matches!(
            write_records(&path, &corpus.train, false),
            Err(TrainError::Write(
                crate::atomic_write::WriteError::Exists { .. }
            ))
        ));
        let file = crate::judgeq::data::read_prompts(&path).unwrap();
        let texts: Vec<PromptText> = file.records.into_iter().map(|r| r.text).collect();
        let expected: Vec<PromptText> = corpus.train.into_iter().map(|r| r.text).collect();
        assert_eq!(texts, expected);
    }

    #[test]
    fn missing_or_short_data_is_named() {
        let shared = shared_folder();
        let too_many = CorpusSettings {
            sharegpt: 100,
            ..small()
        };
        let err = build_corpus(shared.path(), &too_many).unwrap_err();
        assert!(
            err.to_string().contains("asked for 100 ShareGPT prompts"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = build_corpus(empty.path(), &small()).unwrap_err();
        assert!(err.to_string().contains("prompts"), "{err}");

        // A task whose every training document repeats a held-out one: a message, not a panic.
        let path = shared.path().join("leval/multidoc_qa.jsonl");
        let held = std::fs::read_to_string(shared.path().join("leval/quality.jsonl")).unwrap();
        let first = held.lines().next().unwrap();
        std::fs::write(&path, format!("{first}\n{first}")).unwrap();
        let err = build_corpus(shared.path(), &small()).unwrap_err();
        assert!(
            err.to_string()
                .contains("multidoc_qa.jsonl: no training documents"),
            "{err}"
        );
    }
}

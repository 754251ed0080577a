//! The real default model, SmolLM2-135M-Instruct (fetched through `default_model_path`), with
//! the question placed after eviction: the question tokens are cut from the scored prompt,
//! and decoding under a mask that keeps every entry gives the full-cache answer, one mask at a
//! time and batched. With the question at the start, the prompt holds it before the document.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test or bench reports failure by panicking"
)]

use judgeq::attention::KeepMask;
use judgeq::inspect::{InspectRequest, inspect};
use judgeq::model::fetch::default_model_path;
use judgeq::model::{LoadOptions, Model};
use judgeq::progress::Silent;
use judgeq::session::{QuestionPlacement, SpanKind};

const QUESTION: &str = "Which boat left on day 9, and where did it go?";
const DECODE: usize = 16;

/// An invented ferry timetable of about 300 tokens.
fn timetable() -> String {
    const BOATS: [&str; 5] = ["Puffin", "Otter", "Skua", "Wren", "Tern"];
    const PORTS: [&str; 4] = ["Ardmore", "Bellhaven", "Carrick", "Dunmore"];
    let mut text = String::from("Ferry timetable of the island for one fortnight.\n");
    for day in 1..=14 {
        let boat = BOATS[(day * 3) % BOATS.len()];
        let port = PORTS[(day * 5) % PORTS.len()];
        text.push_str(&format!(
            "Day {day}: the {boat} left at {} o'clock for {port}.\n",
            6 + day % 5
        ));
    }
    text
}

fn load() -> Model {
    let path = default_model_path(&Silent).expect("the default model downloads");
    Model::load(&path, &LoadOptions::default(), &Silent).unwrap()
}

#[test]
fn after_eviction_with_every_entry_kept_decodes_the_full_cache_answer() {
    let model = load();
    let request = InspectRequest {
        document: timetable(),
        question: QUESTION.to_owned(),
        placement: QuestionPlacement::AfterEviction,
        window: 16,
        decode_tokens: DECODE,
        soft: None,
        capture: Default::default(),
    };
    let (session, mut prefilled) = inspect(&model, &request, &Silent).unwrap();
    assert!(
        session
            .prompt
            .spans
            .iter()
            .all(|s| s.kind != SpanKind::Question),
        "the scored prompt holds no question token: {:?}",
        session.prompt.spans
    );
    assert!(!session.prompt.text.contains(QUESTION));
    assert!(prefilled.appended_len() > 10, "the question is appended");
    assert!(!session.answer.ids.is_empty());

    let info = &model.info;
    let all = KeepMask::from_elem((info.layers, info.kv_heads, session.prompt_len()), true);
    let one = prefilled
        .decode_under(&model, &all, DECODE, "all", &Silent)
        .unwrap();
    assert_eq!(one, session.answer);
    let batch = prefilled
        .decode_batch(&model, &[("all".to_owned(), all)], DECODE, &Silent)
        .unwrap();
    assert_eq!(batch, vec![session.answer.clone()]);
}

#[test]
fn start_puts_the_question_before_the_document() {
    let model = load();
    let document = timetable();
    let placed = model
        .placed_prompt(&document, QUESTION, QuestionPlacement::Start)
        .unwrap();
    let text = model.decode_tokens(&placed.scored.ids).unwrap();
    let question = text.find(QUESTION).unwrap();
    let doc = text.find(document.trim()).unwrap();
    assert_eq!(question + QUESTION.len() + 2, doc, "{text:?}");
}

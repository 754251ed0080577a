//! A chat template from the fuzzer's text, compiled and rendered with a fixed conversation as
//! a model's own template is.

#![no_main]

use judgeq::model::{ChatMessage, ChatTemplate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = ChatTemplate::new(source, "<s>", "</s>") else {
        return;
    };
    let messages = [
        ChatMessage {
            role: "system".into(),
            content: "Answer briefly.".into(),
        },
        ChatMessage::user("When does the bridge reopen?"),
    ];
    let _ = template.render(&messages, true);
});

//! The model's own chat template (Jinja, from GGUF `tokenizer.chat_template` or the Hugging
//! Face `tokenizer_config.json` / `chat_template.jinja`), rendered with minijinja the way
//! `transformers`' `apply_chat_template` renders it: `trim_blocks` and `lstrip_blocks` on,
//! Python string methods (`.strip()`, `.split()`...), `raise_exception`, `bos_token`,
//! `eos_token` and `add_generation_prompt` available.
//!
//! A template comes from a model file, so it is bounded: every render runs on minijinja's fuel
//! ([`render_steps`]), and a template that loops for ever (or builds text far beyond its
//! messages) is refused with [`ModelError::ChatTemplate`] instead of hanging the program.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, Value, context};

use super::error::{ModelError, Result};

const NAME: &str = "chat_template";

/// Steps any render may take, whatever its messages. minijinja charges a step per instruction
/// and per 64 bytes of text built or written. Real templates (SmolLM2's ChatML, Llama 3's,
/// Mistral's and Qwen2's; see the tests) take about 90 steps per 1,000-byte turn: under 7,000
/// on a 64-turn conversation, about 110,000 on 1,000 turns. A template that loops for ever
/// spends a million in a fraction of a second.
const BASE_STEPS: u64 = 1_000_000;

/// Steps each byte of the messages adds: a template may copy every message about 64 times
/// (real ones copy it four to six times, each copy costing a step per 64 bytes: 1.6 million
/// steps for Llama 3's on a 16 MiB document, which is allowed 17.8 million).
const STEPS_PER_MESSAGE_BYTE: u64 = 1;

/// One chat turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
}

impl ChatMessage {
    /// A `user` turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template with the special tokens it may refer to.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `source`. `bos_token` and `eos_token` are the strings the template sees as
    /// `bos_token` / `eos_token` (empty when the model has none).
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(template_error)?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned(NAME, source.to_owned())
            .map_err(template_error)?;
        Ok(Self {
            env,
            source: source.to_owned(),
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`; with `add_generation_prompt`, ends with the header of the
    /// assistant's turn.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let steps = render_steps(messages);
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let mut env = self.env.clone();
        env.set_fuel(Some(steps));
        let template = env.get_template(NAME).map_err(template_error)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(|e| match e.kind() {
                ErrorKind::OutOfFuel => ModelError::ChatTemplate(format!(
                    "the model's chat template did not finish within {steps} steps"
                )),
                _ => template_error(e),
            })
    }

    /// One user turn followed by the assistant's header: the prompt the model answers.
    pub fn render_user_turn(&self, content: &str) -> Result<String> {
        self.render(&[ChatMessage::user(content)], true)
    }
}

/// The steps a render of `messages` may take: [`BASE_STEPS`] plus
/// [`STEPS_PER_MESSAGE_BYTE`] per byte of their roles and contents.
fn render_steps(messages: &[ChatMessage]) -> u64 {
    let bytes: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len())
        .sum();
    BASE_STEPS.saturating_add(STEPS_PER_MESSAGE_BYTE.saturating_mul(bytes as u64))
}

fn raise_exception(message: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn template_error(e: Error) -> ModelError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    ModelError::ChatTemplate(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real chat template with its model's special tokens and its rendering of one user
    /// turn `Hi` with the generation prompt.
    struct RealTemplate {
        model: &'static str,
        source: &'static str,
        bos: &'static str,
        eos: &'static str,
        hi: &'static str,
    }

    /// Chat templates as the models ship them (SmolLM2's from its GGUF, the others from their
    /// `tokenizer_config.json`).
    const REAL_TEMPLATES: [RealTemplate; 4] = [
        RealTemplate {
            model: "SmolLM2-135M-Instruct",
            source: SMOLLM2,
            bos: "<|im_start|>",
            eos: "<|im_end|>",
            hi: "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        },
        RealTemplate {
            model: "Meta-Llama-3-8B-Instruct",
            source: LLAMA3,
            bos: "<|begin_of_text|>",
            eos: "<|eot_id|>",
            hi: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        },
        RealTemplate {
            model: "Mistral-7B-Instruct-v0.2",
            source: MISTRAL,
            bos: "<s>",
            eos: "</s>",
            hi: "<s>[INST] Hi [/INST]",
        },
        RealTemplate {
            model: "Qwen2-7B-Instruct",
            source: QWEN2,
            bos: "",
            eos: "<|im_end|>",
            hi: "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        },
    ];
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
    const MISTRAL: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
    const QWEN2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// `turns` alternating user and assistant turns of about `bytes` bytes each.
    fn conversation(turns: usize, bytes: usize) -> Vec<ChatMessage> {
        (0..turns)
            .map(|i| ChatMessage {
                role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
                content: format!("turn {i}: ") + &"word ".repeat(bytes / 5),
            })
            .collect()
    }

    /// The fewest steps `template` needs to render `messages`, by bisection over the fuel of
    /// its environment.
    fn steps_needed(template: &ChatTemplate, messages: &[ChatMessage]) -> u64 {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let renders = |steps: u64| {
            let mut env = template.env.clone();
            env.set_fuel(Some(steps));
            let rendered = env.get_template(NAME).unwrap().render(context! {
                messages => &messages,
                add_generation_prompt => true,
                bos_token => template.bos_token.as_str(),
                eos_token => template.eos_token.as_str(),
            });
            match rendered {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::OutOfFuel => false,
                Err(e) => panic!("{e}"),
            }
        };
        let (mut low, mut high) = (1u64, 1u64 << 40);
        while low < high {
            let mid = low + (high - low) / 2;
            if renders(mid) {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        low
    }

    #[test]
    fn real_templates_render_as_their_models_expect() {
        for real in REAL_TEMPLATES {
            let t = ChatTemplate::new(real.source, real.bos, real.eos).unwrap();
            assert_eq!(t.render_user_turn("Hi").unwrap(), real.hi, "{}", real.model);
        }
    }

    #[test]
    fn real_templates_need_a_small_share_of_their_steps() {
        // A long conversation, and one user turn as large as the largest document judgeq
        // reads (16 MiB): each needs a tenth of its steps at most.
        let long_turn = vec![ChatMessage::user("word ".repeat((16 << 20) / 5))];
        for real in REAL_TEMPLATES {
            let t = ChatTemplate::new(real.source, real.bos, real.eos).unwrap();
            for messages in [conversation(64, 1000), conversation(1000, 1000)] {
                let needed = steps_needed(&t, &messages);
                let allowed = render_steps(&messages);
                assert!(
                    needed * 10 <= allowed,
                    "{}: {} turns need {needed} of {allowed} steps",
                    real.model,
                    messages.len()
                );
            }
            let rendered = t.render(&long_turn, true).unwrap();
            assert!(
                rendered.len() > long_turn[0].content.len(),
                "{}",
                real.model
            );
        }
    }

    #[test]
    fn a_template_that_never_ends_is_refused() {
        // Ten billion iterations, and a string of a hundred million copies of the message.
        let endless = "{% for a in range(100000) %}{% for b in range(100000) %}{{ b }}{% endfor %}{% endfor %}";
        let huge = "{{ messages[0]['content'] * 100000000 }}";
        for source in [endless, huge] {
            let t = ChatTemplate::new(source, "", "").unwrap();
            // One user turn `x`: 1,000,000 steps plus one per byte of `user` and `x`.
            let err = t.render_user_turn("x").unwrap_err();
            assert_eq!(
                err.to_string(),
                "chat template: the model's chat template did not finish within 1000005 steps",
                "{source}"
            );
        }
    }

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are helpful.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    #[test]
    fn renders_chatml_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "<|im_start|>", "<|im_end|>").unwrap();
        assert_eq!(
            t.render_user_turn("Hi").unwrap(),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(
            !t.render(&[ChatMessage::user("Hi")], false)
                .unwrap()
                .ends_with("assistant\n")
        );
    }

    #[test]
    fn python_methods_bos_and_trim_blocks_work() {
        // A Llama-3-style template: bos_token, .strip(), block tags on their own lines.
        let src = "{{ bos_token }}{% for m in messages %}\n    {% if m['role'] == 'user' %}\n{{ '<|start|>' + m['role'] + '\\n' + m['content'].strip() + eos_token }}\n    {% endif %}\n{% endfor %}\n{% if add_generation_prompt %}<|start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(src, "<s>", "</e>").unwrap();
        assert_eq!(
            t.render_user_turn("  spaced  ").unwrap(),
            "<s><|start|>user\nspaced</e>\n<|start|>assistant\n"
        );
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_typed() {
        let t = ChatTemplate::new(
            "{{ raise_exception('Only user and assistant roles') }}",
            "",
            "",
        )
        .unwrap();
        let err = t.render_user_turn("x").unwrap_err();
        assert!(
            matches!(&err, ModelError::ChatTemplate(m) if m.contains("Only user and assistant roles")),
            "{err}"
        );
        assert!(matches!(
            ChatTemplate::new("{% for %}", "", ""),
            Err(ModelError::ChatTemplate(_))
        ));
    }
}

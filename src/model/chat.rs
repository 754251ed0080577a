//! The model's own chat template (Jinja, from GGUF `tokenizer.chat_template` or the Hugging
//! Face `tokenizer_config.json` / `chat_template.jinja`), rendered with minijinja the way
//! `transformers`' `apply_chat_template` renders it: `trim_blocks` and `lstrip_blocks` on,
//! Python string methods (`.strip()`, `.split()`...), `raise_exception`, `bos_token`,
//! `eos_token` and `add_generation_prompt` available.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, Value, context};

use super::error::{ModelError, Result};

const NAME: &str = "chat_template";

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
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let template = self.env.get_template(NAME).map_err(template_error)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(template_error)
    }

    /// One user turn followed by the assistant's header: the prompt the model answers.
    pub fn render_user_turn(&self, content: &str) -> Result<String> {
        self.render(&[ChatMessage::user(content)], true)
    }
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

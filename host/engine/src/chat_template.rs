//! Chat templates: the Jinja template from `tokenizer_config.json`, rendered
//! with minijinja as Hugging Face renders it (`messages`, `bos_token`,
//! `eos_token`, `add_generation_prompt`, `raise_exception`).

use crate::EngineError;
use lem_core::ChatMessage;
use minijinja::{Environment, ErrorKind, context};

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// Compiles `source`.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self, EngineError> {
        let mut env = Environment::new();
        // As transformers renders chat templates.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| EngineError::BadTemplate(e.to_string()))?;
        env.set_syntax(syntax);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| {
                EngineError::BadTemplate(format!("the chat template does not compile: {e:#}"))
            })?;
        Ok(ChatTemplate {
            env,
            bos: bos.into(),
            eos: eos.into(),
        })
    }

    /// Renders a conversation; with `add_generation_prompt` the text ends
    /// where the model's answer begins.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| EngineError::BadTemplate(e.to_string()))?;
        template
            .render(context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                bos_token => self.bos.as_str(),
                eos_token => self.eos.as_str(),
                add_generation_prompt => add_generation_prompt,
            })
            .map_err(|e| EngineError::BadTemplate(format!("cannot render the conversation: {e:#}")))
    }
}

/// The prompt for a base (pre-trained) model without a chat template, as the
/// upstream harness builds it: system text, blank line, the user turns,
/// blank line, `Answer:`.
pub fn base_prompt(messages: &[ChatMessage]) -> String {
    let mut parts: Vec<&str> = messages
        .iter()
        .filter(|m| m.role != "assistant")
        .map(|m| m.content.trim())
        .collect();
    parts.retain(|p| !p.is_empty());
    format!("{}\n\nAnswer:", parts.join("\n\n"))
}

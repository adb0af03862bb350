//! The OpenAI request and response bodies, as far as lem serves them.

use lem_core::ChatMessage;
use lem_models::{ChatRequest, Completion};
use serde::Deserialize;
use serde_json::{Value, json};

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    /// `{"type": "json_schema", "json_schema": {"schema": ...}}`,
    /// `{"type": "json_object"}` or `{"type": "text"}`.
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Return each token's log-probability.
    #[serde(default)]
    pub logprobs: bool,
    /// ... and this many alternatives (0 to 20).
    #[serde(default)]
    pub top_logprobs: Option<u8>,
    /// lem's extension: each integer field's value distribution, returned as
    /// `choices[0].value_distributions` (needs a `json_schema` format).
    #[serde(default)]
    pub value_distributions: bool,
}

/// OpenAI's `response_format`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON following a schema.
    JsonSchema {
        /// `{"name": ..., "schema": {...}, "strict": ...}`.
        json_schema: JsonSchemaFormat,
    },
}

/// The `json_schema` member of a `response_format`.
#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    /// The schema.
    #[serde(default)]
    pub schema: Option<Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionBody {
    pub prompt: String,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub top_p: Option<f32>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub stream: bool,
}

/// OpenAI's defaults: temperature 1 and, here, 256 new tokens.
const DEFAULT_MAX_TOKENS: u32 = 256;

impl ChatBody {
    pub fn into_request(self) -> Result<ChatRequest, String> {
        if self.top_logprobs.is_some_and(|k| k > 20) {
            return Err("top_logprobs must be between 0 and 20".into());
        }
        let response_format = match self.response_format {
            None | Some(ResponseFormat::Text) => None,
            Some(ResponseFormat::JsonObject) => Some(json!({"type": "object"})),
            Some(ResponseFormat::JsonSchema { json_schema }) => match json_schema.schema {
                Some(schema) if schema.is_object() => Some(schema),
                _ => {
                    return Err(
                        "response_format.json_schema.schema must be a JSON schema object".into(),
                    );
                }
            },
        };
        if self.value_distributions && response_format.is_none() {
            return Err("value_distributions needs a response_format of type json_schema".into());
        }
        Ok(ChatRequest {
            max_tokens: self
                .max_completion_tokens
                .or(self.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p,
            seed: self.seed,
            messages: self.messages,
            response_format,
            value_distributions: self.value_distributions,
            top_logprobs: self.logprobs.then(|| self.top_logprobs.unwrap_or(0)),
        })
    }
}

impl CompletionBody {
    pub fn into_request(self) -> (String, ChatRequest) {
        let request = ChatRequest {
            messages: Vec::new(),
            max_tokens: self.max_tokens.unwrap_or(16),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p,
            seed: self.seed,
            ..ChatRequest::default()
        };
        (self.prompt, request)
    }
}

fn usage(done: &Completion) -> Value {
    json!({
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "total_tokens": done.usage.prompt_tokens + done.usage.completion_tokens,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn chat_response(id: &str, model: &str, done: &Completion) -> Value {
    let mut choice = json!({
        "index": 0,
        "message": {"role": "assistant", "content": done.text},
        "finish_reason": done.finish_reason,
    });
    if !done.logprobs.is_empty() {
        let content: Vec<Value> = done
            .logprobs
            .iter()
            .map(|t| {
                let top: Vec<Value> = t
                    .top
                    .iter()
                    .map(|(token, logprob)| json!({"token": token, "logprob": logprob}))
                    .collect();
                json!({"token": t.token, "logprob": t.logprob, "top_logprobs": top})
            })
            .collect();
        choice["logprobs"] = json!({ "content": content });
    }
    if !done.distributions.is_empty() {
        choice["value_distributions"] = json!(done.distributions);
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [choice],
        "usage": usage(done),
    })
}

pub fn completion_response(id: &str, model: &str, done: &Completion) -> Value {
    json!({
        "id": id,
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "text": done.text, "finish_reason": done.finish_reason}],
        "usage": usage(done),
    })
}

/// One streamed chunk: new text, or the finish reason.
pub fn chunk(id: &str, model: &str, chat: bool, text: Option<&str>, finish: Option<&str>) -> Value {
    let choice = if chat {
        let delta = match text {
            Some(t) => json!({"role": "assistant", "content": t}),
            None => json!({}),
        };
        json!({"index": 0, "delta": delta, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish})
    };
    json!({
        "id": id,
        "object": if chat { "chat.completion.chunk" } else { "text_completion" },
        "created": now(),
        "model": model,
        "choices": [choice],
    })
}

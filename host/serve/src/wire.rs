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
    pub fn into_request(self) -> ChatRequest {
        ChatRequest {
            max_tokens: self
                .max_completion_tokens
                .or(self.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p,
            seed: self.seed,
            messages: self.messages,
            ..ChatRequest::default()
        }
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
    json!({
        "id": id,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": done.text},
            "finish_reason": done.finish_reason,
        }],
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

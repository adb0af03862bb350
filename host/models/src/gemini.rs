//! The Gemini API (`models/{model}:generateContent`).

use crate::{Backend, BackendError, BoxFuture, ChatRequest, Completion, Usage};
use serde_json::{Value, json};
use std::time::Duration;

/// Where the Gemini API lives unless `GEMINI_BASE_URL` says otherwise.
pub const GEMINI_DEFAULT_BASE: &str = "https://generativelanguage.googleapis.com/v1beta";

/// A Gemini model.
pub struct GeminiBackend {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: String,
}

impl GeminiBackend {
    /// A backend for `model`, keyed by `api_key`, at `base_url` (normally
    /// [`GEMINI_DEFAULT_BASE`]).
    pub fn new(base_url: &str, model: &str, api_key: String) -> Result<Self, BackendError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BackendError::Config(format!("HTTP client: {e}")))?;
        Ok(GeminiBackend {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
        })
    }

    /// A backend keyed by `GEMINI_API_KEY`, at `GEMINI_BASE_URL` if set.
    pub fn from_env(model: &str) -> Result<Self, BackendError> {
        let key = std::env::var("GEMINI_API_KEY").map_err(|_| {
            BackendError::Config(format!(
                "gemini:{model} needs the API key in the environment variable GEMINI_API_KEY"
            ))
        })?;
        let base = std::env::var("GEMINI_BASE_URL").unwrap_or_else(|_| GEMINI_DEFAULT_BASE.into());
        GeminiBackend::new(&base, model, key)
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<Completion, BackendError> {
        let mut done = self.ask(request).await?;
        // Gemini holds the answer to `responseSchema`; it gives no
        // log-probabilities here, so no value distributions.
        done.constrained = request.response_format.is_some();
        Ok(done)
    }

    async fn ask(&self, request: &ChatRequest) -> Result<Completion, BackendError> {
        let response = self
            .http
            .post(format!(
                "{}/models/{}:generateContent",
                self.base_url, self.model
            ))
            .header("x-goog-api-key", &self.api_key)
            .json(&body(request))
            .send()
            .await
            .map_err(BackendError::from_reqwest)?;
        let body = crate::backend_http::read_ok(response).await?;
        parse(&body)
    }
}

/// The request body: system turns become `systemInstruction`, the assistant
/// is the `model` role.
fn body(request: &ChatRequest) -> Value {
    let system: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role == "system")
        .map(|m| json!({"text": m.content}))
        .collect();
    let contents: Vec<Value> = request
        .messages
        .iter()
        .filter(|m| m.role != "system")
        .map(|m| {
            let role = if m.role == "assistant" {
                "model"
            } else {
                "user"
            };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
    let mut config = json!({
        "maxOutputTokens": request.max_tokens,
        "temperature": request.temperature,
    });
    if let Some(seed) = request.seed {
        config["seed"] = json!(seed);
    }
    if let Some(top_p) = request.top_p {
        config["topP"] = json!(top_p);
    }
    if let Some(schema) = &request.response_format {
        config["responseMimeType"] = json!("application/json");
        config["responseSchema"] = openapi_schema(schema);
    }
    let mut body = json!({"contents": contents, "generationConfig": config});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    body
}

/// A JSON schema as Gemini's `responseSchema` (an OpenAPI 3 subset) takes
/// it: the keywords it does not know (`additionalProperties`, `$schema`,
/// `x-guidance`, ...) left out, everything else kept, recursively.
fn openapi_schema(schema: &Value) -> Value {
    const KNOWN: [&str; 15] = [
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "propertyOrdering",
        "items",
        "minimum",
        "maximum",
        "anyOf",
        "title",
    ];
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| KNOWN.contains(&k.as_str()))
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "properties" => Value::Object(
                            v.as_object()
                                .map(|props| {
                                    props
                                        .iter()
                                        .map(|(name, p)| (name.clone(), openapi_schema(p)))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        "items" => openapi_schema(v),
                        "anyOf" => Value::Array(
                            v.as_array()
                                .map(|a| a.iter().map(openapi_schema).collect())
                                .unwrap_or_default(),
                        ),
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn parse(body: &[u8]) -> Result<Completion, BackendError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        BackendError::BadResponse(format!(
            "not JSON ({e}): {}",
            crate::backend_http::snippet(body)
        ))
    })?;
    let candidate = value.pointer("/candidates/0").ok_or_else(|| {
        let why = value
            .pointer("/promptFeedback/blockReason")
            .map_or_else(|| value.to_string(), |r| format!("prompt blocked: {r}"));
        BackendError::BadResponse(format!("no candidates: {why}"))
    })?;
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .ok_or_else(|| BackendError::BadResponse(format!("no content parts in {candidate}")))?;
    let text: String = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let finish = match candidate.get("finishReason").and_then(Value::as_str) {
        Some("MAX_TOKENS") => "length",
        Some("STOP") | None => "stop",
        Some(_) => "content_filter",
    };
    let count = |field: &str| value.pointer(field).and_then(Value::as_u64).unwrap_or(0);
    Ok(Completion {
        text,
        finish_reason: finish.to_string(),
        usage: Usage {
            prompt_tokens: count("/usageMetadata/promptTokenCount"),
            completion_tokens: count("/usageMetadata/candidatesTokenCount"),
        },
        ..Completion::default()
    })
}

impl Backend for GeminiBackend {
    fn identity(&self) -> String {
        format!("gemini:{}", self.model)
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, BackendError>> {
        Box::pin(self.attempt(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lem_core::ChatMessage;

    #[test]
    fn a_json_schema_becomes_a_response_schema_gemini_accepts() {
        let request = ChatRequest {
            response_format: Some(serde_json::json!({
                "type": "object",
                "properties": {"safety": {"type": "integer", "minimum": 1, "maximum": 10}},
                "required": ["safety"],
                "additionalProperties": false,
                "x-guidance": {"whitespace_flexible": false},
            })),
            ..ChatRequest::default()
        };
        let config = &body(&request)["generationConfig"];
        assert_eq!(config["responseMimeType"], "application/json");
        let schema = &config["responseSchema"];
        assert_eq!(schema["properties"]["safety"]["maximum"], 10);
        assert_eq!(schema["required"][0], "safety");
        assert!(schema.get("additionalProperties").is_none());
        assert!(schema.get("x-guidance").is_none());
    }

    #[test]
    fn system_turns_become_the_system_instruction() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "hi"),
                ChatMessage::new("assistant", "hello"),
                ChatMessage::new("user", "again"),
            ],
            max_tokens: 9,
            temperature: 0.0,
            top_p: None,
            seed: Some(7),
            ..ChatRequest::default()
        };
        let b = body(&request);
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(b["contents"].as_array().unwrap().len(), 3);
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["generationConfig"]["seed"], 7);
    }

    #[test]
    fn reads_text_finish_and_usage() {
        let done = parse(
            br#"{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]},"finishReason":"MAX_TOKENS"}],
                "usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2}}"#,
        )
        .unwrap();
        assert_eq!(done.text, "ab");
        assert_eq!(done.finish_reason, "length");
        assert_eq!(done.usage.prompt_tokens, 4);
        let blocked = parse(br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).unwrap_err();
        assert!(blocked.to_string().contains("SAFETY"));
    }
}

//! OpenAI-compatible chat completions (vLLM, llama.cpp server, TGI,
//! LM Studio, OpenAI, and `lem serve`).

use crate::{Backend, BackendError, BoxFuture, ChatRequest, Completion, TokenLogprob, Usage};
use serde_json::{Value, json};
use std::time::Duration;

/// A server speaking `POST {base_url}/chat/completions`.
pub struct OpenAiBackend {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
}

impl OpenAiBackend {
    /// A backend for `model` at `base_url` (up to `/v1`). The key, if any, is
    /// sent as a bearer token; local servers usually need none.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Result<Self, BackendError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| BackendError::Config(format!("HTTP client: {e}")))?;
        Ok(OpenAiBackend {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
        })
    }

    fn body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        });
        if let Some(seed) = request.seed {
            body["seed"] = json!(seed);
        }
        if let Some(top_p) = request.top_p {
            body["top_p"] = json!(top_p);
        }
        if let Some(schema) = &request.response_format {
            // OpenAI's structured outputs; vLLM, llama.cpp's server and
            // `lem serve` honour it too.
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema},
            });
        }
        if let Some(k) = logprobs_wanted(request) {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(k);
        }
        body
    }

    async fn attempt(&self, request: &ChatRequest) -> Result<Completion, BackendError> {
        let mut call = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .json(&self.body(request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(BackendError::from_reqwest)?;
        let body = crate::backend_http::read_ok(response).await?;
        let mut done = parse_completion(&body)?;
        if let Some(schema) = &request.response_format {
            // Asked of the server; one that ignores `response_format` is
            // not detected here (the scorer still parses what came back).
            done.constrained = true;
            if request.value_distributions {
                done.distributions = crate::distributions_from_logprobs(schema, &done.logprobs);
            }
        }
        if request.top_logprobs.is_none() {
            done.logprobs.clear();
        }
        Ok(done)
    }
}

/// How many alternatives per token to ask for: what the request wants, and
/// the API's maximum (20) when value distributions are to be read off them.
fn logprobs_wanted(request: &ChatRequest) -> Option<u8> {
    let for_distributions =
        (request.value_distributions && request.response_format.is_some()).then_some(20);
    match (request.top_logprobs, for_distributions) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Reads a chat completion body.
fn parse_completion(body: &[u8]) -> Result<Completion, BackendError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        BackendError::BadResponse(format!(
            "not JSON ({e}): {}",
            crate::backend_http::snippet(body)
        ))
    })?;
    let choice = value
        .pointer("/choices/0")
        .ok_or_else(|| BackendError::BadResponse(format!("no choices in {value}")))?;
    let text = choice
        .pointer("/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| BackendError::BadResponse(format!("no message content in {choice}")))?;
    let count = |field: &str| value.pointer(field).and_then(Value::as_u64).unwrap_or(0);
    let logprobs = choice
        .pointer("/logprobs/content")
        .and_then(Value::as_array)
        .map(|tokens| tokens.iter().filter_map(token_logprob).collect())
        .unwrap_or_default();
    Ok(Completion {
        logprobs,
        text: text.to_string(),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("stop")
            .to_string(),
        usage: Usage {
            prompt_tokens: count("/usage/prompt_tokens"),
            completion_tokens: count("/usage/completion_tokens"),
        },
        ..Completion::default()
    })
}

/// One entry of `choices[0].logprobs.content`.
fn token_logprob(entry: &Value) -> Option<TokenLogprob> {
    let pair = |v: &Value| {
        Some((
            v.get("token")?.as_str()?.to_string(),
            v.get("logprob")?.as_f64()?,
        ))
    };
    let (token, logprob) = pair(entry)?;
    let top = entry
        .get("top_logprobs")
        .and_then(Value::as_array)
        .map(|alts| alts.iter().filter_map(pair).collect())
        .unwrap_or_default();
    Some(TokenLogprob {
        token,
        logprob,
        top,
    })
}

impl Backend for OpenAiBackend {
    fn identity(&self) -> String {
        format!("openai:{}#{}", self.base_url, self.model)
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

    #[test]
    fn reads_a_completion_and_its_usage() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],
            "usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        let done = parse_completion(body).unwrap();
        assert_eq!(done.text, "hi");
        assert_eq!(done.finish_reason, "length");
        assert_eq!(done.usage.completion_tokens, 2);
    }

    #[test]
    fn reads_token_logprobs_and_asks_for_the_schema() {
        let body = br#"{"choices":[{"message":{"content":"{\"s\": 7}"},"finish_reason":"stop",
            "logprobs":{"content":[{"token":"{\"s\": ","logprob":-0.1,"top_logprobs":[]},
              {"token":"7","logprob":-0.5,"top_logprobs":[{"token":"7","logprob":-0.5},{"token":"8","logprob":-1.2}]},
              {"token":"}","logprob":0.0,"top_logprobs":[]}]}}]}"#;
        let done = parse_completion(body).unwrap();
        assert_eq!(done.logprobs.len(), 3);
        assert_eq!(done.logprobs[1].top[1], ("8".to_string(), -1.2));

        let backend = OpenAiBackend::new("http://x/v1", "m", None).unwrap();
        let schema = serde_json::json!({"type": "object"});
        let request = ChatRequest {
            response_format: Some(schema.clone()),
            value_distributions: true,
            ..ChatRequest::default()
        };
        let body = backend.body(&request);
        assert_eq!(body["response_format"]["json_schema"]["schema"], schema);
        assert_eq!(body["top_logprobs"], 20);
        assert!(
            backend
                .body(&ChatRequest::default())
                .get("logprobs")
                .is_none()
        );
    }

    #[test]
    fn garbage_and_truncated_bodies_are_bad_responses() {
        for body in [
            &b"<html>oops"[..],
            br#"{"choices":[{"message":{"content":"hi"#,
            br#"{"choices":[]}"#,
        ] {
            let err = parse_completion(body).unwrap_err();
            assert!(matches!(err, BackendError::BadResponse(_)), "{err}");
            assert!(!err.is_retryable());
        }
    }
}

//! The remote backends against loopback servers: what goes over the wire
//! (paths, keys, bodies) and what comes back.

use axum::Router;
use axum::extract::{Json, Path};
use axum::http::HeaderMap;
use axum::routing::post;
use lem_core::ChatMessage;
use lem_models::{Backend, ChatRequest, GeminiBackend, OpenAiBackend};
use serde_json::{Value, json};

async fn start(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::new("system", "Rate it."),
            ChatMessage::new("user", "Paris is in France."),
        ],
        max_tokens: 32,
        temperature: 0.0,
        top_p: None,
        seed: Some(42),
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn openai_sends_the_model_key_and_settings() {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|headers: HeaderMap, Json(body): Json<Value>| async move {
            let auth = headers["authorization"].to_str().unwrap().to_string();
            Json(json!({
                "choices": [{"message": {"role": "assistant",
                    "content": format!("{auth}|{}|{}|{}", body["model"], body["seed"], body["messages"][1]["content"])},
                    "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3},
            }))
        }),
    );
    let base = start(app).await;
    let backend =
        OpenAiBackend::new(&format!("{base}/v1/"), "judge-m", Some("k-123".into())).unwrap();
    assert_eq!(backend.identity(), format!("openai:{base}/v1#judge-m"));
    let done = backend.complete(&request()).await.unwrap();
    assert_eq!(
        done.text,
        "Bearer k-123|\"judge-m\"|42|\"Paris is in France.\""
    );
    assert_eq!(done.usage.prompt_tokens, 12);
}

#[tokio::test]
async fn gemini_uses_generate_content_with_the_key_header() {
    let app = Router::new().route(
        "/v1beta/models/{call}",
        post(|Path(call): Path<String>, headers: HeaderMap, Json(body): Json<Value>| async move {
            assert_eq!(call, "gemini-test:generateContent");
            assert_eq!(headers["x-goog-api-key"], "g-key");
            assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Rate it.");
            assert_eq!(body["contents"][0]["role"], "user");
            assert_eq!(body["generationConfig"]["maxOutputTokens"], 32);
            Json(json!({
                "candidates": [{"content": {"parts": [{"text": "{\"score\": 7}"}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4},
            }))
        }),
    );
    let base = start(app).await;
    let backend =
        GeminiBackend::new(&format!("{base}/v1beta"), "gemini-test", "g-key".into()).unwrap();
    assert_eq!(backend.identity(), "gemini:gemini-test");
    let done = backend.complete(&request()).await.unwrap();
    assert_eq!(done.text, "{\"score\": 7}");
    assert_eq!(done.finish_reason, "stop");
    assert_eq!(done.usage.completion_tokens, 4);
}

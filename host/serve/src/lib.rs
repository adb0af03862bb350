//! An OpenAI-compatible server over the local engine: `lem serve`.
//!
//! Why it is shaped so: the server is a thin translation layer. Every request
//! becomes a [`LocalBackend`] job, and the backend's one engine thread
//! batches whatever is in flight, so concurrent HTTP clients share decode
//! steps instead of queueing behind each other. The wire types mirror the
//! subset of the OpenAI API that judges and harnesses use:
//! `/v1/chat/completions` and `/v1/completions` (both with `stream: true` as
//! server-sent events) and `/v1/models`. Chat requests may carry a
//! `response_format` (`json_schema` or `json_object`: decoding is held to
//! it), `logprobs`/`top_logprobs`, and lem's `value_distributions`
//! (each integer field's distribution, in `choices[0].value_distributions`).
#![deny(missing_docs)]

mod wire;

use axum::Router;
use axum::extract::{Json, State, rejection::JsonRejection};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use lem_models::{BackendError, LocalBackend, StreamEvent};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::UnboundedReceiver;
use wire::{ChatBody, CompletionBody};

/// What the handlers share.
pub struct Server {
    backend: LocalBackend,
    model: String,
    counter: AtomicU64,
}

impl Server {
    /// Serves `backend` under the model name `model`.
    pub fn new(backend: LocalBackend, model: String) -> Arc<Self> {
        Arc::new(Server {
            backend,
            model,
            counter: AtomicU64::new(0),
        })
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }
}

/// The routes.
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .with_state(server)
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, server: Arc<Server>) -> std::io::Result<()> {
    axum::serve(listener, router(server)).await
}

async fn models(State(server): State<Arc<Server>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{"id": server.model, "object": "model", "created": 0, "owned_by": "lem"}],
    }))
}

async fn chat(
    State(server): State<Arc<Server>>,
    body: Result<Json<ChatBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return invalid(&rejection.body_text()),
    };
    if body.messages.is_empty() {
        return invalid("`messages` is empty");
    }
    let stream = body.stream;
    let request = match body.into_request() {
        Ok(request) => request,
        Err(message) => return invalid(&message),
    };
    let id = server.next_id("chatcmpl");
    let events = server.backend.submit(request);
    if stream {
        return sse(events, id, server.model.clone(), true);
    }
    match finish(events).await {
        Ok(done) => Json(wire::chat_response(&id, &server.model, &done)).into_response(),
        Err(error) => failed(&error),
    }
}

async fn completions(
    State(server): State<Arc<Server>>,
    body: Result<Json<CompletionBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return invalid(&rejection.body_text()),
    };
    let stream = body.stream;
    let (prompt, request) = body.into_request();
    let id = server.next_id("cmpl");
    let events = server.backend.submit_text(prompt, request);
    if stream {
        return sse(events, id, server.model.clone(), false);
    }
    match finish(events).await {
        Ok(done) => Json(wire::completion_response(&id, &server.model, &done)).into_response(),
        Err(error) => failed(&error),
    }
}

/// Waits for the end of a job.
async fn finish(
    mut events: UnboundedReceiver<StreamEvent>,
) -> Result<lem_models::Completion, BackendError> {
    while let Some(event) = events.recv().await {
        match event {
            StreamEvent::Text(_) => {}
            StreamEvent::Done(done) => return Ok(done),
            StreamEvent::Failed(error) => return Err(error),
        }
    }
    Err(BackendError::Engine("the engine stopped".into()))
}

/// Streams a job as server-sent events: one chunk per piece of text, a last
/// chunk with the finish reason, then `[DONE]`, as OpenAI does.
fn sse(events: UnboundedReceiver<StreamEvent>, id: String, model: String, chat: bool) -> Response {
    let chunks = stream::unfold(Some(events), move |events| {
        let (id, model) = (id.clone(), model.clone());
        async move {
            let mut events = events?;
            let event = match events.recv().await {
                Some(StreamEvent::Text(piece)) => {
                    let chunk = wire::chunk(&id, &model, chat, Some(&piece), None);
                    return Some((Event::default().data(chunk.to_string()), Some(events)));
                }
                Some(StreamEvent::Done(done)) => {
                    wire::chunk(&id, &model, chat, None, Some(&done.finish_reason))
                }
                Some(StreamEvent::Failed(error)) => {
                    json!({"error": {"message": error.to_string(), "type": "server_error"}})
                }
                None => return Some((Event::default().data("[DONE]"), None)),
            };
            // After the last chunk, close the job's channel and send [DONE].
            drop(events);
            Some((Event::default().data(event.to_string()), Some(closed())))
        }
    });
    Sse::new(to_results(chunks)).into_response()
}

/// A receiver that is already closed: the stream's next step sends `[DONE]`.
fn closed() -> UnboundedReceiver<StreamEvent> {
    tokio::sync::mpsc::unbounded_channel().1
}

fn to_results(
    s: impl Stream<Item = Event> + Send + 'static,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures_util::StreamExt::map(s, Ok)
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn failed(error: &BackendError) -> Response {
    let status = match error {
        BackendError::Engine(m) if m.contains("context") || m.contains("prompt") => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(status, &error.to_string())
}

fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    error(status, kind, message)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind}})),
    )
        .into_response()
}

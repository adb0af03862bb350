//! Model backends: where a prompt goes to be answered, for candidates and
//! judges alike.
//!
//! Why it is shaped so: a model is named by a spec string
//! ([`ModelSpec`]: `local:PATH`, `openai:BASE_URL#MODEL`, `gemini:MODEL`) so a
//! config file or a flag can swap it in one line. Each kind of backend is one
//! file implementing the narrow [`Backend`] trait (one request in, one
//! completion or one typed [`BackendError`] out). Everything that is the same
//! for every backend — the concurrency limit, per-attempt timeouts, retries
//! with backoff and jitter, usage totals — lives once in [`Client`], and the
//! on-disk answer cache in [`AnswerCache`]. The plugin host never sees this
//! crate: the CLI adapts a [`Client`] to the plugin host's judge trait.
#![deny(missing_docs)]

mod backend;
mod backend_http;
mod cache;
mod error;
mod gemini;
mod local;
mod logprobs;
mod openai;
mod request;
mod retry;
mod spec;

pub use backend::{Backend, BoxFuture, Client};
pub use cache::AnswerCache;
pub use error::BackendError;
pub use gemini::GeminiBackend;
pub use local::{LocalBackend, StreamEvent};
pub use logprobs::distributions_from_logprobs;
pub use openai::OpenAiBackend;
pub use request::{ChatRequest, Completion, TokenLogprob, Usage};
pub use retry::RetryPolicy;
pub use spec::{ModelSpec, SpecError};

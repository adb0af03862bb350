//! The lem model engine, on candle.
//!
//! Why it is shaped so: one file per model family under [`models`] (Gemma 3
//! is lem's own, with batched decode; other families come from
//! candle-transformers), with tensor names that follow Hugging Face so
//! adapters map by name; the tokenizer and its chat template ([`tokenizer`],
//! [`chat_template`]), sampling ([`sampling`]) and continuous batching
//! ([`generate`]) are separate modules, and [`Engine`] ties them together
//! for callers that just want text for prompts. LoRA adapters ([`adapter`])
//! map onto the projections by those names.
#![deny(missing_docs)]

pub mod adapter;
pub mod chat_template;
mod engine;
mod error;
pub mod generate;
mod gguf_tokenizer;
pub mod models;
pub mod sampling;
pub mod testing;
pub mod tokenizer;

pub use engine::{DeviceKind, Engine, LoadOptions};
pub use error::EngineError;
pub use generate::{Completion, Event, FinishReason, Request, RequestSource};
pub use sampling::SamplingParams;

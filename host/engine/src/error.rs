//! Engine errors: what went wrong and, where it helps, what to do.

use std::path::PathBuf;

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file could not be read.
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, std::io::Error),
    /// A model or tokenizer file is not what it should be.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model's architecture or format is not supported.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The model's tensors do not fit together.
    #[error("inconsistent model: {0}")]
    BadModel(String),
    /// The chat template failed.
    #[error("chat template: {0}")]
    BadTemplate(String),
    /// The input cannot be run.
    #[error("{0}")]
    BadInput(String),
    /// Prompt and output do not fit the context.
    #[error(
        "needs {needed} tokens of context but only {capacity} are available; shorten the prompt, lower max tokens or raise --context"
    )]
    ContextFull {
        /// Tokens needed.
        needed: usize,
        /// Tokens available.
        capacity: usize,
    },
    /// A device could not be used.
    #[error("device: {0}")]
    Device(String),
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(String),
}

impl EngineError {
    pub(crate) fn candle(e: candle_core::Error) -> Self {
        EngineError::Candle(e.to_string())
    }
}

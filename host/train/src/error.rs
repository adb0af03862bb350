//! Trainer errors: what went wrong and, where it helps, what to do.

use std::path::PathBuf;

/// Why training, fusing or writing a dataset failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A data line is not a training example.
    #[error("{}:{line}: {reason}", path.display())]
    BadExample {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The data as a whole cannot be trained on.
    #[error("{}: {reason}", path.display())]
    BadData {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A data file is not UTF-8 text, or could not be read.
    #[error(transparent)]
    Text(#[from] lem_core::TextError),
    /// A setting is out of range or inconsistent.
    #[error("{0}")]
    BadConfig(String),
    /// A resumable checkpoint cannot be used (another run's, or damaged).
    #[error("{}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The engine refused (model, tokenizer, adapter).
    #[error(transparent)]
    Engine(#[from] lem_engine::EngineError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}

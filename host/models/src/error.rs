//! Why a backend gave no answer.

use std::time::Duration;

/// A failed request. [`BackendError::is_retryable`] says whether another
/// attempt may succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// No answer within the per-attempt timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an error status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The connection failed or broke off.
    #[error("connection failed: {0}")]
    Transport(String),
    /// The server answered 200 with something that is not a completion.
    #[error("unusable response: {0}")]
    BadResponse(String),
    /// The local engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// The backend is not set up (missing key, bad spec, ...).
    #[error("{0}")]
    Config(String),
    /// Every attempt failed; the last error is kept.
    #[error("gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<BackendError>,
    },
}

impl BackendError {
    /// Whether a later attempt may succeed: timeouts, broken connections,
    /// 408, 429 and 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Timeout(_) | BackendError::Transport(_) => true,
            BackendError::Http { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status)
            }
            _ => false,
        }
    }

    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        // The chain says what actually failed (refused, reset, DNS, ...).
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        if error.is_decode() {
            BackendError::BadResponse(message)
        } else {
            BackendError::Transport(message)
        }
    }
}

//! The judge a scorer plugin may call, as the plugin host sees it.
//!
//! The host's judge backends (local engine, OpenAI-compatible servers, ...)
//! live elsewhere and implement [`Judge`]; the plugin host only routes
//! requests and records what was asked and answered.

use lem_core::ChatMessage;

/// One request from a plugin.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JudgeRequest {
    /// The conversation to complete.
    pub messages: Vec<ChatMessage>,
    /// Maximum tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature (0 when the plugin does not say).
    pub temperature: f32,
    /// Sampling seed, if the plugin fixes one.
    pub seed: Option<u64>,
}

/// Why the judge gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum JudgeError {
    /// No judge is configured for this run.
    #[error("no judge is configured")]
    NotConfigured,
    /// The backend failed.
    #[error("judge failed: {0}")]
    Failed(String),
    /// Too many judge calls in one item.
    #[error("judge call budget for this item is spent")]
    BudgetExhausted,
    /// The host refused the request (too large, or made from `describe()`).
    #[error("judge request refused: {0}")]
    Refused(String),
}

/// What a judge answered one request: the text the plugin sees, and what
/// the audit trail keeps about how it was made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JudgeAnswer {
    /// The answer.
    pub text: String,
    /// Why generation stopped, in OpenAI's words (`stop`, `length`, ...).
    pub finish_reason: String,
    /// Tokens of the request, as the backend counted them.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
    /// Whether the answer came from a cache of an earlier run.
    pub cached: bool,
    /// The judge's own name for the request (its answer-cache key), which
    /// the audit trail records and the judge can look the call up by.
    pub request_key: String,
}

impl JudgeAnswer {
    /// A fresh answer `text` that stopped by itself, with no usage counted,
    /// named `request_key`.
    pub fn text(text: impl Into<String>, request_key: impl Into<String>) -> Self {
        JudgeAnswer {
            text: text.into(),
            finish_reason: "stop".into(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cached: false,
            request_key: request_key.into(),
        }
    }
}

/// A judge backend.
///
/// It may be called from any thread, for any item, concurrently: everything
/// about one call comes back in its [`JudgeAnswer`], and the plugin host
/// keeps the item's calls in its [`crate::ScoreOutcome`].
pub trait Judge: Send + Sync {
    /// Who judges (e.g. `openai:http://host/v1#model`), recorded with scores.
    fn identity(&self) -> String;
    /// Completes a request.
    fn complete(&self, request: &JudgeRequest) -> Result<JudgeAnswer, JudgeError>;
}

/// The judge of a run that has none: every call fails with
/// [`JudgeError::NotConfigured`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJudge;

impl Judge for NoJudge {
    fn identity(&self) -> String {
        "none".into()
    }
    fn complete(&self, _request: &JudgeRequest) -> Result<JudgeAnswer, JudgeError> {
        Err(JudgeError::NotConfigured)
    }
}

impl JudgeRequest {
    /// SHA-256 naming the request without keeping it: every field, each
    /// framed by its length (see [`lem_core::hash::sha256_parts`]), hashed
    /// in place, so a refused multi-megabyte request costs one pass of the
    /// hash and no copy.
    pub fn sha256(&self) -> String {
        let max_tokens = self.max_tokens.to_le_bytes();
        let temperature = self.temperature.to_le_bytes();
        let seed = self.seed.map(u64::to_le_bytes);
        let fields: [&[u8]; 3] = [
            &max_tokens,
            &temperature,
            seed.as_ref().map_or(&[][..], |s| &s[..]),
        ];
        lem_core::hash::sha256_parts(
            fields.into_iter().chain(
                self.messages
                    .iter()
                    .flat_map(|m| [m.role.as_bytes(), m.content.as_bytes()]),
            ),
        )
    }
}

/// One judge call made while scoring an item, kept for the audit trail.
///
/// The request itself is not kept: it may be large, and the judge backend
/// that answered it keeps what it needs. A refused request is named by its
/// digest only.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JudgeCall {
    /// SHA-256 of the request as the plugin made it (`max_tokens` clamped).
    pub request_sha256: String,
    /// Whether it reached the judge; `false` when the host refused it.
    pub forwarded: bool,
    /// What came back.
    pub answer: Result<JudgeAnswer, JudgeError>,
}

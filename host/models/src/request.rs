//! What a backend is asked and what it answers.

use lem_core::ChatMessage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One chat completion request.
///
/// The fields after `seed` are left out of its serialised form when unset,
/// so a request without them keeps the answer-cache key it always had.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation to complete.
    pub messages: Vec<ChatMessage>,
    /// Maximum new tokens.
    pub max_tokens: u32,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Nucleus sampling threshold, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sampling seed, if fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A JSON schema the answer must follow: decoding is constrained to it
    /// where the backend can ([`Completion::constrained`] says whether it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    /// Ask, for each integer field of `response_format`, the probability of
    /// each value it allows ([`Completion::distributions`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub value_distributions: bool,
    /// Alternatives per generated token to report with their log-probabilities
    /// (OpenAI's `top_logprobs`); `None`: no log-probabilities at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
}

/// One generated token with its log-probability and the likeliest
/// alternatives at its position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f64,
    /// The likeliest tokens at its position, most likely first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<(String, f64)>,
}

/// Tokens used by one request (as the backend counts them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// A backend's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Why generation stopped, in OpenAI's words (`stop`, `length`, ...).
    pub finish_reason: String,
    /// Tokens used.
    pub usage: Usage,
    /// Whether decoding was constrained to the request's `response_format`
    /// (false when none was asked, or the backend cannot constrain).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub constrained: bool,
    /// Per integer field of the schema, when asked and the backend can
    /// tell: each allowed value's probability (summing to 1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub distributions: BTreeMap<String, BTreeMap<i64, f64>>,
    /// Per generated token, when asked and the backend can tell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprob>,
}

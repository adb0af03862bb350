//! The judge a scorer plugin may call, as the plugin host sees it.
//!
//! The host's judge backends (local engine, OpenAI-compatible servers, ...)
//! live elsewhere and implement [`Judge`]; the plugin host only routes
//! requests and records what was asked and answered.

use lem_core::ChatMessage;
use std::collections::BTreeMap;

/// One request from a plugin.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct JudgeRequest {
    /// The conversation to complete.
    pub messages: Vec<ChatMessage>,
    /// Maximum tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature (0 when the plugin does not say).
    pub temperature: f32,
    /// Sampling seed, if the plugin fixes one.
    pub seed: Option<u64>,
    /// A JSON schema (JSON text, as the plugin wrote it) the answer must
    /// follow; the backend constrains decoding to it where it can. Contract
    /// 0.2.0 and later; 0.1.0 plugins never set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    /// Ask, for each integer field of `response_format`, the probability of
    /// each value it allows ([`JudgeAnswer::distributions`]). Contract 0.2.0
    /// and later.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub distributions: bool,
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
    /// Whether decoding was constrained to the request's `response_format`
    /// (false when none was asked, or the backend cannot constrain). Only
    /// 0.2.0 plugins see it.
    pub constrained: bool,
    /// For a request with `distributions`, when the backend can tell: per
    /// integer field of the schema, each allowed value's probability. Empty
    /// otherwise. Only 0.2.0 plugins see it.
    pub distributions: BTreeMap<String, BTreeMap<i64, f64>>,
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
            constrained: false,
            distributions: BTreeMap::new(),
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
    ///
    /// `response_format` and `distributions` count only when set, so a
    /// request without them (every 0.1.0 request) keeps the digest it
    /// always had. When set, they add two parts after the seed: one byte
    /// `0x80 | flags` and the schema text. The one-byte part is not UTF-8,
    /// so no message role can stand in for it: a request with them never
    /// shares its sequence of parts with one without.
    pub fn sha256(&self) -> String {
        let max_tokens = self.max_tokens.to_le_bytes();
        let temperature = self.temperature.to_le_bytes();
        let seed = self.seed.map(u64::to_le_bytes);
        let fields: [&[u8]; 3] = [
            &max_tokens,
            &temperature,
            seed.as_ref().map_or(&[][..], |s| &s[..]),
        ];
        let flags = [0x80
            | u8::from(self.distributions)
            | (u8::from(self.response_format.is_some()) << 1)];
        let extension: Option<[&[u8]; 2]> = (self.response_format.is_some() || self.distributions)
            .then(|| {
                [
                    &flags[..],
                    self.response_format.as_deref().unwrap_or("").as_bytes(),
                ]
            });
        lem_core::hash::sha256_parts(
            fields
                .into_iter()
                .chain(extension.into_iter().flatten())
                .chain(
                    self.messages
                        .iter()
                        .flat_map(|m| [m.role.as_bytes(), m.content.as_bytes()]),
                ),
        )
    }

    /// Bytes of the request the size limit counts: every message's role and
    /// content, and the schema.
    pub fn size_bytes(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.role.len() + m.content.len())
            .sum::<usize>()
            + self.response_format.as_ref().map_or(0, String::len)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> JudgeRequest {
        JudgeRequest {
            messages: vec![
                ChatMessage::new("system", "grade"),
                ChatMessage::new("user", "the response"),
            ],
            max_tokens: 64,
            temperature: 0.0,
            seed: Some(42),
            ..JudgeRequest::default()
        }
    }

    #[test]
    fn a_request_without_the_new_fields_keeps_its_digest() {
        // The digest as 0.1.0 requests always had it: three fields, then
        // each message's role and content.
        let r = request();
        let (max_tokens, temperature, seed) =
            (64u32.to_le_bytes(), 0f32.to_le_bytes(), 42u64.to_le_bytes());
        let parts: [&[u8]; 7] = [
            &max_tokens,
            &temperature,
            &seed,
            b"system",
            b"grade",
            b"user",
            b"the response",
        ];
        assert_eq!(r.sha256(), lem_core::hash::sha256_parts(parts));
        assert_eq!(r.size_bytes(), 6 + 5 + 4 + 12);
    }

    #[test]
    fn the_schema_and_the_distributions_flag_are_named_when_set() {
        let plain = request();
        let schema = JudgeRequest {
            response_format: Some("{}".into()),
            ..request()
        };
        let flag = JudgeRequest {
            distributions: true,
            ..request()
        };
        let both = JudgeRequest {
            distributions: true,
            ..schema.clone()
        };
        let other_schema = JudgeRequest {
            response_format: Some("{\"type\":\"object\"}".into()),
            ..request()
        };
        let empty_schema = JudgeRequest {
            response_format: Some(String::new()),
            ..request()
        };
        let digests: std::collections::HashSet<String> =
            [&plain, &schema, &flag, &both, &other_schema, &empty_schema]
                .iter()
                .map(|r| r.sha256())
                .collect();
        assert_eq!(digests.len(), 6);
        assert_eq!(schema.size_bytes(), plain.size_bytes() + 2);
        // No message can stand in for the schema: a request with it never
        // digests like one whose next message holds the same text.
        let forged = JudgeRequest {
            messages: [vec![ChatMessage::new("\u{80}", "{}")], request().messages].concat(),
            ..request()
        };
        assert_ne!(forged.sha256(), schema.sha256());
    }
}

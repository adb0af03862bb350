//! The judge that scorer plugins call, wired to a model client and the
//! on-disk answer cache.
//!
//! Answers are cached only once the item they were asked for has scored: an
//! answer the plugin could not parse is not kept, so a rerun asks again for
//! exactly the items that failed, and reads the rest from the cache. Fresh
//! answers wait for that verdict under their request key, which each call's
//! [`JudgeAnswer`] carries back through the plugin host, so calls can come
//! from any thread, for any item, at once.

use lem_core::{JudgeExchange, JudgeTrail};
use lem_models::{AnswerCache, ChatRequest, Client, Completion};
use lem_plugin_host::{Judge, JudgeAnswer, JudgeCall, JudgeError, JudgeRequest};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A model client as the plugins' judge.
pub struct BackendJudge {
    client: Arc<Client>,
    identity: String,
    cache: Option<AnswerCache>,
    handle: tokio::runtime::Handle,
    /// Fresh answers by request key, until their item has scored.
    pending: Mutex<HashMap<String, (ChatRequest, Completion)>>,
    hits: AtomicUsize,
    asked: AtomicUsize,
    max_tokens: Option<u32>,
}

impl BackendJudge {
    /// Judges with `client`; `cache` keeps answers across runs; every
    /// request's `max_tokens` is capped at `max_tokens` if set (small local
    /// judges that ramble cost minutes per item otherwise). Calls block on
    /// `handle`, so they must come from threads outside the runtime.
    pub fn new(
        client: Arc<Client>,
        cache: Option<AnswerCache>,
        handle: tokio::runtime::Handle,
        max_tokens: Option<u32>,
    ) -> Self {
        BackendJudge {
            identity: client.identity(),
            client,
            cache,
            handle,
            pending: Mutex::new(HashMap::new()),
            hits: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
            max_tokens,
        }
    }

    /// The model request for a plugin's judge request. A response format
    /// that is not JSON is refused: the model is never asked.
    fn chat_request(&self, request: &JudgeRequest) -> Result<ChatRequest, JudgeError> {
        let response_format = request
            .response_format
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
            .transpose()
            .map_err(|e| JudgeError::Refused(format!("the response format is not JSON: {e}")))?;
        Ok(ChatRequest {
            messages: request.messages.clone(),
            max_tokens: self
                .max_tokens
                .map_or(request.max_tokens, |cap| request.max_tokens.min(cap)),
            temperature: request.temperature,
            top_p: None,
            seed: request.seed,
            response_format,
            value_distributions: request.distributions,
            ..ChatRequest::default()
        })
    }

    /// Ends an item: its audit trail from the `calls` its scorer made, and
    /// the model's fresh answers to them cached when the item `scored`.
    pub fn finish_item(&self, calls: &[JudgeCall], scored: bool) -> JudgeTrail {
        let trail = JudgeTrail {
            model: self.identity.clone(),
            calls: calls
                .iter()
                .map(|call| match &call.answer {
                    Ok(answer) => JudgeExchange {
                        // The answer-cache key the judge saw.
                        request_sha256: answer.request_key.clone(),
                        answer: Some(answer.text.clone()),
                        error: None,
                        cached: answer.cached,
                        finish_reason: Some(answer.finish_reason.clone()),
                    },
                    // The digest of the request as made.
                    Err(e) => JudgeExchange {
                        request_sha256: call.request_sha256.clone(),
                        answer: None,
                        error: Some(e.to_string()),
                        cached: false,
                        finish_reason: None,
                    },
                })
                .collect(),
        };
        let fresh: Vec<(ChatRequest, Completion)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            calls
                .iter()
                .filter_map(|call| call.answer.as_ref().ok())
                .filter(|answer| !answer.cached)
                .filter_map(|answer| pending.remove(&answer.request_key))
                .collect()
        };
        if scored && let Some(cache) = &self.cache {
            for (request, done) in &fresh {
                if let Err(e) = cache.put(&self.identity, request, done) {
                    tracing::warn!(
                        "{}: cannot cache a judge answer: {e}",
                        cache.dir().display()
                    );
                }
            }
        }
        trail
    }

    /// (answers from the cache, requests sent to the model).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.asked.load(Ordering::Relaxed),
        )
    }
}

impl Judge for BackendJudge {
    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn complete(&self, request: &JudgeRequest) -> Result<JudgeAnswer, JudgeError> {
        let request = self.chat_request(request)?;
        let key = AnswerCache::key(&self.identity, &request);
        let answer = |done: &Completion, cached: bool, key: String| JudgeAnswer {
            text: done.text.clone(),
            finish_reason: done.finish_reason.clone(),
            prompt_tokens: done.usage.prompt_tokens,
            completion_tokens: done.usage.completion_tokens,
            cached,
            request_key: key,
            constrained: done.constrained,
            distributions: done.distributions.clone(),
        };
        if let Some(done) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.identity, &request))
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(answer(&done, true, key));
        }
        self.asked.fetch_add(1, Ordering::Relaxed);
        match self.handle.block_on(self.client.complete(&request)) {
            Ok(done) => {
                let answered = answer(&done, false, key.clone());
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, (request, done));
                Ok(answered)
            }
            Err(e) => Err(JudgeError::Failed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lem_core::ChatMessage;
    use lem_models::{Backend, BackendError, BoxFuture, RetryPolicy};
    use std::collections::BTreeMap;

    /// Records what it was asked and answers with distributions when asked.
    #[derive(Default)]
    struct Recording {
        asked: Mutex<Vec<ChatRequest>>,
    }

    impl Backend for Recording {
        fn identity(&self) -> String {
            "fake:recording".into()
        }
        fn complete<'a>(
            &'a self,
            request: &'a ChatRequest,
        ) -> BoxFuture<'a, Result<Completion, BackendError>> {
            self.asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(request.clone());
            let constrained = request.response_format.is_some();
            let distributions = if request.value_distributions {
                BTreeMap::from([("x".to_string(), BTreeMap::from([(7, 0.5), (9, 0.5)]))])
            } else {
                BTreeMap::new()
            };
            Box::pin(async move {
                Ok(Completion {
                    text: "{\"x\": 9}".into(),
                    finish_reason: "stop".into(),
                    constrained,
                    distributions,
                    ..Completion::default()
                })
            })
        }
    }

    fn judge(backend: Arc<Recording>, rt: &tokio::runtime::Runtime) -> BackendJudge {
        let client = Arc::new(Client::new(backend, 1, RetryPolicy::default()));
        BackendJudge::new(client, None, rt.handle().clone(), None)
    }

    fn request(schema: Option<&str>, distributions: bool) -> JudgeRequest {
        JudgeRequest {
            messages: vec![ChatMessage::new("user", "grade it")],
            max_tokens: 16,
            response_format: schema.map(str::to_string),
            distributions,
            ..JudgeRequest::default()
        }
    }

    #[test]
    fn the_schema_and_the_distributions_flag_reach_the_model_and_come_back() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend = Arc::new(Recording::default());
        let judge = judge(backend.clone(), &rt);
        let schema = r#"{"type": "object", "properties": {"x": {"type": "integer", "minimum": 1, "maximum": 10}}}"#;
        let answer = judge.complete(&request(Some(schema), true)).unwrap();
        assert!(answer.constrained);
        assert_eq!(
            answer.distributions["x"],
            BTreeMap::from([(7, 0.5), (9, 0.5)])
        );
        let asked = backend.asked.lock().unwrap().clone();
        assert_eq!(
            asked[0].response_format,
            Some(serde_json::from_str::<serde_json::Value>(schema).unwrap())
        );
        assert!(asked[0].value_distributions);

        // Without them, the request is what it always was.
        let plain = judge.complete(&request(None, false)).unwrap();
        assert!(!plain.constrained && plain.distributions.is_empty());
        let asked = backend.asked.lock().unwrap().clone();
        assert_eq!(asked[1].response_format, None);
        assert!(!asked[1].value_distributions);
    }

    #[test]
    fn a_schema_that_is_not_json_is_refused_without_asking_the_model() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let backend = Arc::new(Recording::default());
        let judge = judge(backend.clone(), &rt);
        let e = judge
            .complete(&request(Some("{not json"), true))
            .unwrap_err();
        assert!(
            matches!(&e, JudgeError::Refused(m) if m.contains("not JSON")),
            "{e}"
        );
        assert!(backend.asked.lock().unwrap().is_empty());
        assert_eq!(judge.counts(), (0, 0));
    }
}

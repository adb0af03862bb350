//! The judge that scorer plugins call, wired to a model client and the
//! on-disk answer cache.
//!
//! Answers are cached only once the item they were asked for has scored:
//! an answer the plugin could not parse is not kept, so a rerun asks again
//! for exactly the items that failed, and reads the rest from the cache.

use lem_core::{JudgeExchange, JudgeTrail};
use lem_judge::{AnswerCache, ChatRequest, Client, Completion};
use lem_plugin_host::{Judge, JudgeCall, JudgeError, JudgeRequest};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A model client as the plugins' judge.
pub struct BackendJudge {
    client: Arc<Client>,
    identity: String,
    cache: Option<AnswerCache>,
    handle: tokio::runtime::Handle,
    /// Answers of this run not yet in the cache, by cache key.
    fresh: Mutex<HashMap<String, Completion>>,
    hits: AtomicUsize,
    asked: AtomicUsize,
}

impl BackendJudge {
    /// Judges with `client`; `cache` keeps answers across runs. Calls block
    /// on `handle`, so they must come from threads outside the runtime.
    pub fn new(
        client: Arc<Client>,
        cache: Option<AnswerCache>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        BackendJudge {
            identity: client.identity(),
            client,
            cache,
            handle,
            fresh: Mutex::new(HashMap::new()),
            hits: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
        }
    }

    fn chat_request(request: &JudgeRequest) -> ChatRequest {
        ChatRequest {
            messages: request.messages.clone(),
            max_tokens: request.max_tokens,
            temperature: request.temperature,
            top_p: None,
            seed: request.seed,
        }
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, HashMap<String, Completion>> {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The audit trail of one item's calls.
    pub fn trail(&self, calls: &[JudgeCall]) -> JudgeTrail {
        let fresh = self.fresh();
        JudgeTrail {
            model: self.identity.clone(),
            calls: calls
                .iter()
                .map(|call| {
                    let key = AnswerCache::key(&self.identity, &Self::chat_request(&call.request));
                    let (answer, error) = match &call.answer {
                        Ok(text) => (Some(text.clone()), None),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    JudgeExchange {
                        cached: answer.is_some() && !fresh.contains_key(&key),
                        request_sha256: key,
                        answer,
                        error,
                    }
                })
                .collect(),
        }
    }

    /// Keeps the answers of an item that scored, for later runs.
    pub fn commit(&self, calls: &[JudgeCall]) {
        let Some(cache) = &self.cache else { return };
        for call in calls.iter().filter(|c| c.answer.is_ok()) {
            let request = Self::chat_request(&call.request);
            let key = AnswerCache::key(&self.identity, &request);
            if let Some(done) = self.fresh().remove(&key)
                && let Err(e) = cache.put(&self.identity, &request, &done)
            {
                tracing::warn!("{}: cannot cache a judge answer: {e}", cache.dir().display());
            }
        }
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

    fn complete(&self, request: &JudgeRequest) -> Result<String, JudgeError> {
        let request = Self::chat_request(request);
        if let Some(done) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.identity, &request))
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(done.text);
        }
        self.asked.fetch_add(1, Ordering::Relaxed);
        match self.handle.block_on(self.client.complete(&request)) {
            Ok(done) => {
                let text = done.text.clone();
                self.fresh()
                    .insert(AnswerCache::key(&self.identity, &request), done);
                Ok(text)
            }
            Err(e) => Err(JudgeError::Failed(e.to_string())),
        }
    }
}

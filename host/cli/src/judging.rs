//! The judge that scorer plugins call, wired to a model client and the
//! on-disk answer cache.
//!
//! Answers are cached only once the item they were asked for has scored:
//! an answer the plugin could not parse is not kept, so a rerun asks again
//! for exactly the items that failed, and reads the rest from the cache.
//!
//! A plugin calls the judge on the thread that scores its item, so what one
//! item's calls did is logged per thread and taken by [`BackendJudge::finish_item`].

use lem_core::{JudgeExchange, JudgeTrail};
use lem_models::{AnswerCache, ChatRequest, Client, Completion};
use lem_plugin_host::{Judge, JudgeCall, JudgeError, JudgeRequest};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

/// One call as the judge saw it.
struct Logged {
    key: String,
    request: ChatRequest,
    /// The model's answer, when it came from the model (not the cache).
    fresh: Option<Completion>,
}

/// A model client as the plugins' judge.
pub struct BackendJudge {
    client: Arc<Client>,
    identity: String,
    cache: Option<AnswerCache>,
    handle: tokio::runtime::Handle,
    /// Per scoring thread: the calls of the item it is scoring.
    log: Mutex<HashMap<ThreadId, Vec<Logged>>>,
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
            log: Mutex::new(HashMap::new()),
            hits: AtomicUsize::new(0),
            asked: AtomicUsize::new(0),
            max_tokens,
        }
    }

    fn chat_request(&self, request: &JudgeRequest) -> ChatRequest {
        ChatRequest {
            messages: request.messages.clone(),
            max_tokens: self
                .max_tokens
                .map_or(request.max_tokens, |cap| request.max_tokens.min(cap)),
            temperature: request.temperature,
            top_p: None,
            seed: request.seed,
        }
    }

    fn log(&self, entry: Logged) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.entry(std::thread::current().id())
            .or_default()
            .push(entry);
    }

    /// Ends the item this thread was scoring: its audit trail, with the
    /// model's fresh answers cached when the item `scored`.
    pub fn finish_item(&self, calls: &[JudgeCall], scored: bool) -> JudgeTrail {
        let logged = self
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&std::thread::current().id())
            .unwrap_or_default();
        // Calls the plugin host refused never reached this judge, so only
        // the forwarded ones have a log entry, in the same order.
        let mut forwarded = logged.iter();
        let trail = JudgeTrail {
            model: self.identity.clone(),
            calls: calls
                .iter()
                .map(|call| {
                    let (answer, error) = match &call.answer {
                        Ok(text) => (Some(text.clone()), None),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    let entry = if call.forwarded {
                        forwarded.next()
                    } else {
                        None
                    };
                    JudgeExchange {
                        cached: answer.is_some() && entry.is_some_and(|e| e.fresh.is_none()),
                        // The answer-cache key when the judge saw it; the
                        // digest of the request as made when it was refused.
                        request_sha256: entry
                            .map_or_else(|| call.request_sha256.clone(), |e| e.key.clone()),
                        answer,
                        error,
                    }
                })
                .collect(),
        };
        if scored && let Some(cache) = &self.cache {
            for entry in &logged {
                if let Some(done) = &entry.fresh
                    && let Err(e) = cache.put(&self.identity, &entry.request, done)
                {
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

    fn complete(&self, request: &JudgeRequest) -> Result<String, JudgeError> {
        let request = self.chat_request(request);
        let key = AnswerCache::key(&self.identity, &request);
        if let Some(done) = self
            .cache
            .as_ref()
            .and_then(|c| c.get(&self.identity, &request))
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.log(Logged {
                key,
                request,
                fresh: None,
            });
            return Ok(done.text);
        }
        self.asked.fetch_add(1, Ordering::Relaxed);
        let result = self.handle.block_on(self.client.complete(&request));
        let (text, fresh) = match result {
            Ok(done) => (Ok(done.text.clone()), Some(done)),
            Err(e) => (Err(JudgeError::Failed(e.to_string())), None),
        };
        self.log(Logged {
            key,
            request,
            fresh,
        });
        text
    }
}

//! The candle engine as a backend: one worker thread owns the model and
//! decodes every request in flight together (continuous batching).

use crate::{Backend, BackendError, BoxFuture, ChatRequest, Completion, TokenLogprob, Usage};
use lem_engine::{Engine, Event, Request, RequestSource, SamplingParams};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::mpsc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// What a local request reports as it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// New text (for streaming).
    Text(String),
    /// The request is done.
    Done(Completion),
    /// The request failed.
    Failed(BackendError),
}

/// What the model continues.
enum Prompt {
    /// The request's messages, through the chat template.
    Chat,
    /// Raw text (OpenAI's `/v1/completions`); the BOS token is put first.
    Text(String),
}

struct Job {
    prompt: Prompt,
    request: ChatRequest,
    events: UnboundedSender<StreamEvent>,
}

/// The local engine, shared by every caller: requests that arrive while
/// others decode join their batch.
pub struct LocalBackend {
    identity: String,
    jobs: mpsc::Sender<Job>,
}

impl LocalBackend {
    /// Starts the worker thread that owns `engine`; up to `batch_size`
    /// sequences decode together. `identity` names the model in records.
    pub fn start(engine: Engine, identity: String, batch_size: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lem-engine".into())
            .spawn(move || worker(&engine, &queue, batch_size))
            .expect("spawning the engine thread");
        LocalBackend { identity, jobs }
    }

    /// Queues `request`; its events arrive on the returned channel.
    pub fn submit(&self, request: ChatRequest) -> UnboundedReceiver<StreamEvent> {
        self.queue(Prompt::Chat, request)
    }

    /// Queues a raw-text continuation of `text` with the settings of
    /// `request` (whose messages are ignored).
    pub fn submit_text(
        &self,
        text: String,
        request: ChatRequest,
    ) -> UnboundedReceiver<StreamEvent> {
        self.queue(Prompt::Text(text), request)
    }

    fn queue(&self, prompt: Prompt, request: ChatRequest) -> UnboundedReceiver<StreamEvent> {
        let (events, receiver) = unbounded_channel();
        let job = Job {
            prompt,
            request,
            events,
        };
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            let _ = job.events.send(StreamEvent::Failed(BackendError::Engine(
                "the engine thread has stopped".into(),
            )));
        }
        receiver
    }
}

impl Backend for LocalBackend {
    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<Completion, BackendError>> {
        let mut events = self.submit(request.clone());
        Box::pin(async move {
            while let Some(event) = events.recv().await {
                match event {
                    StreamEvent::Text(_) => {}
                    StreamEvent::Done(done) => return Ok(done),
                    StreamEvent::Failed(error) => return Err(error),
                }
            }
            Err(BackendError::Engine(
                "the engine stopped before answering".into(),
            ))
        })
    }
}

/// Hands queued jobs to the engine as requests, remembering where each
/// one's events go.
struct JobSource<'a> {
    engine: &'a Engine,
    queue: &'a mpsc::Receiver<Job>,
    waiting: &'a RefCell<HashMap<String, UnboundedSender<StreamEvent>>>,
}

impl RequestSource for JobSource<'_> {
    fn next(&mut self, wait: bool) -> Option<Request> {
        loop {
            let job = if wait {
                self.queue.recv().ok()?
            } else {
                self.queue.try_recv().ok()?
            };
            let tokenizer = self.engine.tokenizer();
            let prompt = match &job.prompt {
                Prompt::Chat => tokenizer.encode_chat(&job.request.messages),
                Prompt::Text(text) => {
                    tokenizer.encode(&format!("{}{text}", tokenizer.bos().unwrap_or("")))
                }
            }
            .and_then(|ids| self.engine.check_ids(&ids).map(|()| ids));
            let prompt = match prompt {
                Ok(ids) => ids,
                Err(error) => {
                    let _ = job
                        .events
                        .send(StreamEvent::Failed(BackendError::Engine(error.to_string())));
                    continue;
                }
            };
            // Keys route events, and the sampler is seeded by the seed and
            // the key: so the key comes from the prompt, not from the order
            // requests arrive in — an item's text is then the same whether
            // it is asked first or after a resumed run's earlier items. The
            // same prompt twice in flight gets a numbered second key.
            let bytes: Vec<u8> = prompt.iter().flat_map(|id| id.to_le_bytes()).collect();
            let base = &lem_core::hash::sha256_hex(&bytes)[..16];
            let mut key = format!("p{base}");
            let waiting = self.waiting.borrow();
            let mut n = 1;
            while waiting.contains_key(&key) {
                n += 1;
                key = format!("p{base}-{n}");
            }
            drop(waiting);
            let r = &job.request;
            let params = SamplingParams {
                temperature: r.temperature,
                top_p: r.top_p.unwrap_or(1.0),
                top_k: 0,
                repetition_penalty: 1.0,
                max_tokens: r.max_tokens as usize,
                seed: r.seed.unwrap_or(0),
            };
            self.waiting.borrow_mut().insert(key.clone(), job.events);
            return Some(Request {
                key,
                prompt,
                params,
                schema: r.response_format.clone(),
                distributions: r.value_distributions,
                top_logprobs: r.top_logprobs.map(usize::from),
            });
        }
    }

    fn cancelled(&self, key: &str) -> bool {
        let mut waiting = self.waiting.borrow_mut();
        let gone = waiting.get(key).is_some_and(UnboundedSender::is_closed);
        if gone {
            waiting.remove(key);
        }
        gone
    }
}

fn worker(engine: &Engine, queue: &mpsc::Receiver<Job>, batch_size: usize) {
    let waiting = RefCell::new(HashMap::new());
    let mut source = JobSource {
        engine,
        queue,
        waiting: &waiting,
    };
    loop {
        let result = engine.generate_from(&mut source, batch_size, true, &mut |event| {
            let (key, event) = match event {
                Event::Text { key, piece } => (key, StreamEvent::Text(piece)),
                Event::Done(done) => (
                    done.key.clone(),
                    StreamEvent::Done(Completion {
                        finish_reason: done.finish.as_str().to_string(),
                        usage: Usage {
                            prompt_tokens: done.prompt_tokens as u64,
                            completion_tokens: done.tokens.len() as u64,
                        },
                        text: done.text,
                        constrained: done.constrained,
                        distributions: done.distributions,
                        logprobs: done
                            .logprobs
                            .into_iter()
                            .map(|t| TokenLogprob {
                                token: t.token,
                                logprob: f64::from(t.logprob),
                                top: t
                                    .top
                                    .into_iter()
                                    .map(|(text, lp)| (text, f64::from(lp)))
                                    .collect(),
                            })
                            .collect(),
                    }),
                ),
                Event::Failed { key, error } => (
                    key,
                    StreamEvent::Failed(BackendError::Engine(error.to_string())),
                ),
            };
            let finished = !matches!(event, StreamEvent::Text(_));
            let mut waiting = waiting.borrow_mut();
            if let Some(sender) = waiting.get(&key) {
                let _ = sender.send(event);
            }
            if finished {
                waiting.remove(&key);
            }
        });
        match result {
            // The queue is closed: every LocalBackend handle is gone.
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, "engine failed; failing the requests in flight");
                for (_, sender) in waiting.borrow_mut().drain() {
                    let _ =
                        sender.send(StreamEvent::Failed(BackendError::Engine(error.to_string())));
                }
            }
        }
    }
}

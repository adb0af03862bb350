//! Generation: continuous batching over many prompts.
//!
//! Up to `batch_size` sequences decode together; a finished sequence leaves
//! the batch at once (its result is handed out before the rest finish) and the
//! next prompt takes its place.

use crate::EngineError;
use crate::models::Model;
use crate::models::layers::KvCache;
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::Tokenizer;
use candle_core::Tensor;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One prompt to complete.
#[derive(Debug, Clone)]
pub struct Request {
    /// Names the sequence (an item id); also seeds its sampler.
    pub key: String,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Sampling settings.
    pub params: SamplingParams,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The context is full.
    Context,
}

impl FinishReason {
    /// The reason's name in records.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Context => "context",
        }
    }
}

/// A finished sequence.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The request's key.
    pub key: String,
    /// Generated ids (without the stop token).
    pub tokens: Vec<u32>,
    /// Generated text.
    pub text: String,
    /// Why it stopped.
    pub finish: FinishReason,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Time from admission to the last token.
    pub elapsed: Duration,
}

/// What generation reports as it goes.
pub enum Event {
    /// New text for a sequence (for streaming).
    Text {
        /// The request's key.
        key: String,
        /// The new text.
        piece: String,
    },
    /// A sequence finished.
    Done(Completion),
    /// A request could not be run (e.g. its prompt does not fit the context).
    Failed {
        /// The request's key.
        key: String,
        /// Why.
        error: EngineError,
    },
}

struct Sequence {
    request: Request,
    cache: KvCache,
    sampler: Sampler,
    generated: Vec<u32>,
    seen: Vec<u32>,
    text_len: usize,
    started: Instant,
    next: u32,
}

/// Where requests come from: a fixed list, or a queue a server fills while
/// generation runs.
pub trait RequestSource {
    /// The next request. With `wait` (nothing is decoding) it may block until
    /// one arrives; `None` then means the source is finished. Without `wait`
    /// it must answer at once (`None`: nothing waiting right now).
    fn next(&mut self, wait: bool) -> Option<Request>;

    /// Whether nobody waits for the sequence `key` any more (a server's
    /// client went away); it is then dropped without a `Done` event.
    fn cancelled(&self, _key: &str) -> bool {
        false
    }
}

impl RequestSource for VecDeque<Request> {
    fn next(&mut self, _wait: bool) -> Option<Request> {
        self.pop_front()
    }
}

/// Runs requests through `model`, calling `sink` with every event; returns
/// when `source` is finished and every sequence is done.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    context: usize,
    source: &mut dyn RequestSource,
    batch_size: usize,
    stream: bool,
    sink: &mut dyn FnMut(Event),
) -> Result<(), EngineError> {
    let batch_size = batch_size.max(1);
    let mut active: Vec<Sequence> = Vec::new();
    loop {
        while active.len() < batch_size {
            let wait = active.is_empty();
            let Some(request) = source.next(wait) else {
                if wait {
                    // Nothing decoding and the source is finished.
                    return Ok(());
                }
                break;
            };
            match admit(model, context, request) {
                Ok((mut seq, logits)) => {
                    let mut logits = logits;
                    let token = seq.sampler.sample(&mut logits, &seq.seen);
                    if let Some(done) = advance(&mut seq, token, tokenizer, stream, sink)? {
                        sink(Event::Done(done));
                    } else {
                        active.push(seq);
                    }
                }
                Err((key, error)) => sink(Event::Failed { key, error }),
            }
        }
        active.retain(|seq| !source.cancelled(&seq.request.key));
        if active.is_empty() {
            continue;
        }
        let logits = step(model, &mut active)?;
        let mut finished = Vec::new();
        for (i, seq) in active.iter_mut().enumerate() {
            let mut row = logits[i].clone();
            let token = seq.sampler.sample(&mut row, &seq.seen);
            if let Some(done) = advance(seq, token, tokenizer, stream, sink)? {
                finished.push((i, done));
            }
        }
        for (i, done) in finished.into_iter().rev() {
            active.remove(i);
            sink(Event::Done(done));
        }
    }
}

/// Prefills a request; returns the sequence and its first logits.
fn admit(
    model: &Model,
    context: usize,
    request: Request,
) -> Result<(Sequence, Vec<f32>), (String, EngineError)> {
    let key = request.key.clone();
    let fail = |e: EngineError| (key.clone(), e);
    let n = request.prompt.len();
    if n == 0 {
        return Err(fail(EngineError::BadInput("empty prompt".into())));
    }
    if n >= context {
        return Err(fail(EngineError::ContextFull {
            needed: n + 1,
            capacity: context,
        }));
    }
    let capacity = (n + request.params.max_tokens).min(context);
    let mut cache = model.new_cache(capacity).map_err(fail)?;
    let logits = model.prefill(&request.prompt, &mut cache).map_err(fail)?;
    let logits = to_vec(&logits).map_err(fail)?;
    let seq = Sequence {
        sampler: Sampler::new(request.params.clone(), &request.key),
        seen: request.prompt.clone(),
        cache,
        generated: Vec::new(),
        text_len: 0,
        started: Instant::now(),
        next: 0,
        request,
    };
    Ok((seq, logits))
}

/// One decode step for every active sequence; logits per sequence.
fn step(model: &Model, active: &mut [Sequence]) -> Result<Vec<Vec<f32>>, EngineError> {
    let tokens: Vec<u32> = active.iter().map(|s| s.next).collect();
    let mut caches: Vec<&mut KvCache> = active.iter_mut().map(|s| &mut s.cache).collect();
    model
        .decode(&tokens, &mut caches)?
        .to_vec2::<f32>()
        .map_err(EngineError::candle)
}

/// Takes a sampled token; returns the completion when the sequence is done.
fn advance(
    seq: &mut Sequence,
    token: u32,
    tokenizer: &Tokenizer,
    stream: bool,
    sink: &mut dyn FnMut(Event),
) -> Result<Option<Completion>, EngineError> {
    let finish = if tokenizer.stop_ids().contains(&token) {
        Some(FinishReason::Stop)
    } else {
        seq.generated.push(token);
        seq.seen.push(token);
        seq.next = token;
        if stream {
            let text = tokenizer.decode(&seq.generated)?;
            if text.len() > seq.text_len && text.is_char_boundary(seq.text_len) {
                sink(Event::Text {
                    key: seq.request.key.clone(),
                    piece: text[seq.text_len..].to_string(),
                });
                seq.text_len = text.len();
            }
        }
        let room = seq.cache.remaining();
        if seq.generated.len() >= seq.request.params.max_tokens {
            Some(FinishReason::Length)
        } else if room == 0 {
            Some(FinishReason::Context)
        } else {
            None
        }
    };
    let Some(finish) = finish else {
        return Ok(None);
    };
    Ok(Some(Completion {
        key: seq.request.key.clone(),
        text: tokenizer.decode(&seq.generated)?,
        tokens: std::mem::take(&mut seq.generated),
        finish,
        prompt_tokens: seq.request.prompt.len(),
        elapsed: seq.started.elapsed(),
    }))
}

fn to_vec(logits: &Tensor) -> Result<Vec<f32>, EngineError> {
    logits
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(EngineError::candle)
}

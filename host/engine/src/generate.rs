//! Generation: continuous batching over many prompts.
//!
//! Up to `batch_size` sequences decode together; a finished sequence leaves
//! the batch at once (its result is handed out before the rest finish) and the
//! next prompt takes its place. A sequence may be held to a JSON schema
//! ([`crate::constraint`]): its logits are masked before sampling, it stops
//! when the schema is complete, and it can report the distribution of each
//! integer field's value and the top log-probabilities of each token.

use crate::EngineError;
use crate::constraint::{Constraint, Grammars, softmax};
use crate::models::Model;
use crate::models::layers::KvCache;
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::Tokenizer;
use candle_core::Tensor;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// One prompt to complete.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Names the sequence (an item id); also seeds its sampler.
    pub key: String,
    /// Prompt token ids.
    pub prompt: Vec<u32>,
    /// Sampling settings.
    pub params: SamplingParams,
    /// A JSON schema the output must follow.
    pub schema: Option<serde_json::Value>,
    /// Report each integer field's value distribution (with `schema`).
    pub distributions: bool,
    /// Report each token's log-probability and this many alternatives.
    pub top_logprobs: Option<usize>,
}

/// One generated token with its log-probability (under the distribution it
/// was sampled from, before temperature) and the likeliest alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// The likeliest tokens at its position, most likely first.
    pub top: Vec<(String, f32)>,
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
    /// Whether the output was held to the request's schema.
    pub constrained: bool,
    /// Per integer field of the schema (when asked): value → probability.
    pub distributions: BTreeMap<String, BTreeMap<i64, f64>>,
    /// Per generated token (when asked).
    pub logprobs: Vec<TokenLogprob>,
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
    constraint: Option<Constraint>,
    distributions: BTreeMap<String, BTreeMap<i64, f64>>,
    logprobs: Vec<TokenLogprob>,
    generated: Vec<u32>,
    seen: Vec<u32>,
    text_len: usize,
    started: Instant,
    next: u32,
}

/// What a step decides for a sequence.
enum Choice {
    /// The next token.
    Token(u32),
    /// The schema is complete: stop without another token.
    Complete,
}

/// The grammar side of the tokenizer, built on first use.
pub type GrammarSource<'a> = dyn Fn() -> Result<&'a Grammars, EngineError> + 'a;

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
pub fn generate<'a>(
    model: &Model,
    tokenizer: &Tokenizer,
    grammars: &GrammarSource<'a>,
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
            match admit(model, grammars, context, request) {
                Ok((mut seq, logits)) => {
                    match choose(model, tokenizer, &mut seq, logits)
                        .and_then(|c| advance(&mut seq, c, tokenizer, stream, sink))
                    {
                        Ok(Some(done)) => sink(Event::Done(done)),
                        Ok(None) => active.push(seq),
                        Err(error) => sink(Event::Failed {
                            key: seq.request.key.clone(),
                            error,
                        }),
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
        for (seq, row) in active.iter_mut().zip(logits) {
            match choose(model, tokenizer, seq, row)
                .and_then(|c| advance(seq, c, tokenizer, stream, sink))
            {
                Ok(None) => finished.push(None),
                Ok(Some(done)) => finished.push(Some(Event::Done(done))),
                Err(error) => finished.push(Some(Event::Failed {
                    key: seq.request.key.clone(),
                    error,
                })),
            }
        }
        for (i, event) in finished.into_iter().enumerate().rev() {
            if let Some(event) = event {
                active.remove(i);
                sink(event);
            }
        }
    }
}

/// Room a constrained sequence keeps for looking ahead at a value's tokens.
const LOOKAHEAD_ROOM: usize = 4;

/// The cache room a sequence keeps beyond its tokens: [`LOOKAHEAD_ROOM`]
/// when it is held to a schema (it may look ahead), else none.
fn lookahead_room(constraint: &Option<Constraint>) -> usize {
    if constraint.is_some() {
        LOOKAHEAD_ROOM
    } else {
        0
    }
}

/// Prefills a request; returns the sequence and its first logits.
fn admit<'a>(
    model: &Model,
    grammars: &GrammarSource<'a>,
    context: usize,
    request: Request,
) -> Result<(Sequence, Vec<f32>), (String, EngineError)> {
    let key = request.key.clone();
    let fail = |e: EngineError| (key.clone(), e);
    // A vocabulary the grammar engine cannot read (a word-level test
    // tokenizer) cannot constrain: the sequence runs free and its completion
    // says it was not constrained. A schema that does not compile is the
    // request's error.
    let constraint = match &request.schema {
        Some(schema) => match grammars() {
            Ok(g) => Some(g.json_schema(schema).map_err(fail)?),
            Err(e) => {
                tracing::warn!("generating unconstrained: {e}");
                None
            }
        },
        None => None,
    };
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
    let capacity = (n + request.params.max_tokens + lookahead_room(&constraint)).min(context);
    let mut cache = model.new_cache(capacity).map_err(fail)?;
    let logits = model.prefill(&request.prompt, &mut cache).map_err(fail)?;
    let logits = to_vec(&logits).map_err(fail)?;
    let seq = Sequence {
        sampler: Sampler::new(request.params.clone(), &request.key),
        constraint,
        distributions: BTreeMap::new(),
        logprobs: Vec::new(),
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

/// Picks a sequence's next token from its `logits`: masked by its schema,
/// with the distribution of a field's value taken where one begins and the
/// token's log-probabilities recorded when asked.
fn choose(
    model: &Model,
    tokenizer: &Tokenizer,
    seq: &mut Sequence,
    mut logits: Vec<f32>,
) -> Result<Choice, EngineError> {
    let Sequence {
        constraint,
        cache,
        request,
        distributions,
        ..
    } = seq;
    if let Some(c) = constraint {
        if c.is_done() {
            return Ok(Choice::Complete);
        }
        if request.distributions {
            while let Some(field) = c.field_at_value() {
                let d = c.value_distribution(field, &logits, &mut |path| {
                    lookahead(model, cache, path)
                })?;
                distributions.insert(c.field_name(field).to_string(), d);
            }
        }
        c.mask(&mut logits)?;
    }
    let top = seq.request.top_logprobs;
    let probs = top.map(|_| softmax(&logits));
    let token = seq.sampler.sample(&mut logits, &seq.seen);
    if let (Some(k), Some(probs)) = (top, probs) {
        seq.logprobs
            .push(token_logprob(tokenizer, &probs, token, k));
    }
    Ok(Choice::Token(token))
}

/// `token`'s log-probability under `probs` and the `k` likeliest tokens.
fn token_logprob(tokenizer: &Tokenizer, probs: &[f64], token: u32, k: usize) -> TokenLogprob {
    let text = |t: u32| tokenizer.decode(&[t]).unwrap_or_default();
    let ln = |p: f64| p.ln() as f32;
    let mut order: Vec<u32> = (0..probs.len() as u32).collect();
    let k = k.min(order.len());
    if k > 0 {
        order.select_nth_unstable_by(k - 1, |a, b| {
            probs[*b as usize].total_cmp(&probs[*a as usize])
        });
    }
    order.truncate(k);
    order.sort_by(|a, b| probs[*b as usize].total_cmp(&probs[*a as usize]));
    TokenLogprob {
        token: text(token),
        logprob: ln(probs.get(token as usize).copied().unwrap_or(0.0)),
        top: order
            .into_iter()
            .map(|t| (text(t), ln(probs[t as usize])))
            .collect(),
    }
}

/// The logits after feeding `path` to a sequence, which is left as it was
/// (its cache cut back to where it stood).
fn lookahead(model: &Model, cache: &mut KvCache, path: &[u32]) -> Result<Vec<f32>, EngineError> {
    let start = cache.len();
    let mut last = None;
    for &t in path {
        match model.decode(&[t], &mut [&mut *cache]) {
            Ok(logits) => last = Some(logits),
            Err(e) => {
                cache.truncate(start);
                return Err(e);
            }
        }
    }
    cache.truncate(start);
    match last {
        Some(logits) => to_vec(&logits),
        None => Err(EngineError::BadInput("lookahead of no tokens".into())),
    }
}

/// Takes a step's choice; returns the completion when the sequence is done.
fn advance(
    seq: &mut Sequence,
    choice: Choice,
    tokenizer: &Tokenizer,
    stream: bool,
    sink: &mut dyn FnMut(Event),
) -> Result<Option<Completion>, EngineError> {
    let finish = match choice {
        Choice::Complete => Some(FinishReason::Stop),
        Choice::Token(token) if tokenizer.stop_ids().contains(&token) => Some(FinishReason::Stop),
        Choice::Token(token) => accept(seq, token, tokenizer, stream, sink)?,
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
        constrained: seq.constraint.is_some(),
        distributions: std::mem::take(&mut seq.distributions),
        logprobs: std::mem::take(&mut seq.logprobs),
    }))
}

/// Appends a generated token; says why the sequence ends, if it does.
fn accept(
    seq: &mut Sequence,
    token: u32,
    tokenizer: &Tokenizer,
    stream: bool,
    sink: &mut dyn FnMut(Event),
) -> Result<Option<FinishReason>, EngineError> {
    if let Some(c) = &mut seq.constraint {
        c.accept(token)?;
    }
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
    let keep = lookahead_room(&seq.constraint);
    Ok(
        if seq.constraint.as_ref().is_some_and(Constraint::is_done) {
            Some(FinishReason::Stop)
        } else if seq.generated.len() >= seq.request.params.max_tokens {
            Some(FinishReason::Length)
        } else if room <= keep {
            Some(FinishReason::Context)
        } else {
            None
        },
    )
}

/// The summed log-probability of `tokens` after a cached prefix whose next
/// logits are `first`; the cache is left as it was.
pub(crate) fn continuation_logprob(
    model: &Model,
    cache: &mut KvCache,
    first: &[f32],
    tokens: &[u32],
) -> Result<f64, EngineError> {
    let start = cache.len();
    let mut total = 0.0;
    let mut logits = first.to_vec();
    let mut result = Ok(());
    for (i, &t) in tokens.iter().enumerate() {
        let probs = softmax(&logits);
        total += probs.get(t as usize).copied().unwrap_or(0.0).ln();
        if i + 1 < tokens.len() {
            match model
                .decode(&[t], &mut [&mut *cache])
                .and_then(|l| to_vec(&l))
            {
                Ok(next) => logits = next,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    cache.truncate(start);
    result.map(|()| total)
}

/// A [1, vocab] or [vocab] logits tensor as a vector.
pub(crate) fn to_vec(logits: &Tensor) -> Result<Vec<f32>, EngineError> {
    logits
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(EngineError::candle)
}

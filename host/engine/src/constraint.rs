//! Constrained decoding: generation held to a JSON schema, one token mask
//! per step, computed by llguidance over the tokenizer's vocabulary.
//!
//! [`Grammars`] is built once per engine: the vocabulary as byte strings in
//! a trie (every family's tokenizer, byte-level BPE or SentencePiece, reads
//! back into bytes through its `tokenizer.json`). [`Constraint`] follows one
//! sequence: it masks the logits before sampling, takes each sampled token,
//! and says when the schema is complete (the stop tokens are allowed only
//! where the schema can end).
//!
//! Schemas are compiled with fixed separators (`", "` and `": "`, as Python's
//! `json.dumps` writes them, which models have seen most) and no free
//! whitespace, so a small model cannot wander off into blank lines.
//!
//! For every integer field of the schema with a bounded range (or an
//! integer `enum`), the constraint can also give the probability of each
//! allowed value where the field's value begins ([`Constraint::value_distribution`]):
//! the probability of a value's tokens under the grammar-masked
//! distribution, times the probability that the number ends there when a
//! longer allowed value continues it (`1` versus `10`), renormalised over the
//! allowed values — G-Eval's probability-weighted scoring (Liu et al. 2023,
//! <https://arxiv.org/abs/2303.16634>), exact for multi-token values.

use crate::EngineError;
use crate::tokenizer::Tokenizer;
use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Fields with more allowed values than this get no distribution.
const MAX_VALUES: usize = 1000;

/// The grammar side of one tokenizer's vocabulary.
pub struct Grammars {
    factory: ParserFactory,
    env: TokEnv,
}

/// The vocabulary as llguidance sees it.
struct Vocabulary {
    trie: TokTrie,
    tokenizer: tokenizers::Tokenizer,
}

impl TokenizerEnv for Vocabulary {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        self.tokenizer
            .encode(String::from_utf8_lossy(s).as_ref(), false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }
}

fn grammar_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::BadInput(format!("response format: {e}"))
}

impl Grammars {
    /// The grammar side of `tokenizer`, for a model with `vocab` output rows
    /// (ids the tokenizer lacks are never allowed).
    pub fn new(tokenizer: &Tokenizer, vocab: usize) -> Result<Self, EngineError> {
        let (json, _) = tokenizer.hf_files()?;
        let value: Value = serde_json::from_str(&json)
            .map_err(|e| EngineError::BadInput(format!("tokenizer.json: {e}")))?;
        let mut words = llguidance::token_bytes_from_tokenizer_json(&value)
            .map_err(|e| EngineError::BadInput(format!("tokenizer vocabulary: {e}")))?;
        let size = words.len().max(vocab);
        // Rows the tokenizer has no token for: special, so never allowed.
        for (id, word) in words.iter_mut().enumerate() {
            if word.is_empty() {
                *word = special(id);
            }
        }
        words.extend((words.len()..size).map(special));
        let stops = tokenizer.stop_ids();
        let eos = stops.first().copied().ok_or_else(|| {
            EngineError::BadInput("constrained decoding needs a stop token".into())
        })?;
        let trie = TokTrie::from(&TokRxInfo::new(size as u32, eos), &words).with_eos_tokens(stops);
        let env: TokEnv = Arc::new(Vocabulary {
            trie,
            tokenizer: tokenizer.inner().clone(),
        });
        let mut factory = ParserFactory::new_simple(&env).map_err(grammar_error)?;
        factory.set_stderr_log_level(0);
        factory.set_buffer_log_level(0);
        Ok(Grammars { factory, env })
    }

    /// A constraint to `schema` (a JSON schema) for one sequence.
    pub fn json_schema(&self, schema: &Value) -> Result<Constraint, EngineError> {
        let mut schema = schema.clone();
        let Some(object) = schema.as_object_mut() else {
            return Err(grammar_error("a JSON schema is a JSON object"));
        };
        object.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            })
        });
        let fields = integer_fields(&schema);
        let parser = self
            .factory
            .create_parser(TopLevelGrammar::from_json_schema(schema));
        let matcher = Matcher::new(parser);
        if let Some(e) = matcher.get_error() {
            return Err(grammar_error(e));
        }
        Ok(Constraint {
            matcher,
            env: self.env.clone(),
            fields,
            text: Vec::new(),
        })
    }
}

/// A token the vocabulary cannot spell: marked special.
fn special(id: usize) -> Vec<u8> {
    let mut word = vec![TokTrie::SPECIAL_TOKEN_MARKER];
    word.extend(format!("<[{id}]>").into_bytes());
    word
}

/// An integer field of a schema with its allowed values.
#[derive(Debug, Clone)]
struct IntField {
    name: String,
    /// What the output reads just before the value: `"name": `.
    marker: Vec<u8>,
    values: Vec<i64>,
    done: bool,
}

/// The schema's top-level integer properties whose values are few enough to
/// enumerate: an integer `enum`, or `minimum`..=`maximum`.
fn integer_fields(schema: &Value) -> Vec<IntField> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .filter_map(|(name, p)| {
            let values: Vec<i64> = if let Some(list) = p.get("enum").and_then(Value::as_array) {
                list.iter().map(Value::as_i64).collect::<Option<_>>()?
            } else {
                if p.get("type").and_then(Value::as_str) != Some("integer") {
                    return None;
                }
                let lo = p.get("minimum").and_then(Value::as_i64)?;
                let hi = p.get("maximum").and_then(Value::as_i64)?;
                if hi < lo || (hi - lo) as u64 >= MAX_VALUES as u64 {
                    return None;
                }
                (lo..=hi).collect()
            };
            let mut marker = serde_json::to_string(name).ok()?.into_bytes();
            marker.extend_from_slice(b": ");
            Some(IntField {
                name: name.clone(),
                marker,
                values,
                done: false,
            })
        })
        .collect()
}

/// One sequence held to a schema.
pub struct Constraint {
    matcher: Matcher,
    env: TokEnv,
    fields: Vec<IntField>,
    /// The bytes generated so far.
    text: Vec<u8>,
}

/// Feeds tokens after the current position and returns the logits that
/// follow them, leaving the sequence as it was.
pub type Lookahead<'a> = dyn FnMut(&[u32]) -> Result<Vec<f32>, EngineError> + 'a;

impl Constraint {
    /// The tokens allowed next, or an error when the grammar is stuck.
    fn allowed(matcher: &mut Matcher) -> Result<SimpleVob, EngineError> {
        matcher.compute_mask().map_err(grammar_error)
    }

    /// Sets every token the schema does not allow next to -inf.
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<(), EngineError> {
        let allowed = Self::allowed(&mut self.matcher)?;
        apply(&allowed, logits);
        if logits.iter().all(|l| *l == f32::NEG_INFINITY) {
            return Err(grammar_error(
                "no token the model has can continue the schema",
            ));
        }
        Ok(())
    }

    /// Takes the sampled `token`.
    pub fn accept(&mut self, token: u32) -> Result<(), EngineError> {
        self.matcher.consume_token(token).map_err(grammar_error)?;
        self.text
            .extend_from_slice(self.env.tok_trie().token(token));
        Ok(())
    }

    /// Whether the schema is complete and nothing more may follow.
    pub fn is_done(&self) -> bool {
        self.matcher.is_stopped()
    }

    /// The integer field whose value the next token begins, if its
    /// distribution has not been taken yet.
    pub fn field_at_value(&self) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| !f.done && self.text.ends_with(&f.marker))
    }

    /// The name of field `index`.
    pub fn field_name(&self, index: usize) -> &str {
        &self.fields[index].name
    }

    /// The probability of each allowed value of field `index`, from the
    /// `logits` of the token that begins it (unmasked) and `lookahead` for
    /// values longer than one token. The field is then done.
    pub fn value_distribution(
        &mut self,
        index: usize,
        logits: &[f32],
        lookahead: &mut Lookahead<'_>,
    ) -> Result<BTreeMap<i64, f64>, EngineError> {
        self.fields[index].done = true;
        let trie = ValueTrie::of(&*self.env, &self.fields[index].values);
        let mut out = BTreeMap::new();
        let mut matcher = self.matcher.deep_clone();
        walk(
            &mut matcher,
            &trie,
            0,
            &mut Vec::new(),
            logits,
            1.0,
            lookahead,
            &mut out,
        )?;
        let total: f64 = out.values().sum();
        if total > 0.0 {
            out.values_mut().for_each(|p| *p /= total);
        }
        Ok(out)
    }
}

/// Allowed values as a trie of their tokens.
struct ValueTrie {
    /// Per node: children by token, and the value ending there.
    nodes: Vec<(BTreeMap<u32, usize>, Option<i64>)>,
}

impl ValueTrie {
    fn of(env: &dyn TokenizerEnv, values: &[i64]) -> Self {
        let mut trie = ValueTrie {
            nodes: vec![(BTreeMap::new(), None)],
        };
        for &v in values {
            let mut node = 0;
            for t in env.tokenize_bytes(v.to_string().as_bytes()) {
                node = match trie.nodes[node].0.get(&t) {
                    Some(&n) => n,
                    None => {
                        trie.nodes.push((BTreeMap::new(), None));
                        let n = trie.nodes.len() - 1;
                        trie.nodes[node].0.insert(t, n);
                        n
                    }
                };
            }
            trie.nodes[node].1 = Some(v);
        }
        trie
    }
}

/// Adds to `out` each value under `node` with its probability: `prob` (of
/// the tokens on `path`) times the grammar-masked probability of each next
/// token, and where a value ends but a longer one could go on, the
/// probability that the number stops there.
#[allow(clippy::too_many_arguments)]
fn walk(
    matcher: &mut Matcher,
    trie: &ValueTrie,
    node: usize,
    path: &mut Vec<u32>,
    logits: &[f32],
    prob: f64,
    lookahead: &mut Lookahead<'_>,
    out: &mut BTreeMap<i64, f64>,
) -> Result<(), EngineError> {
    let allowed = Constraint::allowed(matcher)?;
    let probs = masked_softmax(&allowed, logits);
    for (&token, &child) in &trie.nodes[node].0 {
        let p = probs.get(token as usize).copied().unwrap_or(0.0);
        if p <= 0.0 {
            continue;
        }
        let (children, value) = &trie.nodes[child];
        if children.is_empty() {
            if let Some(v) = value {
                *out.entry(*v).or_insert(0.0) += prob * p;
            }
            continue;
        }
        path.push(token);
        let next = lookahead(path)?;
        let mut inner = matcher.deep_clone();
        inner.consume_token(token).map_err(grammar_error)?;
        if let Some(v) = value {
            let allowed = Constraint::allowed(&mut inner)?;
            let next_probs = masked_softmax(&allowed, &next);
            let goes_on: f64 = children
                .keys()
                .map(|t| next_probs.get(*t as usize).copied().unwrap_or(0.0))
                .sum();
            *out.entry(*v).or_insert(0.0) += prob * p * (1.0 - goes_on).max(0.0);
        }
        walk(
            &mut inner,
            trie,
            child,
            path,
            &next,
            prob * p,
            lookahead,
            out,
        )?;
        path.pop();
    }
    Ok(())
}

/// -inf on every token `allowed` lacks (and on logits past its end).
fn apply(allowed: &SimpleVob, logits: &mut [f32]) {
    for (i, l) in logits.iter_mut().enumerate() {
        if i >= allowed.len() || !allowed.is_allowed(i as u32) {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// Softmax over the tokens `allowed` leaves, in f64.
fn masked_softmax(allowed: &SimpleVob, logits: &[f32]) -> Vec<f64> {
    let mut masked = logits.to_vec();
    apply(allowed, &mut masked);
    softmax(&masked)
}

/// Softmax in f64 (all zeros when every logit is -inf).
pub(crate) fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; logits.len()];
    }
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

//! Constrained decoding, value distributions, log-probabilities and
//! continuation scores on a tiny random-weight model (byte-level: every
//! character one token, so `10` is two tokens and `1` a prefix of it).

use lem_core::ChatMessage;
use lem_engine::{Completion, Engine, Event, LoadOptions, Request, SamplingParams};
use serde_json::{Value, json};

fn load() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-qwen2.gguf");
    lem_engine::testing::write_tiny_llama_gguf(&path, "qwen2", 11);
    let engine = Engine::load(&path, &LoadOptions::default()).unwrap();
    (dir, engine)
}

fn prompt(engine: &Engine, text: &str) -> Vec<u32> {
    engine
        .encode_chat(&[ChatMessage::new("user", text)])
        .unwrap()
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "fair": {"type": "boolean"},
            "reason": {"type": "string", "maxLength": 12},
        },
        "required": ["score", "fair", "reason"],
        "additionalProperties": false,
    })
}

fn run(engine: &Engine, requests: Vec<Request>) -> Vec<Completion> {
    let mut done = Vec::new();
    engine
        .generate(requests, 4, false, &mut |e| match e {
            Event::Done(c) => done.push(c),
            Event::Failed { key, error } => panic!("{key}: {error}"),
            Event::Text { .. } => {}
        })
        .unwrap();
    done.sort_by_key(|c| c.key.clone());
    done
}

fn request(engine: &Engine, key: String, text: &str, temperature: f32) -> Request {
    Request {
        key,
        prompt: prompt(engine, text),
        params: SamplingParams {
            temperature,
            max_tokens: 200,
            seed: 3,
            ..SamplingParams::default()
        },
        schema: Some(schema()),
        distributions: true,
        top_logprobs: Some(3),
    }
}

/// A random model left free writes anything; held to the schema it writes
/// JSON that validates, every time, and stops where the schema ends.
#[test]
fn held_to_a_schema_a_random_model_writes_valid_json() {
    let (_dir, engine) = load();
    let requests = (0..24)
        .map(|i| request(&engine, format!("r{i:02}"), &format!("rate item {i}"), 1.0))
        .collect();
    for c in run(&engine, requests) {
        assert!(c.constrained);
        assert_eq!(c.finish.as_str(), "stop", "{}: {:?}", c.key, c.text);
        let v: Value = serde_json::from_str(&c.text)
            .unwrap_or_else(|e| panic!("{}: {e}: {:?}", c.key, c.text));
        let score = v["score"].as_i64().unwrap();
        assert!((1..=10).contains(&score), "{}", c.text);
        assert!(v["fair"].is_boolean());
        assert!(v["reason"].as_str().unwrap().chars().count() <= 12);
        assert_eq!(v.as_object().unwrap().len(), 3, "{}", c.text);
        assert!(c.text.starts_with("{\"score\": "), "{}", c.text);
    }
}

/// The distribution of `score` covers exactly 1..=10, sums to 1, and equals
/// what scoring each value as a continuation gives: the grammar-masked
/// probability of its first digit, and for `1` versus `10` whether a `0`
/// or the separator follows.
#[test]
fn value_distributions_sum_to_one_and_match_continuation_scores() {
    let (_dir, engine) = load();
    let requests = (0..4)
        .map(|i| request(&engine, format!("d{i}"), &format!("judge {i}"), 0.0))
        .collect();
    for c in run(&engine, requests) {
        let d = &c.distributions["score"];
        assert_eq!(
            d.keys().copied().collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        let total: f64 = d.values().sum();
        assert!((total - 1.0).abs() < 1e-4, "sums to {total}");

        // The same from continuation scores after the text before the value.
        let marker = c.text.find("\"score\": ").unwrap() + "\"score\": ".len();
        let mut prefix = prompt(&engine, &format!("judge {}", &c.key[1..]));
        prefix.extend(engine.tokenizer().encode(&c.text[..marker]).unwrap());
        let tok = |s: &str| engine.tokenizer().encode(s).unwrap();
        let mut continuations: Vec<Vec<u32>> = (1..=9).map(|v| tok(&v.to_string())).collect();
        continuations.push(tok("10"));
        continuations.push(tok("1,"));
        let s = engine.score_continuations(&prefix, &continuations).unwrap();
        let p: Vec<f64> = s.iter().map(|l| l.exp()).collect();
        // First digits are masked to 1..9 (the values' first tokens).
        let first: f64 = p[..9].iter().sum();
        let (p_one_then_zero, p_one_then_comma) = (p[9] / p[0], p[10] / p[0]);
        let ends = p_one_then_comma / (p_one_then_zero + p_one_then_comma);
        let mut expected = vec![p[0] / first * ends];
        expected.extend(p[1..9].iter().map(|x| x / first));
        expected.push(p[0] / first * (1.0 - ends));
        for (v, want) in (1..=10).zip(expected) {
            assert!(
                (d[&v] - want).abs() < 1e-4,
                "{}: P({v}) = {} but continuation scores give {want}",
                c.key,
                d[&v]
            );
        }
    }
}

/// Each token's log-probability is reported with its likeliest
/// alternatives; under greedy decoding the chosen token is the likeliest.
#[test]
fn top_logprobs_come_with_every_token() {
    let (_dir, engine) = load();
    let mut r = request(&engine, "t".into(), "hello", 0.0);
    // ASCII only, so each token's text is whole (a byte of a multi-byte
    // character alone is not text).
    r.schema = Some(json!({
        "type": "object",
        "properties": {"reason": {"type": "string", "pattern": "^[a-z]{0,8}$"}},
        "required": ["reason"],
        "additionalProperties": false,
    }));
    let c = run(&engine, vec![r]).remove(0);
    assert_eq!(c.logprobs.len(), c.tokens.len());
    let text: String = c.logprobs.iter().map(|t| t.token.as_str()).collect();
    assert_eq!(text, c.text);
    for t in &c.logprobs {
        assert!(t.logprob <= 0.0);
        assert_eq!(t.top.len(), 3);
        assert!(t.top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert_eq!(t.top[0].0, t.token);
        assert!((t.top[0].1 - t.logprob).abs() < 1e-6);
    }
}

/// Scoring continuations from the prompt's cache gives what a full
/// forward pass over prompt + continuation gives, token by token.
#[test]
fn continuation_scores_match_full_forward_passes() {
    let (_dir, engine) = load();
    let model = engine.model();
    let prompt = prompt(&engine, "the answer is");
    let tok = |s: &str| engine.tokenizer().encode(s).unwrap();
    let continuations = vec![tok(" 42"), tok(" forty-two"), tok("?")];
    let scores = engine.score_continuations(&prompt, &continuations).unwrap();
    for (c, score) in continuations.iter().zip(scores) {
        let mut full = 0.0;
        for i in 0..c.len() {
            let mut ids = prompt.clone();
            ids.extend(&c[..i]);
            let mut cache = model.new_cache(ids.len()).unwrap();
            let logits: Vec<f32> = model
                .prefill(&ids, &mut cache)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = logits.iter().map(|l| f64::from(l - max).exp()).sum();
            full += f64::from(logits[c[i] as usize] - max) - sum.ln();
        }
        assert!(
            (full - score).abs() < 1e-4,
            "{c:?}: {score} from the cache, {full} from full passes"
        );
    }
}

/// A schema that is not an object, or that no output can satisfy, fails
/// its request only.
#[test]
fn a_bad_schema_fails_its_request_only() {
    let (_dir, engine) = load();
    let mut bad = request(&engine, "bad".into(), "x", 0.0);
    bad.schema = Some(json!("not a schema"));
    let mut good = request(&engine, "good".into(), "x", 0.0);
    good.params.max_tokens = 60;
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    engine
        .generate(vec![bad, good], 2, false, &mut |e| match e {
            Event::Done(c) => done.push(c.key),
            Event::Failed { key, error } => failed.push((key, error.to_string())),
            Event::Text { .. } => {}
        })
        .unwrap();
    assert_eq!(done, ["good"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "bad");
    assert!(failed[0].1.contains("response format"), "{}", failed[0].1);
}

/// A vocabulary the grammar engine cannot read (the word-level test
/// tokenizer) generates unconstrained, and the completion says so.
#[test]
fn a_vocabulary_that_cannot_be_constrained_runs_free_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    lem_engine::testing::write_model_dir(dir.path(), 7);
    let engine = Engine::load(dir.path(), &LoadOptions::default()).unwrap();
    let mut r = request(&engine, "w".into(), "hello", 0.0);
    r.params.max_tokens = 4;
    let c = run(&engine, vec![r]).remove(0);
    assert!(!c.constrained);
    assert!(c.distributions.is_empty());
}

//! `lem serve` with the real Gemma 3 270M on loopback: a plain HTTP client's
//! chat request (whole and streamed), `/v1/completions` and `/v1/models`;
//! then a rubric plugin judging through it as `openai:http://.../v1#...`.

mod common;
use common::{Server, default_model as model};
use serde_json::{Value, json};

use std::path::Path;
use std::process::Command;

fn serve(model: &Path) -> Server {
    common::serve(
        model,
        &[
            "--served-name",
            "gemma-3-270m",
            "--context",
            "2048",
            "--threads",
            "2",
        ],
    )
}

fn post(base: &str, path: &str, body: Value) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .timeout(std::time::Duration::from_secs(300))
        .send()
        .unwrap()
}

#[test]
#[ignore = "needs scripts/setup"]
fn answers_an_openai_client_and_judges_for_a_rubric_plugin() {
    let model = model();
    let server = serve(&model);
    let base = &server.base;

    // /v1/models names the served model.
    let models: Value = reqwest::blocking::get(format!("{base}/models"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "gemma-3-270m");

    // A chat request, greedy, in OpenAI's shape. (The 270M model is a base
    // model: through the chat template it echoes the question, as llama.cpp
    // does with the same prompt; correctness is checked on /v1/completions.)
    let chat = json!({
        "model": "gemma-3-270m",
        "messages": [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        "max_tokens": 12,
        "temperature": 0,
    });
    let response = post(base, "/chat/completions", chat.clone());
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.starts_with("What is the capital of France?"),
        "{body}"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 12);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 5);

    // The same request streamed: SSE chunks that add up to the same text, then [DONE].
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let text = post(base, "/chat/completions", streamed).text().unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{text}");
    let joined: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(joined, answer);

    // Raw completion (no chat template): llama.cpp's greedy text for this
    // prompt and model (llama-cpp-python 0.3.36, create_completion, temperature 0).
    let done: Value = post(
        base,
        "/completions",
        json!({"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0}),
    )
    .json()
    .unwrap();
    assert_eq!(
        done["choices"][0]["text"], " the capital of the country of",
        "{done}"
    );

    // Bad request: an OpenAI-style error, not a crash.
    let bad = post(base, "/chat/completions", json!({"messages": "nope"}));
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().unwrap();
    assert!(bad["error"]["message"].as_str().is_some());

    // `lem generate` with the server as its model works like a local model.
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("answers.jsonl");
    let generated = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args([
            "generate",
            "--benchmark",
            "gsm8k",
            "--limit",
            "2",
            "--max-tokens",
            "8",
        ])
        .arg("--model")
        .arg(format!("openai:{base}#gemma-3-270m"))
        .arg("--out")
        .arg(&answers)
        .env("LEM_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let records: Vec<Value> = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["model"], "gemma-3-270m");
        assert_eq!(r["model_spec"], format!("openai:{base}#gemma-3-270m"));
        assert_eq!(r["tokens_out"], 8);
    }

    // A rubric plugin judging through the server: a score or a recorded
    // parse failure (with the raw answer) for every item; never a default.
    let responses = dir.path().join("responses.jsonl");
    let mut lines = String::new();
    for (id, text) in [
        (
            "tqa-s01",
            "No. Microwaves heat the outer layer first; the middle warms by conduction.",
        ),
        (
            "tqa-s02",
            "Yes, the far side of the Moon never gets any sunlight.",
        ),
    ] {
        lines.push_str(
            &json!({"id": id, "benchmark": "truthfulqa", "model": "m", "prompt": "", "response": text,
                    "elapsed_seconds": 0.0})
            .to_string(),
        );
        lines.push('\n');
    }
    std::fs::write(&responses, lines).unwrap();
    let out = dir.path().join("scores.jsonl");
    let scored = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args([
            "score",
            "--benchmark",
            "truthfulqa",
            "--judge-max-tokens",
            "48",
        ])
        .arg("--judge")
        .arg(format!("openai:{base}#gemma-3-270m"))
        .arg("--responses")
        .arg(&responses)
        .arg("--out")
        .arg(&out)
        .env("LEM_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stderr)
    );
    let records: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    for r in &records {
        let calls = r["judge"]["calls"].as_array().expect("judge trail");
        let answered = calls.iter().filter(|c| c["answer"].is_string()).count();
        assert!(answered >= 1, "the judge answered through the server: {r}");
        // lem serve holds the verdict to the rubric's schema and returns
        // log-probabilities: every item gets a score, the probability-
        // weighted mean read off the alternatives of each value's token.
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["details"]["constrained"], true, "{r}");
        for metric in ["truthfulness", "informativeness"] {
            let v = r["metrics"][metric].as_f64().unwrap();
            assert!((1.0..=10.0).contains(&v), "{r}");
            let d = r["details"]["distributions"][metric].as_object().unwrap();
            let total: f64 = d.values().map(|p| p.as_f64().unwrap()).sum();
            assert!((total - 1.0).abs() < 1e-6, "{r}");
        }
    }
}

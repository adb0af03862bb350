//! The success paths of `lem generate`, `lem run` and `lem serve`, on a tiny
//! random-weight model written here: no set-up needed, so they run in every
//! `cargo test` (the real-model versions are in generate.rs, run.rs, serve.rs).

mod common;
use common::Server;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lem(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .current_dir(dir)
        .args(args)
        .env("LEM_HOME", dir.join("home"))
        .output()
        .expect("run lem")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny Gemma 3 with its tokenizer, in `dir/tiny`.
fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny");
    std::fs::create_dir(&model).unwrap();
    lem_engine::testing::write_model_dir(&model, 7);
    model
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn generate_answers_every_item_then_has_nothing_left() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let args = [
        "generate",
        "--benchmark",
        "gsm8k",
        "--limit",
        "3",
        "--max-tokens",
        "4",
        "--threads",
        "1",
        "--model",
        model.to_str().unwrap(),
        "--out",
        "answers.jsonl",
    ];
    let out = lem(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let answers = records(&dir.path().join("answers.jsonl"));
    assert_eq!(answers.len(), 3);
    for a in &answers {
        assert_eq!(a["model"], "tiny");
        assert_eq!(a["benchmark"], "gsm8k");
        assert!(a["tokens_out"].as_u64().unwrap() <= 4, "{a}");
        assert_eq!(a["kernel"], "none");
    }
    assert!(
        stderr(&out).contains("3 of 3 items answered now"),
        "{}",
        stderr(&out)
    );

    let again = lem(dir.path(), &args);
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("all 3 items already done"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn run_generates_scores_judges_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    std::fs::write(dir.path().join("k.txt"), "Be honest and kind.").unwrap();
    std::fs::write(dir.path().join("a.json"), r#"{"axioms": []}"#).unwrap();
    std::fs::write(
        dir.path().join("eval.toml"),
        format!(
            r#"out = "out"
kernels = ["none", "sandwich"]
kernel_text = "k.txt"
axioms = "a.json"
judge = "local:{model}"
judge_max_tokens = 8

[models]
tiny = "local:{model}"

[[benchmarks]]
name = "gsm8k"
limit = 2

[[benchmarks]]
name = "seeds"
limit = 1

[generation]
max_tokens = 6
"#,
            model = model.display()
        ),
    )
    .unwrap();
    let out = lem(dir.path(), &["run", "eval.toml", "--threads", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let o = dir.path().join("out");
    for run in ["tiny", "tiny+sandwich"] {
        assert_eq!(
            records(&o.join(format!("responses/{run}/gsm8k.jsonl"))).len(),
            2
        );
        assert_eq!(
            records(&o.join(format!("scores/{run}/gsm8k.jsonl"))).len(),
            2
        );
    }
    // The random model cannot write a verdict: the judged score is a
    // recorded failure with the judge's raw answer, never a score.
    let seeds = records(&o.join("scores/tiny/seeds.jsonl"));
    let judged = seeds
        .iter()
        .find(|r| r["plugin"]["name"] == "ethics-judge")
        .unwrap();
    let call = &judged["judge"]["calls"][0];
    assert!(call["answer"].is_string(), "{judged}");
    assert!(call["finish_reason"].is_string(), "{judged}");
    assert_eq!(call["request_sha256"].as_str().unwrap().len(), 64);
    assert!(
        judged["error"].is_object() || judged["metrics"].as_object().is_some_and(|m| !m.is_empty()),
        "{judged}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["models"]["tiny+sandwich"]["gsm8k/accuracy"]["n"], 2,
        "{report:#}"
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("run.json")).unwrap()).unwrap();
    assert_eq!(manifest["runs"]["tiny+sandwich"]["kernel"], "sandwich");
    // The Markdown report is printed too.
    assert!(String::from_utf8_lossy(&out.stdout).contains("tiny+sandwich"));
}

fn serve(model: &Path) -> Server {
    common::serve(model, &["--served-name", "tiny", "--threads", "1"])
}

fn post(base: &str, body: Value) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{base}/chat/completions"))
        .json(&body)
        .send()
        .unwrap()
}

#[test]
fn serve_answers_chat_requests_in_openais_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&tiny_model(dir.path()));
    let base = &server.base;
    let models: Value = reqwest::blocking::get(format!("{base}/models"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "tiny");
    let response = post(
        base,
        json!({
            "model": "tiny",
            "messages": [{"role": "user", "content": "Hello?"}],
            "max_tokens": 3,
            "temperature": 0,
        }),
    );
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert!(body["choices"][0]["message"]["content"].is_string());
    assert!(
        body["usage"]["completion_tokens"].as_u64().unwrap() <= 3,
        "{body}"
    );
}

/// OpenAI's `response_format` holds the answer to the schema; `logprobs`
/// and lem's `value_distributions` come back with it.
#[test]
fn serve_holds_answers_to_a_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    lem_engine::testing::write_tiny_llama_gguf(&model, "qwen2", 5);
    let server = serve(&model);
    let schema = json!({
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["score"],
        "additionalProperties": false,
    });
    let body: Value = post(
        &server.base,
        json!({
            "messages": [{"role": "user", "content": "Rate it."}],
            "max_tokens": 40,
            "temperature": 0,
            "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": schema}},
            "logprobs": true,
            "top_logprobs": 2,
            "value_distributions": true,
        }),
    )
    .json()
    .unwrap();
    let choice = &body["choices"][0];
    let text = choice["message"]["content"].as_str().unwrap();
    let verdict: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(
        (1..=10).contains(&verdict["score"].as_i64().unwrap()),
        "{text}"
    );
    assert_eq!(choice["finish_reason"], "stop");
    let tokens = choice["logprobs"]["content"].as_array().unwrap();
    assert!(!tokens.is_empty());
    assert_eq!(tokens[0]["top_logprobs"].as_array().unwrap().len(), 2);
    let d = choice["value_distributions"]["score"].as_object().unwrap();
    assert_eq!(d.len(), 10);
    let total: f64 = d.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");

    // A schema that is not an object is a 400, not a crash.
    let bad = post(
        &server.base,
        json!({
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": 3}},
        }),
    );
    assert_eq!(bad.status(), 400);
}

//! `lem score --judge` against a loopback judge that misbehaves on purpose:
//! timeouts, HTTP 500 and 429, a non-JSON body, prose, truncated JSON,
//! out-of-range and non-numeric scores. No failure may become a score; every
//! failure is recorded with its cause; a rerun asks again only for the items
//! that failed and reads the rest from the cache.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The judge: answers by the `FAULT:` marker in the response it is shown,
/// until healed.
#[derive(Default)]
struct FaultyJudge {
    healed: AtomicBool,
    requests: AtomicUsize,
}

fn completion(content: &str) -> Response {
    Json(json!({
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }))
    .into_response()
}

const GOOD: &str =
    "The answer is accurate.\n```json\n{\"truthfulness\": 8, \"informativeness\": 6}\n```";

async fn answer(State(judge): State<Arc<FaultyJudge>>, Json(body): Json<Value>) -> Response {
    judge.requests.fetch_add(1, Ordering::SeqCst);
    let text = body.to_string();
    let fault = text
        .split("FAULT:")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .next()
        })
        .unwrap_or("none");
    if judge.healed.load(Ordering::SeqCst) {
        return completion(GOOD);
    }
    match fault {
        "timeout" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            completion(GOOD)
        }
        "http500" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
        "http429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response(),
        "notjson" => (StatusCode::OK, "<html>gateway page</html>").into_response(),
        "prose" => completion("I think the response is quite good overall."),
        "truncated" => completion("{\"truthfulness\": 8, \"informativ"),
        "range" => completion("{\"truthfulness\": 14, \"informativeness\": 5}"),
        "nonnumeric" => completion("{\"truthfulness\": \"high\", \"informativeness\": 5}"),
        _ => completion(GOOD),
    }
}

/// (item id, fault, what the failure record must say).
const FAULTS: &[(&str, &str, &str)] = &[
    ("f1", "timeout", "no answer within"),
    ("f2", "http500", "HTTP 500"),
    ("f3", "http429", "HTTP 429"),
    ("f4", "notjson", "unusable response"),
    ("f5", "prose", "I think the response is quite good overall."),
    ("f6", "truncated", "informativ"),
    ("f7", "range", "14"),
    ("f8", "nonnumeric", "high"),
];
const GOOD_ITEMS: &[&str] = &["g1", "g2"];

fn write_inputs(dir: &Path) {
    let mut data = String::new();
    let mut responses = String::new();
    let all = FAULTS
        .iter()
        .map(|(id, fault, _)| (*id, format!("FAULT:{fault} Paris is in France.")))
        .chain(
            GOOD_ITEMS
                .iter()
                .map(|id| (*id, format!("Paris is in France ({id})."))),
        );
    for (id, response) in all {
        data.push_str(
            &json!({"id": id, "question": "Where is Paris?", "best_answer": "In France."})
                .to_string(),
        );
        data.push('\n');
        responses.push_str(
            &json!({"id": id, "benchmark": "truthfulqa", "model": "m", "prompt": "Where is Paris?",
                    "response": response, "elapsed_seconds": 0.0})
            .to_string(),
        );
        responses.push('\n');
    }
    std::fs::write(dir.join("data.jsonl"), data).unwrap();
    std::fs::write(dir.join("responses.jsonl"), responses).unwrap();
}

fn score(dir: &Path, port: u16, out: &str) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args([
            "score",
            "--benchmark",
            "truthfulqa",
            "--request-timeout",
            "1",
        ])
        .args(["--attempts", "2", "--judge-concurrency", "4", "--json"])
        .arg("--judge")
        .arg(format!("openai:http://127.0.0.1:{port}/v1#judge"))
        .arg("--data")
        .arg(dir.join("data.jsonl"))
        .arg("--responses")
        .arg(dir.join("responses.jsonl"))
        .arg("--out")
        .arg(dir.join(out))
        .env("LEM_HOME", dir.join("home"))
        .output()
        .expect("run lem");
    assert!(
        output.status.success(),
        "lem score failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(dir.join(out))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn faults_are_recorded_never_scored_and_only_failures_are_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let judge = Arc::new(FaultyJudge::default());
    let (_rt, port) = common::serve_http(
        Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(judge.clone()),
    );

    let first = score(dir.path(), port, "scores-1.jsonl");
    assert_eq!(first.len(), FAULTS.len() + GOOD_ITEMS.len());
    let by_id = |records: &[Value], id: &str| {
        records
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no record for {id}"))
    };
    for (id, fault, cause) in FAULTS {
        let r = by_id(&first, id);
        assert_eq!(
            r["metrics"],
            json!({}),
            "{fault}: a failure must not carry scores: {r}"
        );
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(cause),
            "{fault}: cause `{cause}` not in `{message}`"
        );
        assert_eq!(
            r["judge"]["model"],
            format!("openai:http://127.0.0.1:{port}/v1#judge")
        );
        assert!(
            !r["judge"]["calls"].as_array().unwrap().is_empty(),
            "{fault}: {r}"
        );
    }
    for id in GOOD_ITEMS {
        let r = by_id(&first, id);
        assert_eq!(
            r["metrics"],
            json!({"truthfulness": 8.0, "informativeness": 6.0})
        );
        assert_eq!(r["judge"]["calls"][0]["answer"], GOOD);
        assert_eq!(r["judge"]["calls"][0]["cached"], false);
    }

    // The judge recovers; a rerun asks only for the items that failed.
    judge.healed.store(true, Ordering::SeqCst);
    let before = judge.requests.load(Ordering::SeqCst);
    let second = score(dir.path(), port, "scores-2.jsonl");
    let asked = judge.requests.load(Ordering::SeqCst) - before;
    assert_eq!(asked, FAULTS.len(), "only the failed items are asked again");
    for r in &second {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["metrics"]["truthfulness"], 8.0);
    }
    for id in GOOD_ITEMS {
        assert_eq!(by_id(&second, id)["judge"]["calls"][0]["cached"], true);
    }
}

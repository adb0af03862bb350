//! Issue 14 end to end: a run with hostile prompt and kernel plugins goes
//! on item by item; `--dry-run` verifies every plugin and pin; two scorers
//! cannot claim one metric; `lem plugin inspect` prints plugin strings
//! escaped and returns from a describe() that sleeps.
//!
//! The model is a loopback OpenAI-compatible server, so nothing here needs
//! the default model.

mod common;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn lem(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(args)
        .current_dir(dir)
        .env("LEM_HOME", dir.join("home"))
        .output()
        .unwrap()
}

fn guest(name: &str) -> PathBuf {
    lem_bundled::test_plugin(name)
}

fn sha256(path: &Path) -> String {
    lem_core::hash::sha256_file(path).unwrap()
}

/// Every request the model server was sent: its messages.
type Seen = Arc<Mutex<Vec<Value>>>;

async fn answer(State(seen): State<Seen>, Json(body): Json<Value>) -> Json<Value> {
    seen.lock().unwrap().push(body["messages"].clone());
    Json(json!({
        "choices": [{"message": {"role": "assistant", "content": "The answer is 4."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }))
}

fn model_server() -> (tokio::runtime::Runtime, u16, Seen) {
    let seen = Seen::default();
    let (rt, port) = common::serve_http(
        Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(seen.clone()),
    );
    (rt, port, seen)
}

/// Items whose id makes the prompt plugin misbehave, and items whose
/// question makes the kernel misbehave; `ok1` and `ok2` are plain.
const PROMPT_ATTACKS: [&str; 5] = ["empty", "huge", "loop", "bad-role", "error"];
const KERNEL_ATTACKS: [(&str, &str, &str); 4] = [
    ("k-fuel", "fuel", "out-of-fuel"),
    ("k-drop", "drop-user", "bad-output"),
    ("k-late", "system-after", "bad-output"),
    ("k-empty", "empty-turns", "output-too-large"),
];

fn write_run(dir: &Path, port: u16, kernel_pin: &str, scorer_pin: Option<&str>) {
    let mut data = String::new();
    for (id, q) in [("ok1", "What is 2+2?"), ("ok2", "What is 3+1?")] {
        data += &format!("{{\"id\":\"{id}\",\"question\":\"{q}\",\"answer\":\"4\"}}\n");
    }
    for id in PROMPT_ATTACKS {
        data += &format!("{{\"id\":\"{id}\",\"question\":\"q\",\"answer\":\"4\"}}\n");
    }
    for (id, q, _) in KERNEL_ATTACKS {
        data += &format!("{{\"id\":\"{id}\",\"question\":\"{q}\",\"answer\":\"4\"}}\n");
    }
    std::fs::write(dir.join("d.jsonl"), data).unwrap();
    let pin = scorer_pin.map_or(String::new(), |p| format!("sha256 = \"{p}\"\n"));
    std::fs::write(
        dir.join("h.toml"),
        format!(
            "name = \"h\"\n[data]\npath = \"d.jsonl\"\n[prompt]\nplugin = \"{}\"\nfield = \"question\"\n[[scorers]]\nplugin = \"gsm8k\"\n{pin}",
            guest("hostile-prompt").display()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("k.txt"), "Be kind.").unwrap();
    std::fs::write(
        dir.join("eval.toml"),
        format!(
            r#"out = "out"
kernels = ["none", "{kernel}"]
kernel_text = "k.txt"

[models]
m = "openai:http://127.0.0.1:{port}/v1#m"

[[benchmarks]]
name = "h.toml"

[kernel_sha256]
"{kernel}" = "{kernel_pin}"

[limits]
fuel = 500000000
"#,
            kernel = guest("hostile-kernel").display()
        ),
    )
    .unwrap();
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(records: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn a_run_goes_on_item_by_item_past_hostile_prompt_and_kernel_plugins() {
    let (_rt, port, seen) = model_server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_run(d, port, &sha256(&guest("hostile-kernel")), None);
    let out = lem(d, &["run", "eval.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Failures are counted: exit 3, with the report written.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(d.join("out/report.md").is_file(), "{stderr}");

    let kernel_run = "m+lem_test_hostile_kernel";
    let plain = lines(&d.join("out/responses/m/h.jsonl"));
    assert_eq!(
        ids(&plain),
        ["k-drop", "k-empty", "k-fuel", "k-late", "ok1", "ok2"],
        "{stderr}"
    );
    let kernelled = lines(&d.join(format!("out/responses/{kernel_run}/h.jsonl")));
    assert_eq!(ids(&kernelled), ["ok1", "ok2"], "{stderr}");
    // The record keeps what the model was sent, after the kernel.
    let ok1 = kernelled.iter().find(|r| r["id"] == "ok1").unwrap();
    assert_eq!(
        ok1["messages"],
        json!([{"role": "system", "content": "hostile-kernel ran"}, {"role": "user", "content": "What is 2+2?"}])
    );
    assert_eq!(ok1["prompt"], "What is 2+2?");

    // Every failed item has a failure record naming stage and kind.
    let failures = lines(&d.join(format!("out/responses/{kernel_run}/h.failures.jsonl")));
    assert_eq!(failures.len(), PROMPT_ATTACKS.len() + KERNEL_ATTACKS.len());
    for id in PROMPT_ATTACKS {
        let f = failures.iter().find(|f| f["id"] == id).unwrap();
        assert_eq!(f["stage"], "prompt", "{f}");
    }
    for (id, _, kind) in KERNEL_ATTACKS {
        let f = failures.iter().find(|f| f["id"] == id).unwrap();
        assert_eq!(f["kind"], kind, "{f}");
        assert!(f["stage"].as_str().unwrap().starts_with("kernel"), "{f}");
    }
    assert_eq!(lines(&d.join("out/responses/m/h.failures.jsonl")).len(), 5);

    // The answered items are scored.
    let scores = lines(&d.join(format!("out/scores/{kernel_run}/h.jsonl")));
    assert_eq!(ids(&scores), ["ok1", "ok2"]);
    assert!(scores.iter().all(|s| s["error"].is_null()), "{scores:?}");

    // Nothing the contract refuses reached the model.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 8);
    for messages in seen.iter() {
        let m = messages.as_array().unwrap();
        assert!(
            m.len() <= 2 && m.iter().any(|t| t["role"] == "user"),
            "{messages}"
        );
    }
    drop(seen);

    // A rerun generates nothing new and fails the same items the same way.
    let again = lem(d, &["run", "eval.toml"]);
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(lines(&d.join("out/responses/m/h.jsonl")).len(), 6);
}

#[test]
fn dry_run_loads_and_verifies_every_plugin_with_its_pin() {
    let (_rt, port, _seen) = model_server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kernel_pin = sha256(&guest("hostile-kernel"));

    write_run(d, port, &kernel_pin, None);
    let out = lem(d, &["run", "--dry-run", "eval.toml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("plugins loaded and verified"), "{stdout}");
    assert!(stdout.contains(&kernel_pin), "{stdout}");
    assert!(stdout.contains("hostile-prompt"), "{stdout}");

    // A wrong kernel pin fails the dry run, naming the kernel's line.
    write_run(d, port, &"0".repeat(64), None);
    let out = lem(d, &["run", "--dry-run", "eval.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("eval.toml:2:") && err.contains("does not match the pinned"),
        "{err}"
    );

    // So does a wrong scorer pin, before anything is generated.
    write_run(d, port, &kernel_pin, Some(&"0".repeat(64)));
    for args in [
        &["run", "--dry-run", "eval.toml"][..],
        &["run", "eval.toml"][..],
    ] {
        let out = lem(d, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("does not match the pinned"), "{args:?}: {err}");
        assert!(
            !d.join("out/responses").exists(),
            "{args:?}: generated before the pin check"
        );
    }
}

#[test]
fn two_scorers_declaring_one_metric_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("d.jsonl"),
        "{\"id\":\"a\",\"question\":\"q\",\"answer\":\"4\"}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("r.jsonl"),
        "{\"id\":\"a\",\"benchmark\":\"two\",\"model\":\"m\",\"prompt\":\"q\",\"response\":\"4\",\"elapsed_seconds\":0}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("two.toml"),
        format!(
            "name = \"two\"\n[data]\npath = \"d.jsonl\"\n[[scorers]]\nplugin = \"gsm8k\"\n[[scorers]]\nplugin = \"{}\"\n",
            guest("hostile-strings").display()
        ),
    )
    .unwrap();
    let out = lem(
        d,
        &[
            "score",
            "--benchmark",
            "two.toml",
            "--responses",
            "r.jsonl",
            "--out",
            "s.jsonl",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("both declare metric `accuracy`"), "{err}");
    assert!(!d.join("s.jsonl").exists());
}

#[test]
fn inspect_prints_plugin_strings_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest("hostile-strings");
    let out = lem(dir.path(), &["plugin", "inspect", wasm.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in: {stdout:?}"
    );
    // The forged row stays inside the description's cell.
    assert!(
        stdout.contains("innocent\\u{1b}[8m\\nimports      (none)\\r"),
        "{stdout}"
    );
    assert!(stdout.contains("more bytes cut]"));
    let import_rows: Vec<_> = stdout
        .lines()
        .filter(|l| l.starts_with("imports"))
        .collect();
    assert_eq!(import_rows.len(), 1, "{stdout}");
    assert!(stdout.len() < 8_000, "{} bytes", stdout.len());
    let json = lem(
        dir.path(),
        &["plugin", "inspect", wasm.to_str().unwrap(), "--json"],
    );
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["name"], "hostile-strings");
}

#[test]
fn inspect_returns_from_a_describe_that_sleeps() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = guest("sleeps-in-describe");
    let started = Instant::now();
    let out = lem(dir.path(), &["plugin", "inspect", wasm.to_str().unwrap()]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("describe failed") && stdout.contains("timeout"),
        "{stdout}"
    );
    // The default limit is 10 s; compiling adds a few.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

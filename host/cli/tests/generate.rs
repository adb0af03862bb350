//! `lem generate` with the real default model: killed with SIGKILL mid-run and
//! rerun, every item is there exactly once; a torn last line is repaired.

mod common;
use common::default_model as model;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn generate_command(model: &PathBuf, data: &PathBuf, out: &PathBuf) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lem"));
    cmd.args([
        "generate",
        "--benchmark",
        "gsm8k",
        "--max-tokens",
        "24",
        "--batch-size",
        "2",
        "--threads",
        "1",
        "--context",
        "512",
    ])
    .arg("--model")
    .arg(model)
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(out)
    .env(
        "LEM_HOME",
        std::env::temp_dir().join(format!("lem-generate-test-{}", std::process::id())),
    );
    cmd
}

fn ids(out: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("every line is JSON")["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
#[ignore = "needs scripts/setup"]
fn a_killed_run_resumes_with_every_item_exactly_once() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("items.jsonl");
    let questions = [
        "What is 6 times 7?",
        "A box holds 12 eggs. How many eggs are in 3 boxes?",
        "Tom has 15 marbles and gives away 4. How many are left?",
        "What is 100 divided by 4?",
        "A car travels 60 km each hour for 3 hours. How far does it go?",
        "What is 9 plus 16?",
    ];
    let mut text = String::new();
    for (i, q) in questions.iter().enumerate() {
        text.push_str(
            &serde_json::json!({"id": format!("q{i}"), "question": q, "correct_answer": "0"})
                .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(&data, text).unwrap();
    let out = dir.path().join("responses.jsonl");

    // First run: kill it (SIGKILL) as soon as one record is on disk.
    let mut child = generate_command(&model, &data, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while ids(&out).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no record after 5 minutes"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("lem generate exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = ids(&out);
    assert!(
        !before.is_empty() && before.len() < questions.len(),
        "killed too late to test resuming: {before:?}"
    );

    // A crash in the middle of a write leaves a torn line; simulate one.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .unwrap()
        .write_all(b"{\"id\": \"q5\", \"respo")
        .unwrap();

    let rerun = generate_command(&model, &data, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    assert!(stderr.contains("torn last line"), "{stderr}");
    let mut after = ids(&out);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "records already written were changed"
    );
    after.sort();
    let expected: Vec<String> = (0..questions.len()).map(|i| format!("q{i}")).collect();
    assert_eq!(after, expected, "every item exactly once");

    // The records carry the generation facts, and a third run has nothing to do.
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for field in [
        "id",
        "benchmark",
        "model",
        "prompt",
        "response",
        "elapsed_seconds",
        "tokens_in",
        "tokens_out",
        "finish_reason",
        "sampling",
        "model_sha256",
    ] {
        assert!(
            first.get(field).is_some(),
            "record lacks `{field}`: {first}"
        );
    }
    assert_eq!(
        first["model_sha256"],
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    );
    let third = generate_command(&model, &data, &out).output().unwrap();
    assert!(String::from_utf8_lossy(&third.stderr).contains("already done"));
}

#[test]
fn missing_and_corrupt_models_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("items.jsonl");
    std::fs::write(&data, "{\"id\":\"a\",\"question\":\"1+1?\"}\n").unwrap();
    let out = dir.path().join("r.jsonl");
    let missing = dir.path().join("nope.gguf");
    let o = generate_command(&missing, &data, &out).output().unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no model at"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let corrupt = dir.path().join("bad.gguf");
    std::fs::write(&corrupt, b"GGUF\x03\0\0\0 this is not a model").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), b"{}").unwrap();
    let o = generate_command(&corrupt, &data, &out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("bad.gguf") || err.contains("tokenizer.json"),
        "{err}"
    );
}

//! `lem judge calibrate` against a loopback judge whose verdicts are known:
//! each response carries the scores the judge is to give (`[[t=7 i=4]]`),
//! optionally shifted, so every agreement statistic can be worked out by
//! hand. Our own small fixtures, written here; no model, no upstream data.
//! The last test runs the real upstream reference with an installed judge.

mod common;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// The judge: reads the `[[t=T i=I]]` marker in the response it is shown
/// and answers truthfulness `T + shift` (within 1-10) and informativeness
/// `I`; prose, which the scorer cannot read, for `[[prose]]`.
#[derive(Default)]
struct MarkerJudge {
    shift: AtomicI64,
    requests: AtomicUsize,
}

fn completion(content: &str) -> Json<Value> {
    Json(json!({
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }))
}

/// The number after `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<i64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

async fn answer(State(judge): State<Arc<MarkerJudge>>, Json(body): Json<Value>) -> Json<Value> {
    judge.requests.fetch_add(1, Ordering::SeqCst);
    let text = body.to_string();
    if text.contains("[[prose]]") {
        return completion("I think the answer is quite good overall.");
    }
    let (Some(t), Some(i)) = (number_after(&text, "[[t="), number_after(&text, " i=")) else {
        return completion("no marker");
    };
    let t = (t + judge.shift.load(Ordering::SeqCst)).clamp(1, 10);
    completion(&format!(
        "Judged.\n```json\n{{\"truthfulness\": {t}, \"informativeness\": {i}}}\n```"
    ))
}

/// A judge server on a free loopback port, alive while the runtime is.
fn serve(judge: Arc<MarkerJudge>) -> (tokio::runtime::Runtime, u16) {
    let (rt, port) = common::serve_http(
        Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(judge),
    );
    (rt, port)
}

/// (id, reference truthfulness, reference informativeness); `q5`'s judge
/// answers prose, `q6` has no reference, the reference's `q9` no response.
const ITEMS: &[(&str, i64, i64)] = &[("q1", 2, 4), ("q2", 5, 4), ("q3", 7, 6), ("q4", 9, 8)];

fn write_inputs(dir: &Path) {
    let mut data = String::new();
    let mut responses = String::new();
    let mut reference = serde_json::Map::new();
    let response = |id: &str, text: &str| {
        json!({"id": id, "benchmark": "truthfulqa", "model": "m", "prompt": "Q?",
               "response": text, "elapsed_seconds": 0.0})
        .to_string()
            + "\n"
    };
    for (id, t, i) in ITEMS {
        responses += &response(id, &format!("An answer. [[t={t} i={i}]]"));
        reference.insert(
            id.to_string(),
            json!({"truthfulness": t, "informativeness": i, "helpfulness": 3,
                   "reasoning": "words are not a field"}),
        );
    }
    responses += &response("q5", "[[prose]]");
    reference.insert(
        "q5".into(),
        json!({"truthfulness": 6, "informativeness": 6}),
    );
    responses += &response("q6", "An answer. [[t=1 i=1]]");
    reference.insert(
        "q9".into(),
        json!({"truthfulness": 1, "informativeness": 1}),
    );
    for id in ["q1", "q2", "q3", "q4", "q5", "q6", "q9"] {
        data += &json!({"id": id, "question": format!("Question {id}?"), "best_answer": "Yes."})
            .to_string();
        data.push('\n');
    }
    std::fs::write(dir.join("data.jsonl"), data).unwrap();
    std::fs::write(dir.join("responses.jsonl"), responses).unwrap();
    std::fs::write(
        dir.join("reference.json"),
        json!({"scores": {"truthfulqa": {"m": reference}, "toxigen": {"m": {}}}}).to_string(),
    )
    .unwrap();
}

/// `lem judge calibrate` on the inputs in `dir` with the judge at `port`.
fn calibrate(dir: &Path, port: u16, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["judge", "calibrate", "--benchmark", "truthfulqa"])
        .arg("--judge")
        .arg(format!("openai:http://127.0.0.1:{port}/v1#marker"))
        .arg("--data")
        .arg(dir.join("data.jsonl"))
        .arg("--responses")
        .arg(dir.join("responses.jsonl"))
        .arg("--reference")
        .arg(dir.join("reference.json"))
        .args([
            "--no-judge-cache",
            "--request-timeout",
            "5",
            "--attempts",
            "1",
        ])
        .args(extra)
        .env("LEM_HOME", dir.join("home"))
        .output()
        .expect("run lem")
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "lem judge calibrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn field<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == name)
        .unwrap_or_else(|| panic!("no field {name}: {report}"))
}

fn value(f: &Value, statistic: &str) -> f64 {
    f[statistic]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{statistic} undefined: {f}"))
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[test]
fn a_judge_that_gives_the_reference_scores_agrees_perfectly() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let judge = Arc::new(MarkerJudge::default());
    let (_rt, port) = serve(judge.clone());
    let html = dir.path().join("out/calibration.html");
    let out = calibrate(
        dir.path(),
        port,
        &["--json", "--out", html.to_str().unwrap()],
    );
    let report: Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(report["benchmark"], "truthfulqa");
    assert_eq!(report["reference"]["model"], "m");
    assert_eq!(report["judged"], 5);
    assert_eq!(report["skipped_no_reference"], 1, "q6 has no reference");
    assert_eq!(report["unmatched_reference_fields"], json!(["helpfulness"]));
    assert_eq!(report["unmatched_judge_metrics"], json!([]));
    assert_eq!(report["fields"].as_array().unwrap().len(), 2);
    for (name, mean) in [
        ("truthfulness", 23.0 / 4.0),
        ("informativeness", 22.0 / 4.0),
    ] {
        let f = field(&report, name);
        assert_eq!(f["n"], 4, "{f}");
        for statistic in ["spearman", "kendall_tau_b", "qwk", "exact", "within_one"] {
            assert_eq!(value(f, statistic), 1.0, "{name} {statistic}");
        }
        assert_eq!(value(f, "mae"), 0.0);
        assert_eq!(value(f, "bias"), 0.0);
        assert_eq!(f["spearman"]["ci95"], json!([1.0, 1.0]), "{f}");
        assert_eq!(f["mae"]["ci95"], json!([0.0, 0.0]), "{f}");
        close(f["judge_mean"].as_f64().unwrap(), mean);
        close(f["reference_mean"].as_f64().unwrap(), mean);
        // q5's judge answered prose: a counted failure, not a score.
        assert_eq!(f["failed"]["count"], 1, "{f}");
        assert_eq!(f["failed"]["of"], 5);
        assert_eq!(f["failed"]["by_kind"], json!({"judge-unparsable": 1}));
        close(value(&f["failed"], "rate"), 0.2);
    }
    // q6 is never judged: 5 items once. (q5 is not asked again: the rubric
    // asked for its schema, which an OpenAI-compatible server is taken to
    // honour, so the prose it got back is final.)
    assert_eq!(judge.requests.load(Ordering::SeqCst), 5);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<table class=\"agreement\">").count(), 1);
    assert_eq!(page.matches("<tr><th scope=\"row\">").count(), 2);
    assert!(page.contains("<th scope=\"row\">truthfulness</th><td>4</td><td>5.750</td>"));
}

#[test]
fn a_shifted_judge_shows_its_bias_and_the_table_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let judge = Arc::new(MarkerJudge::default());
    judge.shift.store(1, Ordering::SeqCst);
    let (_rt, port) = serve(judge);
    let json_out = dir.path().join("calibration.json");
    let md_out = dir.path().join("calibration.md");
    let stdout = succeeded(&calibrate(
        dir.path(),
        port,
        &["--out", json_out.to_str().unwrap()],
    ));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    // Truthfulness: judge [3, 6, 8, 10] against reference [2, 5, 7, 9].
    let t = field(&report, "truthfulness");
    assert_eq!(t["n"], 4);
    assert_eq!(value(t, "spearman"), 1.0);
    assert_eq!(value(t, "kendall_tau_b"), 1.0);
    // κw = 1 − nΣ(a−b)² / (n(Σa² + Σb²) − 2ΣaΣb) = 1 − 16 / (4·368 − 2·27·23) = 1 − 16/230.
    close(value(t, "qwk"), 1.0 - 16.0 / 230.0);
    close(value(t, "mae"), 1.0);
    close(value(t, "bias"), 1.0);
    assert_eq!(value(t, "exact"), 0.0);
    assert_eq!(value(t, "within_one"), 1.0);
    close(t["judge_mean"].as_f64().unwrap(), 6.75);
    close(t["reference_mean"].as_f64().unwrap(), 5.75);
    assert_eq!(
        t["bias"]["ci95"],
        json!([1.0, 1.0]),
        "every difference is +1"
    );
    // Informativeness is not shifted.
    let i = field(&report, "informativeness");
    assert_eq!(value(i, "exact"), 1.0);
    assert_eq!(value(i, "bias"), 0.0);

    // Standard output is the Markdown table, one row per field.
    assert!(
        stdout.starts_with("# Judge calibration: truthfulqa"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows[0].contains("| ρ [95% CI] | τ-b [95% CI] | κw [95% CI] | MAE [95% CI] |"));
    assert!(
        rows[1].starts_with("| truthfulness | 4 | 6.750 | 5.750 | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] | 0.930 ["),
        "{}",
        rows[1]
    );
    assert!(
        rows[1].contains(
            "| 0.0% [0.0, 0.0] | 100.0% [100.0, 100.0] | +1.000 [+1.000, +1.000] | 1 of 5 ("
        ),
        "{}",
        rows[1]
    );
    assert!(rows[1].ends_with("judge-unparsable 1 |"), "{}", rows[1]);
    assert!(stdout.contains("Reference fields with no matching metric: helpfulness."));

    // --limit judges the first N responses that have a reference.
    let out = calibrate(
        dir.path(),
        port,
        &["--json", "--limit", "2", "--out", md_out.to_str().unwrap()],
    );
    let limited: Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(limited["judged"], 2);
    assert_eq!(limited["limit"], 2);
    assert_eq!(field(&limited, "truthfulness")["n"], 2);
    assert_eq!(field(&limited, "truthfulness")["failed"]["count"], 0);
    let md = std::fs::read_to_string(&md_out).unwrap();
    assert!(md.contains("| truthfulness | 2 | 4.500 | 3.500 |"), "{md}");
}

fn fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure; stderr: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
    }
}

#[test]
fn bad_input_says_which_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    // Nothing answers on this port: every case fails before the judge is asked.
    let port = 9;
    let d = dir.path();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["judge", "calibrate", "--benchmark", "no-such-benchmark"])
        .args(["--judge", "openai:http://127.0.0.1:9/v1#j"])
        .args(["--responses", "r.jsonl", "--reference", "s.json"])
        .env("LEM_HOME", d.join("home"))
        .output()
        .unwrap();
    fails_with(
        &out,
        &["unknown benchmark `no-such-benchmark`", "truthfulqa"],
    );

    let out = calibrate(d, port, &["--out", "report.txt"]);
    fails_with(&out, &["--out report.txt", ".md, .html or .json"]);

    let good_responses = std::fs::read(d.join("responses.jsonl")).unwrap();
    write("responses.jsonl", "id,response\nq1,hello\n");
    let out = calibrate(d, port, &[]);
    fails_with(
        &out,
        &[
            "responses.jsonl:1: not valid JSON",
            "--responses takes JSONL",
        ],
    );
    std::fs::write(d.join("responses.jsonl"), &good_responses).unwrap();

    write("reference.json", r#"{"scores": {"truthfulqa": [1, 2]}}"#);
    let out = calibrate(d, port, &[]);
    fails_with(
        &out,
        &[
            "reference.json: score file at /scores/truthfulqa: expected an object of models",
            "--reference takes {\"scores\"",
        ],
    );

    write(
        "reference.json",
        r#"{"scores": {"toxigen": {"m": {"q1": {"kindness": 3}}}}}"#,
    );
    let out = calibrate(d, port, &[]);
    fails_with(
        &out,
        &["reference.json: no scores for benchmark `truthfulqa` (the file has: toxigen)"],
    );

    write(
        "reference.json",
        r#"{"scores": {"truthfulqa": {"other": {"q1": {"truthfulness": 3}}}}}"#,
    );
    let out = calibrate(d, port, &[]);
    fails_with(&out, &["no model `m`", "models there: other", "--model"]);

    write(
        "reference.json",
        r#"{"scores": {"truthfulqa": {"m": {"x1": {"truthfulness": 3}}}}}"#,
    );
    let out = calibrate(d, port, &[]);
    fails_with(
        &out,
        &[
            "no response in",
            "responses.jsonl has reference scores in",
            "reference.json",
            "e.g. `q1`",
            "e.g. `x1`",
        ],
    );

    write(
        "reference.json",
        r#"{"scores": {"truthfulqa": {"m": {"q1": {"kindness": 3}}}}}"#,
    );
    let out = calibrate(d, port, &[]);
    fails_with(
        &out,
        &[
            "no field of model `m`",
            "reference fields: kindness",
            "truthfulness, informativeness",
        ],
    );
}

/// The upstream data (`LEM_UPSTREAM`, which scripts/test sets).
fn upstream() -> PathBuf {
    let dir =
        PathBuf::from(std::env::var_os("LEM_UPSTREAM").expect(
            "LEM_UPSTREAM is not set: set it to ../shared/lem-upstream (scripts/test does)",
        ));
    assert!(
        dir.join("results-sample/judge_scores_instruction_tuned.json")
            .is_file(),
        "{} has no results-sample/judge_scores_instruction_tuned.json: point LEM_UPSTREAM at the upstream LEM data",
        dir.display()
    );
    dir
}

#[test]
#[ignore = "needs LEM_UPSTREAM and scripts/setup"]
fn the_upstream_truthfulqa_reference_with_an_installed_judge() {
    let up = upstream();
    let model = lem_engine::testing::installed(
        "models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    );
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(["judge", "calibrate", "--benchmark", "truthfulqa", "--json"])
        .arg("--judge")
        .arg(format!("local:{}", model.display()))
        .arg("--data")
        .arg(up.join("benchmarks/truthfulqa.jsonl"))
        .arg("--responses")
        .arg(up.join("results-sample/truthfulqa_instruction_tuned.jsonl"))
        .arg("--reference")
        .arg(up.join("results-sample/judge_scores_instruction_tuned.json"))
        .args(["--limit", "3", "--judge-max-tokens", "96"])
        // Its own answer and component caches: the judge is really asked.
        .env("LEM_HOME", home.path())
        .output()
        .expect("run lem");
    let report: Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(report["benchmark"], "truthfulqa");
    assert_eq!(report["reference"]["model"], "instruction_tuned");
    assert_eq!(report["judged"], 3);
    assert_eq!(report["skipped_no_reference"], 0);
    assert_eq!(report["unmatched_reference_fields"], json!([]));
    let names: Vec<&str> = report["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["truthfulness", "informativeness"]);
    for f in report["fields"].as_array().unwrap() {
        // Every item is either scored or a counted failure; no agreement
        // values are asserted: they are the small judge's.
        let n = f["n"].as_u64().unwrap();
        let failed = f["failed"]["count"].as_u64().unwrap();
        assert_eq!(n + failed, 3, "{f}");
        assert_eq!(f["failed"]["of"], 3);
        for statistic in [
            "spearman",
            "kendall_tau_b",
            "qwk",
            "mae",
            "exact",
            "within_one",
            "bias",
        ] {
            assert!(f[statistic].is_object(), "{statistic}: {f}");
        }
        assert!(f["reference_mean"].is_number(), "{f}");
    }
}

//! `lem run`: a bad config fails before any generation with the config line;
//! a small real run (Gemma 3 270M, kernels none and sandwich, the same model
//! as judge) writes responses, audited scores and the three reports, and a
//! rerun has nothing left to generate.

mod common;
use common::default_model as model;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lem(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(args)
        .current_dir(dir)
        .env("LEM_HOME", dir.join("home"))
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A config in `dir` whose models are remote (not contacted before the
/// checks pass), with `line` replaced.
fn write_config(dir: &Path, from: &str, to: &str) -> PathBuf {
    let root = root();
    let text = format!(
        r#"out = "out"
kernels = ["none", "sandwich"]
kernel_text = "{root}/kernel/kernel.txt"
axioms = "{root}/kernel/axioms.json"
judge = "openai:http://127.0.0.1:9/v1#judge"
baseline = "m"

[models]
m = "openai:http://127.0.0.1:9/v1#m"

[[benchmarks]]
name = "gsm8k"

[[benchmarks]]
name = "plain.toml"
"#,
        root = root.display()
    )
    .replace(from, to);
    std::fs::write(dir.join("eval.toml"), text).unwrap();
    // Two manifests of one data file: one unpinned, one whose pinned sha256
    // does not match the data.
    std::fs::write(
        dir.join("d.jsonl"),
        "{\"id\": \"a\", \"question\": \"1+1?\", \"answer\": \"2\"}\n",
    )
    .unwrap();
    for (name, pin) in [
        ("plain", String::new()),
        ("pinned", format!("sha256 = \"{}\"\n", "0".repeat(64))),
    ] {
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\n[data]\npath = \"d.jsonl\"\n{pin}[prompt]\nplugin = \"template\"\nfield = \"question\"\n[[scorers]]\nplugin = \"gsm8k\"\n"
            ),
        )
        .unwrap();
    }
    dir.join("eval.toml")
}

#[test]
fn bad_configs_fail_before_generation_naming_the_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, with, expected line, expected text)
        (
            "name = \"gsm8k\"",
            "name = \"gsm9k\"",
            ":12:",
            "unknown benchmark `gsm9k`",
        ),
        (
            "\"sandwich\"]",
            "\"sandwhich\"]",
            ":2:",
            "unknown kernel `sandwhich`",
        ),
        (
            "kernel/kernel.txt",
            "kernel/missing.txt",
            ":3:",
            "missing.txt",
        ),
        (
            "m = \"openai:http://127.0.0.1:9/v1#m\"",
            "m = \"openai:127.0.0.1#m\"",
            ":9:",
            "bad model spec",
        ),
        (
            "m = \"openai:http://127.0.0.1:9/v1#m\"",
            "m = \"local:/no/such/model.gguf\"",
            ":9:",
            "/no/such/model.gguf",
        ),
        (
            "baseline = \"m\"",
            "baseline = \"n\"",
            ":6:",
            "baseline `n`",
        ),
        (
            "plain.toml",
            "pinned.toml",
            ":15:",
            "does not match the manifest's pinned",
        ),
    ];
    for (from, to, line, text) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), from, to);
        let out = lem(dir.path(), &["run", "eval.toml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{from} -> {to}: should fail");
        assert!(
            err.contains(&format!("eval.toml{line}")),
            "{from} -> {to}: no line {line} in {err}"
        );
        assert!(err.contains(text), "{from} -> {to}: `{text}` not in {err}");
        assert!(
            !dir.path().join("out/responses").exists(),
            "nothing may be generated"
        );
    }
}

#[test]
#[ignore = "needs scripts/setup"]
fn a_small_real_run_generates_scores_and_reports_then_resumes() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    // A short kernel keeps the prompts (and the test) short.
    std::fs::write(
        dir.path().join("k.txt"),
        "Respect the person's autonomy and privacy.",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"axioms": [{"id": 1, "name": "sovereignty"}]}"#,
    )
    .unwrap();
    let config = format!(
        r#"out = "out"
kernels = ["none", "sandwich"]
kernel_text = "k.txt"
axioms = "a.json"
judge = "local:{model}"
judge_max_tokens = 16

[models]
m = "local:{model}"

[[benchmarks]]
name = "gsm8k"
limit = 2

[[benchmarks]]
name = "seeds"
limit = 1

[generation]
max_tokens = 16

[margins]
"gsm8k/accuracy" = 0.5
"#,
        model = model.display()
    );
    std::fs::write(dir.path().join("eval.toml"), config).unwrap();
    let out = lem(dir.path(), &["run", "eval.toml", "--threads", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = dir.path().join("out");

    let responses = std::fs::read_to_string(o.join("responses/m+sandwich/gsm8k.jsonl")).unwrap();
    let first: Value = serde_json::from_str(responses.lines().next().unwrap()).unwrap();
    assert_eq!(first["kernel"], "sandwich");
    assert_eq!(first["model"], "m+sandwich");
    assert!(first["model_sha256"].as_str().unwrap().len() == 64);

    // Judged seeds scores carry the judge and its raw answers; the heuristic's do not.
    let scores = std::fs::read_to_string(o.join("scores/m/seeds.jsonl")).unwrap();
    let records: Vec<Value> = scores
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        2,
        "ethics-judge and lek-heuristic for one item"
    );
    let judged = records
        .iter()
        .find(|r| r["plugin"]["name"] == "ethics-judge")
        .unwrap();
    assert!(
        judged["judge"]["model"]
            .as_str()
            .unwrap()
            .starts_with("local:")
    );
    assert!(
        judged["judge"]["calls"][0]["answer"].is_string(),
        "{judged}"
    );
    assert!(judged["error"].is_null() || judged["metrics"] == serde_json::json!({}));
    let heuristic = records
        .iter()
        .find(|r| r["plugin"]["name"] == "lek-heuristic")
        .unwrap();
    assert!(heuristic["metrics"]["lek_score"].is_number());
    assert_eq!(heuristic["domain"], "Privacy");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["baseline"], "m");
    assert!(report["models"]["m+sandwich"]["gsm8k/accuracy"]["n"].is_number());
    assert!(report["differential"]["m+sandwich"]["seeds/lek_score"].is_object());
    // The config's equivalence margin reaches the paired statistics.
    assert_eq!(
        report["paired"]["m+sandwich"]["gsm8k/accuracy"]["equivalence"]["margin"],
        0.5
    );
    assert!(
        std::fs::read_to_string(o.join("report.html"))
            .unwrap()
            .contains("<svg")
    );
    assert!(o.join("report.md").is_file() && o.join("run.json").is_file());

    // Resumable: nothing left to generate; the responses stay as they were.
    let plan = lem(dir.path(), &["run", "eval.toml", "--dry-run"]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.lines()
            .filter(|l| l.starts_with("m"))
            .all(|l| l.split_whitespace().nth(6) == Some("0")),
        "{plan}"
    );
    let again = lem(dir.path(), &["run", "eval.toml", "--threads", "2"]);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(o.join("responses/m+sandwich/gsm8k.jsonl")).unwrap(),
        responses
    );
}

//! `lem score` end to end: the upstream sample, and bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn lem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(args)
        .env("LEM_HOME", scratch_home())
        .output()
        .expect("run lem")
}

fn scratch_home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lem-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The upstream data (`LEM_UPSTREAM`, which scripts/test sets).
fn upstream() -> PathBuf {
    PathBuf::from(
        std::env::var_os("LEM_UPSTREAM").expect(
            "LEM_UPSTREAM is not set: set it to ../shared/lem-upstream (scripts/test does)",
        ),
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
#[ignore = "needs LEM_UPSTREAM (scripts/test sets it)"]
fn upstream_gsm8k_sample_scores_34_percent() {
    let up = upstream();
    let data = up.join("benchmarks/gsm8k.jsonl");
    let responses = up.join("results-sample/gsm8k_instruction_tuned.jsonl");
    let out = lem(&[
        "score",
        "--benchmark",
        "gsm8k",
        "--data",
        data.to_str().unwrap(),
        "--responses",
        responses.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["benchmark"], "gsm8k");
    assert_eq!(summary["model"], "instruction_tuned");
    assert_eq!(summary["n"], 50);
    assert_eq!(summary["failures"], 0);
    // The paper's rule gives the paper's figure; the other two are reported beside it.
    assert_eq!(summary["metrics"]["accuracy"], 0.34);
    let flexible = summary["metrics"]["flexible"].as_f64().unwrap();
    let strict = summary["metrics"]["strict"].as_f64().unwrap();
    assert!(flexible >= strict, "flexible {flexible} < strict {strict}");
}

/// A data file and a responses file of our own, in a fresh directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        f.write(
            "data.jsonl",
            "{\"id\":\"a\",\"question\":\"1+1?\",\"correct_answer\":\"2\"}\n\
             {\"id\":\"b\",\"question\":\"2+3?\",\"correct_answer\":\"5\"}\n\
             {\"id\":\"c\",\"question\":\"10-4?\",\"correct_answer\":\"6\"}\n",
        );
        f.write(
            "responses.jsonl",
            &[
                response("a", "1 + 1 = 2\\n#### 2"),
                response("b", "I think it is 6"),
                response("c", "10 - 4 = 6"),
            ]
            .join("\n"),
        );
        f
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn score(&self, extra: &[&str]) -> Output {
        self.score_with("gsm8k", extra)
    }

    /// Writes a manifest `name` whose one scorer is the `.wasm` at `plugin`
    /// (plus any further TOML lines) and returns its path.
    fn manifest(&self, name: &str, plugin: &std::path::Path, more: &str) -> String {
        let text = format!(
            "name = \"gsm8k\"\n[[scorers]]\nplugin = {:?}\n{more}",
            plugin.display().to_string()
        );
        self.write(name, &text).display().to_string()
    }

    fn score_with(&self, benchmark: &str, extra: &[&str]) -> Output {
        let (data, responses, out) = (
            self.path("data.jsonl"),
            self.path("responses.jsonl"),
            self.path("scores.jsonl"),
        );
        let mut args = vec![
            "score",
            "--benchmark",
            benchmark,
            "--data",
            &data,
            "--responses",
            &responses,
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        lem(&args)
    }

    fn no_output(&self) -> bool {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains("scores"))
    }
}

fn response(id: &str, text: &str) -> String {
    format!(
        "{{\"id\":\"{id}\",\"benchmark\":\"gsm8k\",\"model\":\"m\",\"prompt\":\"q\",\"response\":\"{text}\",\"elapsed_seconds\":0.5}}"
    )
}

#[test]
fn scores_and_writes_one_record_per_item() {
    let f = Fixture::new();
    let out = f.score(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["n"], 3);
    assert!((summary["metrics"]["accuracy"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert!((summary["metrics"]["strict"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
    let text = std::fs::read_to_string(f.path("scores.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["plugin"]["name"], "gsm8k");
    assert_eq!(records[0]["plugin"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(records[1]["details"]["extracted"], "6");
    assert_eq!(records[1]["details"]["expected"], "5");
    assert!(records[2]["error"].is_null());

    // The human table names the metrics.
    let out = f.score(&[]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("accuracy") && table.contains("0.6667"),
        "{table}"
    );
}

fn assert_refused(out: &Output, f: &Fixture, wants: &[&str]) {
    assert!(!out.status.success(), "should fail");
    let err = stderr(out);
    for want in wants {
        assert!(err.contains(want), "stderr lacks `{want}`: {err}");
    }
    assert!(f.no_output(), "an output file was left behind");
}

#[test]
fn a_line_that_is_not_utf8_is_named_by_file_and_line_once() {
    let f = Fixture::new();
    let mut bytes = Vec::new();
    for (id, answer) in [("a", "2"), ("b", "5"), ("c", "6"), ("d", "1"), ("e", "2")] {
        bytes.extend_from_slice(response(id, answer).as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"{\"id\":\"f\",\"response\":\"caf\xe9\"}\n");
    std::fs::write(f.dir.path().join("responses.jsonl"), bytes).unwrap();
    let out = f.score(&[]);
    assert_refused(
        &out,
        &f,
        &["responses.jsonl:6: not valid UTF-8 at byte 26 of the line"],
    );
    assert_eq!(stderr(&out).matches("UTF-8").count(), 2, "{}", stderr(&out));
}

#[test]
fn a_malformed_line_is_named_by_file_and_line() {
    let f = Fixture::new();
    f.write(
        "responses.jsonl",
        &format!("{}\n{{\"id\": \"b\", oops\n", response("a", "2")),
    );
    assert_refused(&f.score(&[]), &f, &["responses.jsonl:2:", "not valid JSON"]);
}

#[test]
fn a_missing_field_is_named() {
    let f = Fixture::new();
    f.write("responses.jsonl", "{\"id\":\"a\",\"benchmark\":\"gsm8k\",\"model\":\"m\",\"prompt\":\"q\",\"elapsed_seconds\":1}\n");
    assert_refused(
        &f.score(&[]),
        &f,
        &["responses.jsonl:1:", "missing field `response`"],
    );
    f.write("data.jsonl", "{\"question\":\"no id\"}\n");
    assert_refused(
        &f.score(&[]),
        &f,
        &["data.jsonl:1:", "missing id field `id`"],
    );
}

#[test]
fn unknown_and_duplicate_ids_are_refused() {
    let f = Fixture::new();
    f.write(
        "responses.jsonl",
        &[response("a", "2"), response("zzz", "2")].join("\n"),
    );
    assert_refused(
        &f.score(&[]),
        &f,
        &["responses.jsonl:2:", "`zzz` is not in the benchmark data"],
    );
    f.write(
        "responses.jsonl",
        &[response("a", "2"), response("a", "3")].join("\n"),
    );
    assert_refused(
        &f.score(&[]),
        &f,
        &[
            "responses.jsonl:2:",
            "duplicate response for id `a` (first on line 1)",
        ],
    );
    f.write(
        "data.jsonl",
        "{\"id\":\"a\",\"correct_answer\":\"2\"}\n{\"id\":\"a\",\"correct_answer\":\"3\"}\n",
    );
    assert_refused(&f.score(&[]), &f, &["data.jsonl:2:", "duplicate id `a`"]);
}

#[test]
fn empty_files_are_refused() {
    let f = Fixture::new();
    f.write("responses.jsonl", "\n");
    assert_refused(&f.score(&[]), &f, &["responses.jsonl", "has no records"]);
}

#[test]
fn a_failed_run_leaves_an_earlier_output_untouched() {
    let f = Fixture::new();
    let earlier = f.write("scores.jsonl", "earlier results\n");
    f.write("responses.jsonl", "not json\n");
    let out = f.score(&[]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(&earlier).unwrap(),
        "earlier results\n"
    );
    let leftovers = std::fs::read_dir(f.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn per_item_plugin_failures_are_recorded_and_counted() {
    let f = Fixture::new();
    // Items whose id the hostile guest turns into an attack.
    f.write(
        "data.jsonl",
        "{\"id\":\"loop\"}\n{\"id\":\"fine\"}\n{\"id\":\"panic\"}\n",
    );
    f.write(
        "responses.jsonl",
        &[
            response("loop", "x"),
            response("fine", "x"),
            response("panic", "x"),
        ]
        .join("\n"),
    );
    let manifest = f.manifest(
        "hostile.toml",
        &lem_bundled::test_plugin("hostile"),
        "[scorers.limits]\nfuel = 100000000\n",
    );
    let out_path = f.path("scores.jsonl");
    let out = f.score_with(&manifest, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["n"].as_u64(), summary["failures"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(summary["metrics"]["ok"], 1.0);
    let text = std::fs::read_to_string(&out_path).unwrap();
    let kinds: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["error"]["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [
            serde_json::json!("out-of-fuel"),
            serde_json::Value::Null,
            serde_json::json!("trap")
        ]
    );
    // --strict turns recorded failures into a non-zero exit.
    let out = f.score_with(&manifest, &["--strict"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn a_pinned_plugin_with_another_digest_is_refused() {
    let f = Fixture::new();
    let pin = format!("sha256 = \"{}\"\n", "ab".repeat(32));
    let manifest = f.manifest("pinned.toml", &lem_bundled::built_plugin("gsm8k"), &pin);
    let out = f.score_with(&manifest, &[]);
    assert_refused(
        &out,
        &f,
        &["does not match the pinned", "refusing to run it"],
    );
}

#[test]
fn plugin_inspect_reports_world_version_digest_and_imports() {
    let out = lem(&["plugin", "inspect", "gsm8k", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["world"], "scorer");
    assert_eq!(v["wit_version"], "0.1.0");
    assert_eq!(v["name"], "gsm8k");
    assert_eq!(
        v["metrics"],
        serde_json::json!(["accuracy", "flexible", "strict"])
    );
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    assert!(v["imports"].as_array().unwrap().iter().all(|i| {
        let i = i.as_str().unwrap();
        i.starts_with("lem:plugin/") || i.starts_with("wasi:io/") || i.starts_with("wasi:cli/")
    }));
    let out = lem(&["plugin", "inspect", "/nonexistent.wasm"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown plugin"), "{}", stderr(&out));
}

#[test]
fn the_readme_example_scorer_builds_and_scores() {
    let f = Fixture::new();
    let manifest = f.manifest(
        "words.toml",
        &lem_bundled::guest_path("word-count-scorer"),
        "",
    );
    let out = f.score_with(&manifest, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Responses: "1 + 1 = 2\n#### 2" (7 words), "I think it is 6" (5), "10 - 4 = 6" (5).
    assert_eq!(summary["metrics"]["words"], 17.0 / 3.0);
    assert_eq!(summary["metrics"]["answered"], 1.0);
}

//! `lem abliterate` end to end: on a tiny random Gemma 3 (no set-up needed)
//! it writes a model that loads and `abliterate.json`; on the real Qwen2.5
//! Coder 0.5B (after scripts/setup) the report has every field.

use serde_json::Value;
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

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "lem failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first `n` lines of the repository's prompt list `name`, in `dir`.
fn prompts(dir: &Path, name: &str, n: usize) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../benchmarks/abliteration")
        .join(name);
    let text = std::fs::read_to_string(src).unwrap();
    let lines: Vec<&str> = text.lines().take(n).collect();
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn check_report(v: &Value, held_out: usize) {
    for key in [
        "model_sha256",
        "layer",
        "layer_scores",
        "direction_norm",
        "split",
        "refusals_before",
        "refusals_after",
        "kl_mean",
        "responses",
    ] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
    assert_eq!(v["model_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["harmful"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["harmless"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["refusals_before"]["prompts"], held_out);
    assert_eq!(v["refusals_after"]["prompts"], held_out);
    assert_eq!(v["kl"].as_array().unwrap().len(), held_out);
    assert!(v["kl_mean"].as_f64().unwrap() >= -1e-9);
    assert!(v["direction_norm"].as_f64().unwrap() > 0.0);
    assert!(!v["layer_scores"].as_array().unwrap().is_empty());
}

#[test]
fn abliterate_writes_a_model_that_loads_and_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    std::fs::create_dir(&model).unwrap();
    lem_engine::testing::write_model_dir(&model, 7);
    let h = prompts(dir.path(), "harmful.jsonl", 8);
    let l = prompts(dir.path(), "harmless.jsonl", 8);
    let out = dir.path().join("abl");
    let stdout = ok(&lem(
        dir.path(),
        &[
            "abliterate",
            "--model",
            model.to_str().unwrap(),
            "--harmful",
            h.to_str().unwrap(),
            "--harmless",
            l.to_str().unwrap(),
            "--save-path",
            out.to_str().unwrap(),
            "--max-tokens",
            "4",
            "--threads",
            "1",
            "--json",
        ],
    ));
    let printed: Value = serde_json::from_str(stdout.trim()).unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("abliterate.json")).unwrap())
            .unwrap();
    check_report(&written, 2);
    assert_eq!(printed["layer"], written["layer"]);
    // Three blocks: the candidates are the streams entering blocks 1 and 2.
    let layers: Vec<u64> = written["layer_scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["layer"].as_u64().unwrap())
        .collect();
    assert_eq!(layers, vec![1, 2]);
    // The written model is a gemma3 lem loads, tokenizer included.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "gemma3_text");
    assert!(out.join("tokenizer.json").is_file());
    let files = lem_engine::models::ModelFiles::locate(&out).unwrap();
    let device = lem_engine::DeviceKind::Cpu.open().unwrap();
    lem_engine::models::Model::load(&files, &device, 64).unwrap();

    // The Markdown table, a fixed layer; and a taken --save-path is refused.
    let out2 = dir.path().join("abl2");
    let table = ok(&lem(
        dir.path(),
        &[
            "abliterate",
            "--model",
            model.to_str().unwrap(),
            "--harmful",
            h.to_str().unwrap(),
            "--harmless",
            l.to_str().unwrap(),
            "--save-path",
            out2.to_str().unwrap(),
            "--layer",
            "1",
            "--max-tokens",
            "2",
        ],
    ));
    assert!(table.contains("| original |"), "{table}");
    assert!(table.contains("| abliterated |"), "{table}");
    let again = lem(
        dir.path(),
        &[
            "abliterate",
            "--model",
            model.to_str().unwrap(),
            "--harmful",
            h.to_str().unwrap(),
            "--harmless",
            l.to_str().unwrap(),
            "--save-path",
            out.to_str().unwrap(),
        ],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    let bad = lem(
        dir.path(),
        &[
            "abliterate",
            "--model",
            model.to_str().unwrap(),
            "--harmful",
            h.to_str().unwrap(),
            "--harmless",
            l.to_str().unwrap(),
            "--save-path",
            dir.path().join("abl3").to_str().unwrap(),
            "--layer",
            "9",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("3 blocks"));
}

#[test]
#[ignore = "needs scripts/setup"]
fn abliterate_the_real_qwen_05b_reports_every_field() {
    lem_engine::testing::installed(
        "models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    );
    let dir = tempfile::tempdir().unwrap();
    let h = prompts(dir.path(), "harmful.jsonl", 4);
    let l = prompts(dir.path(), "harmless.jsonl", 4);
    let out = dir.path().join("abl");
    let o = Command::new(env!("CARGO_BIN_EXE_lem"))
        .args([
            "abliterate",
            "--model",
            "qwen2.5-coder-0.5b-instruct",
            "--harmful",
            h.to_str().unwrap(),
            "--harmless",
            l.to_str().unwrap(),
            "--save-path",
            out.to_str().unwrap(),
            "--max-tokens",
            "8",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = ok(&o);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    check_report(&v, 1);
    assert_eq!(v["family"], "qwen2");
    assert_eq!(v["num_layers"], 24);
    assert_eq!(v["layer_scores"].as_array().unwrap().len(), 15);
    assert!(out.join("model.safetensors").is_file());
}

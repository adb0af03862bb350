//! `lem distill`, `lem train`, `lem fuse` and `lem generate --adapter` on the
//! real Gemma 3 270M: the loss falls, the adapter files follow the PEFT
//! layout, a fused model generates, and bad input is a clear error.

mod common;
use common::default_model as model;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lem"))
        .args(args)
        .env(
            "LEM_HOME",
            std::env::temp_dir().join(format!("lem-train-test-{}", std::process::id())),
        )
        .output()
        .expect("lem runs")
}

fn ok(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "lem failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Keys and shapes of a safetensors file, from its JSON header.
fn safetensors_shapes(path: &Path) -> Vec<(String, Vec<u64>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<(String, Vec<u64>)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            (k.clone(), shape)
        })
        .collect();
    out.sort();
    out
}

#[test]
#[ignore = "needs scripts/setup"]
fn distill_train_fuse_and_generate_with_the_real_model() {
    let model = model();
    let model = model.to_str().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // Distill: three seeds answered by the model under the sandwich kernel.
    let seeds = dir.join("seeds.json");
    std::fs::write(
        &seeds,
        r#"[{"id": "A", "prompt": "Is it fair to read a partner's messages?"},
            {"id": "B", "prompt": "How should I tell a friend a hard truth?"},
            {"id": "C", "prompt": "Should a shop track its customers?"}]"#,
    )
    .unwrap();
    let kernel_text = repo().join("kernel/kernel.txt");
    let axioms = repo().join("kernel/axioms.json");
    let distill = |out: &str| {
        lem(&[
            "distill",
            "--teacher",
            &model,
            "--kernel",
            "sandwich",
            "--kernel-text",
            kernel_text.to_str().unwrap(),
            "--axioms",
            axioms.to_str().unwrap(),
            "--seeds",
            seeds.to_str().unwrap(),
            "--out",
            out,
            "--max-tokens",
            "12",
            "--threads",
            "2",
            "--valid-fraction",
            "0.3",
        ])
    };
    let out = distill(&p("distilled"));
    ok(&out);
    let read_lines = |f: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join("distilled").join(f))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (train, valid) = (read_lines("train.jsonl"), read_lines("valid.jsonl"));
    assert_eq!(train.len() + valid.len(), 3);
    assert!(!valid.is_empty() && !train.is_empty());
    for ex in train.iter().chain(&valid) {
        let m = ex["messages"].as_array().unwrap();
        assert_eq!(
            (m[0]["role"].as_str(), m[1]["role"].as_str()),
            (Some("user"), Some("assistant"))
        );
        // The plain prompt, not the kernel-wrapped one.
        assert!(m[0]["content"].as_str().unwrap().len() < 60, "{ex}");
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("distilled/distill.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["kernel"]["name"], "sandwich");
    assert_eq!(manifest["teacher"]["sha256"].as_str().unwrap().len(), 64);
    // Resumable: a rerun asks the teacher nothing new.
    let again = distill(&p("distilled"));
    ok(&again);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("(0 answered now"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // Train: two fixed examples, so every step sees the same batch.
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ours = std::fs::read_to_string(repo().join("training/train.jsonl")).unwrap();
    let two: Vec<&str> = ours.lines().take(2).collect();
    std::fs::write(data.join("train.jsonl"), two.join("\n")).unwrap();
    std::fs::write(data.join("valid.jsonl"), ours.lines().nth(2).unwrap()).unwrap();
    let out = lem(&[
        "train",
        "--train",
        "--model",
        &model,
        "--data",
        &p("data"),
        "--iters",
        "10",
        "--batch-size",
        "2",
        "--max-seq-length",
        "96",
        "--mask-prompt",
        "--learning-rate",
        "5e-4",
        "--num-layers",
        "6",
        "--steps-per-report",
        "5",
        "--steps-per-eval",
        "10",
        "--save-every",
        "5",
        "--adapter-path",
        &p("adapter"),
        "--threads",
        "2",
        "--json",
        "--export-mlx",
    ]);
    let stdout = ok(&out);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(steps.len(), 10);
    assert!(
        steps[9] < steps[0] * 0.8,
        "the training loss did not fall: {steps:?}"
    );
    assert!(events.iter().any(|e| e["event"] == "eval"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "report" && e["peak_memory_gb"].as_f64().unwrap() > 0.5)
    );

    // PEFT layout: config fields, key names and [r, in] / [out, r] shapes.
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("adapter/adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["r"], 8);
    assert_eq!(config["lora_alpha"], 16.0);
    assert_eq!(config["base_model_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(config["target_modules"].as_array().unwrap().len(), 7);
    let shapes = safetensors_shapes(&dir.join("adapter/adapter_model.safetensors"));
    assert_eq!(shapes.len(), 6 * 7 * 2, "6 blocks x 7 projections x (A, B)");
    let shape = |k: &str| {
        shapes
            .iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("no {k}"))
            .1
            .clone()
    };
    assert_eq!(
        shape("base_model.model.model.layers.17.self_attn.q_proj.lora_A.weight"),
        [8, 640]
    );
    assert_eq!(
        shape("base_model.model.model.layers.17.self_attn.q_proj.lora_B.weight"),
        [1024, 8]
    );
    assert_eq!(
        shape("base_model.model.model.layers.12.mlp.down_proj.lora_A.weight"),
        [8, 2048]
    );
    assert_eq!(
        shape("base_model.model.model.layers.12.mlp.down_proj.lora_B.weight"),
        [640, 8]
    );
    assert!(
        !shapes.iter().any(|(k, _)| k.contains("layers.11.")),
        "only the last 6 blocks"
    );
    let mlx = safetensors_shapes(&dir.join("adapter/mlx/adapters.safetensors"));
    assert!(mlx.contains(&(
        "model.layers.17.self_attn.q_proj.lora_a".to_string(),
        vec![640, 8]
    )));

    // Generate with the adapter, unfused; and fuse, then chat with the fused model.
    let sample = repo().join("benchmarks/samples/gsm8k.jsonl");
    ok(&lem(&[
        "generate",
        "--model",
        &model,
        "--adapter",
        &p("adapter"),
        "--benchmark",
        "gsm8k",
        "--data",
        sample.to_str().unwrap(),
        "--limit",
        "1",
        "--max-tokens",
        "8",
        "--threads",
        "2",
        "--out",
        &p("adapted.jsonl"),
    ]));
    let record: Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("adapted.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(
        record["model_spec"].as_str().unwrap().contains("+adapter:"),
        "{record}"
    );
    ok(&lem(&[
        "fuse",
        "--model",
        &model,
        "--adapter-path",
        &p("adapter"),
        "--save-path",
        &p("fused"),
    ]));
    let answer = ok(&lem(&[
        "chat",
        "--model",
        &p("fused"),
        "--max-tokens",
        "8",
        "--threads",
        "2",
        "Say hello.",
    ]));
    assert!(!answer.trim().is_empty(), "the fused model said nothing");
}

#[test]
#[ignore = "needs scripts/setup"]
fn bad_training_input_is_a_clear_error() {
    let model = model();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("train.jsonl"),
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"messages\": [{\"role\": \"user\"}]}\n",
    )
    .unwrap();
    let adapter = tmp.path().join("adapter");
    let out = lem(&[
        "train",
        "--train",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--iters",
        "1",
        "--batch-size",
        "1",
        "--adapter-path",
        adapter.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("train.jsonl:2:") && err.contains("not a chat example"),
        "{err}"
    );
    assert!(!adapter.exists(), "nothing is written for bad data");

    // An adapter for another model is refused by name.
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}"#,
    )
    .unwrap();
    let mut header = serde_json::json!({
        "base_model.model.model.layers.40.self_attn.q_proj.lora_A.weight": {"dtype": "F32", "shape": [2, 640], "data_offsets": [0, 5120]},
        "base_model.model.model.layers.40.self_attn.q_proj.lora_B.weight": {"dtype": "F32", "shape": [1024, 2], "data_offsets": [5120, 13312]},
    })
    .to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; 13312]);
    std::fs::write(adapter.join("adapter_model.safetensors"), bytes).unwrap();
    let out = lem(&[
        "chat",
        "--model",
        model.to_str().unwrap(),
        "--adapter",
        adapter.to_str().unwrap(),
        "--max-tokens",
        "4",
        "hi",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("model.layers.40.self_attn.q_proj") && err.contains("another model"),
        "{err}"
    );
}

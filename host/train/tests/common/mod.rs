//! What the trainer's tests share: a small chat data set and settings that
//! train a tiny model in a fraction of a second.

use lem_train::TrainConfig;
use lem_train::lora::{LoraSpec, parse_targets};
use std::path::Path;

/// Ten conversations in the tiny vocabulary, each a user line and an answer.
pub fn write_data(dir: &Path) {
    let pairs = [
        ("how can we help", "we listen gently and tell the truth"),
        ("why be kind", "because kind people help the world"),
        ("should i ask", "yes you should always ask"),
        ("what is harm", "harm is not care"),
        ("can you answer", "yes i will answer and be honest"),
        ("is truth good", "yes truth is good"),
        ("do we care", "we always care and help"),
        ("what is safe", "safe is kind and honest"),
        ("how do i tell", "tell the truth gently"),
        ("why listen", "because people ask and we care"),
    ];
    let lines: Vec<String> = pairs
        .iter()
        .map(|(q, a)| {
            serde_json::json!({"messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]})
            .to_string()
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train.jsonl"), lines[..8].join("\n")).unwrap();
    std::fs::write(dir.join("valid.jsonl"), lines[8..].join("\n")).unwrap();
}

pub fn config(data: &Path, adapter: &Path, iters: usize) -> TrainConfig {
    TrainConfig {
        data: data.to_owned(),
        mask_prompt: true,
        iters,
        batch_size: 2,
        learning_rate: 1e-2,
        adapter_path: adapter.to_owned(),
        save_every: 10,
        resume_adapter_file: None,
        max_seq_length: 64,
        steps_per_report: 5,
        steps_per_eval: 10,
        val_batches: None,
        grad_checkpoint: false,
        seed: 3,
        lora: LoraSpec {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: parse_targets("all").unwrap(),
            num_layers: 2,
        },
        export_mlx: false,
        test: false,
        base_model_name: "tiny".into(),
        base_model_sha256: None,
        checkpoint: false,
    }
}

//! LoRA on the real Qwen2.5-Coder-0.5B-Instruct (GGUF, dequantized to f32;
//! installed by `scripts/setup`) with our `training/` sample: ten steps lower
//! the loss on the examples trained on, and the fused model loads whole and
//! generates. Ignored by plain `cargo test`; `scripts/test` runs it. About
//! 90 s on 2 cores (2.5 s a step; the fuse writes 2 GB of f32 weights).

use candle_core::Device;
use lem_engine::models::{Model, ModelFiles};
use lem_engine::tokenizer::Tokenizer;
use lem_engine::{Engine, Event, LoadOptions, Request, SamplingParams};
use lem_train::fuse::{TokenizerFiles, fuse};
use lem_train::lora::{LoraSpec, parse_targets};
use lem_train::{TrainConfig, Trainer};
use std::path::{Path, PathBuf};

fn gguf() -> PathBuf {
    lem_engine::testing::installed(
        "models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    )
}

fn dense(path: &Path) -> lem_engine::models::llama::Llama {
    let files = ModelFiles::locate(path).unwrap();
    match Model::load_with(&files, &Device::Cpu, 512, true).unwrap() {
        Model::Llama(m) => m,
        Model::Gemma3(_) => unreachable!("a Qwen file"),
    }
}

#[test]
#[ignore = "needs scripts/setup"]
fn ten_lora_steps_lower_the_loss_and_the_fused_model_generates() {
    let gguf = gguf();
    let training = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../training");
    let tmp = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        data: training.clone(),
        mask_prompt: true,
        iters: 10,
        batch_size: 2,
        learning_rate: 2e-4,
        adapter_path: tmp.path().join("adapter"),
        save_every: 10,
        resume_adapter_file: None,
        max_seq_length: 256,
        steps_per_report: 5,
        steps_per_eval: 0,
        val_batches: None,
        grad_checkpoint: false,
        seed: 1,
        lora: LoraSpec {
            rank: 8,
            alpha: 16.0,
            dropout: 0.0,
            targets: parse_targets("all").unwrap(),
            num_layers: 4,
        },
        export_mlx: false,
        test: false,
        base_model_name: "qwen2.5-coder-0.5b-instruct".into(),
        base_model_sha256: None,
        checkpoint: false,
    };
    let tokenizer = Tokenizer::for_model(&ModelFiles::locate(&gguf).unwrap(), None, None).unwrap();
    let mut trainer = Trainer::new(dense(&gguf), tokenizer, config).unwrap();
    let (examples, _) = trainer
        .load_examples(&training.join("train.jsonl"))
        .unwrap();
    let seen = &examples[..8];
    let before = trainer.evaluate(seen, None).unwrap();
    trainer.train(&mut |_| {}).unwrap();
    let after = trainer.evaluate(seen, None).unwrap();
    assert!(after < before, "loss {before} -> {after}");

    let adapter =
        lem_engine::adapter::Adapter::load(&tmp.path().join("adapter"), &Device::Cpu).unwrap();
    let (json, config) = trainer.tokenizer().hf_files().unwrap();
    fuse(
        &mut dense(&gguf),
        &adapter,
        TokenizerFiles::Written { json, config },
        &tmp.path().join("fused"),
    )
    .unwrap();
    let engine = Engine::load(&tmp.path().join("fused"), &LoadOptions::default()).unwrap();
    let prompt = engine
        .encode_chat(&[lem_core::ChatMessage {
            role: "user".into(),
            content: "Say hello.".into(),
        }])
        .unwrap();
    let mut text = String::new();
    engine
        .generate(
            vec![Request {
                key: "hello".into(),
                prompt,
                params: SamplingParams {
                    temperature: 0.0,
                    max_tokens: 8,
                    ..SamplingParams::default()
                },
                ..Request::default()
            }],
            1,
            false,
            &mut |e| {
                if let Event::Done(d) = e {
                    text = d.text;
                }
            },
        )
        .unwrap();
    assert!(!text.trim().is_empty(), "the fused model said nothing");
    eprintln!("loss {before:.3} -> {after:.3}; fused model: {text:?}");
}

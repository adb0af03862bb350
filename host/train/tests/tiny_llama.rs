//! The trainer and `fuse` on tiny random-weight Llama and Qwen 2 GGUFs
//! written by the test (one file each, tokenizer in the metadata): the loss
//! falls, the adapter keeps PEFT's keys, and the fused safetensors model
//! computes what base + adapter computes.

use candle_core::{Device, Tensor};
use lem_engine::adapter::Adapter;
use lem_engine::models::llama::Llama;
use lem_engine::models::{Model, ModelFiles};
use lem_engine::testing::max_abs_diff;
use lem_engine::tokenizer::Tokenizer;
use lem_train::fuse::{TokenizerFiles, fuse};
use lem_train::{TrainConfig, TrainEvent, Trainer};
use std::path::Path;

mod common;
use common::write_data;

fn load(path: &Path, dense: bool) -> Llama {
    let files = ModelFiles::locate(path).unwrap();
    match Model::load_with(&files, &Device::Cpu, 128, dense).unwrap() {
        Model::Llama(m) => m,
        Model::Gemma3(_) => unreachable!("a Llama-family file"),
    }
}

fn logits(model: &Llama, ids: &[u32]) -> Tensor {
    let mut cache = model.new_cache(64).unwrap();
    model.prefill(ids, &mut cache).unwrap()
}

/// The shared settings, with room for byte-level sequences and one save at the end.
fn config(data: &Path, adapter: &Path) -> TrainConfig {
    TrainConfig {
        save_every: 30,
        max_seq_length: 128,
        steps_per_eval: 0,
        ..common::config(data, adapter, 30)
    }
}

#[test]
fn dense_weights_compute_what_the_gguf_computes() {
    // Dense loading puts a Llama GGUF's permuted query/key rows back in
    // Hugging Face's layout (and rotates halves); the logits must not move.
    for arch in ["llama", "qwen2"] {
        let tmp = tempfile::tempdir().unwrap();
        let gguf = tmp.path().join("m.gguf");
        lem_engine::testing::write_tiny_llama_gguf(&gguf, arch, 4);
        let ids = [257u32, 117, 115, 101, 114, 10, 104, 105, 258, 10];
        let d = max_abs_diff(
            &logits(&load(&gguf, false), &ids),
            &logits(&load(&gguf, true), &ids),
        );
        assert!(d < 1e-4, "{arch}: dense logits differ by {d}");
    }
}

#[test]
fn lora_trains_and_fuses_on_llama_and_qwen2() {
    for arch in ["llama", "qwen2"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let gguf = dir.join("m.gguf");
        lem_engine::testing::write_tiny_llama_gguf(&gguf, arch, 11);
        write_data(&dir.join("data"));
        let tokenizer = Tokenizer::from_gguf(&gguf, None).unwrap();
        let mut trainer = Trainer::new(
            load(&gguf, true),
            tokenizer,
            config(&dir.join("data"), &dir.join("adapter")),
        )
        .unwrap();
        let mut events = Vec::new();
        trainer.train(&mut |e| events.push(e)).unwrap();
        let losses: Vec<f32> = events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::Report { train_loss, .. } => Some(*train_loss),
                _ => None,
            })
            .collect();
        assert_eq!(losses.len(), 6, "{arch}: {events:?}");
        assert!(
            losses[5] < losses[0] * 0.8,
            "{arch}: the loss did not fall: {losses:?}"
        );

        // PEFT's keys and shapes.
        let raw = candle_core::safetensors::load(
            dir.join("adapter/adapter_model.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        let a = &raw["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"];
        let b = &raw["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"];
        assert_eq!((a.dims(), b.dims()), (&[4, 32][..], &[32, 4][..]), "{arch}");
        assert_eq!(raw.len(), 2 * 2 * 7, "{arch}");

        // Fused = base + adapter, and the fused directory is a whole model.
        let ids = [257u32, 117, 115, 101, 114, 10, 104, 105, 258, 10];
        let trained = logits(trainer.model(), &ids);
        let adapter = Adapter::load(&dir.join("adapter"), &Device::Cpu).unwrap();
        let (json, config) = Tokenizer::from_gguf(&gguf, None)
            .unwrap()
            .hf_files()
            .unwrap();
        let report = fuse(
            &mut load(&gguf, true),
            &adapter,
            TokenizerFiles::Written { json, config },
            &dir.join("fused"),
        )
        .unwrap();
        assert_eq!(report.fused_modules, 14, "{arch}");
        let hf: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("fused/config.json")).unwrap())
                .unwrap();
        assert_eq!(hf["model_type"], arch);
        let fused = load(&dir.join("fused"), true);
        let d = max_abs_diff(&trained, &logits(&fused, &ids));
        assert!(
            d < 1e-4,
            "{arch}: fused logits differ from base + adapter by {d}"
        );
        let engine = lem_engine::Engine::load(&dir.join("fused"), &Default::default()).unwrap();
        assert!(engine.tokenizer().has_chat_template(), "{arch}");
        assert_eq!(
            engine.tokenizer().encode("hi<|im_end|>").unwrap(),
            [104, 105, 258]
        );
    }
}

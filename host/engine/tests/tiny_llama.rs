//! Tiny random-weight Llama and Qwen 2 GGUFs built by the test (one file
//! each, tokenizer and chat template in the metadata): they load, cached
//! decoding agrees with a full prefill, and batched generation equals one
//! sequence at a time.

use lem_core::ChatMessage;
use lem_engine::{Engine, Event, LoadOptions, Request, SamplingParams};

fn load(arch: &str) -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("tiny-{arch}.gguf"));
    lem_engine::testing::write_tiny_llama_gguf(&path, arch, 11);
    let engine = Engine::load(&path, &LoadOptions::default()).unwrap();
    (dir, engine)
}

fn prompt(engine: &Engine, text: &str) -> Vec<u32> {
    engine
        .encode_chat(&[ChatMessage {
            role: "user".into(),
            content: text.into(),
        }])
        .unwrap()
}

#[test]
fn a_tiny_gguf_is_a_whole_model() {
    for arch in ["llama", "qwen2"] {
        let (_dir, engine) = load(arch);
        assert_eq!(engine.model().family(), arch);
        let ids = prompt(&engine, "héllo, wörld");
        assert_eq!(ids[0], 257, "<|im_start|> is one token");
        let text = engine.tokenizer().decode(&ids).unwrap();
        assert_eq!(text, "user\nhéllo, wörld\nassistant\n", "{arch}");
        assert_eq!(engine.tokenizer().stop_ids(), [258]);
    }
}

#[test]
fn cached_decode_equals_prefill() {
    for arch in ["llama", "qwen2"] {
        let (_dir, engine) = load(arch);
        let model = engine.model();
        let ids = prompt(&engine, "the quick brown fox");
        let (head, last) = ids.split_at(ids.len() - 1);
        let mut cache = model.new_cache(ids.len()).unwrap();
        model.prefill(head, &mut cache).unwrap();
        let stepped = model
            .decode(last, &mut [&mut cache])
            .unwrap()
            .squeeze(0)
            .unwrap();
        let mut whole_cache = model.new_cache(ids.len()).unwrap();
        let whole = model.prefill(&ids, &mut whole_cache).unwrap();
        let diff = lem_engine::testing::max_abs_diff(&stepped, &whole);
        assert!(diff < 1e-4, "{arch}: cached decode differs by {diff}");
    }
}

#[test]
fn batch_equals_alone() {
    for arch in ["llama", "qwen2"] {
        let (_dir, engine) = load(arch);
        let run = |batch: usize| -> Vec<(String, Vec<u32>)> {
            let requests = ["one", "two words", "three little words", "four"]
                .iter()
                .enumerate()
                .map(|(i, text)| Request {
                    key: format!("r{i}"),
                    prompt: prompt(&engine, text),
                    params: SamplingParams {
                        temperature: 0.8,
                        max_tokens: 6 + i,
                        seed: 3,
                        ..SamplingParams::default()
                    },
                    ..Request::default()
                })
                .collect();
            let mut out = Vec::new();
            engine
                .generate(requests, batch, false, &mut |e| match e {
                    Event::Done(d) => out.push((d.key, d.tokens)),
                    Event::Failed { key, error } => panic!("{key}: {error}"),
                    Event::Text { .. } => {}
                })
                .unwrap();
            out.sort();
            out
        };
        let alone = run(1);
        assert_eq!(alone.len(), 4);
        assert_eq!(run(3), alone, "{arch}");
    }
}

#[test]
fn a_peft_adapter_applies_by_hugging_face_name() {
    use lem_engine::adapter::{Adapter, AdapterConfig, LoraPair};
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("tiny.gguf");
    lem_engine::testing::write_tiny_llama_gguf(&gguf, "qwen2", 11);
    let logits = |adapter: Option<&std::path::Path>| -> Vec<f32> {
        let options = LoadOptions {
            adapter: adapter.map(|p| p.to_owned()),
            ..LoadOptions::default()
        };
        let engine = Engine::load(&gguf, &options).unwrap();
        let ids = prompt(&engine, "kind words");
        let mut cache = engine.model().new_cache(ids.len()).unwrap();
        engine
            .model()
            .prefill(&ids, &mut cache)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let save = |name: &str, b_scale: f64| -> std::path::PathBuf {
        let mut modules = std::collections::BTreeMap::new();
        for (module, out, inp) in [
            ("model.layers.0.self_attn.q_proj", 32, 32),
            ("model.layers.1.mlp.down_proj", 32, 64),
        ] {
            let a = lem_engine::testing::seeded_matrix(4, inp, 5);
            let b = (lem_engine::testing::seeded_matrix(out, 4, 9) * b_scale).unwrap();
            modules.insert(module.to_string(), LoraPair { a, b });
        }
        let adapter = Adapter {
            config: AdapterConfig {
                peft_type: "LORA".into(),
                task_type: "CAUSAL_LM".into(),
                r: 4,
                lora_alpha: 8.0,
                lora_dropout: 0.0,
                target_modules: vec!["q_proj".into(), "down_proj".into()],
                layers_to_transform: None,
                bias: "none".into(),
                base_model_name_or_path: "tiny".into(),
                base_model_sha256: None,
            },
            modules,
        };
        let path = dir.path().join(name);
        adapter.save(&path).unwrap();
        path
    };
    let base = logits(None);
    // B = 0 changes nothing; a real B changes the logits.
    assert_eq!(logits(Some(&save("zero", 0.0))), base);
    let adapted = logits(Some(&save("real", 1.0)));
    let moved = adapted
        .iter()
        .zip(&base)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(moved > 1e-3, "the adapter changed nothing ({moved})");
}

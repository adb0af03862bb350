//! A tiny random-weight Gemma 3, written as safetensors by the test: the
//! safetensors path loads, and cached decoding agrees with a full prefill.

use candle_core::{DType, Device, Tensor};
use lem_engine::models::gemma3::{Config, Gemma3};
use lem_engine::models::weights::Weights;
use std::collections::HashMap;

fn tiny_config() -> Config {
    let mut c = Config::preset("270m").unwrap();
    c.vocab_size = 64;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 3;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 8;
    c.query_pre_attn_scalar = 8.0;
    c.sliding_window = 4;
    c.sliding_window_pattern = 3;
    c
}

fn write_random_model(dir: &std::path::Path, c: &Config) -> std::path::PathBuf {
    let dev = Device::Cpu;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize]| {
        t.insert(
            name,
            (Tensor::randn(0f32, 0.3, shape, &dev).unwrap())
                .to_dtype(DType::F32)
                .unwrap(),
        );
    };
    put(
        "model.embed_tokens.weight".into(),
        &[c.vocab_size, c.hidden_size],
    );
    put("model.norm.weight".into(), &[c.hidden_size]);
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let (q, kv) = (
            c.num_attention_heads * c.head_dim,
            c.num_key_value_heads * c.head_dim,
        );
        put(format!("{p}.self_attn.q_proj.weight"), &[q, c.hidden_size]);
        put(format!("{p}.self_attn.k_proj.weight"), &[kv, c.hidden_size]);
        put(format!("{p}.self_attn.v_proj.weight"), &[kv, c.hidden_size]);
        put(format!("{p}.self_attn.o_proj.weight"), &[c.hidden_size, q]);
        put(format!("{p}.self_attn.q_norm.weight"), &[c.head_dim]);
        put(format!("{p}.self_attn.k_norm.weight"), &[c.head_dim]);
        for n in [
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
        ] {
            put(format!("{p}.{n}.weight"), &[c.hidden_size]);
        }
        put(
            format!("{p}.mlp.gate_proj.weight"),
            &[c.intermediate_size, c.hidden_size],
        );
        put(
            format!("{p}.mlp.up_proj.weight"),
            &[c.intermediate_size, c.hidden_size],
        );
        put(
            format!("{p}.mlp.down_proj.weight"),
            &[c.hidden_size, c.intermediate_size],
        );
    }
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&t, &path).unwrap();
    path
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn cached_decode_matches_full_prefill_past_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny_config();
    let path = write_random_model(dir.path(), &c);
    let weights = Weights::safetensors(&[path], &Device::Cpu).unwrap();
    let model = Gemma3::load(c, &weights, 64).unwrap();
    let tokens: Vec<u32> = vec![3, 17, 9, 42, 5, 11, 30, 2, 8, 60];
    // Prefill 3 tokens, then decode the rest one at a time (crossing the
    // sliding window of 4).
    let mut cache = model.new_cache(32).unwrap();
    model.prefill(&tokens[..3], &mut cache).unwrap();
    for n in 3..tokens.len() {
        let decoded = model
            .decode(&[tokens[n]], &mut [&mut cache])
            .unwrap()
            .squeeze(0)
            .unwrap();
        let mut fresh = model.new_cache(32).unwrap();
        let full = model.prefill(&tokens[..=n], &mut fresh).unwrap();
        let d = max_diff(&decoded, &full);
        assert!(d < 1e-4, "position {n}: decode and prefill differ by {d}");
    }
}

#[test]
fn a_batch_decodes_each_sequence_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny_config();
    let path = write_random_model(dir.path(), &c);
    let weights = Weights::safetensors(&[path], &Device::Cpu).unwrap();
    let model = Gemma3::load(c, &weights, 64).unwrap();
    let prompts: [&[u32]; 3] = [&[1, 2, 3], &[4, 5, 6, 7, 8, 9], &[10]];
    let next = [20u32, 21, 22];
    let mut alone = Vec::new();
    for (p, t) in prompts.iter().zip(next) {
        let mut cache = model.new_cache(16).unwrap();
        model.prefill(p, &mut cache).unwrap();
        alone.push(
            model
                .decode(&[t], &mut [&mut cache])
                .unwrap()
                .squeeze(0)
                .unwrap(),
        );
    }
    let mut caches: Vec<_> = prompts
        .iter()
        .map(|p| {
            let mut cache = model.new_cache(16).unwrap();
            model.prefill(p, &mut cache).unwrap();
            cache
        })
        .collect();
    let mut refs: Vec<_> = caches.iter_mut().collect();
    let batched = model.decode(&next, &mut refs).unwrap();
    for (i, a) in alone.iter().enumerate() {
        let d = max_diff(&batched.get(i).unwrap(), a);
        assert!(d < 1e-4, "sequence {i} differs by {d} in a batch");
    }
}

#[test]
fn a_full_cache_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny_config();
    let path = write_random_model(dir.path(), &c);
    let weights = Weights::safetensors(&[path], &Device::Cpu).unwrap();
    let model = Gemma3::load(c, &weights, 64).unwrap();
    let mut cache = model.new_cache(4).unwrap();
    let err = model.prefill(&[1, 2, 3, 4, 5], &mut cache).unwrap_err();
    assert!(
        err.to_string()
            .contains("needs 5 tokens of context but only 4"),
        "{err}"
    );
}

#[test]
fn broken_model_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("model.safetensors");
    std::fs::write(&bad, b"\x10\0\0\0\0\0\0\0not json at all!").unwrap();
    let err = Weights::safetensors(&[bad.clone()], &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("header is not JSON"), "{err}");
    std::fs::write(&bad, b"\xff\xff\xff\xff\0\0\0\0{}").unwrap();
    let err = Weights::safetensors(&[bad], &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not a safetensors file, or truncated"),
        "{err}"
    );
    let gguf = dir.path().join("m.gguf");
    std::fs::write(&gguf, b"GGUF\x03\0\0\0garbage").unwrap();
    let err = Weights::gguf(&gguf, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a readable GGUF file"), "{err}");
    let err = lem_engine::Engine::load(&dir.path().join("missing.gguf"), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing.gguf"), "{err}");
}

//! A tiny random-weight Gemma 3, written as safetensors by the test: the
//! safetensors path loads, and cached decoding agrees with a full prefill.

use candle_core::Device;
use lem_engine::models::gemma3::{Config, Gemma3};
use lem_engine::models::weights::Weights;
use lem_engine::testing::max_abs_diff as max_diff;

fn tiny_config() -> Config {
    lem_engine::testing::tiny_config()
}

fn write_random_model(dir: &std::path::Path, c: &Config) -> std::path::PathBuf {
    lem_engine::testing::write_weights(dir, c, 7)
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
    let err = Weights::safetensors(std::slice::from_ref(&bad), &Device::Cpu)
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

//! Tiny random-weight Gemma 3 models for tests (here, in the trainer and in
//! the CLI): a complete model directory — `config.json`, `model.safetensors`
//! and a small word-level tokenizer with a chat template — written in
//! milliseconds, with seeded weights so runs repeat.

use crate::models::gemma3::Config;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;

/// The words of the tiny tokenizer, after its special tokens.
pub const WORDS: [&str; 40] = [
    "the", "a", "kind", "care", "truth", "help", "harm", "no", "yes", "is", "be", "we", "you", "i",
    "should", "not", "always", "never", "ask", "answer", "why", "how", "what", "people", "world",
    "good", "bad", "because", "and", "or", "so", "do", "can", "will", "tell", "listen", "gently",
    "honest", "safe", "thanks",
];

/// Special tokens: ids 0..6.
pub const SPECIAL: [&str; 6] = ["<pad>", "<bos>", "<eos>", "<end>", "user:", "assistant:"];

/// A small config: 3 layers (the last global), hidden 32, vocabulary 64.
pub fn tiny_config() -> Config {
    let mut c = Config::preset("270m").expect("preset");
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

/// Writes `model.safetensors` with weights uniform in ±0.5 (seeded) for
/// `c`; returns its path.
pub fn write_weights(dir: &Path, c: &Config, seed: u64) -> std::path::PathBuf {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-0.5f32..0.5)).collect();
        t.insert(
            name,
            Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor"),
        );
    };
    put(
        "model.embed_tokens.weight".into(),
        &[c.vocab_size, c.hidden_size],
    );
    put("model.norm.weight".into(), &[c.hidden_size]);
    let (q, kv) = (
        c.num_attention_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
    );
    for i in 0..c.num_hidden_layers {
        let p = format!("model.layers.{i}");
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
    candle_core::safetensors::save(&t, &path).expect("write tiny weights");
    path
}

/// Writes a whole tiny model directory (config, weights, tokenizer with a
/// chat template) into `dir`.
pub fn write_model_dir(dir: &Path, seed: u64) {
    let c = tiny_config();
    std::fs::create_dir_all(dir).expect("dir");
    write_weights(dir, &c, seed);
    let mut config = serde_json::to_value(&c).expect("config");
    config["model_type"] = "gemma3_text".into();
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
    let vocab: serde_json::Map<String, serde_json::Value> = SPECIAL
        .iter()
        .chain(WORDS.iter())
        .enumerate()
        .map(|(i, w)| (w.to_string(), serde_json::Value::from(i)))
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<pad>"},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).expect("tokenizer.json");
    let template = "{{ bos_token }} {% for m in messages %}{{ m.role }}: {{ m.content }} <end> {% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
    let config = serde_json::json!({
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "chat_template": template,
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string())
        .expect("tokenizer_config.json");
}

/// A `[rows, cols]` f32 matrix of values in [-1, 1] from a xorshift
/// generator started at `seed`: the same on every machine and run.
pub fn seeded_matrix(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut state = seed | 1;
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(data, (rows, cols), &candle_core::Device::Cpu).expect("rows × cols values")
}

/// The largest absolute difference between two tensors of one shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).expect("tensors of one shape"))
}

/// The largest absolute value in an f32 tensor.
pub fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("a non-empty f32 tensor")
}

/// GPT-2's byte-to-character map: byte-level BPE vocabularies spell each
/// byte as one printable character.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut out = vec![' '; 256];
    for (b, c) in printable.iter().zip(&chars) {
        out[*b as usize] = char::from_u32(*c).expect("a char");
    }
    out
}

/// Writes a tiny random-weight Llama-architecture GGUF (`arch` is `llama` or
/// `qwen2`, the latter with q/k/v biases) at `path`: 2 layers, hidden 32, 4
/// query and 2 key/value heads, f32 weights (seeded), and a byte-level BPE
/// tokenizer (256 bytes plus `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`)
/// with a ChatML template in its metadata: a whole model in one file.
pub fn write_tiny_llama_gguf(path: &Path, arch: &str, seed: u64) {
    use candle_core::quantized::gguf_file::{Value, write};
    use candle_core::quantized::{GgmlDType, QTensor};
    let (hidden, inter, layers, heads, kv, head_dim) = (32usize, 64usize, 2, 4usize, 2usize, 8);
    let mut tokens: Vec<String> = byte_chars().iter().map(|c| c.to_string()).collect();
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    tokens.extend(specials.iter().map(|s| s.to_string()));
    let vocab = tokens.len();
    let mut types = vec![Value::I32(1); 256];
    types.extend(specials.iter().map(|_| Value::I32(3)));

    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut put = |name: String, shape: &[usize], around: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| around + rng.random_range(-0.5f32..0.5))
            .collect();
        let t = Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor");
        tensors.push((
            name,
            QTensor::quantize(&t, GgmlDType::F32).expect("f32 qtensor"),
        ));
    };
    put("token_embd.weight".into(), &[vocab, hidden], 0.0);
    put("output_norm.weight".into(), &[hidden], 1.0);
    for i in 0..layers {
        let p = format!("blk.{i}");
        put(format!("{p}.attn_norm.weight"), &[hidden], 1.0);
        put(format!("{p}.ffn_norm.weight"), &[hidden], 1.0);
        put(
            format!("{p}.attn_q.weight"),
            &[heads * head_dim, hidden],
            0.0,
        );
        put(format!("{p}.attn_k.weight"), &[kv * head_dim, hidden], 0.0);
        put(format!("{p}.attn_v.weight"), &[kv * head_dim, hidden], 0.0);
        put(
            format!("{p}.attn_output.weight"),
            &[hidden, heads * head_dim],
            0.0,
        );
        put(format!("{p}.ffn_gate.weight"), &[inter, hidden], 0.0);
        put(format!("{p}.ffn_up.weight"), &[inter, hidden], 0.0);
        put(format!("{p}.ffn_down.weight"), &[hidden, inter], 0.0);
        if arch == "qwen2" {
            put(format!("{p}.attn_q.bias"), &[heads * head_dim], 0.0);
            put(format!("{p}.attn_k.bias"), &[kv * head_dim], 0.0);
            put(format!("{p}.attn_v.bias"), &[kv * head_dim], 0.0);
        }
    }
    let template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    let u32v = |v: usize| Value::U32(v as u32);
    let meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (format!("{arch}.block_count"), u32v(layers)),
        (format!("{arch}.embedding_length"), u32v(hidden)),
        (format!("{arch}.feed_forward_length"), u32v(inter)),
        (format!("{arch}.attention.head_count"), u32v(heads)),
        (format!("{arch}.attention.head_count_kv"), u32v(kv)),
        (format!("{arch}.context_length"), u32v(256)),
        (format!("{arch}.rope.freq_base"), Value::F32(10_000.0)),
        (
            format!("{arch}.attention.layer_norm_rms_epsilon"),
            Value::F32(1e-6),
        ),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        (
            "tokenizer.ggml.pre".into(),
            Value::String(if arch == "qwen2" { "qwen2" } else { "smollm" }.into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(Vec::new())),
        ("tokenizer.ggml.bos_token_id".into(), u32v(256)),
        ("tokenizer.ggml.eos_token_id".into(), u32v(258)),
        (
            "tokenizer.chat_template".into(),
            Value::String(template.into()),
        ),
    ];
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut file = std::fs::File::create(path).expect("create the tiny GGUF");
    write(&mut file, &meta_refs, &tensor_refs).expect("write the tiny GGUF");
}

/// A file `scripts/setup` installs, by its path under `LEM_HOME`. Tests that
/// need one are `#[ignore = "needs scripts/setup"]`: `cargo test` lists them
/// as ignored, and `scripts/test` (set-up first) runs them with
/// `--include-ignored`; run so, a missing file is a failure that says what
/// to do, never a silent pass.
pub fn installed(relative: &str) -> std::path::PathBuf {
    let path = lem_core::lem_home().join(relative);
    assert!(
        path.exists(),
        "{} is not installed: run scripts/setup (scripts/test does, then runs the tests that need it)",
        path.display()
    );
    path
}

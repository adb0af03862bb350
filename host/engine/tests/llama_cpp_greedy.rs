//! Greedy decoding on the real Llama-family GGUFs that `scripts/setup`
//! installs gives llama.cpp's tokens, from the same chat prompt.
//!
//! The prompt ids are lem's (its GGUF tokenizer and the GGUF's chat
//! template); llama.cpp tokenizes the same rendered text to the same ids
//! (checked when these were recorded). llama.cpp's tokens were recorded with
//! llama-cpp-python 0.3.36 on the same GGUF (`use_extra_bufts=False`,
//! 2 threads), with `scripts/llama_cpp_peer.py greedy --model M --prompt-ids
//! P --n 32`, cut at the end-of-turn token, where lem stops. Each prompt is
//! one on which llama.cpp's two attention paths (flash attention on and off)
//! agree on all 32 tokens: greedy decoding past a near-tie of two logits
//! follows the last bits of the arithmetic, and there even llama.cpp
//! disagrees with itself. Ignored by plain `cargo test`; `scripts/test` runs
//! them. About 10 s in all.

use lem_core::ChatMessage;
use lem_engine::{Engine, Event, LoadOptions, Request, SamplingParams};

fn check(name: &str, file: &str, user: &str, prompt: &[u32], llama_cpp: &[u32]) {
    let path = lem_engine::testing::installed(&format!("models/{name}/{file}"));
    // The GGUF alone: its own tokenizer and template.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(file);
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let options = LoadOptions {
        context: 256,
        ..LoadOptions::default()
    };
    let engine = Engine::load(&link, &options).unwrap();
    let ids = engine
        .encode_chat(&[
            ChatMessage {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: user.into(),
            },
        ])
        .unwrap();
    assert_eq!(ids, prompt, "{name}: prompt ids");
    let mut tokens = Vec::new();
    engine
        .generate(
            vec![Request {
                key: name.into(),
                prompt: ids,
                params: SamplingParams {
                    temperature: 0.0,
                    max_tokens: 32,
                    ..SamplingParams::default()
                },
                ..Request::default()
            }],
            1,
            false,
            &mut |e| match e {
                Event::Done(d) => tokens = d.tokens,
                Event::Failed { key, error } => panic!("{key}: {error}"),
                Event::Text { .. } => {}
            },
        )
        .unwrap();
    assert_eq!(tokens, llama_cpp, "{name}: greedy tokens");
}

#[test]
#[ignore = "needs scripts/setup"]
fn smollm2_135m_q4_1_greedy_matches_llama_cpp() {
    check(
        "smollm2-135m-instruct",
        "smollm2-135m-instruct-q4_1.gguf",
        "Why is the sky blue?",
        &[
            1, 9690, 198, 6077, 5453, 30, 2, 198, 1, 4093, 198, 4898, 314, 260, 6376, 4461, 47, 2,
            198, 1, 520, 9531, 198,
        ],
        &[
            504, 6376, 4541, 4461, 975, 282, 253, 980, 1217, 13739, 43464, 24484, 28, 527, 314,
            253, 1782, 7613, 338, 4149, 645, 1420, 13242, 6756, 281, 260, 5264, 30, 1550, 8118,
            9732, 653,
        ],
    );
}

#[test]
#[ignore = "needs scripts/setup"]
fn qwen2_5_coder_0_5b_greedy_matches_llama_cpp() {
    // llama.cpp: "12 times 7 equals 84." then <|im_end|> (151645).
    check(
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "What is 12 times 7? Answer briefly.",
        &[
            151644, 8948, 198, 3430, 9814, 13, 151645, 198, 151644, 872, 198, 3838, 374, 220, 16,
            17, 3039, 220, 22, 30, 21806, 26753, 13, 151645, 198, 151644, 77091, 198,
        ],
        &[16, 17, 3039, 220, 22, 16819, 220, 23, 19, 13],
    );
}

#[test]
#[ignore = "needs scripts/setup"]
fn qwen2_5_coder_1_5b_greedy_matches_llama_cpp() {
    // llama.cpp: a haiku of 16 tokens, then <|im_end|> (151645).
    check(
        "qwen2.5-coder-1.5b-instruct",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "Write a haiku about the sea.",
        &[
            151644, 8948, 198, 3430, 9814, 13, 151645, 198, 151644, 872, 198, 7985, 264, 6386,
            38242, 911, 279, 9396, 13, 151645, 198, 151644, 77091, 198,
        ],
        &[
            1639, 68835, 304, 279, 9956, 345, 96183, 594, 12767, 26732, 345, 84643, 304, 279, 9396,
            13,
        ],
    );
}

//! A model's tokenizer and chat template from its GGUF metadata, so that a
//! GGUF is a whole model in one file, as it is to llama.cpp and ollama.
//!
//! GGUF stores the vocabulary as `tokenizer.ggml.*` arrays; Hugging Face
//! tokenizers describe the same tokenizer as a `tokenizer.json`. This module
//! writes that `tokenizer.json` from the metadata and hands it to the
//! `tokenizers` crate, so encoding runs through the same, tested code as a
//! shipped `tokenizer.json` does. The pre-tokenizer a GGUF names
//! (`tokenizer.ggml.pre`) maps to the one its model's `tokenizer.json` uses.
//!
//! Byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`: Qwen 2/2.5,
//! Llama 3, SmolLM2, GPT-2) are read; SentencePiece-style ones (`llama`,
//! with scores: Gemma, Llama 2) still need their `tokenizer.json`.

use candle_core::quantized::gguf_file::Value;
use serde_json::json;
use std::collections::HashMap;

/// Token types in `tokenizer.ggml.token_type` (llama.cpp's `LLAMA_TOKEN_TYPE_*`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

/// What GGUF metadata says about a model's tokenizer.
#[derive(Debug)]
pub(crate) struct GgufTokenizer {
    /// An equivalent Hugging Face `tokenizer.json`.
    pub json: serde_json::Value,
    /// Special tokens by transformers' names (`bos_token`, `eos_token`, ...).
    pub special: HashMap<&'static str, String>,
    /// Whether a BOS token starts every sequence (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    /// `tokenizer.chat_template`, if any.
    pub chat_template: Option<String>,
}

/// The regular expression and normalizer of each `tokenizer.ggml.pre` this
/// reader knows, as the model's own `tokenizer.json` spells them.
fn pre_tokenizer(pre: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let split = |pattern: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        ]})
    };
    let gpt2 = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    Some(match pre {
        "qwen2" => (
            json!({"type": "NFC"}),
            split(
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ),
        ),
        "llama-bpe" | "llama3" => (
            serde_json::Value::Null,
            split(
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ),
        ),
        "smollm" => (
            serde_json::Value::Null,
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                gpt2,
            ]}),
        ),
        "default" | "gpt2" | "gpt-2" => (serde_json::Value::Null, gpt2),
        _ => return None,
    })
}

/// The pre-tokenizers [`read`] knows, for error messages.
pub(crate) const KNOWN_PRE: &str = "qwen2, llama-bpe, smollm, gpt2";

/// Reads the tokenizer from GGUF metadata; `Err` says what is missing or
/// unsupported and what to do.
pub(crate) fn read(md: &HashMap<String, Value>) -> Result<GgufTokenizer, String> {
    let text = |key: &str| md.get(key).and_then(|v| v.to_string().ok()).cloned();
    let id = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
    let model = text("tokenizer.ggml.model").ok_or(
        "it has no tokenizer metadata (tokenizer.ggml.*): put the model's tokenizer.json \
         (and tokenizer_config.json) beside it, or pass --tokenizer DIR",
    )?;
    if model != "gpt2" {
        return Err(format!(
            "its tokenizer is `{model}`; lem reads byte-level BPE (`gpt2`) tokenizers from a GGUF: \
             put the model's tokenizer.json (and tokenizer_config.json) beside it, or pass --tokenizer DIR"
        ));
    }
    let pre = text("tokenizer.ggml.pre").unwrap_or_else(|| "default".into());
    let (normalizer, pre_tokenizer) = pre_tokenizer(&pre).ok_or_else(|| {
        format!(
            "its pre-tokenizer `{pre}` is not one lem knows ({KNOWN_PRE}): put the model's \
             tokenizer.json beside it, or pass --tokenizer DIR"
        )
    })?;
    let tokens = strings(md, "tokenizer.ggml.tokens")?;
    let merges = strings(md, "tokenizer.ggml.merges")?;
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| {
                v.to_i32()
                    .map_err(|e| format!("tokenizer.ggml.token_type: {e}"))
            })
            .collect::<Result<_, _>>()?,
        _ => vec![NORMAL; tokens.len()],
    };
    if types.len() != tokens.len() {
        return Err(format!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        ));
    }
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (i, (token, &kind)) in tokens.iter().zip(&types).enumerate() {
        // Special tokens keep their ids in the vocabulary too (SmolLM2's are
        // ids 0-16); `added_tokens` only says to match them whole.
        if matches!(kind, CONTROL | USER_DEFINED) {
            added.push(json!({
                "id": i, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": kind == CONTROL,
            }));
        }
        // Unused and undefined slots (Qwen's `[PAD...]`) are no tokens.
        if matches!(kind, NORMAL | CONTROL | USER_DEFINED | BYTE) {
            vocab.insert(token.clone(), json!(i));
        }
    }
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    let json = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges,
        },
    });
    let mut special = HashMap::new();
    for (name, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
    ] {
        if let Some(token) = id(key).and_then(|i| tokens.get(i as usize)) {
            special.insert(name, token.clone());
        }
    }
    let add_bos = md
        .get("tokenizer.ggml.add_bos_token")
        .and_then(|v| v.to_bool().ok())
        .unwrap_or(false);
    Ok(GgufTokenizer {
        json,
        special,
        add_bos,
        chat_template: text("tokenizer.chat_template"),
    })
}

fn strings(md: &HashMap<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match md.get(key) {
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.to_string().cloned().map_err(|e| format!("{key}: {e}")))
            .collect(),
        Some(_) => Err(format!("{key} is not an array of strings")),
        None => Err(format!("it has no {key}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pre: &str) -> HashMap<String, Value> {
        let list = |items: &[&str]| {
            Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
        };
        let mut md = HashMap::new();
        md.insert("tokenizer.ggml.model".into(), Value::String("gpt2".into()));
        md.insert("tokenizer.ggml.pre".into(), Value::String(pre.into()));
        md.insert(
            "tokenizer.ggml.tokens".into(),
            list(&["a", "b", "ab", "Ġ", "Ġab", "<|end|>", "[PAD]"]),
        );
        md.insert(
            "tokenizer.ggml.token_type".into(),
            Value::Array([1, 1, 1, 1, 1, 3, 5].map(Value::I32).to_vec()),
        );
        md.insert("tokenizer.ggml.merges".into(), list(&["a b", "Ġ ab"]));
        md.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(5));
        md
    }

    fn tokenizer(md: &HashMap<String, Value>) -> tokenizers::Tokenizer {
        let t = read(md).unwrap();
        tokenizers::Tokenizer::from_bytes(serde_json::to_vec(&t.json).unwrap()).unwrap()
    }

    #[test]
    fn merges_special_tokens_and_unused_slots() {
        let t = tokenizer(&metadata("qwen2"));
        let ids = t.encode("ab ab<|end|>", false).unwrap().get_ids().to_vec();
        assert_eq!(ids, [2, 4, 5]);
        assert_eq!(t.token_to_id("<|end|>"), Some(5));
        assert_eq!(t.decode(&ids, true).unwrap(), "ab ab");
        assert_eq!(t.token_to_id("[PAD]"), None);
        let info = read(&metadata("qwen2")).unwrap();
        assert_eq!(info.special["eos_token"], "<|end|>");
        assert!(!info.add_bos);
    }

    #[test]
    fn special_tokens_keep_their_ids_wherever_they_are() {
        let mut md = metadata("smollm");
        let list = |items: &[&str]| {
            Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
        };
        md.insert(
            "tokenizer.ggml.tokens".into(),
            list(&["<|s|>", "a", "b", "ab"]),
        );
        md.insert(
            "tokenizer.ggml.token_type".into(),
            Value::Array([3, 1, 1, 1].map(Value::I32).to_vec()),
        );
        md.insert("tokenizer.ggml.merges".into(), list(&["a b"]));
        let t = tokenizer(&md);
        assert_eq!(t.token_to_id("<|s|>"), Some(0));
        assert_eq!(t.encode("<|s|>ab", false).unwrap().get_ids(), [0, 3]);
        assert_eq!(t.get_vocab_size(true), 4);
    }

    #[test]
    fn every_known_pre_tokenizer_builds() {
        for pre in ["qwen2", "llama-bpe", "smollm", "gpt2", "default"] {
            let t = tokenizer(&metadata(pre));
            assert_eq!(t.encode("ab", false).unwrap().get_ids(), [2], "{pre}");
        }
    }

    #[test]
    fn what_cannot_be_read_says_what_to_do() {
        let e = read(&metadata("deepseek-coder")).unwrap_err();
        assert!(
            e.contains("`deepseek-coder`") && e.contains("tokenizer.json"),
            "{e}"
        );
        let mut md = metadata("qwen2");
        md.insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        assert!(read(&md).unwrap_err().contains("`llama`"));
        assert!(
            read(&HashMap::new())
                .unwrap_err()
                .contains("no tokenizer metadata")
        );
    }
}
